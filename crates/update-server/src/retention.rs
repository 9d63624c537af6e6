//! Event retention: a task that applies an [`EventRetention`] every interval, until the push
//! hub closes (at shutdown). Per-device rate limits ([`crate::limits`]) bound how far a
//! device can run past its count between two runs.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::push::PushHub;
use crate::store::{EventRetention, Store};

/// Starts pruning every `interval` (the first run at once). Does nothing when `retention`
/// keeps everything.
#[must_use]
pub fn spawn(
    store: Arc<dyn Store>,
    retention: EventRetention,
    interval: Duration,
    clock: Clock,
    hub: Arc<PushHub>,
) -> Option<tokio::task::JoinHandle<()>> {
    if retention == EventRetention::default() {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut since = 0;
        loop {
            match store.prune_events(&retention, since, clock.now()).await {
                Ok(p) => {
                    since = p.newest_seq;
                    if p.deleted > 0 {
                        tracing::info!(deleted = p.deleted, "events pruned");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot prune events"),
            }
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = hub.closed() => return,
            }
        }
    }))
}
