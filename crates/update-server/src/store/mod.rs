//! Storage behind one trait, so the handlers never see SQL.
//!
//! [`Store`] is object-safe (`Arc<dyn Store>` in [`AppState`](crate::AppState)) through
//! `async-trait`. Every method is one transaction and takes the time from its caller, so a
//! store holds no clock. [`SqliteStore`] is the default; [`PgStore`] lets several servers
//! share one PostgreSQL database behind a load balancer.
//!
//! # Two backends, one behaviour
//! Each store has its own migrations (`migrations/` for SQLite, `migrations-postgres/` for
//! PostgreSQL: `TIMESTAMPTZ`, `JSONB`, `BOOLEAN`, identity columns); everything else is
//! written once:
//! - `logic`: the steps of every [`Store`] method (one implementation for every backend),
//!   how rows become records, and the decisions fed to [`crate::rollout`] (how a deployment
//!   advances, what an event counts as, how certificate tags merge, how the audit chain
//!   grows, which controls a deployment allows);
//! - `statements`: the SQL, with the four things the dialects differ in passed in (how a
//!   time is bound, the JSON casts, the row lock);
//! - `sqlite`, `postgres`: opening the database, beginning a transaction (SQLite's
//!   `BEGIN IMMEDIATE`; PostgreSQL's snapshot reads), how a flag and a time are stored, and
//!   PostgreSQL's audit lock and push notification.
//!
//! The store test suite (`tests/store`) runs every case against both. What servers do not
//! share is the push hub (a device's stream is held by one server): [`PgStore`] sends each
//! check-now request with `NOTIFY` in the transaction that stores it, and
//! [`PgStore::forward_pushes`] hands the ones from other servers to the local hub. The
//! stored flag still reaches the device at its next check-in, whichever server it lands on.

mod logic;
mod postgres;
mod postgres_rollouts;
mod sqlite;
mod sqlite_rollouts;
mod statements;

use async_trait::async_trait;
use serde::Serialize;
use time::OffsetDateTime;

pub use self::postgres::{PUSH_CHANNEL, PgStore, redact_url};
pub use self::sqlite::SqliteStore;
use crate::audit::{Actor, AuditEntry};
use crate::rollout::WaveCounts;
use update_protocol::rollout::{DeploymentState, NewDeployment, NewRelease, Wave};
use update_protocol::{Assignment, CheckedEvent, DeviceId, EventKind, Report, Tag};

/// Why the store failed. Handlers log it and answer 500; clients never see it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database cannot be opened.
    #[error("cannot open the database {url}: {source}")]
    Open {
        /// The database URL as given.
        url: String,
        /// The driver's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The schema cannot be brought up to date.
    #[error("cannot migrate the database {url}: {source}")]
    Migrate {
        /// The database URL as given.
        url: String,
        /// The driver's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A query failed.
    #[error("database: cannot {op}: {source}")]
    Query {
        /// What was being done.
        op: &'static str,
        /// The driver's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The database holds something this server did not write.
    #[error("database: {0}")]
    Corrupt(String),
    /// What the request names does not exist (a release, a deployment). Answered 404.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with what is stored. Answered 409.
    #[error("{0}")]
    Conflict(String),
}

/// What a check-in returns to the device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckInOutcome {
    /// An operator asked for a check (the flag is now cleared).
    pub check_now: bool,
    /// The device's assignment, if a running or paused deployment has reached its wave.
    pub assignment: Option<Assignment>,
}

/// A registered release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ReleaseRecord {
    /// Its id.
    pub id: i64,
    /// The repository target.
    pub target: String,
    /// Its version.
    pub version: String,
    /// When it was registered.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// By which token.
    pub created_by: String,
}

/// One wave of a deployment, with its counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct WaveView {
    /// The plan's entry.
    pub plan: Wave,
    /// Devices in the wave.
    pub devices: u32,
    /// Devices told to install.
    pub assigned: u32,
    /// Devices that reported a step of the update after being told.
    pub attempted: u32,
    /// Devices that reported `failed` or `rolled-back`.
    pub failed: u32,
    /// Devices that reported `committed` and no failure.
    pub succeeded: u32,
}

impl WaveView {
    /// The counts alone.
    #[must_use]
    pub fn counts(&self) -> WaveCounts {
        WaveCounts {
            devices: self.devices,
            assigned: self.assigned,
            attempted: self.attempted,
            failed: self.failed,
            succeeded: self.succeeded,
        }
    }
}

/// A deployment and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct DeploymentRecord {
    /// Its id.
    pub id: i64,
    /// The release.
    pub release: ReleaseRecord,
    /// The device group (its members when the deployment was created).
    pub tag: Tag,
    /// Running, paused or aborted.
    pub state: DeploymentState,
    /// Why it is paused (an operator's name, or the failure rate that crossed the threshold).
    pub pause_reason: Option<String>,
    /// The open wave (0-based).
    pub current_wave: u32,
    /// When it opened.
    #[serde(with = "time::serde::rfc3339")]
    pub wave_opened: OffsetDateTime,
    /// The least time between two waves.
    pub min_wave_interval_secs: u64,
    /// The failure threshold.
    pub max_failure_percent: u8,
    /// Devices install only inside this window.
    pub maintenance_window: Option<update_protocol::window::MaintenanceWindow>,
    /// Aborting it tells the devices it told to install to roll back.
    pub rollback_on_abort: bool,
    /// Every wave with its counts.
    pub waves: Vec<WaveView>,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// By which token.
    pub created_by: String,
}

/// What an operator does to a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Running → paused.
    Pause,
    /// Paused → running: the open wave's failures so far are accepted, and the interval to the
    /// next wave starts again.
    Resume,
    /// Running or paused → aborted, for good.
    Abort,
}

/// The devices that run one version: how many, how many checked in lately, how many are
/// failing (their last event is `failed` or `rolled-back`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionSummary {
    /// The version they report (`None`: not reported).
    pub version: Option<String>,
    /// Devices.
    pub devices: u64,
    /// Of them, those that checked in since the time asked about.
    pub online: u64,
    /// Of them, those whose last event is a failure.
    pub failing: u64,
}

/// A device in the inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct DeviceRecord {
    /// Its id.
    pub id: DeviceId,
    /// What it last reported (all empty before its first check-in).
    #[serde(flatten)]
    pub report: Report,
    /// When it first contacted the server.
    #[serde(with = "time::serde::rfc3339")]
    pub first_seen: OffsetDateTime,
    /// Its last check-in.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_checkin: Option<OffsetDateTime>,
    /// An operator asked it to check, and it has not checked in since.
    pub check_now_pending: bool,
    /// Its newest event.
    pub last_event: Option<StoredEvent>,
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct StoredEvent {
    /// Arrival order across the whole server; increasing, with gaps.
    pub seq: i64,
    /// What happened.
    pub kind: EventKind,
    /// The version concerned.
    pub version: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// When, by the device's clock.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// When the server stored it.
    #[serde(with = "time::serde::rfc3339")]
    pub received: OffsetDateTime,
}

/// How long events are kept (`serve --events-per-device`, `--event-max-age-days`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EventRetention {
    /// Events received longer ago than this are deleted.
    pub max_age: Option<time::Duration>,
    /// Each device keeps at most this many events, the newest.
    pub per_device: Option<u32>,
}

/// What [`Store::prune_events`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    /// Events deleted.
    pub deleted: u64,
    /// The newest event's `seq`: the `since_seq` of the next prune.
    pub newest_seq: i64,
}

/// How a device's part in a deployment ended (its row's outcome).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionOutcome {
    /// It reported `committed` and no failure.
    Succeeded,
    /// It reported `failed` or `rolled-back`.
    Failed,
}

/// The most attributes a device holds ([`Store::set_attributes`]).
pub const MAX_ATTRIBUTES: usize = 100;

/// How a device's reported attributes change the stored ones (hawkBit's configData `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeMode {
    /// Set these, keep the others (the default).
    Merge,
    /// These and no others.
    Replace,
    /// Delete these names.
    Remove,
}

/// How a device answered the cancel of an aborted deployment it had been told to install
/// (a hawkBit `cancelAction`, [`crate::ddi`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelAnswer {
    /// It stopped: its action is closed.
    Canceled,
    /// It goes on: its action stays open until it reports the end.
    Rejected,
}

impl CancelAnswer {
    /// The stored word.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            CancelAnswer::Canceled => "canceled",
            CancelAnswer::Rejected => "rejected",
        }
    }
}

/// A device's part in one deployment (a hawkBit DDI action, [`crate::ddi`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceAction {
    /// It was told to install.
    pub told: bool,
    /// How it ended, if it has.
    pub outcome: Option<ActionOutcome>,
    /// Its answer to the deployment's cancel, if it gave one.
    pub cancel_answer: Option<CancelAnswer>,
    /// The deployment's state.
    pub state: DeploymentState,
}

/// Where devices and events live.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Whether the store answers (the health check). The default says yes.
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Records a check-in: creates the device on first contact, replaces what it reported,
    /// sets its certificate's tags (`certificate_tags`, replacing those from before), takes its
    /// pending check-now request, moves its deployment on ([`crate::rollout::next_step`]) and
    /// returns its assignment (marking it told to install).
    async fn check_in(
        &self,
        device: &DeviceId,
        report: &Report,
        certificate_tags: &[Tag],
        now: OffsetDateTime,
    ) -> Result<CheckInOutcome, StoreError>;

    /// Appends an event (creating the device on first contact). Returns its sequence number.
    /// An event from a device told to install counts for its deployment's wave (any update
    /// step is an attempt; `failed` and `rolled-back` a failure, `committed` a success), and
    /// the deployment is moved on at once (so a failure pauses it before its next wave).
    async fn append_event(
        &self,
        device: &DeviceId,
        event: &CheckedEvent,
        now: OffsetDateTime,
    ) -> Result<i64, StoreError>;

    /// Every device, by id.
    async fn devices(&self) -> Result<Vec<DeviceRecord>, StoreError>;

    /// Up to `limit` devices with ids after `after` (from the first without), by id: a page of
    /// [`devices`](Self::devices).
    async fn devices_page(&self, after: Option<&DeviceId>, limit: u32) -> Result<Vec<DeviceRecord>, StoreError>;

    /// The fleet by version (ordered by version, unreported first), counted in the database:
    /// online means checked in at or after `online_since`.
    async fn version_summary(&self, online_since: OffsetDateTime) -> Result<Vec<VersionSummary>, StoreError>;

    /// Up to `limit` releases with ids above `after`, by id.
    async fn releases_page(&self, after: i64, limit: u32) -> Result<Vec<ReleaseRecord>, StoreError>;

    /// Up to `limit` of a tag's devices with ids after `after`, by id.
    async fn tag_members_page(
        &self,
        tag: &Tag,
        after: Option<&DeviceId>,
        limit: u32,
    ) -> Result<Vec<(DeviceId, String)>, StoreError>;

    /// Up to `limit` deployments with ids below `before` (from the newest without), newest
    /// first.
    async fn deployments_page(&self, before: Option<i64>, limit: u32) -> Result<Vec<DeploymentRecord>, StoreError>;

    /// One device.
    async fn device(&self, device: &DeviceId) -> Result<Option<DeviceRecord>, StoreError>;

    /// A device's events with `seq > after`, oldest first, at most `limit`; `None` for an
    /// unknown device.
    async fn events(&self, device: &DeviceId, after: i64, limit: u32) -> Result<Option<Vec<StoredEvent>>, StoreError>;

    /// Applies `retention`: deletes every event older than its age, and the oldest events of
    /// each device that received events with `seq > since_seq` beyond its count (pass the
    /// last [`Pruned::newest_seq`], or 0 to check every device).
    async fn prune_events(
        &self,
        retention: &EventRetention,
        since_seq: i64,
        now: OffsetDateTime,
    ) -> Result<Pruned, StoreError>;

    /// Sets the device's check-now flag (returned and cleared by its next check-in), with an
    /// audit row. Returns `false` for an unknown device.
    async fn request_check(&self, device: &DeviceId, actor: &Actor, now: OffsetDateTime) -> Result<bool, StoreError>;

    // Rollouts (issue 14). Every method that changes something appends its operator audit
    // row in the same transaction.

    /// Registers a release. [`StoreError::Conflict`] when the target is registered already.
    async fn create_release(
        &self,
        release: &NewRelease,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<ReleaseRecord, StoreError>;

    /// Every release, by id.
    async fn releases(&self) -> Result<Vec<ReleaseRecord>, StoreError>;

    /// One release.
    async fn release(&self, id: i64) -> Result<Option<ReleaseRecord>, StoreError>;

    /// Puts devices into a tag (operator assignment; a tag the device has from its certificate
    /// becomes the operator's). Returns how many were not tagged so by an operator yet.
    async fn tag_devices(
        &self,
        tag: &Tag,
        devices: &[DeviceId],
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<usize, StoreError>;

    /// Takes a device out of a tag. Returns whether it was in it.
    async fn untag_device(
        &self,
        tag: &Tag,
        device: &DeviceId,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// A tag's devices, by id, with where the tag came from (`operator` or `certificate`).
    async fn tag_members(&self, tag: &Tag) -> Result<Vec<(DeviceId, String)>, StoreError>;

    /// Creates a deployment of a release to the tag's current devices, cut into waves
    /// ([`crate::rollout::rank`]); the first wave opens at `now`. [`StoreError::NotFound`] for
    /// an unknown release, [`StoreError::Conflict`] for a tag without devices.
    async fn create_deployment(
        &self,
        deployment: &NewDeployment,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<DeploymentRecord, StoreError>;

    /// Every deployment, newest first.
    async fn deployments(&self) -> Result<Vec<DeploymentRecord>, StoreError>;

    /// One deployment.
    async fn deployment(&self, id: i64) -> Result<Option<DeploymentRecord>, StoreError>;

    /// Pauses, resumes or aborts a deployment. [`StoreError::NotFound`] or
    /// [`StoreError::Conflict`] (e.g. resuming a running one).
    async fn control_deployment(
        &self,
        id: i64,
        control: Control,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<DeploymentRecord, StoreError>;

    /// The operator audit log rows with `seq > after`, oldest first, at most `limit`.
    async fn audit_log(&self, after: i64, limit: u32) -> Result<Vec<AuditEntry>, StoreError>;

    // hawkBit DDI (issue 14 item 5, [`crate::ddi`]).

    /// The device's part in a deployment, whatever the deployment's state; `None` when the
    /// deployment does not hold the device (or does not exist).
    async fn device_action(&self, deployment: i64, device: &DeviceId) -> Result<Option<DeviceAction>, StoreError>;

    /// The device's attributes (hawkBit configData), `(name, value)` by name.
    async fn attributes(&self, device: &DeviceId) -> Result<Vec<(String, String)>, StoreError>;

    /// Changes the device's attributes by `mode`, creating the device on first contact: how
    /// many it holds then. [`StoreError::Conflict`] (nothing changed) when that would be over
    /// [`MAX_ATTRIBUTES`].
    async fn set_attributes(
        &self,
        device: &DeviceId,
        mode: AttributeMode,
        data: &[(String, String)],
        now: OffsetDateTime,
    ) -> Result<usize, StoreError>;

    /// The deployment whose cancel the device has to answer: the newest aborted one that told
    /// it to install, that it has not ended and whose cancel it has not answered.
    async fn pending_cancel(&self, device: &DeviceId) -> Result<Option<i64>, StoreError>;

    /// Stores the device's answer to the cancel of `deployment` with its `event`, in one
    /// transaction: the event's `seq`, or `None` (nothing stored) when that cancel is not
    /// pending for the device. `answer` `None`: a step before the answer (the event alone).
    async fn answer_cancel(
        &self,
        deployment: i64,
        device: &DeviceId,
        answer: Option<CancelAnswer>,
        event: &CheckedEvent,
        now: OffsetDateTime,
    ) -> Result<Option<i64>, StoreError>;

    /// Stores the SHA-256 (`digest`, 64 lowercase hex digits) of a device's DDI target token,
    /// replacing the one before, with an audit row (never the digest).
    /// [`StoreError::Conflict`] for a digest of another form.
    async fn set_target_token(
        &self,
        device: &DeviceId,
        digest: &str,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// The SHA-256 of the device's DDI target token (lowercase hex), if it has one.
    async fn target_token(&self, device: &DeviceId) -> Result<Option<String>, StoreError>;
}
