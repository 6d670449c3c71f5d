//! The route table: the one list of paths and methods the Worker serves. The router, the
//! 404/405 answers and the OpenAPI document's completeness test all read it.

use crate::error::{Error, Result};
use crate::http::Method;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Health,
    OAuthStart,
    OAuthCallback,
    ListAccounts,
    DeleteAccount,
    ListConversations,
    ListMessages,
    MessageMedia,
    WebhookReceive,
    WebhookChallenge,
    GetRules,
    TestRules,
    GetHandoff,
    SetHandoff,
    PutRules,
    DeleteRules,
    ListFailedEvents,
    ReplayEvent,
    SendMessage,
    PutSubscription,
    GetSubscription,
    DeleteSubscription,
}

#[derive(Debug)]
pub struct RouteDef {
    /// Path with `{name}` placeholders for single segments.
    pub pattern: &'static str,
    pub methods: &'static [(Method, Endpoint)],
}

pub const ROUTES: &[RouteDef] = &[
    RouteDef {
        pattern: "/health",
        methods: &[(Method::Get, Endpoint::Health)],
    },
    RouteDef {
        pattern: "/oauth/start",
        methods: &[(Method::Get, Endpoint::OAuthStart)],
    },
    RouteDef {
        pattern: "/oauth/callback",
        methods: &[(Method::Get, Endpoint::OAuthCallback)],
    },
    // The redirect URI registered with TikTok ends with a slash (see `oauth::redirect_uri`).
    RouteDef {
        pattern: "/oauth/callback/",
        methods: &[(Method::Get, Endpoint::OAuthCallback)],
    },
    RouteDef {
        pattern: "/v1/accounts",
        methods: &[(Method::Get, Endpoint::ListAccounts)],
    },
    RouteDef {
        pattern: "/v1/accounts/{id}",
        methods: &[(Method::Delete, Endpoint::DeleteAccount)],
    },
    RouteDef {
        pattern: "/v1/conversations",
        methods: &[(Method::Get, Endpoint::ListConversations)],
    },
    RouteDef {
        pattern: "/webhooks/tiktok",
        methods: &[
            (Method::Post, Endpoint::WebhookReceive),
            (Method::Get, Endpoint::WebhookChallenge),
        ],
    },
    RouteDef {
        pattern: "/v1/rules/test",
        methods: &[(Method::Post, Endpoint::TestRules)],
    },
    RouteDef {
        pattern: "/v1/rules",
        methods: &[
            (Method::Get, Endpoint::GetRules),
            (Method::Put, Endpoint::PutRules),
            (Method::Delete, Endpoint::DeleteRules),
        ],
    },
    RouteDef {
        pattern: "/v1/events/failed",
        methods: &[(Method::Get, Endpoint::ListFailedEvents)],
    },
    RouteDef {
        pattern: "/v1/events/replay",
        methods: &[(Method::Post, Endpoint::ReplayEvent)],
    },
    RouteDef {
        pattern: "/v1/messages",
        methods: &[(Method::Post, Endpoint::SendMessage)],
    },
    RouteDef {
        pattern: "/v1/webhook-subscription",
        methods: &[
            (Method::Put, Endpoint::PutSubscription),
            (Method::Get, Endpoint::GetSubscription),
            (Method::Delete, Endpoint::DeleteSubscription),
        ],
    },
    RouteDef {
        pattern: "/v1/conversations/{id}/handoff",
        methods: &[
            (Method::Get, Endpoint::GetHandoff),
            (Method::Post, Endpoint::SetHandoff),
        ],
    },
    RouteDef {
        pattern: "/v1/conversations/{id}/messages",
        methods: &[(Method::Get, Endpoint::ListMessages)],
    },
    RouteDef {
        pattern: "/v1/conversations/{id}/messages/{message_id}/media",
        methods: &[(Method::Get, Endpoint::MessageMedia)],
    },
];

/// Longest accepted path parameter, after percent-decoding.
const MAX_PARAM_LEN: usize = 512;

/// Matches `path` against one pattern, returning decoded parameters.
fn match_pattern(pattern: &str, path: &str) -> Result<Option<Vec<String>>> {
    let mut params = Vec::new();
    let mut pat = pattern.split('/');
    let mut segs = path.split('/');
    loop {
        match (pat.next(), segs.next()) {
            (None, None) => return Ok(Some(params)),
            (Some(p), Some(s)) if p.starts_with('{') => {
                if s.is_empty() {
                    return Ok(None);
                }
                params.push(decode_param(&p[1..p.len() - 1], s)?);
            }
            (Some(p), Some(s)) if p == s => {}
            _ => return Ok(None),
        }
    }
}

fn decode_param(name: &str, raw: &str) -> Result<String> {
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| Error::invalid(name, "is not valid UTF-8 after percent-decoding"))?;
    if decoded.len() > MAX_PARAM_LEN {
        return Err(Error::invalid(
            name,
            format!("is longer than {MAX_PARAM_LEN} bytes"),
        ));
    }
    if decoded.chars().any(char::is_control) {
        return Err(Error::invalid(name, "contains control characters"));
    }
    Ok(decoded.into_owned())
}

/// Finds the endpoint for a request. HEAD is served as GET. One trailing slash is ignored.
pub fn resolve(method: Method, path: &str) -> Result<(Endpoint, Vec<String>)> {
    let path = match path.strip_suffix('/') {
        Some(p) if !p.is_empty() => p,
        _ => path,
    };
    let wanted = if method == Method::Head {
        Method::Get
    } else {
        method
    };
    for route in ROUTES {
        if let Some(params) = match_pattern(route.pattern, path)? {
            return match route.methods.iter().find(|(m, _)| *m == wanted) {
                Some((_, ep)) => Ok((*ep, params)),
                None => Err(Error::MethodNotAllowed {
                    method: method.as_str().to_string(),
                    allowed: route.methods.iter().map(|(m, _)| m.as_str()).collect(),
                }),
            };
        }
    }
    Err(Error::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_known_routes_and_head() {
        assert_eq!(resolve(Method::Get, "/health").unwrap().0, Endpoint::Health);
        assert_eq!(
            resolve(Method::Head, "/health/").unwrap().0,
            Endpoint::Health
        );
    }

    #[test]
    fn unknown_is_404_and_wrong_method_is_405_with_allow_list() {
        assert!(matches!(
            resolve(Method::Get, "/nope"),
            Err(Error::NotFound)
        ));
        assert!(matches!(
            resolve(Method::Get, "/health/x"),
            Err(Error::NotFound)
        ));
        match resolve(Method::Post, "/health") {
            Err(Error::MethodNotAllowed { allowed, .. }) => assert_eq!(allowed, vec!["GET"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn params_are_decoded_and_checked() {
        let p = match_pattern("/a/{id}/b", "/a/x%2By+z/b").unwrap().unwrap();
        assert_eq!(p, vec!["x+y+z"]);
        assert!(match_pattern("/a/{id}", "/a/%ff").is_err());
        assert!(match_pattern("/a/{id}", "/a/%0a").is_err());
        assert!(match_pattern("/a/{id}", "/a/").unwrap().is_none());
    }
}
