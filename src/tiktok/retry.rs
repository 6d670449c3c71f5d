//! The one home of retries against TikTok: which errors are worth another try, bounded
//! jittered backoff, and running a call again with a refreshed token when TikTok rejects one.

use crate::error::{Error, Result, UpstreamFailure};
use crate::http::ctx::Ctx;
use crate::ports::{Level, Platform};
use crate::tiktok::codes::ApiCode;

/// TikTok refused the access token (40102 expired, 40105 invalid): refresh and try once more.
pub(crate) fn is_token_rejected(e: &Error) -> bool {
    e.api_code().is_some_and(ApiCode::wants_refresh)
}

/// Runs `op` with the account's access token; if TikTok rejects the token (40102 expired,
/// 40105 invalid), gets a refreshed one (single-flight in the coordinator) and runs `op` once
/// more. The one refresh-and-retry path of every call to TikTok that uses a token.
pub async fn with_fresh_token<P: Platform, T>(
    p: &P,
    account: &str,
    op: impl AsyncFn(&str) -> Result<T>,
) -> Result<T> {
    let token = p.access_token(account, None).await?;
    match op(token.expose()).await {
        Err(e) if is_token_rejected(&e) => {
            p.log(
                Level::Warn,
                "access token rejected; refreshing",
                crate::json::object!({"account_id": account}),
            );
            let fresh = p.access_token(account, Some(token.expose())).await?;
            op(fresh.expose()).await
        }
        other => other,
    }
}

/// [`with_fresh_token`] for a request handler.
pub async fn with_token<P: Platform, T>(
    ctx: &Ctx<'_, P>,
    account: &str,
    op: impl AsyncFn(&str) -> Result<T>,
) -> Result<T> {
    with_fresh_token(ctx.p, account, op).await
}

pub(crate) fn only_transient(e: &Error) -> bool {
    crate::tiktok::retry::retryable(e)
        && !matches!(
            e,
            Error::Upstream {
                failure: UpstreamFailure::Api { code: 40100, .. },
                ..
            }
        )
}

/// Retries 51065, 5xx and timeouts (not 40100: the caller gets 429 and decides).
pub(crate) async fn transient_retries<P: Platform, T>(
    p: &P,
    op: impl AsyncFn() -> Result<T>,
) -> Result<T> {
    crate::tiktok::retry::retry_while(p, only_transient, op)
        .await
        .map_err(|(e, _)| e)
}

/// Attempts per idempotent outbound call, and per send while TikTok answers with a transient
/// error code (first try included).
pub const ATTEMPTS: u32 = 4;

/// Backoff before retry `n` (1-based): 250 ms × 3^(n-1), ±50 % jitter, at most 4 s.
pub fn backoff_ms(n: u32, jitter: u8) -> u64 {
    let base = (250u64 * 3u64.pow(n.saturating_sub(1).min(4))).min(4_000);
    base / 2 + base * jitter as u64 / 255
}

// ---------- receiving ----------

/// Whether trying again later may succeed.
pub fn retryable(e: &Error) -> bool {
    match e {
        Error::Upstream { failure, .. } => match failure {
            UpstreamFailure::Api { code, .. } => ApiCode::from_code(*code).is_transient(),
            UpstreamFailure::Http { status } => *status >= 500 || *status == 429,
            UpstreamFailure::Timeout
            | UpstreamFailure::Unreachable
            | UpstreamFailure::Malformed => true,
        },
        _ => false,
    }
}

/// Runs `op` up to [`ATTEMPTS`] times while it fails with a [`retryable`] error.
pub async fn with_retries<P: crate::ports::Clock + crate::ports::Rng, T>(
    p: &P,
    op: impl AsyncFn() -> Result<T>,
) -> std::result::Result<T, (Error, u32)> {
    retry_while(p, retryable, op).await
}

/// Runs `op` up to [`ATTEMPTS`] times, with jittered backoff, while it fails with an error
/// `again` accepts; the error is returned with the number of attempts made.
pub async fn retry_while<P: crate::ports::Clock + crate::ports::Rng, T>(
    p: &P,
    again: impl Fn(&Error) -> bool,
    op: impl AsyncFn() -> Result<T>,
) -> std::result::Result<T, (Error, u32)> {
    let mut attempt = 1;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if again(&e) && attempt < ATTEMPTS => {
                let mut j = [0u8; 1];
                p.fill(&mut j);
                p.sleep(backoff_ms(attempt, j[0])).await;
                attempt += 1;
            }
            Err(e) => return Err((e, attempt)),
        }
    }
}

// ---------- forwarding ----------

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn retry_classification() {
        let api = |code| Error::Upstream {
            endpoint: "x",
            failure: UpstreamFailure::Api {
                code,
                message: String::new(),
            },
            request_id: None,
        };
        let http = |status| Error::Upstream {
            endpoint: "x",
            failure: UpstreamFailure::Http { status },
            request_id: None,
        };
        assert!(retryable(&api(51065)) && retryable(&api(40100)));
        assert!(!retryable(&api(40064)) && !retryable(&api(40002)) && !retryable(&api(40105)));
        assert!(retryable(&http(500)) && retryable(&http(503)) && retryable(&http(429)));
        assert!(!retryable(&http(404)));
        assert!(!retryable(&Error::NotFound));
    }

    #[test]
    fn backoff_grows_with_jitter_and_a_cap() {
        assert_eq!(backoff_ms(1, 0), 125);
        assert_eq!(backoff_ms(1, 255), 375);
        assert_eq!(backoff_ms(3, 255), 3_375);
        assert_eq!(backoff_ms(9, 255), 6_000);
    }
}
