//! The example external driver `examples/drivers/apt` on `update-test`'s simulated Debian gateway
//! ([`update_test::apt::AptDevice`]: a dpkg database under a temporary root, flat apt archives
//! signed with a throwaway OpenPGP key), through libupdate's external-driver client. apt has no
//! slots: the rig is [`Rig::IN_PLACE`], so the slot tests check the driver's refusals.

use std::path::{Path, PathBuf};

use libupdate::external::ExternalFactory;
use update_core::driver::DriverFactory;
use update_test::apt::{self, AptDevice, Archive};

use crate::suite::{Artifact, Rig};
use crate::support::Harness;

pub struct AptRig {
    device: AptDevice,
    harness: Harness,
}

impl Rig for AptRig {
    const DRIVER: &'static str = "apt";
    const TOOLS: &'static [&'static str] = &["apt-get", "dpkg", "dpkg-deb", "dpkg-scanpackages", "gpg", "python3"];
    // dpkg --root installs files owned by root.
    const NEEDS_ROOT: bool = true;
    const FALLS_BACK: bool = false;
    const PROGRESS: bool = true;
    const FACTORY_VERSION: Option<&'static str> = Some("1.0.0");
    const MISSING_TOOL_DECLINE: &'static str = "not found";
    const UNCONFIGURED_DECLINES: &'static [&'static str] = &["not configured"];
    // Check reads the signed lists; install fetches and hash-checks every package before dpkg runs.
    const INSPECT_CHECKS_PAYLOAD: bool = false;
    const UNSIGNED_ARTIFACTS: bool = true;
    const IN_PLACE: bool = true;

    fn new() -> Self {
        let device = AptDevice::new();
        let harness = Harness::new(device.root(), "apt");
        Self { device, harness }
    }

    fn harness(&self) -> &Harness {
        &self.harness
    }

    fn harness_mut(&mut self) -> &mut Harness {
        &mut self.harness
    }

    fn factory(&self) -> Box<dyn DriverFactory> {
        let root = self.device.root();
        let f = ExternalFactory::load(root, &root.join("usr/lib/update/drivers/apt.toml"));
        assert!(f.manifest().is_some(), "the example manifest is refused: {f:?}");
        Box::new(f.clone())
    }

    fn missing_tool_factory() -> Box<dyn DriverFactory> {
        // The manifest without its executable (a package half removed).
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("apt-driver-missing");
        std::fs::create_dir_all(&root).unwrap();
        let manifest = root.join("apt.toml");
        std::fs::copy(apt::example_driver().join("apt.toml"), &manifest).unwrap();
        Box::new(ExternalFactory::load(&root, &manifest).clone())
    }

    fn registered_factory() -> &'static dyn DriverFactory {
        // As `update` finds it: the example installed under a root, read by the driver table.
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("apt-driver-installed");
        apt::install_driver(&root);
        let table = libupdate::DriverTable::new(Vec::new()).with_external(&root);
        table.factory("apt").expect("the installed example driver is in the table")
    }

    fn artifact(&mut self, version: &str, kind: Artifact) -> PathBuf {
        let kind = match kind {
            Artifact::Signed => Archive::Signed,
            Artifact::Tampered => Archive::Tampered,
            Artifact::Untrusted => Archive::Untrusted,
            Artifact::Unsigned => Archive::Unsigned,
        };
        self.device.archive(version, kind)
    }

    fn reboot(&mut self) {
        // Nothing to choose: apt changed the running system in place.
    }

    fn snapshot(&self) -> Vec<(String, Vec<u8>)> {
        self.device.snapshot()
    }
}

/// An install through the driver changes the root's dpkg database and files, audits each
/// package, and leaves the host's dpkg database as it was.
pub fn the_host_is_untouched() {
    use update_core::config::Verify;
    use update_core::driver::InstallRequest;
    let host = apt::host_dpkg_status();
    let mut rig = AptRig::new();
    let archive = rig.artifact("2.0.0", Artifact::Signed);
    let h = rig.harness();
    let mut d = h.driver(rig.factory().as_ref());
    d.install(&h.ctx(), &InstallRequest::file(archive, Verify::Signatures)).unwrap();
    assert_eq!(rig.device.installed("app"), "app 2.0.0");
    assert!(host == apt::host_dpkg_status(), "the host's /var/lib/dpkg/status changed");
    let lines = h.events.lines.borrow();
    for name in ["app", "gateway-release"] {
        assert!(
            lines.iter().any(|l| l.contains("Install") && l.contains(&format!("\"{name}\"")) && l.contains("2.0.0")),
            "{name} not audited: {lines:#?}"
        );
    }
}
