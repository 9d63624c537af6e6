//! Hostile-input-safe extraction of a tar stream into an empty directory.
//!
//! The payload is signed, but a signed archive can still be wrong (a build script that packs
//! `../`, a vendor key used carelessly), so extraction trusts nothing in it:
//!
//! - an entry path must be relative and free of `..` (`.` components are dropped); the empty
//!   path (`./`) is the tree's root itself;
//! - nothing is ever written through a symbolic link: every parent directory of an entry must be a
//!   real directory inside the tree (an earlier symlink entry `etc -> /etc` followed by
//!   `etc/passwd` is refused), and files are created with `O_CREAT|O_EXCL|O_NOFOLLOW`;
//! - a hard link must name a regular file extracted earlier in the same tree;
//! - character and block devices and FIFOs are refused unless the signed option
//!   `allow-devices = true` is set; any other entry type (sockets, unknown types) is refused;
//! - the file bytes of all entries together may not exceed the payload's own size (a header
//!   claiming more is refused before a byte is written), and a truncated archive is an error.
//!
//! Modes (including set-uid bits, applied after the owner), numeric owners, mtimes and extended
//! attributes (`user.*`, `security.*`, from PAX `SCHILY.xattr.*` records) are preserved;
//! directories get theirs after everything inside them was written. Every file is fsynced when
//! written and every directory at the end, so an extracted tree is durable before it is switched
//! to.

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component as PathPart, Path, PathBuf};

use rustix::fs::{AtFlags, CWD, FileType, Mode, Timestamps, XattrFlags};
use rustix::io::Errno;
use update_core::{Error, Result};

/// What extraction may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractOptions {
    /// Whether device nodes and FIFOs are created (the signed option `allow-devices`).
    pub devices: Devices,
    /// The most file bytes all entries together may hold (the payload's size).
    pub max_bytes: u64,
}

/// Whether a tree may contain device nodes and FIFOs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Devices {
    /// Refused (the default).
    Refuse,
    /// Created (`allow-devices = true` in the component's signed options).
    Allow,
}

/// What an extraction wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtractReport {
    /// Entries written (files, directories, links, nodes).
    pub entries: u64,
    /// File bytes written.
    pub bytes: u64,
    /// Extended attributes the file system or our privileges did not accept (`path: name`).
    pub skipped_xattrs: Vec<String>,
}

/// Metadata applied to a directory once everything inside it is written.
struct DirMeta {
    path: PathBuf,
    meta: Meta,
}

struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    /// Seconds and nanoseconds.
    mtime: (i64, i64),
    xattrs: Vec<(String, Vec<u8>)>,
}

/// Extracts the tar stream `payload` into `dest`, an existing empty directory (see the module
/// docs for what is refused). `what` names the component in messages.
///
/// # Errors
/// [`Error::Refused`] naming the entry for anything the module docs refuse, and for a truncated
/// or malformed archive; [`Error::Io`] naming the path for a file system failure. `dest` may then
/// hold part of the tree: the caller empties it before the next attempt.
pub fn extract(payload: &mut dyn Read, dest: &Path, options: &ExtractOptions, what: &str) -> Result<ExtractReport> {
    let mut ex =
        Extraction { dest, options, what, report: ExtractReport::default(), dirs: Vec::new(), implicit: Vec::new() };
    let mut archive = tar::Archive::new(payload);
    let entries = archive.entries().map_err(|e| ex.malformed(&e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| ex.malformed(&e))?;
        // A PAX global header (git archive writes the commit id there) describes no file.
        if entry.header().entry_type().is_pax_global_extensions() {
            continue;
        }
        ex.entry(&mut entry)?;
        ex.report.entries += 1;
    }
    ex.finish()?;
    Ok(ex.report)
}

struct Extraction<'a> {
    dest: &'a Path,
    options: &'a ExtractOptions,
    what: &'a str,
    report: ExtractReport,
    /// Directories whose metadata is applied at the end, and which are fsynced.
    dirs: Vec<DirMeta>,
    /// Parent directories the archive did not list (fsynced only).
    implicit: Vec<PathBuf>,
}

impl Extraction<'_> {
    fn malformed(&self, e: &std::io::Error) -> Error {
        // The tar reader says "failed to read entire block" for a header cut short.
        if e.kind() == std::io::ErrorKind::UnexpectedEof || e.to_string().contains("entire block") {
            Error::Refused(format!("{}: the tar archive is truncated ({e})", self.what))
        } else {
            Error::Refused(format!("{}: the tar archive is malformed: {e}", self.what))
        }
    }

    fn refuse(&self, entry: &Path, reason: &str) -> Error {
        Error::Refused(format!("{}: tar entry {:?}: {reason}", self.what, entry.display().to_string()))
    }

    fn entry(&mut self, entry: &mut tar::Entry<'_, &mut dyn Read>) -> Result<()> {
        let raw = entry.path().map_err(|e| self.malformed(&e))?.into_owned();
        let rel = self.tree_path(&raw)?;
        let header = entry.header();
        let kind = header.entry_type();
        let meta = self.meta(&raw, entry)?;
        let target = self.dest.join(&rel);
        if rel.as_os_str().is_empty() {
            if !kind.is_dir() {
                return Err(self.refuse(&raw, "the tree's root can only be a directory"));
            }
            self.dirs.push(DirMeta { path: target, meta });
            return Ok(());
        }
        self.parents(&raw, &rel)?;
        if kind.is_dir() {
            match fs::symlink_metadata(&target) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err(self.refuse(&raw, "a directory entry where a non-directory was already extracted")),
                Err(_) => fs::create_dir(&target).map_err(|e| Error::io("create directory", &target, e))?,
            }
            self.dirs.push(DirMeta { path: target, meta });
            return Ok(());
        }
        self.make_room(&raw, &target)?;
        if kind.is_file() || kind.is_contiguous() || kind.is_gnu_sparse() {
            self.file(&raw, &target, entry, &meta)
        } else if kind.is_symlink() {
            let link = entry
                .link_name()
                .map_err(|e| self.malformed(&e))?
                .ok_or_else(|| self.refuse(&raw, "a symbolic link without a target"))?;
            std::os::unix::fs::symlink(&link, &target).map_err(|e| Error::io("create symbolic link", &target, e))?;
            self.apply(&target, &meta, false)
        } else if kind.is_hard_link() {
            self.hard_link(&raw, &target, entry)
        } else if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            self.node(&raw, &target, entry, &meta)
        } else {
            Err(self.refuse(&raw, &format!("unsupported entry type {:?}", kind.as_byte() as char)))
        }
    }

    /// The entry's path inside the tree: relative, without `..`.
    fn tree_path(&self, raw: &Path) -> Result<PathBuf> {
        let mut rel = PathBuf::new();
        for part in raw.components() {
            match part {
                PathPart::Normal(name) => rel.push(name),
                PathPart::CurDir => {}
                PathPart::RootDir | PathPart::Prefix(_) => {
                    return Err(self.refuse(raw, "an absolute path (entries must be relative to the tree)"));
                }
                PathPart::ParentDir => return Err(self.refuse(raw, "a '..' component (entries must stay in the tree)")),
            }
        }
        Ok(rel)
    }

    /// Makes sure every parent of `rel` is a real directory inside the tree (creating missing
    /// ones), never a symbolic link.
    fn parents(&mut self, raw: &Path, rel: &Path) -> Result<()> {
        let mut here = self.dest.to_path_buf();
        let parts: Vec<_> = rel.components().collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            here.push(part);
            match fs::symlink_metadata(&here) {
                Ok(m) if m.is_dir() => {}
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(self.refuse(
                        raw,
                        &format!("it leads through the symbolic link {:?} (nothing is written through a link)", part),
                    ));
                }
                Ok(_) => return Err(self.refuse(raw, &format!("its parent {part:?} is not a directory"))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    // Not in the archive: the process's defaults, still fsynced.
                    fs::create_dir(&here).map_err(|e| Error::io("create directory", &here, e))?;
                    self.implicit.push(here.clone());
                }
                Err(e) => return Err(Error::io("inspect", &here, e)),
            }
        }
        Ok(())
    }

    /// A later entry replaces an earlier non-directory (as tar does); a directory stays.
    fn make_room(&self, raw: &Path, target: &Path) -> Result<()> {
        match fs::symlink_metadata(target) {
            Ok(m) if m.is_dir() => {
                Err(self.refuse(raw, "a non-directory entry where a directory was already extracted"))
            }
            // unlink never follows a link.
            Ok(_) => fs::remove_file(target).map_err(|e| Error::io("replace", target, e)),
            Err(_) => Ok(()),
        }
    }

    fn meta(&self, raw: &Path, entry: &mut tar::Entry<'_, &mut dyn Read>) -> Result<Meta> {
        let h = entry.header();
        let number = |v: std::io::Result<u64>, field: &str| -> Result<u64> {
            v.map_err(|e| self.refuse(raw, &format!("unreadable {field}: {e}")))
        };
        let id = |v: u64, field: &str| -> Result<u32> {
            u32::try_from(v).map_err(|_| self.refuse(raw, &format!("{field} {v} is out of range")))
        };
        let mode = u32::try_from(number(h.mode().map(u64::from), "mode")? & 0o7777).unwrap_or(0o644);
        let uid = id(number(h.uid(), "owner")?, "owner")?;
        let gid = id(number(h.gid(), "group")?, "group")?;
        let secs = i64::try_from(number(h.mtime(), "mtime")?).map_err(|_| self.refuse(raw, "mtime out of range"))?;
        let mut mtime = (secs, 0);
        let mut xattrs = Vec::new();
        if let Some(exts) = entry.pax_extensions().map_err(|e| self.malformed(&e))? {
            for ext in exts {
                let ext = ext.map_err(|e| self.malformed(&e))?;
                let Ok(key) = ext.key() else { continue };
                if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                    xattrs.push((name.to_owned(), ext.value_bytes().to_vec()));
                } else if key == "mtime" {
                    // `seconds.fraction`: the nanoseconds a ustar header cannot hold.
                    let (secs, frac) = ext.value().unwrap_or("").split_once('.').unwrap_or(("", ""));
                    if let (Ok(s), Ok(n)) = (secs.parse::<i64>(), format!("{frac:0<9.9}").parse::<i64>()) {
                        mtime = (s, n);
                    }
                }
            }
        }
        Ok(Meta { mode, uid, gid, mtime, xattrs })
    }

    fn file(
        &mut self,
        raw: &Path,
        target: &Path,
        entry: &mut tar::Entry<'_, &mut dyn Read>,
        meta: &Meta,
    ) -> Result<()> {
        let left = self.options.max_bytes.saturating_sub(self.report.bytes);
        let size = entry.size();
        if size > left {
            return Err(self.refuse(
                raw,
                &format!(
                    "it claims {size} bytes, more than the {} bytes of payload left (the payload is {} bytes)",
                    left, self.options.max_bytes
                ),
            ));
        }
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits().cast_signed())
            .open(target)
            .map_err(|e| Error::io("create", target, e))?;
        let copied = std::io::copy(&mut entry.take(left.saturating_add(1)), &mut file).map_err(|e| {
            // The tar reader says "failed to read entire block" for a header cut short.
            if e.kind() == std::io::ErrorKind::UnexpectedEof || e.to_string().contains("entire block") {
                Error::Refused(format!("{}: the tar archive is truncated inside {}", self.what, raw.display()))
            } else {
                Error::io("write", target, e)
            }
        })?;
        if copied != size {
            return Err(Error::Refused(format!(
                "{}: the tar archive is truncated inside {} ({copied} of {size} bytes)",
                self.what,
                raw.display()
            )));
        }
        self.report.bytes += copied;
        self.apply_file(&file, target, meta)?;
        file.sync_all().map_err(|e| Error::io("fsync", target, e))
    }

    fn hard_link(&self, raw: &Path, target: &Path, entry: &tar::Entry<'_, &mut dyn Read>) -> Result<()> {
        let link = entry
            .link_name()
            .map_err(|e| self.malformed(&e))?
            .ok_or_else(|| self.refuse(raw, "a hard link without a target"))?;
        let shown = link.display().to_string();
        let link_rel = self
            .tree_path(&link)
            .map_err(|_| self.refuse(raw, &format!("a hard link to {shown:?}, outside the tree")))?;
        let parts: Vec<_> = link_rel.components().collect();
        let Some((last, parents)) = parts.split_last() else {
            return Err(self.refuse(raw, "a hard link to the tree's root"));
        };
        let mut here = self.dest.to_path_buf();
        for part in parents {
            here.push(part);
            if !fs::symlink_metadata(&here).is_ok_and(|m| m.is_dir()) {
                return Err(self.refuse(
                    raw,
                    &format!("a hard link to {shown:?}, through {part:?}, which is not a directory of the tree"),
                ));
            }
        }
        here.push(last);
        if !fs::symlink_metadata(&here).is_ok_and(|m| m.is_file()) {
            return Err(
                self.refuse(raw, &format!("a hard link to {shown:?}, which is not a regular file extracted before it"))
            );
        }
        fs::hard_link(&here, target).map_err(|e| Error::io("create hard link", target, e))
    }

    fn node(&self, raw: &Path, target: &Path, entry: &tar::Entry<'_, &mut dyn Read>, meta: &Meta) -> Result<()> {
        let kind = entry.header().entry_type();
        if self.options.devices == Devices::Refuse {
            let what = if kind.is_fifo() { "a FIFO" } else { "a device node" };
            return Err(self.refuse(
                raw,
                &format!("{what}, refused unless the component's signed options say allow-devices = true"),
            ));
        }
        let h = entry.header();
        let number = |v: std::io::Result<Option<u32>>| v.ok().flatten().unwrap_or(0);
        let (file_type, dev) = if kind.is_fifo() {
            (FileType::Fifo, 0)
        } else {
            let dev = rustix::fs::makedev(number(h.device_major()), number(h.device_minor()));
            (if kind.is_block_special() { FileType::BlockDevice } else { FileType::CharacterDevice }, dev)
        };
        rustix::fs::mknodat(CWD, target, file_type, Mode::from_raw_mode(0o600), dev)
            .map_err(|e| Error::io("create node", target, e.into()))?;
        self.apply(target, meta, true)
    }

    /// Owner, then mode (a chown clears set-uid bits), xattrs, mtime of an open regular file.
    fn apply_file(&mut self, file: &File, target: &Path, meta: &Meta) -> Result<()> {
        rustix::fs::fchown(file, Some(uid(meta.uid)), Some(gid(meta.gid)))
            .map_err(|e| Error::io("set the owner of", target, e.into()))?;
        rustix::fs::fchmod(file, Mode::from_raw_mode(meta.mode))
            .map_err(|e| Error::io("set the mode of", target, e.into()))?;
        self.xattrs(target, meta)?;
        set_mtime(target, meta.mtime)
    }

    /// Owner, mode (not for links), mtime of a path that is not a regular file.
    fn apply(&self, target: &Path, meta: &Meta, mode: bool) -> Result<()> {
        rustix::fs::chownat(CWD, target, Some(uid(meta.uid)), Some(gid(meta.gid)), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| Error::io("set the owner of", target, e.into()))?;
        if mode {
            rustix::fs::chmodat(CWD, target, Mode::from_raw_mode(meta.mode), AtFlags::empty())
                .map_err(|e| Error::io("set the mode of", target, e.into()))?;
        }
        set_mtime(target, meta.mtime)
    }

    fn xattrs(&mut self, target: &Path, meta: &Meta) -> Result<()> {
        for (name, value) in &meta.xattrs {
            let shown = format!("{}: {name}", target.strip_prefix(self.dest).unwrap_or(target).display());
            if !(name.starts_with("user.") || name.starts_with("security.")) {
                self.report.skipped_xattrs.push(shown);
                continue;
            }
            match rustix::fs::lsetxattr(target, name.as_str(), value, XattrFlags::empty()) {
                Ok(()) => {}
                Err(Errno::PERM | Errno::NOTSUP | Errno::ACCESS) => self.report.skipped_xattrs.push(shown),
                Err(e) => return Err(Error::io("set extended attribute on", target, e.into())),
            }
        }
        Ok(())
    }

    /// Directory metadata (deepest first, after all their contents), then fsync of every directory.
    fn finish(&mut self) -> Result<()> {
        let dirs = std::mem::take(&mut self.dirs);
        for d in dirs.iter().rev() {
            self.apply(&d.path, &d.meta, true)?;
            self.xattrs(&d.path, &d.meta)?;
        }
        for d in dirs.iter().map(|d| &d.path).chain(&self.implicit) {
            update_core::atomic::sync_dir(d)?;
        }
        update_core::atomic::sync_dir(self.dest)
    }
}

fn uid(n: u32) -> rustix::fs::Uid {
    rustix::fs::Uid::from_raw(n)
}

fn gid(n: u32) -> rustix::fs::Gid {
    rustix::fs::Gid::from_raw(n)
}

/// Sets mtime (and atime) without following a link.
fn set_mtime(target: &Path, (secs, nanos): (i64, i64)) -> Result<()> {
    let t = rustix::fs::Timespec { tv_sec: secs, tv_nsec: nanos };
    let times = Timestamps { last_access: t, last_modification: t };
    rustix::fs::utimensat(CWD, target, &times, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| Error::io("set the mtime of", target, e.into()))
}
