//! An actor's answer to the Worker over Durable Object RPC, as one string: the three digits of
//! the HTTP status that `fetch` would have answered with, then the same JSON body (the
//! [`Reply`] on 200, the error body of [`Error::body`] otherwise). One string crosses the RPC
//! boundary, where an object or a response would build more garbage on both sides.

use super::protocol::Reply;
use crate::error::{Error, Result};

/// A successful answer.
pub fn encode_reply(reply: &Reply) -> String {
    let mut out = String::from("200");
    match serde_json::to_string(reply) {
        Ok(json) => out.push_str(&json),
        Err(e) => return encode_error(&Error::Internal(format!("actor answer: {e}")), "actor"),
    }
    out
}

/// A failed one, with the status and body the error has everywhere else.
pub fn encode_error(e: &Error, request_id: &str) -> String {
    format!("{:03}{}", e.status().min(999), e.body(request_id))
}

/// Reads an answer back: the reply, or the error the actor answered with.
pub fn decode(answer: &str) -> Result<Reply> {
    let (status, body) = match answer.get(..3).map(|s| (s.parse::<u16>(), &answer[3..])) {
        Some((Ok(status), body)) => (status, body),
        _ => return Err(Error::Internal("account actor: malformed answer".into())),
    };
    if status != 200 {
        return Err(Error::from_body(status, body.as_bytes()));
    }
    crate::json::from_slice(body.as_bytes())
        .map_err(|e| Error::Internal(format!("account actor answer: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_reads_back_the_same() {
        let reply = Reply::Fresh { fresh: true };
        let answer = encode_reply(&reply);
        assert!(answer.starts_with("200{"), "{answer}");
        assert!(decode(&answer).unwrap() == reply);
    }

    #[test]
    fn an_error_keeps_its_status_code_and_message() {
        let e = Error::Conflict("already connected".into());
        let answer = encode_error(&e, "rid-1");
        assert!(answer.starts_with("409{"), "{answer}");
        match decode(&answer) {
            Err(Error::Relayed {
                status,
                code,
                message,
                ..
            }) => {
                assert_eq!(status, 409);
                assert_eq!(code, e.code());
                assert_eq!(message, e.to_string());
            }
            other => panic!("{:?}", other.err()),
        }
    }

    #[test]
    fn a_malformed_answer_is_an_internal_error() {
        for bad in ["", "20", "abc{}", "2x0{}", "200not json", "é00{}"] {
            assert!(
                matches!(decode(bad), Err(Error::Internal(_))),
                "{bad:?} was accepted"
            );
        }
    }
}
