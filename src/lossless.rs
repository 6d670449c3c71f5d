//! Ids that TikTok may send as JSON numbers beyond 2^53 (or beyond u64) are kept as the exact
//! digits they arrived with, by reading the raw JSON token instead of a float.

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// Turns a raw JSON scalar into its id text: strings unquoted, numbers verbatim.
fn id_from_raw(raw: &RawValue) -> Result<String, String> {
    let text = raw.get().trim();
    if text.starts_with('"') {
        crate::json::from_str::<String>(text).map_err(|e| e.to_string())
    } else if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
    {
        Ok(text.to_string())
    } else {
        // The first 16 characters (not bytes: a cut inside a character would panic).
        let shown = text
            .char_indices()
            .nth(16)
            .map_or(text, |(i, _)| &text[..i]);
        Err(format!("expected an id (string or number), got {shown}"))
    }
}

/// Deserializes a required id.
pub fn id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let raw: Box<RawValue> = Deserialize::deserialize(d)?;
    id_from_raw(&raw).map_err(serde::de::Error::custom)
}

/// Deserializes an optional id (`null` or absent gives `None`).
pub fn opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let raw: Option<Box<RawValue>> = Deserialize::deserialize(d)?;
    match raw {
        Some(r) if r.get().trim() != "null" => {
            id_from_raw(&r).map(Some).map_err(serde::de::Error::custom)
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct T {
        #[serde(deserialize_with = "super::id")]
        a: String,
        #[serde(default, deserialize_with = "super::opt_id")]
        b: Option<String>,
    }

    #[test]
    fn big_numbers_stay_exact() {
        let t: T =
            serde_json::from_str(r#"{"a": 123456789012345678901234567890, "b": 9007199254740993}"#)
                .unwrap();
        assert_eq!(t.a, "123456789012345678901234567890");
        assert_eq!(t.b.as_deref(), Some("9007199254740993"));
        let t: T = serde_json::from_str(r#"{"a": "x\"y", "b": null}"#).unwrap();
        assert_eq!(t.a, "x\"y");
        assert_eq!(t.b, None);
        let t: T = serde_json::from_str(r#"{"a": "1"}"#).unwrap();
        assert_eq!(t.b, None);
        assert!(serde_json::from_str::<T>(r#"{"a": {"x":1}}"#).is_err());
        assert!(serde_json::from_str::<T>(r#"{"a": true}"#).is_err());
        // The same through the reader of the Worker's own records.
        let t: T =
            crate::json::from_str(r#"{"a": 123456789012345678901234567890, "b": "x\"y"}"#).unwrap();
        assert_eq!(t.a, "123456789012345678901234567890");
        assert_eq!(t.b.as_deref(), Some("x\"y"));
        assert!(crate::json::from_str::<T>(r#"{"a": {"x":1}}"#).is_err());
    }

    #[test]
    fn a_bad_id_with_multibyte_text_is_an_error_not_a_panic() {
        // Byte 16 of this value falls inside an "é" (found by review: it used to panic).
        let e = serde_json::from_str::<T>(r#"{"a": {"xy":"ééééééé"}}"#).unwrap_err();
        assert!(e.to_string().contains(r#"got {"xy":"éééééé"#), "{e}");
        for n in 0..40 {
            let v = format!(r#"{{"a": ["{}"]}}"#, "é".repeat(n));
            assert!(serde_json::from_str::<T>(&v).is_err());
        }
    }
}
