-- The account's conversation history, in its Durable Object's SQLite database. Every
-- statement may run again (IF NOT EXISTS): a migration cut off midway is finished by the next run.
-- One row per conversation: the inbox listing reads only this table.
CREATE TABLE IF NOT EXISTS conversations (
  id TEXT PRIMARY KEY,
  customer_id TEXT,
  customer_handle TEXT,
  customer_name TEXT,
  -- The message that created the row: a re-run of the same event knows it was new.
  first_message_id TEXT,
  created_ms INTEGER NOT NULL,
  last_ms INTEGER NOT NULL,
  last_customer_ms INTEGER,
  unread INTEGER NOT NULL DEFAULT 0,
  last_message_id TEXT,
  last_direction TEXT,
  last_source TEXT,
  last_type TEXT,
  last_text TEXT
);
-- Newest first, keyset pagination on (last_ms, id).
CREATE INDEX IF NOT EXISTS conversations_by_last ON conversations (last_ms, id);

-- Every message: inbound, auto-replies, API sends, staff replies, TikTok's automation.
CREATE TABLE IF NOT EXISTS messages (
  -- The rowid: insertion order, the tie-breaker of the history's order.
  seq INTEGER PRIMARY KEY,
  -- TikTok's message id; NULL only when TikTok's answer had none.
  id TEXT UNIQUE,
  conversation_id TEXT NOT NULL,
  at_ms INTEGER NOT NULL,
  direction TEXT NOT NULL,
  source TEXT NOT NULL,
  rule TEXT,
  -- The message in the inbox API's shape (type, text, media ids, share post, card, button).
  body TEXT NOT NULL
);
-- One conversation's history in time order, keyset pagination on (at_ms, seq).
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages (conversation_id, at_ms, seq);
-- Retention: the oldest rows first.
CREATE INDEX IF NOT EXISTS messages_by_time ON messages (at_ms);
