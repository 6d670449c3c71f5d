//! Connected accounts: the encrypted token vault, its refresh policy and the cron.

pub mod cron;
pub mod routes;
pub mod vault;
