//! Backups of the database: every entry of every tree, one JSON object a line, keys and values
//! in hex (they are bytes: big-endian numbers, JSON, text):
//!
//! ```text
//! {"articlebot_backup":1,"created":1700000000}
//! {"tree":"users","key":"00000000000f4240","value":"7b2276223a31..."}
//! ...
//! {"end":{"users":1,"counters":12},"checksum":"9f1c..."}
//! ```
//!
//! The last line counts the entries of each tree and carries the FNV-1a hash of every line
//! before it, so a backup cut short or changed is refused as a whole before anything is
//! restored. sled's own `export` panics on a read error and reads each tree at a different
//! moment, so it is not used.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use articlebot_knowledge::Fnv1a;
use serde::{Deserialize, Serialize};

use crate::kv::KeyValue;
use crate::sled_db::{self, T};
use crate::store::StoreError;

/// The format written now; restore reads this one.
const FORMAT: u32 = 1;

/// What a backup holds: entries per tree.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BackupReport {
    pub trees: Vec<(String, u64)>,
}

impl BackupReport {
    pub fn entries(&self) -> u64 {
        self.trees.iter().map(|(_, n)| n).sum()
    }
}

impl fmt::Display for BackupReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} entries (", self.entries())?;
        for (i, (tree, n)) in self.trees.iter().enumerate() {
            write!(f, "{}{tree} {n}", if i > 0 { ", " } else { "" })?;
        }
        write!(f, ")")
    }
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    pub restored: BackupReport,
    /// Where the database that was in the dir before went.
    pub replaced: Option<PathBuf>,
}

#[derive(Serialize, Deserialize)]
struct Header {
    articlebot_backup: u32,
    created: u64,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    tree: String,
    key: String,
    value: String,
}

#[derive(Serialize, Deserialize)]
struct End {
    end: BTreeMap<String, u64>,
    checksum: String,
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// Feeds a line (with its line break) to the checksum.
fn hash_line(h: &mut Fnv1a, line: &str) {
    for b in line.bytes().chain(std::iter::once(b'\n')) {
        h.push(u64::from(b));
    }
}

/// Writes a line, to `out` and the checksum.
fn put(out: &mut dyn Write, h: &mut Fnv1a, line: &str) -> std::io::Result<()> {
    hash_line(h, line);
    out.write_all(line.as_bytes())?;
    out.write_all(b"\n")
}

fn json<T: Serialize>(v: &T) -> String {
    // Plain structs of strings and numbers always serialize.
    serde_json::to_string(v).unwrap_or_default()
}

/// Writes the backup of `db` to `out`.
pub fn write<K: KeyValue + ?Sized>(db: &K, out: &mut dyn Write) -> Result<BackupReport, StoreError> {
    let mut h = Fnv1a::new();
    put(out, &mut h, &json(&Header { articlebot_backup: FORMAT, created: crate::store::now_unix() }))?;
    let trees = db.export(&mut |tree, k, v| {
        put(out, &mut h, &json(&Entry { tree: tree.to_string(), key: hex(k), value: hex(v) }))
    })?;
    // An empty tree has no line to count when the backup is read back: it is not listed.
    let trees: Vec<(String, u64)> = trees.into_iter().filter(|(_, n)| *n > 0).collect();
    let end = End { end: trees.iter().cloned().collect(), checksum: format!("{:016x}", h.finish()) };
    let line = json(&end);
    out.write_all(line.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(BackupReport { trees })
}

/// Reads the backup at `path`, handing each entry (table name, key, value) to `each`; checks the
/// header, every line, the counts and the checksum, so an error can come after entries were
/// handed out. With `each` doing nothing, this is the check before a restore.
pub fn read(
    path: &Path,
    mut each: impl FnMut(&str, Vec<u8>, Vec<u8>) -> Result<(), StoreError>,
) -> Result<BackupReport, StoreError> {
    let bad =
        |line: usize, reason: &str| StoreError::BadBackup { path: path.to_path_buf(), line, reason: reason.into() };
    let file = std::fs::File::open(path)?;
    let mut lines = std::io::BufReader::new(file).lines();
    let mut h = Fnv1a::new();
    let not_text = |line: usize| {
        move |e: std::io::Error| {
            if e.kind() == std::io::ErrorKind::InvalidData {
                bad(line, "not text")
            } else {
                StoreError::Io(e)
            }
        }
    };
    let first = lines.next().transpose().map_err(not_text(1))?.ok_or_else(|| bad(1, "the file is empty"))?;
    match serde_json::from_str::<Header>(&first) {
        Ok(header) if header.articlebot_backup == FORMAT => {}
        Ok(header) => return Err(bad(1, &format!("format {} is not known to this version", header.articlebot_backup))),
        Err(_) => return Err(bad(1, "no backup header")),
    }
    hash_line(&mut h, &first);
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut n = 1;
    for line in lines {
        let line = line.map_err(not_text(n + 1))?;
        n += 1;
        if let Ok(end) = serde_json::from_str::<End>(&line) {
            if end.checksum != format!("{:016x}", h.finish()) {
                return Err(bad(n, "the checksum does not match: the file was changed or damaged"));
            }
            if end.end != counts {
                return Err(bad(n, "the entry counts do not match"));
            }
            return Ok(BackupReport { trees: order.into_iter().map(|t| (t.clone(), counts[&t])).collect() });
        }
        let entry: Entry = serde_json::from_str(&line).map_err(|_| bad(n, "not an entry"))?;
        let valid_name = !entry.tree.is_empty()
            && entry.tree.len() <= 64
            && entry.tree.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            && entry.tree != T::Meta.name();
        if !valid_name {
            return Err(bad(n, "not a tree name"));
        }
        let (Some(key), Some(value)) = (unhex(&entry.key), unhex(&entry.value)) else {
            return Err(bad(n, "a key or value is not hex"));
        };
        hash_line(&mut h, &line);
        match counts.get_mut(&entry.tree) {
            Some(c) => *c += 1,
            None => {
                counts.insert(entry.tree.clone(), 1);
                order.push(entry.tree.clone());
            }
        }
        each(&entry.tree, key, value)?;
    }
    Err(bad(n, "the file ends before its last line: it was cut short"))
}

/// Restores the backup at `from` into the database dir `dir` (see `SledStore::restore`).
pub fn restore(from: &Path, dir: &Path) -> Result<RestoreReport, StoreError> {
    read(from, |_, _, _| Ok(()))?;
    std::fs::create_dir_all(dir)?;
    // Whatever is in the dir goes aside, unless another process has it open.
    sled_db::not_in_use(dir)?;
    let replaced = sled_db::move_aside(dir, "replaced")?;
    let open = sled_db::start_new(dir)?;
    let mut trees: BTreeMap<String, sled::Tree> = BTreeMap::new();
    let restored = read(from, |tree, k, v| {
        if !trees.contains_key(tree) {
            trees.insert(tree.to_string(), open.db.open_tree(tree).map_err(sled_db::db_err)?);
        }
        trees[tree].insert(k, v).map(|_| ()).map_err(sled_db::db_err)
    })?;
    sled_db::finish(&open, dir)?;
    Ok(RestoreReport { restored, replaced })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(unhex(&hex(&bytes)).unwrap(), bytes);
        assert!(unhex("abc").is_none());
        assert!(unhex("zz").is_none());
        assert!(unhex("é1").is_none());
    }
}
