//! Crash-safe file replacement and exclusive locks.
//!
//! [`write_atomic`] writes a temporary file beside the target, fsyncs it, renames it over the
//! target and fsyncs the directory, so a reader (or the next boot) sees either the old or the
//! new content, never a mixture, at any instant of a crash or power cut.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

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

fn temp_path(target: &Path) -> PathBuf {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    target.with_file_name(format!(".{name}.tmp"))
}

/// Atomically replaces `target` with `bytes` (temp file, fsync, rename, fsync directory).
///
/// Callers that may race must hold a lock (see [`Lock`]): the temporary name is fixed so a
/// crashed writer leaves at most one stale temporary, which the next write overwrites.
///
/// # Errors
/// [`Error::Io`] naming the file and the step that failed; the target is then unchanged.
pub fn write_atomic(target: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = target.parent().unwrap_or(Path::new("."));
    ensure_dir(dir)?;
    let tmp = temp_path(target);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| Error::io("create", &tmp, e))?;
    f.write_all(bytes).map_err(|e| Error::io("write", &tmp, e))?;
    f.sync_all().map_err(|e| Error::io("fsync", &tmp, e))?;
    drop(f);
    fs::rename(&tmp, target).map_err(|e| Error::io("rename into place", target, e))?;
    sync_dir(dir)
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
            .open(path)
            .map_err(|e| Error::io("open lock file", path, e))
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
        assert!(!temp_path(&t).exists());
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
