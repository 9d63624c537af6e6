//! One conformance suite for every adapter, in the shape of ripgrep's `rgtest!` and rustls's
//! per-provider API tests: the tests in [`suite`] are written once against [`suite::Rig`], and
//! `conformance!` instantiates all of them for each driver's rig.
//!
//! Each rig drives the real tool on a simulated device under a temporary root. A driver whose
//! tool is not installed prints `SKIPPED` and passes, unless `UPDATE_ADAPTERS_REQUIRE` names it
//! (`rauc,swupdate,mender,ostree` or `all`): CI sets that so a missing package fails the run.

mod rigs;
mod suite;
mod support;

use update_core::driver::DriverFactory;

/// The statically registered factory for `driver` (probed against an empty root).
pub fn default_factory(driver: &str) -> &'static dyn DriverFactory {
    update_adapters::factories()
        .into_iter()
        .find(|f| f.name() == driver)
        .unwrap_or_else(|| panic!("{driver} is not compiled in"))
}

/// Instantiates every conformance test for one driver.
macro_rules! conformance {
    ($module:ident, $feature:literal, $rig:ty) => {
        #[cfg(feature = $feature)]
        mod $module {
            use super::*;

            fn run(test: fn()) {
                if support::available(
                    <$rig as suite::Rig>::DRIVER,
                    <$rig as suite::Rig>::TOOLS,
                    <$rig as suite::Rig>::NEEDS_ROOT,
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
            fn rollback_during_trial() {
                run(suite::rollback_during_trial::<$rig>);
            }

            #[test]
            fn rollback_after_commit() {
                run(suite::rollback_after_commit::<$rig>);
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
