//! Running commands, and the system packages the tests need.

use std::path::PathBuf;
use std::process::Command;

/// Result with a message.
pub type Result<T = ()> = std::result::Result<T, String>;

/// Debian packages the test suite drives for real, with a command each provides.
pub const PACKAGES: &[(&str, &str)] = &[
    ("grub-common", "grub-editenv"),
    ("libubootenv-tool", "fw_printenv"),
    ("e2fsprogs", "mkfs.ext4"),
    ("fdisk", "sfdisk"),
    ("util-linux", "partx"),
    ("zstd", "zstd"),
    ("grub-emu", "grub-emu"),
    ("mtools", "mcopy"),
    ("dosfstools", "mkfs.vfat"),
    ("rauc", "rauc"),
    ("dbus-daemon", "dbus-daemon"),
    // The D-Bus service tests (crates/update-dbus): gdbus as a client; busctl comes with systemd.
    ("libglib2.0-bin", "gdbus"),
    ("systemd", "busctl"),
    ("squashfs-tools", "mksquashfs"),
    ("swupdate", "swupdate"),
    ("cpio", "cpio"),
    ("openssl", "openssl"),
    ("mender-client", "mender"),
    ("mender-artifact", "mender-artifact"),
    ("ostree", "ostree"),
    ("gpg", "gpg"),
    ("gpg-agent", "gpg-agent"),
    ("fwupd", "fwupdmgr"),
    ("strace", "strace"),
    ("postgresql", "pg_ctlcluster"),
    // The dashboard's browser test (update-server): headless Chromium over WebDriver.
    ("chromium", "chromium"),
    ("chromium-driver", "chromedriver"),
    // The C library's tests: a C program, the exported symbols, a ctypes script.
    ("gcc", "gcc"),
    ("binutils", "nm"),
    ("python3", "python3"),
    // The example external driver (examples/drivers/apt) and its rig: apt-get, dpkg-scanpackages.
    ("apt", "apt-get"),
    ("dpkg-dev", "dpkg-scanpackages"),
    // The man page and completion tests (xtask/src/man.rs, xtask/src/docs.rs).
    ("groff-base", "groff"),
    ("man-db", "man"),
    ("mandoc", "mandoc"),
    ("fish", "fish"),
    ("zsh", "zsh"),
];

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask is in the workspace").to_owned()
}

/// Runs a command in the workspace, failing on a non-zero exit.
pub fn run(cmd: &mut Command) -> Result {
    cmd.current_dir(workspace());
    eprintln!("+ {cmd:?}");
    let status = cmd.status().map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("{cmd:?} failed with {status}")) }
}

fn have(tool: &str) -> bool {
    ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"]
        .iter()
        .any(|d| std::path::Path::new(d).join(tool).exists())
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// Installs missing packages with apt-get when running as root.
pub fn ensure_packages() -> Result {
    let missing: Vec<&str> = PACKAGES.iter().filter(|(_, tool)| !have(tool)).map(|(p, _)| *p).collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        return Err(format!(
            "the tests need these Debian packages: {} (run as root, or `sudo apt-get install {}`)",
            missing.join(" "),
            missing.join(" ")
        ));
    }
    run(Command::new("apt-get").args(["update", "-q"]).env("DEBIAN_FRONTEND", "noninteractive"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

/// `cargo xtask test [extra cargo test args]`.
pub fn test(extra: &[String]) -> Result {
    ensure_packages()?;
    run(Command::new(env!("CARGO")).args(["test", "--workspace", "--all-targets"]).args(extra))?;
    run(Command::new(env!("CARGO")).args(["test", "--workspace", "--doc"]))
}

/// `cargo xtask ci`.
pub fn ci() -> Result {
    test(&[])?;
    run(Command::new(env!("CARGO")).args(["fmt", "--all", "--", "--check"]))?;
    run(Command::new(env!("CARGO")).args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    run(Command::new(env!("CARGO")).args(["doc", "--workspace", "--no-deps"]).env("RUSTDOCFLAGS", "-D warnings"))?;
    crate::docs::generate(true)
}
