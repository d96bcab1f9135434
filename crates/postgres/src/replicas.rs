//! What the replicas of one bot share besides the engine's tables:
//!
//! - the inbox ([`PgTables::put_update`]): every update received by any replica, until it is
//!   handled; the replicas take it out one chat at a time;
//! - [`Replica`]: this replica's claims on chats, session advisory locks held by one connection
//!   of its own. A chat is worked by the replica that holds its lock, in the order its updates
//!   arrived; a replica that dies (its connection closes with it) leaves its chats to the others
//!   at once. An update is taken through that same connection, so a replica whose connection
//!   broke (its locks went with it) cannot take one more;
//! - [`SendClock`]: Telegram's limits for the bot, not per replica: the earliest moment of the
//!   next call, overall and per chat, kept on the server;
//! - [`listen`]: the notifications that wake replicas (an update arrived, the knowledge base was
//!   reloaded somewhere).

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use articlebot_engine::StoreError;
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, NoTls, Statement};

use crate::backoff::Backoff;
use crate::tables::{server_error, PgTables};

/// The channel told of every update put in the inbox.
pub const INBOX_CHANNEL: &str = "articlebot_inbox";
/// The channel told of a reload; the payload names the replica that reloaded.
pub const RELOAD_CHANNEL: &str = "articlebot_reload";
/// Our class of advisory locks for chats ("artc"); a chat's lock is [`chat_lock`] in it.
const CHAT_LOCKS: i32 = 0x6172_7463;
/// The lock of the replica that polls Telegram ("artp"): `getUpdates` takes one consumer.
const POLL_LOCK: i32 = 0x6172_7470;
/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The lock of `chat` in [`CHAT_LOCKS`]: chat ids are 64 bits, lock keys 31 (non-negative, to
/// compare with `pg_locks`' unsigned oids). Two chats that share a key only wait for each other.
pub fn chat_lock(chat: i64) -> i32 {
    ((chat ^ (chat >> 32)) & 0x7fff_ffff) as i32
}

/// The connection settings of `url` for a session of our own (`synchronous_commit` off: what it
/// writes is bookkeeping, never a user's state).
fn session_config(url: &str, name: &str) -> Result<postgres::Config, StoreError> {
    let mut config = postgres::Config::from_str(url).map_err(|e| StoreError::Server(Box::new(e)))?;
    config.connect_timeout(CONNECT_TIMEOUT).keepalives(true).keepalives_idle(Duration::from_secs(10));
    config.application_name(name);
    let options = config.get_options().map(|o| format!("{o} ")).unwrap_or_default();
    config.options(&format!("{options}-c synchronous_commit=off"));
    Ok(config)
}

/// A client dropped on an async runtime's thread would start its own runtime there and panic:
/// it says goodbye on a thread of its own.
fn drop_client(client: Client) {
    let _ = std::thread::spawn(move || drop(client)).join();
}

/// A connection of our own, and what comes with it.
trait Connection {
    fn client(&mut self) -> &mut Client;
    fn into_client(self) -> Client;
}

impl Connection for Client {
    fn client(&mut self) -> &mut Client {
        self
    }
    fn into_client(self) -> Client {
        self
    }
}

/// Runs `f` on the connection in `slot`, opened first if there is none (at most once per
/// backoff step). A connection that broke is dropped, with whatever the server held for it.
fn on_session<S: Connection, R>(
    slot: &Mutex<Option<S>>,
    backoff: &Backoff,
    open: impl FnOnce() -> Result<S, postgres::Error>,
    f: impl FnOnce(&mut S) -> Result<R, postgres::Error>,
) -> Result<R, StoreError> {
    let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
    if slot.is_none() {
        if !backoff.may_try() {
            return Err(StoreError::Unreachable("still unreachable; trying again shortly".into()));
        }
        match open() {
            Ok(s) => {
                backoff.worked();
                *slot = Some(s);
            }
            Err(e) => {
                let e = server_error(e);
                if e.is_transient() {
                    backoff.failed();
                }
                return Err(e);
            }
        }
    }
    let Some(session) = slot.as_mut() else { unreachable!("opened above") };
    let result = f(session);
    if let Err(e) = &result {
        let c = session.client();
        if e.is_closed() || c.is_closed() || c.is_valid(Duration::from_secs(2)).is_err() {
            if let Some(s) = slot.take() {
                drop_client(s.into_client());
            }
        }
    }
    result.map_err(server_error)
}

impl PgTables {
    /// Puts an update in the shared inbox (waiting for the server's disk) and tells the
    /// replicas; false when it was there already (Telegram delivered it twice).
    pub fn put_update(&self, update_id: i64, chat: i64, body: &[u8]) -> Result<bool, StoreError> {
        let added: i64 = self
            .with_durable(|c| {
                c.query_one(
                    "WITH added AS (
                         INSERT INTO inbox (update_id, chat, body) VALUES ($1, $2, $3)
                         ON CONFLICT (update_id) DO NOTHING RETURNING 1
                     )
                     SELECT count(*) FROM added, (SELECT pg_notify($4, '')) AS told",
                    &[&update_id, &chat, &body, &INBOX_CHANNEL],
                )
            })?
            .get(0);
        Ok(added > 0)
    }

    /// Takes a handled update out of the shared inbox.
    pub fn update_done(&self, update_id: i64) -> Result<(), StoreError> {
        self.with_durable(|c| c.execute("DELETE FROM inbox WHERE update_id = $1", &[&update_id])).map(|_| ())
    }

    /// Updates in the shared inbox.
    pub fn updates_waiting(&self) -> Result<u64, StoreError> {
        let n: i64 = self.with_durable(|c| c.query_one("SELECT count(*) FROM inbox", &[]))?.get(0);
        Ok(n.max(0) as u64)
    }

    /// Tells every replica listening on `channel`.
    pub fn notify(&self, channel: &str, payload: &str) -> Result<(), StoreError> {
        self.with_durable(|c| c.execute("SELECT pg_notify($1, $2)", &[&channel, &payload])).map(|_| ())
    }
}

/// A chat this replica works, as long as the session that locked it lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Claim {
    pub chat: i64,
    /// The session it was made in.
    pub epoch: u64,
}

/// An update taken from the inbox.
#[derive(Debug)]
pub struct Taken {
    pub update_id: i64,
    pub body: Vec<u8>,
    /// How many times a replica began it, this time included: more than once means another
    /// replica (or this one, before its connection broke) began it and did not finish.
    pub attempts: i32,
}

/// What [`Replica::take`] found.
#[derive(Debug)]
pub enum Next {
    Update(Taken),
    /// The chat has nothing waiting; its claim is released.
    Empty,
    /// The session of the claim is gone, and its lock with it: another replica may have the chat.
    Lost,
}

/// The session holding this replica's locks, and its statements.
struct Session {
    client: Client,
    epoch: u64,
    claim: Statement,
    take: Statement,
    /// Whether this session holds the poll lock.
    polling: bool,
}

impl Connection for Session {
    fn client(&mut self) -> &mut Client {
        &mut self.client
    }
    fn into_client(self) -> Client {
        self.client
    }
}

/// This replica's claims on chats (see the module doc).
pub struct Replica {
    config: postgres::Config,
    session: Mutex<Option<Session>>,
    /// Sessions opened so far: the epoch of the current one.
    epochs: AtomicU64,
    backoff: Backoff,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica").field("epoch", &self.epochs.load(Ordering::Relaxed)).finish_non_exhaustive()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(s) = self.session.get_mut().unwrap_or_else(|p| p.into_inner()).take() {
            drop_client(s.client);
        }
    }
}

impl Replica {
    /// Opens this replica's session on `url` (the server's schema must be migrated); `name`
    /// shows in `pg_stat_activity`.
    pub fn connect(url: &str, name: &str) -> Result<Replica, StoreError> {
        let replica = Replica {
            config: session_config(url, name)?,
            session: Mutex::new(None),
            epochs: AtomicU64::new(0),
            backoff: Backoff::default(),
        };
        replica.with(|_| Ok(()))?;
        Ok(replica)
    }

    fn open(&self) -> Result<Session, postgres::Error> {
        let mut client = self.config.connect(NoTls)?;
        // The oldest chats that nobody holds (not even this session: its locks count twice),
        // locked as they are read; how many at most is the room given.
        let claim = client.prepare(
            "SELECT chat FROM (
                 SELECT chat FROM inbox i
                 GROUP BY chat
                 HAVING NOT EXISTS (
                     SELECT 1 FROM pg_locks l
                     WHERE l.locktype = 'advisory' AND l.classid = $1::int::oid AND l.objsubid = 2
                       AND l.objid = (((i.chat # (i.chat >> 32)) & 2147483647)::int)::oid
                 )
                 ORDER BY min(seq)
                 LIMIT $2
             ) oldest
             WHERE pg_try_advisory_lock($1::int, ((chat # (chat >> 32)) & 2147483647)::int)",
        )?;
        let take = client.prepare(
            "UPDATE inbox SET attempts = attempts + 1
             WHERE seq = (SELECT min(seq) FROM inbox WHERE chat = $1)
             RETURNING update_id, body, attempts",
        )?;
        let epoch = self.epochs.fetch_add(1, Ordering::AcqRel) + 1;
        Ok(Session { client, epoch, claim, take, polling: false })
    }

    /// Runs `f` on the session, opened first if there is none (at most once per backoff step).
    /// A session that broke is dropped, and every claim made in it with it.
    fn with<R>(&self, f: impl FnOnce(&mut Session) -> Result<R, postgres::Error>) -> Result<R, StoreError> {
        on_session(&self.session, &self.backoff, || self.open(), f)
    }

    /// The epoch of the session now, opening one if needed.
    pub fn epoch(&self) -> Result<u64, StoreError> {
        self.with(|s| Ok(s.epoch))
    }

    /// Claims up to `room` chats with updates waiting that no replica works, oldest first.
    pub fn claim(&self, room: usize) -> Result<Vec<Claim>, StoreError> {
        if room == 0 {
            return Ok(Vec::new());
        }
        let room = room as i64;
        self.with(|s| {
            let rows = s.client.query(&s.claim, &[&CHAT_LOCKS, &room])?;
            Ok(rows.into_iter().map(|r| Claim { chat: r.get(0), epoch: s.epoch }).collect())
        })
    }

    /// Takes the chat's oldest update, if the claim still holds; releases the claim when the
    /// chat has none left.
    pub fn take(&self, claim: Claim) -> Result<Next, StoreError> {
        self.with(|s| {
            if s.epoch != claim.epoch {
                return Ok(Next::Lost);
            }
            if let Some(row) = s.client.query_opt(&s.take, &[&claim.chat])? {
                return Ok(Next::Update(Taken { update_id: row.get(0), body: row.get(1), attempts: row.get(2) }));
            }
            s.client.execute("SELECT pg_advisory_unlock($1, $2)", &[&CHAT_LOCKS, &chat_lock(claim.chat)])?;
            Ok(Next::Empty)
        })
    }

    /// Gives a claim up (this replica stops), leaving what is waiting to the others.
    pub fn release(&self, claim: Claim) {
        let _ = self.with(|s| {
            if s.epoch == claim.epoch {
                s.client.execute("SELECT pg_advisory_unlock($1, $2)", &[&CHAT_LOCKS, &chat_lock(claim.chat)])?;
            }
            Ok(())
        });
    }

    /// Whether claims of `epoch` still hold: it is the session's, and the session answers now.
    /// Asked before a reply goes out, so that a replica cut off from the server (whose chats
    /// the others may have taken over) sends nothing.
    pub fn holds(&self, epoch: u64) -> bool {
        self.with(|s| {
            if s.epoch != epoch {
                return Ok(false);
            }
            s.client.simple_query("")?;
            Ok(true)
        })
        .unwrap_or(false)
    }

    /// Whether this replica is the one that polls Telegram: it takes the poll lock if nobody
    /// holds it. A new session (the old one broke) takes it again first.
    pub fn polls(&self) -> Result<bool, StoreError> {
        self.with(|s| {
            if !s.polling {
                s.polling = s.client.query_one("SELECT pg_try_advisory_lock($1, 0)", &[&POLL_LOCK])?.get(0);
            }
            Ok(s.polling)
        })
    }
}

/// Telegram's limits kept on the server, for every replica (see [`SendClock::reserve`]).
pub struct SendClock {
    config: postgres::Config,
    client: Mutex<Option<Client>>,
    backoff: Backoff,
    reserved: AtomicU64,
}

impl std::fmt::Debug for SendClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendClock").finish_non_exhaustive()
    }
}

impl Drop for SendClock {
    fn drop(&mut self) {
        if let Some(c) = self.client.get_mut().unwrap_or_else(|p| p.into_inner()).take() {
            drop_client(c);
        }
    }
}

/// The key of the overall clock; chats' keys are their ids.
const OVERALL: &str = "all";
/// Chats' clocks are swept of past entries once in this many reservations.
const SWEEP_EVERY: u64 = 4096;

impl SendClock {
    pub fn connect(url: &str, name: &str) -> Result<SendClock, StoreError> {
        let clock = SendClock {
            config: session_config(url, name)?,
            client: Mutex::new(None),
            backoff: Backoff::default(),
            reserved: AtomicU64::new(0),
        };
        clock.with(|_| Ok(()))?;
        Ok(clock)
    }

    fn with<R>(&self, f: impl FnOnce(&mut Client) -> Result<R, postgres::Error>) -> Result<R, StoreError> {
        on_session(&self.client, &self.backoff, || self.config.connect(NoTls), f)
    }

    /// How long until the next call to `chat` may go (zero: now).
    pub fn chat_wait(&self, chat: i64) -> Result<Duration, StoreError> {
        let key = chat.to_string();
        let row = self.with(|c| {
            c.query_opt(
                "SELECT greatest(0, extract(epoch FROM next_at - clock_timestamp()))::float8
                 FROM send_clock WHERE key = $1",
                &[&key],
            )
        })?;
        Ok(row.map_or(Duration::ZERO, |r| Duration::from_secs_f64(r.get::<_, f64>(0).max(0.0))))
    }

    /// Reserves the next overall slot, `spacing` after the one before (whichever replica took
    /// it), and moves `chat`'s clock to `gap` after the slot; how long until the slot.
    pub fn reserve(&self, chat: i64, spacing: Duration, gap: Duration) -> Result<Duration, StoreError> {
        let key = chat.to_string();
        let (spacing, gap) = (spacing.as_secs_f64(), gap.as_secs_f64());
        let wait: f64 = self
            .with(|c| {
                c.query_one(
                    "WITH slot AS (
                         INSERT INTO send_clock AS c (key, next_at)
                         VALUES ($1, clock_timestamp() + make_interval(secs => $2))
                         ON CONFLICT (key) DO UPDATE
                             SET next_at = greatest(c.next_at, clock_timestamp()) + make_interval(secs => $2)
                         RETURNING next_at - make_interval(secs => $2) AS at
                     ), chat AS (
                         INSERT INTO send_clock AS c (key, next_at)
                         SELECT $3, at + make_interval(secs => $4) FROM slot
                         ON CONFLICT (key) DO UPDATE SET next_at = greatest(c.next_at, EXCLUDED.next_at)
                         RETURNING 1
                     )
                     SELECT greatest(0, extract(epoch FROM at - clock_timestamp()))::float8
                     FROM slot, (SELECT count(*) FROM chat) AS moved",
                    &[&OVERALL, &spacing, &key, &gap],
                )
            })?
            .get(0);
        if self.reserved.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            let _ = self.with(|c| {
                c.execute(
                    "DELETE FROM send_clock WHERE key <> $1 AND next_at < now() - interval '1 minute'",
                    &[&OVERALL],
                )
            });
        }
        Ok(Duration::from_secs_f64(wait.max(0.0)))
    }

    /// Takes the overall slot if it is free now (a call that may be skipped: "typing…").
    pub fn try_now(&self, spacing: Duration) -> Result<bool, StoreError> {
        let spacing = spacing.as_secs_f64();
        let taken = self.with(|c| {
            c.query_opt(
                "INSERT INTO send_clock AS c (key, next_at) VALUES ($1, clock_timestamp() + make_interval(secs => $2))
                 ON CONFLICT (key) DO UPDATE SET next_at = clock_timestamp() + make_interval(secs => $2)
                 WHERE c.next_at <= clock_timestamp()
                 RETURNING 1",
                &[&OVERALL, &spacing],
            )
        })?;
        Ok(taken.is_some())
    }
}

/// What a replica is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// An update was put in the inbox.
    Inbox,
    /// The replica named reloaded the knowledge base.
    Reload { from: String },
    /// Listening again after the connection broke: what was said meanwhile is not known.
    Resumed,
}

/// The listening thread; stops when dropped.
pub struct Notifications {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Notifications {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Listens for [`INBOX_CHANNEL`] and [`RELOAD_CHANNEL`] on a connection of its own, on a thread
/// of its own, calling `on` for each; reconnects with backoff when the connection breaks.
pub fn listen(url: &str, name: &str, on: impl Fn(Notice) + Send + 'static) -> Result<Notifications, StoreError> {
    let config = session_config(url, name)?;
    let stop = Arc::new(AtomicBool::new(false));
    let first = subscribe(&config).map_err(server_error)?;
    let thread = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("pg-notifications".into())
            .spawn(move || listen_loop(config, first, &stop, on))
            .map_err(StoreError::Io)?
    };
    Ok(Notifications { stop, thread: Some(thread) })
}

fn subscribe(config: &postgres::Config) -> Result<Client, postgres::Error> {
    let mut client = config.connect(NoTls)?;
    client.batch_execute(&format!("LISTEN {INBOX_CHANNEL}; LISTEN {RELOAD_CHANNEL};"))?;
    Ok(client)
}

fn listen_loop(config: postgres::Config, first: Client, stop: &AtomicBool, on: impl Fn(Notice)) {
    const TICK: Duration = Duration::from_millis(250);
    let mut client = Some(first);
    let mut wait = Duration::from_millis(100);
    let mut since_check = std::time::Instant::now();
    while !stop.load(Ordering::Acquire) {
        let Some(c) = client.as_mut() else {
            std::thread::sleep(wait);
            match subscribe(&config) {
                Ok(c) => {
                    client = Some(c);
                    wait = Duration::from_millis(100);
                    on(Notice::Resumed);
                }
                Err(_) => wait = (wait * 2).min(Duration::from_secs(5)),
            }
            continue;
        };
        let mut broken = false;
        {
            let mut notes = c.notifications();
            let mut it = notes.timeout_iter(TICK);
            loop {
                match it.next() {
                    Ok(Some(n)) if n.channel() == RELOAD_CHANNEL => {
                        on(Notice::Reload { from: n.payload().to_string() })
                    }
                    Ok(Some(_)) => on(Notice::Inbox),
                    Ok(None) => break,
                    Err(_) => {
                        broken = true;
                        break;
                    }
                }
            }
        }
        // A connection that died quietly says nothing; ask now and then.
        if !broken && since_check.elapsed() > Duration::from_secs(2) {
            since_check = std::time::Instant::now();
            broken = c.is_closed() || c.is_valid(Duration::from_secs(2)).is_err();
        }
        if broken {
            if let Some(c) = client.take() {
                drop(c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use articlebot_testkit::postgres::{fresh_database, psql};

    use super::*;

    fn tables(url: &str) -> PgTables {
        PgTables::connect(url).unwrap()
    }

    /// Takes and finishes the chat's updates until it has none left.
    fn taken(r: &Replica, tables: &PgTables, c: Claim) -> Vec<(i64, i32)> {
        let mut out = Vec::new();
        while let Next::Update(t) = r.take(c).unwrap() {
            out.push((t.update_id, t.attempts));
            tables.update_done(t.update_id).unwrap();
        }
        out
    }

    #[test]
    fn a_chat_is_worked_by_one_replica_in_order_and_taken_over_when_it_dies() {
        let url = fresh_database().unwrap();
        let t = tables(&url);
        // Arrival order, not update ids, is the order (ids start again after a quiet week).
        for (id, chat) in [(30, 1), (10, 2), (20, 1), (40, 2), (5, 1)] {
            assert!(t.put_update(id, chat, b"{}").unwrap());
        }
        assert!(!t.put_update(30, 1, b"{}").unwrap(), "a second delivery is not kept twice");
        let a = Replica::connect(&url, "replica a").unwrap();
        let b = Replica::connect(&url, "replica b").unwrap();
        let mut claims = a.claim(1).unwrap();
        assert_eq!(claims.iter().map(|c| c.chat).collect::<Vec<_>>(), vec![1], "the oldest chat first");
        assert!(a.claim(10).unwrap().iter().all(|c| c.chat == 2), "a chat is claimed once, even by its holder");
        let on_b = b.claim(10).unwrap();
        assert!(on_b.is_empty(), "both are held by a: {on_b:?}");
        let Next::Update(first) = a.take(claims[0]).unwrap() else { panic!("an update") };
        assert_eq!((first.update_id, first.attempts), (30, 1));
        // a dies with chat 1 begun (its connection closes with it).
        drop(a);
        claims = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while claims.len() < 2 && std::time::Instant::now() < deadline {
            claims.extend(b.claim(10).unwrap());
            std::thread::sleep(Duration::from_millis(20));
        }
        claims.sort_by_key(|c| c.chat);
        assert_eq!(claims.iter().map(|c| c.chat).collect::<Vec<_>>(), vec![1, 2], "taken over");
        assert_eq!(taken(&b, &t, claims[0]), vec![(30, 2), (20, 1), (5, 1)], "in order; the begun one counted again");
        assert!(matches!(b.take(claims[0]).unwrap(), Next::Lost | Next::Empty), "released once empty");
        assert_eq!(t.updates_waiting().unwrap(), 2, "chat 2's are left");
        let Next::Update(next) = b.take(claims[1]).unwrap() else { panic!("chat 2's first") };
        assert_eq!(next.update_id, 10);
    }

    #[test]
    fn a_replica_whose_session_broke_takes_nothing_more() {
        let url = fresh_database().unwrap();
        let t = tables(&url);
        t.put_update(1, 7, b"{}").unwrap();
        t.put_update(2, 7, b"{}").unwrap();
        let a = Replica::connect(&url, "replica cut").unwrap();
        let claim = a.claim(5).unwrap()[0];
        assert!(a.holds(claim.epoch));
        psql(&url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'replica cut'")
            .unwrap();
        assert!(!a.holds(claim.epoch), "the server let its locks go with the session");
        assert!(matches!(a.take(claim), Ok(Next::Lost) | Err(_)));
        assert!(matches!(a.take(claim).unwrap(), Next::Lost), "never on the new session");
        assert!(a.epoch().unwrap() > claim.epoch);
        let again = a.claim(5).unwrap();
        assert_eq!(again.len(), 1, "claimed again in the new session");
        assert_eq!(taken(&a, &t, again[0]).len(), 2);
    }

    #[test]
    fn one_replica_polls() {
        let url = fresh_database().unwrap();
        tables(&url);
        let a = Replica::connect(&url, "a").unwrap();
        let b = Replica::connect(&url, "b").unwrap();
        assert!(a.polls().unwrap());
        assert!(a.polls().unwrap(), "still");
        assert!(!b.polls().unwrap());
        drop(a);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !b.polls().unwrap() {
            assert!(std::time::Instant::now() < deadline, "b takes over polling");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn replicas_share_one_send_clock() {
        let url = fresh_database().unwrap();
        tables(&url);
        let clocks = [SendClock::connect(&url, "x").unwrap(), SendClock::connect(&url, "y").unwrap()];
        let spacing = Duration::from_millis(40);
        let started = std::time::Instant::now();
        let mut slots = Vec::new();
        for i in 0..10 {
            let wait = clocks[i % 2].reserve(100 + i as i64, spacing, Duration::from_secs(1)).unwrap();
            slots.push(started.elapsed() + wait);
        }
        for w in slots.windows(2) {
            let gap = w[1].saturating_sub(w[0]);
            assert!(gap + Duration::from_millis(5) >= spacing, "slots {:?} apart: {slots:?}", gap);
        }
        let chat = clocks[1].chat_wait(109).unwrap();
        assert!(chat > Duration::from_millis(900) && chat <= Duration::from_secs(2), "{chat:?}");
        assert_eq!(clocks[0].chat_wait(5).unwrap(), Duration::ZERO, "a chat never written to");
        assert!(!clocks[0].try_now(spacing).unwrap(), "the overall slot is taken for a while");
        std::thread::sleep(slots[9].saturating_sub(started.elapsed()) + spacing);
        assert!(clocks[1].try_now(spacing).unwrap(), "free again");
    }

    #[test]
    fn replicas_hear_of_updates_and_reloads() {
        let url = fresh_database().unwrap();
        let t = tables(&url);
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let _listening = listen(&url, "listener", move |n| {
            let _ = tx.lock().unwrap().send(n);
        })
        .unwrap();
        t.put_update(1, 1, b"{}").unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), Notice::Inbox);
        t.notify(RELOAD_CHANNEL, "replica-2").unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), Notice::Reload { from: "replica-2".into() });
        psql(&url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'listener'")
            .unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), Notice::Resumed);
        t.notify(RELOAD_CHANNEL, "again").unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), Notice::Reload { from: "again".into() });
    }
}
