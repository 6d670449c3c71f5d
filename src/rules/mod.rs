//! Auto-reply rules: the pure engine, their storage and routes.

pub mod engine;
pub(crate) mod routes;
pub(crate) mod store;
