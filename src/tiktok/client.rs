//! A TikTok Business API client over the [`Transport`] port: builds each request exactly as
//! TikTok expects (trailing slashes, `Access-Token` header, encoded query values) and turns the
//! `{code, message, request_id, data}` envelope into `Result`.
//!
//! Nothing here logs: bodies carry tokens and the app secret.

use super::types::{
    ApiEnvelope, BusinessProfile, Capabilities, ConversationPage, MediaDownload, MessagePage,
    Outgoing, SendBody, Sent, TokenGrant, TokenInfo, Uploaded, WebhookConfig,
};
use crate::error::{Error, Result, UpstreamFailure};
use crate::http::{Headers, Method, Outbound};
use crate::ports::{Transport, TransportError};
use crate::secret::Secret;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The TikTok app's identity, used by token and webhook-subscription calls.
#[derive(Debug, Clone, Copy)]
pub struct AppCredentials<'a> {
    pub client_key: &'a str,
    pub client_secret: &'a Secret,
}

/// Per-call deadline: TikTok usually answers in well under a second.
#[cfg_attr(not(test), allow(dead_code))] // the deadline the edge applies, checked by tests
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;

pub struct Client<'a, T: Transport> {
    transport: &'a T,
    /// API base without trailing slash, e.g. `https://business-api.tiktok.com/open_api/v1.3`.
    base: &'a str,
    pub timeout_ms: u64,
}

/// Conversation list filter TikTok accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversationType {
    Stranger,
    Single,
}

impl ConversationType {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "STRANGER" => Some(Self::Stranger),
            "SINGLE" => Some(Self::Single),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stranger => "STRANGER",
            Self::Single => "SINGLE",
        }
    }
}

#[cfg_attr(not(test), allow(dead_code))] // the contract tests build clients for any base and check tokens
impl<'a, T: Transport> Client<'a, T> {
    pub fn new(transport: &'a T, base: &'a str) -> Self {
        Client {
            transport,
            base,
            timeout_ms: DEFAULT_TIMEOUT_MS,
        }
    }

    /// A client for the configured API base and per-call deadline.
    pub fn for_config(transport: &'a T, cfg: &'a crate::config::Config) -> Self {
        Client {
            transport,
            base: &cfg.api_base,
            timeout_ms: cfg.tiktok_timeout_ms,
        }
    }

    /// `POST /tt_user/oauth2/token/`: `code` must already be URL-decoded once.
    pub async fn exchange_code(
        &self,
        app: AppCredentials<'_>,
        code: &str,
        redirect_uri: &str,
    ) -> Result<TokenGrant> {
        let body = crate::json::object!({
            "client_id": app.client_key, "client_secret": app.client_secret.expose(),
            "grant_type": "authorization_code", "auth_code": code, "redirect_uri": redirect_uri,
        });
        self.post_json("/tt_user/oauth2/token/", None, &body).await
    }

    /// `POST /tt_user/oauth2/refresh_token/`. The grant carries a rotated refresh token.
    pub async fn refresh(
        &self,
        app: AppCredentials<'_>,
        refresh_token: &str,
    ) -> Result<TokenGrant> {
        let body = crate::json::object!({
            "client_id": app.client_key, "client_secret": app.client_secret.expose(),
            "grant_type": "refresh_token", "refresh_token": refresh_token,
        });
        self.post_json("/tt_user/oauth2/refresh_token/", None, &body)
            .await
    }

    /// `POST /tt_user/oauth2/revoke/`: ends the grant the access token belongs to.
    pub async fn revoke(&self, app: AppCredentials<'_>, access_token: &str) -> Result<()> {
        let body = crate::json::object!({
            "client_id": app.client_key, "client_secret": app.client_secret.expose(),
            "access_token": access_token,
        });
        self.post_json::<Value>("/tt_user/oauth2/revoke/", None, &body)
            .await
            .map(drop)
    }

    /// `POST /tt_user/token_info/get/`: the scopes and owner of an access token.
    pub async fn token_info(
        &self,
        app: AppCredentials<'_>,
        access_token: &str,
    ) -> Result<TokenInfo> {
        let body = crate::json::object!({"app_id": app.client_key, "access_token": access_token});
        self.post_json("/tt_user/token_info/get/", None, &body)
            .await
    }

    /// `GET /business/get/`: the business's own username, display name and avatar.
    pub async fn business_profile(
        &self,
        token: &str,
        business_id: &str,
    ) -> Result<BusinessProfile> {
        let q = [
            ("business_id", business_id),
            ("fields", r#"["username","display_name","profile_image"]"#),
        ];
        self.get("/business/get/", token, &q).await
    }

    /// `POST /business/message/send/`.
    pub async fn send(
        &self,
        token: &str,
        business_id: &str,
        conversation_id: &str,
        msg: &Outgoing,
    ) -> Result<Sent> {
        let body = SendBody::new(business_id, conversation_id, msg);
        self.post_json("/business/message/send/", Some(token), &body)
            .await
    }

    /// `POST /business/message/media/upload/` (multipart): returns the `media_id`.
    pub async fn upload_image(
        &self,
        token: &str,
        business_id: &str,
        bytes: &[u8],
        content_type: &str,
    ) -> Result<String> {
        let (boundary, body) = multipart(business_id, bytes, content_type);
        let headers = Headers::new().with("access-token", token).with(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        );
        let data: Uploaded = self
            .call(
                "/business/message/media/upload/",
                Method::Post,
                headers,
                Some(body),
                &[],
            )
            .await?;
        Ok(data.media_id)
    }

    /// `POST /business/message/media/download/`: a download URL valid 24 h, to be fetched
    /// with the access token in `x-user`.
    pub async fn media_download(
        &self,
        token: &str,
        business_id: &str,
        conversation_id: &str,
        message_id: &str,
        media_id: &str,
        media_type: &str,
    ) -> Result<MediaDownload> {
        let body = crate::json::object!({
            "business_id": business_id, "conversation_id": conversation_id,
            "message_id": message_id, "media_id": media_id, "media_type": media_type,
        });
        self.post_json("/business/message/media/download/", Some(token), &body)
            .await
    }

    /// `GET /business/message/capabilities/get/` for `IMAGE_SEND` in one conversation.
    pub async fn image_capability(
        &self,
        token: &str,
        business_id: &str,
        conversation_id: &str,
        kind: ConversationType,
    ) -> Result<bool> {
        let q = [
            ("business_id", business_id),
            ("capability_types", r#"["IMAGE_SEND"]"#),
            ("conversation_id", conversation_id),
            ("conversation_type", kind.as_str()),
        ];
        let caps: Capabilities = self
            .get("/business/message/capabilities/get/", token, &q)
            .await?;
        Ok(caps.allows("IMAGE_SEND"))
    }

    /// `GET /business/message/conversation/list/` (`limit` 1..=100).
    pub async fn list_conversations(
        &self,
        token: &str,
        business_id: &str,
        kind: ConversationType,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<ConversationPage> {
        let limit = limit.map(|l| l.to_string());
        let mut q = vec![
            ("business_id", business_id),
            ("conversation_type", kind.as_str()),
        ];
        q.extend(cursor.map(|c| ("cursor", c)));
        q.extend(limit.as_deref().map(|l| ("limit", l)));
        self.get("/business/message/conversation/list/", token, &q)
            .await
    }

    /// `GET /business/message/content/list/`: the 20 latest messages and the participants.
    pub async fn list_messages(
        &self,
        token: &str,
        business_id: &str,
        conversation_id: &str,
    ) -> Result<MessagePage> {
        let q = [
            ("business_id", business_id),
            ("conversation_id", conversation_id),
        ];
        self.get("/business/message/content/list/", token, &q).await
    }

    /// `POST /business/webhook/update/` for `DIRECT_MESSAGE`.
    pub async fn webhook_update(
        &self,
        app: AppCredentials<'_>,
        callback_url: &str,
    ) -> Result<Value> {
        let body = crate::json::object!({
            "app_id": app.client_key, "secret": app.client_secret.expose(),
            "event_type": "DIRECT_MESSAGE", "callback_url": callback_url,
        });
        self.post_json("/business/webhook/update/", None, &body)
            .await
    }

    /// `GET /business/webhook/list/`. TikTok takes the secret in the query here: this URL is
    /// never logged or returned.
    pub async fn webhook_list(&self, app: AppCredentials<'_>) -> Result<WebhookConfig> {
        let q = [
            ("app_id", app.client_key),
            ("secret", app.client_secret.expose()),
            ("event_type", "DIRECT_MESSAGE"),
        ];
        self.call(
            "/business/webhook/list/",
            Method::Get,
            Headers::new(),
            None,
            &q,
        )
        .await
    }

    /// `POST /business/webhook/delete/`.
    pub async fn webhook_delete(&self, app: AppCredentials<'_>) -> Result<Value> {
        let body = crate::json::object!({
            "app_id": app.client_key, "secret": app.client_secret.expose(),
            "event_type": "DIRECT_MESSAGE",
        });
        self.post_json("/business/webhook/delete/", None, &body)
            .await
    }

    async fn get<R: DeserializeOwned>(
        &self,
        path: &'static str,
        token: &str,
        query: &[(&str, &str)],
    ) -> Result<R> {
        let headers = Headers::new().with("access-token", token);
        self.call(path, Method::Get, headers, None, query).await
    }

    async fn post_json<R: DeserializeOwned>(
        &self,
        path: &'static str,
        token: Option<&str>,
        body: &impl serde::Serialize,
    ) -> Result<R> {
        let mut headers = Headers::new().with("content-type", "application/json");
        if let Some(t) = token {
            headers.set("access-token", t);
        }
        let body = serde_json::to_vec(body).map_err(|e| Error::Internal(e.to_string()))?;
        self.call(path, Method::Post, headers, Some(body), &[])
            .await
    }

    /// Sends one request and unwraps TikTok's envelope into `data`.
    ///
    /// Only the send and the final read of `data` depend on the transport and the answer's
    /// type: the request and the envelope are handled by plain functions, compiled once
    /// rather than once per endpoint and platform.
    async fn call<R: DeserializeOwned>(
        &self,
        path: &'static str,
        method: Method,
        headers: Headers,
        body: Option<Vec<u8>>,
        query: &[(&str, &str)],
    ) -> Result<R> {
        let req = outbound(
            self.base,
            path,
            method,
            headers,
            body,
            query,
            self.timeout_ms,
        );
        let (data, request_id) = envelope_data(path, self.transport.send(req).await)?;
        let raw = data.as_deref().map_or("null", |r| r.get());
        crate::json::from_str(raw)
            .map_err(|_| upstream(path, UpstreamFailure::Malformed, request_id))
    }
}

fn upstream(endpoint: &'static str, failure: UpstreamFailure, request_id: Option<String>) -> Error {
    Error::Upstream {
        endpoint,
        failure,
        request_id,
    }
}

/// The request of [`Client::call`]: the query appended to `base` + `path`, JSON accepted.
fn outbound(
    base: &str,
    path: &str,
    method: Method,
    headers: Headers,
    body: Option<Vec<u8>>,
    query: &[(&str, &str)],
    timeout_ms: u64,
) -> Outbound {
    let mut url = format!("{base}{path}");
    if !query.is_empty() {
        url.push('?');
        url.push_str(&crate::urlencoded::serialize(query));
    }
    Outbound {
        method,
        url,
        headers: headers.with("accept", "application/json"),
        body,
        timeout_ms,
        max_body: None,
    }
}

/// TikTok's envelope around an answer: its raw `data` and `request_id`, or the failure
/// (transport, HTTP status, unreadable envelope, non-zero `code`).
fn envelope_data(
    path: &'static str,
    sent: std::result::Result<crate::http::Response, TransportError>,
) -> Result<(Option<Box<serde_json::value::RawValue>>, Option<String>)> {
    let resp = sent.map_err(|e| match e {
        TransportError::Timeout => upstream(path, UpstreamFailure::Timeout, None),
        TransportError::Unreachable(_) => upstream(path, UpstreamFailure::Unreachable, None),
        TransportError::TooLarge => upstream(path, UpstreamFailure::Malformed, None),
    })?;
    let envelope: Option<ApiEnvelope> = crate::json::from_slice(&resp.body).ok();
    if !(200..300).contains(&resp.status) {
        let rid = envelope.and_then(|e| e.request_id);
        return Err(upstream(
            path,
            UpstreamFailure::Http {
                status: resp.status,
            },
            rid,
        ));
    }
    let env = envelope.ok_or_else(|| upstream(path, UpstreamFailure::Malformed, None))?;
    if env.code != 0 {
        let failure = UpstreamFailure::Api {
            code: env.code,
            message: env.message,
        };
        return Err(upstream(path, failure, env.request_id));
    }
    Ok((env.data, env.request_id))
}

/// Builds the media upload form. The boundary is derived from the content so it cannot
/// occur inside it.
fn multipart(business_id: &str, bytes: &[u8], content_type: &str) -> (String, Vec<u8>) {
    use sha2::{Digest, Sha256};
    let boundary = format!("tmw{}", hex::encode(&Sha256::digest(bytes)[..12]));
    let ext = if content_type == "image/png" {
        "png"
    } else {
        "jpg"
    };
    let mut b = Vec::with_capacity(bytes.len() + 512);
    let mut field = |name: &str, value: &str| {
        b.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    };
    field("business_id", business_id);
    field("media_type", "IMAGE");
    b.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"image.{ext}\"\r\nContent-Type: {content_type}\r\n\r\n"
        )
        .as_bytes(),
    );
    b.extend_from_slice(bytes);
    b.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (boundary, b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Response;
    use serde_json::json;
    use std::cell::RefCell;

    /// Records requests and answers from a queue.
    pub struct Recorder {
        pub sent: RefCell<Vec<Outbound>>,
        pub answers: RefCell<Vec<std::result::Result<Response, TransportError>>>,
    }

    impl Recorder {
        fn new(answers: Vec<std::result::Result<Response, TransportError>>) -> Self {
            Recorder {
                sent: RefCell::new(vec![]),
                answers: RefCell::new(answers),
            }
        }
    }

    impl Transport for Recorder {
        async fn send(&self, req: Outbound) -> std::result::Result<Response, TransportError> {
            self.sent.borrow_mut().push(req);
            self.answers.borrow_mut().remove(0)
        }
    }

    fn ok(v: Value) -> std::result::Result<Response, TransportError> {
        Ok(Response::json(200, &v))
    }

    fn block<F: std::future::Future>(f: F) -> F::Output {
        crate::testutil::block_on(f)
    }

    #[test]
    fn send_unwraps_envelope_and_keeps_big_ids() {
        let t = Recorder::new(vec![Ok(Response {
            status: 200,
            headers: Headers::new(),
            body: br#"{"code":0,"message":"OK","request_id":"r","data":{"message":{"message_id":123456789012345678901}}}"#.to_vec(),
        })]);
        let c = Client::new(&t, "http://sim/v1.3");
        let sent = block(c.send("tok", "biz", "c+1", &Outgoing::text("hi"))).unwrap();
        assert_eq!(sent.message_id.as_deref(), Some("123456789012345678901"));
        let req = &t.sent.borrow()[0];
        assert_eq!(req.url, "http://sim/v1.3/business/message/send/");
        assert_eq!(req.headers.get("Access-Token"), Some("tok"));
    }

    #[test]
    fn api_errors_keep_code_message_and_request_id() {
        let t = Recorder::new(vec![ok(
            json!({"code":40100,"message":"slow down","request_id":"rq9"}),
        )]);
        let c = Client::new(&t, "http://sim");
        let e = block(c.send("t", "b", "c", &Outgoing::text("x"))).unwrap_err();
        assert_eq!(e.status(), 429);
        assert_eq!(e.code(), "tiktok_rate_limited");
        let body = e.body("x");
        assert_eq!(body["error"]["details"]["tiktok_request_id"], "rq9");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("slow down"));
    }

    #[test]
    fn transport_and_http_failures_are_distinguished() {
        let t = Recorder::new(vec![
            Err(TransportError::Timeout),
            Ok(Response::text(503, "busy")),
            Ok(Response::text(200, "<html>")),
        ]);
        let c = Client::new(&t, "http://sim");
        let codes: Vec<_> = (0..3)
            .map(|_| {
                block(c.list_messages("t", "b", "c"))
                    .unwrap_err()
                    .code()
                    .to_string()
            })
            .collect();
        assert_eq!(
            codes,
            [
                "tiktok_timeout",
                "tiktok_http_error",
                "tiktok_malformed_response"
            ]
        );
    }

    #[test]
    fn query_values_are_encoded_and_secret_only_where_tiktok_wants_it() {
        let t = Recorder::new(vec![
            ok(json!({"code":0,"data":{}})),
            ok(json!({"code":0,"data":{}})),
        ]);
        let c = Client::new(&t, "http://sim");
        block(c.list_messages("t", "b", "a+b/c d")).unwrap();
        let secret = Secret::new("s3cr&t");
        let app = AppCredentials {
            client_key: "ck",
            client_secret: &secret,
        };
        block(c.webhook_update(app, "https://w/webhooks/tiktok")).unwrap();
        let sent = t.sent.borrow();
        assert!(
            sent[0].url.ends_with("conversation_id=a%2Bb%2Fc+d"),
            "{}",
            sent[0].url
        );
        assert!(!sent[1].url.contains("s3cr"));
        let body: Value = serde_json::from_slice(sent[1].body.as_ref().unwrap()).unwrap();
        assert_eq!(body["secret"], "s3cr&t");
    }

    #[test]
    fn multipart_carries_fields_and_file() {
        let (b, body) = multipart("biz", b"\x89PNGdata", "image/png");
        let s = String::from_utf8_lossy(&body);
        assert!(s.contains(&format!(
            "--{b}\r\nContent-Disposition: form-data; name=\"business_id\"\r\n\r\nbiz\r\n"
        )));
        assert!(s.contains("name=\"media_type\"\r\n\r\nIMAGE"));
        assert!(s.contains(
            "filename=\"image.png\"\r\nContent-Type: image/png\r\n\r\n\u{FFFD}PNGdata\r\n"
        ));
        assert!(s.ends_with(&format!("--{b}--\r\n")));
    }
}
