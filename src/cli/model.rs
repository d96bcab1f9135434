//! What every command that matches questions takes for semantic matching: the model (flag,
//! environment, else site.toml's `[semantic] model`), its threads, the vector cache; and how the
//! first embedding of a knowledge base shows its progress.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use articlebot_engine::{EmbedProgress, Options};
use clap::Args;

#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Sentence-transformers model dir for semantic matching (overrides `[semantic] model` in site.toml)
    #[arg(long = "model", env = "ARTICLEBOT_MODEL", value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Threads that embed the knowledge base (default: all the machine has)
    #[arg(long = "model-threads", env = "ARTICLEBOT_MODEL_THREADS", value_name = "N")]
    pub threads: Option<usize>,
    /// Where embedded texts are kept between runs (default: ~/.cache/articlebot)
    #[arg(long = "cache", env = "ARTICLEBOT_CACHE", value_name = "DIR")]
    pub cache: Option<PathBuf>,
}

impl ModelArgs {
    /// Engine options with these settings and progress shown on stderr.
    pub fn options(&self) -> Options {
        Options {
            model: self.model.clone(),
            model_threads: self.threads,
            cache_dir: self.cache.clone().or_else(default_cache_dir),
            progress: Some(progress_on_stderr()),
            ..Options::default()
        }
    }
}

/// `$XDG_CACHE_HOME/articlebot`, else `~/.cache/articlebot`.
fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|d| !d.is_empty()).map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("articlebot"))
}

/// A bar on a terminal; on anything else a line every ten seconds and one at the end, with the
/// throughput.
pub fn progress_on_stderr() -> Arc<dyn Fn(EmbedProgress) + Send + Sync> {
    let terminal = std::io::stderr().is_terminal();
    let state: Mutex<Option<(Instant, Instant, Option<indicatif::ProgressBar>)>> = Mutex::new(None);
    Arc::new(move |p: EmbedProgress| {
        if p.total == 0 {
            return;
        }
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let (started, last, bar) = st.get_or_insert_with(|| {
            let bar = terminal.then(|| {
                let bar = indicatif::ProgressBar::new(p.total as u64);
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "embedding the knowledge base {bar:30} {pos}/{len} texts, {per_sec}, {eta} left",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                bar
            });
            if bar.is_none() {
                eprintln!("embedding the knowledge base: {} texts", p.total);
            }
            (now, now, bar)
        });
        let rate = p.done as f64 / started.elapsed().as_secs_f64().max(1e-3);
        match bar {
            Some(bar) => {
                bar.set_position(p.done as u64);
                if p.done == p.total {
                    bar.finish_and_clear();
                }
            }
            None if p.done == p.total || now.duration_since(*last) >= Duration::from_secs(10) => {
                *last = now;
                eprintln!("embedding the knowledge base: {}/{} texts, {rate:.1}/s", p.done, p.total);
            }
            None => {}
        }
        if p.done == p.total {
            eprintln!(
                "embedded {} texts in {:.1} s ({rate:.1}/s); they are cached for the next start",
                p.total,
                started.elapsed().as_secs_f64()
            );
            *st = None;
        }
    })
}
