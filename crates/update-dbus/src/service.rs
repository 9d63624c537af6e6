//! The `org.libupdate.Update1` interface at `/org/libupdate/Update1` (docs/reference/dbus.md).
//!
//! Properties are read from `update status` each time they are asked for; after every operation
//! the service reads them again and emits `PropertiesChanged` for those that changed (and
//! `StateChanged` when `State` did). Changes made outside the service (the CLI, a reboot) are
//! seen by the next read, and signalled after the next operation.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use libupdate::Updater;
use update_core::driver::{SlotChange, SlotState};
use update_core::{Error, Paths, atomic};
use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::zvariant::Value;

use crate::auth::{self, Action};
use crate::error::UpdateError;
use crate::progress::SignalProgress;

/// The well-known bus name.
pub const BUS_NAME: &str = "org.libupdate.Update1";
/// The object path.
pub const OBJECT_PATH: &str = "/org/libupdate/Update1";
/// The interface name.
const INTERFACE: &str = "org.libupdate.Update1";

/// The service object.
pub struct Update1 {
    shared: Arc<Shared>,
}

struct Shared {
    root: PathBuf,
    /// An install started over D-Bus runs (the lock file guards against every other install).
    installing: AtomicBool,
    /// The properties as last signalled.
    last: Mutex<Option<Snapshot>>,
}

/// The properties, as read from `update status`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Snapshot {
    driver: String,
    booted_slot: String,
    versions: BTreeMap<String, String>,
    state: String,
    pending: BTreeMap<String, String>,
}

impl Snapshot {
    fn read(root: &Path, installing: bool) -> Self {
        let report = open(root).and_then(|u| u.status_report());
        let Ok(r) = report else {
            // No driver, or a config that cannot be read: the methods report why.
            let state = if installing { "installing" } else { "unavailable" };
            return Snapshot { state: state.into(), ..Snapshot::default() };
        };
        let s = &r.status;
        let state = if installing {
            "installing"
        } else if r.pending.is_some() {
            "pending-reboot"
        } else if s.fallback.is_some() {
            "fell-back"
        } else if s.slots.iter().any(|x| x.booted && x.state == SlotState::Trying) {
            "trying"
        } else {
            "idle"
        };
        Snapshot {
            driver: s.driver.clone(),
            booted_slot: s.booted.clone().unwrap_or_default(),
            versions: s
                .slots
                .iter()
                .map(|x| (x.name.clone(), x.version.as_ref().map(ToString::to_string).unwrap_or_default()))
                .collect(),
            state: state.into(),
            pending: r
                .pending
                .map(|p| BTreeMap::from([("slot".to_owned(), p.slot), ("version".to_owned(), p.version)]))
                .unwrap_or_default(),
        }
    }

    /// The properties that differ from `old` (all of them without one), by D-Bus name.
    fn changes(&self, old: Option<&Snapshot>) -> HashMap<&'static str, Value<'static>> {
        let map = |m: &BTreeMap<String, String>| Value::from(m.clone().into_iter().collect::<HashMap<_, _>>());
        let mut out = HashMap::new();
        if old.is_none_or(|o| o.driver != self.driver) {
            out.insert("Driver", Value::from(self.driver.clone()));
        }
        if old.is_none_or(|o| o.booted_slot != self.booted_slot) {
            out.insert("BootedSlot", Value::from(self.booted_slot.clone()));
        }
        if old.is_none_or(|o| o.versions != self.versions) {
            out.insert("Versions", map(&self.versions));
        }
        if old.is_none_or(|o| o.state != self.state) {
            out.insert("State", Value::from(self.state.clone()));
        }
        if old.is_none_or(|o| o.pending != self.pending) {
            out.insert("PendingUpdate", map(&self.pending));
        }
        out
    }
}

fn open(root: &Path) -> update_core::Result<Updater> {
    Updater::open(Paths::new(root), update_cli::drivers())
}

/// Runs `f` on a blocking thread (every library call reads files, and some run for minutes).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, UpdateError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| UpdateError::Failure(format!("the operation stopped: {e}")))
}

/// Reads the properties again; signals what changed since the last time.
async fn refresh(shared: &Shared, emitter: &SignalEmitter<'_>) {
    let (root, installing) = (shared.root.clone(), shared.installing.load(Ordering::SeqCst));
    let Ok(new) = blocking(move || Snapshot::read(&root, installing)).await else { return };
    let old = shared.last.lock().unwrap_or_else(PoisonError::into_inner).replace(new.clone());
    let changed = new.changes(old.as_ref());
    if changed.is_empty() {
        return;
    }
    if let Ok(name) = zbus::names::InterfaceName::try_from(INTERFACE) {
        let _ = zbus::fdo::Properties::properties_changed(emitter, name, changed, Cow::Borrowed(&[])).await;
    }
    if old.is_none_or(|o| o.state != new.state) {
        let _ = Update1::state_changed_signal(emitter, &new.state).await;
    }
}

/// The install started by `Install`: progress forwarded as signals, then the properties, then
/// `Finished`.
async fn run_install(shared: Arc<Shared>, emitter: SignalEmitter<'static>, reboot: bool) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<crate::progress::Step>();
    let progress_emitter = emitter.clone();
    let forward = tokio::spawn(async move {
        while let Some((percent, phase)) = rx.recv().await {
            let _ = Update1::progress(&progress_emitter, percent, &phase).await;
        }
    });
    let root = shared.root.clone();
    let result = blocking(move || -> update_core::Result<String> {
        let mut updater = open(&root)?;
        updater.set_progress(Box::new(SignalProgress::new(tx)));
        let report = updater.install_now(!reboot)?;
        Ok(match &report.installed {
            Some(o) if report.rebooted => format!("{}; rebooting", o.summary()),
            Some(o) => o.summary(),
            None => {
                format!("no update to install (installed {})", report.check.installed.as_deref().unwrap_or("unknown"))
            }
        })
    })
    .await
    .and_then(|r| r.map_err(UpdateError::from));
    // The sender went with the updater: every Progress signal is out before Finished.
    let _ = forward.await;
    shared.installing.store(false, Ordering::SeqCst);
    refresh(&shared, &emitter).await;
    let (success, message, error) = match result {
        Ok(m) => (true, m, String::new()),
        Err(e) => (false, e.message(), e.dbus_name()),
    };
    let _ = Update1::finished(&emitter, success, &message, &error).await;
}

impl Update1 {
    /// The service for the device layout under `root`.
    pub fn new(root: PathBuf) -> Self {
        Self { shared: Arc::new(Shared { root, installing: AtomicBool::new(false), last: Mutex::new(None) }) }
    }

    async fn snapshot(&self) -> Snapshot {
        let (root, installing) = (self.shared.root.clone(), self.shared.installing.load(Ordering::SeqCst));
        blocking(move || Snapshot::read(&root, installing)).await.unwrap_or_default()
    }

    fn refuse_while_installing(&self) -> Result<(), UpdateError> {
        if self.shared.installing.load(Ordering::SeqCst) {
            return Err(UpdateError::Busy("an install started over D-Bus is running".into()));
        }
        Ok(())
    }

    /// `Cancel`, `MarkGood`, `Rollback`: authorized, run, then the properties signalled.
    async fn slot_operation(
        &self,
        conn: &zbus::Connection,
        header: &Header<'_>,
        emitter: &SignalEmitter<'_>,
        op: fn(&Updater) -> update_core::Result<SlotChange>,
    ) -> Result<String, UpdateError> {
        auth::authorize(conn, header, Action::ManageSlots).await?;
        self.refuse_while_installing()?;
        let root = self.shared.root.clone();
        let result = blocking(move || open(&root).and_then(|u| op(&u)).map(|c| c.message)).await?;
        refresh(&self.shared, emitter).await;
        Ok(result?)
    }
}

/// `GetConfig`: one key of the stored config (`schedule`, `tls.client-cert`), or every key as
/// a JSON object for the empty key. Strings as they are, unset values as `none`, numbers and
/// booleans as JSON.
fn config_value(root: &Path, key: &str) -> update_core::Result<String> {
    let stored = open(root)?.stored_config()?;
    let all = serde_json::to_value(&stored).map_err(|e| Error::Other(format!("cannot show the config: {e}")))?;
    if key.is_empty() {
        return Ok(all.to_string());
    }
    let mut v = &all;
    for part in key.split('.') {
        v = v.get(part).ok_or_else(|| Error::Usage(format!("`{key}` is not a config key")))?;
    }
    Ok(match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "none".into(),
        other => other.to_string(),
    })
}

#[zbus::interface(name = "org.libupdate.Update1")]
impl Update1 {
    /// Check: asks the update source for an update (as `update`); returns whether one is
    /// available, its version ("" when none) and the check document (libupdate/check/1 JSON).
    #[zbus(out_args("available", "version", "document"))]
    async fn check(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(bool, String, String), UpdateError> {
        auth::authorize(conn, &header, Action::Check).await?;
        let root = self.shared.root.clone();
        let found = blocking(move || -> update_core::Result<(Option<String>, String)> {
            let report = open(&root)?.check()?;
            let doc = update_cli::json::document(update_cli::json::Doc::Check, &report)?;
            Ok((report.available.map(|c| c.info.version.to_string()), doc.to_string()))
        })
        .await??;
        refresh(&self.shared, &emitter).await;
        Ok((found.0.is_some(), found.0.unwrap_or_default(), found.1))
    }

    /// Install: installs in the background, as the command `update` with its now option (and
    /// no reboot when `reboot` is false), and returns; `Progress` signals follow, then
    /// `Finished`. Busy when any install runs. (No double hyphen here: it ends up in an XML
    /// comment of the introspection.)
    async fn install(
        &self,
        reboot: bool,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(), UpdateError> {
        auth::authorize(conn, &header, Action::Install).await?;
        if self.shared.installing.swap(true, Ordering::SeqCst) {
            return Err(UpdateError::Busy("an install started over D-Bus is running".into()));
        }
        // The CLI's lock, tried now so that a running `update --now` is an error of this call
        // (the install itself takes the lock again, as the CLI does).
        let lock = Paths::new(&self.shared.root).lock_file();
        let free = blocking(move || atomic::Lock::acquire_within(&lock, Duration::ZERO).map(drop))
            .await
            .and_then(|r| r.map_err(UpdateError::from));
        if let Err(e) = free {
            self.shared.installing.store(false, Ordering::SeqCst);
            return Err(e);
        }
        refresh(&self.shared, &emitter).await;
        tokio::spawn(run_install(self.shared.clone(), emitter.to_owned(), reboot));
        Ok(())
    }

    /// Cancel: drops an installed update that waits for its reboot (`update cancel`).
    async fn cancel(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<String, UpdateError> {
        self.slot_operation(conn, &header, &emitter, Updater::cancel).await
    }

    /// MarkGood: commits the running slot (`update mark-good`).
    async fn mark_good(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<String, UpdateError> {
        self.slot_operation(conn, &header, &emitter, Updater::mark_good).await
    }

    /// Rollback: boots the other slot next (`update rollback`).
    async fn rollback(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<String, UpdateError> {
        self.slot_operation(conn, &header, &emitter, Updater::rollback).await
    }

    /// GetConfig: a stored config value; the empty key returns the whole config as JSON.
    async fn get_config(&self, key: String) -> Result<String, UpdateError> {
        let root = self.shared.root.clone();
        Ok(blocking(move || config_value(&root, &key)).await??)
    }

    /// SetConfig: `update config KEY VALUE` (`schedule` takes `daily 3`); returns `key = value`.
    async fn set_config(
        &self,
        key: String,
        value: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<String, UpdateError> {
        auth::authorize(conn, &header, Action::Configure).await?;
        let root = self.shared.root.clone();
        let line = blocking(move || -> update_core::Result<String> {
            let setting = update_cli::cmd::config::parse_setting(&key, &value)?;
            let mut updater = open(&root)?;
            updater.set(&setting)?;
            Ok(format!("{} = {}", setting.key(), setting.current(updater.config())))
        })
        .await??;
        refresh(&self.shared, &emitter).await;
        Ok(line)
    }

    /// Driver: the driver in use (`native`, `rauc`, …); "" when none is available.
    #[zbus(property)]
    async fn driver(&self) -> String {
        self.snapshot().await.driver
    }

    /// BootedSlot: the slot the running system booted from.
    #[zbus(property)]
    async fn booted_slot(&self) -> String {
        self.snapshot().await.booted_slot
    }

    /// Versions: the version in each slot ("" when unknown).
    #[zbus(property)]
    async fn versions(&self) -> HashMap<String, String> {
        self.snapshot().await.versions.into_iter().collect()
    }

    /// State: idle, installing, pending-reboot, trying, fell-back or unavailable.
    #[zbus(property)]
    async fn state(&self) -> String {
        self.snapshot().await.state
    }

    /// PendingUpdate: `slot` and `version` of an installed update that waits for its reboot;
    /// empty when there is none.
    #[zbus(property)]
    async fn pending_update(&self) -> HashMap<String, String> {
        self.snapshot().await.pending.into_iter().collect()
    }

    /// Progress: percent (0-100) of the install's current phase, and the phase.
    #[zbus(signal)]
    async fn progress(emitter: &SignalEmitter<'_>, percent: u32, phase: &str) -> zbus::Result<()>;

    /// Finished: the install's end; `error` is the D-Bus error name ("" on success).
    #[zbus(signal)]
    async fn finished(emitter: &SignalEmitter<'_>, success: bool, message: &str, error: &str) -> zbus::Result<()>;

    /// StateChanged: the new State.
    #[zbus(signal, name = "StateChanged")]
    async fn state_changed_signal(emitter: &SignalEmitter<'_>, state: &str) -> zbus::Result<()>;
}
