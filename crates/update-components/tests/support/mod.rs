//! Shared test rig for the files and app handlers: a device root in a temporary directory, real
//! tar archives, and byte-for-byte tree snapshots.
#![allow(dead_code, missing_docs)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use update_core::Paths;
use update_core::audit::{AuditAction, AuditRecord, Outcome};
use update_core::component::{Component, ComponentName, DeviceComponent, Handler, HandlerContext, Kind, Settings};
use update_core::driver::Events;

/// Records what a handler logs.
#[derive(Debug, Default)]
pub struct Recorder {
    pub lines: RefCell<Vec<String>>,
}

impl Events for Recorder {
    fn audit(&self, record: AuditRecord) {
        self.lines.borrow_mut().push(format!("audit {record:?}"));
    }
    fn info(&self, message: &str) {
        self.lines.borrow_mut().push(format!("info {message}"));
    }
    fn warn(&self, message: &str) {
        self.lines.borrow_mut().push(format!("warn {message}"));
    }
    fn record(&self, action: AuditAction, outcome: Outcome) -> AuditRecord {
        AuditRecord::new("2026-01-01T00:00:00Z".into(), "test".into(), action, outcome)
    }
}

/// A device root with one component configured.
pub struct Device {
    pub dir: tempfile::TempDir,
    pub paths: Paths,
    pub device: DeviceComponent,
    pub events: Recorder,
}

impl Device {
    pub fn new(name: &str, kind: Kind, settings: serde_json::Value) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        let serde_json::Value::Object(settings) = settings else { panic!("settings must be an object") };
        let device = DeviceComponent { name: ComponentName::new(name).unwrap(), kind, settings };
        std::fs::create_dir_all(paths.resolve(format!("/var/lib/update/components/{name}"))).unwrap();
        Self { dir, paths, device, events: Recorder::default() }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, device_path: &str) -> PathBuf {
        self.paths.resolve(device_path)
    }

    pub fn ctx<'a>(&'a self, transaction: &'a str) -> HandlerContext<'a> {
        HandlerContext {
            paths: &self.paths,
            events: &self.events,
            transaction,
            device: &self.device,
            state_dir: self.paths.resolve(format!("/var/lib/update/components/{}", self.device.name)),
            timeout: Duration::from_secs(30),
        }
    }
}

/// A component of `kind` at `version` for `payload`.
pub fn component(name: &str, kind: Kind, version: &str, payload: &[u8]) -> Component {
    use sha2::Digest;
    Component {
        name: ComponentName::new(name).unwrap(),
        kind,
        version: update_core::Version::parse(version).unwrap(),
        size: payload.len() as u64,
        sha256: hex::encode(sha2::Sha256::digest(payload)),
        requires: Vec::new(),
        options: Settings::new(),
    }
}

/// One entry of a test tree.
pub enum Item<'a> {
    File(&'a str, &'a [u8], u32),
    Dir(&'a str, u32),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
    /// A file with an owner and an extended attribute.
    Owned(&'a str, &'a [u8], u32, u32, &'a str, &'a [u8]),
}

pub const MTIME: u64 = 1_700_000_000;

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(MTIME);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// A PAX extended header entry with `records` (key, value).
pub fn pax(builder: &mut tar::Builder<Vec<u8>>, records: &[(&str, &[u8])]) {
    let mut data = Vec::new();
    for (k, v) in records {
        let body = k.len() + v.len() + 3; // ' ', '=', '\n'
        let mut len = body + body.to_string().len();
        if len.to_string().len() != body.to_string().len() {
            len += 1;
        }
        data.extend_from_slice(format!("{len} {k}=").as_bytes());
        data.extend_from_slice(v);
        data.push(b'\n');
    }
    let mut h = header(tar::EntryType::XHeader, 0o644, data.len() as u64);
    h.set_path("PaxHeader").unwrap();
    h.set_cksum();
    builder.append(&h, &data[..]).unwrap();
}

/// A real tar archive of `items`.
pub fn tar_of(items: &[Item<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for item in items {
        match item {
            Item::File(path, data, mode) => {
                let mut h = header(tar::EntryType::Regular, *mode, data.len() as u64);
                b.append_data(&mut h, path, *data).unwrap();
            }
            Item::Dir(path, mode) => {
                let mut h = header(tar::EntryType::Directory, *mode, 0);
                b.append_data(&mut h, path, std::io::empty()).unwrap();
            }
            Item::Symlink(path, to) => {
                let mut h = header(tar::EntryType::Symlink, 0o777, 0);
                b.append_link(&mut h, path, to).unwrap();
            }
            Item::HardLink(path, to) => {
                let mut h = header(tar::EntryType::Link, 0o644, 0);
                b.append_link(&mut h, path, to).unwrap();
            }
            Item::Owned(path, data, uid, gid, xattr, value) => {
                pax(&mut b, &[(&format!("SCHILY.xattr.{xattr}"), value)]);
                let mut h = header(tar::EntryType::Regular, 0o640, data.len() as u64);
                h.set_uid(u64::from(*uid));
                h.set_gid(u64::from(*gid));
                b.append_data(&mut h, path, *data).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// A raw entry written byte by byte (the tar crate's builder refuses `..` and absolute names,
/// which is what hostile archives contain).
pub fn raw_entry(out: &mut Vec<u8>, name: &[u8], kind: tar::EntryType, link: &[u8], size: u64, data: &[u8]) {
    let mut h = header(kind, 0o644, size);
    {
        let old = h.as_old_mut();
        old.name = [0; 100];
        old.name[..name.len()].copy_from_slice(name);
        old.linkname = [0; 100];
        old.linkname[..link.len()].copy_from_slice(link);
    }
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    let pad = (512 - data.len() % 512) % 512;
    out.extend(std::iter::repeat_n(0u8, pad));
}

/// Ends a raw archive (two zero blocks).
pub fn raw_end(out: &mut Vec<u8>) {
    out.extend(std::iter::repeat_n(0u8, 1024));
}

/// What a tree holds, entry by entry: type, mode, owner, mtime and content (files), target
/// (links). Never follows a link.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        let m = std::fs::symlink_metadata(&p).unwrap();
        let rel = p.strip_prefix(root).unwrap().to_owned();
        let common = format!("mode={:o} uid={} gid={}", m.permissions().mode(), m.uid(), m.gid());
        if m.file_type().is_symlink() {
            out.insert(rel, format!("link -> {}", std::fs::read_link(&p).unwrap().display()));
        } else if m.is_dir() {
            out.insert(rel, format!("dir {common} mtime={}.{:09}", m.mtime(), m.mtime_nsec()));
            walk(root, &p, out);
        } else if m.is_file() {
            let data = std::fs::read(&p).unwrap();
            out.insert(
                rel,
                format!("file {common} mtime={}.{:09} nlink={} {:?}", m.mtime(), m.mtime_nsec(), m.nlink(), data),
            );
        } else {
            out.insert(rel, format!("other {common} rdev={}", m.rdev()));
        }
    }
}

/// The phases of a transaction in order, as the engine drives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Install,
    Activate,
    Health,
    Commit,
}

pub const PHASES: [Phase; 4] = [Phase::Install, Phase::Activate, Phase::Health, Phase::Commit];

/// Runs one phase.
pub fn run(
    handler: &mut dyn Handler,
    ctx: &HandlerContext<'_>,
    c: &Component,
    payload: &[u8],
    phase: Phase,
) -> update_core::Result<()> {
    match phase {
        Phase::Install => handler.install(ctx, c, &mut &payload[..]),
        Phase::Activate => handler.activate(ctx, c).map(drop),
        Phase::Health => handler.health(ctx, c),
        Phase::Commit => handler.commit(ctx, c),
    }
}

/// Runs every phase; panics on a failure.
pub fn update(handler: &mut dyn Handler, ctx: &HandlerContext<'_>, c: &Component, payload: &[u8]) {
    handler.check(ctx, c).unwrap();
    for phase in PHASES {
        run(handler, ctx, c, payload, phase).unwrap_or_else(|e| panic!("{phase:?}: {e}"));
    }
}
