//! Auto-reply rules: the pure engine, their storage and routes.

pub mod engine;
pub mod routes;
pub mod store;
