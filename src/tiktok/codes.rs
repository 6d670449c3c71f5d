//! TikTok's API error codes (all arrive with HTTP 200) and what each one asks of us.

/// The codes the Worker treats specially; every other non-zero code is [`ApiCode::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiCode {
    /// 40001: no permission or a scope is missing (a new consent may grant it).
    NoPermission,
    /// 40002: a bad or missing parameter.
    InvalidParameter,
    /// 40007: the object does not exist.
    NotFound,
    /// 40064: blocked by the direct-message rules (window or quota spent, sending too fast).
    MessageBlocked,
    /// 40100: the app's rate limit.
    RateLimited,
    /// 40102: the access token expired.
    AccessTokenExpired,
    /// 40103: the refresh token expired.
    RefreshTokenExpired,
    /// 40104: no access token was sent (a bug on our side).
    AccessTokenMissing,
    /// 40105: the access token is invalid or revoked.
    AccessTokenInvalid,
    /// 40107: the refresh token is invalid.
    RefreshTokenInvalid,
    /// 40108: a bad `grant_type`.
    BadGrantType,
    /// 40110: the authorization code is cancelled, used or expired.
    AuthCodeInvalid,
    /// 40131: an OAuth failure (sources disagree on its exact meaning).
    OauthFailed,
    /// 40907: the file is too large.
    FileTooLarge,
    /// 40908: the file type is not supported.
    FileTypeUnsupported,
    /// 50000: system error.
    SystemError,
    /// 50002: an error (or timeout) on TikTok's side.
    ServiceError,
    /// 51065: internal service error.
    InternalServiceError,
    Other(i64),
}

impl ApiCode {
    pub fn from_code(code: i64) -> Self {
        match code {
            40001 => Self::NoPermission,
            40002 => Self::InvalidParameter,
            40007 => Self::NotFound,
            40064 => Self::MessageBlocked,
            40100 => Self::RateLimited,
            40102 => Self::AccessTokenExpired,
            40103 => Self::RefreshTokenExpired,
            40104 => Self::AccessTokenMissing,
            40105 => Self::AccessTokenInvalid,
            40107 => Self::RefreshTokenInvalid,
            40108 => Self::BadGrantType,
            40110 => Self::AuthCodeInvalid,
            40131 => Self::OauthFailed,
            40907 => Self::FileTooLarge,
            40908 => Self::FileTypeUnsupported,
            50000 => Self::SystemError,
            50002 => Self::ServiceError,
            51065 => Self::InternalServiceError,
            other => Self::Other(other),
        }
    }

    /// Worth trying again after a backoff: throttling and TikTok's own failures.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            Self::RateLimited | Self::SystemError | Self::ServiceError | Self::InternalServiceError
        )
    }

    /// A messaging call refused the access token: refresh once, then try again.
    pub fn wants_refresh(self) -> bool {
        matches!(self, Self::AccessTokenExpired | Self::AccessTokenInvalid)
    }

    /// A refresh call refused the grant: only a new consent helps (`needs_reauth`).
    pub fn ends_grant(self) -> bool {
        // Not 40001: a wrong app secret says so too, and must not end every account's grant.
        matches!(
            self,
            Self::RefreshTokenExpired | Self::RefreshTokenInvalid | Self::AccessTokenInvalid
        )
    }

    /// Our stable error code for it.
    pub fn error_code(self) -> &'static str {
        match self {
            Self::NoPermission => "tiktok_permission_denied",
            Self::InvalidParameter => "tiktok_invalid_parameter",
            Self::NotFound => "tiktok_not_found",
            Self::MessageBlocked => "tiktok_message_blocked",
            Self::RateLimited => "tiktok_rate_limited",
            Self::AccessTokenExpired | Self::AccessTokenInvalid | Self::AccessTokenMissing => {
                "tiktok_token_rejected"
            }
            Self::RefreshTokenExpired | Self::RefreshTokenInvalid => "tiktok_grant_ended",
            Self::AuthCodeInvalid | Self::OauthFailed | Self::BadGrantType => {
                "tiktok_authorization_failed"
            }
            Self::FileTooLarge => "tiktok_file_too_large",
            Self::FileTypeUnsupported => "tiktok_unsupported_file",
            Self::SystemError | Self::ServiceError | Self::InternalServiceError => {
                "tiktok_system_error"
            }
            Self::Other(_) => "tiktok_error",
        }
    }

    /// The HTTP status our API answers with.
    pub fn http_status(self) -> u16 {
        match self {
            Self::RateLimited => 429,
            Self::MessageBlocked => 409,
            Self::NoPermission => 403,
            Self::InvalidParameter | Self::FileTooLarge | Self::FileTypeUnsupported => 400,
            Self::NotFound => 404,
            Self::SystemError | Self::ServiceError | Self::InternalServiceError => 503,
            _ => 502,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        for c in [40100, 50000, 50002, 51065] {
            assert!(ApiCode::from_code(c).is_transient(), "{c}");
        }
        for c in [40001, 40002, 40064, 40102, 40105, 40103] {
            assert!(!ApiCode::from_code(c).is_transient(), "{c}");
        }
        assert!(ApiCode::from_code(40102).wants_refresh());
        assert!(ApiCode::from_code(40105).wants_refresh());
        assert!(!ApiCode::from_code(40103).wants_refresh());
        for c in [40103, 40107, 40105] {
            assert!(ApiCode::from_code(c).ends_grant(), "{c}");
        }
        assert!(
            !ApiCode::from_code(40001).ends_grant(),
            "a wrong app secret"
        );
        assert!(!ApiCode::from_code(51065).ends_grant());
        assert!(!ApiCode::from_code(40100).ends_grant());
        assert_eq!(ApiCode::from_code(12345), ApiCode::Other(12345));
    }
}
