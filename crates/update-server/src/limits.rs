//! Resource control: what one client, or many, may hold of the server.
//!
//! Each limit answers one attack (docs/server.md, "Limits"; tests/server/limits.rs runs each
//! attack against a real listener while a well-behaved device keeps checking in):
//! - **many raw sockets** that never finish a handshake: a cap on open connections
//!   ([`Limits::max_connections`]); at the cap a new connection evicts the oldest one still
//!   in its TLS handshake (a device finishes its handshake in milliseconds, an idle socket
//!   never does), and is refused only when every open connection is past its handshake. The
//!   handshake itself has [`Limits::handshake_timeout`];
//! - **slow headers and slow bodies**: [`Limits::header_timeout`] (HTTP/1.1) and
//!   [`Limits::body_timeout`] (from the request head to the body's last byte);
//! - **idle connections** (HTTP/2 or HTTP/1.1 keep-alive with no request in flight):
//!   closed after [`Limits::idle_timeout`] (a GOAWAY on HTTP/2). A push stream is a request
//!   in flight, so it is never idle;
//! - **floods from one device**: per-device token buckets for check-ins, events and push
//!   stream opens ([`RateLimiter`], 429 with `Retry-After`), and one push stream per device
//!   ([`crate::push::PushHub`]: a new stream ends the device's oldest).
//!
//! A device is its client certificate's common name; without mutual TLS (behind a proxy, or
//! `--insecure-device-ids`) requests are not rate-limited per device.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The limits of one listener. [`Limits::default`] is what `update-server serve` uses without
/// flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Open connections at most (`--max-connections`); `main` also keeps it under the
    /// open-file limit.
    pub max_connections: usize,
    /// A TLS handshake must finish within this.
    pub handshake_timeout: Duration,
    /// An HTTP/1.1 request's headers must arrive within this.
    pub header_timeout: Duration,
    /// A request body must arrive whole within this after the request's headers.
    pub body_timeout: Duration,
    /// A connection with no request in flight is closed after this.
    pub idle_timeout: Duration,
    /// Check-ins a device may make per minute (a burst of as many); 0: no limit.
    pub checkins_per_minute: u32,
    /// Events a device may send per minute (a burst of as many); 0: no limit.
    pub events_per_minute: u32,
    /// Push streams a device may open per minute; 0: no limit.
    pub push_opens_per_minute: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 50_000,
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
            checkins_per_minute: 60,
            events_per_minute: 120,
            push_opens_per_minute: 20,
        }
    }
}

/// Raises this process's soft open-file limit to its hard limit (systemd's default soft limit
/// is 1024: about a thousand sockets would exhaust the server) and returns the new soft limit
/// (`None`: unlimited).
///
/// # Errors
/// The limit cannot be read or set.
pub fn raise_open_file_limit() -> std::io::Result<Option<u64>> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        setrlimit(Resource::Nofile, limit).map_err(std::io::Error::from)?;
    }
    Ok(getrlimit(Resource::Nofile).current)
}

/// The connection cap that fits an open-file limit: `wanted`, but leaving 256 descriptors for
/// the database, the repository's files and the log.
#[must_use]
pub fn connections_within(wanted: usize, open_files: Option<u64>) -> usize {
    match open_files {
        None => wanted,
        Some(n) => wanted.min(usize::try_from(n.saturating_sub(256)).unwrap_or(usize::MAX)).max(1),
    }
}

/// What a [`RateLimiter`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rated {
    /// `POST /api/v1/device/checkin`.
    CheckIn,
    /// `POST /api/v1/device/events`.
    Event,
    /// `GET /api/v1/device/push`.
    PushOpen,
}

impl Rated {
    /// The rated kind of a device request, by method and path.
    #[must_use]
    pub fn of(method: &axum::http::Method, path: &str) -> Option<Self> {
        use update_protocol::routes;
        match (method.as_str(), path) {
            ("POST", routes::CHECKIN) => Some(Rated::CheckIn),
            ("POST", routes::EVENTS) => Some(Rated::Event),
            ("GET", routes::PUSH) => Some(Rated::PushOpen),
            _ => None,
        }
    }

    /// How the refusal names it.
    #[must_use]
    pub fn what(self) -> &'static str {
        match self {
            Rated::CheckIn => "check-ins",
            Rated::Event => "events",
            Rated::PushOpen => "push streams",
        }
    }
}

/// A token bucket: `tokens` in thousandths, last refilled at `at` (ms since the limiter
/// started).
#[derive(Debug, Clone, Copy)]
struct Bucket {
    milli_tokens: u64,
    at: u64,
}

/// Per-device token buckets. The buckets of devices that went quiet are forgotten once the
/// map grows (a full bucket is the same as none).
#[derive(Debug)]
pub struct RateLimiter {
    limits: [(Rated, u32); 3],
    started: Instant,
    buckets: Mutex<HashMap<(Rated, Box<str>), Bucket>>,
    /// The map size at which full buckets are swept out next.
    sweep_at: AtomicUsize,
}

/// Buckets kept before the first sweep.
const SWEEP_FLOOR: usize = 4096;

impl RateLimiter {
    /// Buckets for `limits`' per-device rates.
    #[must_use]
    pub fn new(limits: &Limits) -> Self {
        Self {
            limits: [
                (Rated::CheckIn, limits.checkins_per_minute),
                (Rated::Event, limits.events_per_minute),
                (Rated::PushOpen, limits.push_opens_per_minute),
            ],
            started: Instant::now(),
            buckets: Mutex::new(HashMap::new()),
            sweep_at: AtomicUsize::new(SWEEP_FLOOR),
        }
    }

    fn per_minute(&self, kind: Rated) -> u32 {
        self.limits.iter().find(|(k, _)| *k == kind).map_or(0, |(_, n)| *n)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<(Rated, Box<str>), Bucket>> {
        self.buckets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes one `kind` token for `device`: `Ok` when allowed, else the refusal.
    ///
    /// # Errors
    /// [`ApiError::TooManyRequests`](crate::error::ApiError::TooManyRequests) with the seconds
    /// until a token is back.
    pub fn take(&self, kind: Rated, device: &str) -> Result<(), crate::error::ApiError> {
        let per_minute = self.per_minute(kind);
        if per_minute == 0 {
            return Ok(());
        }
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let capacity = u64::from(per_minute) * 1000;
        let mut buckets = self.lock();
        // Refill: `per_minute` tokens per 60,000 ms, i.e. per_minute/60 thousandths per ms.
        let refill = |b: &Bucket| (b.milli_tokens + (now - b.at) * u64::from(per_minute) / 60).min(capacity);
        let bucket = match buckets.get_mut(&(kind, Box::from(device))) {
            Some(b) => {
                b.milli_tokens = refill(b);
                b.at = now;
                b
            }
            None => {
                if buckets.len() >= self.sweep_at.load(Ordering::Relaxed) {
                    let limits = self.limits;
                    buckets.retain(|(k, _), b| {
                        let n = limits.iter().find(|(l, _)| l == k).map_or(0, |(_, n)| *n);
                        b.milli_tokens + (now - b.at) * u64::from(n) / 60 < u64::from(n) * 1000
                    });
                    self.sweep_at.store((buckets.len() * 2).max(SWEEP_FLOOR), Ordering::Relaxed);
                }
                buckets.entry((kind, Box::from(device))).or_insert(Bucket { milli_tokens: capacity, at: now })
            }
        };
        if bucket.milli_tokens >= 1000 {
            bucket.milli_tokens -= 1000;
            return Ok(());
        }
        let missing_ms = (1000 - bucket.milli_tokens) * 60 / u64::from(per_minute);
        Err(crate::error::ApiError::TooManyRequests {
            what: kind.what(),
            per_minute,
            retry_after: missing_ms.div_ceil(1000).max(1),
        })
    }
}

/// The open connections: how many, which are still in their TLS handshake (oldest first),
/// and the signal that ends them all at shutdown.
#[derive(Debug)]
pub struct ConnectionTracker {
    max: usize,
    state: Mutex<TrackerState>,
    /// Wakes the shutdown when the last connection closes.
    drained: Notify,
    shutdown: CancellationToken,
    /// Connections refused or evicted at the cap (for the log and the tests).
    turned_away: AtomicU64,
}

#[derive(Debug, Default)]
struct TrackerState {
    open: usize,
    next_id: u64,
    handshaking: BTreeMap<u64, CancellationToken>,
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct Admission {
    tracker: Arc<ConnectionTracker>,
    id: u64,
    /// Cancelled when the connection is evicted during its handshake.
    pub evicted: CancellationToken,
}

impl ConnectionTracker {
    /// At most `max` connections (at least 1).
    #[must_use]
    pub fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            state: Mutex::new(TrackerState::default()),
            drained: Notify::new(),
            shutdown: CancellationToken::new(),
            turned_away: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, TrackerState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a new connection (in its handshake), evicting the oldest connection still in
    /// its handshake when the cap is reached; `None` when every open connection is past its
    /// handshake (the new one is then closed at once).
    pub fn admit(self: &Arc<Self>) -> Option<Admission> {
        let mut state = self.lock();
        if state.open >= self.max {
            let Some((_, oldest)) = state.handshaking.pop_first() else {
                self.turned_away.fetch_add(1, Ordering::Relaxed);
                return None;
            };
            // Its task ends at once and gives its place back; until then we are one over.
            oldest.cancel();
            self.turned_away.fetch_add(1, Ordering::Relaxed);
        }
        state.open += 1;
        state.next_id += 1;
        let id = state.next_id;
        let evicted = CancellationToken::new();
        state.handshaking.insert(id, evicted.clone());
        Some(Admission { tracker: Arc::clone(self), id, evicted })
    }

    /// Open connections.
    #[must_use]
    pub fn open(&self) -> usize {
        self.lock().open
    }

    /// Connections refused or evicted at the cap so far.
    #[must_use]
    pub fn turned_away(&self) -> u64 {
        self.turned_away.load(Ordering::Relaxed)
    }

    /// Cancelled when the server shuts down.
    #[must_use]
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Asks every connection to finish, then waits until they have.
    pub async fn drain(&self) {
        self.shutdown.cancel();
        loop {
            let notified = self.drained.notified();
            if self.open() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Admission {
    /// Cancelled when the server shuts down.
    #[must_use]
    pub fn shutdown(&self) -> &CancellationToken {
        &self.tracker.shutdown
    }

    /// The handshake is done: the connection can no longer be evicted.
    pub fn established(&self) {
        self.tracker.lock().handshaking.remove(&self.id);
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut state = self.tracker.lock();
        state.handshaking.remove(&self.id);
        state.open -= 1;
        if state.open == 0 {
            self.tracker.drained.notify_waiters();
        }
    }
}

/// What a connection is doing, for its idle timeout: requests in flight, and when the last
/// one began or ended.
#[derive(Debug)]
pub struct Activity {
    started: Instant,
    in_flight: AtomicUsize,
    last_ms: AtomicU64,
}

impl Default for Activity {
    fn default() -> Self {
        Self { started: Instant::now(), in_flight: AtomicUsize::new(0), last_ms: AtomicU64::new(0) }
    }
}

impl Activity {
    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// A request begins; it ends when the returned guard is dropped (with its response body).
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.touch();
        InFlight(Arc::clone(self))
    }

    /// How long the connection has had no request in flight (`None`: one is in flight).
    #[must_use]
    pub fn idle_for(&self) -> Option<Duration> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        Some(self.started.elapsed().saturating_sub(last))
    }
}

/// A request in flight ([`Activity::begin`]).
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that holds its request's [`InFlight`] until it is sent or dropped.
pub struct TrackedBody {
    inner: axum::body::Body,
    _in_flight: InFlight,
}

impl TrackedBody {
    /// `inner`, counted as in flight until it ends.
    #[must_use]
    pub fn new(inner: axum::body::Body, in_flight: InFlight) -> Self {
        Self { inner, _in_flight: in_flight }
    }
}

impl Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body that fails once its deadline passes before its last byte.
pub struct DeadlineBody<B> {
    inner: B,
    deadline: Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
}

impl<B> DeadlineBody<B> {
    /// `inner`, which must arrive whole within `timeout` from now.
    #[must_use]
    pub fn new(inner: B, timeout: Duration) -> Self {
        Self { inner, deadline: Box::pin(tokio::time::sleep(timeout)), timeout }
    }
}

/// The body did not arrive in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {} s", .0.as_secs())]
pub struct BodyTimeout(Duration);

impl<B> Body for DeadlineBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            let timeout = self.timeout;
            return Poll::Ready(Some(Err(Box::new(BodyTimeout(timeout)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refuses_with_a_retry_time() {
        let limits = Limits { checkins_per_minute: 3, events_per_minute: 0, ..Limits::default() };
        let r = RateLimiter::new(&limits);
        for _ in 0..3 {
            r.take(Rated::CheckIn, "d1").unwrap();
        }
        let e = r.take(Rated::CheckIn, "d1").unwrap_err();
        assert!(matches!(e, crate::error::ApiError::TooManyRequests { retry_after: 1..=20, .. }), "{e:?}");
        r.take(Rated::CheckIn, "d2").unwrap();
        for _ in 0..1000 {
            r.take(Rated::Event, "d1").unwrap();
        }
    }

    #[test]
    fn at_the_cap_the_oldest_handshake_is_evicted_and_established_ones_are_not() {
        let t = Arc::new(ConnectionTracker::new(2));
        let a = t.admit().unwrap();
        let b = t.admit().unwrap();
        b.established();
        let c = t.admit().unwrap();
        assert!(a.evicted.is_cancelled() && !b.evicted.is_cancelled());
        drop(a);
        c.established();
        assert!(t.admit().is_none(), "both established: refused");
        assert_eq!(t.turned_away(), 2);
        drop((b, c));
        assert_eq!(t.open(), 0);
    }
}
