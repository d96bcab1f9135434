//! Webhook delivery: after `setWebhook`, updates are POSTed to its URL instead of waiting for
//! `getUpdates`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::state::{unix_now, Inner};

/// Delivers the update queue to the webhook while one is set: one POST at a time, in order, each
/// retried 200 ms after a failure until the webhook answers 2xx. Each POST on a connection of its
/// own, as Telegram's come over many: a load balancer in front of replicas spreads them. The last failure shows in
/// `getWebhookInfo`, as Telegram reports it.
pub(crate) async fn webhook_loop(inner: Arc<Inner>) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(0)
        .build()
        .expect("HTTP client");
    let mut shutdown = inner.shutdown_tx.subscribe();
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        let mut rx = inner.updates_tx.subscribe();
        let job = {
            let mut st = inner.lock();
            match &st.webhook {
                None => None,
                Some(w) => {
                    let (url, secret) = (w.url.clone(), w.secret_token.clone());
                    while st.queue_start < st.updates.len() && !st.allowed(&st.updates[st.queue_start].kind) {
                        st.queue_start += 1;
                    }
                    st.updates.get(st.queue_start).map(|u| (u.id, u.text(), url, secret))
                }
            }
        };
        let Some((id, body, url, secret)) = job else {
            tokio::select! {
                _ = rx.changed() => {}
                _ = shutdown.changed() => {}
            }
            continue;
        };
        let mut req = client.post(&url).header("content-type", "application/json").body(body);
        if let Some(s) = secret {
            req = req.header("X-Telegram-Bot-Api-Secret-Token", s);
        }
        let now = Instant::now();
        let result = req.send().await;
        let ok = matches!(&result, Ok(r) if r.status().is_success());
        {
            let mut st = inner.lock();
            let index = (id - 1) as usize;
            if ok {
                st.updates[index].delivered_at.get_or_insert(now);
                // The webhook may have changed meanwhile; only advance past this very update.
                if st.queue_start == index {
                    st.queue_start += 1;
                }
            } else {
                let msg = match &result {
                    Ok(r) => format!("Wrong response from the webhook: {}", r.status()),
                    Err(e) => format!("Connection failed: {e}"),
                };
                st.webhook_error = Some((unix_now() as u64, msg));
            }
        }
        inner.changed();
        if !ok {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}
