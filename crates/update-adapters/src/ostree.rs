//! The ostree driver: deployments in an ostree sysroot with `ostree admin`.
//!
//! ostree has no slots; its unit is a *deployment* (a checkout of a commit, with its own boot
//! entry). `update status` lists the deployments in boot order, named by the first 12 hex
//! digits of their commit: the first is the one that boots next (primary), a deployment that is
//! primary but not booted yet is `trying` (pending), the others are `good`.
//!
//! The update file is a tar archive of an ostree repository (archive mode) holding one ref. The
//! driver extracts it to a private directory, pulls it into the system repository with
//! `ostree pull-local --remote=REMOTE --gpg-verify --untrusted` — GPG signatures are checked
//! against the keys of REMOTE, the remote of the booted deployment's origin (`ostree remote
//! gpg-import`); ed25519 signatures (`ostree sign`) are not built into Debian's ostree 2022.7 —
//! and deploys it with `ostree admin deploy --os=OS REMOTE:REF`.
//!
//! The booted deployment is what `ostree admin status` marks; in a sysroot that is not the
//! running system (`--root`, image builders, tests) it is the one the `ostree=` kernel argument in
//! `<root>/proc/cmdline` resolves to, as ostree-prepare-root resolves it at boot.

use std::path::{Path, PathBuf};
use std::time::Duration;

use update_core::config::Verify;
use update_core::driver::{
    BundleInfo, Capability, Context, Driver, InstallOutcome, InstallRequest, SlotChange, SlotState, SlotStatus, Status,
};
use update_core::{Error, Paths, Result};

use crate::adapter::{Adapter, Factory, adapter_driver_basics};
use crate::bootenv::cmdline_value;
use crate::settings::{BootRetry, SettingSupport, UnsignedInstalls};
use crate::tool::{Failure, FailureWords, Tool, ToolSpec};

/// The driver's name.
pub const NAME: &str = "ostree";

/// How to run ostree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OstreeOptions {
    /// The `ostree` program.
    pub tool: ToolSpec,
    /// `tar`, to unpack update files.
    pub tar: ToolSpec,
    /// The command that reboots the device.
    pub reboot_command: Vec<String>,
}

impl Default for OstreeOptions {
    fn default() -> Self {
        Self { tool: ToolSpec::new("ostree"), tar: ToolSpec::new("tar"), reboot_command: vec!["reboot".into()] }
    }
}

/// The ostree adapter: what is particular to ostree behind the generic [`Factory`].
#[derive(Debug, Clone, Copy)]
pub struct Ostree;

/// The factory registered with libupdate.
pub type OstreeFactory = Factory<Ostree>;

/// The static instance for driver tables.
pub static FACTORY: OstreeFactory = Factory::SYSTEM;

impl Adapter for Ostree {
    const NAME: &'static str = NAME;
    const INSTALL_HINT: &'static str = "ostree (apt install ostree)";
    const CAPABILITIES: &'static [Capability] =
        &[Capability::FileTree, Capability::Rollback, Capability::Signatures, Capability::Inspect];
    const SETTINGS: SettingSupport = SettingSupport {
        unsigned: UnsignedInstalls::Supported,
        boot_retry: BootRetry::None(
            "ostree 2022.7 has no boot counting (Debian ships no greenboot); a deployment is final once it is the default",
        ),
        keys: "the GPG keys of the ostree remote (ostree remote gpg-import)",
    };
    // ostree's failure messages, as words. A full disk or a permission problem is never a bad update.
    const FAILURES: FailureWords = FailureWords {
        other: &["no space left", "permission denied", "min-free-space-percent", "min-free-space-size"],
        verification: &[
            "signature",
            "gpg",
            "writing content object",
            "need more input",
            "zlib",
            "corrupted",
            "checksum",
            "invalid",
            "not a repo",
            "no such metadata object",
        ],
        refused: &[],
    };
    type Options = OstreeOptions;

    fn tool(options: &OstreeOptions) -> &ToolSpec {
        &options.tool
    }
    fn config_path(_options: &OstreeOptions, paths: &Paths) -> std::result::Result<PathBuf, String> {
        let repo = paths.resolve("/ostree/repo");
        if repo.join("config").is_file() && paths.resolve("/ostree/deploy").is_dir() {
            Ok(repo)
        } else {
            Err(format!(
                "ostree is installed but not configured: {} is not an ostree sysroot (no /ostree/repo)",
                paths.root().display()
            ))
        }
    }
    fn open(options: OstreeOptions, tool: Tool, repo: PathBuf, ctx: &Context<'_>) -> Result<Box<dyn Driver>> {
        let tar = options.tar.tool(NAME).ok_or_else(|| Error::Other("tar not found in PATH".into()))?;
        let driver = OstreeDriver { tool, tar, repo, paths: ctx.paths.clone(), reboot_command: options.reboot_command };
        driver.deployments()?;
        Ok(Box::new(driver))
    }
}

/// One deployment as `ostree admin status` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// The stateroot (`--os`).
    pub osname: String,
    /// The commit.
    pub checksum: String,
    /// The deployment serial.
    pub serial: u32,
    /// Marked `*` (booted) by ostree.
    pub booted: bool,
    /// `(pending)`, `(rollback)`, `(staged)` … as printed.
    pub tags: Vec<String>,
    /// `Version:`.
    pub version: Option<String>,
    /// `origin refspec:`.
    pub origin: Option<String>,
}

impl Deployment {
    /// The name shown as a slot: the first 12 hex digits of the commit.
    #[must_use]
    pub fn slot_name(&self) -> String {
        self.checksum.chars().take(12).collect()
    }

    /// `CHECKSUM.SERIAL`, the directory name under `ostree/deploy/OS/deploy/`.
    #[must_use]
    pub fn dir_name(&self) -> String {
        format!("{}.{}", self.checksum, self.serial)
    }
}

/// Parses `ostree admin status` (2022.7's text format).
#[must_use]
pub fn parse_status(text: &str) -> Vec<Deployment> {
    let mut out: Vec<Deployment> = Vec::new();
    for line in text.lines() {
        let is_head = (line.starts_with("* ") || line.starts_with("  ")) && !line.starts_with("    ");
        if is_head {
            let booted = line.starts_with('*');
            let mut words = line[2..].split_whitespace();
            let (Some(osname), Some(id)) = (words.next(), words.next()) else { continue };
            let Some((checksum, serial)) = id.rsplit_once('.') else { continue };
            if checksum.len() != 64 || !checksum.bytes().all(|b| b.is_ascii_hexdigit()) {
                continue;
            }
            out.push(Deployment {
                osname: osname.into(),
                checksum: checksum.into(),
                serial: serial.parse().unwrap_or(0),
                booted,
                tags: words.map(|w| w.trim_matches(['(', ')']).to_owned()).collect(),
                version: None,
                origin: None,
            });
        } else if let Some(d) = out.last_mut() {
            let l = line.trim();
            if let Some(v) = l.strip_prefix("Version:") {
                d.version = Some(v.trim().to_owned());
            } else if let Some(o) = l.strip_prefix("origin refspec:") {
                d.origin = Some(o.trim().to_owned());
            }
        }
    }
    out
}

/// Classifies ostree's failure messages.
#[must_use]
pub fn classify(text: &str) -> Failure {
    Ostree::FAILURES.classify(text)
}

/// The ostree driver.
#[derive(Debug, Clone)]
pub struct OstreeDriver {
    tool: Tool,
    tar: Tool,
    repo: PathBuf,
    paths: Paths,
    reboot_command: Vec<String>,
}

/// An update file unpacked into a private directory (removed on drop).
struct Unpacked {
    dir: PathBuf,
    refname: String,
    checksum: String,
    version: Option<String>,
}

impl Drop for Unpacked {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl OstreeDriver {
    fn is_running_system(&self) -> bool {
        self.paths.root() == Path::new("/")
    }

    fn admin_args(&self, sub: &str) -> Vec<String> {
        let mut a = vec!["admin".to_owned(), sub.to_owned()];
        if !self.is_running_system() {
            a.push(format!("--sysroot={}", self.paths.root().display()));
        }
        a
    }

    fn repo_arg(&self) -> String {
        format!("--repo={}", self.repo.display())
    }

    /// The deployments in boot order, with the booted one marked.
    ///
    /// # Errors
    /// ostree's error.
    pub fn deployments(&self) -> Result<Vec<Deployment>> {
        let out = self.tool.run_ok("admin status", self.admin_args("status"), &classify)?;
        let mut list = parse_status(&out.stdout);
        if !list.iter().any(|d| d.booted)
            && let Some(dir) = self.booted_from_cmdline()?
        {
            for d in &mut list {
                d.booted = d.dir_name() == dir;
            }
        }
        Ok(list)
    }

    /// The deployment directory the `ostree=` kernel argument resolves to.
    fn booted_from_cmdline(&self) -> Result<Option<String>> {
        let cmdline = self.paths.kernel_cmdline();
        if !cmdline.exists() || self.is_running_system() {
            return Ok(None);
        }
        let Some(arg) = cmdline_value(&cmdline, "ostree")? else { return Ok(None) };
        let Ok(target) = std::fs::canonicalize(self.paths.resolve(&arg)) else { return Ok(None) };
        Ok(target.file_name().map(|n| n.to_string_lossy().into_owned()))
    }

    fn unpack(&self, bundle: &Path) -> Result<Unpacked> {
        static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("update-ostree-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
        let mut u = Unpacked { dir, refname: String::new(), checksum: String::new(), version: None };
        let not_update = |why: String| Error::verification(bundle.display().to_string(), why);
        let out = self.tar.run([
            "-xf".as_ref(),
            bundle.as_os_str(),
            "-C".as_ref(),
            u.dir.as_os_str(),
            "--no-same-owner".as_ref(),
        ])?;
        if !out.success() {
            return Err(not_update(format!("not a tar archive of an ostree repository: {}", out.detail())));
        }
        let repo = format!("--repo={}", u.dir.display());
        let refs = self.tool.run_ok("refs", [repo.as_str(), "refs"], &|_| Failure::Verification)?;
        let refs: Vec<&str> = refs.stdout.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        let [refname] = refs.as_slice() else {
            return Err(not_update(format!("the update must hold exactly one ref, it holds {}", refs.len())));
        };
        u.refname = (*refname).to_owned();
        let rev = self.tool.run_ok("rev-parse", [repo.as_str(), "rev-parse", refname], &|_| Failure::Verification)?;
        u.checksum = rev.stdout.trim().to_owned();
        let v = self.tool.run([repo.as_str(), "show", "--print-metadata-key=version", refname])?;
        u.version = v.success().then(|| v.stdout.trim().trim_matches('\'').to_owned());
        Ok(u)
    }

    /// The remote and stateroot updates are pulled for: those of the booted (or primary) deployment.
    fn origin(&self, list: &[Deployment]) -> Result<(Option<String>, String)> {
        let d = list.iter().find(|d| d.booted).or_else(|| list.first()).ok_or_else(|| {
            Error::Refused("the sysroot has no deployment yet; deploy one with ostree admin deploy".into())
        })?;
        let remote = d.origin.as_deref().and_then(|o| o.split_once(':')).map(|(r, _)| r.to_owned());
        Ok((remote, d.osname.clone()))
    }

    fn pull_args(&self, remote: Option<&str>, verify: Verify, src: &Path) -> Result<Vec<String>> {
        let mut a = vec![self.repo_arg(), "pull-local".into(), "--untrusted".into()];
        match (remote, verify) {
            (Some(r), Verify::Signatures) => a.extend([format!("--remote={r}"), "--gpg-verify".into()]),
            (Some(r), Verify::IntegrityOnly) => a.push(format!("--remote={r}")),
            (None, Verify::Signatures) => {
                return Err(Error::Refused(
                    "the booted deployment's origin names no remote, so there are no keys to check signatures against"
                        .into(),
                ));
            }
            (None, Verify::IntegrityOnly) => {}
        }
        a.push(src.display().to_string());
        Ok(a)
    }

    fn info(u: &Unpacked, bundle: &Path) -> Result<BundleInfo> {
        let version = u
            .version
            .as_deref()
            .ok_or_else(|| Error::verification(bundle.display().to_string(), "the commit has no version metadata"))?;
        let version = update_core::parse_version(version)
            .map_err(|e| Error::verification(bundle.display().to_string(), e.to_string()))?;
        let size = std::fs::metadata(bundle).map(|m| m.len()).unwrap_or(0);
        Ok(BundleInfo { version, compatible: String::new(), size, images: vec![u.refname.clone()] })
    }
}

impl Driver for OstreeDriver {
    adapter_driver_basics!(Ostree);

    fn status(&mut self, _ctx: &Context<'_>) -> Result<Status> {
        let list = self.deployments()?;
        let booted = list.iter().find(|d| d.booted);
        let slots = list
            .iter()
            .enumerate()
            .map(|(i, d)| SlotStatus {
                name: d.slot_name(),
                state: if i == 0 && !d.booted { SlotState::Trying } else { SlotState::Good },
                version: d.version.as_deref().and_then(|v| update_core::parse_version(v).ok()),
                booted: d.booted,
                primary: i == 0,
                tries_left: None,
                devices: vec![format!("{}=/ostree/deploy/{}/deploy/{}", d.osname, d.osname, d.dir_name())],
            })
            .collect();
        Ok(Status {
            driver: NAME.into(),
            compatible: None,
            version: booted.and_then(|d| d.version.as_deref()).and_then(|v| update_core::parse_version(v).ok()),
            booted: booted.map(Deployment::slot_name),
            primary: list.first().map(Deployment::slot_name),
            slots,
            fallback: None,
            components: Vec::new(),
        })
    }

    fn inspect(&mut self, _ctx: &Context<'_>, request: &InstallRequest) -> Result<BundleInfo> {
        // verify, signature-threshold and boot-retry-limit are checked by install (libupdate reads
        // any NotSupported from inspect as "this driver cannot inspect").
        let list = self.deployments()?;
        let (remote, _) = self.origin(&list)?;
        let u = self.unpack(&request.bundle)?;
        // Verify the commit's signature by pulling only its metadata, by checksum (no ref moves).
        let mut args = self.pull_args(remote.as_deref(), request.verify, &u.dir)?;
        args.insert(3, "--commit-metadata-only".into());
        args.push(u.checksum.clone());
        self.tool.with_timeout(Duration::from_secs(600)).run_ok("pull-local", &args, &classify)?;
        // And every object's checksum, in the unpacked copy.
        let repo = format!("--repo={}", u.dir.display());
        self.tool
            .with_timeout(Duration::from_secs(600))
            .run_ok("fsck", [repo.as_str(), "fsck", "--quiet"], &|_| Failure::Verification)?;
        Self::info(&u, &request.bundle)
    }

    fn install(&mut self, ctx: &Context<'_>, request: &InstallRequest) -> Result<InstallOutcome> {
        Ostree::SETTINGS.check_ctx(NAME, ctx, request.verify)?;
        if request.verify == Verify::IntegrityOnly {
            ctx.events
                .warn("ostree: pulling without GPG verification (verify false); object checksums are still checked");
        }
        let list = self.deployments()?;
        let (remote, osname) = self.origin(&list)?;
        let u = self.unpack(&request.bundle)?;
        let info = Self::info(&u, &request.bundle)?;
        let mut args = self.pull_args(remote.as_deref(), request.verify, &u.dir)?;
        args.push(u.refname.clone());
        ctx.progress.start("ostree pull-local", 0);
        let pulled = self.tool.with_timeout(Duration::from_secs(3600)).run_ok("pull-local", &args, &classify);
        ctx.progress.finish();
        pulled?;
        let refspec = remote.map_or_else(|| u.refname.clone(), |r| format!("{r}:{}", u.refname));
        let mut deploy = self.admin_args("deploy");
        deploy.push(format!("--os={osname}"));
        if !self.is_running_system() {
            // ostree cannot see which deployment runs here; keep them all rather than let it prune the running one.
            deploy.push("--retain".into());
        }
        deploy.push(refspec);
        self.tool.with_timeout(Duration::from_secs(3600)).run_ok("admin deploy", &deploy, &|t| match classify(t) {
            Failure::Verification => Failure::Other,
            f => f,
        })?;
        let after = self.deployments()?;
        let new = after.first().ok_or_else(|| Error::Other("ostree admin deploy left no deployment".into()))?;
        Ok(InstallOutcome { version: info.version, slot: new.slot_name(), reboot_required: !new.booted })
    }

    fn mark_good(&mut self, _ctx: &Context<'_>) -> Result<SlotChange> {
        Err(Error::NotSupported {
            driver: NAME.into(),
            operation: "mark-good".into(),
            hint: Some("ostree has no trial boots: a deployment is final once it is the default".into()),
        })
    }

    fn rollback(&mut self, _ctx: &Context<'_>) -> Result<SlotChange> {
        let list = self.deployments()?;
        let booted = list.iter().position(|d| d.booted);
        let primary = list.first().ok_or_else(|| Error::Refused("no deployments".into()))?;
        if booted != Some(0) {
            // A pending deployment: remove it, and what runs now boots again.
            let back = booted.map(|i| list[i].clone()).or_else(|| list.get(1).cloned());
            let mut args = self.admin_args("undeploy");
            args.push("0".into());
            self.tool.run_ok("admin undeploy", &args, &classify)?;
            let back = back.ok_or_else(|| Error::Refused("no other deployment to boot".into()))?;
            return Ok(SlotChange {
                slot: back.slot_name(),
                message: format!(
                    "pending deployment {} removed; {}{} boots next",
                    primary.slot_name(),
                    back.slot_name(),
                    back.version.map(|v| format!(" ({v})")).unwrap_or_default()
                ),
            });
        }
        let previous = list
            .iter()
            .skip(1)
            .find(|d| d.checksum != primary.checksum)
            .ok_or_else(|| Error::Refused("there is no previous deployment to roll back to".into()))?;
        let mut args = self.admin_args("deploy");
        args.extend([format!("--os={}", previous.osname), "--retain".into(), previous.checksum.clone()]);
        self.tool.with_timeout(Duration::from_secs(3600)).run_ok("admin deploy", &args, &classify)?;
        Ok(SlotChange {
            slot: previous.slot_name(),
            message: format!(
                "{}{} redeployed as the default; reboot to run it",
                previous.slot_name(),
                previous.version.clone().map(|v| format!(" ({v})")).unwrap_or_default()
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Printed by ostree 2022.7 (Debian 12) for a sysroot with a pending deployment.
    const STATUS: &str = "  os fac88e1fad96c4c30299911d7fbe3725bfd00d9816260578e68be832455457e0.0
    Version: 2.0.0
    origin refspec: os:os/stable
    GPG: Signature made Tue Nov 24 20:15:53 2026 using EdDSA key ID E852E5A6BACD586E
    GPG: Good signature from \"snakeoil <snakeoil@example.invalid>\"
* os d00494f46ecfea3e123b6983851618e2a66df5e41a5b25c3740d58aa2e67f740.0 (rollback)
    Version: 1.0.0
    origin refspec: os:os/stable
";

    #[test]
    fn parses_admin_status() {
        let d = parse_status(STATUS);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].slot_name(), "fac88e1fad96");
        assert_eq!(d[0].version.as_deref(), Some("2.0.0"));
        assert!(!d[0].booted);
        assert!(d[1].booted);
        assert_eq!(d[1].tags, ["rollback"]);
        assert_eq!(d[1].origin.as_deref(), Some("os:os/stable"));
        assert_eq!(d[1].dir_name(), "d00494f46ecfea3e123b6983851618e2a66df5e41a5b25c3740d58aa2e67f740.0");
        assert!(parse_status("No deployments.\n").is_empty());
    }

    #[test]
    fn failures_are_classified() {
        // Printed by ostree 2022.7 (Debian 12), LC_ALL=C.
        for (text, want) in [
            // `pull-local --gpg-verify` of an unsigned commit.
            (
                "error: Commit 4d00031479a7fc8c9faee2a193b6a129d12962b02dc7baf0180f3596bebf3222: GPG verification \
                 enabled, but no signatures found (use gpg-verify=false in remote config to disable)",
                Failure::Verification,
            ),
            // `pull-local` and `fsck` of a repository with a changed object.
            (
                "error: Writing content object: Corrupted file object; checksum \
                 expected='fbf7cf77a1b50d9f074cb6e9ef6ddb65b6532ea89e4f4ca1b07a05b4cd1be259' \
                 actual='3dde384c5e318e9924dd9d0d9a955dd5a39618be61211a7ba4507fc4b3e2621b'",
                Failure::Verification,
            ),
            ("error: Commit 6e3c: Signature made … Can't check signature: public key not found", Failure::Verification),
            // Not a bad update: a directory that is not a repository, a full disk (the repository's
            // free-space reserve, then the disk itself).
            ("error: opening repo: opendir(objects): No such file or directory", Failure::Other),
            (
                "error: Writing content object: min-free-space-percent '3%' would be exceeded, at least 303.1 kB requested",
                Failure::Other,
            ),
            ("error: Writing content object: fallocate: No space left on device", Failure::Other),
            ("error: Installing kernel: Reading /etc/os-release", Failure::Other),
        ] {
            assert_eq!(classify(text), want, "{text}");
        }
    }
}
