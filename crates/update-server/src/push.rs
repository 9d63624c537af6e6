//! Push: a device holds `GET /api/v1/device/push` open (server-sent events), and an operator's
//! `check-now` reaches it at once.
//!
//! The [`PushHub`] maps each connected device to a broadcast channel; a device may hold several
//! streams (all get the message). Nothing here is persistent: the store's check-now flag is
//! what guarantees delivery, at the device's next check-in or when it next opens a stream.
//! The hub lives in one process; servers sharing a PostgreSQL database pass check-now requests
//! to each other's hubs through `LISTEN/NOTIFY` (see [`store`](crate::store)).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio_stream::Stream;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use update_protocol::DeviceId;
use update_protocol::push::PushEvent;

/// Messages queued per stream before older ones are dropped (they are all the same request).
const CHANNEL_CAPACITY: usize = 4;

#[derive(Debug, Default)]
struct Channels {
    by_device: HashMap<DeviceId, broadcast::Sender<PushEvent>>,
    closed: bool,
}

/// The connected devices' streams.
#[derive(Debug)]
pub struct PushHub {
    channels: Mutex<Channels>,
    keep_alive: Duration,
    /// Becomes `true` when the hub closes.
    closed: watch::Sender<bool>,
}

impl PushHub {
    /// A hub whose streams send a keep-alive comment every `keep_alive` (15 s in production:
    /// proxies and NAT close idle connections).
    #[must_use]
    pub fn new(keep_alive: Duration) -> Self {
        Self { channels: Mutex::new(Channels::default()), keep_alive, closed: watch::Sender::new(false) }
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

    /// A stream of the pushes for `device`, until it is dropped or the hub is closed.
    #[must_use]
    pub fn subscribe(self: &Arc<Self>, device: &DeviceId) -> Subscription {
        let mut channels = self.lock();
        let receiver = if channels.closed {
            // Closed: a stream that ends at once.
            broadcast::channel(1).1
        } else {
            channels
                .by_device
                .entry(device.clone())
                .or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0)
                .subscribe()
        };
        Subscription { hub: Arc::clone(self), device: device.clone(), stream: Some(BroadcastStream::new(receiver)) }
    }

    /// Sends `push` to every stream `device` holds. Returns how many there are (0: not
    /// connected).
    pub fn send(&self, device: &DeviceId, push: PushEvent) -> usize {
        self.lock().by_device.get(device).and_then(|sender| sender.send(push).ok()).unwrap_or(0)
    }

    /// How many streams `device` holds.
    #[must_use]
    pub fn connected(&self, device: &DeviceId) -> usize {
        self.lock().by_device.get(device).map_or(0, broadcast::Sender::receiver_count)
    }

    /// Ends every stream and refuses new ones (shutdown: open streams would otherwise keep
    /// their connections, and the server, alive).
    pub fn close(&self) {
        let mut channels = self.lock();
        channels.closed = true;
        channels.by_device.clear();
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
    stream: Option<BroadcastStream<PushEvent>>,
}

impl Stream for Subscription {
    type Item = PushEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<PushEvent>> {
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
        if channels.by_device.get(&self.device).is_some_and(|s| s.receiver_count() == 0) {
            channels.by_device.remove(&self.device);
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
        let hub = Arc::new(PushHub::new(Duration::from_secs(15)));
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
