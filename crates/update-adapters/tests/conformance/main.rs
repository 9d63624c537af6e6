//! One conformance suite for every adapter, in the shape of ripgrep's `rgtest!` and rustls's
//! per-provider API tests: the tests in [`suite`] are written once against [`suite::Rig`], and
//! `conformance!` instantiates all of them for each driver's rig.
//!
//! Each rig drives the real tool on a simulated device under a temporary root; the native
//! engine's rig drives `update-native` on `update-test`'s simulated device (loop devices). A
//! driver whose tool is not installed (native: not root, or no loop devices) prints `SKIPPED`
//! and passes, unless `UPDATE_ADAPTERS_REQUIRE` names it (`rauc,swupdate,mender,ostree,native`
//! or `all`): CI sets that so a missing package fails the run. The example external driver
//! (`examples/drivers/apt`) runs the same suite as `apt`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod rigs;
mod suite;
mod support;

#[cfg(feature = "rauc")]
mod rauc_probe_once;

use update_core::driver::DriverFactory;

/// The statically registered factory for `driver` (probed against an empty root).
pub fn default_factory(driver: &str) -> &'static dyn DriverFactory {
    update_adapters::factories()
        .into_iter()
        .find(|f| f.name() == driver)
        .unwrap_or_else(|| panic!("{driver} is not compiled in"))
}

/// Instantiates every conformance test for one driver (an adapter behind its cargo feature, or
/// the native engine, which is always built).
macro_rules! conformance {
    ($module:ident, $feature:literal, $rig:ty) => {
        #[cfg(feature = $feature)]
        conformance!($module, $rig);
    };
    ($module:ident, $rig:ty) => {
        mod $module {
            use super::*;

            fn run(test: fn()) {
                if support::available(
                    <$rig as suite::Rig>::DRIVER,
                    <$rig as suite::Rig>::TOOLS,
                    <$rig as suite::Rig>::NEEDS_ROOT,
                    <$rig as suite::Rig>::NEEDS_LOOP_DEVICES,
                ) {
                    test();
                }
            }

            #[test]
            fn probe_declines_without_tool() {
                suite::probe_declines_without_tool::<$rig>();
            }

            #[test]
            fn probe_declines_unconfigured() {
                suite::probe_declines_unconfigured::<$rig>();
            }

            #[test]
            fn install_cycle() {
                run(suite::install_cycle::<$rig>);
            }

            #[test]
            fn bad_artifacts_are_refused() {
                run(suite::bad_artifacts_are_refused::<$rig>);
            }

            #[test]
            fn failed_boot_falls_back() {
                run(suite::failed_boot_falls_back::<$rig>);
            }

            #[test]
            fn mark_bad_during_trial() {
                run(suite::mark_bad_during_trial::<$rig>);
            }

            #[test]
            fn rollback_during_trial() {
                run(suite::rollback_during_trial::<$rig>);
            }

            #[test]
            fn rollback_after_commit() {
                run(suite::rollback_after_commit::<$rig>);
            }

            #[test]
            fn through_the_facade() {
                run(suite::through_the_facade::<$rig>);
            }

            #[test]
            fn unsupported_settings_are_refused() {
                run(suite::unsupported_settings_are_refused::<$rig>);
            }
        }
    };
}

conformance!(rauc, "rauc", rigs::rauc::RaucRig);
conformance!(swupdate, "swupdate", rigs::swupdate::SwupdateRig);
conformance!(ostree, "ostree", rigs::ostree::OstreeRig);
conformance!(mender, "mender", rigs::mender::MenderRig);
conformance!(native, rigs::native::NativeRig);
// The example external driver (examples/drivers/apt), through libupdate's external-driver client.
conformance!(apt, rigs::apt::AptRig);

/// The apt rig changes only its temporary root: the host's dpkg database is the same after an
/// install (every snapshot of the suite compares it too).
#[test]
fn apt_leaves_the_host_alone() {
    use suite::Rig;
    type R = rigs::apt::AptRig;
    if support::available(R::DRIVER, R::TOOLS, R::NEEDS_ROOT, R::NEEDS_LOOP_DEVICES) {
        rigs::apt::the_host_is_untouched();
    }
}

/// swupd is not packaged in Debian: there is no device to build here (no `mixer` either), so
/// only probing is tested against the real system; argument construction and output parsing are
/// unit tests in `src/swupd.rs`, on outputs quoted from swupd's documentation.
#[cfg(feature = "swupd")]
mod swupd {
    use update_adapters::swupd::{SwupdFactory, SwupdOptions};
    use update_adapters::tool::ToolSpec;
    use update_core::driver::{DriverFactory, Probe};

    use crate::support::{self, Harness};

    #[test]
    fn probe_declines_without_tool() {
        let dir = tempfile::tempdir().unwrap();
        let h = Harness::new(dir.path(), "swupd");
        let f =
            SwupdFactory::new(SwupdOptions { tool: ToolSpec::new("swupd-not-installed"), ..SwupdOptions::default() });
        match f.probe(&h.ctx()) {
            Probe::Declined(why) => assert!(why.contains("not found in PATH"), "{why}"),
            other => panic!("expected a decline, got {other:?}"),
        }
    }

    #[test]
    fn probe_declines_unconfigured() {
        let dir = tempfile::tempdir().unwrap();
        let h = Harness::new(dir.path(), "swupd");
        match crate::default_factory("swupd").probe(&h.ctx()) {
            Probe::Declined(why) => assert!(why.contains("not found in PATH") || why.contains("not a swupd"), "{why}"),
            other => panic!("expected a decline, got {other:?}"),
        }
    }

    #[test]
    fn conformance_suite() {
        if support::available("swupd", &["swupd", "mixer"], true, false) {
            panic!("swupd and mixer are installed, but this suite has no swupd rig yet: write one (see src/swupd.rs)");
        }
    }
}
