//! JSON text into values through one reader only.
//!
//! `crate::json::from_str` and `serde_json::from_slice` parse with two reader types, and every
//! `Deserialize` impl is compiled once per reader it meets; the `.wasm` carries both copies.
//! Text is parsed here as its UTF-8 bytes, so only `from_slice`'s copy exists. The result
//! (values and error messages) is the same: the bytes of a `&str` are valid UTF-8.

/// `crate::json::from_str`, through `serde_json::from_slice`.
pub fn from_str<'a, T: serde::Deserialize<'a>>(text: &'a str) -> serde_json::Result<T> {
    serde_json::from_slice(text.as_bytes())
}

/// `from_str` through `serde_path_to_error`, the path dropped: for types that requests also
/// carry (the rule set), whose `Deserialize` impl then exists only in the path-tracking copy
/// that `http::extract::from_json` and `rules::engine::parse_rules` use. The result is the same:
/// the tracking only records where an error happened.
pub fn from_str_tracked<T: serde::de::DeserializeOwned>(text: &str) -> serde_json::Result<T> {
    let de = &mut serde_json::Deserializer::from_slice(text.as_bytes());
    let value = serde_path_to_error::deserialize(&mut *de)
        .map_err(serde_path_to_error::Error::into_inner)?;
    de.end()?;
    Ok(value)
}
