//! A stand-in for TikTok's Business Messaging API v1.3, built from the wire reference
//! (`shared/reference/tiktok-api.md`) and the fixtures in `tests/fixtures/tiktok/`.
//!
//! It answers in TikTok's shapes (HTTP 200 `{code, message, request_id, data}`, errors as
//! non-zero codes with `data: {}`, HTTP 404 pages for unknown paths), keeps the state TikTok
//! keeps (grants, conversations, media, webhook subscriptions), records every request, injects
//! faults on demand and delivers signed webhooks, including echoes of API sends.
//!
//! Deliberately lenient where tests need it: a send or capabilities call naming a conversation
//! the sim has never seen works (the send creates it); the content list and media download do
//! not. A conversation id holding whitespace (an unencoded `+`) is always invalid.

mod control;
mod conversations;
mod media;
mod messaging;
mod oauth;
mod router;
mod sink;
mod state;
mod webhooks;

pub use sink::Sink;
pub use state::DEFAULT_OPEN_ID;

use serde::Serialize;
use serde_json::Value;
use state::{Customer, Profile, Shared, State};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

pub const API_PREFIX: &str = "/open_api/v1.3";
pub const AUTHORIZE_PATH: &str = "/v2/auth/authorize/";

/// One API request as the simulator saw it.
#[derive(Debug, Clone, Serialize)]
pub struct Recorded {
    pub method: String,
    /// Path without the API prefix, e.g. `/business/message/send/`.
    pub path: String,
    pub query: String,
    pub headers: HashMap<String, String>,
    pub body: String,
    /// Envelope code answered; -1 when the answer was not an envelope (404, HTTP fault,
    /// malformed JSON).
    pub code: i64,
}

impl Recorded {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    pub fn query_value(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// A fault applied to the next request whose path contains the pushed substring.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// This HTTP status with a non-JSON page (a gateway error).
    Http { status: u16 },
    /// HTTP 200 with this envelope code (51065, 40100, 40105, ...) and `data: {}`.
    Code { code: i64 },
    /// Wait this long, then answer normally.
    Slow { ms: u64 },
    /// HTTP 200 with a body that is not JSON.
    MalformedJson,
}

/// A successful `/business/message/send/` call (sender actions too, with an empty id).
#[derive(Debug, Clone, Serialize)]
pub struct SentMessage {
    pub business_id: String,
    /// `recipient`; empty for a comment `direct_reply`.
    pub conversation_id: String,
    pub message_type: String,
    /// The request JSON as received.
    pub body: Value,
    pub message_id: String,
}

/// A webhook POST made by the simulator (echoes and [`Sim::deliver`]).
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub url: String,
    pub body: String,
    /// HTTP status answered, `None` when the request failed.
    pub status: Option<u16>,
}

/// Tunables a test can change at any time through [`Sim::settings`].
#[derive(Debug, Clone)]
pub struct Settings {
    /// Access token lifetime in seconds (TikTok: 24 h).
    pub access_ttl: u64,
    /// Refresh token lifetime in seconds (TikTok: 1 year), counted from the code exchange.
    pub refresh_ttl: u64,
    /// Auth code lifetime in seconds (10 min; the reference notes a 1 h claim too).
    pub code_ttl: u64,
    /// The app's registered redirect URIs; authorize and token calls need an exact match.
    /// Empty means nothing is registered, so every authorization is refused.
    pub redirect_uris: Vec<String>,
    /// Scopes the app is approved for; asking for any other fails the consent.
    pub app_scopes: Vec<String>,
    /// Enforce the reply window (48 h after the user's last message, 10 messages in it).
    pub enforce_window: bool,
    /// Deliver an `im_send_msg` echo (source API) for every API message send.
    pub echo: bool,
    /// Deliver the echo before answering the send call, as TikTok sometimes does.
    pub echo_before_reply: bool,
    /// Default answer of the `IMAGE_SEND` capability.
    pub image_send: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            access_ttl: 86_400,
            refresh_ttl: 31_536_000,
            code_ttl: 600,
            redirect_uris: Vec::new(),
            app_scopes: [
                "user.info.basic",
                "user.info.username",
                "user.info.stats",
                "user.info.profile",
                "user.account.type",
                "user.insights",
                "message.list.read",
                "message.list.send",
                "message.list.manage",
            ]
            .map(String::from)
            .to_vec(),
            enforce_window: false,
            echo: true,
            echo_before_reply: false,
            image_send: true,
        }
    }
}

/// What a customer sends, for [`Sim::customer_message`].
#[derive(Debug, Clone)]
pub enum IncomingKind {
    Text(String),
    /// An image; `Some(id)` names the media id, `None` lets the sim pick one. Either way a
    /// small PNG is stored under it so `media/download/` can serve it.
    Image(Option<String>),
    /// A shared video by its item id.
    SharePost(String),
    /// A tap on a button of a card the business sent: arrives as text (the button's title)
    /// with `reply_source_payload`.
    ButtonTap {
        card_message_id: String,
        button_id: String,
    },
}

/// A customer message to build with [`Sim::customer_message`].
#[derive(Debug, Clone)]
pub struct Incoming {
    pub business_id: String,
    pub conversation_id: String,
    /// Customer id (`unique_identifier`); default: the conversation's customer.
    pub customer: Option<String>,
    pub kind: IncomingKind,
    /// Updates the customer's follower flag.
    pub is_follower: Option<bool>,
    /// Message time in ms; default now. Older times let tests age a conversation.
    pub at_ms: Option<u64>,
}

impl Incoming {
    pub fn new(business_id: &str, conversation_id: &str, kind: IncomingKind) -> Incoming {
        Incoming {
            business_id: business_id.into(),
            conversation_id: conversation_id.into(),
            customer: None,
            kind,
            is_follower: None,
            at_ms: None,
        }
    }

    pub fn text(business_id: &str, conversation_id: &str, text: &str) -> Incoming {
        Self::new(
            business_id,
            conversation_id,
            IncomingKind::Text(text.into()),
        )
    }

    pub fn image(business_id: &str, conversation_id: &str) -> Incoming {
        Self::new(business_id, conversation_id, IncomingKind::Image(None))
    }

    pub fn share_post(business_id: &str, conversation_id: &str, item_id: &str) -> Incoming {
        Self::new(
            business_id,
            conversation_id,
            IncomingKind::SharePost(item_id.into()),
        )
    }

    pub fn button_tap(
        business_id: &str,
        conversation_id: &str,
        card_message_id: &str,
        button_id: &str,
    ) -> Incoming {
        Self::new(
            business_id,
            conversation_id,
            IncomingKind::ButtonTap {
                card_message_id: card_message_id.into(),
                button_id: button_id.into(),
            },
        )
    }

    pub fn from_customer(mut self, customer_id: &str) -> Incoming {
        self.customer = Some(customer_id.into());
        self
    }

    pub fn follower(mut self, is_follower: bool) -> Incoming {
        self.is_follower = Some(is_follower);
        self
    }

    pub fn at_ms(mut self, ms: u64) -> Incoming {
        self.at_ms = Some(ms);
        self
    }
}

/// A built customer message: the webhook body to deliver and the ids in it.
#[derive(Debug, Clone)]
pub struct InboundMessage {
    pub body: String,
    pub message_id: String,
    pub media_id: Option<String>,
}

/// A running simulator; dropping it does not stop the server (it dies with the runtime).
#[derive(Clone)]
pub struct Sim {
    /// `http://127.0.0.1:<port>`
    pub origin: String,
    shared: Arc<Shared>,
}

/// Unix time in seconds.
pub fn now() -> u64 {
    now_ms() / 1000
}

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Sim {
    /// Starts on 127.0.0.1:`port` (0 = any free port) on the current tokio runtime.
    pub async fn start(client_key: &str, client_secret: &str, port: u16) -> std::io::Result<Sim> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let origin = format!("http://{}", listener.local_addr()?);
        let shared = Arc::new(Shared::new(
            State::new(client_key, client_secret),
            origin.clone(),
        ));
        let app = router::app(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Sim { origin, shared })
    }

    /// Prints one line per API call on stderr (method, path, code, request id, time; never
    /// tokens or bodies). Off by default.
    pub fn log_calls(&self, on: bool) {
        self.shared
            .log_calls
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// `TIKTOK_API_BASE` for the Worker.
    pub fn api_base(&self) -> String {
        format!("{}{}", self.origin, API_PREFIX)
    }

    /// `TIKTOK_AUTH_URL` for the Worker.
    pub fn auth_url(&self) -> String {
        format!("{}{}", self.origin, AUTHORIZE_PATH)
    }

    /// Every API request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().requests.clone()
    }

    /// Requests whose path ends with `suffix` (e.g. `"/oauth2/refresh_token/"`).
    pub fn requests_to(&self, suffix: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.ends_with(suffix))
            .collect()
    }

    /// Successful sends (messages and sender actions), in order.
    pub fn sent(&self) -> Vec<SentMessage> {
        self.shared.lock().sent.clone()
    }

    /// Messages and sender actions sent to one conversation, in order.
    pub fn sent_to(&self, conversation_id: &str) -> Vec<SentMessage> {
        self.sent()
            .into_iter()
            .filter(|m| m.conversation_id == conversation_id)
            .collect()
    }

    /// Every access and refresh token issued so far (for secret-hygiene checks).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.shared.lock().issued.clone()
    }

    /// Every webhook POST the simulator made (echoes and [`Sim::deliver`]).
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.lock().deliveries.clone()
    }

    /// Queues faults for the next requests whose path contains `path`, in order.
    pub fn push_faults(&self, path: &str, faults: impl IntoIterator<Item = Fault>) {
        let mut st = self.shared.lock();
        st.faults
            .push((path.to_string(), faults.into_iter().collect()));
    }

    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    pub fn settings(&self, f: impl FnOnce(&mut Settings)) {
        f(&mut self.shared.lock().settings);
    }

    /// Adds an app redirect URI (exact string, as registered in TikTok's developer portal).
    pub fn register_redirect_uri(&self, uri: &str) {
        let mut st = self.shared.lock();
        if !st.settings.redirect_uris.iter().any(|u| u == uri) {
            st.settings.redirect_uris.push(uri.to_string());
        }
    }

    /// Makes every access token issued so far expire now (as if a day had passed).
    pub fn expire_access_tokens(&self) {
        let t = now();
        for a in self.shared.lock().access.values_mut() {
            a.expires_at = t;
        }
    }

    /// Makes every refresh token issued so far expire now.
    pub fn expire_refresh_tokens(&self) {
        let t = now();
        for r in self.shared.lock().refresh.values_mut() {
            r.expires_at = t;
        }
    }

    /// Makes every authorization code issued so far expire now.
    pub fn expire_codes(&self) {
        for c in self.shared.lock().codes.values_mut() {
            c.expires_at = 0;
        }
    }

    /// The callback URL registered for `DIRECT_MESSAGE`.
    pub fn webhook_url(&self) -> Option<String> {
        self.shared.lock().webhooks.get("DIRECT_MESSAGE").cloned()
    }

    /// Whether `token` is a live (issued, unexpired, unrevoked) access token.
    pub fn access_token_valid(&self, token: &str) -> bool {
        self.shared
            .lock()
            .access
            .get(token)
            .is_some_and(|a| a.expires_at > now())
    }

    /// Sets a business account's profile (`business/get`, participants, webhook `from`/`to`).
    pub fn set_profile(&self, open_id: &str, username: &str, display_name: &str) {
        self.shared.lock().profiles.insert(
            open_id.into(),
            Profile {
                username: username.into(),
                display_name: display_name.into(),
            },
        );
    }

    /// Sets a customer's handle and display name (keeps the follower flag).
    pub fn set_customer(&self, id: &str, handle: &str, display_name: &str) {
        let mut st = self.shared.lock();
        let c = st.customer_mut(id);
        c.handle = handle.into();
        c.display_name = display_name.into();
    }

    /// Adds a post the business owns (valid `share_post.item_id`).
    pub fn add_post(&self, open_id: &str, item_id: &str) {
        self.shared
            .lock()
            .posts
            .entry(open_id.into())
            .or_default()
            .push(item_id.into());
    }

    /// The post every business owns from the start: 19 digits derived from its open id.
    pub fn default_post_id(open_id: &str) -> String {
        state::default_post_id(open_id)
    }

    /// Turns the `IMAGE_SEND` capability on or off for a conversation id or a business id
    /// (a conversation's own setting wins over its business's, which wins over `Settings`).
    pub fn set_image_send(&self, conversation_or_business: &str, on: bool) {
        self.shared
            .lock()
            .image_send
            .insert(conversation_or_business.into(), on);
    }

    /// A fresh conversation id shaped like TikTok's (base64-like, with `+`).
    pub fn new_conversation_id(&self) -> String {
        self.shared.lock().new_conversation_id()
    }

    /// Signs `body` the way TikTok does: `t=<ts>,s=hex(HMAC-SHA256(secret, "<ts>.<body>"))`.
    pub fn signature(secret: &str, ts: u64, body: &str) -> String {
        webhooks::signature(secret, ts, body)
    }

    /// POSTs a signed delivery of `body` to `url` now; returns status and response body.
    pub async fn deliver(&self, url: &str, body: &str) -> reqwest::Result<(u16, String)> {
        webhooks::deliver(&self.shared, url, body).await
    }

    /// An event envelope as TikTok sends it (`content` becomes a JSON string).
    pub fn event(&self, event: &str, business_id: &str, content: &Value) -> String {
        let ck = self.shared.lock().client_key.clone();
        webhooks::envelope(&ck, event, business_id, content.to_string())
    }

    /// A customer's text message: stores it in the conversation (creating it) and returns the
    /// `im_receive_msg` webhook body to deliver.
    pub fn inbound(&self, business_id: &str, conversation_id: &str, text: &str) -> String {
        self.customer_message(Incoming::text(business_id, conversation_id, text))
            .body
    }

    /// Any customer message (text, image, shared post, card button tap); see [`Incoming`].
    pub fn customer_message(&self, msg: Incoming) -> InboundMessage {
        webhooks::customer_message(&self.shared, msg)
    }

    /// A staff member replying in the TikTok app: stores it and returns the `im_send_msg`
    /// webhook body (source `APP`) to deliver.
    pub fn staff_reply(&self, business_id: &str, conversation_id: &str, text: &str) -> String {
        webhooks::staff_reply(&self.shared, business_id, conversation_id, text)
    }

    /// The client key this simulator was started with.
    pub fn client_key(&self) -> String {
        self.shared.lock().client_key.clone()
    }

    /// The profile a business answers with (set or derived from the open id).
    pub fn profile(&self, open_id: &str) -> (String, String) {
        let p = self.shared.lock().profile(open_id);
        (p.username, p.display_name)
    }

    /// The customer as stored (set or derived): `(handle, display_name, is_follower)`.
    pub fn customer(&self, id: &str) -> (String, String, bool) {
        let c: Customer = self.shared.lock().customer(id);
        (c.handle, c.display_name, c.is_follower)
    }
}
