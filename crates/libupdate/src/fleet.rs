//! Reporting to the fleet server (`server = "https://…"` in the config, an `update-server`):
//! check-ins, the steps of each update, and the push channel that asks for a check now.
//!
//! Reports must not be lost when the network is down, the server restarts or the device loses
//! power, and must never make an update fail. So every event is first appended (and fsynced)
//! to the **outbox**, `/var/lib/update/outbox.jsonl`, then the outbox is sent in order, oldest
//! first; an event leaves it only once the server accepted it (2xx) or refused it for good
//! (4xx: it would be refused again). Delivery is at least once: a power cut between the
//! server's answer and the outbox rewrite sends that event again. The outbox keeps the newest
//! [`OUTBOX_LIMIT`] events.
//!
//! Identity: with `[tls] client-cert`/`client-key` configured, the device presents its
//! certificate (mutual TLS) and the server takes the device id from it; without one, the
//! device names itself with `device-id` (its `/etc/machine-id`), which only a server started
//! with `--insecure-device-ids` accepts.
//!
//! What goes over the wire (event kinds, events, the check-in and its answer, push event
//! names, routes) is the `update-protocol` crate, shared with the server; this module only
//! sends it. An outbox line with an event kind this build does not know (written by newer
//! software before a rollback) is kept and sent like any other.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use update_core::config::{Config, Secure};
use update_core::driver::{SlotState, Status};
use update_core::{Error, Paths, Result, atomic};
use update_fetch::{EventStream, FetchOptions, Fetcher, TlsSettings};
pub use update_protocol::push::PushEvent;
pub use update_protocol::{
    Assignment, AssignmentAction, CheckInAnswer as CheckinAnswer, Event as FleetEvent, EventKind,
};
use update_protocol::{Identified, Report, SlotReport, routes};

/// The most events the outbox keeps (the oldest are dropped first).
pub const OUTBOX_LIMIT: usize = 1000;

/// The largest answer read from the server's device API.
const MAX_ANSWER: u64 = 64 * 1024;

/// How long a push stream is used before it is reopened (bounds how long a silently dead
/// connection goes unnoticed; the server sends a keep-alive every 15 s).
pub const PUSH_STREAM_LIFETIME: Duration = Duration::from_secs(300);

/// The connection to the fleet server.
#[derive(Debug, Clone)]
pub struct Fleet {
    base: String,
    tls: TlsSettings,
    mutual: bool,
    device_id: Option<String>,
    outbox: PathBuf,
    lock: PathBuf,
}

impl Fleet {
    /// The fleet connection the config asks for, or `None` without `server`.
    #[must_use]
    pub fn from_config(paths: &Paths, config: &Config) -> Option<Self> {
        let server = config.server.as_ref()?;
        let tls = &config.tls;
        let tls = TlsSettings {
            server_ca: tls.server_ca.as_ref().map(|p| paths.resolve(p)),
            client_cert: tls.client_cert.as_ref().map(|p| paths.resolve(p)),
            client_key: tls.client_key.as_ref().map(|p| paths.resolve(p)),
        };
        let mutual = tls.client_cert.is_some() && tls.client_key.is_some();
        let device_id = if mutual {
            None
        } else {
            std::fs::read_to_string(paths.resolve("/etc/machine-id"))
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        };
        Some(Self {
            base: server.as_str().trim_end_matches('/').to_owned(),
            tls,
            mutual,
            device_id,
            outbox: paths.state_dir().join("outbox.jsonl"),
            lock: paths.state_dir().join("outbox.lock"),
        })
    }

    /// The server's base URL.
    #[must_use]
    pub fn base(&self) -> &str {
        &self.base
    }

    fn fetcher(&self, response_timeout: Duration) -> Result<Fetcher> {
        Fetcher::new(FetchOptions {
            tls: self.tls.clone(),
            secure: if self.mutual { Secure::MutualTls } else { Secure::ServerAuth },
            connect_timeout: Duration::from_secs(10),
            response_timeout,
            attempts: 1,
            ..FetchOptions::default()
        })
    }

    fn post(&self, fetcher: &Fetcher, path: &str, body: impl Serialize) -> Result<(u16, Vec<u8>)> {
        let url = format!("{}{path}", self.base);
        let request = Identified { device_id: self.device_id.clone(), body };
        let json =
            serde_json::to_value(&request).map_err(|e| Error::Source { url: url.clone(), reason: e.to_string() })?;
        fetcher.post_json(&url, &json, MAX_ANSWER)
    }

    /// Appends an event to the outbox (fsynced), then tries to send the outbox.
    ///
    /// # Errors
    /// Only when the event cannot be stored; a failed send leaves it queued and is not an error.
    pub fn report(&self, event: FleetEvent) -> Result<()> {
        {
            let _lock = atomic::Lock::acquire(&self.lock)?;
            let mut queued = self.queued()?;
            queued.push(event);
            let start = queued.len().saturating_sub(OUTBOX_LIMIT);
            self.store(&queued[start..])?;
        }
        let _ = self.flush();
        Ok(())
    }

    /// The events not yet delivered, oldest first. Unreadable lines are dropped; an event of
    /// a kind this build does not know is kept.
    ///
    /// # Errors
    /// I/O errors reading the outbox.
    pub fn queued(&self) -> Result<Vec<FleetEvent>> {
        match std::fs::read_to_string(&self.outbox) {
            Ok(text) => Ok(text.lines().filter_map(|l| serde_json::from_slice(l.as_bytes()).ok()).collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(Error::io("read", &self.outbox, e)),
        }
    }

    fn store(&self, events: &[FleetEvent]) -> Result<()> {
        let mut text = String::new();
        for e in events {
            text.push_str(&serde_json::to_string(e).unwrap_or_default());
            text.push('\n');
        }
        atomic::write_atomic(&self.outbox, text.as_bytes(), 0o600)
    }

    /// Sends the outbox in order. Returns how many events were delivered.
    ///
    /// # Errors
    /// [`Error::Source`] when the server cannot be reached or answers 5xx (the rest stays
    /// queued); I/O errors on the outbox.
    pub fn flush(&self) -> Result<usize> {
        let _lock = atomic::Lock::acquire(&self.lock)?;
        let queued = self.queued()?;
        if queued.is_empty() {
            return Ok(0);
        }
        let fetcher = self.fetcher(Duration::from_secs(15))?;
        let mut sent = 0;
        let mut result = Ok(());
        for event in &queued {
            match self.post(&fetcher, routes::EVENTS, event) {
                Ok((s, _)) if (200..300).contains(&s) => sent += 1,
                // Refused for good (malformed, forbidden): sending it again cannot help.
                Ok((s, _)) if (400..500).contains(&s) && s != 401 && s != 408 && s != 429 => sent += 1,
                Ok((s, answer)) => {
                    result = Err(Error::Source {
                        url: self.base.clone(),
                        reason: format!("event refused with HTTP {s}: {}", String::from_utf8_lossy(&answer).trim()),
                    });
                    break;
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if sent > 0 {
            self.store(&queued[sent..])?;
        }
        result.map(|()| sent)
    }

    /// Checks in: reports what the device runs (the fields of `update status --json`) and
    /// learns whether an operator asked for a check.
    ///
    /// # Errors
    /// [`Error::Source`] when the server cannot be reached or refuses the check-in.
    pub fn checkin(&self, status: &Status) -> Result<CheckinAnswer> {
        let fetcher = self.fetcher(Duration::from_secs(15))?;
        let (s, answer) = self.post(&fetcher, routes::CHECKIN, report(status))?;
        if s != 200 {
            return Err(Error::Source {
                url: self.base.clone(),
                reason: format!("check-in refused with HTTP {s}: {}", String::from_utf8_lossy(&answer).trim()),
            });
        }
        serde_json::from_slice(&answer).map_err(|e| Error::Source {
            url: self.base.clone(),
            reason: format!("the check-in answer is not the expected JSON: {e}"),
        })
    }

    /// Opens the push channel (`GET /api/v1/device/push`, server-sent events).
    ///
    /// # Errors
    /// [`Error::Source`] when the server cannot be reached or refuses the stream.
    pub fn push_stream(&self) -> Result<EventStream> {
        let mut url = format!("{}{}", self.base, routes::PUSH);
        if let Some(id) = &self.device_id {
            url.push_str(&format!("?{}=", routes::PUSH_DEVICE_ID));
            url.push_str(&id.chars().filter(char::is_ascii_alphanumeric).collect::<String>());
        }
        self.fetcher(Duration::from_secs(30))?.event_stream(&url, PUSH_STREAM_LIFETIME)
    }
}

/// What `status` looks like on the wire.
#[must_use]
pub fn report(status: &Status) -> Report {
    Report {
        compatible: status.compatible.clone(),
        version: status.version.as_ref().map(ToString::to_string),
        booted: status.booted.clone(),
        primary: status.primary.clone(),
        slots: status
            .slots
            .iter()
            .map(|s| SlotReport {
                name: s.name.clone(),
                state: wire_state(&s.state),
                version: s.version.as_ref().map(ToString::to_string),
            })
            .collect(),
    }
}

/// A slot state on the wire (one arm per state: a new one must be given its wire name here).
fn wire_state(state: &SlotState) -> update_protocol::SlotState {
    match state {
        SlotState::Good => update_protocol::SlotState::Good,
        SlotState::Trying => update_protocol::SlotState::Trying,
        SlotState::Bad => update_protocol::SlotState::Bad,
        SlotState::Unknown => update_protocol::SlotState::Unknown,
    }
}

/// An event stamped now.
#[must_use]
pub fn event(kind: EventKind, version: Option<String>, reason: Option<String>) -> FleetEvent {
    FleetEvent { kind, version, reason, time: update_core::time_util::now_rfc3339(), deployment: None }
}
