//! Word segmentation by UAX #29, fast for ASCII. `unicode-segmentation` looks every character up
//! in its tables, which made segmentation most of the cost of indexing; most text is ASCII, whose
//! word-break classes fit in a `match`. Text is cut at ASCII whitespace, where UAX #29 always
//! has a boundary, and each piece is segmented on its own: by hand when it is ASCII, by
//! `unicode-segmentation` otherwise. The words (and their offsets) are exactly those of
//! `split_word_bound_indices`; only runs of whitespace may come in different pieces, and those
//! are never words.

use unicode_segmentation::UnicodeSegmentation;

/// Calls `f(start, segment)` for the word-boundary segments of `text`, in order.
pub fn for_each_segment<'t>(text: &'t str, mut f: impl FnMut(usize, &'t str)) {
    let bytes = text.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        if let Some(end) = clean_space(bytes, start) {
            f(start, &text[start..end]);
            start = end;
            continue;
        }
        let end = piece_end(bytes, start);
        let piece = &text[start..end];
        if piece.is_ascii() {
            ascii_segments(piece.as_bytes(), |s, e| f(start + s, &piece[s..e]));
        } else {
            for (s, seg) in piece.split_word_bound_indices() {
                f(start + s, seg);
            }
        }
        start = end;
    }
}

/// The end of the run of ASCII whitespace at `i`, when there is one and an ASCII character (or
/// the end of the text) follows it: UAX #29 has a boundary on both sides of such a run. Before a
/// non-ASCII character it may not (a combining mark after spaces belongs to their segment), so
/// such a run goes to `unicode-segmentation` with what follows.
fn clean_space(bytes: &[u8], i: usize) -> Option<usize> {
    if !bytes.get(i)?.is_ascii_whitespace() {
        return None;
    }
    let end = bytes[i..].iter().position(|b| !b.is_ascii_whitespace()).map_or(bytes.len(), |n| i + n);
    bytes.get(end).is_none_or(u8::is_ascii).then_some(end)
}

/// The end of the piece starting at `start`: the next clean run of whitespace, or the end of the
/// text. Ends fall on char boundaries, since they are at ASCII bytes.
fn piece_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        if bytes[i].is_ascii_whitespace() {
            if clean_space(bytes, i).is_some() {
                return i;
            }
            // A run before a non-ASCII character: skip it whole.
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            continue;
        }
        i += 1;
    }
    bytes.len()
}

/// Word-break classes of the ASCII characters that are not whitespace.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Letter,
    Numeric,
    /// `:`
    MidLetter,
    /// `,` `;`
    MidNum,
    /// `.` and the apostrophe (MidNumLet and Single_Quote behave alike without Hebrew letters).
    MidNumLet,
    /// `_`
    ExtendNumLet,
    Other,
}

const fn class_of(b: u8) -> Class {
    match b {
        b'a'..=b'z' | b'A'..=b'Z' => Class::Letter,
        b'0'..=b'9' => Class::Numeric,
        b':' => Class::MidLetter,
        b',' | b';' => Class::MidNum,
        b'.' | b'\'' => Class::MidNumLet,
        b'_' => Class::ExtendNumLet,
        _ => Class::Other,
    }
}

const CLASSES: [Class; 128] = {
    let mut table = [Class::Other; 128];
    let mut b = 0;
    while b < 128 {
        table[b] = class_of(b as u8);
        b += 1;
    }
    table
};

#[inline]
fn class(b: u8) -> Class {
    CLASSES.get(b as usize).copied().unwrap_or(Class::Other)
}

/// The class of `piece[i]`, `Other` outside the piece.
#[inline]
fn class_at(piece: &[u8], i: Option<usize>) -> Class {
    i.and_then(|i| piece.get(i)).map_or(Class::Other, |&b| class(b))
}

/// Calls `f(start, end)` for the segments of an ASCII piece without whitespace.
fn ascii_segments(piece: &[u8], mut f: impl FnMut(usize, usize)) {
    let Some(&first) = piece.first() else { return };
    let mut start = 0;
    let mut prev = class(first);
    for (i, &b) in piece.iter().enumerate().skip(1) {
        let next = class(b);
        if !joined(piece, i, prev, next) {
            f(start, i);
            start = i;
        }
        prev = next;
    }
    f(start, piece.len());
}

/// Whether UAX #29 keeps `piece[i - 1]` (of class `prev`) and `piece[i]` (of class `next`) in
/// one segment: rules WB5 to WB13b as they apply to ASCII. Only the rules about punctuation
/// between letters or digits look further.
#[inline]
fn joined(piece: &[u8], i: usize, prev: Class, next: Class) -> bool {
    use Class::*;
    match (prev, next) {
        // WB5, WB8, WB9, WB10: letters and digits run together.
        (Letter | Numeric, Letter | Numeric) => true,
        // WB13a, WB13b: `_` joins words.
        (Letter | Numeric | ExtendNumLet, ExtendNumLet) | (ExtendNumLet, Letter | Numeric) => true,
        // WB6, WB7: "can't", "e.g", "a:b".
        (Letter, MidLetter | MidNumLet) => class_at(piece, i.checked_add(1)) == Letter,
        (MidLetter | MidNumLet, Letter) => class_at(piece, i.checked_sub(2)) == Letter,
        // WB11, WB12: "3.5", "1,000".
        (Numeric, MidNum | MidNumLet) => class_at(piece, i.checked_add(1)) == Numeric,
        (MidNum | MidNumLet, Numeric) => class_at(piece, i.checked_sub(2)) == Numeric,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours(text: &str) -> Vec<(usize, &str)> {
        let mut out = Vec::new();
        for_each_segment(text, |s, seg| out.push((s, seg)));
        out
    }

    /// The segments that can be words: whitespace runs may be cut differently.
    fn words(segs: Vec<(usize, &str)>) -> Vec<(usize, &str)> {
        segs.into_iter().filter(|(_, s)| !s.chars().all(char::is_whitespace)).collect()
    }

    fn check(text: &str) {
        let reference: Vec<(usize, &str)> = text.split_word_bound_indices().collect();
        assert_eq!(words(ours(text)), words(reference), "{text:?}");
    }

    #[test]
    fn every_short_ascii_string_matches_unicode_segmentation() {
        // All printable ASCII in strings of up to 3 characters, then the characters that have a
        // class of their own (plus space) in strings of 4 and 5.
        let all: Vec<char> = (0x20u8..0x7f).map(char::from).collect();
        let mut s = String::new();
        for &a in &all {
            for &b in &all {
                for &c in &all {
                    s.clear();
                    s.extend([a, b, c]);
                    check(&s);
                }
            }
        }
        let few = ['a', 'Z', '5', ':', ',', ';', '.', '\'', '_', '-', ' ', '"', '!'];
        for &a in &few {
            for &b in &few {
                for &c in &few {
                    for &d in &few {
                        for &e in &few {
                            s.clear();
                            s.extend([a, b, c, d, e]);
                            check(&s);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn mixed_text_matches_unicode_segmentation() {
        let alphabet = [
            "a", "b", "Z", "7", " ", "  ", "\n", "\r\n", "\t", ".", ",", ":", "'", "_", "-", "’", "é", "e\u{301}",
            " \u{301}", "\u{a0}", "膝", "盖", "🏃", "\u{200d}", "👍🏽", "ß", "Ｋ", "—", "\u{93e}", "א", "\"", "ア", "ー",
        ];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = (next() % 12) as usize;
            let text: String = (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
            check(&text);
        }
        check("What causes knee pain when running? Don’t run 3.5 km, e.g. on a treadmill: sit-ups_ok.");
    }
}
