//! The inbox: every conversation's history kept in the account actor's SQLite database, the
//! routes that read it, and the notifications people get.

pub mod cursor;
pub mod history;
pub mod listing;
pub mod names;
pub mod notify;
pub mod routes;
pub mod schema;
