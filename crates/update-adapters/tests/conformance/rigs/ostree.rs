//! A simulated ostree device: a sysroot made with `ostree admin init-fs` and `os-init`, a remote
//! `os` whose GPG keyring holds a throwaway ed25519 (EdDSA) GPG key, version 1.0.0 deployed from
//! a signed commit, update files that are tar archives of archive-mode repositories made with
//! `ostree commit --gpg-sign`, and a simulated boot that reads the boot loader entries ostree
//! wrote (`boot/loader/entries/*.conf`, highest `version` first, as a BLS bootloader does) and
//! resolves the `ostree=` kernel argument the way ostree-prepare-root does.

use std::path::PathBuf;
use std::process::Command;

use update_adapters::ostree::{OstreeFactory, OstreeOptions};
use update_adapters::tool::ToolSpec;
use update_core::driver::DriverFactory;

use crate::suite::{Artifact, Rig};
use crate::support::{Harness, cmd, flip_byte, image_bytes, sh};

pub struct OstreeRig {
    dir: tempfile::TempDir,
    harness: Harness,
    signer: String,
    evil: String,
    built: u32,
}

impl OstreeRig {
    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn sysrepo(&self) -> String {
        format!("--repo={}", self.p("ostree/repo").display())
    }

    /// A fresh archive repository with one commit of `version` on `os/stable`.
    fn build_repo(&self, version: &str, kind: Artifact) -> PathBuf {
        let repo = self.p(&format!("build/repo-{}", self.built));
        let tree = self.p(&format!("build/tree-{}", self.built));
        for d in ["usr/lib/modules/6.1.0", "usr/etc", "usr/share/app"] {
            std::fs::create_dir_all(tree.join(d)).unwrap();
        }
        std::fs::write(tree.join("usr/lib/modules/6.1.0/vmlinuz"), b"not really a kernel").unwrap();
        std::fs::write(tree.join("usr/lib/os-release"), "ID=libupdate-test\nNAME=\"libupdate test\"\n").unwrap();
        std::fs::write(tree.join("usr/etc/update-version"), format!("{version}\n")).unwrap();
        std::fs::write(tree.join("usr/share/app/data.bin"), image_bytes(version, 256 << 10)).unwrap();
        sh(cmd("ostree", ["init", "--mode=archive"]).arg(format!("--repo={}", repo.display())));
        let (home, key) = match kind {
            Artifact::Untrusted => (self.p("gnupg-evil"), &self.evil),
            _ => (self.p("gnupg"), &self.signer),
        };
        sh(cmd("ostree", ["commit", "-b", "os/stable"])
            .arg(format!("--repo={}", repo.display()))
            .arg(format!("--tree=dir={}", tree.display()))
            .arg(format!("--add-metadata-string=version={version}"))
            .arg(format!("--gpg-sign={key}"))
            .arg(format!("--gpg-homedir={}", home.display()))
            .arg(format!("--subject=libupdate conformance {version}")));
        repo
    }

    fn boot_entries(&self) -> Vec<(PathBuf, String)> {
        let dir = self.p("boot/loader/entries");
        let mut v: Vec<(PathBuf, String)> = std::fs::read_dir(&dir)
            .map(|r| r.filter_map(|e| e.ok()).map(|e| e.path()).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .map(|p| {
                let t = std::fs::read_to_string(&p).unwrap();
                (p, t)
            })
            .collect();
        v.sort();
        v
    }
}

impl Rig for OstreeRig {
    const DRIVER: &'static str = "ostree";
    const TOOLS: &'static [&'static str] = &["ostree", "gpg", "gpg-agent", "gpgconf", "tar"];
    const NEEDS_ROOT: bool = false;
    const FALLS_BACK: bool = false;
    const PROGRESS: bool = false;
    const FACTORY_VERSION: Option<&'static str> = Some("1.0.0");

    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_owned();
        let d = d.as_path();
        std::fs::create_dir_all(d.join("build")).unwrap();
        std::fs::create_dir_all(d.join("proc")).unwrap();
        let signer = update_test::apt::gpg_key(&d.join("gnupg"), "snakeoil <snakeoil@example.invalid>");
        let evil = update_test::apt::gpg_key(&d.join("gnupg-evil"), "snakeoil-evil <evil@example.invalid>");
        let pubkey = d.join("build/signer.gpg");
        let exported =
            sh(Command::new("gpg").arg("--homedir").arg(d.join("gnupg")).args(["--export", "--armor", &signer]));
        std::fs::write(&pubkey, exported).unwrap();
        sh(cmd("ostree", ["admin", "init-fs"]).arg(d));
        sh(cmd("ostree", ["admin", "os-init", "os"]).arg(format!("--sysroot={}", d.display())));
        let harness = Harness::new(d, "ostree");
        let mut rig = Self { dir, harness, signer, evil, built: 0 };
        let sysrepo = rig.sysrepo();
        sh(cmd("ostree", [sysrepo.as_str(), "remote", "add", "--set=gpg-verify=true", "os", "file:///dev/null"]));
        sh(cmd("ostree", [sysrepo.as_str(), "remote", "gpg-import", "os", "-k"]).arg(&pubkey));
        let factory = rig.build_repo("1.0.0", Artifact::Signed);
        sh(cmd("ostree", [sysrepo.as_str(), "pull-local", "--remote=os", "--gpg-verify", "--untrusted"])
            .arg(&factory)
            .arg("os/stable"));
        sh(cmd("ostree", ["admin", "deploy", "--os=os", "os:os/stable"]).arg(format!("--sysroot={}", d.display())));
        rig.reboot();
        rig
    }

    fn harness(&self) -> &Harness {
        &self.harness
    }

    fn harness_mut(&mut self) -> &mut Harness {
        &mut self.harness
    }

    fn factory(&self) -> Box<dyn DriverFactory> {
        Box::new(OstreeFactory::new(OstreeOptions { reboot_command: vec!["true".into()], ..OstreeOptions::default() }))
    }

    fn missing_tool_factory() -> Box<dyn DriverFactory> {
        Box::new(OstreeFactory::new(OstreeOptions {
            tool: ToolSpec::new("ostree-not-installed"),
            ..OstreeOptions::default()
        }))
    }

    fn artifact(&mut self, version: &str, kind: Artifact) -> PathBuf {
        self.built += 1;
        let repo = self.build_repo(version, kind);
        if kind == Artifact::Tampered {
            // Corrupt the biggest content object: its checksum no longer matches.
            let mut objects: Vec<(u64, PathBuf)> = Vec::new();
            for sub in std::fs::read_dir(repo.join("objects")).unwrap().flatten() {
                for f in std::fs::read_dir(sub.path()).unwrap().flatten() {
                    if f.path().extension().is_some_and(|e| e == "filez") {
                        objects.push((f.metadata().unwrap().len(), f.path()));
                    }
                }
            }
            objects.sort();
            let (len, path) = objects.last().expect("content objects").clone();
            flip_byte(&path, len / 2);
        }
        let out = self.p(&format!("build/update-{version}-{}.tar", self.built));
        sh(cmd("tar", ["-cf".as_ref(), out.as_os_str(), "-C".as_ref(), repo.as_os_str(), ".".as_ref()]));
        out
    }

    fn reboot(&mut self) {
        let entries = self.boot_entries();
        let version_of = |t: &str| -> u32 {
            t.lines().find_map(|l| l.strip_prefix("version ")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
        };
        let (_, entry) = entries.iter().max_by_key(|(_, t)| version_of(t)).expect("a boot entry");
        let options = entry.lines().find_map(|l| l.strip_prefix("options ")).expect("an options line");
        let ostree_arg = options.split_whitespace().find_map(|w| w.strip_prefix("ostree=")).expect("ostree= karg");
        // ostree-prepare-root: follow the boot link to the deployment directory.
        let target = std::fs::canonicalize(self.p(ostree_arg.trim_start_matches('/'))).unwrap();
        let rel = target.strip_prefix(self.dir.path()).unwrap();
        std::fs::write(self.p("proc/cmdline"), format!("console=ttyS0 ostree=/{}\n", rel.display())).unwrap();
    }

    fn snapshot(&self) -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<(String, Vec<u8>)> =
            self.boot_entries().into_iter().map(|(p, t)| (p.display().to_string(), t.into_bytes())).collect();
        v.push(("refs".into(), sh(cmd("ostree", [self.sysrepo().as_str(), "refs"])).into_bytes()));
        let mut deployed: Vec<String> = std::fs::read_dir(self.p("ostree/deploy/os/deploy"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        deployed.sort();
        v.push(("deployments".into(), deployed.join("\n").into_bytes()));
        v
    }
}

impl Drop for OstreeRig {
    fn drop(&mut self) {
        for home in ["gnupg", "gnupg-evil"] {
            let _ = Command::new("gpgconf").arg("--homedir").arg(self.p(home)).args(["--kill", "gpg-agent"]).status();
        }
    }
}
