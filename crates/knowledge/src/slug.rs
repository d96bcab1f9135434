//! Stable article ids: a slug of the title, and the short key used where ids do not fit
//! (Telegram callback data and deep links are limited to 64 bytes of `[A-Za-z0-9_-]`).

/// Longest id the importer produces; longer titles are cut on a word boundary.
pub const MAX_ID_LEN: usize = 80;

/// The slug of a title: ASCII (transliterated by `deunicode`), lower case, words joined by `-`.
/// A title with nothing to transliterate (only emoji, say) gets `topic-<key>`.
pub fn slugify(title: &str) -> String {
    let ascii = deunicode::deunicode(title);
    let mut slug = String::with_capacity(ascii.len());
    let mut pending_dash = false;
    for c in ascii.chars() {
        if c.is_ascii_alphanumeric() {
            if pending_dash && !slug.is_empty() {
                slug.push('-');
            }
            pending_dash = false;
            slug.push(c.to_ascii_lowercase());
        } else if c == '\'' {
            // "can't" -> "cant", not "can-t"
        } else {
            pending_dash = true;
        }
    }
    if slug.len() > MAX_ID_LEN {
        let cut = slug[..MAX_ID_LEN].rfind('-').unwrap_or(MAX_ID_LEN);
        slug.truncate(cut);
    }
    if slug.is_empty() {
        return format!("topic-{}", key_slug(title));
    }
    slug
}

/// Whether `id` is a valid article id: what `slugify` produces, so it is safe as a file name.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 120
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && !id.starts_with('-')
}

/// The 64-bit FNV-1a hash, fed one unit (a byte, a character, a number) at a time. Stable across
/// builds and platforms (unlike `DefaultHasher`), which matters where hashes outlive the process:
/// keys are stored in buttons users tap days later.
#[derive(Debug, Clone, Copy)]
pub struct Fnv1a(u64);

impl Fnv1a {
    pub const fn new() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }

    pub fn push(&mut self, unit: u64) {
        self.0 ^= unit;
        self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
    }

    pub fn finish(self) -> u64 {
        self.0
    }
}

impl Default for Fnv1a {
    fn default() -> Self {
        Self::new()
    }
}

/// FNV-1a of the text's bytes.
pub fn stable_hash(text: &str) -> u64 {
    let mut h = Fnv1a::new();
    for &b in text.as_bytes() {
        h.push(u64::from(b));
    }
    h.finish()
}

const KEY_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// Characters in a short key: 48 bits, so collisions are negligible for any real knowledge base
/// and the loader reports one if it ever happens.
pub const KEY_LEN: usize = 8;

/// The short key of an id: 8 characters of URL-safe base64 over 48 bits of its hash.
pub fn short_key(id: &str) -> String {
    let h = stable_hash(id);
    (0..KEY_LEN).map(|i| KEY_ALPHABET[((h >> (i * 6)) & 63) as usize] as char).collect()
}

/// Whether `s` has the shape of a short key (the callback data and deep links of old messages
/// are checked with this before anything is looked up).
pub fn is_key(s: &str) -> bool {
    s.len() == KEY_LEN && s.bytes().all(|b| KEY_ALPHABET.contains(&b))
}

/// The short key of `text` in id characters (lower case, `-`), to tell apart titles whose slugs
/// collide.
pub fn key_slug(text: &str) -> String {
    short_key(text).to_ascii_lowercase().replace('_', "-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_ascii_and_readable() {
        assert_eq!(slugify("What causes knee pain when running?"), "what-causes-knee-pain-when-running");
        assert_eq!(
            slugify("What should I do if I can’t play basketball?"),
            "what-should-i-do-if-i-cant-play-basketball"
        );
        assert_eq!(slugify("6 \"self-torture\" fitness methods"), "6-self-torture-fitness-methods");
        assert_eq!(slugify("Что такое бег"), "chto-takoe-beg");
        assert_eq!(slugify("Crème brûlée"), "creme-brulee");
    }

    #[test]
    fn slug_of_untransliterable_title_is_keyed() {
        let s = slugify("\u{e000}\u{e001}");
        assert!(s.starts_with("topic-"), "{s}");
        assert!(is_valid_id(&s));
        assert_eq!(s, slugify("\u{e000}\u{e001}"));
        assert_ne!(s, slugify("\u{e000}"));
        assert_eq!(slugify("🏃 running"), "runner-running", "emoji are transliterated to names");
    }

    #[test]
    fn long_titles_are_cut_on_a_word() {
        let s = slugify(&"word ".repeat(40));
        assert!(s.len() <= MAX_ID_LEN);
        assert!(s.ends_with("word"));
    }

    #[test]
    fn id_validation_rejects_paths() {
        assert!(is_valid_id("knee-pain"));
        for bad in ["", "../etc", "a/b", "A", "-x", "a b", "x.md"] {
            assert!(!is_valid_id(bad), "{bad}");
        }
    }

    #[test]
    fn keys_are_stable_and_url_safe() {
        let k = short_key("what-causes-knee-pain-when-running");
        assert_eq!(k.len(), KEY_LEN);
        assert!(k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(k, short_key("what-causes-knee-pain-when-running"));
        assert_ne!(k, short_key("what-causes-knee-pain-when-runnin"));
    }
}
