//! The schema, as numbered migrations applied in order. A migration is never edited once
//! released: a change is a new one. `schema_migrations` records what was applied.

use articlebot_engine::StoreError;

use crate::tables::server_error;

/// One step of the schema.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "the engine's key-value tables",
        // One table for all of the engine's tables: their keys are laid out by the engine (bytes,
        // ordered bytewise as bytea is), and a scan is a range of the primary key.
        sql: "CREATE TABLE kv (
                  tree text NOT NULL,
                  key bytea NOT NULL,
                  value bytea NOT NULL,
                  PRIMARY KEY (tree, key)
              );",
    },
    Migration {
        version: 2,
        name: "the inbox shared by replicas, and the send clock",
        // Updates are taken per chat in the order they arrived (`seq`): Telegram's update ids
        // start again at a random number after a week without updates. `attempts` counts the
        // replicas that began an update: more than one means a takeover. The send clock holds,
        // per key (`all`, a chat), the earliest moment the next Bot API call may go.
        sql: "CREATE TABLE inbox (
                  update_id bigint PRIMARY KEY,
                  seq bigserial NOT NULL,
                  chat bigint NOT NULL,
                  body bytea NOT NULL,
                  attempts integer NOT NULL DEFAULT 0,
                  received_at timestamptz NOT NULL DEFAULT now()
              );
              CREATE INDEX inbox_by_chat ON inbox (chat, seq);
              CREATE TABLE send_clock (
                  key text PRIMARY KEY,
                  next_at timestamptz NOT NULL
              );",
    },
];

/// The version this build's tables are at.
pub const SCHEMA_VERSION: i32 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// A lock of our own among the server's advisory locks ("artb"): replicas starting at the same
/// time apply each migration once, one after the other.
const MIGRATION_LOCK: i64 = 0x6172_7462;

/// Brings the schema to [`SCHEMA_VERSION`]; the versions applied now. A schema newer than this
/// build is refused and left alone.
pub fn migrate(client: &mut postgres::Client) -> Result<Vec<i32>, StoreError> {
    let mut tx = client.transaction().map_err(server_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).map_err(server_error)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version integer PRIMARY KEY,
             name text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .map_err(server_error)?;
    let current: i32 =
        tx.query_one("SELECT coalesce(max(version), 0) FROM schema_migrations", &[]).map_err(server_error)?.get(0);
    if current > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema { found: current, known: SCHEMA_VERSION });
    }
    let mut applied = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        tx.batch_execute(m.sql).map_err(server_error)?;
        tx.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", &[&m.version, &m.name])
            .map_err(server_error)?;
        applied.push(m.version);
    }
    tx.commit().map_err(server_error)?;
    if !applied.is_empty() {
        tracing::info!(versions = ?applied, "database schema migrated");
    }
    Ok(applied)
}

/// The version the server's tables are at (0: none yet).
pub fn version(client: &mut postgres::Client) -> Result<i32, StoreError> {
    let exists: bool =
        client.query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[]).map_err(server_error)?.get(0);
    if !exists {
        return Ok(0);
    }
    Ok(client.query_one("SELECT coalesce(max(version), 0) FROM schema_migrations", &[]).map_err(server_error)?.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_increase_one_by_one() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i32 + 1, "{}", m.name);
        }
    }
}
