//! The typed protocol to the account actor and its one `serve`.

pub mod protocol;
