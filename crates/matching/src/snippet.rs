//! Cropping a section for a chat message: whole sentences around the ones that match the
//! question best, at most about `max_chars` characters, with the matched words marked so a front
//! end can bold them.

use super::index::{Index, TermId};
use super::normalize::Analysis;

/// A piece of a section with the byte ranges (into `text`) of matched words.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snippet {
    pub text: String,
    pub highlights: Vec<(usize, usize)>,
}

impl Snippet {
    /// The text with each highlight wrapped in `open`/`close`, every piece passed through `escape`.
    pub fn render(&self, open: &str, close: &str, escape: impl Fn(&str) -> String) -> String {
        let mut out = String::with_capacity(self.text.len() + self.highlights.len() * 8);
        let mut at = 0;
        for &(s, e) in &self.highlights {
            // Highlights come from word spans; one that does not fit is dropped, never a panic.
            if s < at || e < s || !self.text.is_char_boundary(s) || self.text.get(s..e).is_none() {
                continue;
            }
            out.push_str(&escape(&self.text[at..s]));
            out.push_str(open);
            out.push_str(&escape(&self.text[s..e]));
            out.push_str(close);
            at = e;
        }
        out.push_str(&escape(&self.text[at..]));
        out
    }
}

/// Sentence spans of `text`: ends at `.`, `!`, `?`, `…` (and CJK full stops) followed by space,
/// and at line breaks.
fn sentences(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let end_here = match c {
            '\n' => true,
            '。' | '！' | '？' => true,
            '.' | '!' | '?' | '…' => chars.peek().is_none_or(|(_, n)| n.is_whitespace()),
            _ => false,
        };
        if end_here {
            let end = i + c.len_utf8();
            if !text[start..end].trim().is_empty() {
                out.push((start, end));
            }
            start = end;
        }
    }
    if !text[start..].trim().is_empty() {
        out.push((start, text.len()));
    }
    // Trim the spaces between sentences out of the spans.
    out.into_iter()
        .map(|(s, e)| {
            let t = &text[s..e];
            let lead = t.len() - t.trim_start().len();
            let trail = t.len() - t.trim_end().len();
            (s + lead, e - trail)
        })
        .collect()
}

/// Builds the snippet of `text` for a query that matched `terms` (sorted).
pub fn snippet(index: &Index, text: &str, terms: &[TermId], max_chars: usize, analysis: &mut Analysis) -> Snippet {
    index.normalizer.analyze(text, analysis);
    let mut marks: Vec<(usize, usize, TermId)> = Vec::new();
    for (i, w) in analysis.words.iter().enumerate() {
        if w.stop {
            continue;
        }
        let surface = analysis.surface(w);
        if let Some(t) = index.exact_term(surface) {
            if terms.binary_search(&t).is_ok() {
                marks.push((w.start as usize, w.end as usize, t));
                continue;
            }
        }
        // "sit-ups" matched as one word: mark both halves.
        if w.hyphen_before && i > 0 {
            let joined = format!("{}{}", analysis.surface(&analysis.words[i - 1]), surface);
            if let Some(t) = index.term_of_surface(&joined).filter(|t| terms.binary_search(t).is_ok()) {
                let prev = analysis.words[i - 1];
                marks.push((prev.start as usize, w.end as usize, t));
            }
        }
    }
    marks.sort_unstable_by_key(|m| m.0);
    // Overlaps come from hyphen pairs: keep the wider mark.
    let mut merged: Vec<(usize, usize, TermId)> = Vec::with_capacity(marks.len());
    for m in marks {
        match merged.last_mut() {
            Some(last) if m.0 < last.1 => last.1 = last.1.max(m.1),
            _ => merged.push(m),
        }
    }
    let marks = merged;

    if text.chars().count() <= max_chars {
        return Snippet { text: text.to_string(), highlights: marks.iter().map(|m| (m.0, m.1)).collect() };
    }
    let sents = sentences(text);
    if sents.is_empty() {
        return Snippet::default();
    }
    // Score sentences by the distinct matched terms they hold, weighted by idf.
    let mut best = 0;
    let mut best_score = -1.0f32;
    let mut seen: Vec<TermId> = Vec::new();
    for (si, &(s, e)) in sents.iter().enumerate() {
        seen.clear();
        let mut score = 0.0;
        for m in marks.iter().filter(|m| m.0 >= s && m.1 <= e) {
            if !seen.contains(&m.2) {
                seen.push(m.2);
                score += index.term(m.2).idf;
            }
        }
        // Earlier sentences win ties: they usually introduce what follows.
        if score > best_score {
            best_score = score;
            best = si;
        }
    }
    let len = |a: usize, b: usize| text[sents[a].0..sents[b].1].chars().count();
    let (mut lo, mut hi) = (best, best);
    loop {
        let grow_hi = hi + 1 < sents.len() && len(lo, hi + 1) <= max_chars;
        if grow_hi {
            hi += 1;
        }
        let grow_lo = lo > 0 && len(lo - 1, hi) <= max_chars && (best_score > 0.0 || hi + 1 >= sents.len());
        if grow_lo {
            lo -= 1;
        }
        if !grow_hi && !grow_lo {
            break;
        }
    }
    let (mut s, mut e) = (sents[lo].0, sents[hi].1);
    if len(lo, hi) > max_chars {
        // One sentence longer than the budget: cut it at word boundaries around its first match.
        let focus = marks.iter().find(|m| m.0 >= s && m.1 <= e).map_or(s, |m| m.0);
        let (cs, ce) = crop(text, s, e, focus, max_chars);
        s = cs;
        e = ce;
    }
    let lead = if s > 0 { "… " } else { "" };
    let trail = if e < text.len() { " …" } else { "" };
    let mut out = String::with_capacity(e - s + 8);
    out.push_str(lead);
    out.push_str(&text[s..e]);
    out.push_str(trail);
    let shift = lead.len();
    let highlights =
        marks.iter().filter(|m| m.0 >= s && m.1 <= e).map(|m| (m.0 - s + shift, m.1 - s + shift)).collect();
    Snippet { text: out, highlights }
}

/// A window of about `max_chars` characters of `text[s..e]` containing `focus`, cut at spaces.
fn crop(text: &str, s: usize, e: usize, focus: usize, max_chars: usize) -> (usize, usize) {
    let before = max_chars / 4;
    let mut start = text[s..focus].char_indices().rev().take(before).last().map_or(focus, |(i, _)| s + i);
    let mut end = text[start..e].char_indices().take(max_chars).last().map_or(start, |(i, c)| start + i + c.len_utf8());
    // Move inward to word boundaries.
    if start > s {
        if let Some(sp) = text[start..end].find(' ') {
            start += sp + 1;
        }
    }
    if end < e {
        if let Some(sp) = text[start..end].rfind(' ') {
            end = start + sp;
        }
    }
    (start, end.max(start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentence_spans() {
        let t = "One. Two! Three?\nFour… Five 3.5 km";
        let s: Vec<&str> = sentences(t).iter().map(|&(a, b)| &t[a..b]).collect();
        assert_eq!(s, vec!["One.", "Two!", "Three?", "Four…", "Five 3.5 km"]);
    }

    #[test]
    fn render_escapes_and_marks() {
        let s = Snippet { text: "a <b> c".into(), highlights: vec![(2, 5)] };
        let html = s.render("<b>", "</b>", |t| t.replace('<', "&lt;").replace('>', "&gt;"));
        assert_eq!(html, "a <b>&lt;b&gt;</b> c");
    }

    #[test]
    fn crop_stays_in_bounds() {
        let t = "word ".repeat(100);
        let (a, b) = crop(&t, 0, t.len(), 250, 50);
        assert!(a <= 250 && b >= a && b <= t.len());
        assert!(t[a..b].chars().count() <= 50);
    }
}
