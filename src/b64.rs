//! Base64 (RFC 4648) in the four forms the Worker uses, reading and writing exactly as the
//! `base64` crate's `general_purpose` engines do: padding written by the padded forms and
//! required there in canonical form, refused by the others; non-zero trailing bits refused.
//! The crate's engines (tables, unrolled loops, error positions) were about 6 KiB of `.wasm`
//! for a few short strings.

/// One alphabet, with or without padding.
#[derive(Clone, Copy)]
pub struct Engine {
    /// The two symbols after `A-Z`, `a-z` and `0-9`.
    last: [u8; 2],
    pad: bool,
}

pub const STANDARD: Engine = Engine {
    last: *b"+/",
    pad: true,
};
pub const STANDARD_NO_PAD: Engine = Engine {
    last: *b"+/",
    pad: false,
};
pub const URL_SAFE: Engine = Engine {
    last: *b"-_",
    pad: true,
};
pub const URL_SAFE_NO_PAD: Engine = Engine {
    last: *b"-_",
    pad: false,
};

/// Text that is not base64 of this form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid;

impl Engine {
    pub fn encode(self, bytes: impl AsRef<[u8]>) -> String {
        self.encode_bytes(bytes.as_ref())
    }

    pub fn decode(self, text: impl AsRef<[u8]>) -> Result<Vec<u8>, Invalid> {
        self.decode_bytes(text.as_ref())
    }

    fn symbol(self, value: u32) -> char {
        let v = (value & 63) as u8;
        (match v {
            0..=25 => b'A' + v,
            26..=51 => b'a' + (v - 26),
            52..=61 => b'0' + (v - 52),
            _ => self.last[usize::from(v - 62)],
        }) as char
    }

    fn value(self, symbol: u8) -> Result<u32, Invalid> {
        Ok(u32::from(match symbol {
            b'A'..=b'Z' => symbol - b'A',
            b'a'..=b'z' => symbol - b'a' + 26,
            b'0'..=b'9' => symbol - b'0' + 52,
            s if s == self.last[0] => 62,
            s if s == self.last[1] => 63,
            _ => return Err(Invalid),
        }))
    }

    fn encode_bytes(self, bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
            for i in 0..=chunk.len() {
                out.push(self.symbol(n >> (18 - 6 * i)));
            }
            if self.pad {
                for _ in chunk.len()..3 {
                    out.push('=');
                }
            }
        }
        out
    }

    fn decode_bytes(self, mut text: &[u8]) -> Result<Vec<u8>, Invalid> {
        if self.pad {
            // Whole groups of four, the last one ending in at most two `=`.
            if !text.len().is_multiple_of(4) {
                return Err(Invalid);
            }
            for _ in 0..2 {
                if let [rest @ .., b'='] = text {
                    text = rest;
                }
            }
        }
        // One symbol alone carries no whole byte.
        if text.len() % 4 == 1 {
            return Err(Invalid);
        }
        let mut out = Vec::with_capacity(text.len() / 4 * 3 + 2);
        let (mut acc, mut bits) = (0u32, 0u32);
        for &symbol in text {
            acc = acc << 6 | self.value(symbol)?;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
                acc &= (1 << bits) - 1;
            }
        }
        // The bits of the last symbol beyond the last byte must be zero.
        if acc != 0 {
            return Err(Invalid);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose as gp;
    use base64::Engine as _;
    use proptest::prelude::*;

    fn pairs() -> [(Engine, base64::engine::GeneralPurpose); 4] {
        [
            (STANDARD, gp::STANDARD),
            (STANDARD_NO_PAD, gp::STANDARD_NO_PAD),
            (URL_SAFE, gp::URL_SAFE),
            (URL_SAFE_NO_PAD, gp::URL_SAFE_NO_PAD),
        ]
    }

    #[test]
    fn known_values() {
        assert_eq!(STANDARD.encode(b"foob"), "Zm9vYg==");
        assert_eq!(URL_SAFE_NO_PAD.encode([0xfb, 0xff]), "-_8");
        assert_eq!(STANDARD.decode("Zm9vYmE=").unwrap(), b"fooba");
        assert_eq!(STANDARD.decode("").unwrap(), b"");
        for bad in [
            "Zm9vYmE", "Zm9vYmF=", "Zm9=YmE=", "Z===", "Zg=", "Zm9vY", "Zm9v====", "Zm 9",
        ] {
            assert_eq!(STANDARD.decode(bad), Err(Invalid), "{bad}");
        }
        assert_eq!(STANDARD_NO_PAD.decode("Zm9vYmE=").unwrap_err(), Invalid);
        assert_eq!(STANDARD_NO_PAD.decode("Zm9vYmE").unwrap(), b"fooba");
    }

    proptest! {
        #[test]
        fn encodes_as_the_base64_crate(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            for (ours, theirs) in pairs() {
                prop_assert_eq!(ours.encode(&bytes), theirs.encode(&bytes));
            }
        }

        #[test]
        fn decodes_as_the_base64_crate(text in "[A-Za-z0-9+/=_-]{0,200}|[A-Za-z0-9=]{0,9}[^A-Za-z0-9]?={0,3}") {
            for (ours, theirs) in pairs() {
                prop_assert_eq!(ours.decode(&text).ok(), theirs.decode(&text).ok(), "{}", text);
            }
        }

        #[test]
        fn decodes_what_either_encodes(bytes in proptest::collection::vec(any::<u8>(), 0..300), cut in 0usize..4) {
            for (ours, theirs) in pairs() {
                let mut text = theirs.encode(&bytes);
                prop_assert_eq!(ours.decode(&text).unwrap(), bytes.clone());
                text.truncate(text.len().saturating_sub(cut));
                prop_assert_eq!(ours.decode(&text).ok(), theirs.decode(&text).ok(), "{}", text);
            }
        }

        #[test]
        fn decodes_altered_encodings_as_the_base64_crate(
            bytes in proptest::collection::vec(any::<u8>(), 1..300),
            at in any::<prop::sample::Index>(),
            to in any::<u8>(),
            tail in "[A-Za-z0-9+/=_ -]{0,3}",
        ) {
            for (ours, theirs) in pairs() {
                let mut text = theirs.encode(&bytes).into_bytes();
                let i = at.index(text.len());
                text[i] = to;
                let text = String::from_utf8_lossy(&text).into_owned() + &tail;
                prop_assert_eq!(ours.decode(&text).ok(), theirs.decode(&text).ok(), "{}", text);
            }
        }
    }
}
