//! Drivers that drive the real update tools: rauc, swupdate, mender, ostree and swupd.
//!
//! Each module (and cargo feature) is one [`adapter::Adapter`] plus its [`Driver`]: the
//! generic [`adapter::Factory`] probes it, and the driver runs the tool's own binary with
//! update-core's process runner (never a shell), reads its machine-readable output, and maps
//! failures to [`update_core::Error`] kinds with the tool's messages in the text (word tables,
//! [`tool::FailureWords`]):
//!
//! | driver | tool | config it reads (re-rooted with `--root`) |
//! |---|---|---|
//! | [`rauc`] | `rauc` (its D-Bus service must run) | `/etc/rauc/system.conf` |
//! | [`swupdate`] | `swupdate -i FILE.swu` | `/etc/swupdate.cfg`, `/etc/hwrevision` |
//! | [`mender`] | `mender install/commit/rollback` (standalone) | `/etc/mender/mender.conf` |
//! | [`ostree`] | `ostree admin` in the sysroot | `/ostree/repo` |
//! | [`swupd`] | `swupd update/verify` | `/usr/share/defaults/swupd` |
//!
//! Probing never fails loudly: a tool that is not in `PATH`, or is installed but not configured
//! for this system, makes the factory decline (so `update` prints "Not implemented. Consider
//! installing …"); a configured tool that cannot be used (service down, broken config) is
//! `Broken` with the tool's own error.
//!
//! What each `update config` key means for each tool is in [`settings`] and docs/drivers.md;
//! keys a tool cannot honour are refused with "… is not supported by the `<driver>` driver".
//!
//! [`Driver`]: update_core::driver::Driver

pub mod adapter;
pub mod settings;
pub mod tool;

#[cfg(any(feature = "swupdate", feature = "mender", feature = "ostree"))]
pub mod bootenv;
#[cfg(feature = "mender")]
pub mod mender;
#[cfg(feature = "ostree")]
pub mod ostree;
#[cfg(feature = "rauc")]
pub mod rauc;
#[cfg(any(feature = "swupdate", feature = "mender"))]
pub mod slots;
#[cfg(feature = "swupd")]
pub mod swupd;
#[cfg(feature = "swupdate")]
pub mod swupdate;

use update_core::audit::{AuditAction, Outcome};
use update_core::driver::{Context, DriverFactory};

/// The factories compiled in, in libupdate's probing order (rauc, swupdate, mender, ostree, swupd).
#[must_use]
pub fn factories() -> Vec<&'static dyn DriverFactory> {
    vec![
        #[cfg(feature = "rauc")]
        &rauc::FACTORY,
        #[cfg(feature = "swupdate")]
        &swupdate::FACTORY,
        #[cfg(feature = "mender")]
        &mender::FACTORY,
        #[cfg(feature = "ostree")]
        &ostree::FACTORY,
        #[cfg(feature = "swupd")]
        &swupd::FACTORY,
    ]
}

/// Records a bootloader fallback (status found the device back on the old slot) as a warning
/// and an audit record, once per distinct fallback (remembered in
/// `/var/lib/update/<driver>-fallback`).
pub fn note_fallback(ctx: &Context<'_>, driver: &str, message: &str) {
    let marker = ctx.paths.state_dir().join(format!("{driver}-fallback"));
    if std::fs::read_to_string(&marker).is_ok_and(|s| s.trim() == message) {
        return;
    }
    ctx.events.warn(&format!("automatic fallback: {message}"));
    ctx.events.audit(ctx.events.record(AuditAction::Fallback, Outcome::Ok).driver(driver).message(message));
    let _ = update_core::atomic::write_atomic(&marker, message.as_bytes(), 0o644);
}
