//! Telegram's `parse_mode = HTML`, as the Bot API parses it (a port of TDLib's `parse_html`
//! rules, without building entities): the fake uses it to refuse what Telegram refuses and to
//! compute the plain text Telegram stores and echoes back.
//!
//! Rules (from <https://core.telegram.org/bots/api#html-style> and TDLib):
//! - supported tags: `b strong i em u ins s strike del span tg-spoiler a tg-emoji code pre
//!   blockquote`; tag names are case-insensitive; `span` needs `class="tg-spoiler"`;
//! - every start tag needs its own end tag, properly nested;
//! - `<` always starts a tag, so a literal `<` must be written `&lt;`;
//! - entities: `&lt; &gt; &amp; &quot;` and numeric `&#NN;` / `&#xHH;`. Like Telegram, an `&` that
//!   does not start a known entity is kept literally — unless `strict_ampersand` is set, in which
//!   case it is refused (useful to catch escaping bugs that Telegram would forgive).

/// Tags Telegram accepts in HTML-formatted text.
const SUPPORTED_TAGS: &[&str] = &[
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "a",
    "tg-emoji",
    "code",
    "pre",
    "blockquote",
];

/// Parses HTML like Telegram. `Ok(plain text)` or `Err(reason)`, where the reason is what
/// Telegram appends to `Bad Request: can't parse entities: `.
pub(crate) fn parse_html(text: &str, strict_ampersand: bool) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut stack: Vec<String> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'&' => match decode_entity(&text[i..]) {
                Some((ch, len)) => {
                    out.push(ch);
                    i += len;
                }
                None if strict_ampersand => {
                    return Err(format!(
                        "Character '&' is reserved and must be escaped as \"&amp;\" at byte offset {i}"
                    ));
                }
                None => {
                    out.push('&');
                    i += 1;
                }
            },
            b'<' => {
                let start = i;
                if bytes.get(i + 1) == Some(&b'/') {
                    // End tag: `</name>` with optional spaces before `>`.
                    let mut j = i + 2;
                    while j < bytes.len() && bytes[j] != b'>' && !bytes[j].is_ascii_whitespace() {
                        j += 1;
                    }
                    let name = text[i + 2..j].to_ascii_lowercase();
                    while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                        j += 1;
                    }
                    if j >= bytes.len() || bytes[j] != b'>' {
                        return Err(format!("Unclosed end tag at byte offset {start}"));
                    }
                    match stack.pop() {
                        None => return Err(format!("Unexpected end tag at byte offset {start}")),
                        Some(open) if open != name => {
                            return Err(format!(
                                "Unmatched end tag at byte offset {start}, expected \"</{open}>\", found \"</{name}>\""
                            ));
                        }
                        Some(_) => {}
                    }
                    i = j + 1;
                } else {
                    // Start tag: `<name attr="v" attr2='v' attr3=v flag>`.
                    let mut j = i + 1;
                    while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'-' || bytes[j] == b'_')
                    {
                        j += 1;
                    }
                    let name = text[i + 1..j].to_ascii_lowercase();
                    if name.is_empty() || !SUPPORTED_TAGS.contains(&name.as_str()) {
                        let shown = if name.is_empty() {
                            text[i + 1..].chars().next().map(String::from).unwrap_or_default()
                        } else {
                            name
                        };
                        return Err(format!("Unsupported start tag \"{shown}\" at byte offset {start}"));
                    }
                    let mut attrs: Vec<(String, String)> = Vec::new();
                    loop {
                        while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                            j += 1;
                        }
                        if j >= bytes.len() {
                            return Err(format!("Unclosed start tag at byte offset {start}"));
                        }
                        if bytes[j] == b'>' {
                            j += 1;
                            break;
                        }
                        let a0 = j;
                        while j < bytes.len()
                            && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'-' || bytes[j] == b'_')
                        {
                            j += 1;
                        }
                        if a0 == j {
                            return Err(format!("Empty attribute name in the tag \"{name}\" at byte offset {start}"));
                        }
                        let attr = text[a0..j].to_ascii_lowercase();
                        while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                            j += 1;
                        }
                        if j >= bytes.len() {
                            return Err(format!("Unclosed start tag at byte offset {start}"));
                        }
                        if bytes[j] != b'=' {
                            attrs.push((attr, String::new()));
                            continue;
                        }
                        j += 1;
                        while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                            j += 1;
                        }
                        if j >= bytes.len() {
                            return Err(format!("Unclosed start tag at byte offset {start}"));
                        }
                        let value;
                        if bytes[j] == b'"' || bytes[j] == b'\'' {
                            let q = bytes[j];
                            let v0 = j + 1;
                            let Some(len) = bytes[v0..].iter().position(|&b| b == q) else {
                                return Err(format!("Unclosed start tag at byte offset {start}"));
                            };
                            value = decode_all(&text[v0..v0 + len]);
                            j = v0 + len + 1;
                        } else {
                            let v0 = j;
                            while j < bytes.len() && !bytes[j].is_ascii_whitespace() && bytes[j] != b'>' {
                                j += 1;
                            }
                            value = decode_all(&text[v0..j]);
                        }
                        attrs.push((attr, value));
                    }
                    if name == "span" && !attrs.iter().any(|(k, v)| k == "class" && v == "tg-spoiler") {
                        return Err(format!("Tag \"span\" must have class \"tg-spoiler\" at byte offset {start}"));
                    }
                    stack.push(name);
                    i = j;
                }
            }
            _ => {
                // Copy the whole UTF-8 character.
                let ch = text[i..].chars().next().expect("in bounds");
                out.push(ch);
                i += ch.len_utf8();
            }
        }
    }
    if let Some(open) = stack.pop() {
        return Err(format!("Can't find end tag corresponding to start tag \"{open}\""));
    }
    Ok(out)
}

/// Decodes the entity at the start of `s` (which starts with `&`): `(char, bytes consumed)`.
fn decode_entity(s: &str) -> Option<(char, usize)> {
    let end = s.find(';')?;
    if end > 12 {
        return None;
    }
    let body = &s[1..end];
    let ch = match body {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "quot" => '"',
        _ => {
            let num = body.strip_prefix('#')?;
            let code = match num.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => num.parse::<u32>().ok()?,
            };
            char::from_u32(code)?
        }
    };
    Some((ch, end + 1))
}

fn decode_all(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find('&') {
        out.push_str(&rest[..p]);
        match decode_entity(&rest[p..]) {
            Some((ch, len)) => {
                out.push(ch);
                rest = &rest[p + len..];
            }
            None => {
                out.push('&');
                rest = &rest[p + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::parse_html;

    #[test]
    fn well_formed() {
        assert_eq!(
            parse_html("<b>bold</b> &lt;x&gt; &amp; &quot;q&quot; &#65;&#x42;", false).unwrap(),
            "bold <x> & \"q\" AB"
        );
        assert_eq!(parse_html("<a href=\"https://e.com/?a=1&amp;b=2\">link</a>", false).unwrap(), "link");
        assert_eq!(parse_html("<B>x</B><pre><code class=\"language-rust\">fn</code></pre>", false).unwrap(), "xfn");
        assert_eq!(
            parse_html("<span class=\"tg-spoiler\">s</span><blockquote expandable>q</blockquote>", false).unwrap(),
            "sq"
        );
        assert_eq!(parse_html("Q&A", false).unwrap(), "Q&A");
        assert_eq!(parse_html("👍 <i>é</i>", false).unwrap(), "👍 é");
    }

    #[test]
    fn refused() {
        for bad in
            ["<b>x", "x</b>", "<b>x</i>", "<br>", "a < b", "<div>x</div>", "<b x", "<span>s</span>", "<a href='x>y</a>"]
        {
            assert!(parse_html(bad, false).is_err(), "{bad}");
        }
        assert!(parse_html("Q&A", true).is_err());
    }
}
