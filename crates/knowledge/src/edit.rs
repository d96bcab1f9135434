//! Edits of a knowledge file in place: a question added to (or taken back out of) the front
//! matter's `questions = [...]`. The learning loop writes files its owner also edits by hand,
//! so only the bytes of the one value change: comments, field order, quoting and the body stay
//! as they were. Every edit is checked by reading the result back before anything is written,
//! and written atomically (a temporary file in the same dir, then a rename), so a crash leaves
//! either the old file or the new one.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::format::{parse_article_file, ArticleFile};

/// Longest question written into a file, in characters.
pub const MAX_QUESTION_CHARS: usize = 300;

/// Why a knowledge file was not edited. Nothing was changed in any case.
#[derive(Debug)]
pub enum EditError {
    /// The file or its dir cannot be written (permissions, a read-only file system).
    ReadOnly { path: PathBuf, source: std::io::Error },
    /// Reading or writing failed otherwise (no space left, the file is gone).
    Io { path: PathBuf, source: std::io::Error },
    /// The file is not a knowledge file that reads cleanly now.
    Unreadable { path: PathBuf, line: usize, message: String },
    /// Its `questions` value is written in a way this editor does not change (multi-line
    /// strings, a dotted key): edit it by hand.
    Unsupported { path: PathBuf, line: usize },
    /// The question is empty once control characters and extra spaces are taken out.
    EmptyQuestion,
}

impl fmt::Display for EditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EditError::ReadOnly { path, .. } => {
                write!(f, "{}: cannot write (read-only); nothing was changed", path.display())
            }
            EditError::Io { path, .. } => write!(f, "{}: cannot be edited; nothing was changed", path.display()),
            EditError::Unreadable { path, line, message } => {
                write!(f, "{}:{line}: {message}; fix the file first, nothing was changed", path.display())
            }
            EditError::Unsupported { path, line } => write!(
                f,
                "{}:{line}: `questions` is written in a form articlebot does not edit (only a plain array of \
                 quoted strings); add the question by hand, nothing was changed",
                path.display()
            ),
            EditError::EmptyQuestion => write!(f, "the question is empty; nothing was changed"),
        }
    }
}

impl std::error::Error for EditError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EditError::ReadOnly { source, .. } | EditError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The question as it is written: one line, no control characters, at most
/// [`MAX_QUESTION_CHARS`].
pub fn clean_question(q: &str) -> String {
    let words: Vec<&str> = q.split(|c: char| c.is_whitespace() || c.is_control()).filter(|w| !w.is_empty()).collect();
    words.join(" ").chars().take(MAX_QUESTION_CHARS).collect()
}

/// Adds `question` to the article file's `questions`; `Ok(false)` when it is there already
/// (letter case ignored), and then the file is not touched.
pub fn add_question(path: &Path, question: &str) -> Result<bool, EditError> {
    let q = clean_question(question);
    if q.is_empty() {
        return Err(EditError::EmptyQuestion);
    }
    let (text, old) = read(path)?;
    if old.front.questions.iter().any(|e| e.to_lowercase() == q.to_lowercase()) {
        return Ok(false);
    }
    let new = with_question(&text, &q).ok_or_else(|| unsupported(path, &old))?;
    let mut want = old.front.clone();
    want.questions.push(q);
    check(path, &new, &old, &want)?;
    write_atomically(path, &new)?;
    Ok(true)
}

/// Takes `question` (as [`add_question`] wrote it) out of the file's `questions`; `Ok(false)`
/// when it is not there.
pub fn remove_question(path: &Path, question: &str) -> Result<bool, EditError> {
    let q = clean_question(question);
    let (text, old) = read(path)?;
    let Some(at) = old.front.questions.iter().position(|e| *e == q) else { return Ok(false) };
    let new = without_question(&text, at).ok_or_else(|| unsupported(path, &old))?;
    let mut want = old.front.clone();
    want.questions.remove(at);
    check(path, &new, &old, &want)?;
    write_atomically(path, &new)?;
    Ok(true)
}

fn unsupported(path: &Path, old: &ArticleFile) -> EditError {
    EditError::Unsupported { path: path.to_path_buf(), line: old.line_of("questions") }
}

fn read(path: &Path) -> Result<(String, ArticleFile), EditError> {
    let text = std::fs::read_to_string(path).map_err(|source| EditError::Io { path: path.to_path_buf(), source })?;
    let file = parse_article_file(&text).map_err(|e| EditError::Unreadable {
        path: path.to_path_buf(),
        line: e.line,
        message: e.message,
    })?;
    Ok((text, file))
}

/// The edited text must read back as the same article with exactly the intended questions
/// (the body's line numbers move when a line is added above it).
fn check(path: &Path, new: &str, old: &ArticleFile, want: &crate::format::FrontMatter) -> Result<(), EditError> {
    let same_body = |f: &ArticleFile| {
        f.sections.len() == old.sections.len()
            && f.sections.iter().zip(&old.sections).all(|(a, b)| a.heading == b.heading && a.body == b.body)
    };
    match parse_article_file(new) {
        Ok(f) if f.front == *want && same_body(&f) => Ok(()),
        _ => Err(unsupported(path, old)),
    }
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// Where the front matter's `questions` array is: the byte offsets of `[` and `]`, and of each
/// element (start, end).
struct ArraySpan {
    open: usize,
    close: usize,
    elements: Vec<(usize, usize)>,
}

/// Byte offset where the closing `+++` line starts, and the `questions` array if there is one.
/// `Err(())` for a `questions` value this editor does not read.
fn locate(text: &str) -> Result<(usize, Option<ArraySpan>), ()> {
    let mut offset = 0;
    let mut close = None;
    let mut key = None;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let start = offset;
        offset += line.len();
        if i == 0 {
            continue;
        }
        if line.trim_end() == "+++" {
            close = Some(start);
            break;
        }
        let t = line.trim_start();
        let Some(rest) = t.strip_prefix("questions") else { continue };
        let r = rest.trim_start();
        if r.starts_with('=') {
            if key.is_some() {
                return Err(());
            }
            key = Some(start + (line.len() - t.len()) + "questions".len() + (rest.len() - r.len()));
        } else if r.starts_with('.') {
            return Err(());
        }
    }
    let close = close.ok_or(())?;
    let Some(eq) = key else { return Ok((close, None)) };
    let open = eq + 1 + text[eq + 1..].find(|c: char| c != ' ' && c != '\t').ok_or(())?;
    if text.as_bytes()[open] != b'[' {
        return Err(());
    }
    let array = scan_array(text, open)?;
    if array.close > close {
        return Err(());
    }
    Ok((close, Some(array)))
}

/// Reads a TOML array of strings starting at `[`: basic and literal strings, commas, blanks and
/// comments; anything else (a multi-line string, a nested value) is refused.
fn scan_array(text: &str, open: usize) -> Result<ArraySpan, ()> {
    let b = text.as_bytes();
    let mut i = open + 1;
    let mut elements = Vec::new();
    let skip_blank = |mut i: usize| {
        while i < b.len() {
            match b[i] {
                b' ' | b'\t' | b'\r' | b'\n' => i += 1,
                b'#' => {
                    while i < b.len() && b[i] != b'\n' {
                        i += 1;
                    }
                }
                _ => break,
            }
        }
        i
    };
    loop {
        i = skip_blank(i);
        match b.get(i) {
            Some(b']') => return Ok(ArraySpan { open, close: i, elements }),
            Some(&q @ (b'"' | b'\'')) => {
                if b.get(i + 1) == Some(&q) && b.get(i + 2) == Some(&q) {
                    return Err(());
                }
                let start = i;
                i += 1;
                loop {
                    match b.get(i) {
                        None | Some(b'\n') => return Err(()),
                        Some(b'\\') if q == b'"' => i += 2,
                        Some(&c) if c == q => break,
                        Some(_) => i += 1,
                    }
                }
                i += 1;
                elements.push((start, i));
                i = skip_blank(i);
                match b.get(i) {
                    Some(b',') => i += 1,
                    Some(b']') => {}
                    _ => return Err(()),
                }
            }
            _ => return Err(()),
        }
    }
}

/// The leading blanks of the line holding byte `at`.
fn indent_at(text: &str, at: usize) -> &str {
    let line_start = text[..at].rfind('\n').map_or(0, |n| n + 1);
    let line = &text[line_start..];
    &line[..line.len() - line.trim_start_matches([' ', '\t']).len()]
}

fn with_question(text: &str, q: &str) -> Option<String> {
    let (close_fm, array) = locate(text).ok()?;
    let quoted = quote(q);
    let mut out = String::with_capacity(text.len() + quoted.len() + 16);
    let Some(a) = array else {
        out.push_str(&text[..close_fm]);
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!("questions = [{quoted}]\n"));
        out.push_str(&text[close_fm..]);
        return Some(out);
    };
    let multiline = text[a.open..a.close].contains('\n');
    let (at, insert) = match a.elements.last() {
        None if multiline => {
            let indent = indent_at(text, a.close);
            if indent.len() == text[..a.close].len() - text[..a.close].rfind('\n').map_or(0, |n| n + 1) {
                (a.close - indent.len(), format!("  {quoted},\n"))
            } else {
                (a.close, quoted)
            }
        }
        None => (a.close, quoted),
        Some(&(start, end)) => {
            let after = &text[end..a.close];
            let comma = after.trim_start_matches([' ', '\t']).starts_with(',');
            let indent = indent_at(text, start);
            match (multiline, comma) {
                (true, true) => {
                    let comma_at = end + after.find(',')?;
                    let eol = text[comma_at..a.close].find('\n').map_or(comma_at + 1, |n| comma_at + n);
                    (eol, format!("\n{indent}{quoted},"))
                }
                (true, false) => (end, format!(",\n{indent}{quoted}")),
                (false, true) => {
                    let comma_at = end + after.find(',')?;
                    (comma_at + 1, format!(" {quoted},"))
                }
                (false, false) => (end, format!(", {quoted}")),
            }
        }
    };
    out.push_str(&text[..at]);
    out.push_str(&insert);
    out.push_str(&text[at..]);
    Some(out)
}

fn without_question(text: &str, index: usize) -> Option<String> {
    let (_, array) = locate(text).ok()?;
    let a = array?;
    let &(start, end) = a.elements.get(index)?;
    let b = text.as_bytes();
    // `questions = ["q"]` alone on its line, as `add_question` writes it first: the line goes.
    let key_line = text[..a.open].rfind('\n').map_or(0, |n| n + 1);
    let eol = text[a.close..].find('\n').map_or(text.len(), |n| a.close + n + 1);
    if a.elements.len() == 1
        && !text[key_line..eol].trim_end().contains('\n')
        && text[a.close + 1..eol].trim().is_empty()
    {
        return Some(format!("{}{}", &text[..key_line], &text[eol..]));
    }
    // Take the element with its comma; on a line of its own, the whole line.
    let mut to = end;
    while to < a.close && matches!(b[to], b' ' | b'\t') {
        to += 1;
    }
    if to < a.close && b[to] == b',' {
        to += 1;
    } else if index > 0 {
        // The last element without a trailing comma: the comma before it goes instead.
        let prev_end = a.elements[index - 1].1;
        let comma = prev_end + text[prev_end..start].find(',')?;
        return Some(format!("{}{}", &text[..comma], &text[end..]));
    }
    let line_start = text[..start].rfind('\n').map_or(0, |n| n + 1);
    let alone_before = text[line_start..start].trim().is_empty() && line_start > a.open;
    let rest_of_line_end = text[to..].find('\n').map(|n| to + n);
    if let Some(eol) = rest_of_line_end.filter(|&e| alone_before && text[to..e].trim().is_empty() && e < a.close) {
        return Some(format!("{}{}", &text[..line_start], &text[eol + 1..]));
    }
    if index > 0 {
        // Between elements on one line: the blank before it goes with it.
        let prev_end = a.elements[index - 1].1;
        let after_comma = prev_end + text[prev_end..start].find(',')? + 1;
        return Some(format!("{}{}", &text[..after_comma], &text[to..]));
    }
    while to < a.close && b[to] == b' ' {
        to += 1;
    }
    Some(format!("{}{}", &text[..start], &text[to..]))
}

/// Replaces `path` with `text`: a temporary file beside it, synced, renamed over it, the dir
/// synced. The file keeps its permissions.
fn write_atomically(path: &Path, text: &str) -> Result<(), EditError> {
    let read_only = |source: std::io::Error| EditError::ReadOnly { path: path.to_path_buf(), source };
    let io = |source: std::io::Error| {
        if is_read_only(&source) {
            read_only(source)
        } else {
            EditError::Io { path: path.to_path_buf(), source }
        }
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.permissions().readonly() {
        return Err(read_only(std::io::Error::from(std::io::ErrorKind::PermissionDenied)));
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    // A dir with every write bit off was made read-only on purpose; root (a container's usual
    // user) could still write into it, so the bits are checked rather than left to the kernel.
    if std::fs::metadata(dir).is_ok_and(|m| m.permissions().readonly()) {
        return Err(read_only(std::io::Error::from(std::io::ErrorKind::PermissionDenied)));
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.set_permissions(meta.permissions())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        // The rename is durable once the dir is; a failure to sync it is not worth undoing.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })
}

fn is_read_only(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = "+++\n\nA paragraph.\n\n## Heading\n\nMore text.\n";

    fn edit(front: &str, q: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.md");
        let text = format!("+++\n{front}{BODY}");
        std::fs::write(&path, &text).unwrap();
        assert!(add_question(&path, q).unwrap());
        let new = std::fs::read_to_string(&path).unwrap();
        let file = parse_article_file(&new).unwrap();
        assert_eq!(file.front.questions.last().map(String::as_str), Some(q), "{new}");
        assert!(new.ends_with(BODY), "the body is untouched:\n{new}");
        // Taking it back out gives the very same bytes (an empty `questions = []` goes with it).
        assert!(remove_question(&path, q).unwrap());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            text.replace("questions = []\n", ""),
            "undo restores the file"
        );
        new
    }

    #[test]
    fn a_question_is_added_in_the_style_of_the_file_and_nothing_else_changes() {
        let head = "id = \"a\"\ntitle = \"A\" # the title\n";
        assert_eq!(
            edit(head, "how do I?"),
            format!("+++\n{head}questions = [\"how do I?\"]\n{BODY}"),
            "no questions yet: one line before the closing +++"
        );
        let multi = format!("{head}questions = [\n    \"one\",\n    'two', # kept\n]\nkeywords = [\"k\"]\n");
        assert_eq!(
            edit(&multi, "three \"quoted\""),
            format!(
                "+++\n{head}questions = [\n    \"one\",\n    'two', # kept\n    'three \"quoted\"',\n]\nkeywords = [\"k\"]\n{BODY}"
            )
        );
        let inline = format!("{head}questions = [\"one\", \"two\"]\n");
        assert_eq!(edit(&inline, "x"), format!("+++\n{head}questions = [\"one\", \"two\", \"x\"]\n{BODY}"));
        let trailing = format!("{head}questions = [\"one\",]\n");
        assert_eq!(edit(&trailing, "x"), format!("+++\n{head}questions = [\"one\", \"x\",]\n{BODY}"));
        let empty = format!("{head}questions = []\n");
        assert_eq!(edit(&empty, "x"), format!("+++\n{head}questions = [\"x\"]\n{BODY}"));
        let no_comma = format!("{head}questions = [\n  \"one\"\n]\n");
        assert_eq!(edit(&no_comma, "x"), format!("+++\n{head}questions = [\n  \"one\",\n  \"x\"\n]\n{BODY}"));
    }

    #[test]
    fn a_question_already_there_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.md");
        std::fs::write(&path, format!("+++\nid = \"a\"\ntitle = \"A\"\nquestions = [\"How do I?\"]\n{BODY}")).unwrap();
        assert!(!add_question(&path, "how do i?").unwrap());
        assert!(matches!(add_question(&path, " \n\t "), Err(EditError::EmptyQuestion)));
    }

    #[test]
    fn forms_it_does_not_edit_and_broken_files_are_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.md");
        for front in [
            "id = \"a\"\ntitle = \"A\"\nquestions = [\"\"\"multi\nline\"\"\"]\n",
            "id = \"a\"\ntitle = \"A\n",
            "id = \"a\"\n",
        ] {
            let text = format!("+++\n{front}{BODY}");
            std::fs::write(&path, &text).unwrap();
            let e = add_question(&path, "q").unwrap_err();
            assert!(matches!(e, EditError::Unsupported { .. } | EditError::Unreadable { .. }), "{e}");
            assert!(e.to_string().contains("nothing was changed"), "{e}");
            assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        }
        let e = add_question(&dir.path().join("missing.md"), "q").unwrap_err();
        assert!(matches!(e, EditError::Io { .. }), "{e}");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "no temporary file is left: {names:?}");
    }

    #[test]
    fn a_read_only_file_is_refused_clearly() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.md");
        let text = format!("+++\nid = \"a\"\ntitle = \"A\"\n{BODY}");
        std::fs::write(&path, &text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
        let e = add_question(&path, "q").unwrap_err();
        assert!(matches!(e, EditError::ReadOnly { .. }) && e.to_string().contains("read-only"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }

    /// Root writes into a dir whose write bits are off; the bits are honoured anyway.
    #[test]
    fn a_read_only_dir_is_refused_clearly_even_for_root() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("articles");
        std::fs::create_dir(&sub).unwrap();
        let path = sub.join("a.md");
        let text = format!("+++\nid = \"a\"\ntitle = \"A\"\n{BODY}");
        std::fs::write(&path, &text).unwrap();
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o555)).unwrap();
        let e = add_question(&path, "q").unwrap_err();
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(matches!(e, EditError::ReadOnly { .. }) && e.to_string().contains("nothing was changed"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        assert_eq!(std::fs::read_dir(&sub).unwrap().count(), 1, "no temporary file");
    }

    #[test]
    fn questions_are_cleaned_before_they_are_written() {
        assert_eq!(clean_question("  how\n do\u{7}  I?\t"), "how do I?");
        assert_eq!(clean_question(&"x".repeat(400)).chars().count(), MAX_QUESTION_CHARS);
    }
}
