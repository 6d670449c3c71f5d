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
