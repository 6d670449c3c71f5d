//! The history database's schema: numbered migrations (`migrations/NNNN_*.sql`), applied in
//! order, each once, recorded in `schema_version`.

use crate::error::Result;
use crate::ports::{Local, SqlValue};

/// Every migration, oldest first. Append only: a released migration never changes.
const MIGRATIONS: &[&str] = &[include_str!("migrations/0001_history.sql")];

/// The statements of one migration file (`;`-separated; comments dropped).
fn statements(migration: &str) -> Vec<String> {
    let code: String = migration
        .lines()
        .map(|l| l.split("--").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    code.split(';')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// For reads: whether any history is stored, bringing the schema up to date if so. An object
/// that never stored history (a claim's, an unknown account's) gets no tables from a read.
pub fn ready_for_reading<P: Local>(p: &P) -> Result<bool> {
    if p.schema_checked() {
        return Ok(true);
    }
    let tables = p.sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
        &[],
    )?;
    if tables.is_empty() {
        return Ok(false);
    }
    ensure(p)?;
    Ok(true)
}

/// Brings the database up to the latest schema, once per actor instance (it remembers).
pub fn ensure<P: Local>(p: &P) -> Result<()> {
    if p.schema_checked() {
        return Ok(());
    }
    p.sql(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
        &[],
    )?;
    let current = p
        .sql("SELECT MAX(version) FROM schema_version", &[])?
        .first()
        .and_then(|r| r.first())
        .and_then(SqlValue::int)
        .unwrap_or(0) as usize;
    for (n, migration) in MIGRATIONS.iter().enumerate().skip(current) {
        for stmt in statements(migration) {
            p.sql(&stmt, &[])?;
        }
        p.sql(
            "INSERT INTO schema_version (version) VALUES (?)",
            &[SqlValue::Int(n as i64 + 1)],
        )?;
    }
    p.set_schema_checked();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Fake;

    #[test]
    fn migrations_apply_once_and_leave_the_tables() {
        let f = Fake::new(1_000);
        ensure(&f).unwrap();
        // A new instance over the same database checks again and applies nothing twice.
        f.forget_schema_check();
        ensure(&f).unwrap();
        let versions = f.sql("SELECT version FROM schema_version", &[]).unwrap();
        assert_eq!(versions.len(), MIGRATIONS.len());
        for table in ["conversations", "messages"] {
            let found = f
                .sql(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?",
                    &[table.into()],
                )
                .unwrap();
            assert_eq!(found.len(), 1, "{table}");
        }
        assert!(statements("-- only a comment; here\n").is_empty());
        // Reads create nothing where nothing was stored.
        let empty = Fake::new(1_000);
        assert!(!ready_for_reading(&empty).unwrap());
        assert!(empty
            .sql("SELECT name FROM sqlite_master", &[])
            .unwrap()
            .is_empty());
        f.forget_schema_check();
        assert!(ready_for_reading(&f).unwrap());
        // A migration cut off midway runs again whole.
        f.sql("DELETE FROM schema_version", &[]).unwrap();
        f.forget_schema_check();
        ensure(&f).unwrap();
    }
}
