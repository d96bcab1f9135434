//! `articlebot backup --data DIR --out FILE` and `articlebot restore FILE --data DIR`: the
//! database (every user's conversation and the statistics) to a file and back. sled lets one
//! process at a time open a database, so both run with the bot stopped; a running bot's dir is
//! refused with that said. With `--store URL` they work on the PostgreSQL server instead: a
//! backup is one moment's state taken while the replicas run, a restore replaces the tables in
//! one transaction (stop the replicas first: what they write meanwhile is replaced). The file is
//! the same either way, so a backup of one store restores into the other. `articlebot migrate`
//! brings a store's schema to this build's.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;

use articlebot_engine::{ErrorChain, IfDamaged, SledStore, StoreError};

use super::Failure;
use crate::store::{DataStore, Location};

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// Sled database dir to back up
    #[arg(long, env = "ARTICLEBOT_DATA", default_value = "data", value_name = "DIR")]
    data: PathBuf,
    /// The bot's PostgreSQL server (`serve --store`), instead of the sled dir
    #[arg(long, env = "ARTICLEBOT_STORE", value_name = "URL", hide_env_values = true)]
    store: Option<String>,
    /// File to write the backup to (replaced whole, never left half-written)
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// Backup file written by `articlebot backup`
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Sled database dir to restore into; a database already there is moved aside, not deleted
    #[arg(long, env = "ARTICLEBOT_DATA", default_value = "data", value_name = "DIR")]
    data: PathBuf,
    /// The bot's PostgreSQL server (`serve --store`), instead of the sled dir
    #[arg(long, env = "ARTICLEBOT_STORE", value_name = "URL", hide_env_values = true)]
    store: Option<String>,
}

#[derive(Args, Debug)]
pub struct MigrateArgs {
    /// Sled database dir to check
    #[arg(long, env = "ARTICLEBOT_DATA", default_value = "data", value_name = "DIR")]
    data: PathBuf,
    /// The bot's PostgreSQL server (`serve --store`), instead of the sled dir
    #[arg(long, env = "ARTICLEBOT_STORE", value_name = "URL", hide_env_values = true)]
    store: Option<String>,
}

/// PostgreSQL: applies the migrations this build has and the server has not (replicas starting
/// at the same time wait for each other). sled has no schema: it is opened and checked, and its
/// records are upgraded as they are read.
pub fn run_migrate(args: MigrateArgs) -> Result<(), Failure> {
    let at = Location::from_args(args.store.as_deref(), &args.data);
    match &at {
        Location::Postgres(url) => {
            let tables = articlebot_postgres::PgTables::connect(url)
                .map_err(|e| Failure::caused(format!("cannot migrate {}", at.shown()), &e))?;
            match tables.migrated() {
                [] => {
                    println!("{}: schema at version {}, nothing to do", at.shown(), articlebot_postgres::SCHEMA_VERSION)
                }
                applied => println!(
                    "{}: applied {} migration(s) ({}); schema at version {}",
                    at.shown(),
                    applied.len(),
                    applied.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", "),
                    articlebot_postgres::SCHEMA_VERSION
                ),
            }
        }
        Location::Sled(dir) => {
            if !dir.join("db").exists() {
                return Err(Failure::usage(format!("{} holds no articlebot database", dir.display())));
            }
            SledStore::open(dir).map_err(|e| open_failure(dir, &e))?;
            println!("{}: sled has no schema to migrate; the database opens and is not damaged", dir.display());
        }
    }
    Ok(())
}

/// The error line for a database that cannot be opened: a running bot is named as such.
pub(super) fn open_failure(dir: &Path, e: &StoreError) -> Failure {
    match e {
        StoreError::Locked(_) => Failure::usage(format!(
            "the database {} is in use (is the bot running?): stop it first; sled lets one process open it",
            dir.display()
        )),
        e => Failure::caused(format!("cannot open the database {}", dir.display()), e),
    }
}

pub fn run_backup(args: BackupArgs) -> Result<(), Failure> {
    let at = Location::from_args(args.store.as_deref(), &args.data);
    let store = match &at {
        Location::Sled(dir) => {
            // An empty or missing dir would be made into a new database, and backed up as nothing.
            if !dir.join("db").exists() {
                return Err(Failure::usage(format!("{} holds no articlebot database", dir.display())));
            }
            DataStore::Sled(SledStore::open(dir).map_err(|e| open_failure(dir, &e))?)
        }
        Location::Postgres(_) => DataStore::open(&at, IfDamaged::Refuse)
            .map_err(|e| Failure::caused(format!("cannot open the database {}", at.shown()), &e))?,
    };
    let tmp = temporary_beside(&args.out);
    let written = (|| -> Result<_, StoreError> {
        let file = std::fs::File::create(&tmp)?;
        let mut out = std::io::BufWriter::new(file);
        let report = store.backup(&mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(report)
    })();
    let report = match written {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(Failure::caused(format!("cannot write the backup {}", args.out.display()), &e));
        }
    };
    std::fs::rename(&tmp, &args.out).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Failure::caused(format!("cannot write the backup {}", args.out.display()), &e)
    })?;
    println!("backed up {report} from {} to {}", at.shown(), args.out.display());
    Ok(())
}

pub fn run_restore(args: RestoreArgs) -> Result<(), Failure> {
    if let Location::Postgres(url) = Location::from_args(args.store.as_deref(), &args.data) {
        let shown = articlebot_postgres::redact(&url);
        let restored =
            articlebot_postgres::PgTables::connect(&url).and_then(|t| t.restore(&args.file)).map_err(|e| match &e {
                StoreError::BadBackup { .. } => Failure::usage(ErrorChain(&e).to_string()),
                _ => Failure::caused(format!("cannot restore into {shown}"), &e),
            })?;
        println!("restored {restored} into {shown}");
        return Ok(());
    }
    let report = SledStore::restore(&args.file, &args.data).map_err(|e| match &e {
        StoreError::Locked(_) => open_failure(&args.data, &e),
        StoreError::BadBackup { .. } => Failure::usage(ErrorChain(&e).to_string()),
        _ => Failure::caused(format!("cannot restore into {}", args.data.display()), &e),
    })?;
    println!("restored {} into {}", report.restored, args.data.display());
    if let Some(old) = &report.replaced {
        println!("the database that was there is kept in {}: delete it when you no longer need it", old.display());
    }
    let _ = std::io::stdout().flush();
    Ok(())
}

/// `FILE.tmp` beside `FILE`, so the final rename stays on one file system.
fn temporary_beside(path: &Path) -> PathBuf {
    let name = path.file_name().map_or_else(|| "backup".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.tmp"))
}
