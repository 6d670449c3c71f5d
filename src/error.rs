//! The one error type of the Worker and its single mapping to HTTP.
//!
//! Every failure a caller can see goes through [`Error::status`], [`Error::code`] and the
//! `Display` message, so codes stay stable and no handler invents its own error body.
//! Messages never carry secret values: variants hold names, fields and TikTok's own words only.

use crate::tiktok::codes::ApiCode;
use serde_json::{json, Value};

/// Why a TikTok call failed, as far as the caller needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamFailure {
    /// TikTok answered with a non-zero envelope `code`.
    Api { code: i64, message: String },
    /// TikTok (or something in front of it) answered with a non-2xx HTTP status.
    Http { status: u16 },
    /// The body was not the JSON envelope we expect.
    Malformed,
    /// No answer in time.
    Timeout,
    /// The connection could not be made or broke.
    Unreachable,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no route for this path")]
    NotFound,
    #[error("method {method} is not allowed here; allowed: {}", .allowed.join(", "))]
    MethodNotAllowed {
        method: String,
        allowed: Vec<&'static str>,
    },
    #[error("the Worker is not configured: {}", .problems.join("; "))]
    Config { problems: Vec<String> },
    #[error("missing or malformed credentials: {0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("webhook signature refused: {0}")]
    BadSignature(String),
    #[error("request body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("invalid `{field}`: {reason}")]
    Invalid { field: String, reason: String },
    #[error("request body exceeds {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{what} not found")]
    Missing { what: String },
    #[error("{0}")]
    Conflict(String),
    #[error("this Idempotency-Key was already used with a different request body")]
    IdempotencyMismatch,
    #[error("TikTok call `{endpoint}` failed: {}", describe_upstream(.failure))]
    Upstream {
        endpoint: &'static str,
        failure: UpstreamFailure,
        request_id: Option<String>,
    },
    #[error("account {account} must be connected again through /oauth/start (its refresh token is expired or revoked)")]
    AccountNeedsReauth { account: String },
    #[error("tokens of account {account} cannot be decrypted: {reason}")]
    Vault { account: String, reason: String },
    /// An error produced elsewhere (the account Durable Object) and passed on unchanged.
    #[error("{message}")]
    Relayed {
        status: u16,
        code: String,
        message: String,
        details: Option<Value>,
    },
    /// TikTok would refuse this request for this conversation or account (e.g. images where
    /// TikTok does not allow them); `code` is stable and documented.
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    #[error("storage failed during {0}")]
    Storage(String),
    #[error("internal error: {0}")]
    Internal(String),
}

fn describe_upstream(f: &UpstreamFailure) -> String {
    match f {
        UpstreamFailure::Api { code, message } => format!("code {code}: {message}"),
        UpstreamFailure::Http { status } => format!("HTTP {status}"),
        UpstreamFailure::Malformed => "response was not TikTok's JSON envelope".into(),
        UpstreamFailure::Timeout => "timed out".into(),
        UpstreamFailure::Unreachable => "could not connect".into(),
    }
}

impl Error {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// TikTok's error code, when TikTok answered with one.
    pub fn api_code(&self) -> Option<ApiCode> {
        match self {
            Error::Upstream {
                failure: UpstreamFailure::Api { code, .. },
                ..
            } => Some(ApiCode::from_code(*code)),
            _ => None,
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            Error::NotFound | Error::Missing { .. } => 404,
            Error::MethodNotAllowed { .. } => 405,
            Error::Config { .. } | Error::Storage(_) | Error::Internal(_) => 500,
            Error::Unauthorized(_) | Error::BadSignature(_) => 401,
            Error::Forbidden(_) => 403,
            Error::InvalidJson(_) | Error::Invalid { .. } => 400,
            Error::PayloadTooLarge { .. } => 413,
            Error::Conflict(_) | Error::AccountNeedsReauth { .. } => 409,
            Error::IdempotencyMismatch | Error::Refused { .. } => 422,
            Error::Vault { .. } => 500,
            Error::Relayed { status, .. } => *status,
            Error::Upstream { failure, .. } => match failure {
                UpstreamFailure::Timeout => 504,
                UpstreamFailure::Api { code, .. } => ApiCode::from_code(*code).http_status(),
                _ => 502,
            },
        }
    }

    /// The stable, documented machine-readable code.
    pub fn code(&self) -> &str {
        match self {
            Error::NotFound => "not_found",
            Error::Missing { .. } => "not_found",
            Error::MethodNotAllowed { .. } => "method_not_allowed",
            Error::Config { .. } => "config_error",
            Error::Unauthorized(_) => "unauthorized",
            Error::Forbidden(_) => "forbidden",
            Error::BadSignature(_) => "invalid_signature",
            Error::InvalidJson(_) => "invalid_json",
            Error::Invalid { .. } => "invalid_request",
            Error::PayloadTooLarge { .. } => "payload_too_large",
            Error::Conflict(_) => "conflict",
            Error::IdempotencyMismatch => "idempotency_key_reused",
            Error::Refused { code, .. } => code,
            Error::AccountNeedsReauth { .. } => "account_needs_reauth",
            Error::Vault { .. } => "vault_unreadable",
            Error::Relayed { code, .. } => code,
            Error::Upstream { failure, .. } => match failure {
                UpstreamFailure::Timeout => "tiktok_timeout",
                UpstreamFailure::Unreachable => "tiktok_unreachable",
                UpstreamFailure::Malformed => "tiktok_malformed_response",
                UpstreamFailure::Http { .. } => "tiktok_http_error",
                UpstreamFailure::Api { code, .. } => ApiCode::from_code(*code).error_code(),
            },
            Error::Storage(_) => "storage_error",
            Error::Internal(_) => "internal_error",
        }
    }

    /// Extra structured details for the error body, when the variant has some.
    fn details(&self) -> Option<Value> {
        match self {
            Error::Invalid { field, .. } => Some(crate::json::object!({ "field": field })),
            Error::MethodNotAllowed { allowed, .. } => {
                Some(crate::json::object!({ "allowed": allowed }))
            }
            Error::AccountNeedsReauth { account } => {
                Some(crate::json::object!({ "account_id": account }))
            }
            Error::Relayed { details, .. } => details.clone(),
            Error::Upstream {
                endpoint,
                failure,
                request_id,
            } => {
                let mut d =
                    crate::json::object!({ "endpoint": endpoint, "tiktok_request_id": request_id });
                if let UpstreamFailure::Api { code, .. } = failure {
                    d["tiktok_code"] = json!(code);
                }
                if *endpoint == "/business/message/send/" && is_ambiguous(self) {
                    // The message may have reached the customer: retry with the same
                    // Idempotency-Key, which looks for it at TikTok before sending again.
                    d["outcome"] = json!("unknown");
                }
                Some(d)
            }
            _ => None,
        }
    }

    /// The JSON body every error response carries.
    pub fn body(&self, request_id: &str) -> Value {
        let mut err = crate::json::object!({
            "code": self.code(),
            "message": self.to_string(),
            "request_id": request_id,
        });
        if let Some(d) = self.details() {
            err["details"] = d;
        }
        crate::json::object!({ "error": err })
    }

    /// Rebuilds an error from a JSON error body (as produced by [`Error::body`]).
    pub fn from_body(status: u16, body: &[u8]) -> Self {
        let v: Value = crate::json::from_slice(body).unwrap_or(Value::Null);
        let e = &v["error"];
        match (e["code"].as_str(), e["message"].as_str()) {
            (Some(code), Some(message)) => Error::Relayed {
                status,
                code: code.to_string(),
                message: message.to_string(),
                details: e.get("details").cloned(),
            },
            _ => Error::Internal(format!("unexpected internal answer (HTTP {status})")),
        }
    }

    /// Whether this is the server's fault (logged at error level) rather than the caller's.
    pub fn is_server_side(&self) -> bool {
        self.status() >= 500
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Whether an error leaves the outcome of a send unknown.
pub fn is_ambiguous(e: &Error) -> bool {
    matches!(
        e,
        Error::Upstream {
            failure: UpstreamFailure::Timeout
                | UpstreamFailure::Unreachable
                | UpstreamFailure::Malformed
                | UpstreamFailure::Http { .. },
            ..
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_code_message_and_request_id() {
        let e = Error::invalid("text", "must be 1..=6000 characters");
        let b = e.body("req-1");
        assert_eq!(b["error"]["code"], "invalid_request");
        assert_eq!(
            b["error"]["message"],
            "invalid `text`: must be 1..=6000 characters"
        );
        assert_eq!(b["error"]["request_id"], "req-1");
        assert_eq!(b["error"]["details"]["field"], "text");
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn statuses_per_variant() {
        let cases: Vec<(Error, u16, &str)> = vec![
            (Error::NotFound, 404, "not_found"),
            (
                Error::MethodNotAllowed {
                    method: "PATCH".into(),
                    allowed: vec!["GET"],
                },
                405,
                "method_not_allowed",
            ),
            (
                Error::Config {
                    problems: vec!["missing secret X".into()],
                },
                500,
                "config_error",
            ),
            (Error::Unauthorized("no key"), 401, "unauthorized"),
            (
                Error::PayloadTooLarge { limit: 10 },
                413,
                "payload_too_large",
            ),
            (
                Error::Upstream {
                    endpoint: "send",
                    failure: UpstreamFailure::Timeout,
                    request_id: None,
                },
                504,
                "tiktok_timeout",
            ),
            (
                Error::Upstream {
                    endpoint: "send",
                    failure: UpstreamFailure::Http { status: 503 },
                    request_id: None,
                },
                502,
                "tiktok_http_error",
            ),
            (
                Error::Upstream {
                    endpoint: "send",
                    failure: UpstreamFailure::Api {
                        code: 40100,
                        message: "slow down".into(),
                    },
                    request_id: None,
                },
                429,
                "tiktok_rate_limited",
            ),
        ];
        for (e, status, code) in cases {
            assert_eq!(e.status(), status, "{e:?}");
            assert_eq!(e.code(), code, "{e:?}");
        }
    }

    #[test]
    fn upstream_body_carries_tiktok_request_id_and_code() {
        let e = Error::Upstream {
            endpoint: "send",
            failure: UpstreamFailure::Api {
                code: 40002,
                message: "bad".into(),
            },
            request_id: Some("tt-req".into()),
        };
        let b = e.body("r");
        assert_eq!(b["error"]["details"]["tiktok_request_id"], "tt-req");
        assert_eq!(b["error"]["details"]["tiktok_code"], 40002);
    }
}
