//! The data directory, opened once and walked with `openat(O_NOFOLLOW)` from its descriptor:
//! no path component is ever followed through a symbolic link, so a link planted in the data
//! directory (`etc -> /`) is refused, never written through. Files are replaced atomically
//! (temporary file with `O_EXCL|O_NOFOLLOW`, `fsync`, `renameat`, `fsync` of the directory).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use update_core::{Error, Result};

use super::RelPath;

/// What is at a path of the data set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Current {
    /// Nothing.
    Absent,
    /// A regular file.
    File {
        /// Its bytes.
        bytes: Vec<u8>,
        /// Its permission bits.
        mode: u32,
        /// Its owner.
        uid: u32,
        /// Its group.
        gid: u32,
    },
}

/// An open data directory.
pub struct DataDir {
    fd: OwnedFd,
    path: PathBuf,
}

const DIR_FLAGS: OFlags = OFlags::DIRECTORY.union(OFlags::NOFOLLOW).union(OFlags::RDONLY).union(OFlags::CLOEXEC);

fn io(op: &'static str, path: &Path, e: Errno) -> Error {
    let source = std::io::Error::from(e);
    if e == Errno::LOOP || e == Errno::NOTDIR {
        Error::io(
            op,
            path,
            std::io::Error::other(format!("{source}: a symbolic link or non-directory on the way, never followed")),
        )
    } else {
        Error::io(op, path, source)
    }
}

impl DataDir {
    /// Opens `path` (a directory that must not itself be a symbolic link).
    ///
    /// # Errors
    /// [`Error::Io`] naming the directory.
    pub fn open(path: &Path) -> Result<Self> {
        let fd = rustix::fs::open(path, DIR_FLAGS, Mode::empty()).map_err(|e| io("open data directory", path, e))?;
        Ok(Self { fd, path: path.to_owned() })
    }

    fn full(&self, rel: &RelPath) -> PathBuf {
        self.path.join(rel.as_str())
    }

    /// The directory holding `rel`, walked without following links; `None` when a directory on
    /// the way is missing and `create` is false. Created directories get mode 0755.
    fn parent(&self, rel: &RelPath, create: bool) -> Result<Option<OwnedFd>> {
        let mut dir = self.fd.as_fd().try_clone_to_owned().map_err(|e| Error::io("open", &self.path, e))?;
        let mut walked = self.path.clone();
        for name in rel.parents() {
            walked.push(name);
            let next = match rustix::fs::openat(&dir, name, DIR_FLAGS, Mode::empty()) {
                Err(Errno::NOENT) if create => {
                    match rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(io("create directory", &walked, e)),
                    }
                    rustix::fs::openat(&dir, name, DIR_FLAGS, Mode::empty())
                }
                Err(Errno::NOENT) => return Ok(None),
                other => other,
            }
            .map_err(|e| io("open directory", &walked, e))?;
            dir = next;
        }
        Ok(Some(dir))
    }

    /// Whether the directory `rel` exists (as a real directory, reached without links).
    ///
    /// # Errors
    /// [`Error::Io`] when something else is in the way.
    pub fn dir_exists(&self, rel: &RelPath) -> Result<bool> {
        let Some(parent) = self.parent(rel, false)? else { return Ok(false) };
        match rustix::fs::statat(&parent, rel.file_name(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => Ok(true),
            Ok(_) => Err(Error::io(
                "use directory",
                self.full(rel),
                std::io::Error::other("it is not a directory (a file or symbolic link is in the way)"),
            )),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(io("inspect", &self.full(rel), e)),
        }
    }

    /// Creates the directory `rel` (its parents must exist) with `mode`.
    ///
    /// # Errors
    /// [`Error::Io`] naming it.
    pub fn create_dir(&self, rel: &RelPath, mode: u32) -> Result<()> {
        let parent = self.parent(rel, true)?.ok_or_else(|| Error::Other("unreachable: created parent".into()))?;
        match rustix::fs::mkdirat(&parent, rel.file_name(), Mode::from_raw_mode(mode & 0o7777)) {
            Ok(()) | Err(Errno::EXIST) => Ok(()),
            Err(e) => Err(io("create directory", &self.full(rel), e)),
        }
    }

    /// Removes the directory `rel` if it is empty (and there).
    ///
    /// # Errors
    /// [`Error::Io`] for errors other than missing or not empty.
    pub fn remove_dir_if_empty(&self, rel: &RelPath) -> Result<()> {
        let Some(parent) = self.parent(rel, false)? else { return Ok(()) };
        match rustix::fs::unlinkat(&parent, rel.file_name(), AtFlags::REMOVEDIR) {
            Ok(()) | Err(Errno::NOENT | Errno::NOTEMPTY | Errno::EXIST) => Ok(()),
            Err(e) => Err(io("remove directory", &self.full(rel), e)),
        }
    }

    /// Reads what is at `rel`: a regular file or nothing; anything else (a symbolic link, a
    /// directory, a device) is an error naming it.
    ///
    /// # Errors
    /// [`Error::Io`] naming the path.
    pub fn read(&self, rel: &RelPath) -> Result<Current> {
        let Some(parent) = self.parent(rel, false)? else { return Ok(Current::Absent) };
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
        let fd = match rustix::fs::openat(&parent, rel.file_name(), flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(Current::Absent),
            Err(e) => return Err(io("read", &self.full(rel), e)),
        };
        let st = rustix::fs::fstat(&fd).map_err(|e| io("inspect", &self.full(rel), e))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(Error::io("read", self.full(rel), std::io::Error::other("it is not a regular file")));
        }
        let mut bytes = Vec::new();
        File::from(fd).read_to_end(&mut bytes).map_err(|e| Error::io("read", self.full(rel), e))?;
        Ok(Current::File { bytes, mode: st.st_mode & 0o7777, uid: st.st_uid, gid: st.st_gid })
    }

    /// Replaces `rel` atomically with `bytes` (mode `mode`, owner `owner` when given), creating
    /// missing parent directories.
    ///
    /// # Errors
    /// [`Error::Io`] naming the path.
    pub fn write(&self, rel: &RelPath, bytes: &[u8], mode: u32, owner: Option<(u32, u32)>) -> Result<()> {
        let full = self.full(rel);
        let parent = self.parent(rel, true)?.ok_or_else(|| Error::Other("unreachable: created parent".into()))?;
        let tmp = format!(".{}.update-tmp", rel.file_name());
        match rustix::fs::unlinkat(&parent, tmp.as_str(), AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => return Err(io("remove leftover temporary file of", &full, e)),
        }
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&parent, tmp.as_str(), flags, Mode::from_raw_mode(0o600))
            .map_err(|e| io("create temporary file for", &full, e))?;
        if let Some((uid, gid)) = owner {
            // The owner of the file this one replaces (or restores).
            rustix::fs::fchown(&fd, Some(rustix::fs::Uid::from_raw(uid)), Some(rustix::fs::Gid::from_raw(gid)))
                .map_err(|e| io("set the owner of", &full, e))?;
        }
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode & 0o7777)).map_err(|e| io("set the mode of", &full, e))?;
        let mut file = File::from(fd);
        file.write_all(bytes).map_err(|e| Error::io("write", &full, e))?;
        file.sync_all().map_err(|e| Error::io("fsync", &full, e))?;
        rustix::fs::renameat(&parent, tmp.as_str(), &parent, rel.file_name())
            .map_err(|e| io("rename into place", &full, e))?;
        rustix::fs::fsync(&parent).map_err(|e| io("fsync the directory of", &full, e))
    }

    /// Removes the file `rel` if it is there (a symbolic link is removed, never followed).
    ///
    /// # Errors
    /// [`Error::Io`] naming the path.
    pub fn remove(&self, rel: &RelPath) -> Result<()> {
        let full = self.full(rel);
        let Some(parent) = self.parent(rel, false)? else { return Ok(()) };
        match rustix::fs::unlinkat(&parent, rel.file_name(), AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => return Err(io("remove", &full, e)),
        }
        rustix::fs::fsync(&parent).map_err(|e| io("fsync the directory of", &full, e))
    }
}
