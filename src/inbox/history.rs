//! The account's conversation history, in its actor's SQLite database: every message in and
//! out, and one summary row per conversation that the inbox lists without aggregating.
//!
//! Why the actor's SQLite and not D1: the actor already serialises everything of one account,
//! so a message and its conversation's counters change together without a transaction across
//! the network; it is one database per account (1,000 accounts never share a table or a write
//! lock), reads and writes are synchronous and local to the object, and it runs the same in
//! local workerd. Every statement here is keyed by an index, so the cost of a write or of a
//! page does not grow with the number of stored messages.

use super::schema;
use crate::error::Result;
use crate::ports::{Local, SqlValue};
use crate::tiktok::types::{MediaIn, Outgoing};
use crate::webhooks::envelope::{Event, EventKind};
use serde_json::{json, Map, Value};

/// Longest text kept in a conversation's summary (the full text is in its message).
const PREVIEW_CHARS: usize = 200;
/// How long after the customer's last message the business may still answer (TikTok's
/// reply window).
pub const WINDOW_MS: u64 = 48 * 3600 * 1000;

/// Who wrote a stored message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Customer,
    /// Sent by the rules (with the rule's name).
    AutoReply,
    /// Sent through `POST /v1/messages` (or another API client of the account).
    Api,
    /// Typed by a person in the TikTok app or web.
    Staff,
    /// TikTok's own automation (welcome message, suggested questions).
    Tiktok,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Customer => "customer",
            Source::AutoReply => "auto_reply",
            Source::Api => "api",
            Source::Staff => "staff",
            Source::Tiktok => "tiktok",
        }
    }

    fn direction(self) -> &'static str {
        match self {
            Source::Customer => "inbound",
            _ => "outbound",
        }
    }

    /// Whether a person at the business saw the conversation when this was sent: a staff
    /// reply typed in TikTok. (An API send may be a machine's, and the bot's own sends echo
    /// back as API messages.)
    fn read_by_business(self) -> bool {
        matches!(self, Source::Staff)
    }
}

/// The customer as an event names them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Customer {
    pub id: Option<String>,
    pub handle: Option<String>,
}

/// One message to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub conversation_id: String,
    pub message_id: Option<String>,
    pub at_ms: u64,
    pub source: Source,
    pub rule: Option<String>,
    /// The message in the inbox API's shape: `type`, `text`, `image`, `share_post`, ...
    pub body: Value,
    pub customer: Customer,
    /// Built from what this Worker sent (not from TikTok's echo of it): its body wins, so a
    /// message reads the same whichever of the send's answer and the echo came first.
    pub ours: bool,
}

impl Entry {
    /// A message event's entry; `None` for events that carry no message to keep.
    pub fn from_event(event: &Event, now_ms: u64) -> Option<Entry> {
        let source = match event.kind {
            EventKind::CustomerMessage => Source::Customer,
            EventKind::ApiEcho => Source::Api,
            EventKind::StaffReply => Source::Staff,
            EventKind::AutomatedReply => Source::Tiktok,
            _ => return None,
        };
        let c = &event.content;
        let conversation_id = c.conversation_id.clone()?;
        let mut body = Map::new();
        let mut put = |k: &str, v: Value| {
            if !v.is_null() {
                body.insert(k.to_string(), v);
            }
        };
        put(
            "type",
            json!(c.kind.as_deref().map(str::to_ascii_lowercase)),
        );
        put("text", json!(c.text_body()));
        put("image", MediaIn::api_json(&c.image));
        put("video", MediaIn::api_json(&c.video));
        put(
            "share_post",
            json!(c
                .share_post
                .as_ref()
                .map(|s| crate::json::object!({"embed_url": s.embed_url, "video_id": s.video_id}))),
        );
        put("template", c.template.clone().unwrap_or(Value::Null));
        put("button_id", json!(c.button_id()));
        put(
            "reply_to",
            json!(c
                .referenced_message_info
                .as_ref()
                .and_then(|r| r.referenced_message_id.as_ref())),
        );
        put(
            "auto_message_type",
            json!(c.auto_message_type.as_deref().map(str::to_ascii_lowercase)),
        );
        let customer = match source {
            Source::Customer => Customer {
                id: c.from_user.as_ref().and_then(|u| u.id.clone()),
                handle: c.from.clone().filter(|h| !h.trim().is_empty()),
            },
            _ => Customer {
                id: c.to_user.as_ref().and_then(|u| u.id.clone()),
                handle: c.to.clone().filter(|h| !h.trim().is_empty()),
            },
        };
        Some(Entry {
            conversation_id,
            message_id: c.message_id.clone(),
            at_ms: c
                .timestamp
                .and_then(|t| u64::try_from(t).ok())
                .unwrap_or(now_ms),
            source,
            rule: None,
            body: Value::Object(body),
            customer,
            ours: false,
        })
    }

    /// A message the business sent (an auto-reply or an API send); `None` for sender actions.
    pub fn sent(
        conversation_id: &str,
        message_id: Option<String>,
        msg: &Outgoing,
        source: Source,
        rule: Option<&str>,
        at_ms: u64,
    ) -> Option<Entry> {
        let mut body = crate::json::object!({ "type": msg.kind() });
        match msg {
            Outgoing::Text { text, reply_to } => {
                body["text"] = json!(text);
                if let Some(r) = reply_to {
                    body["reply_to"] = json!(r);
                }
            }
            Outgoing::Image { media_id } => {
                body["image"] = crate::json::object!({ "media_id": media_id })
            }
            Outgoing::SharePost { item_id } => {
                body["share_post"] = crate::json::object!({ "item_id": item_id })
            }
            Outgoing::Template { template } => body["template"] = json!(template),
            Outgoing::Action { .. } => return None,
        }
        Some(Entry {
            conversation_id: conversation_id.to_string(),
            message_id,
            at_ms,
            source,
            rule: rule.map(str::to_string),
            body,
            customer: Customer::default(),
            ours: true,
        })
    }
}

/// What [`record`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Recorded {
    /// The message was not stored before.
    pub new_message: bool,
    /// The conversation began with this message (also when the same event is recorded again).
    pub new_conversation: bool,
}

fn int(v: u64) -> SqlValue {
    SqlValue::Int(i64::try_from(v).unwrap_or(i64::MAX))
}

fn col_text(row: &[SqlValue], i: usize) -> Option<String> {
    row.get(i).and_then(SqlValue::text).map(str::to_string)
}

fn col_u64(row: &[SqlValue], i: usize) -> Option<u64> {
    row.get(i)
        .and_then(SqlValue::int)
        .and_then(|v| u64::try_from(v).ok())
}

/// Stores one message and updates its conversation, once per TikTok message id: an event
/// recorded again (a retry, a replay) or a send and its echo make one row. An auto-reply's
/// rule is kept whichever of the send's answer and its echo came first.
///
/// Two statements for a new message (an insert, and an upsert of its conversation that says
/// how the conversation began): this runs for every event, in the actor that acknowledges the
/// account's deliveries.
pub fn record<P: Local>(p: &P, e: &Entry) -> Result<Recorded> {
    schema::ensure(p)?;
    let inserted = p.sql(
        "INSERT INTO messages (id, conversation_id, at_ms, direction, source, rule, body) \
         VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING RETURNING seq",
        &[
            e.message_id.clone().into(),
            e.conversation_id.as_str().into(),
            int(e.at_ms),
            e.source.direction().into(),
            e.source.as_str().into(),
            e.rule.clone().into(),
            e.body.to_string().into(),
        ],
    )?;
    if inserted.is_empty() {
        return merge_known(p, e);
    }
    let preview: Option<String> = e.body["text"]
        .as_str()
        .map(|t| t.chars().take(PREVIEW_CHARS).collect());
    let inbound = SqlValue::Int(i64::from(e.source == Source::Customer));
    let read = SqlValue::Int(i64::from(e.source.read_by_business()));
    // SET expressions see the row as it was: `last_ms` there is the previous latest time.
    // Messages may arrive out of order: the summary shows the latest by time, and only the
    // latest message says whether what came before was read.
    let began = p.sql(
        "INSERT INTO conversations (id, customer_id, customer_handle, first_message_id, \
           created_ms, last_ms, last_customer_ms, unread, last_message_id, last_direction, \
           last_source, last_type, last_text) \
         VALUES (?, ?, ?, ?, ?, ?, CASE WHEN ? THEN ? END, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET \
           customer_id = COALESCE(customer_id, excluded.customer_id), \
           customer_handle = COALESCE(excluded.customer_handle, customer_handle), \
           unread = CASE WHEN excluded.unread = 1 THEN unread + 1 \
             WHEN ? AND excluded.last_ms >= last_ms THEN 0 ELSE unread END, \
           last_customer_ms = CASE WHEN excluded.unread = 1 \
             THEN MAX(COALESCE(last_customer_ms, 0), excluded.last_ms) ELSE last_customer_ms END, \
           last_message_id = CASE WHEN excluded.last_ms >= last_ms \
             THEN excluded.last_message_id ELSE last_message_id END, \
           last_direction = CASE WHEN excluded.last_ms >= last_ms \
             THEN excluded.last_direction ELSE last_direction END, \
           last_source = CASE WHEN excluded.last_ms >= last_ms \
             THEN excluded.last_source ELSE last_source END, \
           last_type = CASE WHEN excluded.last_ms >= last_ms \
             THEN excluded.last_type ELSE last_type END, \
           last_text = CASE WHEN excluded.last_ms >= last_ms \
             THEN excluded.last_text ELSE last_text END, \
           last_ms = MAX(last_ms, excluded.last_ms) \
         RETURNING first_message_id",
        &[
            e.conversation_id.as_str().into(),
            e.customer.id.clone().into(),
            e.customer.handle.clone().into(),
            e.message_id.clone().into(),
            int(e.at_ms),
            int(e.at_ms),
            inbound.clone(),
            int(e.at_ms),
            // A new conversation's unread count, and on conflict the flag of an inbound one.
            inbound,
            e.message_id.clone().into(),
            e.source.direction().into(),
            e.source.as_str().into(),
            e.body["type"].as_str().into(),
            preview.into(),
            read,
        ],
    )?;
    let first = began.first().and_then(|r| col_text(r, 0));
    Ok(Recorded {
        new_message: true,
        new_conversation: e.message_id.is_some() && first == e.message_id,
    })
}

/// A message stored before (the same event again, or a send and its echo): what this record
/// adds to it (our own body, an auto-reply's rule), and whether it began its conversation.
fn merge_known<P: Local>(p: &P, e: &Entry) -> Result<Recorded> {
    let Some(id) = &e.message_id else {
        return Ok(Recorded::default());
    };
    let known = p.sql(
        "SELECT seq, source FROM messages WHERE id = ?",
        &[id.as_str().into()],
    )?;
    if let Some(row) = known.first() {
        if e.ours {
            p.sql(
                "UPDATE messages SET body = ? WHERE seq = ?",
                &[e.body.to_string().into(), row[0].clone()],
            )?;
        }
        let is_auto = col_text(row, 1).as_deref() == Some(Source::AutoReply.as_str());
        if e.source == Source::AutoReply && !is_auto {
            p.sql(
                "UPDATE messages SET source = ?, rule = ? WHERE seq = ?",
                &[
                    Source::AutoReply.as_str().into(),
                    e.rule.clone().into(),
                    row[0].clone(),
                ],
            )?;
            p.sql(
                "UPDATE conversations SET last_source = ? WHERE id = ? AND last_message_id = ?",
                &[
                    Source::AutoReply.as_str().into(),
                    e.conversation_id.as_str().into(),
                    id.as_str().into(),
                ],
            )?;
        }
    }
    let first = p
        .sql(
            "SELECT first_message_id FROM conversations WHERE id = ?",
            &[e.conversation_id.as_str().into()],
        )?
        .first()
        .and_then(|r| col_text(r, 0));
    Ok(Recorded {
        new_message: false,
        new_conversation: first.as_deref() == Some(id),
    })
}

/// Remembers the customer's display name (learnt from TikTok's listing).
pub fn set_customer_name<P: Local>(p: &P, conversation: &str, name: &str) -> Result<()> {
    if !schema::ready_for_reading(p)? {
        return Ok(());
    }
    p.sql(
        "UPDATE conversations SET customer_name = ? WHERE id = ?",
        &[name.into(), conversation.into()],
    )
    .map(drop)
}

/// The business read the conversation (a mark-read sent through the API).
pub fn mark_read<P: Local>(p: &P, conversation: &str) -> Result<()> {
    if !schema::ready_for_reading(p)? {
        return Ok(());
    }
    p.sql(
        "UPDATE conversations SET unread = 0 WHERE id = ?",
        &[conversation.into()],
    )
    .map(drop)
}

/// A stored conversation's summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub id: String,
    pub customer_id: Option<String>,
    pub customer_handle: Option<String>,
    pub customer_name: Option<String>,
    pub created_ms: u64,
    pub last_ms: u64,
    pub last_customer_ms: Option<u64>,
    pub unread: u64,
    pub last_message_id: Option<String>,
    pub last_direction: Option<String>,
    pub last_source: Option<String>,
    pub last_type: Option<String>,
    pub last_text: Option<String>,
}

const SUMMARY_COLUMNS: &str = "id, customer_id, customer_handle, customer_name, created_ms, \
    last_ms, last_customer_ms, unread, last_message_id, last_direction, last_source, \
    last_type, last_text";

fn summary(row: &[SqlValue]) -> Summary {
    Summary {
        id: col_text(row, 0).unwrap_or_default(),
        customer_id: col_text(row, 1),
        customer_handle: col_text(row, 2),
        // Empty: TikTok was asked and has none.
        customer_name: col_text(row, 3),
        created_ms: col_u64(row, 4).unwrap_or(0),
        last_ms: col_u64(row, 5).unwrap_or(0),
        last_customer_ms: col_u64(row, 6),
        unread: col_u64(row, 7).unwrap_or(0),
        last_message_id: col_text(row, 8),
        last_direction: col_text(row, 9),
        last_source: col_text(row, 10),
        last_type: col_text(row, 11),
        last_text: col_text(row, 12),
    }
}

impl Summary {
    /// Whether the business may still answer at `now_ms` (48 h after the customer's last
    /// message), and until when.
    pub fn window(&self, now_ms: u64) -> (bool, Option<u64>) {
        match self.last_customer_ms {
            Some(t) => (now_ms < t + WINDOW_MS, Some(t + WINDOW_MS)),
            None => (false, None),
        }
    }
}

/// One stored conversation.
pub fn conversation<P: Local>(p: &P, id: &str) -> Result<Option<Summary>> {
    if !schema::ready_for_reading(p)? {
        return Ok(None);
    }
    let q = format!("SELECT {SUMMARY_COLUMNS} FROM conversations WHERE id = ?");
    Ok(p.sql(&q, &[id.into()])?.first().map(|r| summary(r)))
}

/// The conversations after a cursor (newest first).
const CONVERSATIONS_AFTER: &str = "(last_ms, id) < (?, ?)";
/// A conversation's messages after a cursor, newest first (`>` oldest first).
const MESSAGES_BEFORE: &str = "conversation_id = ? AND (at_ms, seq) < (?, ?)";

/// Where a page of conversations starts: after this conversation (newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationCursor {
    pub last_ms: u64,
    pub id: String,
}

/// Up to `limit` conversations, latest activity first, after `cursor`; and the cursor of the
/// next page when there is one. The row-value comparisons here and in [`messages`] are an
/// index range for SQLite (`a < ? OR (a = ? AND b < ?)` is not): a deep page costs what the
/// first one does.
pub fn conversations<P: Local>(
    p: &P,
    cursor: Option<&ConversationCursor>,
    limit: usize,
) -> Result<(Vec<Summary>, Option<ConversationCursor>)> {
    if !schema::ready_for_reading(p)? {
        return Ok((Vec::new(), None));
    }
    let fetch = SqlValue::Int(limit as i64 + 1);
    let rows = match cursor {
        None => p.sql(
            &format!(
                "SELECT {SUMMARY_COLUMNS} FROM conversations ORDER BY last_ms DESC, id DESC LIMIT ?"
            ),
            &[fetch],
        )?,
        Some(c) => p.sql(
            &format!(
                "SELECT {SUMMARY_COLUMNS} FROM conversations \
                 WHERE {CONVERSATIONS_AFTER} ORDER BY last_ms DESC, id DESC LIMIT ?"
            ),
            &[int(c.last_ms), c.id.as_str().into(), fetch],
        )?,
    };
    let mut page: Vec<Summary> = rows.iter().map(|r| summary(r)).collect();
    let next = (page.len() > limit).then(|| {
        page.truncate(limit);
        let last = &page[limit - 1];
        ConversationCursor {
            last_ms: last.last_ms,
            id: last.id.clone(),
        }
    });
    Ok((page, next))
}

/// Where a page of messages starts: after this message, in the page's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageCursor {
    pub at_ms: u64,
    pub seq: u64,
}

/// One stored message in the inbox API's shape.
fn message_json(row: &[SqlValue]) -> Value {
    let mut v = col_text(row, 7)
        .and_then(|b| crate::json::from_str::<Value>(&b).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| crate::json::object!({}));
    v["id"] = json!(col_text(row, 1));
    v["timestamp_ms"] = json!(col_u64(row, 2));
    v["direction"] = json!(col_text(row, 3));
    v["source"] = json!(col_text(row, 4));
    if let Some(rule) = col_text(row, 5) {
        v["rule"] = json!(rule);
    }
    v
}

/// Up to `limit` messages of a conversation after `cursor`, newest first (or oldest first
/// with `oldest_first`); and the cursor of the next page when there is one.
pub fn messages<P: Local>(
    p: &P,
    conversation: &str,
    cursor: Option<MessageCursor>,
    limit: usize,
    oldest_first: bool,
) -> Result<(Vec<Value>, Option<MessageCursor>)> {
    if !schema::ready_for_reading(p)? {
        return Ok((Vec::new(), None));
    }
    let (after, order) = match oldest_first {
        true => (MESSAGES_BEFORE.replace('<', ">"), "ASC"),
        false => (MESSAGES_BEFORE.to_string(), "DESC"),
    };
    let cols = "seq, id, at_ms, direction, source, rule, conversation_id, body";
    let fetch = SqlValue::Int(limit as i64 + 1);
    let rows = match cursor {
        None => p.sql(
            &format!(
                "SELECT {cols} FROM messages WHERE conversation_id = ? \
                 ORDER BY at_ms {order}, seq {order} LIMIT ?"
            ),
            &[conversation.into(), fetch],
        )?,
        Some(c) => p.sql(
            &format!(
                "SELECT {cols} FROM messages WHERE {after} \
                 ORDER BY at_ms {order}, seq {order} LIMIT ?"
            ),
            &[conversation.into(), int(c.at_ms), int(c.seq), fetch],
        )?,
    };
    let next = (rows.len() > limit).then(|| {
        let last = &rows[limit - 1];
        MessageCursor {
            at_ms: col_u64(last, 2).unwrap_or(0),
            seq: col_u64(last, 0).unwrap_or(0),
        }
    });
    Ok((
        rows.iter().take(limit).map(|r| message_json(r)).collect(),
        next,
    ))
}

/// Rows deleted per statement by [`forget_before`]: one housekeeping run stays short however
/// much has expired (the next run goes on).
const FORGET_BATCH: usize = 2_000;
/// Batches per housekeeping run.
const FORGET_BATCHES: usize = 10;

/// Deletes messages older than `cutoff_ms` and conversations with no activity since then,
/// a bounded amount per call; how many messages went.
pub fn forget_before<P: Local>(p: &P, cutoff_ms: u64) -> Result<usize> {
    if !schema::ready_for_reading(p)? {
        return Ok(0);
    }
    let mut gone = 0;
    for _ in 0..FORGET_BATCHES {
        let deleted = p
            .sql(
                "DELETE FROM messages WHERE seq IN \
                 (SELECT seq FROM messages WHERE at_ms < ? ORDER BY at_ms LIMIT ?) RETURNING seq",
                &[int(cutoff_ms), SqlValue::Int(FORGET_BATCH as i64)],
            )?
            .len();
        gone += deleted;
        if deleted < FORGET_BATCH {
            break;
        }
    }
    p.sql(
        "DELETE FROM conversations WHERE last_ms < ?",
        &[int(cutoff_ms)],
    )?;
    Ok(gone)
}

/// Whether anything is stored (an actor with history still needs its housekeeping alarm).
/// Creates nothing: an object that never stored history (a claim's) stays without tables.
/// Messages count too: retention deletes them in batches, after their conversations.
pub fn is_empty<P: Local>(p: &P) -> Result<bool> {
    if !schema::ready_for_reading(p)? {
        return Ok(true);
    }
    let any = |table: &str| -> Result<bool> {
        Ok(!p
            .sql(&format!("SELECT 1 FROM {table} LIMIT 1"), &[])?
            .is_empty())
    };
    Ok(!any("conversations")? && !any("messages")?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Fake;

    fn entry(conv: &str, id: &str, at_ms: u64, source: Source, text: &str) -> Entry {
        Entry {
            conversation_id: conv.into(),
            message_id: Some(id.into()),
            at_ms,
            source,
            rule: None,
            body: json!({"type": "text", "text": text}),
            customer: match source {
                Source::Customer => Customer {
                    id: Some("u-1".into()),
                    handle: Some("maria".into()),
                },
                _ => Customer::default(),
            },
            ours: source == Source::AutoReply,
        }
    }

    #[test]
    fn a_message_is_stored_once_and_counts_in_its_conversation() {
        let f = Fake::new(1_000);
        let first = record(&f, &entry("c1", "m1", 1_000, Source::Customer, "hi")).unwrap();
        assert_eq!(
            first,
            Recorded {
                new_message: true,
                new_conversation: true
            }
        );
        // The same event again (a retry): nothing new, and still the conversation's first.
        let again = record(&f, &entry("c1", "m1", 1_000, Source::Customer, "hi")).unwrap();
        assert_eq!(
            again,
            Recorded {
                new_message: false,
                new_conversation: true
            }
        );
        let second = record(&f, &entry("c1", "m2", 2_000, Source::Customer, "there")).unwrap();
        assert!(second.new_message && !second.new_conversation);
        let s = conversation(&f, "c1").unwrap().unwrap();
        assert_eq!(s.unread, 2);
        assert_eq!(s.customer_handle.as_deref(), Some("maria"));
        assert_eq!(s.last_text.as_deref(), Some("there"));
        assert_eq!(s.last_customer_ms, Some(2_000));
        assert_eq!(
            s.window(2_000 + WINDOW_MS - 1),
            (true, Some(2_000 + WINDOW_MS))
        );
        assert!(!s.window(2_000 + WINDOW_MS).0);
        // An auto-reply does not mean a person read it; a staff reply does.
        record(&f, &entry("c1", "m3", 3_000, Source::AutoReply, "auto")).unwrap();
        assert_eq!(conversation(&f, "c1").unwrap().unwrap().unread, 2);
        record(&f, &entry("c1", "m4", 4_000, Source::Staff, "person")).unwrap();
        let s = conversation(&f, "c1").unwrap().unwrap();
        assert_eq!((s.unread, s.last_source.as_deref()), (0, Some("staff")));
        // An older message arriving late is stored but does not become the summary.
        record(&f, &entry("c1", "m0", 500, Source::Customer, "early")).unwrap();
        let s = conversation(&f, "c1").unwrap().unwrap();
        assert_eq!((s.last_text.as_deref(), s.unread), (Some("person"), 1));
        mark_read(&f, "c1").unwrap();
        assert_eq!(conversation(&f, "c1").unwrap().unwrap().unread, 0);
        // The bot's own sends echo back as API messages: they are not a person reading.
        record(&f, &entry("c1", "m5", 5_000, Source::Customer, "again")).unwrap();
        record(&f, &entry("c1", "m6", 5_001, Source::Api, "echo")).unwrap();
        assert_eq!(conversation(&f, "c1").unwrap().unwrap().unread, 1);
    }

    #[test]
    fn an_auto_reply_keeps_its_rule_whether_its_echo_comes_first_or_last() {
        let f = Fake::new(1_000);
        let auto = |id: &str| {
            let mut e = entry("c1", id, 2_000, Source::AutoReply, "hello");
            e.rule = Some("welcome".into());
            e
        };
        // The echo first, then the send's answer.
        record(&f, &entry("c1", "e1", 2_000, Source::Api, "as echoed")).unwrap();
        assert!(!record(&f, &auto("e1")).unwrap().new_message);
        // The send's answer first, then the echo.
        record(&f, &auto("e2")).unwrap();
        record(&f, &entry("c1", "e2", 2_000, Source::Api, "as echoed")).unwrap();
        let (page, _) = messages(&f, "c1", None, 10, true).unwrap();
        assert_eq!(page.len(), 2);
        for m in &page {
            assert_eq!(m["source"], "auto_reply", "{m}");
            assert_eq!(m["rule"], "welcome", "{m}");
            assert_eq!(m["direction"], "outbound");
            assert_eq!(
                m["text"], "hello",
                "what was sent reads the same either way"
            );
        }
        let s = conversation(&f, "c1").unwrap().unwrap();
        assert_eq!(s.last_source.as_deref(), Some("auto_reply"));
    }

    #[test]
    fn a_thousand_messages_page_in_both_orders_without_gaps_or_repeats() {
        let f = Fake::new(1_000);
        // Two messages share each timestamp: the cursor must split ties by insertion order.
        for i in 0..1_000u64 {
            let src = if i % 3 == 0 {
                Source::AutoReply
            } else {
                Source::Customer
            };
            record(
                &f,
                &entry("c1", &format!("m{i}"), 10_000 + i / 2, src, &i.to_string()),
            )
            .unwrap();
        }
        record(
            &f,
            &entry("other", "x", 5, Source::Customer, "not this one"),
        )
        .unwrap();
        for oldest_first in [true, false] {
            let mut seen = Vec::new();
            let mut cursor = None;
            let mut pages = 0;
            loop {
                let (page, next) = messages(&f, "c1", cursor, 64, oldest_first).unwrap();
                pages += 1;
                seen.extend(page.iter().map(|m| m["text"].as_str().unwrap().to_string()));
                match next {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            let mut want: Vec<String> = (0..1_000).map(|i: u64| i.to_string()).collect();
            if !oldest_first {
                // Newest first: descending time, later insertions first among equal times.
                want.reverse();
            }
            assert_eq!(seen, want, "oldest_first={oldest_first}");
            assert_eq!(pages, 1_000usize.div_ceil(64));
        }
    }

    #[test]
    fn pages_after_a_cursor_are_index_ranges() {
        let f = Fake::new(1_000);
        record(&f, &entry("c1", "m1", 1, Source::Customer, "x")).unwrap();
        let plan = |q: &str, args: &[SqlValue]| -> String {
            f.sql(&format!("EXPLAIN QUERY PLAN {q}"), args)
                .unwrap()
                .iter()
                .filter_map(|r| r.last().and_then(SqlValue::text).map(str::to_string))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let m = plan(
            &format!(
                "SELECT seq FROM messages WHERE {MESSAGES_BEFORE} \
                 ORDER BY at_ms DESC, seq DESC LIMIT 5"
            ),
            &["c1".into(), SqlValue::Int(5), SqlValue::Int(5)],
        );
        assert!(m.contains("conversation_id=? AND at_ms<?"), "{m}");
        let c = plan(
            &format!(
                "SELECT id FROM conversations WHERE {CONVERSATIONS_AFTER} \
                 ORDER BY last_ms DESC, id DESC LIMIT 5"
            ),
            &[SqlValue::Int(5), "c".into()],
        );
        assert!(c.contains("(last_ms,id)<(?,?)"), "{c}");
    }

    #[test]
    fn conversations_list_latest_first_across_pages() {
        let f = Fake::new(1_000);
        for i in 0..25u64 {
            // Pairs share a time: ties are broken by id.
            record(
                &f,
                &entry(
                    &format!("c{i:02}"),
                    &format!("m{i}"),
                    1_000 + i / 2,
                    Source::Customer,
                    "x",
                ),
            )
            .unwrap();
        }
        let mut ids = Vec::new();
        let mut cursor = None;
        loop {
            let (page, next) = conversations(&f, cursor.as_ref(), 10).unwrap();
            ids.extend(page.into_iter().map(|s| s.id));
            match next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let want: Vec<String> = (0..25u64).rev().map(|i| format!("c{i:02}")).collect();
        assert_eq!(ids, want);
    }

    #[test]
    fn retention_deletes_old_messages_and_idle_conversations_only() {
        let f = Fake::new(1_000);
        for i in 0..4_500u64 {
            record(
                &f,
                &entry("old", &format!("o{i}"), i, Source::Customer, "x"),
            )
            .unwrap();
        }
        record(&f, &entry("mixed", "a", 100, Source::Customer, "old")).unwrap();
        record(&f, &entry("mixed", "b", 9_000, Source::Customer, "new")).unwrap();
        assert_eq!(forget_before(&f, 5_000).unwrap(), 4_501);
        assert!(conversation(&f, "old").unwrap().is_none());
        let (left, _) = messages(&f, "mixed", None, 10, true).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0]["text"], "new");
        assert!(!is_empty(&f).unwrap());
        assert!(is_empty(&Fake::new(1)).unwrap(), "no tables: empty");
        forget_before(&f, 10_000).unwrap();
        assert!(is_empty(&f).unwrap());
    }

    #[test]
    fn events_become_entries_with_their_content() {
        let fx = |name: &str| {
            crate::webhooks::envelope::parse(
                crate::testutil::fixtures::fixture(name)
                    .to_string()
                    .as_bytes(),
            )
            .unwrap()
        };
        let click =
            Entry::from_event(&fx("webhook-im_receive_msg-template-click.json"), 1).unwrap();
        assert_eq!(click.source, Source::Customer);
        assert_eq!(click.body["button_id"], "track_order");
        assert_eq!(click.body["text"], "Track my order");
        assert_eq!(click.customer.handle.as_deref(), Some("maria.lopez92"));
        assert_eq!(click.at_ms, 1760351940417);
        let share = Entry::from_event(&fx("webhook-im_receive_msg-share_post.json"), 1).unwrap();
        assert_eq!(
            share.body["share_post"]["embed_url"],
            "https://www.tiktok.com/player/v1/7551203948172635401"
        );
        let image = Entry::from_event(&fx("webhook-im_receive_msg-image.json"), 1).unwrap();
        assert_eq!(image.body["image"]["media_id"], "7560938388211751426");
        assert!(Entry::from_event(&fx("webhook-im_mark_read_msg.json"), 1).is_none());
        let card = Entry::sent(
            "c",
            Some("m".into()),
            &Outgoing::text("hi"),
            Source::AutoReply,
            Some("welcome"),
            5,
        )
        .unwrap();
        assert_eq!(card.body, json!({"type": "text", "text": "hi"}));
        let typing = Outgoing::Action {
            action: crate::tiktok::types::SenderAction::Typing,
        };
        assert!(Entry::sent("c", None, &typing, Source::Api, None, 5).is_none());
    }
}
