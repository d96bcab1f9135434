//! The HTTP side of the fake: the accept loop, parsing a request (path `/bot<token>/<method>`,
//! parameters in any encoding), the token check, fault rules, dispatch to the methods, the JSON
//! answers, recording every call, and `getUpdates` long polling.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming as HyperBody};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::body::parse_params;
use crate::faults::Fault;
use crate::methods::{bad, dispatch, too_many, ApiErr};
use crate::records::Outcome;
use crate::state::Inner;
use crate::IMPLEMENTED_METHODS;

const MAX_BODY: usize = 64 << 20;

/// Serves HTTP/1.1 connections until shutdown; each connection can be dropped mid-request by a
/// [`Fault::DropConnection`].
pub(crate) async fn accept_loop(inner: Arc<Inner>, listener: TcpListener) {
    let mut shutdown = inner.shutdown_tx.subscribe();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let inner = inner.clone();
        tokio::spawn(async move {
            let drop_now = Arc::new(Notify::new());
            let svc = {
                let inner = inner.clone();
                let drop_now = drop_now.clone();
                service_fn(move |req| handle(inner.clone(), drop_now.clone(), req))
            };
            let conn = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), svc);
            let mut shutdown = inner.shutdown_tx.subscribe();
            // Dropping the connection future closes the socket without an answer.
            tokio::select! {
                _ = conn => {}
                _ = drop_now.notified() => {}
                _ = shutdown.wait_for(|s| *s) => {}
            }
        });
    }
}

fn response(status: u16, body: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("valid response")
}

fn error_body(e: &ApiErr) -> Value {
    let mut body = json!({ "ok": false, "error_code": e.status, "description": e.description });
    if let Some(r) = e.retry_after {
        body["parameters"] = json!({ "retry_after": r });
    }
    body
}

fn answer(result: Result<Value, ApiErr>) -> (Response<Full<Bytes>>, Outcome) {
    match result {
        Ok(v) => (response(200, &json!({ "ok": true, "result": v })), Outcome::Ok(v)),
        Err(e) => (
            response(e.status, &error_body(&e)),
            Outcome::Err { status: e.status, description: e.description, retry_after: e.retry_after },
        ),
    }
}

fn canonical(method: &str) -> String {
    IMPLEMENTED_METHODS
        .iter()
        .find(|m| m.eq_ignore_ascii_case(method))
        .map_or_else(|| method.to_string(), |m| m.to_string())
}

fn percent_decode_path(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn handle(
    inner: Arc<Inner>,
    drop_now: Arc<Notify>,
    req: Request<HyperBody>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let received_at = Instant::now();
    let path = percent_decode_path(req.uri().path());
    let mut segments = path.trim_start_matches('/').splitn(2, '/');
    let (Some(bot_token), Some(method)) = (segments.next(), segments.next()) else {
        return Ok(response(404, &json!({"ok": false, "error_code": 404, "description": "Not Found"})));
    };
    let Some(token) = bot_token.strip_prefix("bot") else {
        return Ok(response(404, &json!({"ok": false, "error_code": 404, "description": "Not Found"})));
    };
    let method = canonical(method.trim_end_matches('/'));
    let content_type = req.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_string);
    let query = req.uri().query().map(str::to_string);
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return Ok(response(
                413,
                &json!({"ok": false, "error_code": 413, "description": "Request Entity Too Large"}),
            ))
        }
    };
    let params = parse_params(content_type.as_deref(), query.as_deref(), &body);

    if token != inner.opts.token {
        let (resp, outcome) =
            answer(Err(ApiErr { status: 401, description: "Unauthorized".into(), retry_after: None }));
        let p = params.map(Value::Object).unwrap_or(Value::Null);
        inner.record(&mut inner.lock(), &method, p, received_at, outcome);
        inner.changed();
        return Ok(resp);
    }
    let params = match params {
        Ok(p) => p,
        Err(e) => {
            let (resp, outcome) = answer(Err(bad(format!("can't parse request: {e}"))));
            inner.record(&mut inner.lock(), &method, Value::Null, received_at, outcome);
            inner.changed();
            return Ok(resp);
        }
    };

    // Fault rules.
    let chat_id = params.get("chat_id").and_then(Value::as_i64);
    let (delay, fault) = {
        let mut st = inner.lock();
        let mut delay = Duration::ZERO;
        let mut fault = None;
        for rule in st.faults.iter_mut() {
            if !rule.matches(&method, chat_id) {
                continue;
            }
            if let Some(n) = rule.remaining.as_mut() {
                *n -= 1;
            }
            match &rule.fault {
                Fault::Delay(d) => delay += *d,
                f => {
                    fault = Some(f.clone());
                    break;
                }
            }
        }
        st.faults.retain(|r| r.remaining != Some(0));
        if fault.is_some() {
            st.counters.injected_faults += 1;
            if matches!(fault, Some(Fault::TooManyRequests { .. })) {
                st.counters.injected_429 += 1;
            }
        }
        (delay, fault)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let params_value = Value::Object(params.clone());
    if let Some(f) = fault {
        let result = match f {
            Fault::TooManyRequests { retry_after } => Err(too_many(retry_after)),
            Fault::ServerError { status } => {
                let reason =
                    StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Server Error");
                Err(ApiErr { status, description: reason.to_string(), retry_after: None })
            }
            Fault::ApiError { code, description } => Err(ApiErr { status: code, description, retry_after: None }),
            Fault::DropConnection => {
                inner.record(&mut inner.lock(), &method, params_value, received_at, Outcome::Dropped);
                inner.changed();
                drop_now.notify_one();
                // The connection task drops this future together with the connection.
                std::future::pending::<()>().await;
                unreachable!("the connection was dropped");
            }
            Fault::Delay(_) => unreachable!("delays are not answers"),
        };
        let (resp, outcome) = answer(result);
        inner.record(&mut inner.lock(), &method, params_value, received_at, outcome);
        inner.changed();
        return Ok(resp);
    }

    if method == "getUpdates" {
        return Ok(get_updates(&inner, params, received_at).await);
    }

    let (resp, webhook_changed) = {
        let mut st = inner.lock();
        let result = dispatch(&inner, &mut st, &method, &params, received_at);
        let hook = matches!(method.as_str(), "setWebhook" | "deleteWebhook") && result.is_ok();
        if let Err(e) = &result {
            if e.status == 429 {
                st.counters.rate_limited += 1;
            } else if (400..500).contains(&e.status) {
                st.counters.bad_requests += 1;
            }
        }
        let (resp, outcome) = answer(result);
        let seq = inner.record(&mut st, &method, params_value, received_at, outcome);
        // Link replies created by this call to it.
        for r in st.replies.iter_mut().rev().take_while(|r| r.call_seq == usize::MAX) {
            r.call_seq = seq;
        }
        (resp, hook)
    };
    if webhook_changed {
        inner.updates_tx.send_modify(|v| *v += 1);
    }
    inner.changed();
    Ok(resp)
}

async fn get_updates(inner: &Arc<Inner>, params: Map<String, Value>, received_at: Instant) -> Response<Full<Bytes>> {
    let offset = params.get("offset").and_then(Value::as_i64).unwrap_or(0);
    let limit = params.get("limit").and_then(Value::as_i64).unwrap_or(100).clamp(1, 100) as usize;
    let timeout_s = params.get("timeout").and_then(Value::as_u64).unwrap_or(0);
    let wait = Duration::from_secs(timeout_s).min(inner.opts.max_poll_timeout);
    let deadline = tokio::time::Instant::from_std(received_at) + wait;
    let params_value = Value::Object(params.clone());
    let generation = {
        let mut st = inner.lock();
        if let Some(list) = params.get("allowed_updates").and_then(Value::as_array) {
            st.allowed_updates = Some(list.iter().filter_map(Value::as_str).map(str::to_string).collect());
        }
        st.poll_generation += 1;
        st.poll_generation
    };
    // Wake an older poll so that it ends with 409.
    inner.updates_tx.send_modify(|v| *v += 1);
    let mut shutdown = inner.shutdown_tx.subscribe();
    let mut first = true;
    let mut return_text: Option<String> = None;
    loop {
        let mut rx = inner.updates_tx.subscribe();
        let done = {
            let mut st = inner.lock();
            let result = if st.webhook.is_some() {
                Some(Err(ApiErr {
                    status: 409,
                    description: "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first".into(),
                    retry_after: None,
                }))
            } else if st.poll_generation != generation {
                Some(Err(ApiErr {
                    status: 409,
                    description:
                        "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running".into(),
                    retry_after: None,
                }))
            } else {
                if first {
                    st.confirm(offset);
                    first = false;
                }
                let taken = st.take_updates(limit, Instant::now());
                let over = *shutdown.borrow_and_update() || tokio::time::Instant::now() >= deadline;
                if !taken.is_empty() || over {
                    // Built as text: a raw update (`push_raw_update_text`) may be JSON a `Value`
                    // cannot hold, and must reach the client as it was injected.
                    let texts: Vec<String> = taken.iter().map(|&i| st.updates[i].text()).collect();
                    let recorded = Value::Array(taken.iter().map(|&i| st.updates[i].recorded()).collect());
                    inner.record(&mut st, "getUpdates", params_value.clone(), received_at, Outcome::Ok(recorded));
                    return_text = Some(format!("{{\"ok\":true,\"result\":[{}]}}", texts.join(",")));
                    None
                } else {
                    None
                }
            };
            result.map(|r| {
                let (resp, outcome) = answer(r);
                inner.record(&mut st, "getUpdates", params_value.clone(), received_at, outcome);
                resp
            })
        };
        if let Some(text) = return_text.take() {
            inner.changed();
            return Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(text)))
                .expect("valid response");
        }
        if let Some(resp) = done {
            inner.changed();
            return resp;
        }
        tokio::select! {
            _ = rx.changed() => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = shutdown.changed() => {}
        }
    }
}
