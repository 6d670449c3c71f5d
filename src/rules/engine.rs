//! The auto-reply rules engine: pure functions from a rule set, a conversation's state, the
//! inbound message and the local time to the messages to send.
//!
//! Rules JSON (stored with `PUT /v1/rules`, default from the `DEFAULT_RULES` var):
//! ```json
//! {"timezone": "Europe/Paris", "welcome": "Hi {{display_name}}!", "cooldown_secs": 600,
//!  "typing": true, "mark_read": true,
//!  "away": {"text": "We are closed.", "open": {"mon": ["09:00-17:30"], "sat": []}},
//!  "rules": [{"id": "price", "match": "any_of", "keywords": ["price", "cost"], "text": "..."},
//!            {"id": "menu", "keywords": ["help"], "card": {"type": "QA_BUTTON_CARD",
//!             "title": "How can we help?", "buttons": [{"title": "Track my order", "id": "track"}]}},
//!            {"id": "track", "buttons": ["track"], "text": "Send us your order number.", "quote": true},
//!            {"id": "new", "keywords": ["new in"], "share_post": {"item_id": "7551203948172635401"}}]}
//! ```
//! A rule answers with exactly one of `text`, `card` or `share_post`; it matches the message's
//! words (`keywords`) or a tap on one of its card `buttons` (by button id).

use crate::error::{Error, Result};
use crate::tiktok::types::{Outgoing, Template};
use crate::time::{LocalTime, Zone};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// TikTok's reply window after a user's last message, and its message budget.
pub const WINDOW_SECS: u64 = 48 * 3600;
pub const WINDOW_MESSAGES: u32 = 10;
pub use crate::tiktok::types::MAX_TEXT_CHARS;
const MAX_RULES: usize = 200;
const MAX_KEYWORDS: usize = 100;
const MAX_KEYWORD_CHARS: usize = 200;
/// Bounds on a whole rule set, so one message costs bounded CPU whatever an admin stores
/// (measured worst case in `make bench`).
pub const MAX_TOTAL_KEYWORDS: usize = 2_000;
pub const MAX_TOTAL_KEYWORD_CHARS: usize = 50_000;
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The whole message equals a keyword.
    Exact,
    /// The message contains a keyword anywhere.
    Contains,
    /// A keyword appears as whole word(s).
    AnyOf,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: String,
    #[serde(rename = "match", default = "any_of")]
    pub mode: Mode,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    /// Card button ids: a customer's tap on one of them matches this rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<Template>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_post: Option<SharePost>,
    /// Quote the customer's message in a text answer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub quote: bool,
}

/// One of the business's own posts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharePost {
    pub item_id: String,
}

fn any_of() -> Mode {
    Mode::AnyOf
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Away {
    pub text: String,
    /// Opening hours per day (`mon`..`sun`), `HH:MM-HH:MM`; a missing day is closed all day.
    pub open: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    #[serde(default = "utc")]
    pub timezone: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub welcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub away: Option<Away>,
    /// Minimum seconds between two auto-replies in one conversation.
    #[serde(default)]
    pub cooldown_secs: u64,
    /// Show a typing indicator before replying.
    #[serde(default)]
    pub typing: bool,
    /// Mark the conversation read when a message arrives.
    #[serde(default)]
    pub mark_read: bool,
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// A customer asking for a person: answered once, then the bot steps aside.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff: Option<Handoff>,
}

/// How a customer asks for a person (`{"keywords": ["agent", "human"], "text": "..."}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Handoff {
    /// Matched as whole words, like a rule with `any_of`, before every rule.
    pub keywords: Vec<String>,
    /// Sent once when asked; without it the bot only pauses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

fn utc() -> String {
    "UTC".into()
}

impl Default for RuleSet {
    fn default() -> Self {
        RuleSet {
            timezone: utc(),
            welcome: None,
            away: None,
            cooldown_secs: 0,
            typing: false,
            mark_read: false,
            rules: vec![],
            handoff: None,
        }
    }
}

/// Parses `HH:MM-HH:MM` into minutes `[start, end)`; `24:00` may end a range.
fn parse_range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = s.trim().split_once('-')?;
    let hm = |x: &str| -> Option<u16> {
        let (h, m) = x.trim().split_once(':')?;
        if h.len() != 2 || m.len() != 2 {
            return None;
        }
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
    };
    let (start, end) = (hm(a)?, hm(b)?);
    (start < end).then_some((start, end))
}

impl Away {
    /// Whether the business is open at `t`.
    pub fn is_open(&self, t: LocalTime) -> bool {
        self.open
            .get(DAYS[t.weekday as usize % 7])
            .into_iter()
            .flatten()
            .filter_map(|r| parse_range(r))
            .any(|(s, e)| (s..e).contains(&t.minute))
    }
}

/// Lower-case, accents folded to their base letter, whitespace collapsed.
pub fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = true;
    for c in s.chars().flat_map(char::to_lowercase) {
        if c.is_whitespace() {
            if !space {
                out.push(' ');
            }
            space = true;
            continue;
        }
        space = false;
        match fold(c) {
            Some(f) => out.push_str(f),
            None => out.push(c),
        }
    }
    out.trim_end().to_string()
}

/// Base letters of accented Latin letters (lower-case input).
fn fold(c: char) -> Option<&'static str> {
    const TABLE: &[(&str, &str)] = &[
        ("àáâãäåāăą", "a"),
        ("çćĉċč", "c"),
        ("ďđ", "d"),
        ("èéêëēĕėęě", "e"),
        ("ĝğġģ", "g"),
        ("ĥħ", "h"),
        ("ìíîïĩīĭįı", "i"),
        ("ĵ", "j"),
        ("ķ", "k"),
        ("ĺļľŀł", "l"),
        ("ñńņňŉ", "n"),
        ("òóôõöøōŏő", "o"),
        ("ŕŗř", "r"),
        ("śŝşšș", "s"),
        ("ţťŧț", "t"),
        ("ùúûüũūŭůűų", "u"),
        ("ŵ", "w"),
        ("ýÿŷ", "y"),
        ("źżž", "z"),
        ("ß", "ss"),
        ("æ", "ae"),
        ("œ", "oe"),
    ];
    if c.is_ascii() {
        return None;
    }
    TABLE
        .iter()
        .find(|(set, _)| set.contains(c))
        .map(|(_, b)| *b)
}

fn words(s: &str) -> Vec<&str> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect()
}

impl Rule {
    /// The message this rule sends, `{{display_name}}` filled in; `quoted` is the customer's
    /// message id (for `quote`).
    pub fn answer(&self, display_name: Option<&str>, quoted: Option<&str>) -> Outgoing {
        if let Some(card) = &self.card {
            return Outgoing::Template {
                template: card.clone(),
            };
        }
        if let Some(post) = &self.share_post {
            return Outgoing::SharePost {
                item_id: post.item_id.clone(),
            };
        }
        Outgoing::Text {
            text: render(self.text.as_deref().unwrap_or_default(), display_name),
            reply_to: quoted.filter(|_| self.quote).map(str::to_string),
        }
    }

    /// Whether a tap on the card button `id` matches this rule.
    pub fn matches_button(&self, id: &str) -> bool {
        self.buttons.iter().any(|b| b == id)
    }

    /// Whether the (normalized) message matches this rule's keywords.
    pub fn matches(&self, message: &str) -> bool {
        self.matches_prepared(&Prepared::new(message))
    }

    /// [`Rule::matches`] against a message prepared once for all rules.
    fn matches_prepared(&self, p: &Prepared<'_>) -> bool {
        let message = p.text;
        self.keywords.iter().any(|k| {
            let k = normalize(k);
            match self.mode {
                Mode::Exact => {
                    let trimmed = message.trim_matches(|c: char| !c.is_alphanumeric());
                    trimmed == k.trim_matches(|c: char| !c.is_alphanumeric())
                }
                Mode::Contains => message.contains(&k),
                Mode::AnyOf => any_of_keyword(&k, p),
            }
        })
    }
}

/// Whether one of `keywords` is in the message as whole words (the `any_of` mode).
fn any_of_matches(keywords: &[String], p: &Prepared<'_>) -> bool {
    keywords.iter().any(|k| any_of_keyword(&normalize(k), p))
}

/// Whether the normalized keyword `k` is in the message as whole words.
fn any_of_keyword(k: &str, p: &Prepared<'_>) -> bool {
    let kw = words(k);
    // Most keywords' first word is not in the message at all: one lookup.
    !kw.is_empty()
        && p.set.contains(kw[0])
        && kw.len() <= p.words.len()
        && p.words.windows(kw.len()).any(|w| w == kw.as_slice())
}

/// A normalized message split into words once per decision, with a set for fast lookups.
struct Prepared<'a> {
    text: &'a str,
    words: Vec<&'a str>,
    set: std::collections::HashSet<&'a str>,
}

impl<'a> Prepared<'a> {
    fn new(text: &'a str) -> Self {
        let words = words(text);
        let set = words.iter().copied().collect();
        Prepared { text, words, set }
    }
}

/// Fills `{{display_name}}` (or "there" when TikTok did not say).
pub fn render(template: &str, display_name: Option<&str>) -> String {
    let name = display_name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or("there");
    template.replace("{{display_name}}", name)
}

/// Parses and validates a rule set; errors name the rule and field. `zone_ok` checks IANA
/// names against the runtime's time zone database.
pub fn parse_rules(json: &[u8], zone_ok: impl Fn(&str) -> bool) -> Result<RuleSet> {
    parse_rules_dyn(json, &zone_ok)
}

/// [`parse_rules`] behind one `dyn` check: parsing and validation are compiled once, not
/// once per caller's closure (a few KiB of `.wasm` each).
fn parse_rules_dyn(json: &[u8], zone_ok: &dyn Fn(&str) -> bool) -> Result<RuleSet> {
    if json.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(Error::invalid(
            "rules",
            "the rule set must be a JSON object",
        ));
    }
    let set: RuleSet = crate::json::from_slice_traced(json).map_err(|(path, e)| {
        let field = if path == "." {
            "rules".to_string()
        } else {
            path
        };
        Error::invalid(field, e.to_string())
    })?;
    validate(&set, zone_ok)?;
    Ok(set)
}

fn check_text(field: &str, t: &str) -> Result<()> {
    let n = t.chars().count();
    if t.trim().is_empty() || n > MAX_TEXT_CHARS {
        return Err(Error::invalid(
            field,
            format!("must be 1 to {MAX_TEXT_CHARS} characters (has {n})"),
        ));
    }
    Ok(())
}

pub fn validate(set: &RuleSet, zone_ok: &dyn Fn(&str) -> bool) -> Result<()> {
    match Zone::parse(&set.timezone) {
        Some(Zone::Named(n)) if !zone_ok(&n) => {
            return Err(Error::invalid(
                "timezone",
                format!("unknown time zone `{n}`"),
            ))
        }
        None => {
            return Err(Error::invalid(
                "timezone",
                "must be UTC, an offset like +02:00, or an IANA name",
            ))
        }
        _ => {}
    }
    if let Some(w) = &set.welcome {
        check_text("welcome", w)?;
    }
    if let Some(a) = &set.away {
        check_text("away.text", &a.text)?;
        for (day, ranges) in &a.open {
            if !DAYS.contains(&day.as_str()) {
                return Err(Error::invalid(
                    format!("away.open.{day}"),
                    "day must be one of mon..sun",
                ));
            }
            for (i, r) in ranges.iter().enumerate() {
                if parse_range(r).is_none() {
                    return Err(Error::invalid(
                        format!("away.open.{day}[{i}]"),
                        format!("`{r}` is not HH:MM-HH:MM with start before end"),
                    ));
                }
            }
        }
    }
    if set.cooldown_secs > 30 * 86_400 {
        return Err(Error::invalid(
            "cooldown_secs",
            "must be at most 2592000 (30 days)",
        ));
    }
    if set.rules.len() > MAX_RULES {
        return Err(Error::invalid(
            "rules",
            format!("at most {MAX_RULES} rules"),
        ));
    }
    if let Some(h) = &set.handoff {
        if h.keywords.is_empty() || h.keywords.len() > MAX_KEYWORDS {
            return Err(Error::invalid(
                "handoff.keywords",
                format!("list 1 to {MAX_KEYWORDS} keywords"),
            ));
        }
        for (j, k) in h.keywords.iter().enumerate() {
            if normalize(k).is_empty() || k.chars().count() > MAX_KEYWORD_CHARS {
                return Err(Error::invalid(
                    format!("handoff.keywords[{j}]"),
                    format!("must be 1 to {MAX_KEYWORD_CHARS} non-blank characters"),
                ));
            }
        }
        if let Some(t) = &h.text {
            check_text("handoff.text", t)?;
        }
    }
    let handoff_keywords = set.handoff.as_ref().map_or(&[][..], |h| &h.keywords[..]);
    let total: usize =
        set.rules.iter().map(|r| r.keywords.len()).sum::<usize>() + handoff_keywords.len();
    if total > MAX_TOTAL_KEYWORDS {
        return Err(Error::invalid(
            "rules",
            format!("at most {MAX_TOTAL_KEYWORDS} keywords in all (has {total})"),
        ));
    }
    let chars: usize = set
        .rules
        .iter()
        .flat_map(|r| &r.keywords)
        .chain(handoff_keywords)
        .map(|k| k.chars().count())
        .sum();
    if chars > MAX_TOTAL_KEYWORD_CHARS {
        return Err(Error::invalid(
            "rules",
            format!(
                "at most {MAX_TOTAL_KEYWORD_CHARS} characters of keywords in all (has {chars})"
            ),
        ));
    }
    let mut ids = std::collections::HashSet::new();
    for (i, r) in set.rules.iter().enumerate() {
        let at = |f: &str| format!("rules[{i}].{f}");
        if r.id.trim().is_empty() || r.id.len() > 64 {
            return Err(Error::invalid(at("id"), "must be 1 to 64 characters"));
        }
        if !ids.insert(r.id.as_str()) {
            return Err(Error::invalid(
                at("id"),
                format!("`{}` is used by an earlier rule", r.id),
            ));
        }
        if r.keywords.is_empty() && r.buttons.is_empty() {
            return Err(Error::invalid(
                at("keywords"),
                "list 1 or more keywords, or card button ids in `buttons`",
            ));
        }
        if r.keywords.len() > MAX_KEYWORDS {
            return Err(Error::invalid(
                at("keywords"),
                format!("must list at most {MAX_KEYWORDS} keywords"),
            ));
        }
        if r.buttons.len() > MAX_KEYWORDS {
            return Err(Error::invalid(
                at("buttons"),
                format!("must list at most {MAX_KEYWORDS} button ids"),
            ));
        }
        for (j, b) in r.buttons.iter().enumerate() {
            if b.trim().is_empty() || b.chars().count() > crate::tiktok::types::MAX_BUTTON_ID {
                return Err(Error::invalid(
                    format!("rules[{i}].buttons[{j}]"),
                    "must be a button id of 1 to 40 characters",
                ));
            }
        }
        for (j, k) in r.keywords.iter().enumerate() {
            if normalize(k).is_empty() || k.chars().count() > MAX_KEYWORD_CHARS {
                return Err(Error::invalid(
                    format!("rules[{i}].keywords[{j}]"),
                    format!("must be 1 to {MAX_KEYWORD_CHARS} non-blank characters"),
                ));
            }
        }
        match (&r.text, &r.card, &r.share_post) {
            (Some(t), None, None) => check_text(&at("text"), t)?,
            (None, Some(card), None) => card
                .check()
                .map_err(|(f, why)| Error::invalid(at(&format!("card.{f}")), why))?,
            (None, None, Some(post)) => {
                if post.item_id.trim().is_empty() || post.item_id.len() > 64 {
                    return Err(Error::invalid(
                        at("share_post.item_id"),
                        "must be the id of one of the account's posts",
                    ));
                }
            }
            _ => {
                return Err(Error::invalid(
                    at("text"),
                    "give exactly one of text, card or share_post",
                ))
            }
        }
        if r.quote && r.text.is_none() {
            return Err(Error::invalid(at("quote"), "only a text answer can quote"));
        }
    }
    Ok(())
}

/// What we remember per conversation (in the account's Durable Object).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationState {
    pub inbound_count: u64,
    pub last_inbound_at: Option<u64>,
    /// Messages the business sent since the user's last message.
    pub window_sent: u32,
    pub last_auto_reply_at: Option<u64>,
    /// Ids of messages we sent recently, so their echoes are not counted twice.
    #[serde(default)]
    pub recent_sent: Vec<String>,
    /// The customer's TikTok handle or name, for `{{display_name}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_name: Option<String>,
    /// Auto-replies are paused until then (unix seconds): a person is handling it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_until: Option<u64>,
    /// Why: `staff_reply`, `handoff_request` or `manual`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_by: Option<String>,
}

impl ConversationState {
    /// A user message opens a new window: 48 h and 10 messages.
    pub fn record_inbound(&mut self, at: u64) {
        self.inbound_count += 1;
        self.last_inbound_at = Some(at);
        self.window_sent = 0;
    }

    /// Whether auto-replies are paused at `now`.
    pub fn paused(&self, now: u64) -> bool {
        self.paused_until.is_some_and(|t| now < t)
    }

    /// Pauses auto-replies until `until` (a later pause already set is kept), or resumes them
    /// with `None`.
    pub fn pause(&mut self, until: Option<u64>, by: &str) {
        match until {
            Some(t) if self.paused_until.is_some_and(|p| p >= t) => {}
            Some(t) => {
                self.paused_until = Some(t);
                self.paused_by = Some(by.to_string());
            }
            None => {
                self.paused_until = None;
                self.paused_by = None;
            }
        }
    }

    /// When anything last happened in the conversation (unix seconds).
    pub fn last_activity(&self) -> u64 {
        self.last_inbound_at
            .unwrap_or(0)
            .max(self.last_auto_reply_at.unwrap_or(0))
            .max(self.paused_until.unwrap_or(0))
    }

    /// Messages the business may still send now.
    pub fn budget(&self, now: u64) -> u32 {
        match self.last_inbound_at {
            Some(t) if now < t + WINDOW_SECS => WINDOW_MESSAGES.saturating_sub(self.window_sent),
            _ => 0,
        }
    }

    /// Counts a message the business sent (ours, or an echo of one sent elsewhere).
    pub fn record_sent(&mut self, message_id: Option<&str>) {
        if let Some(id) = message_id {
            if self.recent_sent.iter().any(|m| m == id) {
                return;
            }
            self.recent_sent.push(id.to_string());
            if self.recent_sent.len() > 20 {
                self.recent_sent.remove(0);
            }
        }
        self.window_sent += 1;
    }
}

/// The engine's decision for one inbound message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub mark_read: bool,
    pub typing: bool,
    /// `(source, message)`: source is `welcome`, `away` or a rule id.
    pub messages: Vec<(String, Outgoing)>,
    /// Why fewer (or no) messages are sent than the rules asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_back: Option<String>,
    /// The customer asked for a person: pause auto-replies in the conversation.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pause: bool,
}

/// The customer message the engine answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Inbound<'a> {
    pub text: Option<&'a str>,
    /// The tapped card button's id, when the message came from a card.
    pub button_id: Option<&'a str>,
    /// TikTok's id of the message (quoted by rules with `quote`).
    pub message_id: Option<&'a str>,
}

impl<'a> From<Option<&'a str>> for Inbound<'a> {
    fn from(text: Option<&'a str>) -> Self {
        Inbound {
            text,
            ..Inbound::default()
        }
    }
}

/// Whether any answer of the set greets by name (so the name is worth looking up).
pub fn uses_display_name(set: &RuleSet) -> bool {
    let has = |t: &str| t.contains("{{display_name}}");
    set.welcome.as_deref().is_some_and(has)
        || set.away.as_ref().is_some_and(|a| has(&a.text))
        || set.rules.iter().any(|r| r.text.as_deref().is_some_and(has))
        || set
            .handoff
            .as_ref()
            .is_some_and(|h| h.text.as_deref().is_some_and(has))
}

/// Decides the reply to an inbound message. `conv` already includes this message.
pub fn decide<'a>(
    set: &RuleSet,
    conv: &ConversationState,
    msg: impl Into<Inbound<'a>>,
    display_name: Option<&str>,
    local: LocalTime,
    now: u64,
) -> Plan {
    let msg = msg.into();
    let mut plan = Plan {
        mark_read: set.mark_read,
        ..Plan::default()
    };
    if conv.paused(now) {
        // A person is handling the conversation: the bot does nothing, not even mark it read.
        plan.mark_read = false;
        plan.held_back = Some("paused".into());
        return plan;
    }
    let normalized = msg.text.map(normalize).unwrap_or_default();
    let prepared = Prepared::new(&normalized);
    if let Some(h) = &set.handoff {
        if !normalized.is_empty() && any_of_matches(&h.keywords, &prepared) {
            plan.pause = true;
            if let Some(t) = &h.text {
                if conv.budget(now) > 0 {
                    plan.messages =
                        vec![("handoff".into(), Outgoing::text(render(t, display_name)))];
                } else {
                    plan.held_back = Some("reply_window_budget".into());
                }
            }
            plan.typing = set.typing && !plan.messages.is_empty();
            return plan;
        }
    }
    let first = conv.inbound_count == 1;
    if !first && set.cooldown_secs > 0 {
        if let Some(last) = conv.last_auto_reply_at {
            if now < last + set.cooldown_secs {
                plan.held_back = Some("cooldown".into());
                return plan;
            }
        }
    }
    let text = |t: &str| Outgoing::text(render(t, display_name));
    let mut wanted = Vec::new();
    if first {
        if let Some(w) = &set.welcome {
            wanted.push(("welcome".to_string(), text(w)));
        }
    }
    match &set.away {
        Some(a) if !a.is_open(local) => wanted.push(("away".into(), text(&a.text))),
        _ => {
            // A tap on a card button is matched by its id first, then like any text.
            let by_button = msg
                .button_id
                .and_then(|b| set.rules.iter().find(|r| r.matches_button(b)));
            let by_words = || {
                set.rules
                    .iter()
                    .find(|r| !normalized.is_empty() && r.matches_prepared(&prepared))
            };
            if let Some(r) = by_button.or_else(by_words) {
                wanted.push((r.id.clone(), r.answer(display_name, msg.message_id)));
            }
        }
    }
    let budget = conv.budget(now) as usize;
    if wanted.len() > budget {
        wanted.truncate(budget);
        plan.held_back = Some("reply_window_budget".into());
    }
    plan.typing = set.typing && !wanted.is_empty();
    plan.messages = wanted;
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(json: &str) -> RuleSet {
        parse_rules(json.as_bytes(), |z| z == "America/New_York").unwrap()
    }

    fn err(json: &str) -> (String, String) {
        match parse_rules(json.as_bytes(), |z| z == "America/New_York").unwrap_err() {
            Error::Invalid { field, reason } => (field, reason),
            e => panic!("{e:?}"),
        }
    }

    /// `(source, text)` of each planned message (texts only).
    fn texts(p: &Plan) -> Vec<(String, String)> {
        p.messages
            .iter()
            .map(|(src, m)| match m {
                Outgoing::Text { text, .. } => (src.clone(), text.clone()),
                other => (src.clone(), format!("<{}>", other.kind())),
            })
            .collect()
    }

    const MON_10: LocalTime = LocalTime {
        weekday: 0,
        minute: 600,
    };

    fn conv(inbound: u64, at: u64) -> ConversationState {
        ConversationState {
            inbound_count: inbound,
            last_inbound_at: Some(at),
            ..ConversationState::default()
        }
    }

    #[test]
    fn a_handoff_request_answers_once_and_asks_for_a_pause() {
        let s = set(r#"{"welcome": "Hi!", "typing": true, "mark_read": true,
                "handoff": {"keywords": ["agent", "real person"], "text": "A colleague will answer, {{display_name}}."},
                "rules": [{"id": "p", "keywords": ["agent"], "text": "rule"}]}"#);
        let now = 1_000;
        let p = decide(
            &s,
            &conv(1, now),
            Some("I want an AGENT please"),
            Some("Ada"),
            MON_10,
            now,
        );
        assert!(p.pause);
        assert_eq!(
            texts(&p),
            vec![(
                "handoff".to_string(),
                "A colleague will answer, Ada.".to_string()
            )],
            "only the handoff text: no welcome, no rule"
        );
        assert!(p.typing && p.mark_read);
        let words = decide(&s, &conv(2, now), Some("a real person?"), None, MON_10, now);
        assert!(words.pause, "several words, as whole words");
        let not = decide(&s, &conv(2, now), Some("agents"), None, MON_10, now);
        assert!(!not.pause, "whole words only");
        let silent = set(r#"{"handoff": {"keywords": ["human"]}}"#);
        let p = decide(&silent, &conv(2, now), Some("human"), None, MON_10, now);
        assert!(
            p.pause && p.messages.is_empty(),
            "without text it only pauses"
        );
    }

    #[test]
    fn a_paused_conversation_gets_nothing_until_the_pause_ends() {
        let s = set(
            r#"{"mark_read": true, "rules": [{"id": "p", "keywords": ["price"], "text": "t"}]}"#,
        );
        let mut c = conv(3, 1_000);
        c.pause(Some(2_000), "staff_reply");
        c.pause(Some(1_500), "handoff_request");
        assert_eq!(
            (c.paused_until, c.paused_by.as_deref()),
            (Some(2_000), Some("staff_reply")),
            "a later pause already set is kept"
        );
        let p = decide(&s, &c, Some("price"), None, MON_10, 1_999);
        assert!(p.messages.is_empty() && !p.mark_read && !p.typing);
        assert_eq!(p.held_back.as_deref(), Some("paused"));
        let p = decide(&s, &c, Some("price"), None, MON_10, 2_000);
        assert_eq!(texts(&p).len(), 1, "answered again once the pause ended");
        assert_eq!(
            c.last_activity(),
            2_000,
            "a pause keeps the state from being swept"
        );
        c.pause(None, "manual");
        assert!(!c.paused(1_000) && c.paused_by.is_none());
    }

    #[test]
    fn handoff_keywords_are_validated_and_counted() {
        assert_eq!(
            err(r#"{"handoff": {"keywords": []}}"#).0,
            "handoff.keywords"
        );
        assert_eq!(
            err(r#"{"handoff": {"keywords": ["  "]}}"#).0,
            "handoff.keywords[0]"
        );
        assert_eq!(
            err(r#"{"handoff": {"keywords": ["x"], "text": ""}}"#).0,
            "handoff.text"
        );
        assert_eq!(
            err(r#"{"handoff": {"keywords": ["x"], "colour": 1}}"#).0,
            "handoff.colour"
        );
    }

    #[test]
    fn matching_table() {
        let cases = [
            (Mode::Exact, "price", "Price!", true),
            (Mode::Exact, "price", "the price", false),
            (Mode::Contains, "price", "what's the PRICE?", true),
            (Mode::Contains, "pri", "prices", true),
            (Mode::AnyOf, "price", "prices please", false),
            (Mode::AnyOf, "price", "your price?", true),
            (
                Mode::AnyOf,
                "opening hours",
                "what are your opening  hours",
                true,
            ),
            (Mode::Contains, "cafe", "Un CAFÉ svp", true),
            (Mode::AnyOf, "Crème brûlée", "creme brulee!", true),
            (Mode::Exact, "straße", "STRASSE", true),
        ];
        for (mode, kw, msg, want) in cases {
            let r = Rule {
                id: "r".into(),
                mode,
                keywords: vec![kw.into()],
                buttons: vec![],
                text: Some("t".into()),
                card: None,
                share_post: None,
                quote: false,
            };
            assert_eq!(
                r.matches(&normalize(msg)),
                want,
                "{mode:?} {kw:?} in {msg:?}"
            );
        }
    }

    #[test]
    fn first_match_wins_and_welcome_comes_first() {
        let s = set(r#"{"welcome":"Hi {{display_name}}!","rules":[
            {"id":"a","match":"contains","keywords":["x"],"text":"A"},
            {"id":"b","match":"contains","keywords":["x"],"text":"B"}]}"#);
        let p = decide(&s, &conv(1, 100), Some("x"), Some("Ada"), MON_10, 100);
        assert_eq!(
            texts(&p),
            vec![
                ("welcome".into(), "Hi Ada!".into()),
                ("a".into(), "A".into())
            ]
        );
        let p = decide(&s, &conv(2, 100), Some("x"), None, MON_10, 100);
        assert_eq!(texts(&p), vec![("a".to_string(), "A".to_string())]);
        let p = decide(&s, &conv(2, 100), Some("nothing"), None, MON_10, 100);
        assert!(p.messages.is_empty());
        assert_eq!(render("Hi {{display_name}}", None), "Hi there");
    }

    #[test]
    fn away_hours_by_weekday_and_minute() {
        let s = set(
            r#"{"away":{"text":"closed","open":{"mon":["09:00-17:30"],"sat":["10:00-12:00","13:00-24:00"]}},
            "rules":[{"id":"a","match":"contains","keywords":["x"],"text":"A"}]}"#,
        );
        let at = |weekday, minute| {
            decide(
                &s,
                &conv(2, 0),
                Some("x"),
                None,
                LocalTime { weekday, minute },
                0,
            )
        };
        let at = |weekday, minute| texts(&at(weekday, minute));
        assert_eq!(at(0, 9 * 60)[0].1, "A");
        assert_eq!(at(0, 17 * 60 + 29)[0].1, "A");
        assert_eq!(at(0, 17 * 60 + 30)[0].1, "closed");
        assert_eq!(at(0, 8 * 60 + 59)[0].1, "closed");
        assert_eq!(at(1, 10 * 60)[0].1, "closed", "a missing day is closed");
        assert_eq!(at(5, 12 * 60 + 30)[0].1, "closed");
        assert_eq!(at(5, 23 * 60 + 59)[0].1, "A");
    }

    #[test]
    fn local_time_at_offsets() {
        // 2024-07-01 00:30 UTC was a Monday.
        let t = 1_719_793_800;
        assert_eq!(
            LocalTime::at_offset(t, 0),
            LocalTime {
                weekday: 0,
                minute: 30
            }
        );
        assert_eq!(
            LocalTime::at_offset(t, -60),
            LocalTime {
                weekday: 6,
                minute: 23 * 60 + 30
            }
        );
        assert_eq!(
            LocalTime::at_offset(t, 330),
            LocalTime {
                weekday: 0,
                minute: 6 * 60
            }
        );
        assert_eq!(Zone::parse("+05:30"), Some(Zone::Fixed(330)));
        assert_eq!(Zone::parse("-03:00"), Some(Zone::Fixed(-180)));
        assert_eq!(Zone::parse("utc"), Some(Zone::Fixed(0)));
        assert_eq!(Zone::parse("+25:00"), None);
        assert_eq!(
            Zone::parse("Europe/Paris"),
            Some(Zone::Named("Europe/Paris".into()))
        );
        assert_eq!(Zone::parse("Europe/Paris; drop"), None);
    }

    #[test]
    fn cooldown_holds_back_but_first_message_is_exempt() {
        let s = set(
            r#"{"cooldown_secs":600,"rules":[{"id":"a","match":"contains","keywords":["x"],"text":"A"}]}"#,
        );
        let mut c = conv(2, 1_000);
        c.last_auto_reply_at = Some(900);
        let p = decide(&s, &c, Some("x"), None, MON_10, 1_000);
        assert!(p.messages.is_empty());
        assert_eq!(p.held_back.as_deref(), Some("cooldown"));
        assert_eq!(
            decide(&s, &c, Some("x"), None, MON_10, 1_500)
                .messages
                .len(),
            1
        );
    }

    #[test]
    fn window_budget_never_allows_an_eleventh_message() {
        let s = set(
            r#"{"welcome":"W","rules":[{"id":"a","match":"contains","keywords":["x"],"text":"A"}]}"#,
        );
        let mut c = conv(1, 0);
        for i in 0..9 {
            c.record_sent(Some(&format!("m{i}")));
        }
        c.record_sent(Some("m0"));
        assert_eq!(
            c.budget(0),
            1,
            "an echo of a counted message is not counted again"
        );
        let p = decide(&s, &c, Some("x"), None, MON_10, 0);
        assert_eq!(p.messages.len(), 1);
        assert_eq!(p.held_back.as_deref(), Some("reply_window_budget"));
        c.record_sent(None);
        assert_eq!(c.budget(0), 0);
        assert!(decide(&s, &c, Some("x"), None, MON_10, 0)
            .messages
            .is_empty());
        c.record_inbound(10);
        assert_eq!(c.budget(10), 10);
        assert_eq!(
            c.budget(10 + WINDOW_SECS),
            0,
            "48 h after the last user message"
        );
    }

    #[test]
    fn validation_names_rule_and_field() {
        let cases = [
            (
                r#"{"rules":[{"id":"a","match":"contains","keywords":[],"text":"A"}]}"#,
                "rules[0].keywords",
            ),
            (
                r#"{"rules":[{"id":"a","match":"contains","keywords":["x"],"text":""}]}"#,
                "rules[0].text",
            ),
            (
                r#"{"rules":[{"id":"a","match":"contains","keywords":["x"],"text":"A"},{"id":"a","match":"exact","keywords":["y"],"text":"B"}]}"#,
                "rules[1].id",
            ),
            (
                r#"{"rules":[{"id":"a","match":"regex","keywords":["x"],"text":"A"}]}"#,
                "rules[0].match",
            ),
            (
                r#"{"rules":[{"id":"a","match":"exact","keywords":["x"],"txt":"A"}]}"#,
                "rules[0].txt",
            ),
            (
                r#"{"rules":[{"id":"a","match":"exact","keywords":["  "],"text":"A"}]}"#,
                "rules[0].keywords[0]",
            ),
            (r#"{"timezone":"Mars/Olympus"}"#, "timezone"),
            (
                r#"{"away":{"text":"x","open":{"mon":["9-5"]}}}"#,
                "away.open.mon[0]",
            ),
            (
                r#"{"away":{"text":"x","open":{"funday":[]}}}"#,
                "away.open.funday",
            ),
            (r#"{"cooldown_secs":-1}"#, "cooldown_secs"),
            (r#"{"welcome":""}"#, "welcome"),
            (r#"[]"#, "rules"),
        ];
        for (json, field) in cases {
            assert_eq!(err(json).0, field, "{json}");
        }
        let long = format!(
            r#"{{"rules":[{{"id":"a","match":"exact","keywords":["x"],"text":"{}"}}]}}"#,
            "a".repeat(6001)
        );
        assert!(err(&long).1.contains("6000"));
        assert_eq!(
            set(r#"{"timezone":"America/New_York"}"#).timezone,
            "America/New_York"
        );
        assert_eq!(set("{}"), RuleSet::default());
    }

    #[test]
    fn rules_answer_with_cards_share_posts_and_quotes() {
        let s = set(r#"{"rules":[
            {"id":"menu","keywords":["help"],"card":{"type":"QA_BUTTON_CARD","title":"How can we help?",
              "buttons":[{"title":"Track my order","id":"track_order"},{"title":"Returns","id":"returns"}]}},
            {"id":"track","buttons":["track_order"],"text":"Your order number, {{display_name}}?","quote":true},
            {"id":"new","keywords":["new in"],"share_post":{"item_id":"7551203948172635401"}}]}"#);
        let p = decide(&s, &conv(2, 0), Some("help please"), None, MON_10, 0);
        assert!(
            matches!(&p.messages[0].1, Outgoing::Template { template } if template.buttons.len() == 2)
        );
        // A tap on the card's button arrives as text plus the button id: matched by id.
        let tap = Inbound {
            text: Some("Track my order"),
            button_id: Some("track_order"),
            message_id: Some("7560939466917495809"),
        };
        let p = decide(&s, &conv(2, 0), tap, Some("maria.lopez92"), MON_10, 0);
        assert_eq!(p.messages[0].0, "track");
        assert_eq!(
            p.messages[0].1,
            Outgoing::Text {
                text: "Your order number, maria.lopez92?".into(),
                reply_to: Some("7560939466917495809".into()),
            }
        );
        let p = decide(&s, &conv(2, 0), Some("anything new in?"), None, MON_10, 0);
        assert_eq!(
            p.messages[0].1,
            Outgoing::SharePost {
                item_id: "7551203948172635401".into()
            }
        );
        assert!(uses_display_name(&s));
    }

    #[test]
    fn rule_answers_are_validated() {
        let cases = [
            (
                r#"{"rules":[{"id":"a","keywords":["x"],"text":"A","card":{"type":"QA_BUTTON_CARD","title":"T","buttons":[{"title":"b","id":"b"}]}}]}"#,
                "rules[0].text",
            ),
            (
                r#"{"rules":[{"id":"a","keywords":["x"]}]}"#,
                "rules[0].text",
            ),
            (
                r#"{"rules":[{"id":"a","keywords":["x"],"card":{"type":"QA_BUTTON_CARD","title":"T","buttons":[{"title":"a title of 21 chars!!","id":"b"}]}}]}"#,
                "rules[0].card.buttons[0].title",
            ),
            (
                r#"{"rules":[{"id":"a","keywords":["x"],"card":{"type":"QA_LINK_CARD","title":"T","buttons":[]}}]}"#,
                "rules[0].card.buttons",
            ),
            (
                r#"{"rules":[{"id":"a","keywords":["x"],"share_post":{"item_id":"1"},"quote":true}]}"#,
                "rules[0].quote",
            ),
            (
                r#"{"rules":[{"id":"a","buttons":[""],"text":"A"}]}"#,
                "rules[0].buttons[0]",
            ),
        ];
        for (json, field) in cases {
            assert_eq!(err(json).0, field, "{json}");
        }
    }

    #[test]
    fn rule_sets_have_a_bounded_size() {
        let kw: Vec<String> = (0..100).map(|i| format!("keyword{i}")).collect();
        let rules: Vec<serde_json::Value> = (0..21)
            .map(|i| serde_json::json!({"id": format!("r{i}"), "keywords": kw, "text": "t"}))
            .collect();
        let big = serde_json::json!({ "rules": rules }).to_string();
        let (field, reason) = err(&big);
        assert_eq!(field, "rules");
        assert!(reason.contains("2000 keywords"), "{reason}");
    }
}
