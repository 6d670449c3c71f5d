//! `application/x-www-form-urlencoded`, as the WHATWG URL standard defines it: query strings
//! and TikTok's form bodies. Our own (on `percent-encoding`) so the `.wasm` needs no `url` crate;
//! property tests hold both directions to the `form_urlencoded` crate.

use percent_encoding::{percent_decode, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::borrow::Cow;

/// Bytes the serializer percent-encodes: all but ASCII alphanumerics and `*-._` (space, which
/// becomes `+`, is split off before).
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'*')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_');

/// `name=value` pairs joined by `&`, each side encoded (space as `+`).
pub fn serialize(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (name, value) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        push_encoded(&mut out, name);
        out.push('=');
        push_encoded(&mut out, value);
    }
    out
}

fn push_encoded(out: &mut String, s: &str) {
    for (i, chunk) in s.split(' ').enumerate() {
        if i > 0 {
            out.push('+');
        }
        out.extend(utf8_percent_encode(chunk, FORM));
    }
}

/// The pairs of `input`: split at `&` (empty pieces skipped), then at the first `=`; `+` is a
/// space, `%XX` a byte, and invalid UTF-8 becomes U+FFFD. Borrows when nothing is decoded.
pub fn parse(input: &[u8]) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    input
        .split(|&b| b == b'&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (name, value) = match piece.iter().position(|&b| b == b'=') {
                Some(i) => (&piece[..i], &piece[i + 1..]),
                None => (piece, &piece[piece.len()..]),
            };
            (decode(name), decode(value))
        })
}

fn decode(input: &[u8]) -> Cow<'_, str> {
    let bytes: Cow<'_, [u8]> = if input.contains(&b'+') {
        let spaced: Vec<u8> = input
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        Cow::Owned(percent_decode(&spaced).collect())
    } else {
        percent_decode(input).into()
    };
    match bytes {
        Cow::Borrowed(b) => String::from_utf8_lossy(b),
        Cow::Owned(v) => Cow::Owned(
            String::from_utf8(v)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ours(input: &[u8]) -> Vec<(String, String)> {
        parse(input)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    fn theirs(input: &[u8]) -> Vec<(String, String)> {
        url::form_urlencoded::parse(input).into_owned().collect()
    }

    #[test]
    fn known_cases() {
        assert_eq!(
            serialize(&[("a b", "c+d&e=f"), ("é", "*-._~!")]),
            "a+b=c%2Bd%26e%3Df&%C3%A9=*-._%7E%21"
        );
        assert_eq!(serialize(&[]), "");
        assert_eq!(
            ours(b"a=1&&b&=x&c=%zz%41+%2B&d=%FF"),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "".into()),
                ("".into(), "x".into()),
                ("c".into(), "%zzA +".into()),
                ("d".into(), "\u{FFFD}".into()),
            ]
        );
    }

    /// Strings rich in what the format treats specially.
    fn form_text() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just("+".to_string()),
                Just("%".to_string()),
                Just("&".to_string()),
                Just("=".to_string()),
                Just(" ".to_string()),
                "[0-9a-fA-F%]{1,3}",
                any::<char>().prop_map(String::from),
            ],
            0..12,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        #[test]
        fn serializes_like_form_urlencoded(pairs in proptest::collection::vec((form_text(), form_text()), 0..5)) {
            let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let want = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&borrowed).finish();
            prop_assert_eq!(serialize(&borrowed), want);
        }

        #[test]
        fn parses_text_like_form_urlencoded(s in form_text()) {
            prop_assert_eq!(ours(s.as_bytes()), theirs(s.as_bytes()));
        }

        #[test]
        fn parses_bytes_like_form_urlencoded(b in proptest::collection::vec(
            prop_oneof![Just(b'+'), Just(b'%'), Just(b'&'), Just(b'='), Just(b'A'), Just(b'f'), any::<u8>()], 0..40)) {
            prop_assert_eq!(ours(&b), theirs(&b));
        }

        #[test]
        fn round_trips(pairs in proptest::collection::vec((form_text(), form_text()), 0..5)) {
            let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let back = ours(serialize(&borrowed).as_bytes());
            // Pairs with both sides empty serialize to `=`, which parses back as one empty pair.
            prop_assert_eq!(back, pairs);
        }
    }
}
