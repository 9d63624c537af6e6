//! Crash-safe file replacement, exclusive locks, and opening files without following links.
//!
//! [`write_atomic`] writes a uniquely named temporary file (`O_EXCL|O_NOFOLLOW`) beside the
//! target, fsyncs it, renames it over the target and fsyncs the directory, so a reader (or the
//! next boot) sees either the old or the new content, never a mixture, at any instant of a crash
//! or power cut. [`open_append`] and [`open_read`] never follow a symbolic link (logs);
//! [`read_bounded`] caps what is read from a file or standard input.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Creates `dir` and its parents if missing.
///
/// # Errors
/// [`Error::Io`] naming the directory.
pub fn ensure_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))
}

/// fsyncs a directory so a rename or create inside it is durable.
///
/// # Errors
/// [`Error::Io`] naming the directory.
pub fn sync_dir(dir: &Path) -> Result<()> {
    let d = File::open(dir).map_err(|e| Error::io("open directory", dir, e))?;
    d.sync_all().map_err(|e| Error::io("fsync directory", dir, e))
}

/// `O_NOFOLLOW`, for [`OpenOptionsExt::custom_flags`]: the last path component must not be a
/// symbolic link (the open fails with `ELOOP`).
fn no_follow() -> i32 {
    rustix::fs::OFlags::NOFOLLOW.bits().cast_signed()
}

/// Maps `ELOOP` from an `O_NOFOLLOW` open to an error that says what happened.
fn open_error(op: &'static str, path: &Path, e: std::io::Error) -> Error {
    if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
        Error::io(op, path, std::io::Error::other("it is a symbolic link, and this file is never opened through one"))
    } else {
        Error::io(op, path, e)
    }
}

/// Refuses anything but a regular file (a FIFO or device planted at a log path).
fn regular(file: File, op: &'static str, path: &Path) -> Result<File> {
    let meta = file.metadata().map_err(|e| Error::io(op, path, e))?;
    if meta.is_file() { Ok(file) } else { Err(Error::io(op, path, std::io::Error::other("it is not a regular file"))) }
}

/// Opens (creating with `mode` if missing) a regular file for reading and appending, without
/// following a symbolic link at `path` (`O_NOFOLLOW`): the audit log and the log file.
///
/// # Errors
/// [`Error::Io`] naming `path`, also when it is a symbolic link or not a regular file.
pub fn open_append(path: &Path, mode: u32, op: &'static str) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(mode)
        .custom_flags(no_follow())
        .open(path)
        .map_err(|e| open_error(op, path, e))?;
    regular(file, op, path)
}

/// Opens the log file (`log = "PATH"`) for appending like [`open_append`], without following a
/// symbolic link, but a character device is a log target too: the console, a serial port,
/// `/dev/kmsg` on a device without a writable log partition. A FIFO, socket, directory or
/// block device is refused.
///
/// # Errors
/// [`Error::Io`] naming `path`, also when it is a symbolic link or neither a regular file nor a
/// character device.
pub fn open_log(path: &Path, mode: u32, op: &'static str) -> Result<File> {
    use std::os::unix::fs::FileTypeExt;
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(mode)
        .custom_flags(no_follow())
        .open(path)
        .map_err(|e| open_error(op, path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(op, path, e))?;
    if meta.is_file() || meta.file_type().is_char_device() {
        Ok(file)
    } else {
        Err(Error::io(op, path, std::io::Error::other("it is neither a regular file nor a character device")))
    }
}

/// Opens a regular file for reading without following a symbolic link at `path`; `None` when it
/// does not exist.
///
/// # Errors
/// [`Error::Io`] naming `path`, also when it is a symbolic link or not a regular file.
pub fn open_read(path: &Path, op: &'static str) -> Result<Option<File>> {
    match OpenOptions::new().read(true).custom_flags(no_follow()).open(path) {
        Ok(file) => regular(file, op, path).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(open_error(op, path, e)),
    }
}

/// Reads at most `max` bytes from `reader`; more is an error naming `what` (a key given as
/// `@FILE` or on standard input, a config file that is really a device).
///
/// # Errors
/// [`Error::Io`] when reading fails; [`Error::InvalidValue`] when there are more than `max` bytes.
pub fn read_bounded(reader: impl std::io::Read, max: usize, what: &str) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    reader.take(limit).read_to_end(&mut buf).map_err(|e| Error::io("read", what, e))?;
    if buf.len() > max {
        return Err(Error::InvalidValue {
            what: what.to_owned(),
            value: format!("more than {max} bytes"),
            reason: format!("at most {max} bytes are read"),
        });
    }
    Ok(buf)
}

/// How many symbolic links [`write_atomic`] follows from the target to the real file.
const MAX_LINKS: usize = 8;

/// Where [`write_atomic`] really writes: `target`, or, when `target` is a symbolic link that
/// only its directory's owner could have made (the read-only-rootfs pattern,
/// `/etc/update/update.toml -> /data/update/update.toml`), the file it points to.
///
/// A link is followed only when it is owned by the owner of its directory and that directory
/// is not writable by group or others; otherwise someone else may have planted it and the write
/// is refused. The final file must be a regular file or not exist yet.
fn write_destination(target: &Path) -> Result<PathBuf> {
    let mut path = target.to_owned();
    for _ in 0..=MAX_LINKS {
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(path),
            Err(e) => return Err(Error::io("inspect", &path, e)),
        };
        if meta.is_file() {
            return Ok(path);
        }
        if !meta.file_type().is_symlink() {
            return Err(Error::io("replace", &path, std::io::Error::other("it is not a regular file")));
        }
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let dir_meta = fs::metadata(dir).map_err(|e| Error::io("inspect directory", dir, e))?;
        if meta.uid() != dir_meta.uid() || dir_meta.mode() & 0o022 != 0 {
            return Err(Error::io(
                "write through the symbolic link",
                &path,
                std::io::Error::other(
                    "the link is not owned by its directory's owner, or the directory is writable by others: \
                     refusing to follow a link someone else may have planted",
                ),
            ));
        }
        let link = fs::read_link(&path).map_err(|e| Error::io("read symbolic link", &path, e))?;
        path = dir.join(link);
    }
    Err(Error::io("write through the symbolic link", target, std::io::Error::other("too many levels of links")))
}

/// Creates a fresh temporary file beside `dest`: a unique name opened with
/// `O_CREAT|O_EXCL|O_NOFOLLOW`, so neither a stale file nor a link planted at a guessed name is
/// ever opened.
fn create_temp(dest: &Path, mode: u32) -> Result<(PathBuf, File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let mut last = None;
    for _ in 0..16 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dest.with_file_name(format!(".{name}.{}.{nanos:x}.{n}.tmp", std::process::id()));
        match OpenOptions::new().write(true).create_new(true).mode(mode).custom_flags(no_follow()).open(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some((tmp, e)),
            Err(e) => return Err(open_error("create", &tmp, e)),
        }
    }
    let (tmp, e) = last.unwrap_or_else(|| (dest.to_owned(), std::io::Error::other("no temporary name")));
    Err(Error::io("create", tmp, e))
}

/// Atomically replaces `target` with `bytes` (temp file, fsync, rename, fsync directory).
///
/// The temporary file has a unique name and is created with `O_EXCL|O_NOFOLLOW`. When `target`
/// is a symbolic link its owner made (see the rules in docs/reference/config.md), the file it
/// points to is replaced in its own directory and the link stays; a link anyone else could
/// have planted is refused.
///
/// # Errors
/// [`Error::Io`] naming the file and the step that failed; the target is then unchanged.
pub fn write_atomic(target: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = target.parent().unwrap_or(Path::new("."));
    ensure_dir(dir)?;
    let dest = write_destination(target)?;
    let dest_dir = dest.parent().unwrap_or(Path::new("."));
    let (tmp, mut f) = create_temp(&dest, mode)?;
    let written = f
        .write_all(bytes)
        .map_err(|e| Error::io("write", &tmp, e))
        .and_then(|()| f.sync_all().map_err(|e| Error::io("fsync", &tmp, e)))
        .and_then(|()| fs::rename(&tmp, &dest).map_err(|e| Error::io("rename into place", &dest, e)));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    remove_stale_temps(&dest);
    sync_dir(dest_dir)
}

/// Whether process `pid` is running (a zombie, killed but not yet reaped, is not).
fn process_alive(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z' | 'X') | None)
}

/// Removes temporaries of `dest` left by writers that were killed (their process is gone):
/// `.NAME.<pid>.<nonce>.<n>.tmp`. Best effort; `unlink` never follows a link.
fn remove_stale_temps(dest: &Path) {
    let (Some(dir), Some(name)) = (dest.parent(), dest.file_name()) else { return };
    let prefix = format!(".{}.", name.to_string_lossy());
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let file = file.to_string_lossy();
        let Some(pid) = file
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".tmp"))
            .and_then(|rest| rest.split('.').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !process_alive(pid) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// An exclusive advisory lock (`flock`) on a file, released on drop.
#[derive(Debug)]
pub struct Lock {
    _file: File,
    path: PathBuf,
}

impl Lock {
    /// Takes the lock without waiting.
    ///
    /// # Errors
    /// [`Error::Busy`] when another process holds it; [`Error::Io`] when the file cannot be opened.
    pub fn try_acquire(path: &Path) -> Result<Self> {
        let file = Self::open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file, path: path.to_owned() }),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::Busy { path: path.to_owned() }),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io("lock", path, e)),
        }
    }

    /// Takes the lock, retrying for up to `wait` before reporting [`Error::Busy`]. A short wait
    /// absorbs a lock that lingers for a moment after its holder is done (a child process forked
    /// while the lock was open keeps the open file description until it calls exec).
    ///
    /// # Errors
    /// [`Error::Busy`] when still held after `wait`; [`Error::Io`] when the file cannot be opened.
    pub fn acquire_within(path: &Path, wait: std::time::Duration) -> Result<Self> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            match Self::try_acquire(path) {
                Err(Error::Busy { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => return other,
            }
        }
    }

    /// Takes the lock, waiting for another holder to release it.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be opened or locked.
    pub fn acquire(path: &Path) -> Result<Self> {
        let file = Self::open(path)?;
        file.lock().map_err(|e| Error::io("lock", path, e))?;
        Ok(Self { _file: file, path: path.to_owned() })
    }

    fn open(path: &Path) -> Result<File> {
        if let Some(dir) = path.parent() {
            ensure_dir(dir)?;
        }
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(no_follow())
            .open(path)
            .map_err(|e| open_error("open lock file", path, e))
    }

    /// The lock file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("sub/f.toml");
        write_atomic(&t, b"one", 0o644).unwrap();
        write_atomic(&t, b"two", 0o644).unwrap();
        assert_eq!(fs::read(&t).unwrap(), b"two");
        assert_eq!(fs::read_dir(t.parent().unwrap()).unwrap().count(), 1, "a temporary file is left");
    }

    #[test]
    fn a_legitimate_symlink_is_written_through_atomically() {
        use std::os::unix::fs::symlink;
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("data")).unwrap();
        fs::create_dir(d.path().join("etc")).unwrap();
        let real = d.path().join("data/update.toml");
        fs::write(&real, "old").unwrap();
        for (link, points_to) in
            [("etc/abs.toml", real.clone()), ("etc/rel.toml", PathBuf::from("../data/update.toml"))]
        {
            let link = d.path().join(link);
            symlink(&points_to, &link).unwrap();
            write_atomic(&link, link.to_string_lossy().as_bytes(), 0o644).unwrap();
            assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link stays a link");
            assert_eq!(fs::read_to_string(&real).unwrap(), link.to_string_lossy());
        }
        // A dangling link made by the owner creates its target (first write on a fresh /data).
        let fresh = d.path().join("etc/fresh.toml");
        symlink(d.path().join("data/fresh.toml"), &fresh).unwrap();
        write_atomic(&fresh, b"new", 0o644).unwrap();
        assert_eq!(fs::read(d.path().join("data/fresh.toml")).unwrap(), b"new");
        assert_eq!(fs::read_dir(d.path().join("data")).unwrap().count(), 2, "no temporary file is left");
    }

    #[test]
    fn a_planted_symlink_is_never_followed() {
        use std::os::unix::fs::{PermissionsExt, lchown, symlink};
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        // In a directory others can write.
        let open_dir = d.path().join("open");
        fs::create_dir(&open_dir).unwrap();
        fs::set_permissions(&open_dir, fs::Permissions::from_mode(0o1777)).unwrap();
        symlink(&victim, open_dir.join("update.toml")).unwrap();
        let e = write_atomic(&open_dir.join("update.toml"), b"evil", 0o644).unwrap_err().to_string();
        assert!(e.contains("planted"), "{e}");
        // Owned by someone other than the directory's owner.
        let dir = d.path().join("etc");
        fs::create_dir(&dir).unwrap();
        symlink(&victim, dir.join("update.toml")).unwrap();
        lchown(dir.join("update.toml"), Some(4321), Some(4321)).unwrap();
        assert!(write_atomic(&dir.join("update.toml"), b"evil", 0o644).is_err());
        // Pointing at something that is not a regular file.
        for (name, to) in [("dev.toml", Path::new("/dev/null")), ("dir.toml", d.path())] {
            symlink(to, dir.join(name)).unwrap();
            assert!(write_atomic(&dir.join(name), b"evil", 0o644).is_err(), "{name}");
        }
        // A loop.
        symlink(dir.join("loop-b"), dir.join("loop-a")).unwrap();
        symlink(dir.join("loop-a"), dir.join("loop-b")).unwrap();
        assert!(write_atomic(&dir.join("loop-a"), b"evil", 0o644).is_err());
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    }

    #[test]
    fn a_link_planted_at_the_old_temporary_name_is_not_followed() {
        use std::os::unix::fs::symlink;
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        let t = d.path().join("keys.toml");
        symlink(&victim, d.path().join(".keys.toml.tmp")).unwrap();
        fs::write(d.path().join(".keys.toml.1.tmp"), "stale").unwrap();
        write_atomic(&t, b"keys", 0o600).unwrap();
        assert_eq!(fs::read(&t).unwrap(), b"keys");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        // create_temp never opens an existing name.
        let (tmp, _f) = create_temp(&t, 0o600).unwrap();
        fs::remove_file(&tmp).unwrap();
        symlink(&victim, &tmp).unwrap();
        let (tmp2, _f) = create_temp(&t, 0o600).unwrap();
        assert_ne!(tmp, tmp2);
    }

    #[test]
    fn temporaries_of_killed_writers_are_removed() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("update.toml");
        // pid_max is at most 2^22: these processes cannot exist.
        for stale in [".update.toml.4999999.1a2b.0.tmp", ".update.toml.4999998.ff.7.tmp"] {
            fs::write(d.path().join(stale), "half").unwrap();
        }
        let live = format!(".update.toml.{}.1.0.tmp", std::process::id());
        let others = ["other.tmp", ".keys.toml.4999999.1.0.tmp", ".update.toml.notapid.1.0.tmp"];
        for keep in others.iter().copied().chain([live.as_str()]) {
            fs::write(d.path().join(keep), "keep").unwrap();
        }
        write_atomic(&t, b"new", 0o644).unwrap();
        let mut left: Vec<String> =
            fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        let mut want: Vec<String> =
            others.iter().map(|s| (*s).to_owned()).chain([live, "update.toml".into()]).collect();
        want.sort();
        assert_eq!(left, want);
    }

    #[test]
    fn a_log_may_be_a_character_device_but_the_audit_log_may_not() {
        let dev_null = Path::new("/dev/null");
        assert!(open_log(dev_null, 0o640, "open log file").is_ok());
        assert!(open_append(dev_null, 0o640, "open audit log").unwrap_err().to_string().contains("not a regular file"));
        let d = tempfile::tempdir().unwrap();
        let e = open_log(d.path(), 0o640, "open log file").unwrap_err();
        assert!(e.to_string().contains(&d.path().display().to_string()), "{e}");
        let link = d.path().join("log");
        std::os::unix::fs::symlink(dev_null, &link).unwrap();
        assert!(open_log(&link, 0o640, "open log file").unwrap_err().to_string().contains("symbolic link"));
        let file = d.path().join("update.log");
        open_log(&file, 0o640, "open log file").unwrap().write_all(b"line\n").unwrap();
        assert_eq!(fs::read(&file).unwrap(), b"line\n");
    }

    #[test]
    fn bounded_reads() {
        assert_eq!(read_bounded(&b"abc"[..], 3, "key").unwrap(), b"abc");
        for n in [4, 4096, 1 << 20] {
            let e = read_bounded(std::io::repeat(b'a').take(n), 3, "key").unwrap_err();
            assert!(e.to_string().contains("at most 3 bytes"), "{e}");
        }
        // An endless source ends at the bound.
        assert!(read_bounded(std::io::repeat(0), 4096, "key").is_err());
    }

    #[test]
    fn second_lock_is_busy() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("lock");
        let held = Lock::try_acquire(&p).unwrap();
        assert!(matches!(Lock::try_acquire(&p), Err(Error::Busy { .. })));
        drop(held);
        Lock::try_acquire(&p).unwrap();
    }
}
