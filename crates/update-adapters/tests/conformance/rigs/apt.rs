//! A simulated Debian gateway for the example external driver `examples/drivers/apt`: a temporary
//! root with a dpkg database holding version 1.0.0 of two tiny packages (`gateway-release`, whose
//! version is the system's, and `app`), the driver installed as
//! `<root>/usr/lib/update/drivers/apt{,.toml}`, its settings in `<root>/etc/update/apt.toml`, and
//! a throwaway ed25519 OpenPGP key (`snakeoil`) whose public half is the archive keyring
//! (`Signed-By`). Each update is a flat apt archive built under the root: `.deb` files from
//! `dpkg-deb --build`, `Packages` from `dpkg-scanpackages`, a `Release` with their SHA-256, and
//! `InRelease` clear-signed by the trusted key (tampered: a `.deb` byte changed after signing;
//! untrusted: signed by another key; unsigned: no `InRelease`). apt and dpkg run with `Dir=`,
//! `--root` and `--admindir` pointing into the root, so nothing on the host changes
//! ([`the_host_is_untouched`] checks the host's dpkg database).

use std::path::{Path, PathBuf};
use std::process::Command;

use libupdate::external::ExternalFactory;
use sha2::Digest;
use update_core::driver::DriverFactory;

use crate::suite::{Artifact, Rig};
use crate::support::{Harness, cmd, flip_byte, sh};

/// The example driver in the source tree.
fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/drivers/apt")
}

/// Installs the example driver under `root`, as its package would.
pub fn install_driver(root: &Path) {
    let dir = root.join("usr/lib/update/drivers");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(example().join("apt"), dir.join("apt")).unwrap();
    std::fs::copy(example().join("apt.toml"), dir.join("apt.toml")).unwrap();
}

fn gen_key(home: &Path, uid: &str) -> String {
    std::fs::create_dir_all(home).unwrap();
    sh(cmd("chmod", ["700".as_ref(), home.as_os_str()]));
    sh(Command::new("gpg").arg("--homedir").arg(home).args([
        "--batch",
        "--passphrase",
        "",
        "--quick-gen-key",
        uid,
        "ed25519",
        "sign",
        "never",
    ]));
    let out = sh(Command::new("gpg").arg("--homedir").arg(home).args(["--list-keys", "--with-colons"]));
    out.lines().find_map(|l| l.strip_prefix("fpr:").map(|r| r.trim_matches(':').to_owned())).expect("a fingerprint")
}

pub struct AptRig {
    dir: tempfile::TempDir,
    harness: Harness,
    built: u32,
}

impl AptRig {
    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `<name>_<version>_all.deb` with one file, `/usr/share/<name>/version`.
    fn deb(&self, name: &str, version: &str, out: &Path) {
        let tree = self.p(&format!("build/tree-{name}-{version}-{}", self.built));
        std::fs::create_dir_all(tree.join("DEBIAN")).unwrap();
        std::fs::create_dir_all(tree.join(format!("usr/share/{name}"))).unwrap();
        std::fs::write(tree.join(format!("usr/share/{name}/version")), format!("{name} {version}\n")).unwrap();
        std::fs::write(
            tree.join("DEBIAN/control"),
            format!(
                "Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: snakeoil <snakeoil@example.invalid>\n\
                 Description: libupdate apt conformance package\n"
            ),
        )
        .unwrap();
        sh(cmd("dpkg-deb", ["--root-owner-group", "-Zgzip", "--build"]).arg(&tree).arg(out));
    }

    /// A flat apt archive of `version` (see the module docs).
    fn archive(&self, version: &str, kind: Artifact) -> PathBuf {
        let dir = self.p(&format!("archives/{version}-{}", self.built));
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["gateway-release", "app"] {
            self.deb(name, version, &dir.join(format!("{name}_{version}_all.deb")));
        }
        let packages = sh(cmd("dpkg-scanpackages", ["-m", "."]).current_dir(&dir));
        std::fs::write(dir.join("Packages"), &packages).unwrap();
        let release = format!(
            "Origin: snakeoil\nLabel: snakeoil\nSuite: stable\nVersion: {version}\nDate: Thu, 01 Jan 2026 00:00:00 UTC\n\
             SHA256:\n {} {} Packages\n",
            hex(&sha2::Sha256::digest(packages.as_bytes())),
            packages.len()
        );
        std::fs::write(dir.join("Release"), release).unwrap();
        let home = match kind {
            Artifact::Untrusted => self.p("gnupg-evil"),
            _ => self.p("gnupg"),
        };
        if kind != Artifact::Unsigned {
            sh(Command::new("gpg").arg("--homedir").arg(home).args(["--batch", "--yes", "--clearsign", "-o"]).arg(
                dir.join("InRelease"),
            )
            .arg(dir.join("Release")));
        }
        if kind == Artifact::Tampered {
            flip_byte(&dir.join(format!("app_{version}_all.deb")), 300);
        }
        dir
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The host's dpkg database, which no test may change.
pub fn host_dpkg_status() -> Vec<u8> {
    std::fs::read("/var/lib/dpkg/status").unwrap_or_default()
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
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_owned();
        for sub in ["var/lib/dpkg/info", "var/lib/dpkg/updates", "etc/update/apt", "build", "archives"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        std::fs::write(d.join("var/lib/dpkg/status"), "").unwrap();
        std::fs::write(d.join("var/lib/dpkg/available"), "").unwrap();
        install_driver(&d);
        gen_key(&d.join("gnupg"), "snakeoil <snakeoil@example.invalid>");
        gen_key(&d.join("gnupg-evil"), "snakeoil-evil <evil@example.invalid>");
        let public = Command::new("gpg").arg("--homedir").arg(d.join("gnupg")).arg("--export").output().unwrap();
        assert!(!public.stdout.is_empty());
        std::fs::write(d.join("etc/update/apt/archive.gpg"), public.stdout).unwrap();
        std::fs::write(
            d.join("etc/update/apt.toml"),
            "keyring = \"/etc/update/apt/archive.gpg\"\nrelease-package = \"gateway-release\"\n",
        )
        .unwrap();
        let harness = Harness::new(&d, "apt");
        let rig = Self { dir, harness, built: 0 };
        // The factory image: 1.0.0 installed with dpkg into the root.
        let factory = rig.archive("1.0.0", Artifact::Signed);
        for name in ["gateway-release", "app"] {
            sh(cmd("dpkg", ["--force-not-root"])
                .arg(format!("--root={}", d.display()))
                .arg(format!("--admindir={}", d.join("var/lib/dpkg").display()))
                .arg("-i")
                .arg(factory.join(format!("{name}_1.0.0_all.deb"))));
        }
        rig
    }

    fn harness(&self) -> &Harness {
        &self.harness
    }

    fn harness_mut(&mut self) -> &mut Harness {
        &mut self.harness
    }

    fn factory(&self) -> Box<dyn DriverFactory> {
        let f = ExternalFactory::load(self.dir.path(), &self.p("usr/lib/update/drivers/apt.toml"));
        assert!(f.manifest().is_some(), "the example manifest is refused: {f:?}");
        Box::new(f.clone())
    }

    fn missing_tool_factory() -> Box<dyn DriverFactory> {
        // The manifest without its executable (a package half removed).
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("apt-driver-missing");
        std::fs::create_dir_all(&root).unwrap();
        let manifest = root.join("apt.toml");
        std::fs::copy(example().join("apt.toml"), &manifest).unwrap();
        Box::new(ExternalFactory::load(&root, &manifest).clone())
    }

    fn registered_factory() -> &'static dyn DriverFactory {
        // As `update` finds it: the example installed under a root, read by the driver table.
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("apt-driver-installed");
        install_driver(&root);
        let table = libupdate::DriverTable::new(Vec::new()).with_external(&root);
        table.factory("apt").expect("the installed example driver is in the table")
    }

    fn artifact(&mut self, version: &str, kind: Artifact) -> PathBuf {
        self.built += 1;
        self.archive(version, kind)
    }

    fn reboot(&mut self) {
        // Nothing to choose: apt changed the running system in place.
    }

    fn snapshot(&self) -> Vec<(String, Vec<u8>)> {
        let mut v = vec![
            ("dpkg status".to_owned(), std::fs::read(self.p("var/lib/dpkg/status")).unwrap()),
            ("host dpkg status".to_owned(), host_dpkg_status()),
        ];
        for name in ["gateway-release", "app"] {
            let f = format!("usr/share/{name}/version");
            v.push((f.clone(), std::fs::read(self.p(&f)).unwrap_or_default()));
        }
        v
    }
}

impl Drop for AptRig {
    fn drop(&mut self) {
        for home in ["gnupg", "gnupg-evil"] {
            let _ = Command::new("gpgconf").arg("--homedir").arg(self.p(home)).args(["--kill", "gpg-agent"]).status();
        }
    }
}

/// An install through the driver changes the root's dpkg database and files, and the host's
/// dpkg database not at all.
pub fn the_host_is_untouched() {
    use update_core::config::Verify;
    use update_core::driver::InstallRequest;
    let host = host_dpkg_status();
    let mut rig = AptRig::new();
    let archive = rig.artifact("2.0.0", Artifact::Signed);
    let h = rig.harness();
    let mut d = h.driver(rig.factory().as_ref());
    d.install(&h.ctx(), &InstallRequest::file(archive, Verify::Signatures)).unwrap();
    assert_eq!(std::fs::read_to_string(rig.p("usr/share/app/version")).unwrap(), "app 2.0.0\n");
    assert!(String::from_utf8_lossy(&std::fs::read(rig.p("var/lib/dpkg/status")).unwrap()).contains("Version: 2.0.0"));
    assert!(host == host_dpkg_status(), "the host's /var/lib/dpkg/status changed");
    // Each package was audited with its old and new version.
    let lines = h.events.lines.borrow();
    for name in ["app", "gateway-release"] {
        assert!(
            lines.iter().any(|l| l.contains("Install") && l.contains(&format!("\"{name}\"")) && l.contains("2.0.0")),
            "{name} not audited: {lines:#?}"
        );
    }
}
