//! The site configuration (`site.toml` in the knowledge dir): the bot's name, where article links
//! point, the stemming language and the matcher's decision thresholds.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SiteConfig {
    /// How the bot introduces itself.
    pub bot_name: String,
    /// Links to articles without their own `url` are `base_url` + id, when set.
    pub base_url: Option<String>,
    /// Snowball stemmer for Latin-script words (english, french, german, spanish, italian,
    /// portuguese, dutch, swedish, norwegian, danish, finnish, hungarian, romanian, turkish);
    /// Cyrillic words always use the Russian stemmer, Greek words the Greek one.
    pub language: String,
    /// Whether the built-in synonyms of `language` apply (the site's synonyms.txt always does).
    pub builtin_synonyms: bool,
    pub matching: Thresholds,
    pub semantic: SemanticConfig,
    pub import: ImportRules,
    pub learning: LearningConfig,
}

/// The learning loop (`[learning]`): what users' signals may do without a reviewer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LearningConfig {
    /// Add a question to an article's `questions` by itself once this many distinct users backed
    /// the pair (logged, and undone like a reviewed one). Absent: every proposal waits for
    /// `articlebot review`.
    pub auto_accept_users: Option<u64>,
}

/// The fewest users `auto_accept_users` may name: one user alone must not change what everyone
/// is answered (a mistaken tap, or someone steering the bot).
pub const AUTO_ACCEPT_MIN_USERS: u64 = 2;

/// Where `import` finds a page's parts when its HTML defeats the heuristics (`[import]`): CSS
/// selectors, each optional. `body` may match several elements (their text in page order);
/// `related` matches one element per recommended topic (its first link is the title, the rest
/// of its text the teaser).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImportRules {
    pub title: Option<String>,
    pub body: Option<String>,
    pub related: Option<String>,
    pub prev: Option<String>,
    pub next: Option<String>,
}

impl ImportRules {
    /// The rules as (field, selector) pairs, for validating and compiling them.
    pub(crate) fn fields(&self) -> [(&'static str, Option<&str>); 5] {
        [
            ("title", self.title.as_deref()),
            ("body", self.body.as_deref()),
            ("related", self.related.as_deref()),
            ("prev", self.prev.as_deref()),
            ("next", self.next.as_deref()),
        ]
    }
}

/// Semantic matching (`[semantic]`): a sentence-transformers model dir, relative to the
/// knowledge dir. Front ends may override it (`--model`, `ARTICLEBOT_MODEL`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SemanticConfig {
    pub model: Option<String>,
}

/// Decision thresholds on the matcher's confidence (0..1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// At or above: answer with the best section.
    pub answer: f32,
    /// At or above (and below `answer`): offer did-you-mean choices; below: don't know.
    pub suggest: f32,
    /// When the two best articles are closer than this in confidence, ask instead of answering,
    /// unless the best is at least `certain` (short questions are asked about whenever they tie).
    pub margin: f32,
    pub certain: f32,
    /// Least evidence (the matched words' weight, in units of a word found in no article) to
    /// answer; below it the question is out of scope (`unknown`), however high the score.
    pub evidence: f32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds { answer: 0.4, suggest: 0.25, margin: 0.02, certain: 0.65, evidence: 0.3 }
    }
}

impl Default for SiteConfig {
    fn default() -> Self {
        SiteConfig {
            bot_name: "Articlebot".into(),
            base_url: None,
            language: "english".into(),
            builtin_synonyms: true,
            matching: Thresholds::default(),
            semantic: SemanticConfig::default(),
            import: ImportRules::default(),
            learning: LearningConfig::default(),
        }
    }
}

pub const SUPPORTED_LANGUAGES: &[&str] = &[
    "english",
    "french",
    "german",
    "spanish",
    "italian",
    "portuguese",
    "dutch",
    "swedish",
    "norwegian",
    "danish",
    "finnish",
    "hungarian",
    "romanian",
    "turkish",
];

impl SiteConfig {
    /// Problems that parsing cannot see: they are reported as errors with the field's name.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !SUPPORTED_LANGUAGES.contains(&self.language.as_str()) {
            out.push(format!(
                "language `{}` is not supported; use one of: {}",
                self.language,
                SUPPORTED_LANGUAGES.join(", ")
            ));
        }
        let t = &self.matching;
        let fields = [
            ("answer", t.answer),
            ("suggest", t.suggest),
            ("margin", t.margin),
            ("certain", t.certain),
            ("evidence", t.evidence),
        ];
        for (name, v) in fields {
            if !(0.0..=1.0).contains(&v) {
                out.push(format!("matching.{name} = {v} is outside 0..1"));
            }
        }
        if t.suggest > t.answer {
            out.push(format!("matching.suggest ({}) must not be above matching.answer ({})", t.suggest, t.answer));
        }
        if let Some(problem) = self.base_url.as_deref().and_then(|u| super::url_problem("base_url", u)) {
            out.push(problem);
        }
        out.extend(super::html::selector_problems(&self.import));
        if let Some(n) = self.learning.auto_accept_users.filter(|&n| n < AUTO_ACCEPT_MIN_USERS) {
            out.push(format!(
                "learning.auto_accept_users = {n}: it must be at least {AUTO_ACCEPT_MIN_USERS} (one user alone must not \
                 change the knowledge base); leave it out to review every proposal with `articlebot review`"
            ));
        }
        out
    }

    /// The default file written by `articlebot import` into a new knowledge dir. Thresholds are
    /// commented out so that a new release's calibrated defaults apply until the owner sets them.
    pub fn template() -> String {
        let d = Thresholds::default();
        format!(
            "# Site configuration for articlebot.\n\
             bot_name = \"Articlebot\"\n\
             # Links to articles without their own url: base_url + article id.\n\
             # base_url = \"https://example.com/articles/\"\n\
             language = \"english\"\n\
             # Built-in synonyms of the language (delete = remove, picture = photo, ...).\n\
             builtin_synonyms = true\n\
             \n\
             [matching]\n\
             # Confidence (0..1) needed to answer; between suggest and answer the bot asks \"did you mean\".\n\
             # answer = {}\n\
             # suggest = {}\n\
             # Ask instead of answering when the two best articles are this close, unless the best reaches `certain`.\n\
             # margin = {}\n\
             # certain = {}\n\
             # Least weight of the question's words found in the best article to answer at all.\n\
             # evidence = {}\n\
             \n\
             [semantic]\n\
             # A sentence-transformers model dir (relative to this dir) for matching paraphrases that\n\
             # share no word with the article, e.g. all-MiniLM-L6-v2 (`articlebot model pull --out DIR`).\n\
             # model = \"models/all-MiniLM-L6-v2\"\n\
             \n\
             [import]\n\
             # CSS selectors for HTML pages whose title, text or related links `import` gets wrong.\n\
             # title = \"h1.entry-title\"\n\
             # body = \".post-content\"\n\
             # related = \".recommend li\"\n\
             # prev = \"a.previous\"\n\
             # next = \"a.next\"\n\
             \n\
             [learning]\n\
             # Add a question users asked to the article they chose by itself, once this many distinct users\n\
             # backed it (at least 2; logged, and `articlebot review` can undo it). Absent: review every proposal.\n\
             # auto_accept_users = 5\n",
            d.answer, d.suggest, d.margin, d.certain, d.evidence
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_parses_to_defaults() {
        let c: SiteConfig = toml::from_str(&SiteConfig::template()).unwrap();
        assert_eq!(c, SiteConfig::default());
        assert!(c.problems().is_empty());
    }

    #[test]
    fn problems_are_named() {
        let c: SiteConfig =
            toml::from_str("language = \"klingon\"\n[matching]\nanswer = 0.2\nsuggest = 0.4\n").unwrap();
        let p = c.problems().join("\n");
        assert!(p.contains("klingon"));
        assert!(p.contains("matching.suggest"));
    }

    #[test]
    fn auto_acceptance_is_off_unless_set_and_one_user_is_refused() {
        assert_eq!(SiteConfig::default().learning.auto_accept_users, None);
        let on: SiteConfig = toml::from_str("[learning]\nauto_accept_users = 3\n").unwrap();
        assert_eq!(on.learning.auto_accept_users, Some(3));
        assert!(on.problems().is_empty());
        for n in [0, 1] {
            let c: SiteConfig = toml::from_str(&format!("[learning]\nauto_accept_users = {n}\n")).unwrap();
            let p = c.problems().join("\n");
            assert!(p.starts_with(&format!("learning.auto_accept_users = {n}:")) && p.contains("at least 2"), "{p}");
        }
        // Not a count at all: the parser says so, naming the key.
        let bad = toml::from_str::<SiteConfig>("[learning]\nauto_accept_users = \"yes\"\n").unwrap_err();
        assert!(bad.to_string().contains("auto_accept_users"), "{bad}");
        assert!(toml::from_str::<SiteConfig>("[learning]\nauto_accept_users = -2\n").is_err());
        assert!(toml::from_str::<SiteConfig>("[learning]\nauto_accept = 2\n").is_err(), "unknown keys are refused");
    }
}
