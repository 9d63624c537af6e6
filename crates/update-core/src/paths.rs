//! Every path the tool touches, under one (re-rootable) root.
//!
//! `update --root DIR` (or `UPDATE_ROOT=DIR`) makes every path below relative to `DIR`,
//! including paths named in the config file (slots, boot environment, certificates) and the
//! syslog socket, so tests and demos never touch the host.

use std::path::{Path, PathBuf};

/// The file layout of a device, below its root (`/` on a real device).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    root: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Self::new("/")
    }
}

impl Paths {
    /// A layout rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Maps an absolute device path (as written in the config) to where it is under the root.
    /// Relative paths are taken relative to the root as well. `.` and `..` are resolved by name,
    /// and `..` never climbs above the root (as in the kernel's `/..`), so no configured path
    /// leaves the root.
    #[must_use]
    pub fn resolve(&self, device_path: impl AsRef<Path>) -> PathBuf {
        use std::path::Component;
        let mut out = self.root.clone();
        let mut depth = 0usize;
        for c in device_path.as_ref().components() {
            match c {
                Component::Normal(name) => {
                    out.push(name);
                    depth += 1;
                }
                Component::ParentDir if depth > 0 => {
                    out.pop();
                    depth -= 1;
                }
                Component::ParentDir | Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            }
        }
        out
    }

    /// `/etc/update` — configuration directory.
    #[must_use]
    pub fn config_dir(&self) -> PathBuf {
        self.resolve("/etc/update")
    }

    /// `/etc/update/update.toml` — the configuration file.
    #[must_use]
    pub fn config_file(&self) -> PathBuf {
        self.resolve("/etc/update/update.toml")
    }

    /// `/etc/update/keys.toml` — the keyring.
    #[must_use]
    pub fn keyring_file(&self) -> PathBuf {
        self.resolve("/etc/update/keys.toml")
    }

    /// `/var/lib/update` — persistent state.
    #[must_use]
    pub fn state_dir(&self) -> PathBuf {
        self.resolve("/var/lib/update")
    }

    /// `/var/lib/update/update.toml.last-good` — the last configuration that parsed and validated.
    #[must_use]
    pub fn last_good_config(&self) -> PathBuf {
        self.resolve("/var/lib/update/update.toml.last-good")
    }

    /// `/var/lib/update/lock` — held while an operation that changes slots or boot state runs.
    #[must_use]
    pub fn lock_file(&self) -> PathBuf {
        self.resolve("/var/lib/update/lock")
    }

    /// `/var/lib/update/config.lock` — held while the config or keyring is rewritten.
    #[must_use]
    pub fn config_lock_file(&self) -> PathBuf {
        self.resolve("/var/lib/update/config.lock")
    }

    /// `/var/lib/update/queued.json` — what a check found, for the daemon's next window.
    #[must_use]
    pub fn queue_file(&self) -> PathBuf {
        self.resolve("/var/lib/update/queued.json")
    }

    /// `/var/cache/update` — downloads.
    #[must_use]
    pub fn cache_dir(&self) -> PathBuf {
        self.resolve("/var/cache/update")
    }

    /// `/var/log/update/audit.jsonl` — the append-only audit log.
    #[must_use]
    pub fn audit_log(&self) -> PathBuf {
        self.resolve("/var/log/update/audit.jsonl")
    }

    /// `/dev/log` — the syslog socket.
    #[must_use]
    pub fn syslog_socket(&self) -> PathBuf {
        self.resolve("/dev/log")
    }

    /// `/proc/cmdline` — where the booted slot is read from (`update.slot=A`).
    #[must_use]
    pub fn kernel_cmdline(&self) -> PathBuf {
        self.resolve("/proc/cmdline")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_dot_never_leaves_the_root() {
        let p = Paths::new("/tmp/dev");
        for (given, want) in [
            ("/../../etc/shadow", "/tmp/dev/etc/shadow"),
            ("/var/log/../../../../etc/passwd", "/tmp/dev/etc/passwd"),
            ("../x", "/tmp/dev/x"),
            ("/var/./log/update.log", "/tmp/dev/var/log/update.log"),
            ("/var/lib/../log", "/tmp/dev/var/log"),
            ("/", "/tmp/dev"),
            ("/..", "/tmp/dev"),
        ] {
            assert_eq!(p.resolve(given), Path::new(want), "{given}");
        }
        assert_eq!(Paths::new("/").resolve("/../etc/update"), Path::new("/etc/update"));
    }

    #[test]
    fn paths_are_rerooted() {
        let p = Paths::new("/tmp/dev");
        assert_eq!(p.config_file(), Path::new("/tmp/dev/etc/update/update.toml"));
        assert_eq!(p.resolve("/dev/loop0p1"), Path::new("/tmp/dev/dev/loop0p1"));
        assert_eq!(p.resolve("images/a.img"), Path::new("/tmp/dev/images/a.img"));
        assert_eq!(Paths::default().config_file(), Path::new("/etc/update/update.toml"));
    }
}
