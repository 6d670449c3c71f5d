//! The inbox's page cursors: opaque to clients (base64url), a position in the store's order.

use super::history::{ConversationCursor, MessageCursor};
use crate::b64::URL_SAFE_NO_PAD;
use crate::error::{Error, Result};

/// Longest cursor accepted (a conversation id is at most 256 bytes).
const MAX_CURSOR: usize = 400;

fn bad() -> Error {
    Error::invalid(
        "cursor",
        "is not a cursor this listing gave (start again without it)",
    )
}

fn open(raw: &str, kind: char) -> Result<String> {
    if raw.len() > MAX_CURSOR {
        return Err(bad());
    }
    let text = URL_SAFE_NO_PAD
        .decode(raw)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(bad)?;
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(k), Some(':')) if k == kind => Ok(chars.as_str().to_string()),
        _ => Err(bad()),
    }
}

pub fn conversations(c: &ConversationCursor) -> String {
    URL_SAFE_NO_PAD.encode(format!("c:{}:{}", c.last_ms, c.id))
}

pub fn read_conversations(raw: &str) -> Result<ConversationCursor> {
    let text = open(raw, 'c')?;
    let (ms, id) = text.split_once(':').ok_or_else(bad)?;
    Ok(ConversationCursor {
        last_ms: ms.parse().map_err(|_| bad())?,
        id: id.to_string(),
    })
}

pub fn messages(c: &MessageCursor) -> String {
    URL_SAFE_NO_PAD.encode(format!("m:{}:{}", c.at_ms, c.seq))
}

pub fn read_messages(raw: &str) -> Result<MessageCursor> {
    let text = open(raw, 'm')?;
    let (at, seq) = text.split_once(':').ok_or_else(bad)?;
    Ok(MessageCursor {
        at_ms: at.parse().map_err(|_| bad())?,
        seq: seq.parse().map_err(|_| bad())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_read_back_and_foreign_ones_are_refused() {
        let c = ConversationCursor {
            last_ms: 17,
            id: "a9Fk2Lq+T7x:B3/==".into(),
        };
        assert_eq!(read_conversations(&conversations(&c)).unwrap(), c);
        let m = MessageCursor { at_ms: 5, seq: 99 };
        assert_eq!(read_messages(&messages(&m)).unwrap(), m);
        for bad in [
            "",
            "%%%",
            &messages(&m),
            &URL_SAFE_NO_PAD.encode("c:x:y"),
            &"a".repeat(500),
        ] {
            let e = read_conversations(bad).unwrap_err();
            assert_eq!(e.code(), "invalid_request", "{bad}");
        }
        assert!(read_messages(&conversations(&c)).is_err());
        assert!(read_messages(&URL_SAFE_NO_PAD.encode("m:1:-2")).is_err());
    }
}
