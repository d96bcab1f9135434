//! A fast hasher for the matcher's own tables (the Fx hash of rustc and Firefox). The default
//! SipHash resists collision attacks, which these tables do not need: their keys come from the
//! knowledge base, and user input only looks keys up. Hashing every word of every section
//! with SipHash was a fifth of the cost of indexing.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// Multiplier of the Fx hash (from rustc-hash).
const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

#[derive(Debug, Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(c);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            // The length keeps "a" and "a\0" apart.
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    /// The product's high bits are its best mixed; the table takes its bucket from the low
    /// bits, so they are rotated down (as rustc-hash 2 does).
    #[inline]
    fn finish(&self) -> u64 {
        self.hash.rotate_left(26)
    }
}

pub type FxBuildHasher = BuildHasherDefault<FxHasher>;
pub type FxHashMap<K, V> = HashMap<K, V, FxBuildHasher>;
pub type FxHashSet<T> = HashSet<T, FxBuildHasher>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_work_with_string_and_array_keys() {
        let mut m: FxHashMap<Box<str>, u32> = FxHashMap::default();
        for (i, w) in ["a", "a\0", "knee", "knees", "", "running shoes"].iter().enumerate() {
            m.insert((*w).into(), i as u32);
        }
        assert_eq!(m.len(), 6);
        assert_eq!(m.get("knees"), Some(&3));
        assert_eq!(m.get("a\0"), Some(&1));
        let mut p: FxHashMap<[u32; 3], u32> = FxHashMap::default();
        p.insert([1, 2, u32::MAX], 7);
        assert_eq!(p.get(&[1, 2, u32::MAX]), Some(&7));
        assert_eq!(p.get(&[2, 1, u32::MAX]), None);
    }
}
