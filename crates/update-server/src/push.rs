//! Push: a device holds `GET /api/v1/device/push` open (server-sent events), and an operator's
//! `check-now` reaches it at once.
//!
//! The [`PushHub`] maps each connected device to a broadcast channel. A device holds at most
//! [`PushHub::streams_per_device`] streams (1 by default): a new stream ends its oldest, so a
//! device that reconnects after its network dropped the old connection is never locked out,
//! and a device opening thousands of streams holds one. Nothing here is persistent: the store's check-now flag is
//! what guarantees delivery, at the device's next check-in or when it next opens a stream.
//! The hub lives in one process; servers sharing a PostgreSQL database pass check-now requests
//! to each other's hubs through `LISTEN/NOTIFY` (see [`store`](crate::store)).

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio_stream::Stream;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use update_protocol::DeviceId;
use update_protocol::push::PushEvent;

/// Messages queued per stream before older ones are dropped (they are all the same request).
const CHANNEL_CAPACITY: usize = 4;

#[derive(Debug, Default)]
struct Channels {
    by_device: HashMap<DeviceId, DeviceStreams>,
    next_id: u64,
    closed: bool,
}

/// One device's channel and its open streams, oldest first (each ends when its token is
/// cancelled).
#[derive(Debug)]
struct DeviceStreams {
    sender: broadcast::Sender<PushEvent>,
    streams: VecDeque<(u64, CancellationToken)>,
}

/// The connected devices' streams.
#[derive(Debug)]
pub struct PushHub {
    channels: Mutex<Channels>,
    keep_alive: Duration,
    streams_per_device: usize,
    /// Becomes `true` when the hub closes.
    closed: watch::Sender<bool>,
}

impl PushHub {
    /// A hub whose streams send a keep-alive comment every `keep_alive` (15 s in production:
    /// proxies and NAT close idle connections), one stream per device.
    #[must_use]
    pub fn new(keep_alive: Duration) -> Self {
        Self {
            channels: Mutex::new(Channels::default()),
            keep_alive,
            streams_per_device: 1,
            closed: watch::Sender::new(false),
        }
    }

    /// The same hub with up to `n` streams per device (at least 1).
    #[must_use]
    pub fn with_streams_per_device(mut self, n: usize) -> Self {
        self.streams_per_device = n.max(1);
        self
    }

    /// Streams a device may hold at once; a new one beyond ends the oldest.
    #[must_use]
    pub fn streams_per_device(&self) -> usize {
        self.streams_per_device
    }

    /// The keep-alive interval.
    #[must_use]
    pub fn keep_alive(&self) -> Duration {
        self.keep_alive
    }

    fn lock(&self) -> MutexGuard<'_, Channels> {
        // The map stays consistent even if a holder panicked: every change is one call.
        self.channels.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A stream of the pushes for `device`, until it is dropped, the hub is closed, or the
    /// device opens more than [`streams_per_device`](Self::streams_per_device) newer ones.
    #[must_use]
    pub fn subscribe(self: &Arc<Self>, device: &DeviceId) -> Subscription {
        let mut channels = self.lock();
        let ended = CancellationToken::new();
        channels.next_id += 1;
        let id = channels.next_id;
        let receiver = if channels.closed {
            // Closed: a stream that ends at once.
            ended.cancel();
            broadcast::channel(1).1
        } else {
            let entry = channels.by_device.entry(device.clone()).or_insert_with(|| DeviceStreams {
                sender: broadcast::channel(CHANNEL_CAPACITY).0,
                streams: VecDeque::new(),
            });
            while entry.streams.len() >= self.streams_per_device {
                if let Some((_, oldest)) = entry.streams.pop_front() {
                    tracing::info!(%device, "push stream replaced by a newer one");
                    oldest.cancel();
                }
            }
            entry.streams.push_back((id, ended.clone()));
            entry.sender.subscribe()
        };
        Subscription {
            hub: Arc::clone(self),
            device: device.clone(),
            id,
            ended: Box::pin(ended.cancelled_owned()),
            stream: Some(BroadcastStream::new(receiver)),
        }
    }

    /// Sends `push` to every stream `device` holds. Returns how many there are (0: not
    /// connected).
    pub fn send(&self, device: &DeviceId, push: PushEvent) -> usize {
        self.lock().by_device.get(device).and_then(|d| d.sender.send(push).ok()).unwrap_or(0)
    }

    /// How many streams `device` holds.
    #[must_use]
    pub fn connected(&self, device: &DeviceId) -> usize {
        self.lock().by_device.get(device).map_or(0, |d| d.streams.len())
    }

    /// Ends every stream and refuses new ones (shutdown: open streams would otherwise keep
    /// their connections, and the server, alive).
    pub fn close(&self) {
        let mut channels = self.lock();
        channels.closed = true;
        for (_, d) in channels.by_device.drain() {
            d.streams.iter().for_each(|(_, ended)| ended.cancel());
        }
        self.closed.send_replace(true);
    }

    /// Resolves when the hub is closed (for tasks that feed it, e.g.
    /// [`PgStore::forward_pushes`](crate::store::PgStore::forward_pushes)).
    pub async fn closed(&self) {
        let mut rx = self.closed.subscribe();
        // The sender lives in `self`, so the only way out is a close.
        let _ = rx.wait_for(|closed| *closed).await;
    }
}

/// One device's stream of pushes. Dropping it (the device went away) forgets the device when
/// it was its last stream.
#[derive(Debug)]
pub struct Subscription {
    hub: Arc<PushHub>,
    device: DeviceId,
    id: u64,
    /// Resolves when the hub closes or a newer stream of the device replaces this one.
    ended: Pin<Box<WaitForCancellationFutureOwned>>,
    stream: Option<BroadcastStream<PushEvent>>,
}

impl Stream for Subscription {
    type Item = PushEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<PushEvent>> {
        if self.ended.as_mut().poll(cx).is_ready() {
            self.stream = None;
        }
        let Some(stream) = self.stream.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(stream).poll_next(cx) {
            Poll::Ready(Some(Ok(push))) => Poll::Ready(Some(push)),
            // Missed some: they were all requests to check, so one check covers them.
            Poll::Ready(Some(Err(BroadcastStreamRecvError::Lagged(_)))) => Poll::Ready(Some(PushEvent::CheckNow)),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        drop(self.stream.take());
        let mut channels = self.hub.lock();
        if let Some(d) = channels.by_device.get_mut(&self.device) {
            d.streams.retain(|(id, _)| *id != self.id);
            if d.streams.is_empty() {
                channels.by_device.remove(&self.device);
            }
        }
        tracing::debug!(device = %self.device, "push stream closed");
    }
}

#[cfg(test)]
mod tests {
    use tokio_stream::StreamExt;

    use super::*;

    fn id(s: &str) -> DeviceId {
        DeviceId::parse(s).unwrap()
    }

    #[tokio::test]
    async fn every_stream_of_the_device_gets_the_push_and_no_other() {
        let hub = Arc::new(PushHub::new(Duration::from_secs(15)).with_streams_per_device(2));
        let mut a1 = hub.subscribe(&id("a"));
        let mut a2 = hub.subscribe(&id("a"));
        let b = hub.subscribe(&id("b"));
        assert_eq!(hub.connected(&id("a")), 2);
        assert_eq!(hub.send(&id("a"), PushEvent::CheckNow), 2);
        assert_eq!(a1.next().await, Some(PushEvent::CheckNow));
        assert_eq!(a2.next().await, Some(PushEvent::CheckNow));
        assert_eq!(hub.send(&id("nobody"), PushEvent::CheckNow), 0);
        drop(a1);
        assert_eq!(hub.connected(&id("a")), 1);
        drop(a2);
        assert_eq!(hub.connected(&id("a")), 0);
        assert!(!hub.lock().by_device.contains_key(&id("a")), "forgotten with its last stream");
        assert_eq!(hub.connected(&id("b")), 1);
        drop(b);
    }

    #[tokio::test]
    async fn a_new_stream_beyond_the_limit_ends_the_oldest() {
        let hub = Arc::new(PushHub::new(Duration::from_secs(15)));
        let mut first = hub.subscribe(&id("a"));
        let mut second = hub.subscribe(&id("a"));
        assert_eq!(first.next().await, None, "replaced");
        assert_eq!(hub.connected(&id("a")), 1);
        drop(first);
        assert_eq!(hub.send(&id("a"), PushEvent::CheckNow), 1);
        assert_eq!(second.next().await, Some(PushEvent::CheckNow));
        let streams: Vec<_> = (0..100).map(|_| hub.subscribe(&id("a"))).collect();
        assert_eq!(hub.connected(&id("a")), 1);
        drop(streams);
        drop(second);
        assert_eq!(hub.connected(&id("a")), 0);
    }

    #[tokio::test]
    async fn a_slow_stream_gets_one_check_for_many() {
        let hub = Arc::new(PushHub::new(Duration::from_secs(15)));
        let mut s = hub.subscribe(&id("a"));
        for _ in 0..CHANNEL_CAPACITY * 3 {
            hub.send(&id("a"), PushEvent::CheckNow);
        }
        assert_eq!(s.next().await, Some(PushEvent::CheckNow));
    }

    #[tokio::test]
    async fn close_ends_every_stream() {
        let hub = Arc::new(PushHub::new(Duration::from_secs(15)));
        let mut s = hub.subscribe(&id("a"));
        hub.close();
        assert_eq!(s.next().await, None);
        let mut late = hub.subscribe(&id("a"));
        assert_eq!(late.next().await, None);
        assert_eq!(hub.send(&id("a"), PushEvent::CheckNow), 0);
    }
}
