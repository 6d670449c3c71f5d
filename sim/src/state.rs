//! What TikTok remembers between calls: grants and tokens, conversations and their messages,
//! media, profiles and webhook subscriptions. One mutex; never held across an await.

use crate::{now, now_ms, Delivery, Fault, Recorded, SentMessage, Settings};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

/// Grants a test starts when it gives no `sim_open_id`.
pub const DEFAULT_OPEN_ID: &str = "-000SimBusinessAccount0000000000001";

pub struct Shared {
    state: Mutex<State>,
    pub origin: String,
    pub http: reqwest::Client,
    /// Print one line per call on stderr (the `tiktok-sim` binary does; tests keep quiet).
    pub log_calls: std::sync::atomic::AtomicBool,
}

impl Shared {
    pub fn new(state: State, origin: String) -> Shared {
        Shared {
            state: Mutex::new(state),
            origin,
            // A fresh connection per delivery: a receiver closing an idle keep-alive
            // connection must not fail the next webhook.
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .expect("http client"),
            log_calls: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Prints a call's line when logging is on.
    pub fn log_call(&self, line: std::fmt::Arguments<'_>) {
        if self.log_calls.load(std::sync::atomic::Ordering::Relaxed) {
            eprintln!("{line}");
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One consent: the account and the scopes granted.
#[derive(Debug, Clone)]
pub struct Grant {
    pub open_id: String,
    pub scope: String,
}

impl Grant {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.split(',').any(|s| s.trim() == scope)
    }
}

/// An access or refresh token: which grant it belongs to and when it stops working.
#[derive(Debug, Clone)]
pub struct TokenRec {
    pub grant: u64,
    pub expires_at: u64,
}

#[derive(Debug, Clone)]
pub struct AuthCode {
    pub open_id: String,
    pub scope: String,
    pub redirect_uri: String,
    pub expires_at: u64,
    pub used: bool,
}

#[derive(Debug, Clone)]
pub struct Profile {
    pub username: String,
    pub display_name: String,
}

#[derive(Debug, Clone)]
pub struct Customer {
    pub handle: String,
    pub display_name: String,
    pub is_follower: bool,
}

#[derive(Debug, Clone)]
pub struct Media {
    /// Business that uploaded it, or the customer who sent it.
    pub owner: String,
    pub bytes: Vec<u8>,
    pub content_type: String,
    pub created_ms: u64,
}

#[derive(Debug, Clone)]
pub struct DownloadLink {
    pub media_id: String,
    pub business_id: String,
    pub expires_at: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Button {
    pub title: String,
    pub id: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Text(String),
    Image(String),
    /// A shared video by item id.
    SharePost(String),
    Template {
        /// `QA_BUTTON_CARD` or `QA_LINK_CARD`.
        kind: String,
        title: String,
        buttons: Vec<Button>,
    },
}

impl Body {
    /// The REST (`content/list`) enum; webhooks use the lower-case form.
    pub fn rest_type(&self) -> &'static str {
        match self {
            Body::Text(_) => "TEXT",
            Body::Image(_) => "IMAGE",
            Body::SharePost(_) => "SHARE_POST",
            Body::Template { .. } => "TEMPLATE",
        }
    }
}

#[derive(Debug, Clone)]
pub struct StoredMessage {
    pub id: String,
    pub ts_ms: u64,
    pub from_business: bool,
    /// `message_tag.source`: APP, WEB, API, OTHERS.
    pub source: &'static str,
    pub body: Body,
    pub referenced: Option<String>,
    /// `(card message id, button id)` for a card tap.
    pub reply_source: Option<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct Conversation {
    pub id: String,
    pub business_id: String,
    pub customer_id: String,
    pub created_ms: u64,
    /// Ordered by time.
    pub messages: Vec<StoredMessage>,
}

impl Conversation {
    pub fn update_time(&self) -> u64 {
        self.messages.last().map_or(self.created_ms, |m| m.ts_ms)
    }

    /// SINGLE once the business has answered (TikTok automation does not count).
    pub fn business_replied(&self) -> bool {
        self.messages
            .iter()
            .any(|m| m.from_business && m.source != "OTHERS")
    }

    pub fn insert(&mut self, m: StoredMessage) {
        let at = self.messages.partition_point(|x| x.ts_ms <= m.ts_ms);
        self.messages.insert(at, m);
    }

    pub fn find(&self, message_id: &str) -> Option<&StoredMessage> {
        self.messages.iter().find(|m| m.id == message_id)
    }
}

pub struct State {
    pub client_key: String,
    pub client_secret: String,
    pub settings: Settings,
    pub codes: HashMap<String, AuthCode>,
    pub grants: HashMap<u64, Grant>,
    pub access: HashMap<String, TokenRec>,
    pub refresh: HashMap<String, TokenRec>,
    pub media: HashMap<String, Media>,
    pub downloads: HashMap<String, DownloadLink>,
    /// Keyed by (business id, conversation id).
    pub conversations: HashMap<(String, String), Conversation>,
    pub customers: HashMap<String, Customer>,
    pub profiles: HashMap<String, Profile>,
    pub posts: HashMap<String, Vec<String>>,
    pub image_send: HashMap<String, bool>,
    /// Callback URL per event type (DIRECT_MESSAGE, COMMENT, ...).
    pub webhooks: HashMap<String, String>,
    pub sent: Vec<SentMessage>,
    pub requests: Vec<Recorded>,
    pub deliveries: Vec<Delivery>,
    pub faults: Vec<(String, VecDeque<Fault>)>,
    pub issued: Vec<String>,
    /// The business that connected last (the control API's default).
    pub last_open_id: Option<String>,
    rng: u64,
    last_snowflake: u64,
    next_grant: u64,
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

impl State {
    pub fn new(client_key: &str, client_secret: &str) -> State {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        State {
            client_key: client_key.into(),
            client_secret: client_secret.into(),
            settings: Settings::default(),
            codes: HashMap::new(),
            grants: HashMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            media: HashMap::new(),
            downloads: HashMap::new(),
            conversations: HashMap::new(),
            customers: HashMap::new(),
            profiles: HashMap::new(),
            posts: HashMap::new(),
            image_send: HashMap::new(),
            webhooks: HashMap::new(),
            sent: Vec::new(),
            requests: Vec::new(),
            deliveries: Vec::new(),
            faults: Vec::new(),
            issued: Vec::new(),
            rng: seed ^ 0x9E37_79B9_7F4A_7C15,
            last_snowflake: 0,
            next_grant: 0,
            last_open_id: None,
        }
    }

    /// splitmix64: unpredictable enough for ids and tokens of a test double.
    pub fn random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn random_from(&mut self, alphabet: &[u8], len: usize) -> String {
        (0..len)
            .map(|_| alphabet[(self.random() % alphabet.len() as u64) as usize] as char)
            .collect()
    }

    pub fn random_alnum(&mut self, len: usize) -> String {
        self.random_from(ALNUM, len)
    }

    pub fn random_hex_upper(&mut self, len: usize) -> String {
        self.random_from(b"0123456789ABCDEF", len)
    }

    /// A 19-digit numeric id, unique and increasing, like TikTok's message and media ids.
    pub fn snowflake(&mut self) -> String {
        let base = 7_000_000_000_000_000_000u64 + (now_ms() << 20);
        self.last_snowflake = base.max(self.last_snowflake + 1);
        self.last_snowflake.to_string()
    }

    pub fn new_conversation_id(&mut self) -> String {
        // Always carries a `+`, so a client that forgets to percent-encode it is caught.
        let head = self.random_from(B64, 7);
        let tail = self.random_from(B64, 34);
        format!("{head}+{tail}==")
    }

    pub fn new_grant(&mut self, open_id: &str, scope: &str) -> u64 {
        self.next_grant += 1;
        self.last_open_id = Some(open_id.to_string());
        self.grants.insert(
            self.next_grant,
            Grant {
                open_id: open_id.into(),
                scope: scope.into(),
            },
        );
        self.next_grant
    }

    pub fn profile(&self, open_id: &str) -> Profile {
        self.profiles.get(open_id).cloned().unwrap_or_else(|| {
            let slug: String = open_id
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .map(|c| c.to_ascii_lowercase())
                .take(16)
                .collect();
            let slug = if slug.is_empty() {
                "account".into()
            } else {
                slug
            };
            Profile {
                username: format!("sim.{slug}"),
                display_name: format!("Sim Business {slug}"),
            }
        })
    }

    pub fn customer(&self, id: &str) -> Customer {
        self.customers.get(id).cloned().unwrap_or_else(|| {
            let tag = &short_hash(id)[..8];
            Customer {
                handle: format!("user{tag}"),
                display_name: format!("Sim User {tag}"),
                is_follower: false,
            }
        })
    }

    pub fn customer_mut(&mut self, id: &str) -> &mut Customer {
        let default = self.customer(id);
        self.customers.entry(id.into()).or_insert(default)
    }

    /// An expiring avatar URL on the simulator, like TikTok's signed CDN links.
    pub fn avatar_url(&self, origin: &str, who: &str) -> String {
        format!(
            "{origin}/_sim/avatar/{}~c5_100x100.jpeg?x-expires={}&x-signature={}",
            &short_hash(who)[..32],
            now() + 3 * 86_400,
            &short_hash(&format!("sig{who}"))[..16]
        )
    }

    pub fn owns_post(&self, open_id: &str, item_id: &str) -> bool {
        item_id == default_post_id(open_id)
            || self
                .posts
                .get(open_id)
                .is_some_and(|p| p.iter().any(|i| i == item_id))
    }

    pub fn conversation(&self, business_id: &str, id: &str) -> Option<&Conversation> {
        self.conversations
            .get(&(business_id.to_string(), id.to_string()))
    }

    /// The conversation, created on first sight with the given (or a derived) customer.
    pub fn conversation_mut(
        &mut self,
        business_id: &str,
        id: &str,
        customer: Option<&str>,
    ) -> &mut Conversation {
        let key = (business_id.to_string(), id.to_string());
        let conv = self
            .conversations
            .entry(key)
            .or_insert_with(|| Conversation {
                id: id.into(),
                business_id: business_id.into(),
                customer_id: default_customer_id(id),
                created_ms: now_ms(),
                messages: Vec::new(),
            });
        if let Some(c) = customer {
            conv.customer_id = c.into();
        }
        conv
    }
}

/// Hex SHA-256, for deterministic derived names.
pub fn short_hash(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Customer id for a conversation nobody named one for: base64-like, as TikTok's are.
pub fn default_customer_id(conversation_id: &str) -> String {
    let h = Sha256::digest(format!("customer:{conversation_id}").as_bytes());
    let mut s: String = h.iter().map(|b| B64[(b % 64) as usize] as char).collect();
    s.truncate(31);
    format!("Sim{s}")
}

pub fn default_post_id(open_id: &str) -> String {
    let h = Sha256::digest(format!("post:{open_id}").as_bytes());
    let n = u64::from_be_bytes(h[..8].try_into().expect("8 bytes")) % 1_000_000_000_000_000_000;
    format!("7{n:018}")
}
