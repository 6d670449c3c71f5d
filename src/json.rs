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

/// Deserializes a `T` from the start of `json` (whatever follows it is not read) and, on
/// failure, names the value at fault with [`error_path`].
pub fn from_slice_traced<T: serde::de::DeserializeOwned>(
    json: &[u8],
) -> Result<T, (String, serde_json::Error)> {
    T::deserialize(&mut serde_json::Deserializer::from_slice(json))
        .map_err(|e| (error_path(json, &e), e))
}

/// One open object (with the key whose value is being read, once known) or array (with the
/// index of the element being read) on the way to an error.
enum Frame {
    Object(Option<String>),
    Array(usize),
}

/// The path to the value a deserialization error of `json` is about: `rules[0].text`,
/// `away.open.mon`, or `.` for the whole document, as `serde_path_to_error` (used before) named
/// it.
///
/// Found from the error's line and column instead of tracked through every `Deserialize`
/// impl: the tracking wrapped each of them in a copy of its own (about 11 KiB of `.wasm`
/// gzip). serde_json places an error about a value just after the value (or at the `{` or `[`
/// opening it), so the text before that point, read as nested objects and arrays, leads to it:
/// an object's current key counts from its closing quote until the next `,`, an array's index
/// from its `[` or `,`. An unknown field is named with its key; a duplicate one, and an enum
/// written as `{"variant": ...}` with an unknown variant, are errors of the object or enum (no
/// key). Checked against the tracking on 200,000 mangled documents: the same name for every
/// error about a value. Syntax errors (a rule set names a field for them too) are named after
/// the innermost key or index open where the error is, where the tracking said `?` for a key
/// it never read, or named the container between two of its items.
pub fn error_path(json: &[u8], e: &serde_json::Error) -> String {
    let message = e.to_string();
    // Errors about a key read as an object's own field (twice) or as an enum's variant name:
    // named after the object or the enum, without the key.
    let not_a_field =
        message.starts_with("duplicate field `") || message.starts_with("unknown variant `");
    let mut at = match e.line() {
        0 => 0,
        line => {
            let line_start: usize = json
                .split(|&b| b == b'\n')
                .take(line - 1)
                .map(|l| l.len() + 1)
                .sum();
            (line_start + e.column()).min(json.len())
        }
    };
    // An error about a key is placed after the `}` when one follows it directly.
    if (not_a_field || message.starts_with("unknown field `")) && at > 0 && json[at - 1] == b'}' {
        at -= 1;
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut expect_key = false;
    // A key was read and its `:` was not yet.
    let mut before_colon = false;
    let mut i = 0;
    while i < at {
        match json[i] {
            b'"' => {
                let start = i;
                i += 1;
                while i < json.len() && json[i] != b'"' {
                    i += if json[i] == b'\\' { 2 } else { 1 };
                }
                if std::mem::take(&mut expect_key) {
                    before_colon = true;
                    if let Some(Frame::Object(key)) = stack.last_mut() {
                        let quoted = &json[start..(i + 1).min(json.len())];
                        *key = Some(serde_json::from_slice(quoted).unwrap_or_default());
                    }
                }
            }
            b':' => before_colon = false,
            b'{' => {
                before_colon = false;
                stack.push(Frame::Object(None));
                expect_key = true;
            }
            b'[' => {
                before_colon = false;
                stack.push(Frame::Array(0));
                expect_key = false;
            }
            b'}' | b']' => {
                before_colon = false;
                stack.pop();
                expect_key = false;
            }
            b',' => {
                before_colon = false;
                match stack.last_mut() {
                    Some(Frame::Object(key)) => {
                        *key = None;
                        expect_key = true;
                    }
                    Some(Frame::Array(n)) => *n += 1,
                    None => {}
                }
            }
            _ => {}
        }
        i += 1;
    }
    if not_a_field && before_colon {
        if let Some(Frame::Object(key)) = stack.last_mut() {
            *key = None;
        }
    }
    let mut path = String::new();
    let mut separator = "";
    for frame in &stack {
        match frame {
            Frame::Object(Some(key)) => {
                path.push_str(separator);
                path.push_str(key);
            }
            Frame::Object(None) => continue,
            Frame::Array(n) => path.push_str(&format!("[{n}]")),
        }
        separator = ".";
    }
    if separator.is_empty() {
        path.push('.');
    }
    path
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        #[serde(default)]
        n: u64,
        #[serde(default)]
        items: Vec<crate::tiktok::types::Template>,
        #[serde(default)]
        map: std::collections::BTreeMap<String, Vec<u64>>,
    }

    fn path(json: &str) -> String {
        super::from_slice_traced::<Doc>(json.as_bytes())
            .unwrap_err()
            .0
    }

    #[test]
    fn errors_are_named_as_the_tracking_named_them() {
        let cases = [
            (r#"{"n":"x"}"#, "n"),
            (r#"{"n":{"a":1}}"#, "n"),
            (r#"{"bogus":1}"#, "bogus"),
            (r#"{"bogus"}"#, "bogus"),
            (r#"{"n":1, "n":2}"#, "."),
            (
                r#"{"items":[{"type":"QA_LINK_CARD","title":"t","buttons":[]},{"type":"x"}]}"#,
                "items[1].type",
            ),
            (r#"{"items":[{"type":{"x":1}}]}"#, "items[0].type"),
            (
                r#"{"items":[{"type":"QA_LINK_CARD","buttons":[{"title":"a","id":7}]}]}"#,
                "items[0].buttons[0].id",
            ),
            (
                r#"{"items":[{"type":"QA_LINK_CARD","buttons":[]}]}"#,
                "items[0]",
            ),
            (
                r#"{"items":[{"type":"QA_LINK_CARD","title":"t","buttons":[{"title":"a","id":"b","x":1}]}]}"#,
                "items[0].buttons[0].x",
            ),
            ("{\n \"map\": {\"a\\u0062\": [1, \"2\"]}}", "map.ab[1]"),
            (r#"{"map":{"":true}}"#, "map."),
            (r#"[1,"x"]"#, "[1]"),
        ];
        for (json, expected) in cases {
            assert_eq!(path(json), expected, "{json}");
        }
    }
}
