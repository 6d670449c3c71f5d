//! Auto-reply rules: the pure engine, their storage, routes and dry run.

pub(crate) mod dry_run;
pub mod engine;
pub(crate) mod routes;
pub(crate) mod store;
