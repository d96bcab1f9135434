//! Request parameters of a Bot API call, whatever way the client sent them: query string,
//! `application/json`, `application/x-www-form-urlencoded` or `multipart/form-data` (which
//! teloxide uses for methods that may upload files, e.g. `setWebhook`).
//!
//! Form and multipart values are text; like Telegram, the fake reads JSON-looking values
//! (`{...}`, `[...]`), booleans and integers as such, except for parameters that are always
//! strings (`text`, `caption`, `query`, `url`, ...). Uploaded files become
//! `{"file_name": ..., "size": ..., "hex": ...}` (the first MiB of the bytes, in hex).

use serde_json::{Map, Value};

/// Parameters that Telegram always reads as strings, even when they look like numbers or JSON.
const STRING_PARAMS: &[&str] = &[
    "text",
    "caption",
    "query",
    "url",
    "secret_token",
    "callback_query_id",
    "inline_query_id",
    "inline_message_id",
    "description",
    "short_description",
    "name",
    "language_code",
    "parse_mode",
    "action",
    "title",
    "next_offset",
    "emoji",
    "question",
    "address",
    "first_name",
    "last_name",
    "phone_number",
    "custom_title",
    "ip_address",
    "message_effect_id",
    "business_connection_id",
];

/// Merges the query string and the body into one JSON object.
pub(crate) fn parse_params(
    content_type: Option<&str>,
    query: Option<&str>,
    body: &[u8],
) -> Result<Map<String, Value>, String> {
    let mut params = Map::new();
    if let Some(q) = query {
        for (k, v) in parse_urlencoded(q.as_bytes()) {
            let value = typed(&k, v);
            params.insert(k, value);
        }
    }
    let ct = content_type.unwrap_or("").to_ascii_lowercase();
    let body_params = if ct.starts_with("application/json") {
        parse_json(body)?
    } else if ct.starts_with("multipart/form-data") {
        let boundary = content_type
            .unwrap_or("")
            .split(';')
            .map(str::trim)
            .find_map(|p| p.strip_prefix("boundary=").or_else(|| p.strip_prefix("BOUNDARY=")))
            .map(|b| b.trim_matches('"').to_string())
            .ok_or("multipart body without a boundary")?;
        parse_multipart(body, &boundary)?
    } else if ct.starts_with("application/x-www-form-urlencoded") {
        parse_urlencoded(body).into_iter().map(|(k, v)| (k.clone(), typed(&k, v))).collect()
    } else if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        parse_json(body)?
    } else {
        parse_urlencoded(body).into_iter().map(|(k, v)| (k.clone(), typed(&k, v))).collect()
    };
    params.extend(body_params);
    Ok(params)
}

fn parse_json(body: &[u8]) -> Result<Map<String, Value>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("the JSON body is not an object".into()),
        Err(e) => Err(format!("the body is not JSON: {e}")),
    }
}

/// A text value as Telegram would read it.
fn typed(key: &str, v: String) -> Value {
    if STRING_PARAMS.contains(&key) {
        return Value::String(v);
    }
    let t = v.trim();
    if t.starts_with('{') || t.starts_with('[') {
        if let Ok(parsed) = serde_json::from_str::<Value>(t) {
            return parsed;
        }
    }
    match t {
        "true" | "True" => return Value::Bool(true),
        "false" | "False" => return Value::Bool(false),
        _ => {}
    }
    if let Ok(n) = t.parse::<i64>() {
        return Value::from(n);
    }
    if t.contains('.') {
        if let Ok(f) = t.parse::<f64>() {
            if let Some(n) = serde_json::Number::from_f64(f) {
                return Value::Number(n);
            }
        }
    }
    Value::String(v)
}

fn parse_urlencoded(body: &[u8]) -> Vec<(String, String)> {
    body.split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let mut it = pair.splitn(2, |&b| b == b'=');
            let k = percent_decode(it.next().unwrap_or_default());
            let v = percent_decode(it.next().unwrap_or_default());
            (k, v)
        })
        .collect()
}

fn percent_decode(s: &[u8]) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() => match (hex(s[i + 1]), hex(s[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    hay[from..].windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}

fn parse_multipart(body: &[u8], boundary: &str) -> Result<Map<String, Value>, String> {
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();
    let mut params = Map::new();
    let Some(mut pos) = find(body, delim, 0) else {
        return if body.iter().all(u8::is_ascii_whitespace) {
            Ok(params)
        } else {
            Err("multipart body without its boundary".into())
        };
    };
    loop {
        pos += delim.len();
        if body[pos..].starts_with(b"--") {
            return Ok(params);
        }
        // Skip the line break after the boundary.
        if body[pos..].starts_with(b"\r\n") {
            pos += 2;
        } else if body[pos..].starts_with(b"\n") {
            pos += 1;
        }
        let (headers_end, sep) = match find(body, b"\r\n\r\n", pos) {
            Some(p) => (p, 4),
            None => (find(body, b"\n\n", pos).ok_or("multipart part without headers")?, 2),
        };
        let headers = String::from_utf8_lossy(&body[pos..headers_end]).into_owned();
        let content_start = headers_end + sep;
        let next = find(body, delim, content_start).ok_or("unterminated multipart body")?;
        let mut content_end = next;
        if body[..content_end].ends_with(b"\r\n") {
            content_end -= 2;
        } else if body[..content_end].ends_with(b"\n") {
            content_end -= 1;
        }
        let content = &body[content_start..content_end.max(content_start)];
        let disposition = headers
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))
            .ok_or("multipart part without Content-Disposition")?;
        let name = disposition_param(disposition, "name").ok_or("multipart part without a name")?;
        let value = match disposition_param(disposition, "filename") {
            Some(file_name) => {
                // The bytes too (as hex, the first MiB), for tests that check what was uploaded.
                let hex: String = content.iter().take(1 << 20).map(|b| format!("{b:02x}")).collect();
                serde_json::json!({ "file_name": file_name, "size": content.len(), "hex": hex })
            }
            None => typed(&name, String::from_utf8_lossy(content).into_owned()),
        };
        params.insert(name, value);
        pos = next;
    }
}

fn disposition_param(header: &str, key: &str) -> Option<String> {
    header.split(';').skip(1).map(str::trim).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case(key)).then(|| v.trim().trim_matches('"').to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn all_encodings() {
        let p = parse_params(Some("application/json"), None, br#"{"chat_id":5,"text":"hi"}"#).unwrap();
        assert_eq!(Value::Object(p), json!({"chat_id":5,"text":"hi"}));
        let p = parse_params(
            Some("application/x-www-form-urlencoded"),
            Some("limit=3"),
            b"chat_id=-7&text=12+%26+x&reply_markup=%7B%22a%22%3A1%7D",
        )
        .unwrap();
        assert_eq!(Value::Object(p), json!({"limit":3,"chat_id":-7,"text":"12 & x","reply_markup":{"a":1}}));
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"url\"\r\n\r\nhttps://x.test/hook\r\n--XyZ\r\nContent-Disposition: form-data; name=\"allowed_updates\"\r\nContent-Type: text/plain\r\n\r\n[\"message\"]\r\n--XyZ\r\nContent-Disposition: form-data; name=\"certificate\"; filename=\"c.pem\"\r\n\r\nABC\r\n--XyZ--\r\n";
        let p = parse_params(Some("multipart/form-data; boundary=XyZ"), None, body).unwrap();
        assert_eq!(
            Value::Object(p),
            json!({"url":"https://x.test/hook","allowed_updates":["message"],"certificate":{"file_name":"c.pem","size":3,"hex":"414243"}})
        );
        assert!(parse_params(Some("application/json"), None, b"[1]").is_err());
        assert_eq!(parse_params(None, None, b"").unwrap().len(), 0);
    }
}
