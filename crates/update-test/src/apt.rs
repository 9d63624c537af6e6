//! A simulated Debian gateway for the example external driver `examples/drivers/apt`: a temporary
//! root with a dpkg database holding version 1.0.0 of two tiny packages (`gateway-release`, whose
//! version is the system's, and `app`), the driver installed as
//! `<root>/usr/lib/update/drivers/apt{,.toml}`, its settings in `<root>/etc/update/apt.toml`, and
//! a throwaway ed25519 OpenPGP key (`snakeoil`) whose public half is the archive keyring
//! (`Signed-By`). Each update is a flat apt archive built under the root
//! ([`AptDevice::archive`]): `.deb` files from `dpkg-deb --build`, `Packages` from
//! `dpkg-scanpackages`, a `Release` with its SHA-256, and `InRelease` clear-signed by the
//! trusted key, or one of the bad kinds of [`Archive`]. The driver runs apt and dpkg with
//! `Dir=`, `--root` and `--admindir` inside the root, so nothing on the host changes
//! ([`host_dpkg_status`] is what tests compare).
//!
//! Needs `dpkg-deb`, `dpkg-scanpackages` (dpkg-dev), `gpg`, `apt-get` and `python3`; dpkg
//! installs root-owned files, so tests run as root.

#![allow(clippy::unwrap_used)] // a test rig: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::Digest;

/// How an archive is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Archive {
    /// Signed by the trusted key.
    Signed,
    /// Signed, then one byte of a `.deb` changed (its hash no longer matches `Packages`).
    Tampered,
    /// Signed by a key the device does not trust.
    Untrusted,
    /// No `InRelease` at all.
    Unsigned,
}

/// The example driver in the source tree (`examples/drivers/apt`).
#[must_use]
pub fn example_driver() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/drivers/apt")
}

/// Installs the example driver under `root`, as its package would.
///
/// # Panics
/// When the files cannot be copied.
pub fn install_driver(root: &Path) {
    let dir = root.join("usr/lib/update/drivers");
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["apt", "apt.toml"] {
        std::fs::copy(example_driver().join(file), dir.join(file)).unwrap();
    }
}

/// The host's dpkg database, which no test may change.
#[must_use]
pub fn host_dpkg_status() -> Vec<u8> {
    std::fs::read("/var/lib/dpkg/status").unwrap_or_default()
}

/// Runs a command and panics with its output when it fails.
fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A new ed25519 signing key in the GnuPG home `home` (made private); returns its fingerprint.
///
/// # Panics
/// When gpg fails.
pub fn gpg_key(home: &Path, uid: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(home).unwrap();
    std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o700)).unwrap();
    run(Command::new("gpg").arg("--homedir").arg(home).args([
        "--batch",
        "--passphrase",
        "",
        "--quick-gen-key",
        uid,
        "ed25519",
        "sign",
        "never",
    ]));
    let out = run(Command::new("gpg").arg("--homedir").arg(home).args(["--list-keys", "--with-colons"]));
    out.lines().find_map(|l| l.strip_prefix("fpr:").map(|r| r.trim_matches(':').to_owned())).expect("a fingerprint")
}

/// The simulated gateway (see the module docs).
#[derive(Debug)]
pub struct AptDevice {
    dir: tempfile::TempDir,
    built: u32,
}

impl AptDevice {
    /// Builds the device: the driver installed, 1.0.0 installed with dpkg into the root.
    ///
    /// # Panics
    /// When a tool fails.
    #[must_use]
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_owned();
        for sub in ["var/lib/dpkg/info", "var/lib/dpkg/updates", "etc/update/apt", "archives"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        std::fs::write(d.join("var/lib/dpkg/status"), "").unwrap();
        std::fs::write(d.join("var/lib/dpkg/available"), "").unwrap();
        install_driver(&d);
        gpg_key(&d.join("gnupg"), "snakeoil <snakeoil@example.invalid>");
        gpg_key(&d.join("gnupg-evil"), "snakeoil-evil <evil@example.invalid>");
        let public = Command::new("gpg").arg("--homedir").arg(d.join("gnupg")).arg("--export").output().unwrap();
        assert!(public.status.success() && !public.stdout.is_empty(), "gpg --export failed");
        std::fs::write(d.join("etc/update/apt/archive.gpg"), public.stdout).unwrap();
        std::fs::write(
            d.join("etc/update/apt.toml"),
            "keyring = \"/etc/update/apt/archive.gpg\"\nrelease-package = \"gateway-release\"\n",
        )
        .unwrap();
        let mut dev = Self { dir, built: 0 };
        let factory = dev.archive("1.0.0", Archive::Signed);
        for name in ["gateway-release", "app"] {
            run(Command::new("dpkg")
                .arg(format!("--root={}", d.display()))
                .arg(format!("--admindir={}", d.join("var/lib/dpkg").display()))
                .arg("-i")
                .arg(factory.join(format!("{name}_1.0.0_all.deb"))));
        }
        dev
    }

    /// The device root.
    #[must_use]
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    /// `<name>_<version>_all.deb` with one file, `/usr/share/<name>/version`.
    fn deb(&self, dir: &Path, name: &str, version: &str) {
        let tree = self.p(&format!("archives/tree-{name}-{version}-{}", self.built));
        std::fs::create_dir_all(tree.join("DEBIAN")).unwrap();
        std::fs::create_dir_all(tree.join(format!("usr/share/{name}"))).unwrap();
        std::fs::write(tree.join(format!("usr/share/{name}/version")), format!("{name} {version}\n")).unwrap();
        std::fs::write(
            tree.join("DEBIAN/control"),
            format!(
                "Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: snakeoil <snakeoil@example.invalid>\n\
                 Description: libupdate apt test package\n"
            ),
        )
        .unwrap();
        run(Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zgzip", "--build"])
            .arg(&tree)
            .arg(dir.join(format!("{name}_{version}_all.deb"))));
    }

    /// A new flat apt archive of `version` under the root (`archives/<version>-<n>/`).
    ///
    /// # Panics
    /// When a tool fails.
    pub fn archive(&mut self, version: &str, kind: Archive) -> PathBuf {
        self.built += 1;
        let dir = self.p(&format!("archives/{version}-{}", self.built));
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["gateway-release", "app"] {
            self.deb(&dir, name, version);
        }
        let packages = run(Command::new("dpkg-scanpackages").args(["-m", "."]).current_dir(&dir));
        std::fs::write(dir.join("Packages"), &packages).unwrap();
        let release = format!(
            "Origin: snakeoil\nLabel: snakeoil\nSuite: stable\nVersion: {version}\nDate: Thu, 01 Jan 2026 00:00:00 UTC\n\
             SHA256:\n {} {} Packages\n",
            hex::encode(sha2::Sha256::digest(packages.as_bytes())),
            packages.len()
        );
        std::fs::write(dir.join("Release"), release).unwrap();
        let home = if kind == Archive::Untrusted { self.p("gnupg-evil") } else { self.p("gnupg") };
        if kind != Archive::Unsigned {
            run(Command::new("gpg")
                .arg("--homedir")
                .arg(home)
                .args(["--batch", "--yes", "--clearsign", "-o"])
                .arg(dir.join("InRelease"))
                .arg(dir.join("Release")));
        }
        if kind == Archive::Tampered {
            let deb = dir.join(format!("app_{version}_all.deb"));
            let mut bytes = std::fs::read(&deb).unwrap();
            let at = bytes.len() / 2;
            bytes[at] ^= 0x5a;
            std::fs::write(&deb, bytes).unwrap();
        }
        dir
    }

    /// What an install changes: the root's dpkg database, the packages' files, and (never) the
    /// host's dpkg database.
    #[must_use]
    pub fn snapshot(&self) -> Vec<(String, Vec<u8>)> {
        let mut v = vec![
            ("dpkg status".to_owned(), std::fs::read(self.p("var/lib/dpkg/status")).unwrap_or_default()),
            ("host dpkg status".to_owned(), host_dpkg_status()),
        ];
        for name in ["gateway-release", "app"] {
            let f = format!("usr/share/{name}/version");
            v.push((f.clone(), std::fs::read(self.p(&f)).unwrap_or_default()));
        }
        v
    }

    /// The version of `package`'s file (`app 2.0.0`).
    #[must_use]
    pub fn installed(&self, package: &str) -> String {
        std::fs::read_to_string(self.p(&format!("usr/share/{package}/version"))).unwrap_or_default().trim().to_owned()
    }
}

impl Default for AptDevice {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for AptDevice {
    fn drop(&mut self) {
        for home in ["gnupg", "gnupg-evil"] {
            let _ = Command::new("gpgconf").arg("--homedir").arg(self.p(home)).args(["--kill", "gpg-agent"]).status();
        }
    }
}
