//! The audit log: one JSON object per line for every state-changing action, append-only and
//! hash-chained.
//!
//! Each line is sealed: it ends with `"hash"`, the SHA-256 of the line's own bytes without that
//! field, and carries `"prev"`, the `hash` of the record before it (across rotated files), so
//! [`verify`] finds an edited, removed, inserted or reordered record. Appends take a lock, start
//! on a fresh line even after a torn write, and rotate the file at [`Rotation::DEFAULT`] without
//! breaking the chain. Readers stream ([`Lines`], [`history`]), skip a torn last line and report
//! (never fail on) a bad line in the middle. The byte-exact format is docs/reference/audit-log.md.
//!
//! Records never carry private material (keys are logged by name and key id, never a secret).
//! The audit log and its lock are opened with `O_NOFOLLOW`: a symbolic link planted at their
//! paths is refused, never written through.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::atomic::{Lock, ensure_dir, open_append, open_read, sync_dir};
use crate::error::{Error, Result};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum AuditAction {
    /// A config key changed.
    ConfigChange,
    /// A key was added to the keyring.
    KeyAdd,
    /// A key was replaced.
    KeyUpdate,
    /// A key was removed.
    KeyDelete,
    /// The source was checked.
    Check,
    /// An update was installed into a slot.
    Install,
    /// The boot environment was switched to another slot.
    Switch,
    /// The running slot was committed.
    MarkGood,
    /// A slot was marked bad.
    MarkBad,
    /// A manual rollback to the other slot.
    Rollback,
    /// The bootloader fell back to the other slot after failed boots.
    Fallback,
    /// A reboot was requested.
    Reboot,
    /// A health check ran.
    HealthCheck,
    /// The daemon started or stopped.
    Daemon,
    /// One step of a component in a transaction (check, install, activate, health, commit,
    /// rollback); the record's `transaction` names the transaction.
    Component,
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Done.
    Ok,
    /// Refused before anything changed (policy, verification, lock).
    Refused,
    /// Failed.
    Failed,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// RFC 3339 UTC time.
    pub time: String,
    /// Who: `uid=0 pid=123 cmd=update` or `daemon`.
    pub actor: String,
    /// What.
    pub action: AuditAction,
    /// How it ended.
    pub outcome: Outcome,
    /// What it acted on (`source`, a key name, a slot, a version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The value before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<serde_json::Value>,
    /// The value after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<serde_json::Value>,
    /// The driver that acted, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// A human-readable message (the error for refusals and failures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The transaction a component step belongs to (docs/components.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<String>,
    /// The `hash` of the previous record ([`GENESIS`] for the first). Set by [`append`]; a
    /// value given by the caller is replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<String>,
    /// SHA-256 (lowercase hex) of this line without its `hash` field. Set by [`append`].
    /// Must stay the last field: the seal is computed over the bytes before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

impl AuditRecord {
    /// A record with the required fields; fill the optional ones with the builder methods.
    #[must_use]
    pub fn new(time: String, actor: String, action: AuditAction, outcome: Outcome) -> Self {
        Self {
            time,
            actor,
            action,
            outcome,
            subject: None,
            old: None,
            new: None,
            driver: None,
            message: None,
            transaction: None,
            prev: None,
            hash: None,
        }
    }

    /// Sets the transaction id.
    #[must_use]
    pub fn transaction(mut self, id: impl Into<String>) -> Self {
        self.transaction = Some(id.into());
        self
    }

    /// Sets the subject.
    #[must_use]
    pub fn subject(mut self, s: impl Into<String>) -> Self {
        self.subject = Some(s.into());
        self
    }

    /// Sets old and new values.
    #[must_use]
    pub fn change(mut self, old: Option<serde_json::Value>, new: Option<serde_json::Value>) -> Self {
        self.old = old;
        self.new = new;
        self
    }

    /// Sets the message.
    #[must_use]
    pub fn message(mut self, m: impl Into<String>) -> Self {
        self.message = Some(m.into());
        self
    }

    /// Sets the driver.
    #[must_use]
    pub fn driver(mut self, d: impl Into<String>) -> Self {
        self.driver = Some(d.into());
        self
    }

    /// The record without its chain fields, for comparing what was recorded.
    #[must_use]
    pub fn unsealed(mut self) -> Self {
        self.prev = None;
        self.hash = None;
        self
    }
}

/// The `prev` of the first record of a chain: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The longest line written or read (64 KiB). Longer text fields are cut when writing; a longer
/// line when reading is reported and skipped without being held in memory.
pub const MAX_LINE: usize = 64 * 1024;

/// `,"hash":"` + 64 hex digits + `"}`: how every sealed line ends.
const SEAL_LEN: usize = 9 + 64 + 2;

/// When the log is rotated and how many old files are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// An append to a file this large (bytes) first renames it to `<log>.1` (`.1` to `.2`, …).
    pub max_bytes: u64,
    /// How many rotated files are kept (`<log>.1` … `<log>.<keep>`); the oldest is deleted.
    pub keep: usize,
}

impl Rotation {
    /// 1 MiB per file (about 3000 records), four old files kept.
    pub const DEFAULT: Rotation = Rotation { max_bytes: 1 << 20, keep: 4 };
}

/// The `n`th rotated file of `log`: `audit.jsonl.1` is the newest old file.
#[must_use]
pub fn rotated(log: &Path, n: usize) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// The lock file serialising appends: `<log>.lock`.
fn lock_path(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// The files of the log, oldest first: the rotated ones that exist (`.N` … `.1`), then `log`.
#[must_use]
pub fn log_files(log: &Path) -> Vec<PathBuf> {
    // Scan past gaps (a deleted middle file must show up as a break in the chain, not hide it).
    let mut files: Vec<PathBuf> =
        (1..=Rotation::DEFAULT.keep.max(16)).rev().map(|n| rotated(log, n)).filter(|p| p.exists()).collect();
    files.push(log.to_owned());
    files
}

/// Appends one record with the default [`Rotation`].
///
/// # Errors
/// As [`append_with`].
pub fn append(path: &Path, record: &AuditRecord) -> Result<()> {
    append_with(path, record, Rotation::DEFAULT)
}

/// Appends one record: takes `<log>.lock`, reads the last record's hash, rotates when the file
/// is full, then writes the sealed line (starting a fresh line if the file ends in a torn
/// write) in a single `write` on the `O_APPEND` file and fsyncs it.
///
/// # Errors
/// [`Error::Io`] naming the log file (also when it or its lock is a symbolic link).
pub fn append_with(path: &Path, record: &AuditRecord, rotation: Rotation) -> Result<()> {
    if let Some(dir) = path.parent() {
        ensure_dir(dir)?;
    }
    let _lock = Lock::acquire(&lock_path(path))?;
    let mut file = open_append(path, 0o640, "open audit log")?;
    let size = file.metadata().map_err(|e| Error::io("inspect audit log", path, e))?.len();
    let tail = Tail::read(&file, size, path)?;
    let prev = match tail.last_hash {
        Some(h) => h,
        None if size == 0 => last_hash(&rotated(path, 1))?.unwrap_or_else(|| GENESIS.to_owned()),
        None => GENESIS.to_owned(),
    };
    let mut out = Vec::new();
    let rotate = size >= rotation.max_bytes;
    if rotate {
        drop(file);
        rotate_files(path, rotation)?;
        file = open_append(path, 0o640, "open audit log")?;
    } else if tail.torn {
        out.push(b'\n');
    }
    out.extend_from_slice(&seal(record, &prev)?);
    out.push(b'\n');
    file.write_all(&out).map_err(|e| Error::io("append to audit log", path, e))?;
    file.sync_data().map_err(|e| Error::io("fsync audit log", path, e))?;
    if rotate && let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// `log.(keep-1)` → `log.keep`, …, `log` → `log.1`.
fn rotate_files(path: &Path, rotation: Rotation) -> Result<()> {
    if rotation.keep == 0 {
        return std::fs::remove_file(path).map_err(|e| Error::io("remove full audit log", path, e));
    }
    for n in (1..rotation.keep).rev() {
        let from = rotated(path, n);
        if std::fs::symlink_metadata(&from).is_ok() {
            let to = rotated(path, n + 1);
            std::fs::rename(&from, &to).map_err(|e| Error::io("rotate audit log", &from, e))?;
        }
    }
    let to = rotated(path, 1);
    std::fs::rename(path, &to).map_err(|e| Error::io("rotate audit log", path, e))
}

/// The line for `record` chained to `prev`: the record's JSON with `prev` set, then `hash`.
fn seal(record: &AuditRecord, prev: &str) -> Result<Vec<u8>> {
    let mut r = record.clone();
    r.prev = Some(prev.to_owned());
    r.hash = None;
    let mut body = serde_json::to_vec(&r).map_err(|e| Error::Other(format!("audit record: {e}")))?;
    if body.len() + SEAL_LEN > MAX_LINE {
        shrink(&mut r);
        body = serde_json::to_vec(&r).map_err(|e| Error::Other(format!("audit record: {e}")))?;
    }
    let digest = hex::encode(Sha256::digest(&body));
    body.pop(); // the closing brace
    body.extend_from_slice(format!(",\"hash\":\"{digest}\"}}").as_bytes());
    Ok(body)
}

/// Cuts the free-text fields of an oversized record so its line stays under [`MAX_LINE`].
fn shrink(r: &mut AuditRecord) {
    const KEEP: usize = 2048;
    let cut = |s: &mut String| {
        if s.len() > KEEP {
            let mut end = KEEP;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s.truncate(end);
            s.push_str("… (cut)");
        }
    };
    for s in [&mut r.time, &mut r.actor].into_iter().chain(r.subject.as_mut()).chain(r.driver.as_mut()) {
        cut(s);
    }
    if let Some(m) = r.message.as_mut() {
        cut(m);
    }
    for v in [&mut r.old, &mut r.new].into_iter().flatten() {
        if v.to_string().len() > KEEP {
            *v = serde_json::Value::String("(omitted: too large for the audit log)".into());
        }
    }
}

/// Whether a line's seal holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Seal {
    /// No `hash` field: written before the log was chained.
    Unchained,
    /// The `hash` matches the line's bytes.
    Valid,
    /// The line was changed after it was written.
    Broken,
}

/// Checks a line's seal: the line must end with `,"hash":"<64 hex>"}` and that hash must be the
/// SHA-256 of the line with the ending replaced by `}`.
fn check_seal(line: &[u8], record: &AuditRecord) -> Seal {
    let Some(claimed) = &record.hash else { return Seal::Unchained };
    if line.len() < SEAL_LEN + 1 {
        return Seal::Broken;
    }
    let (head, tail) = line.split_at(line.len() - SEAL_LEN);
    let expected_tail = format!(",\"hash\":\"{claimed}\"}}");
    if tail != expected_tail.as_bytes() || claimed.len() != 64 || record.prev.is_none() {
        return Seal::Broken;
    }
    let mut hasher = Sha256::new();
    hasher.update(head);
    hasher.update(b"}");
    if hex::encode(hasher.finalize()) == *claimed { Seal::Valid } else { Seal::Broken }
}

/// What one line of the log holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// A record and whether its seal holds.
    Record(Box<AuditRecord>, Seal),
    /// A line that is not a record (a torn write followed by later records, an edit, binary
    /// junk, a line over [`MAX_LINE`]): reported, skipped.
    Bad(String),
    /// The last line, cut short by a crash mid-append: skipped silently.
    Torn,
}

/// One numbered line.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// 1-based line number in its file.
    pub number: u64,
    /// What it holds.
    pub entry: Entry,
}

/// A streaming reader of one log file's lines (at most [`MAX_LINE`] bytes held at a time).
pub struct Lines<R> {
    reader: R,
    number: u64,
    path: PathBuf,
}

impl Lines<BufReader<File>> {
    /// Opens one file of the log (without following a symbolic link); `None` when missing.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn open(path: &Path) -> Result<Option<Self>> {
        Ok(open_read(path, "open audit log")?.map(|f| Lines::new(BufReader::new(f), path)))
    }
}

impl<R: BufRead> Lines<R> {
    /// Reads lines from `reader`; `path` names it in errors.
    pub fn new(reader: R, path: &Path) -> Self {
        Self { reader, number: 0, path: path.to_owned() }
    }

    /// Discards the rest of an over-long line.
    fn skip_line(&mut self) -> std::io::Result<()> {
        loop {
            let buf = self.reader.fill_buf()?;
            if buf.is_empty() {
                return Ok(());
            }
            if let Some(i) = buf.iter().position(|&b| b == b'\n') {
                self.reader.consume(i + 1);
                return Ok(());
            }
            let n = buf.len();
            self.reader.consume(n);
        }
    }

    fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        loop {
            let mut buf = Vec::new();
            let limit = u64::try_from(MAX_LINE).unwrap_or(u64::MAX) + 1;
            let n = (&mut self.reader).take(limit).read_until(b'\n', &mut buf)?;
            if n == 0 {
                return Ok(None);
            }
            self.number += 1;
            let complete = buf.last() == Some(&b'\n');
            if complete {
                buf.pop();
            } else if buf.len() > MAX_LINE {
                self.skip_line()?;
                let entry = Entry::Bad(format!("longer than {MAX_LINE} bytes"));
                return Ok(Some(Line { number: self.number, entry }));
            }
            if buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let entry = match serde_json::from_slice::<AuditRecord>(&buf) {
                Ok(record) => {
                    let seal = check_seal(&buf, &record);
                    Entry::Record(Box::new(record), seal)
                }
                Err(_) if !complete => Entry::Torn,
                Err(e) => Entry::Bad(format!("not a record ({e})")),
            };
            return Ok(Some(Line { number: self.number, entry }));
        }
    }
}

impl<R: BufRead> Iterator for Lines<R> {
    type Item = Result<Line>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_line().map_err(|e| Error::io("read audit log", &self.path, e)).transpose()
    }
}

/// The end of a log file: whether it ends in a torn write, and the last record's `hash`.
struct Tail {
    torn: bool,
    last_hash: Option<String>,
}

impl Tail {
    /// Reads the last `2 × MAX_LINE` bytes (the whole file when the window holds no record).
    fn read(file: &File, size: u64, path: &Path) -> Result<Tail> {
        if size == 0 {
            return Ok(Tail { torn: false, last_hash: None });
        }
        let window = (2 * u64::try_from(MAX_LINE).unwrap_or(u64::MAX)).min(size);
        let mut buf = vec![0; usize::try_from(window).unwrap_or(MAX_LINE)];
        file.read_exact_at(&mut buf, size - window).map_err(|e| Error::io("read audit log", path, e))?;
        let torn = buf.last() != Some(&b'\n');
        // The first line of the window may be cut: only lines after a newline are whole.
        let whole = if window < size {
            buf.iter().position(|&b| b == b'\n').map_or(&buf[..0], |i| &buf[i + 1..])
        } else {
            &buf[..]
        };
        let mut last_hash = last_hash_in(Lines::new(whole, path))?;
        if last_hash.is_none() && window < size {
            last_hash = last_hash_in(Lines::new(BufReader::new(file), path))?;
        }
        Ok(Tail { torn, last_hash })
    }
}

/// The `hash` of the last sealed record among `lines`.
fn last_hash_in<R: BufRead>(lines: Lines<R>) -> Result<Option<String>> {
    let mut last = None;
    for line in lines {
        if let Entry::Record(r, Seal::Valid | Seal::Broken) = line?.entry {
            last = r.hash;
        }
    }
    Ok(last)
}

/// The `hash` of the last sealed record of the file at `path` (none if missing).
fn last_hash(path: &Path) -> Result<Option<String>> {
    match open_read(path, "open audit log")? {
        Some(f) => {
            let size = f.metadata().map_err(|e| Error::io("inspect audit log", path, e))?.len();
            Ok(Tail::read(&f, size, path)?.last_hash)
        }
        None => Ok(None),
    }
}

/// Where a line is: `audit.jsonl.1 line 7`.
fn place(path: &Path, number: u64) -> String {
    let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    format!("{name} line {number}")
}

/// Records read by [`history`], and the lines that were skipped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// The records, oldest first (only the last N when asked).
    pub records: Vec<AuditRecord>,
    /// One message per skipped line (`audit.jsonl line 7: not a record (…); skipped`).
    pub skipped: Vec<String>,
}

/// Streams every file of the log (rotated ones first), keeping only the last `last` records in
/// memory. Torn last lines are skipped silently, other bad lines are listed in
/// [`History::skipped`].
///
/// # Errors
/// [`Error::Io`] naming a file that cannot be read (or is a symbolic link).
pub fn history(path: &Path, last: Option<usize>) -> Result<History> {
    let mut records = VecDeque::new();
    let mut skipped = Vec::new();
    for file in log_files(path) {
        let Some(lines) = Lines::open(&file)? else { continue };
        for line in lines {
            let line = line?;
            match line.entry {
                Entry::Record(r, _) => {
                    if last == Some(0) {
                        continue;
                    }
                    if last.is_some_and(|n| records.len() == n) {
                        records.pop_front();
                    }
                    records.push_back(*r);
                }
                Entry::Bad(why) => skipped.push(format!("{}: {why}; skipped", place(&file, line.number))),
                Entry::Torn => {}
            }
        }
    }
    Ok(History { records: records.into(), skipped })
}

/// Reads every record (see [`history`]); skipped lines are dropped.
///
/// # Errors
/// As [`history`].
pub fn read_all(path: &Path) -> Result<Vec<AuditRecord>> {
    Ok(history(path, None)?.records)
}

/// The result of [`verify`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Verification {
    /// The files checked, oldest first.
    pub files: Vec<PathBuf>,
    /// Records read.
    pub records: u64,
    /// Records before the first sealed one (written by a version without the chain).
    pub unchained: u64,
    /// The last record's `hash`: compare it with a copy kept elsewhere to detect removal of the
    /// newest records, which the chain alone cannot show.
    pub last_hash: Option<String>,
    /// What is wrong: an edited, removed, inserted or reordered record. Empty when intact.
    pub problems: Vec<String>,
    /// What is worth knowing but not tampering: torn or bad lines the chain spans, records
    /// rotated away, unchained records from before the upgrade.
    pub notes: Vec<String>,
}

impl Verification {
    /// Whether the chain is intact.
    #[must_use]
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Walks the whole chain (rotated files first) and checks every seal and every `prev` link.
///
/// # Errors
/// [`Error::Io`] naming a file that cannot be read (or is a symbolic link).
pub fn verify(path: &Path) -> Result<Verification> {
    let files = log_files(path);
    let oldest_is_last_kept = files.first().is_some_and(|f| *f == rotated(path, Rotation::DEFAULT.keep));
    let mut v = Verification { files: files.clone(), ..Verification::default() };
    let mut expected: Option<String> = None;
    let mut unfollowed: Option<String> = None;
    for file in &files {
        let Some(lines) = Lines::open(file)? else { continue };
        for line in lines {
            let line = line?;
            let at = place(file, line.number);
            let (record, seal) = match line.entry {
                Entry::Record(r, seal) => (r, seal),
                Entry::Bad(why) => {
                    // A crash leaves a torn line only at the end; a later append starts a fresh
                    // line after it. So a bad line is harmless only when a record follows it.
                    if let Some(earlier) = unfollowed.replace(format!("{at}: {why}")) {
                        v.notes.push(format!("{earlier}; skipped"));
                    }
                    continue;
                }
                Entry::Torn => {
                    v.notes.push(format!("{at}: torn last line (a crash mid-append); skipped"));
                    continue;
                }
            };
            v.records += 1;
            if let Some(bad) = unfollowed.take() {
                v.notes.push(format!("{bad}; skipped (the record after it must link across it)"));
            }
            match seal {
                Seal::Unchained if expected.is_none() => {
                    v.unchained += 1;
                    continue;
                }
                Seal::Unchained => {
                    v.problems.push(format!("{at}: a record without a hash inside the chain (inserted)"));
                    continue;
                }
                Seal::Broken => v.problems.push(format!("{at}: the record was changed after it was written")),
                Seal::Valid => {}
            }
            let prev = record.prev.as_deref().unwrap_or("");
            match &expected {
                Some(h) if h != prev => v.problems.push(format!(
                    "{at}: does not follow the record before it (a record was removed, inserted or reordered)"
                )),
                Some(_) => {}
                None if prev == GENESIS => {}
                None if oldest_is_last_kept && line.number == 1 => {
                    v.notes.push(format!("{at}: the chain starts here; older records were rotated away"));
                }
                None => v
                    .problems
                    .push(format!("{at}: the first record names a predecessor that is missing (records were removed)")),
            }
            expected.clone_from(&record.hash);
        }
    }
    if let Some(bad) = unfollowed {
        v.problems.push(format!("{bad}, and no record follows it (the last record was changed)"));
    }
    if v.unchained > 0 {
        v.notes.push(format!("{} record(s) from before the log was chained are not covered", v.unchained));
    }
    v.last_hash = expected;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;

    use super::*;

    fn rec(i: usize) -> AuditRecord {
        AuditRecord::new(format!("2026-12-04T17:00:{i:02}Z"), "uid=0".into(), AuditAction::ConfigChange, Outcome::Ok)
            .subject("source")
            .change(Some(format!("a{i}").into()), Some(format!("b{i}").into()))
    }

    fn log_with(n: usize) -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log/audit.jsonl");
        for i in 0..n {
            append(&p, &rec(i)).unwrap();
        }
        (d, p)
    }

    fn unsealed(records: Vec<AuditRecord>) -> Vec<AuditRecord> {
        records.into_iter().map(AuditRecord::unsealed).collect()
    }

    fn lines(p: &Path) -> Vec<String> {
        std::fs::read_to_string(p).unwrap().lines().map(str::to_owned).collect()
    }

    fn write_lines(p: &Path, lines: &[String]) {
        std::fs::write(p, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    }

    #[test]
    fn append_and_read_back_and_torn_tail() {
        let (_d, p) = log_with(2);
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"{\"time\":\"x\",\"act").unwrap();
        assert_eq!(unsealed(read_all(&p).unwrap()), vec![rec(0), rec(1)]);
        assert!(history(&p, None).unwrap().skipped.is_empty(), "a torn last line is skipped silently");
    }

    /// Found by the audit_line fuzz target (fuzz/regressions/audit_line-float-roundtrip): a
    /// number in `old`/`new` must read back exactly, or a record's value changes on its way
    /// through the log.
    #[test]
    fn numbers_in_values_read_back_exactly() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("audit.jsonl");
        for n in [2.666_666_666_659_999_4e45, 0.1, 1e-300, f64::MAX, 123_456_789.123_456_79] {
            let r = AuditRecord::new("t".into(), "me".into(), AuditAction::ConfigChange, Outcome::Ok)
                .change(Some(serde_json::json!(n)), None);
            append(&p, &r).unwrap();
            let back = history(&p, Some(1)).unwrap().records.pop().unwrap();
            assert_eq!(back.old.as_ref().and_then(serde_json::Value::as_f64), Some(n), "{n:e}");
        }
        assert!(verify(&p).unwrap().is_intact());
    }

    #[test]
    fn a_torn_last_line_never_swallows_the_next_record() {
        for torn in [&b"{\"time\":\"x\",\"act"[..], b"{", b"garbage without a newline", b"\xff\xfe"] {
            let (_d, p) = log_with(1);
            OpenOptions::new().append(true).open(&p).unwrap().write_all(torn).unwrap();
            append(&p, &rec(1)).unwrap();
            append(&p, &rec(2)).unwrap();
            let h = history(&p, None).unwrap();
            assert_eq!(unsealed(h.records), vec![rec(0), rec(1), rec(2)], "{torn:?}");
            assert_eq!(h.skipped.len(), 1, "the torn line is reported once: {:?}", h.skipped);
            assert!(h.skipped[0].contains("audit.jsonl line 2"), "{:?}", h.skipped);
            let v = verify(&p).unwrap();
            assert!(v.is_intact(), "a crash is not tampering: {v:?}");
            assert_eq!(v.records, 3);
        }
    }

    #[test]
    fn bad_lines_in_the_middle_are_reported_not_fatal() {
        for bad in ["not json", "{\"time\":1}", "[]", "\u{1b}[2J", "{\"time\":\"t\",\"actor\":\"a\"}"] {
            let (_d, p) = log_with(3);
            let mut l = lines(&p);
            l.insert(1, bad.to_owned());
            write_lines(&p, &l);
            let h = history(&p, None).unwrap();
            assert_eq!(unsealed(h.records), vec![rec(0), rec(1), rec(2)], "{bad}");
            assert_eq!(h.skipped.len(), 1, "{bad}: {:?}", h.skipped);
            assert!(h.skipped[0].contains("line 2"), "{:?}", h.skipped);
        }
    }

    #[test]
    fn a_huge_line_is_skipped_without_being_held() {
        let (_d, p) = log_with(2);
        let mut l = lines(&p);
        l.insert(1, "x".repeat(5 * MAX_LINE));
        write_lines(&p, &l);
        append(&p, &rec(2)).unwrap();
        let h = history(&p, None).unwrap();
        assert_eq!(unsealed(h.records), vec![rec(0), rec(1), rec(2)]);
        assert!(h.skipped[0].contains("longer than"), "{:?}", h.skipped);
    }

    #[test]
    fn an_oversized_record_is_cut_to_fit() {
        let (_d, p) = log_with(0);
        let big = rec(0).message("m".repeat(3 * MAX_LINE)).change(None, Some("v".repeat(2 * MAX_LINE).into()));
        append(&p, &big).unwrap();
        append(&p, &rec(1)).unwrap();
        let all = read_all(&p).unwrap();
        assert_eq!(all.len(), 2);
        assert!(all[0].message.as_ref().unwrap().ends_with("(cut)"));
        assert!(lines(&p)[0].len() < MAX_LINE);
        assert!(verify(&p).unwrap().is_intact());
    }

    #[test]
    fn records_are_chained_and_sealed() {
        let (_d, p) = log_with(3);
        let all = read_all(&p).unwrap();
        assert_eq!(all[0].prev.as_deref(), Some(GENESIS));
        assert_eq!(all[1].prev, all[0].hash);
        assert_eq!(all[2].prev, all[1].hash);
        // The hash is SHA-256 of the line with `,"hash":"…"` removed.
        let line = &lines(&p)[1];
        let body = format!("{}}}", &line[..line.len() - SEAL_LEN]);
        assert_eq!(all[1].hash.as_deref(), Some(hex::encode(Sha256::digest(body.as_bytes())).as_str()));
        assert!(line.ends_with(&format!(",\"hash\":\"{}\"}}", all[1].hash.as_ref().unwrap())));
        let v = verify(&p).unwrap();
        assert!(v.is_intact() && v.notes.is_empty(), "{v:?}");
        assert_eq!((v.records, v.last_hash.as_ref()), (3, all[2].hash.as_ref()));
    }

    #[test]
    fn verify_finds_edited_records() {
        for (i, from, to) in [
            (0, "\"b0\"", "\"evil\""),
            (1, "uid=0", "uid=1"),
            (2, "config-change", "key-add"),
            (1, "\"ok\"", "\"failed\""),
            (2, "\"prev\":\"", "\"subject\":\"x\",\"prev\":\""),
        ] {
            let (_d, p) = log_with(3);
            let mut l = lines(&p);
            assert!(l[i].contains(from), "{}", l[i]);
            l[i] = l[i].replacen(from, to, 1);
            write_lines(&p, &l);
            let v = verify(&p).unwrap();
            assert!(!v.is_intact(), "edit of line {} ({from} -> {to}) not found", i + 1);
            assert!(v.problems[0].contains(&format!("line {}", i + 1)), "{:?}", v.problems);
        }
    }

    #[test]
    fn verify_finds_an_edit_with_a_recomputed_seal() {
        let (_d, p) = log_with(3);
        let mut l = lines(&p);
        let mut r: AuditRecord = serde_json::from_str(&l[1]).unwrap();
        r.message = Some("forged".into());
        let prev = r.prev.clone().unwrap();
        l[1] = String::from_utf8(seal(&r, &prev).unwrap()).unwrap();
        write_lines(&p, &l);
        let v = verify(&p).unwrap();
        assert!(v.problems.iter().any(|m| m.contains("line 3") && m.contains("does not follow")), "{v:?}");
    }

    #[test]
    fn verify_finds_removed_inserted_and_reordered_records() {
        type Edit = fn(&mut Vec<String>);
        let cases: [(&str, Edit); 5] = [
            ("removed middle", |l| {
                l.remove(2);
            }),
            ("removed first", |l| {
                l.remove(0);
            }),
            ("swapped", |l| l.swap(1, 2)),
            ("duplicated", |l| {
                let d = l[1].clone();
                l.insert(3, d);
            }),
            ("unchained inserted", |l| {
                l.insert(2, serde_json::to_string(&rec(9)).unwrap());
            }),
        ];
        for (name, edit) in cases {
            let (_d, p) = log_with(4);
            let mut l = lines(&p);
            edit(&mut l);
            write_lines(&p, &l);
            assert!(!verify(&p).unwrap().is_intact(), "{name} not found");
        }
    }

    #[test]
    fn unchained_records_from_before_the_upgrade_are_noted() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("audit.jsonl");
        write_lines(&p, &[serde_json::to_string(&rec(0)).unwrap(), serde_json::to_string(&rec(1)).unwrap()]);
        append(&p, &rec(2)).unwrap();
        let v = verify(&p).unwrap();
        assert!(v.is_intact(), "{v:?}");
        assert_eq!((v.records, v.unchained), (3, 2));
        assert_eq!(read_all(&p).unwrap()[2].prev.as_deref(), Some(GENESIS));
    }

    #[test]
    fn rotation_keeps_the_chain() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("audit.jsonl");
        let rotation = Rotation { max_bytes: 1000, keep: Rotation::DEFAULT.keep };
        for i in 0..40 {
            append_with(&p, &rec(i), rotation).unwrap();
        }
        let files = log_files(&p);
        assert_eq!(files.len(), 5, "{files:?}");
        assert!(std::fs::metadata(&p).unwrap().len() < 2000);
        // The first record of each newer file names the last hash of the older one.
        let last_of = |f: &Path| serde_json::from_str::<AuditRecord>(lines(f).last().unwrap()).unwrap().hash;
        let first_of = |f: &Path| serde_json::from_str::<AuditRecord>(&lines(f)[0]).unwrap().prev;
        for pair in files.windows(2) {
            assert_eq!(first_of(&pair[1]), last_of(&pair[0]), "{pair:?}");
        }
        let v = verify(&p).unwrap();
        assert!(v.is_intact(), "{v:?}");
        assert!(v.notes.iter().any(|n| n.contains("rotated away")), "{v:?}");
        let h = history(&p, Some(3)).unwrap();
        assert_eq!(unsealed(h.records), vec![rec(37), rec(38), rec(39)]);
        // A rotated file removed from the middle breaks the chain.
        std::fs::remove_file(rotated(&p, 2)).unwrap();
        assert!(!verify(&p).unwrap().is_intact());
    }

    #[test]
    fn an_edit_in_a_rotated_file_is_found() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("audit.jsonl");
        for i in 0..10 {
            append_with(&p, &rec(i), Rotation { max_bytes: 1000, keep: 2 }).unwrap();
        }
        let old = rotated(&p, 1);
        let mut l = lines(&old);
        l[0] = l[0].replacen("uid=0", "uid=7", 1);
        write_lines(&old, &l);
        let v = verify(&p).unwrap();
        assert!(v.problems.iter().any(|m| m.contains("audit.jsonl.1 line 1")), "{v:?}");
    }

    #[test]
    fn last_n_streams() {
        let (_d, p) = log_with(5);
        assert_eq!(unsealed(history(&p, Some(2)).unwrap().records), vec![rec(3), rec(4)]);
        assert_eq!(history(&p, Some(0)).unwrap().records, vec![]);
        assert_eq!(history(&p, Some(99)).unwrap().records.len(), 5);
        let missing = tempfile::tempdir().unwrap();
        assert_eq!(history(&missing.path().join("none"), Some(1)).unwrap(), History::default());
    }

    #[test]
    fn symlinks_at_the_log_and_its_lock_are_refused() {
        use std::os::unix::fs::symlink;
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        let p = d.path().join("audit.jsonl");
        symlink(&victim, &p).unwrap();
        let e = append(&p, &rec(0)).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert!(history(&p, None).unwrap_err().to_string().contains("symbolic link"));
        // A dangling link (the file does not exist yet) is not created through either.
        let p2 = d.path().join("audit2.jsonl");
        symlink(d.path().join("created-through-link"), &p2).unwrap();
        assert!(append(&p2, &rec(0)).is_err());
        assert!(!d.path().join("created-through-link").exists());
        // The lock file.
        let p3 = d.path().join("audit3.jsonl");
        symlink(&victim, lock_path(&p3)).unwrap();
        assert!(append(&p3, &rec(0)).unwrap_err().to_string().contains("symbolic link"));
        // A rotated file.
        let p4 = d.path().join("audit4.jsonl");
        append(&p4, &rec(0)).unwrap();
        symlink(&victim, rotated(&p4, 1)).unwrap();
        assert!(verify(&p4).is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    }

    #[test]
    fn a_fifo_at_the_log_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("audit.jsonl");
        let status = std::process::Command::new("mkfifo").arg(&p).status().unwrap();
        assert!(status.success());
        assert!(append(&p, &rec(0)).unwrap_err().to_string().contains("not a regular file"));
    }

    #[test]
    fn concurrent_appends_keep_one_chain() {
        let (_d, p) = log_with(0);
        std::thread::scope(|s| {
            for t in 0..4 {
                let p = p.clone();
                s.spawn(move || {
                    for i in 0..10 {
                        append(&p, &rec(t * 10 + i)).unwrap();
                    }
                });
            }
        });
        let v = verify(&p).unwrap();
        assert!(v.is_intact(), "{v:?}");
        assert_eq!(v.records, 40);
    }
}
