//! The `data` handler: device-specific data (calibration, per-site configuration) into a data
//! directory, with a per-file policy signed by the vendor (docs/components.md `## data`).
//!
//! Device setting: `path`, the data directory (`/data/config`). Vendor option: `policy`, a table
//! of relative path → `replace` | `keep-if-changed` | `merge`, with `default` for the rest
//! (`replace` when absent).
//!
//! The phases, and what survives a power cut at any instant:
//! - `install` extracts the tar (regular files and directories only; no `..`, no absolute path,
//!   no link, no device) into `state_dir/trees/<sha256>/`, checking size and digest while it
//!   streams; then records it as staged. The data directory is untouched.
//! - `activate` first *prepares* into `state_dir/activation.tmp/`: the snapshot of every file it
//!   will change (bytes, mode, owner), the result of every file (vendor bytes, the user's kept,
//!   or a three-way merge), and the journal listing both; an fsync and one rename make it
//!   `activation/`. Then it *applies* the journal file by file (temporary file, fsync, rename).
//!   A cut before the rename leaves the data untouched; a cut after it replays the journal.
//! - `rollback` puts every snapshotted file back (atomically, byte for byte, with its mode and
//!   owner), removes the files and directories the update created, and forgets the staged tree.
//! - `commit` makes the new vendor tree the base of the next merge (one atomic state write).
//!
//! The data directory is walked from its descriptor without following any link
//! ([`dir::DataDir`]): a symbolic link planted at a path of the data set is refused with an
//! error, never written through. Files outside the data set are never touched.

pub mod dir;
pub mod merge;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use update_core::atomic::{ensure_dir, sync_dir, write_atomic};
use update_core::audit::{AuditAction, Outcome};
use update_core::component::{Activation, Component, ComponentState, ComponentStatus, Handler, HandlerContext, Kind};
use update_core::text::escape;
use update_core::{Error, Result, Version};

use crate::payload::{Checked, known_keys};
use dir::{Current, DataDir};

/// A relative path inside the data set: `/`-separated names, none empty, `.` or `..`; a
/// leading `./` is dropped. Names ending in `.update-conflict` or `.update-tmp` are the
/// handler's own and refused in a payload.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RelPath(String);

/// The suffix of the file that records a merge conflict beside the merged file.
pub const CONFLICT_SUFFIX: &str = ".update-conflict";

impl RelPath {
    /// Validates a path from a payload or the policy.
    ///
    /// # Errors
    /// [`Error::Refused`] naming the path and what is wrong with it.
    pub fn new(text: &str) -> Result<Self> {
        let path = Self::structural(text)?;
        let last = path.file_name();
        if last.ends_with(CONFLICT_SUFFIX) || last.ends_with(".update-tmp") {
            return Err(Error::Refused(format!("data path '{}': a name reserved by the data handler", escape(text))));
        }
        Ok(path)
    }

    /// Validates the shape only (the handler's own records name its conflict files).
    fn structural(text: &str) -> Result<Self> {
        let refuse = |why: &str| Err(Error::Refused(format!("data path '{}': {why}", escape(text))));
        if text.starts_with('/') {
            return refuse("an absolute path");
        }
        if text.contains('\0') {
            return refuse("a NUL byte");
        }
        let mut names = Vec::new();
        for name in text.trim_end_matches('/').split('/') {
            match name {
                "." if names.is_empty() => {}
                ".." => return refuse("a '..' component"),
                "" | "." => return refuse("an empty or '.' component"),
                n => names.push(n),
            }
        }
        if names.is_empty() {
            return refuse("no name");
        }
        Ok(Self(names.join("/")))
    }

    /// The path as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its last name.
    #[must_use]
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The names of the directories above it, outermost first.
    pub fn parents(&self) -> impl Iterator<Item = &str> {
        let mut names: Vec<&str> = self.0.split('/').collect();
        names.pop();
        names.into_iter()
    }

    /// Every directory above it, as paths, outermost first.
    fn ancestors(&self) -> Vec<RelPath> {
        let mut out: Vec<RelPath> = Vec::new();
        for name in self.parents() {
            let p = match out.last() {
                Some(prev) => format!("{}/{name}", prev.0),
                None => name.to_owned(),
            };
            out.push(RelPath(p));
        }
        out
    }

    /// The file beside it that records a merge conflict.
    #[must_use]
    pub fn conflict_file(&self) -> RelPath {
        RelPath(format!("{}{CONFLICT_SUFFIX}", self.0))
    }
}

impl TryFrom<String> for RelPath {
    type Error = Error;
    /// For the handler's own records (journal, manifests): the shape is checked, reserved
    /// names are allowed.
    fn try_from(s: String) -> Result<Self> {
        Self::structural(&s)
    }
}

impl From<RelPath> for String {
    fn from(p: RelPath) -> String {
        p.0
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape(&self.0))
    }
}

/// What the update does to one file of the data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FilePolicy {
    /// The vendor's new file replaces the device's.
    Replace,
    /// The device's file is kept when it differs from the previous vendor version (the user
    /// changed it); otherwise the new vendor file replaces it.
    KeepIfChanged,
    /// A three-way line merge of the previous vendor version, the device's file and the new
    /// vendor version; conflicts keep the user's lines and are recorded.
    Merge,
}

/// The vendor's per-file policy (`options.policy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    default: FilePolicy,
    files: BTreeMap<RelPath, FilePolicy>,
}

impl Policy {
    /// Reads `options.policy` of `component` (refusing any other option).
    ///
    /// # Errors
    /// [`Error::Refused`] for an unknown option, a bad path or an unknown policy word.
    pub fn from_options(component: &Component) -> Result<Self> {
        let name = component.name.as_str();
        known_keys(&component.options, &["policy"], "option", name)?;
        let mut policy = Policy { default: FilePolicy::Replace, files: BTreeMap::new() };
        let Some(table) = component.options.get("policy") else { return Ok(policy) };
        let table = table
            .as_object()
            .ok_or_else(|| Error::Refused(format!("component {name}: option 'policy' must be a table")))?;
        for (key, value) in table {
            let word = value.as_str().unwrap_or_default();
            let p: FilePolicy = serde_json::from_value(value.clone()).map_err(|_| {
                Error::Refused(format!(
                    "component {name}: policy '{}' for '{}': use replace, keep-if-changed or merge",
                    escape(word),
                    escape(key)
                ))
            })?;
            if key == "default" {
                policy.default = p;
            } else {
                policy.files.insert(RelPath::new(key)?, p);
            }
        }
        Ok(policy)
    }

    /// The policy of `path`.
    #[must_use]
    pub fn of(&self, path: &RelPath) -> FilePolicy {
        self.files.get(path).copied().unwrap_or(self.default)
    }
}

/// A vendor version of the data set as stored in the state directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Release {
    version: Version,
    sha256: String,
}

/// `state_dir/state.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    /// The committed vendor version (its tree is the base of the next merge).
    committed: Option<Release>,
    /// The version committed before it, kept with `activation/` until the next install so a
    /// rollback in the same transaction after commit still restores.
    previous: Option<Release>,
    /// The transaction of the last commit.
    transaction: Option<String>,
    /// The installed version waiting in `trees/`.
    staged: Option<Release>,
    /// Whether `staged` is applied to the data directory (on trial).
    trial: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum EntryKind {
    File,
    Dir,
}

/// One entry of a stored vendor tree (`trees/<sha256>/manifest.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct TreeEntry {
    path: RelPath,
    kind: EntryKind,
    mode: u32,
}

/// What was at a path before activation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
enum Before {
    Absent,
    File { blob: usize, mode: u32, uid: u32, gid: u32 },
}

/// What activation puts at a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
enum After {
    Absent,
    File { blob: usize, mode: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Op {
    path: RelPath,
    before: Before,
    after: After,
}

/// A merge conflict, as recorded in the journal and the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ConflictNote {
    path: RelPath,
    line: usize,
}

/// `state_dir/activation/journal.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Journal {
    target: Release,
    /// Directories activation creates (outermost first) and their modes.
    created_dirs: Vec<(RelPath, u32)>,
    ops: Vec<Op>,
    conflicts: Vec<ConflictNote>,
}

/// The `data` handler.
#[derive(Debug, Default, Clone, Copy)]
pub struct DataHandler;

impl DataHandler {
    /// A handler.
    #[must_use]
    pub fn new() -> Self {
        Self
    }
}

/// The largest journal or manifest read back (they list file names, not contents).
const MAX_RECORD: usize = 64 << 20;

struct Layout {
    state: PathBuf,
    trees: PathBuf,
    activation: PathBuf,
    activation_tmp: PathBuf,
}

impl Layout {
    fn new(ctx: &HandlerContext<'_>) -> Self {
        let d = &ctx.state_dir;
        Self {
            state: d.join("state.json"),
            trees: d.join("trees"),
            activation: d.join("activation"),
            activation_tmp: d.join("activation.tmp"),
        }
    }

    fn tree(&self, r: &Release) -> PathBuf {
        self.trees.join(&r.sha256)
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    let Some(file) = update_core::atomic::open_read(path, "read")? else { return Ok(None) };
    let bytes = update_core::atomic::read_bounded(file, MAX_RECORD, &path.display().to_string())?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::io("parse", path, std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let bytes =
        serde_json::to_vec_pretty(value).map_err(|e| Error::Other(format!("encode {}: {e}", path.display())))?;
    write_atomic(path, &bytes, 0o600)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f = fs::File::create(path).map_err(|e| Error::io("create", path, e))?;
    f.write_all(bytes).map_err(|e| Error::io("write", path, e))?;
    f.sync_all().map_err(|e| Error::io("fsync", path, e))
}

fn remove_tree(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", path, e)),
    }
}

fn read_blob(dir: &Path, blob: usize) -> Result<Vec<u8>> {
    let p = dir.join(blob.to_string());
    fs::read(&p).map_err(|e| Error::io("read", p, e))
}

fn same_release(r: Option<&Release>, c: &Component) -> bool {
    r.is_some_and(|r| r.version == c.version && r.sha256.eq_ignore_ascii_case(&c.sha256))
}

/// The data directory named by the device setting `path`, under the root; refused when a link
/// leads it out of the root.
fn data_path(ctx: &HandlerContext<'_>) -> Result<PathBuf> {
    let name = ctx.device.name.as_str();
    known_keys(&ctx.device.settings, &["path"], "setting", name)?;
    let setting = ctx
        .device
        .settings
        .get("path")
        .and_then(|v| v.as_str())
        .filter(|p| p.starts_with('/'))
        .ok_or_else(|| Error::Refused(format!("component {name}: setting 'path' must be an absolute path")))?;
    let path = ctx.paths.resolve(setting);
    let root = ctx.paths.root();
    if root != Path::new("/") {
        let real_root = root.canonicalize().map_err(|e| Error::io("resolve", root, e))?;
        let existing = path.ancestors().find(|p| p.exists()).unwrap_or(root);
        let real = existing.canonicalize().map_err(|e| Error::io("resolve", existing, e))?;
        if !real.starts_with(&real_root) {
            return Err(Error::Refused(format!(
                "component {name}: data directory {} leads out of the device root {} through a symbolic link",
                path.display(),
                root.display()
            )));
        }
    }
    Ok(path)
}

fn load_state(l: &Layout) -> Result<State> {
    Ok(read_json(&l.state)?.unwrap_or_default())
}

fn load_manifest(tree: &Path) -> Result<Vec<TreeEntry>> {
    let p = tree.join("manifest.json");
    read_json(&p)?.ok_or_else(|| Error::io("read", p, std::io::Error::from(std::io::ErrorKind::NotFound)))
}

/// Extracts a tar payload into `dest` (a fresh directory), refusing anything but regular files
/// and directories at safe relative paths, and returns the manifest.
fn extract(payload: &mut dyn Read, dest: &Path, component: &str) -> Result<Vec<TreeEntry>> {
    let files = dest.join("files");
    ensure_dir(&files)?;
    let mut archive = tar::Archive::new(payload);
    let bad = |e: std::io::Error| Error::Refused(format!("component {component}: payload is not a valid tar: {e}"));
    let mut manifest = Vec::new();
    let mut seen = BTreeSet::new();
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let raw = entry.path_bytes();
        let text = std::str::from_utf8(&raw)
            .map_err(|_| Error::Refused(format!("component {component}: a tar entry's name is not UTF-8")))?
            .to_owned();
        if text == "." || text == "./" {
            continue;
        }
        let path = RelPath::new(&text)?;
        let mode = entry.header().mode().map_err(bad)? & 0o777;
        let kind = match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File,
            tar::EntryType::Directory => EntryKind::Dir,
            other => {
                return Err(Error::Refused(format!(
                    "component {component}: tar entry {path} is a {other:?}; data payloads hold only regular files \
                     and directories"
                )));
            }
        };
        if !seen.insert(path.clone()) {
            return Err(Error::Refused(format!("component {component}: tar entry {path} appears twice")));
        }
        let target = files.join(path.as_str());
        if let Some(parent) = target.parent() {
            ensure_dir(parent)?;
        }
        match kind {
            EntryKind::Dir => ensure_dir(&target)?,
            EntryKind::File => {
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).map_err(bad)?;
                write_synced(&target, &bytes)?;
            }
        }
        manifest.push(TreeEntry { path, kind, mode });
    }
    // A file below a path that is also a file, or a directory entry over a file, fails above
    // (create_dir on a file); a file entry over a directory entry:
    for e in &manifest {
        if e.kind == EntryKind::File && !files.join(e.path.as_str()).is_file() {
            return Err(Error::Refused(format!(
                "component {component}: tar entry {} is both a file and a directory",
                e.path
            )));
        }
    }
    Ok(manifest)
}

fn vendor_file(tree: &Path, path: &RelPath) -> Result<Vec<u8>> {
    let p = tree.join("files").join(path.as_str());
    fs::read(&p).map_err(|e| Error::io("read", p, e))
}

/// The text of a `.update-conflict` file.
fn conflict_text(path: &RelPath, version: &Version, conflicts: &[merge::Conflict]) -> Vec<u8> {
    let mut out = format!(
        "# update: the user's lines were kept in {path} where vendor version {version} changed the same lines.\n\
         # Each conflict: the line in the merged file, then the user's (kept), the previous vendor's and the new vendor's lines.\n"
    )
    .into_bytes();
    for c in conflicts {
        out.extend_from_slice(format!("@@ line {}\n<<<<<<< user (kept)\n", c.line).as_bytes());
        for (part, marker) in [(&c.ours, "||||||| previous vendor\n"), (&c.base, "=======\n"), (&c.theirs, "")] {
            out.extend_from_slice(part);
            if !part.is_empty() && !part.ends_with(b"\n") {
                out.push(b'\n');
            }
            out.extend_from_slice(marker.as_bytes());
        }
        out.extend_from_slice(format!(">>>>>>> vendor {version} (not applied)\n").as_bytes());
    }
    out
}

/// Builds the activation directory for `target` over the data directory as it is now.
fn prepare(
    ctx: &HandlerContext<'_>,
    l: &Layout,
    data: &DataDir,
    component: &Component,
    target: &Release,
    base: Option<&Release>,
) -> Result<()> {
    let policy = Policy::from_options(component)?;
    let new_tree = l.tree(target);
    let new = load_manifest(&new_tree)?;
    let base_tree = base.map(|b| l.tree(b));
    let old = match &base_tree {
        Some(t) => load_manifest(t)?,
        None => Vec::new(),
    };
    let tmp = &l.activation_tmp;
    remove_tree(tmp)?;
    let (snap, prep) = (tmp.join("snapshot"), tmp.join("prepared"));
    ensure_dir(&snap)?;
    ensure_dir(&prep)?;

    let mut ops = Vec::new();
    let mut conflicts = Vec::new();
    let mut blob = 0usize;
    let mut change = |path: &RelPath, cur: &Current, after: Option<(&[u8], u32)>| -> Result<Op> {
        blob += 1;
        let before = match cur {
            Current::Absent => Before::Absent,
            Current::File { bytes, mode, uid, gid } => {
                write_synced(&snap.join(blob.to_string()), bytes)?;
                Before::File { blob, mode: *mode, uid: *uid, gid: *gid }
            }
        };
        let after = match after {
            None => After::Absent,
            Some((bytes, mode)) => {
                write_synced(&prep.join(blob.to_string()), bytes)?;
                After::File { blob, mode }
            }
        };
        Ok(Op { path: path.clone(), before, after })
    };
    let old_files: BTreeMap<&RelPath, &TreeEntry> =
        update_core::sort::collect_map(old.iter().filter(|e| e.kind == EntryKind::File).map(|e| (&e.path, e)));
    let new_paths: BTreeSet<&RelPath> = update_core::sort::collect_set(new.iter().map(|e| &e.path));

    for e in new.iter().filter(|e| e.kind == EntryKind::File) {
        let cur = data.read(&e.path)?;
        let vendor = vendor_file(&new_tree, &e.path)?;
        let previous = match (&base_tree, old_files.get(&e.path)) {
            (Some(t), Some(_)) => Some(vendor_file(t, &e.path)?),
            _ => None,
        };
        let result: Option<Vec<u8>> = match (&cur, policy.of(&e.path)) {
            (Current::Absent, _) | (_, FilePolicy::Replace) => Some(vendor.clone()),
            (Current::File { bytes, .. }, FilePolicy::KeepIfChanged) => {
                (previous.as_deref() == Some(bytes.as_slice())).then(|| vendor.clone())
            }
            (Current::File { bytes, .. }, FilePolicy::Merge) => {
                let merged = merge::merge3(previous.as_deref().unwrap_or_default(), bytes, &vendor);
                if !merged.conflicts.is_empty() {
                    let file = e.path.conflict_file();
                    let text = conflict_text(&e.path, &target.version, &merged.conflicts);
                    let cur_conflict = data.read(&file)?;
                    ops.push(change(&file, &cur_conflict, Some((&text, 0o644)))?);
                    conflicts
                        .extend(merged.conflicts.iter().map(|c| ConflictNote { path: e.path.clone(), line: c.line }));
                }
                Some(merged.bytes)
            }
        };
        let Some(result) = result else { continue };
        if let Current::File { bytes, mode, .. } = &cur
            && *bytes == result
            && *mode == e.mode
        {
            continue;
        }
        ops.push(change(&e.path, &cur, Some((&result, e.mode)))?);
    }
    // Files the vendor dropped go when the user did not change them.
    for (path, _) in old_files.iter().filter(|(p, _)| !new_paths.contains(**p)) {
        let cur = data.read(path)?;
        if let (Current::File { bytes, .. }, Some(t)) = (&cur, &base_tree)
            && *bytes == vendor_file(t, path)?
        {
            ops.push(change(path, &cur, None)?);
        }
    }
    // Directories to create: the tree's own, and those above new files.
    let mut created: Vec<(RelPath, u32)> = Vec::new();
    let mut wanted: Vec<(RelPath, u32)> = Vec::new();
    for e in &new {
        for a in e.path.ancestors() {
            wanted.push((a, 0o755));
        }
        if e.kind == EntryKind::Dir {
            wanted.push((e.path.clone(), e.mode));
        }
    }
    let mut seen = BTreeSet::new();
    for (p, mode) in wanted {
        if seen.insert(p.clone()) && !data.dir_exists(&p)? {
            let mode = new.iter().find(|e| e.path == p && e.kind == EntryKind::Dir).map_or(mode, |e| e.mode);
            created.push((p, mode));
        }
    }
    update_core::sort::sort_by_key(&mut created, |(p, _)| p.as_str().matches('/').count());
    let journal = Journal { target: target.clone(), created_dirs: created, ops, conflicts };
    let jpath = tmp.join("journal.json");
    let bytes = serde_json::to_vec_pretty(&journal).map_err(|e| Error::Other(format!("encode journal: {e}")))?;
    write_synced(&jpath, &bytes)?;
    sync_dir(&snap)?;
    sync_dir(&prep)?;
    sync_dir(tmp)?;
    fs::rename(tmp, &l.activation).map_err(|e| Error::io("rename into place", &l.activation, e))?;
    sync_dir(&ctx.state_dir)
}

fn load_journal(l: &Layout) -> Result<Option<Journal>> {
    read_json(&l.activation.join("journal.json"))
}

/// Applies a journal (again, after a cut: every step is idempotent).
fn apply(l: &Layout, data: &DataDir, journal: &Journal) -> Result<()> {
    for (dir, mode) in &journal.created_dirs {
        data.create_dir(dir, *mode)?;
    }
    let prep = l.activation.join("prepared");
    for op in &journal.ops {
        match (&op.after, &op.before) {
            (After::Absent, _) => data.remove(&op.path)?,
            (After::File { blob, mode }, before) => {
                let owner = match before {
                    Before::File { uid, gid, .. } => Some((*uid, *gid)),
                    Before::Absent => None,
                };
                data.write(&op.path, &read_blob(&prep, *blob)?, *mode, owner)?;
            }
        }
    }
    Ok(())
}

/// Puts the snapshot back: every changed file as it was, created files and directories gone.
fn restore(l: &Layout, data: &DataDir, journal: &Journal) -> Result<()> {
    let snap = l.activation.join("snapshot");
    for op in journal.ops.iter().rev() {
        match &op.before {
            Before::Absent => data.remove(&op.path)?,
            Before::File { blob, mode, uid, gid } => {
                data.write(&op.path, &read_blob(&snap, *blob)?, *mode, Some((*uid, *gid)))?;
            }
        }
    }
    for (dir, _) in journal.created_dirs.iter().rev() {
        data.remove_dir_if_empty(dir)?;
    }
    Ok(())
}

fn open_data(ctx: &HandlerContext<'_>) -> Result<DataDir> {
    let path = data_path(ctx)?;
    ensure_dir(&path)?;
    DataDir::open(&path)
}

/// Brings an interrupted activation back to a consistent state before a new install: a journal
/// that is neither on trial nor committed is restored; an older committed one is dropped.
fn settle(ctx: &HandlerContext<'_>, l: &Layout, state: &mut State) -> Result<()> {
    remove_tree(&l.activation_tmp)?;
    if let Some(journal) = load_journal(l)? {
        let on_trial = state.trial && state.staged.as_ref() == Some(&journal.target);
        let committed = state.committed.as_ref() == Some(&journal.target);
        if on_trial {
            return Ok(());
        }
        if !committed {
            restore(l, &open_data(ctx)?, &journal)?;
        }
        remove_tree(&l.activation)?;
    }
    if state.previous.is_some() {
        state.previous = None;
        write_json(&l.state, state)?;
    }
    Ok(())
}

impl Handler for DataHandler {
    fn kind(&self) -> Kind {
        Kind::Data
    }

    fn status(&mut self, ctx: &HandlerContext<'_>) -> Result<ComponentStatus> {
        let l = Layout::new(ctx);
        let state = load_state(&l)?;
        let committed = state.committed.as_ref().map(|r| r.version.clone());
        let staged = state.staged.as_ref().map(|r| r.version.clone());
        let detail = match load_journal(&l)? {
            Some(j) if state.trial => Some(format!(
                "{} files changed, {} merge conflicts (the user's lines kept)",
                j.ops.len(),
                j.conflicts.len()
            )),
            _ => None,
        };
        Ok(match (state.trial, staged) {
            (true, Some(v)) => {
                ComponentStatus { active: Some(v), inactive: committed, state: ComponentState::Trial, detail }
            }
            (_, Some(v)) => {
                ComponentStatus { active: committed, inactive: Some(v), state: ComponentState::Installed, detail }
            }
            (_, None) => ComponentStatus {
                state: if committed.is_some() { ComponentState::Committed } else { ComponentState::Absent },
                active: committed,
                inactive: state.previous.map(|r| r.version),
                detail,
            },
        })
    }

    fn check(&mut self, ctx: &HandlerContext<'_>, component: &Component) -> Result<()> {
        if component.kind != Kind::Data {
            return Err(Error::Refused(format!(
                "component {}: the data handler cannot install kind {}",
                component.name, component.kind
            )));
        }
        Policy::from_options(component)?;
        let path = data_path(ctx)?;
        if path.exists() && !path.is_dir() {
            return Err(Error::Refused(format!(
                "component {}: data path {} is not a directory",
                component.name,
                path.display()
            )));
        }
        // The tree is stored once in the state directory; snapshots need at most as much again.
        if let Ok(st) = rustix::fs::statvfs(&ctx.state_dir) {
            let free = st.f_bavail.saturating_mul(st.f_frsize);
            if free < component.size.saturating_mul(2) {
                return Err(Error::Refused(format!(
                    "component {}: {} bytes free in {}, {} needed",
                    component.name,
                    free,
                    ctx.state_dir.display(),
                    component.size.saturating_mul(2)
                )));
            }
        }
        Ok(())
    }

    fn install(&mut self, ctx: &HandlerContext<'_>, component: &Component, payload: &mut dyn Read) -> Result<()> {
        self.check(ctx, component)?;
        let l = Layout::new(ctx);
        let mut state = load_state(&l)?;
        if state.trial {
            return Err(Error::Refused(format!(
                "component {}: version {} is active on trial; commit or roll it back before installing",
                component.name,
                state.staged.as_ref().map_or_else(String::new, |r| r.version.to_string())
            )));
        }
        settle(ctx, &l, &mut state)?;
        let release = Release { version: component.version.clone(), sha256: component.sha256.to_ascii_lowercase() };
        // Keep only the committed tree; the new one is extracted beside it.
        ensure_dir(&l.trees)?;
        let keep = state.committed.as_ref().map(|r| r.sha256.clone());
        for entry in fs::read_dir(&l.trees).map_err(|e| Error::io("list", &l.trees, e))? {
            let entry = entry.map_err(|e| Error::io("list", &l.trees, e))?;
            if Some(entry.file_name().to_string_lossy().into_owned()) != keep {
                remove_tree(&entry.path())?;
            }
        }
        if state.staged.take().is_some() {
            write_json(&l.state, &state)?;
        }
        let dest = l.tree(&release);
        if !dest.exists() {
            let tmp = l.trees.join(format!("{}.tmp", release.sha256));
            remove_tree(&tmp)?;
            let mut checked = Checked::new(component, payload);
            let manifest = extract(&mut checked, &tmp, component.name.as_str());
            let verified = checked.finish();
            let manifest = match (manifest, verified) {
                (Ok(m), Ok(())) => m,
                (Err(e), _) | (Ok(_), Err(e)) => {
                    remove_tree(&tmp)?;
                    return Err(e);
                }
            };
            write_json(&tmp.join("manifest.json"), &manifest)?;
            sync_dir(&tmp)?;
            fs::rename(&tmp, &dest).map_err(|e| Error::io("rename into place", &dest, e))?;
            sync_dir(&l.trees)?;
        } else {
            // The same content (same digest) is already stored: read and check the payload anyway.
            Checked::new(component, payload).finish()?;
        }
        state.staged = Some(release);
        write_json(&l.state, &state)
    }

    fn activate(&mut self, ctx: &HandlerContext<'_>, component: &Component) -> Result<Activation> {
        let l = Layout::new(ctx);
        let mut state = load_state(&l)?;
        if !same_release(state.staged.as_ref(), component) {
            return Err(Error::Other(format!(
                "component {}: version {} is not installed, nothing to activate",
                component.name, component.version
            )));
        }
        if state.trial {
            return Ok(Activation::Now);
        }
        let target = state.staged.clone().ok_or_else(|| Error::Other("unreachable: staged".into()))?;
        let data = open_data(ctx)?;
        let journal = match load_journal(&l)? {
            Some(j) if j.target == target => j,
            _ => {
                remove_tree(&l.activation)?;
                prepare(ctx, &l, &data, component, &target, state.committed.as_ref())?;
                load_journal(&l)?.ok_or_else(|| Error::Other("the activation journal vanished".into()))?
            }
        };
        apply(&l, &data, &journal)?;
        for c in &journal.conflicts {
            let message = format!(
                "merge conflict in {} line {} (transaction {}): the user's lines were kept, the vendor's are in {}",
                c.path,
                c.line,
                ctx.transaction,
                c.path.conflict_file()
            );
            ctx.events.warn(&format!("component {}: {message}", component.name));
            ctx.events.audit(
                ctx.events.record(AuditAction::Install, Outcome::Ok).subject(component.name.as_str()).message(message),
            );
        }
        state.trial = true;
        write_json(&l.state, &state)?;
        Ok(Activation::Now)
    }

    fn health(&mut self, ctx: &HandlerContext<'_>, component: &Component) -> Result<()> {
        let l = Layout::new(ctx);
        let state = load_state(&l)?;
        if !(state.trial && same_release(state.staged.as_ref(), component)) {
            return Err(Error::Other(format!(
                "component {}: version {} is not active",
                component.name, component.version
            )));
        }
        let journal = load_journal(&l)?.ok_or_else(|| Error::Other("the activation journal is missing".into()))?;
        let data = open_data(ctx)?;
        let prep = l.activation.join("prepared");
        for op in &journal.ops {
            let ok = match (&op.after, data.read(&op.path)?) {
                (After::Absent, Current::Absent) => true,
                (After::File { blob, .. }, Current::File { bytes, .. }) => bytes == read_blob(&prep, *blob)?,
                _ => false,
            };
            if !ok {
                return Err(Error::Other(format!(
                    "component {}: {} in {} does not hold what version {} put there",
                    component.name,
                    op.path,
                    data_path(ctx)?.display(),
                    component.version
                )));
            }
        }
        Ok(())
    }

    fn commit(&mut self, ctx: &HandlerContext<'_>, component: &Component) -> Result<()> {
        let l = Layout::new(ctx);
        let mut state = load_state(&l)?;
        if state.staged.is_none() && same_release(state.committed.as_ref(), component) {
            return Ok(());
        }
        if !(state.trial && same_release(state.staged.as_ref(), component)) {
            return Err(Error::Other(format!(
                "component {}: version {} is not active on trial, nothing to commit",
                component.name, component.version
            )));
        }
        state = State {
            previous: state.committed.take(),
            committed: state.staged.take(),
            transaction: Some(ctx.transaction.to_owned()),
            staged: None,
            trial: false,
        };
        write_json(&l.state, &state)
    }

    fn rollback(&mut self, ctx: &HandlerContext<'_>, component: &Component) -> Result<()> {
        let l = Layout::new(ctx);
        let mut state = load_state(&l)?;
        remove_tree(&l.activation_tmp)?;
        let journal = load_journal(&l)?;
        let committed_here = state.transaction.as_deref() == Some(ctx.transaction)
            && state.previous.is_some()
            && journal.as_ref().is_some_and(|j| state.committed.as_ref() == Some(&j.target));
        if let Some(j) = &journal {
            if committed_here {
                restore(&l, &open_data(ctx)?, j)?;
                state.committed = state.previous.take();
            } else if state.committed.as_ref() != Some(&j.target) {
                restore(&l, &open_data(ctx)?, j)?;
            }
        }
        let dropped = state.staged.take();
        state.trial = false;
        write_json(&l.state, &state)?;
        remove_tree(&l.activation)?;
        if let Some(r) = dropped.filter(|r| Some(r) != state.committed.as_ref()) {
            remove_tree(&l.tree(&r))?;
        }
        ctx.events.info(&format!(
            "component {}: rolled back to {}",
            component.name,
            state
                .committed
                .as_ref()
                .map_or_else(|| "nothing (no version was committed)".into(), |r| r.version.to_string())
        ));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_relative_and_stay_inside() {
        assert_eq!(RelPath::new("./etc/site.conf").unwrap().as_str(), "etc/site.conf");
        assert_eq!(RelPath::new("etc/").unwrap().as_str(), "etc");
        for bad in [
            "/etc/passwd",
            "../x",
            "a/../../b",
            "a//b",
            "a/./b",
            "",
            ".",
            "x\0y",
            "a.update-conflict",
            "b/.c.update-tmp",
        ] {
            assert!(RelPath::new(bad).is_err(), "{bad:?} accepted");
        }
        let p = RelPath::new("a/b/c").unwrap();
        assert_eq!(p.ancestors(), [RelPath("a".into()), RelPath("a/b".into())]);
        assert_eq!(p.file_name(), "c");
    }
}
