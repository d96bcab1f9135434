//! The synonyms file a site owner edits: one group per line, words or phrases that mean the same
//! thing, separated by `=` or `,` (`jog = run`, `hurt = pain = ache`). `#` starts a comment.

/// A group of equivalent terms with the line it came from. The first term names the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynonymGroup {
    pub terms: Vec<String>,
    pub line: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Synonyms {
    pub groups: Vec<SynonymGroup>,
}

/// A line that is not a group; the caller turns it into a warning with the file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynonymIssue {
    pub line: usize,
    pub message: String,
}

pub fn parse_synonyms(text: &str) -> (Synonyms, Vec<SynonymIssue>) {
    let mut syn = Synonyms::default();
    let mut issues = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let terms: Vec<String> = line
            .split(['=', ','])
            .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|t| !t.is_empty())
            .collect();
        if terms.len() < 2 {
            issues.push(SynonymIssue {
                line: i + 1,
                message: format!("`{line}` has nothing to be a synonym of: write terms as `a = b = c`"),
            });
            continue;
        }
        syn.groups.push(SynonymGroup { terms, line: i + 1 });
    }
    (syn, issues)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_comments_and_bad_lines() {
        let (s, issues) = parse_synonyms(
            "# comment\njog = run=jogging\n\nhurt, pain , ache # trailing\nlonely\nevery  day = daily\n",
        );
        assert_eq!(s.groups.len(), 3);
        assert_eq!(s.groups[0].terms, vec!["jog", "run", "jogging"]);
        assert_eq!(s.groups[1].terms, vec!["hurt", "pain", "ache"]);
        assert_eq!(s.groups[1].line, 4);
        assert_eq!(s.groups[2].terms, vec!["every day", "daily"]);
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].line, 5);
    }
}
