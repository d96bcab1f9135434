//! Embedded texts kept on disk, so that a restart or a reload embeds only what changed. One file
//! per model (`<cache dir>/vectors-<model id>.bin`), keyed by the hash of each embedded text;
//! written whole to a temporary file and renamed, so a crash leaves the old file or the new one.
//!
//! Format: `ABVECS01`, the vector length (u32 LE), the count (u64 LE), then per entry the text
//! hash (u64 LE) and the vector (f32 LE). A file that does not read as that is ignored (and
//! replaced at the next save), never an error: the vectors can always be made again.

use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use articlebot_embed::Model;
use articlebot_knowledge::Fnv1a;

const MAGIC: &[u8; 8] = b"ABVECS01";

/// What decides a model's vectors: the content of its defining files, its window and prompts.
/// Two dirs holding the same model share vectors; a changed file makes new ones.
pub fn model_identity(model: &Model) -> Result<u64, std::io::Error> {
    let mut h = Fnv1a::new();
    for name in Model::DEFINING_FILES {
        let path = model.dir().join(name);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        h.push(bytes.len() as u64);
        // Eight bytes at a time: hashing the 90 MB of weights byte by byte would take a tenth of
        // a second at every start.
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            h.push(u64::from_le_bytes(c.try_into().unwrap_or_default()));
        }
        for &b in chunks.remainder() {
            h.push(u64::from(b));
        }
    }
    h.push(model.window() as u64);
    for b in model.query_prefix().bytes().chain([0xff]).chain(model.document_prefix().bytes()) {
        h.push(u64::from(b));
    }
    Ok(h.finish())
}

/// The key of an embedded text.
pub fn text_key(text: &str) -> u64 {
    articlebot_knowledge::stable_hash(text)
}

/// The vectors of one model, read from the cache dir.
#[derive(Debug)]
pub struct VectorCache {
    path: PathBuf,
    dim: usize,
    keys: HashMap<u64, u32>,
    vectors: Vec<f32>,
}

impl VectorCache {
    /// The cache of `model_id` in `dir`; empty when there is none yet. A file that cannot be
    /// read as a cache is ignored (`damaged` says so): its vectors are made again.
    pub fn open(dir: &Path, model_id: u64, dim: usize) -> (VectorCache, bool) {
        let path = dir.join(format!("vectors-{model_id:016x}.bin"));
        let mut cache = VectorCache { path, dim, keys: HashMap::new(), vectors: Vec::new() };
        let mut damaged = false;
        if let Ok(bytes) = std::fs::read(&cache.path) {
            if !cache.read(&bytes) {
                damaged = true;
                cache.keys.clear();
                cache.vectors.clear();
            }
        }
        (cache, damaged)
    }

    fn read(&mut self, bytes: &[u8]) -> bool {
        let header = 8 + 4 + 8;
        if bytes.len() < header || &bytes[..8] != MAGIC {
            return false;
        }
        let dim = u32::from_le_bytes(bytes[8..12].try_into().unwrap_or_default()) as usize;
        let count = u64::from_le_bytes(bytes[12..20].try_into().unwrap_or_default()) as usize;
        let entry = 8 + 4 * dim;
        if dim != self.dim || count.checked_mul(entry).and_then(|n| n.checked_add(header)) != Some(bytes.len()) {
            return false;
        }
        self.vectors.reserve(count * dim);
        for (i, e) in bytes[header..].chunks_exact(entry).enumerate() {
            let key = u64::from_le_bytes(e[..8].try_into().unwrap_or_default());
            self.keys.insert(key, i as u32);
            self.vectors.extend(e[8..].chunks_exact(4).map(|f| f32::from_le_bytes(f.try_into().unwrap_or_default())));
        }
        true
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn get(&self, key: u64) -> Option<&[f32]> {
        let i = *self.keys.get(&key)? as usize * self.dim;
        self.vectors.get(i..i + self.dim)
    }

    /// Replaces the file with exactly `entries` (what the knowledge base uses now: texts no
    /// longer used are dropped).
    pub fn save<'a>(&self, entries: impl ExactSizeIterator<Item = (u64, &'a [f32])>) -> Result<(), std::io::Error> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension(format!("tmp-{}", std::process::id()));
        let write = || -> Result<(), std::io::Error> {
            let mut out = BufWriter::new(std::fs::File::create(&tmp)?);
            out.write_all(MAGIC)?;
            out.write_all(&(self.dim as u32).to_le_bytes())?;
            out.write_all(&(entries.len() as u64).to_le_bytes())?;
            for (key, v) in entries {
                out.write_all(&key.to_le_bytes())?;
                for x in v {
                    out.write_all(&x.to_le_bytes())?;
                }
            }
            out.into_inner().map_err(|e| e.into_error())?.sync_all()
        };
        let written = write().and_then(|()| std::fs::rename(&tmp, &self.path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// How each long text was cut into the model's windows (byte ranges), kept beside the vectors:
/// finding the cuts means tokenizing every section, which would otherwise be most of a warm
/// start. File `<cache dir>/windows-<model id>.bin`: `ABWNDW01`, the count (u64 LE), then per
/// text its hash (u64 LE), the number of ranges (u32 LE) and each range's start and end (u32 LE).
#[derive(Debug)]
pub struct WindowCache {
    path: PathBuf,
    spans: HashMap<u64, Vec<(u32, u32)>>,
}

const WINDOWS_MAGIC: &[u8; 8] = b"ABWNDW01";

impl WindowCache {
    pub fn open(dir: &Path, model_id: u64) -> WindowCache {
        let path = dir.join(format!("windows-{model_id:016x}.bin"));
        let spans = std::fs::read(&path).ok().and_then(|b| Self::read(&b)).unwrap_or_default();
        WindowCache { path, spans }
    }

    fn read(bytes: &[u8]) -> Option<HashMap<u64, Vec<(u32, u32)>>> {
        let mut at: usize = 0;
        let mut take = |n: usize| -> Option<&[u8]> {
            let s = bytes.get(at..at.checked_add(n)?)?;
            at += n;
            Some(s)
        };
        if take(8)? != WINDOWS_MAGIC {
            return None;
        }
        let u32_of = |b: &[u8]| u32::from_le_bytes(b.try_into().unwrap_or_default());
        let count = u64::from_le_bytes(take(8)?.try_into().ok()?);
        let mut spans = HashMap::new();
        for _ in 0..count {
            let key = u64::from_le_bytes(take(8)?.try_into().ok()?);
            let n = u32_of(take(4)?) as usize;
            let mut list = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                list.push((u32_of(take(4)?), u32_of(take(4)?)));
            }
            spans.insert(key, list);
        }
        (at == bytes.len()).then_some(spans)
    }

    /// The cuts of the text with this hash, when they fit it (a damaged file gives none).
    pub fn get(&self, key: u64, text: &str) -> Option<Vec<(usize, usize)>> {
        let list = self.spans.get(&key)?;
        let ok = !list.is_empty()
            && list.iter().all(|&(a, b)| {
                let (a, b) = (a as usize, b as usize);
                a < b && b <= text.len() && text.is_char_boundary(a) && text.is_char_boundary(b)
            });
        ok.then(|| list.iter().map(|&(a, b)| (a as usize, b as usize)).collect())
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether the file holds exactly these cuts for this text hash.
    pub fn spans_equal(&self, key: u64, spans: &[(usize, usize)]) -> bool {
        self.spans.get(&key).is_some_and(|l| {
            l.len() == spans.len() && l.iter().zip(spans).all(|(&(a, b), &(x, y))| (a as usize, b as usize) == (x, y))
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the file with exactly `entries`.
    pub fn save<'a>(&self, entries: impl ExactSizeIterator<Item = (u64, &'a [(usize, usize)])>) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut bytes = Vec::with_capacity(16 + entries.len() * 20);
        bytes.extend_from_slice(WINDOWS_MAGIC);
        bytes.extend_from_slice(&(entries.len() as u64).to_le_bytes());
        for (key, list) in entries {
            bytes.extend_from_slice(&key.to_le_bytes());
            bytes.extend_from_slice(&(list.len() as u32).to_le_bytes());
            for &(a, b) in list {
                bytes.extend_from_slice(&(a as u32).to_le_bytes());
                bytes.extend_from_slice(&(b as u32).to_le_bytes());
            }
        }
        let tmp = self.path.with_extension(format!("tmp-{}", std::process::id()));
        let written = std::fs::write(&tmp, &bytes).and_then(|()| std::fs::rename(&tmp, &self.path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_vectors_read_back_and_a_damaged_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let (empty, damaged) = VectorCache::open(dir.path(), 7, 3);
        assert!(empty.len() == 0 && !damaged);
        let a = [0.5f32, -1.0, 2.0];
        let b = [0.0f32, 0.25, -0.125];
        empty.save([(1u64, &a[..]), (2, &b[..])].into_iter()).unwrap();
        let (c, _) = VectorCache::open(dir.path(), 7, 3);
        assert_eq!((c.len(), c.get(1), c.get(2), c.get(3)), (2, Some(&a[..]), Some(&b[..]), None));
        assert_eq!(VectorCache::open(dir.path(), 8, 3).0.len(), 0, "another model, another file");
        assert_eq!(VectorCache::open(dir.path(), 7, 4).0.len(), 0, "another length is not read");
        let bytes = std::fs::read(c.path()).unwrap();
        std::fs::write(c.path(), &bytes[..bytes.len() - 3]).unwrap();
        assert!(VectorCache::open(dir.path(), 7, 3).1, "a cut file is ignored");
        std::fs::write(c.path(), b"garbage").unwrap();
        assert_eq!(VectorCache::open(dir.path(), 7, 3).0.len(), 0);
    }

    #[test]
    fn window_cuts_read_back_and_never_cut_outside_their_text() {
        let dir = tempfile::tempdir().unwrap();
        let w = WindowCache::open(dir.path(), 7);
        assert_eq!(w.len(), 0);
        let cuts = [(0usize, 4usize), (2, 7)];
        w.save([(1u64, &cuts[..])].into_iter()).unwrap();
        let w = WindowCache::open(dir.path(), 7);
        assert_eq!(w.get(1, "abcdefgh"), Some(cuts.to_vec()));
        assert_eq!(w.get(1, "abc"), None, "a text shorter than its cuts is cut again");
        assert_eq!(w.get(1, "aé€€€€"), None, "a cut inside a character is refused");
        assert_eq!(w.get(2, "abcdefgh"), None);
        let path = dir.path().join("windows-0000000000000007.bin");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        assert_eq!(WindowCache::open(dir.path(), 7).len(), 0, "a cut file is ignored");
    }
}
