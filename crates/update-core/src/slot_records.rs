//! Slot records: what each slot of an A/B system holds — the version installed, when, and the
//! SHA-256 of each image written — and the slot of an install that is not committed yet. The
//! native driver keeps them in `/var/lib/update/slots.json`; the A/B adapters whose tools do not
//! say (mender, swupdate) keep theirs in a file of their own in the same directory.
//!
//! The file is JSON, replaced atomically (mode 0644), in format 1:
//!
//! ```json
//! {"format": 1, "slots": {"A": {"version": "1.0.0", "installed": "2026-12-05T12:00:00Z",
//!  "images": {"rootfs": "9f86…"}}, "B": {"version": "2.0.0"}}, "pending": "B"}
//! ```
//!
//! Reading also accepts the two forms written before format 1, so a device that upgrades keeps
//! its records: the native driver's `{"A": {…}, "B": {…}}` and the adapters'
//! `{"versions": {"A": "1.0"}, "pending": "B"}`. The top-level keys tell the forms apart:
//! `format` is format 1 (any other number is refused: a newer release wrote it); only `A` and `B`
//! (or none) is the native driver's old form; only `versions` and `pending` is the adapters';
//! anything else is refused. Within format 1 a field added later is ignored by older readers;
//! a change they would misread raises the format number. Every write is format 1, and repeats
//! what the older releases read (top-level `A`/`B` with complete records, and `versions`), so a
//! device that falls back to an older release keeps its records.
//!
//! A slot's version is kept as text: an update tool's names are free-form (`release-2.0`).
//! [`SlotRecord::version`] reads it as a semantic version; the native driver, which records only
//! versions it verified, refuses records where that fails.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::atomic::{open_read, read_bounded, write_atomic};
use crate::{Error, Result, Version};

/// The format [`SlotRecords::store`] writes and the newest [`SlotRecords::load`] reads.
pub const FORMAT: u64 = 1;

/// The largest records file read (two slots take a few hundred bytes).
pub const MAX_BYTES: usize = 1024 * 1024;

/// What one slot holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotRecord {
    /// The version installed, as its installer named it; empty when the slot is known to boot
    /// but not what it holds (a factory image under an adapter).
    pub version: String,
    /// When it was installed (RFC 3339), where the installer recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed: Option<String>,
    /// SHA-256 (hex) of each image as written, by slot group; empty under an adapter.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub images: BTreeMap<String, String>,
}

impl SlotRecord {
    /// A record of `version` alone, without time or images: what an update tool tells.
    #[must_use]
    pub fn named(version: impl Into<String>) -> Self {
        Self { version: version.into(), ..Self::default() }
    }

    /// The recorded version read as a semantic version, strictly (`1.0.0`, not `1.0`).
    ///
    /// # Errors
    /// [`Error::InvalidValue`] when it is not one.
    pub fn version(&self) -> Result<Version> {
        Version::parse(&self.version).map_err(|e| Error::InvalidValue {
            what: "slot version".into(),
            value: self.version.clone(),
            reason: e.to_string(),
        })
    }
}

/// The records of every slot, by slot name (`A`, `B`, or a tool's own names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotRecords {
    /// Each slot's record; a slot with none holds nothing known.
    pub slots: BTreeMap<String, SlotRecord>,
    /// The slot of the last install while it is not committed.
    pub pending: Option<String>,
}

/// Format 1, as read.
#[derive(Deserialize)]
struct Format1 {
    #[serde(default)]
    slots: BTreeMap<String, SlotRecord>,
    #[serde(default)]
    pending: Option<String>,
}

/// Format 1, as written. Besides `slots`, it repeats what the releases before format 1 read —
/// the native driver's top-level `A` and `B`, the adapters' `versions` — so a device that falls
/// back to an older release (whose reader ignores the keys it does not know) still reads its
/// records, and its anti-rollback check still knows the installed versions.
#[derive(Serialize)]
struct Written<'a> {
    format: u64,
    slots: &'a BTreeMap<String, SlotRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pending: Option<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    versions: BTreeMap<&'a str, &'a str>,
    #[serde(rename = "A", skip_serializing_if = "Option::is_none")]
    a: Option<&'a SlotRecord>,
    #[serde(rename = "B", skip_serializing_if = "Option::is_none")]
    b: Option<&'a SlotRecord>,
}

/// The adapters' form before format 1.
#[derive(Deserialize)]
struct AdapterForm {
    #[serde(default)]
    versions: BTreeMap<String, String>,
    #[serde(default)]
    pending: Option<String>,
}

impl SlotRecords {
    /// Reads the records at `path` (none yet: empty), in any form ([the module docs](self)),
    /// without following a symbolic link and reading at most [`MAX_BYTES`].
    ///
    /// # Errors
    /// [`Error::Io`] naming the file (also when it is a symbolic link or not a regular file);
    /// [`Error::ConfigParse`] naming it when it is too large, malformed, or in an unknown format.
    pub fn load(path: &Path) -> Result<Self> {
        let Some(file) = open_read(path, "read")? else {
            return Ok(Self::default());
        };
        let bytes = read_bounded(file, MAX_BYTES, &path.display().to_string()).map_err(|e| match e {
            Error::InvalidValue { .. } => Error::ConfigParse {
                path: path.to_owned(),
                message: format!("more than {MAX_BYTES} bytes: not slot records"),
            },
            other => other,
        })?;
        Self::parse(&bytes, path)
    }

    /// Parses records in any form; `path` only names the file in errors.
    ///
    /// # Errors
    /// [`Error::ConfigParse`] naming `path` when the bytes are not slot records or are in an
    /// unknown format.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Self> {
        let bad = |message: String| Error::ConfigParse { path: path.to_owned(), message };
        let value: Value = serde_json::from_slice(bytes).map_err(|e| bad(format!("not slot records: {e}")))?;
        let Value::Object(top) = value else {
            return Err(bad("not slot records: not a JSON object".into()));
        };
        let only = |keys: &[&str]| top.keys().all(|k| keys.contains(&k.as_str()));
        let invalid = |e: serde_json::Error| bad(format!("invalid slot records: {e}"));
        if let Some(format) = top.get("format") {
            match format.as_u64() {
                Some(FORMAT) => {}
                Some(n) => {
                    return Err(bad(format!(
                        "slot records in format {n}, which this release cannot read (it reads format {FORMAT}): \
                         a different release of libupdate wrote them"
                    )));
                }
                None => return Err(bad(format!("invalid slot records: format {format} is not a whole number"))),
            }
            let f: Format1 = serde_json::from_value(Value::Object(top)).map_err(invalid)?;
            Ok(Self { slots: f.slots, pending: f.pending })
        } else if only(&["A", "B"]) {
            let slots = serde_json::from_value(Value::Object(top)).map_err(invalid)?;
            Ok(Self { slots, pending: None })
        } else if only(&["versions", "pending"]) {
            let f: AdapterForm = serde_json::from_value(Value::Object(top)).map_err(invalid)?;
            let slots = f.versions.into_iter().map(|(slot, version)| (slot, SlotRecord::named(version)));
            Ok(Self { slots: crate::sort::collect_map(slots), pending: f.pending })
        } else {
            Err(bad("not slot records: expected a \"format\" key (or the older forms' \"A\" and \"B\", or \"versions\" and \"pending\")".into()))
        }
    }

    /// The records in format 1.
    ///
    /// # Errors
    /// None in practice (the types always serialise); [`Error::Other`] otherwise.
    pub fn to_json(&self) -> Result<Vec<u8>> {
        let written = Written {
            format: FORMAT,
            slots: &self.slots,
            pending: self.pending.as_deref(),
            versions: crate::sort::collect_map(self.slots.iter().map(|(slot, r)| (slot.as_str(), r.version.as_str()))),
            // Only complete records: the native driver's older reader requires both fields.
            a: self.slots.get("A").filter(|r| r.installed.is_some()),
            b: self.slots.get("B").filter(|r| r.installed.is_some()),
        };
        serde_json::to_vec_pretty(&written).map_err(|e| Error::Other(format!("slot records: {e}")))
    }

    /// Replaces the file at `path` with the records in format 1, atomically, mode 0644.
    ///
    /// # Errors
    /// I/O errors naming the file.
    pub fn store(&self, path: &Path) -> Result<()> {
        write_atomic(path, &self.to_json()?, 0o644)
    }

    /// The record of `slot`.
    #[must_use]
    pub fn get(&self, slot: &str) -> Option<&SlotRecord> {
        self.slots.get(slot)
    }

    /// `" (VERSION)"` naming what `slot` holds, for messages, or nothing.
    #[must_use]
    pub fn label(&self, slot: &str) -> String {
        self.get(slot).filter(|r| !r.version.is_empty()).map(|r| format!(" ({})", r.version)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    /// What releases before format 1 read, as they declared it (serde ignores other keys).
    mod older {
        use std::collections::BTreeMap;

        #[derive(serde::Deserialize)]
        pub struct NativeRecord {
            pub version: crate::Version,
            pub installed: String,
            #[serde(default)]
            pub images: BTreeMap<String, String>,
        }

        #[derive(serde::Deserialize)]
        pub struct Native {
            #[serde(rename = "A", default)]
            pub a: Option<NativeRecord>,
            #[serde(rename = "B", default)]
            pub b: Option<NativeRecord>,
        }

        #[derive(serde::Deserialize)]
        pub struct Adapter {
            #[serde(default)]
            pub versions: BTreeMap<String, String>,
            #[serde(default)]
            pub pending: Option<String>,
        }
    }

    #[test]
    fn format_1_is_read_by_the_releases_before_it() {
        let mut r = super::SlotRecords::default();
        let mut a = super::SlotRecord::named("1.0.0");
        a.installed = Some("2026-12-05T12:00:00Z".into());
        a.images.insert("rootfs".into(), "ab".repeat(32));
        r.slots.insert("A".into(), a);
        r.slots.insert("B".into(), super::SlotRecord::named("release-2"));
        r.pending = Some("B".into());
        let bytes = r.to_json().unwrap();
        let native: older::Native = serde_json::from_slice(&bytes).unwrap();
        let a = native.a.unwrap();
        assert_eq!((a.version.to_string(), a.installed.as_str()), ("1.0.0".into(), "2026-12-05T12:00:00Z"));
        assert_eq!(a.images["rootfs"], "ab".repeat(32));
        assert!(native.b.is_none(), "an incomplete record is not shown to the strict older reader");
        let adapter: older::Adapter = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(adapter.versions["A"], "1.0.0");
        assert_eq!(adapter.versions["B"], "release-2");
        assert_eq!(adapter.pending.as_deref(), Some("B"));
        // And this release reads what it wrote.
        assert_eq!(super::SlotRecords::parse(&bytes, std::path::Path::new("x")).unwrap(), r);
    }

    use std::os::unix::fs::symlink;
    use std::path::PathBuf;

    use proptest::prelude::*;

    use super::*;

    fn record(version: &str, installed: Option<&str>, images: &[(&str, &str)]) -> SlotRecord {
        SlotRecord {
            version: version.into(),
            installed: installed.map(Into::into),
            images: images.iter().map(|&(g, h)| (g.into(), h.into())).collect(),
        }
    }

    fn records(slots: &[(&str, SlotRecord)], pending: Option<&str>) -> SlotRecords {
        SlotRecords {
            slots: slots.iter().map(|(s, r)| ((*s).to_owned(), r.clone())).collect(),
            pending: pending.map(Into::into),
        }
    }

    /// A file in a fresh directory holding `bytes`.
    fn file_with(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("slots.json");
        std::fs::write(&path, bytes).unwrap();
        (dir, path)
    }

    /// `load` fails with a message naming the file, and the file is left as it was.
    fn refused(bytes: &[u8], says: &str) {
        let (_dir, path) = file_with(bytes);
        let e = SlotRecords::load(&path).unwrap_err().to_string();
        assert!(e.contains(&path.display().to_string()), "{e}");
        assert!(e.contains(says), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }

    #[test]
    fn a_missing_file_is_no_records() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(SlotRecords::load(&dir.path().join("slots.json")).unwrap(), SlotRecords::default());
        assert!(!dir.path().join("slots.json").exists());
    }

    #[test]
    fn the_native_drivers_old_form_is_read() {
        let old = br#"{
  "A": {"version": "1.0.0", "installed": "2026-11-01T10:00:00Z", "images": {"kernel": "aa", "rootfs": "bb"}},
  "B": {"version": "2.0.0-rc.1", "installed": "2026-11-02T10:00:00Z"}
}"#;
        let (_dir, path) = file_with(old);
        let want = records(
            &[
                ("A", record("1.0.0", Some("2026-11-01T10:00:00Z"), &[("kernel", "aa"), ("rootfs", "bb")])),
                ("B", record("2.0.0-rc.1", Some("2026-11-02T10:00:00Z"), &[])),
            ],
            None,
        );
        assert_eq!(SlotRecords::load(&path).unwrap(), want);
        let (_dir, path) = file_with(br#"{"B": {"version": "3.1.4", "installed": "x", "images": {}}}"#);
        assert_eq!(SlotRecords::load(&path).unwrap(), records(&[("B", record("3.1.4", Some("x"), &[]))], None));
        let (_dir, path) = file_with(b"{}");
        assert_eq!(SlotRecords::load(&path).unwrap(), SlotRecords::default());
    }

    #[test]
    fn the_adapters_old_form_is_read() {
        let (_dir, path) = file_with(br#"{"versions": {"A": "", "B": "release-2.0"}, "pending": "B"}"#);
        let want = records(&[("A", record("", None, &[])), ("B", record("release-2.0", None, &[]))], Some("B"));
        assert_eq!(SlotRecords::load(&path).unwrap(), want);
        let (_dir, path) = file_with(br#"{"versions": {"A": "1.0"}}"#);
        assert_eq!(SlotRecords::load(&path).unwrap(), records(&[("A", record("1.0", None, &[]))], None));
    }

    #[test]
    fn an_old_form_is_rewritten_in_format_1() {
        let (_dir, path) = file_with(br#"{"versions": {"A": "1.0", "B": "2.0"}, "pending": "B"}"#);
        let r = SlotRecords::load(&path).unwrap();
        r.store(&path).unwrap();
        let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "format": 1,
                "slots": {"A": {"version": "1.0"}, "B": {"version": "2.0"}},
                "pending": "B",
                "versions": {"A": "1.0", "B": "2.0"}
            })
        );
        assert_eq!(SlotRecords::load(&path).unwrap(), r);
    }

    #[test]
    fn format_1_ignores_fields_added_later() {
        let (_dir, path) = file_with(
            br#"{"format": 1, "slots": {"A": {"version": "1.0.0", "size": 3}}, "note": "x", "pending": "A"}"#,
        );
        assert_eq!(SlotRecords::load(&path).unwrap(), records(&[("A", record("1.0.0", None, &[]))], Some("A")));
    }

    #[test]
    fn an_unknown_format_is_refused() {
        refused(br#"{"format": 2, "slots": {}}"#, "format 2");
        refused(br#"{"format": 0, "slots": {}}"#, "format 0");
        refused(br#"{"format": "1", "slots": {}}"#, "not a whole number");
        refused(br#"{"format": 1.5}"#, "not a whole number");
    }

    #[test]
    fn garbage_is_refused() {
        refused(b"", "not slot records");
        refused(b"\x00\xff\xfe", "not slot records");
        refused(br#"{"A": {"version": "1.0.0"}"#, "not slot records");
        refused(b"[1, 2]", "not a JSON object");
        refused(br#"{"C": {"version": "1.0.0"}}"#, "expected a \"format\" key");
        refused(br#"{"A": {"version": "1.0.0"}, "pending": "A"}"#, "expected a \"format\" key");
        refused(br#"{"A": {"installed": "x"}}"#, "missing field `version`");
        refused(br#"{"versions": ["A"]}"#, "invalid slot records");
        refused(br#"{"format": 1, "slots": {"A": "1.0.0"}}"#, "invalid slot records");
    }

    #[test]
    fn a_file_over_the_cap_is_refused() {
        let mut big = br#"{"format": 1, "slots": {}, "pad": ""#.to_vec();
        big.resize(MAX_BYTES + 1 - 2, b'x');
        big.extend_from_slice(br#""}"#);
        assert_eq!(big.len(), MAX_BYTES + 1);
        refused(&big, "more than 1048576 bytes");
        // Exactly the cap is read.
        big.truncate(MAX_BYTES - 2);
        big.extend_from_slice(br#""}"#);
        let (_dir, path) = file_with(&big);
        assert_eq!(SlotRecords::load(&path).unwrap(), SlotRecords::default());
    }

    #[test]
    fn a_symbolic_link_is_not_followed() {
        let (dir, target) = file_with(br#"{"format": 1, "slots": {"A": {"version": "1.0.0"}}}"#);
        let link = dir.path().join("link.json");
        symlink(&target, &link).unwrap();
        let e = SlotRecords::load(&link).unwrap_err().to_string();
        assert!(e.contains(&link.display().to_string()) && e.contains("symbolic link"), "{e}");
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        // A dangling one too.
        let dangling = dir.path().join("dangling.json");
        symlink(dir.path().join("nowhere"), &dangling).unwrap();
        assert!(SlotRecords::load(&dangling).unwrap_err().to_string().contains("symbolic link"));
    }

    #[test]
    fn a_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = SlotRecords::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains(&dir.path().display().to_string()), "{e}");
    }

    #[test]
    fn store_writes_0644_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("slots.json");
        let one = records(&[("A", record("1.0.0", Some("t"), &[("rootfs", "aa")]))], None);
        one.store(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777, 0o644);
        let two = records(&[("A", record("1.0.0", Some("t"), &[])), ("B", record("2.0.0", None, &[]))], Some("B"));
        two.store(&path).unwrap();
        assert_eq!(SlotRecords::load(&path).unwrap(), two);
    }

    #[test]
    fn version_is_strict_and_label_skips_unknown() {
        assert_eq!(record("1.2.3-rc.1", None, &[]).version().unwrap().to_string(), "1.2.3-rc.1");
        for bad in ["", "1.0", "release-2.0", "v1.0.0"] {
            assert!(record(bad, None, &[]).version().is_err(), "{bad}");
        }
        let r = records(&[("A", record("", None, &[])), ("B", record("release-2", None, &[]))], None);
        assert_eq!((r.label("A"), r.label("B"), r.label("C")), (String::new(), " (release-2)".into(), String::new()));
    }

    fn any_records() -> impl Strategy<Value = SlotRecords> {
        let text = ".{0,12}";
        let record = (text, proptest::option::of(text), proptest::collection::btree_map(text, "[0-9a-f]{0,64}", 0..3))
            .prop_map(|(version, installed, images)| SlotRecord { version, installed, images });
        (proptest::collection::btree_map(text, record, 0..4), proptest::option::of(text))
            .prop_map(|(slots, pending)| SlotRecords { slots, pending })
    }

    proptest! {
        #[test]
        fn format_1_round_trips(r in any_records()) {
            let path = Path::new("slots.json");
            let bytes = r.to_json().unwrap();
            prop_assert_eq!(SlotRecords::parse(&bytes, path).unwrap(), r);
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = SlotRecords::parse(&bytes, Path::new("slots.json"));
        }
    }
}
