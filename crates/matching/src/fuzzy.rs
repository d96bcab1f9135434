//! Typo tolerance without scanning the vocabulary: a symmetric-delete index (the SymSpell idea).
//! Every vocabulary word is stored under the hashes of its prefix with up to two characters
//! deleted; a query word looks up its own deletes, and only the words found there are compared
//! with `strsim::osa_distance`. Typo budget follows Meilisearch: none below 4 letters (4 letters:
//! one swap of neighbours), 1 from 5 letters, 2 from 9; a wrong first letter counts double.

/// Deletes are taken from this many leading characters: typos further in are caught by the
/// final distance check, and the index stays small.
const PREFIX: usize = 7;

use articlebot_knowledge::Fnv1a;

#[derive(Debug, Default)]
pub struct FuzzyIndex {
    /// (hash of a delete variant, word id), sorted for range lookups.
    entries: Vec<(u64, u32)>,
}

fn hash_chars(chars: &[char], skip_a: usize, skip_b: usize) -> u64 {
    let mut h = Fnv1a::new();
    for (i, &c) in chars.iter().enumerate() {
        if i != skip_a && i != skip_b {
            h.push(u64::from(c));
        }
    }
    h.finish()
}

/// Calls `f` with the hash of every variant of `prefix` with up to `max_deletes` characters removed.
fn for_each_delete(prefix: &[char], max_deletes: usize, mut f: impl FnMut(u64)) {
    let n = prefix.len();
    f(hash_chars(prefix, usize::MAX, usize::MAX));
    if max_deletes >= 1 && n > 1 {
        for i in 0..n {
            f(hash_chars(prefix, i, usize::MAX));
        }
    }
    if max_deletes >= 2 && n > 2 {
        for i in 0..n {
            for j in i + 1..n {
                f(hash_chars(prefix, i, j));
            }
        }
    }
}

fn prefix_chars(word: &str, buf: &mut [char; PREFIX]) -> usize {
    let mut n = 0;
    for c in word.chars().take(PREFIX) {
        buf[n] = c;
        n += 1;
    }
    n
}

/// Typos allowed in a query word of `len` characters.
pub fn typo_budget(len: usize) -> usize {
    match len {
        0..=3 => 0,
        4..=8 => 1,
        _ => 2,
    }
}

/// The cost of reading `query` as `word`, if within budget: edit distance (with swaps of
/// neighbours as one edit), plus one when the first letter differs.
pub fn typo_cost(query: &str, word: &str, qlen: usize) -> Option<usize> {
    let budget = typo_budget(qlen);
    if budget == 0 {
        return None;
    }
    let wlen = word.chars().count();
    if wlen.abs_diff(qlen) > budget {
        return None;
    }
    let d = strsim::osa_distance(query, word);
    if d == 0 {
        return Some(0);
    }
    let first_differs = query.chars().next() != word.chars().next();
    let cost = d + usize::from(first_differs);
    // Four letters allow only a swap of neighbours ("pian" for "pain"), which keeps the letters.
    if qlen == 4 && !(d == 1 && wlen == 4 && same_letters(query, word)) {
        return None;
    }
    (cost <= budget).then_some(cost)
}

fn same_letters(a: &str, b: &str) -> bool {
    let mut x: Vec<char> = a.chars().collect();
    let mut y: Vec<char> = b.chars().collect();
    x.sort_unstable();
    y.sort_unstable();
    x == y
}

impl FuzzyIndex {
    /// Indexes `words` by position; ids passed to the callback of `candidates` are these positions.
    pub fn build<'a>(words: impl Iterator<Item = &'a str>) -> Self {
        let mut entries = Vec::new();
        let mut buf = ['\0'; PREFIX];
        for (id, w) in words.enumerate() {
            let len = w.chars().count();
            if len < 3 || w.chars().all(|c| c.is_numeric()) {
                continue;
            }
            let n = prefix_chars(w, &mut buf);
            // A word of 7+ letters can be reached by a query of 9+ letters with two typos.
            let deletes = if len >= 7 { 2 } else { 1 };
            for_each_delete(&buf[..n], deletes, |h| entries.push((h, id as u32)));
        }
        entries.sort_unstable();
        entries.dedup();
        entries.shrink_to_fit();
        FuzzyIndex { entries }
    }

    /// Calls `f(word_id)` for every indexed word that may be within the typo budget of `query`
    /// (possibly more than once, and possibly out of budget: the caller checks with `typo_cost`).
    /// Entries held (a word appears under each of its delete variants).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn candidates(&self, query: &str, mut f: impl FnMut(u32)) {
        let len = query.chars().count();
        let budget = typo_budget(len);
        if budget == 0 || query.chars().all(|c| c.is_numeric()) {
            return;
        }
        let mut buf = ['\0'; PREFIX];
        let n = prefix_chars(query, &mut buf);
        for_each_delete(&buf[..n], budget, |h| {
            let start = self.entries.partition_point(|e| e.0 < h);
            for e in &self.entries[start..] {
                if e.0 != h {
                    break;
                }
                f(e.1);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(words: &[&str], q: &str) -> Vec<String> {
        let idx = FuzzyIndex::build(words.iter().copied());
        let mut ids = Vec::new();
        idx.candidates(q, |i| ids.push(i));
        ids.sort_unstable();
        ids.dedup();
        let qlen = q.chars().count();
        ids.into_iter()
            .map(|i| words[i as usize])
            .filter(|w| typo_cost(q, w, qlen).is_some())
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn budgets_follow_word_length() {
        let words = ["running", "pain", "knee", "exercises", "abdominal", "treadmill"];
        assert_eq!(find(&words, "runing"), vec!["running"]);
        assert_eq!(find(&words, "pian"), vec!["pain"], "a swap in four letters");
        assert!(find(&words, "kned").is_empty(), "no substitution in four letters");
        assert_eq!(find(&words, "excercies"), vec!["exercises"], "two typos from nine letters");
        assert!(find(&words, "ab").is_empty());
        assert_eq!(find(&words, "abdomnial"), vec!["abdominal"]);
        assert_eq!(find(&words, "tredmill"), vec!["treadmill"]);
    }

    #[test]
    fn first_letter_typos_cost_more() {
        let words = ["running", "cunning"];
        assert_eq!(find(&words, "dunning"), Vec::<String>::new());
        assert_eq!(typo_cost("xexercises", "exercises", 10), Some(2));
    }

    #[test]
    fn typos_past_the_prefix_are_found() {
        let words = ["strengthening"];
        assert_eq!(find(&words, "strengtheninq"), vec!["strengthening"]);
        assert_eq!(find(&words, "strengthenign"), vec!["strengthening"]);
    }

    #[test]
    fn non_latin_words() {
        let words = ["колено", "упражнение"];
        assert_eq!(find(&words, "калено"), vec!["колено"]);
    }
}
