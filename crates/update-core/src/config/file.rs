//! Reading and writing `update.toml`, with the last good copy.
//!
//! - An empty file (or one holding only whitespace) is broken, not "defaults": a crash or a
//!   full disk can leave one. So is a missing file on a device that has a last good copy.
//!   Operations fall back to the last good copy; config changes refuse until it is fixed.
//! - A write keeps what the admin wrote by hand: comments, blank lines, key order and quoting of
//!   every key it does not change ([`toml_edit`]), and goes through
//!   [`crate::atomic::write_atomic`] (unique `O_EXCL|O_NOFOLLOW` temporary; through a symbolic
//!   link only when its directory's owner made it).
//! - The last good copy is never replaced by a config that lost a driver table (`[native]`)
//!   the last good copy has.

use std::path::Path;

use toml_edit::{DocumentMut, Item, Table};

use super::Config;
use crate::atomic::{read_bounded, write_atomic};
use crate::error::{Error, Result};
use crate::paths::Paths;

/// The largest config file read (a config is a few KiB; a device or `/dev/zero` given by
/// mistake is refused, not read).
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

/// Reads a text file (through symbolic links: reading is harmless), at most
/// [`MAX_CONFIG_BYTES`]; `None` when it does not exist.
pub(crate) fn read_text(path: &Path) -> Result<Option<String>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read", path, e)),
    };
    let bytes = read_bounded(file, MAX_CONFIG_BYTES, &path.display().to_string())
        .map_err(|e| Error::ConfigParse { path: path.to_owned(), message: e.to_string() })?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| Error::ConfigParse { path: path.to_owned(), message: "the file is not UTF-8 text".into() })
}

impl Config {
    /// Reads the config. A missing file gives the defaults, unless a last good copy exists (then
    /// the file was lost and that is an error, so the last good copy is used).
    ///
    /// # Errors
    /// [`Error::Io`] when it cannot be read; [`Error::ConfigParse`] when it is not valid, empty,
    /// or missing on a configured device.
    pub fn load(paths: &Paths) -> Result<Config> {
        let path = paths.config_file();
        let last_good = paths.last_good_config();
        match read_text(&path)? {
            Some(text) if text.trim().is_empty() => Err(Error::ConfigParse {
                path,
                message: format!(
                    "the file is empty (cut short by a crash or a full disk?). Restore it from the last good \
                     copy: cp {} <this file>; or delete it to start from the defaults",
                    last_good.display()
                ),
            }),
            Some(text) => Config::parse(&text, &path),
            None if last_good.exists() => Err(Error::ConfigParse {
                path,
                message: format!(
                    "the file is missing but this device was configured. Restore it: cp {} <this file>",
                    last_good.display()
                ),
            }),
            None => Ok(Config::default()),
        }
    }

    /// Reads the config, falling back to the last good copy when the file is broken.
    /// The second value is the error that caused the fallback, for the caller to log.
    ///
    /// # Errors
    /// The original error when there is no usable last good copy either.
    pub fn load_or_last_good(paths: &Paths) -> Result<(Config, Option<Error>)> {
        match Config::load(paths) {
            Ok(c) => Ok((c, None)),
            Err(e) => {
                let last = paths.last_good_config();
                let fallback = read_text(&last).ok().flatten().and_then(|t| Config::parse(&t, &last).ok());
                match fallback {
                    Some(c) => Ok((c, Some(e))),
                    None => Err(e),
                }
            }
        }
    }

    /// The text to write: the file on disk with only what changed replaced (comments and
    /// formatting of the rest kept), or the plain serialisation when there is no usable file.
    ///
    /// Every edit the merge makes (a value replaced, a key added or removed) is then tried
    /// undone one by one and kept undone when the file still means this config, so defaults
    /// the admin left out are not added and defaults written by hand are not removed.
    fn edited_text(&self, current: Option<&str>, path: &Path) -> String {
        let fresh = self.to_toml();
        let Some(mut doc) = current.and_then(|t| t.parse::<DocumentMut>().ok()) else { return fresh };
        let Ok(new) = fresh.parse::<DocumentMut>() else { return fresh };
        let mut edits = Vec::new();
        merge(doc.as_table_mut(), new.as_table(), &mut Vec::new(), &mut edits);
        let means_this = |d: &DocumentMut| Config::parse(&d.to_string(), path).is_ok_and(|c| c == *self);
        for (at, before) in edits {
            let mut undone = doc.clone();
            if put(undone.as_table_mut(), &at, before) && means_this(&undone) {
                doc = undone;
            }
        }
        if means_this(&doc) { doc.to_string() } else { fresh }
    }

    /// Writes the config atomically (keeping hand-written comments), then refreshes the last
    /// good copy unless that would lose a driver table it has. Callers hold the config lock.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] when invalid (nothing is written), [`Error::Io`] when a write fails.
    pub fn store(&self, paths: &Paths) -> Result<()> {
        self.validate()?;
        let path = paths.config_file();
        let current = read_text(&path).ok().flatten();
        let text = self.edited_text(current.as_deref(), &path);
        write_atomic(&path, text.as_bytes(), 0o644)?;
        let last_good = paths.last_good_config();
        let last = read_text(&last_good).ok().flatten().and_then(|t| Config::parse(&t, &last_good).ok());
        if last.is_some_and(|l| l.native.is_some() && self.native.is_none()) {
            return Ok(());
        }
        write_atomic(&last_good, text.as_bytes(), 0o644)
    }
}

/// One edit made by [`merge`]: the key's path and what it held before (`None`: absent).
type Edit = (Vec<String>, Option<Item>);

/// Makes `old` hold the same data as `new`, touching only what differs: an unchanged value keeps
/// its formatting and comments, a changed value keeps the comments around its key. Records
/// each edit in `edits`.
fn merge(old: &mut Table, new: &Table, at: &mut Vec<String>, edits: &mut Vec<Edit>) {
    let path = |at: &Vec<String>, k: &str| at.iter().cloned().chain([k.to_owned()]).collect::<Vec<_>>();
    let gone: Vec<String> = old.iter().map(|(k, _)| k.to_owned()).filter(|k| !new.contains_key(k)).collect();
    for k in gone {
        let before = old.remove(&k);
        edits.push((path(at, &k), before));
    }
    for (key, new_item) in new {
        match (old.get_mut(key), new_item) {
            (Some(Item::Table(o)), Item::Table(n)) => {
                at.push(key.to_owned());
                merge(o, n, at, edits);
                at.pop();
            }
            (Some(Item::Value(o)), Item::Value(n)) => {
                if !same_value(o, n) {
                    let before = Item::Value(o.clone());
                    let decor = o.decor().clone();
                    *o = n.clone();
                    *o.decor_mut() = decor;
                    edits.push((path(at, key), Some(before)));
                }
            }
            (Some(o), n) => {
                if o.to_string().trim() != n.to_string().trim() {
                    let before = std::mem::replace(o, n.clone());
                    edits.push((path(at, key), Some(before)));
                }
            }
            (None, n) => {
                old.insert(key, n.clone());
                edits.push((path(at, key), None));
            }
        }
    }
}

/// Sets (or removes, for `None`) the item at `path`; false when the path is gone.
fn put(root: &mut Table, path: &[String], item: Option<Item>) -> bool {
    let Some((last, parents)) = path.split_last() else { return false };
    let mut table = root;
    for k in parents {
        match table.get_mut(k).and_then(Item::as_table_mut) {
            Some(t) => table = t,
            None => return false,
        }
    }
    match item {
        Some(i) => {
            table.insert(last, i);
        }
        None => {
            table.remove(last);
        }
    }
    true
}

/// Whether two TOML values mean the same (`'a'` and `"a"` do).
fn same_value(a: &toml_edit::Value, b: &toml_edit::Value) -> bool {
    let parse = |v: &toml_edit::Value| {
        let mut v = v.clone();
        v.decor_mut().clear();
        format!("v = {v}").parse::<toml::Table>().ok()
    };
    matches!((parse(a), parse(b)), (Some(x), Some(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::config::{Schedule, SourceUrl};

    const NATIVE: &str = r#"
[native]
compatible = "board"
[native.boot]
bootloader = "file"
env = [{ path = "/boot/state" }]
[native.slots.rootfs]
a = "/dev/a"
b = "/dev/b"
"#;

    fn device(text: &str) -> (tempfile::TempDir, Paths) {
        let d = tempfile::tempdir().unwrap();
        let paths = Paths::new(d.path());
        let c = Config::parse(text, Path::new("x")).unwrap();
        c.store(&paths).unwrap();
        std::fs::write(paths.config_file(), text).unwrap();
        (d, paths)
    }

    #[test]
    fn an_empty_file_is_broken_and_the_last_good_copy_is_used() {
        for empty in ["", "\n", "   \n\t\n"] {
            let (_d, paths) = device(&format!("source = \"https://u.example/r\"\n{NATIVE}"));
            std::fs::write(paths.config_file(), empty).unwrap();
            let e = Config::load(&paths).unwrap_err();
            assert!(e.to_string().contains("empty"), "{e}");
            let (c, why) = Config::load_or_last_good(&paths).unwrap();
            assert!(c.native.is_some() && why.is_some(), "{empty:?}");
        }
    }

    #[test]
    fn a_lost_file_on_a_configured_device_is_broken_but_a_fresh_device_gets_defaults() {
        let (_d, paths) = device(NATIVE);
        std::fs::remove_file(paths.config_file()).unwrap();
        assert!(Config::load(&paths).unwrap_err().to_string().contains("missing"));
        assert!(Config::load_or_last_good(&paths).unwrap().0.native.is_some());
        let fresh = tempfile::tempdir().unwrap();
        assert_eq!(Config::load(&Paths::new(fresh.path())).unwrap(), Config::default());
    }

    #[test]
    fn huge_or_binary_files_are_refused_not_read() {
        let (_d, paths) = device(NATIVE);
        let big = format!("# {}\n", "x".repeat(MAX_CONFIG_BYTES));
        for bad in [big.into_bytes(), vec![0xff, 0xfe, 0], b"source = \"https://a/\"\n\xff".to_vec()] {
            std::fs::write(paths.config_file(), &bad).unwrap();
            assert!(Config::load(&paths).is_err());
            assert!(Config::load_or_last_good(&paths).unwrap().0.native.is_some());
        }
    }

    #[test]
    fn the_last_good_copy_never_loses_the_driver_table() {
        let (_d, paths) = device(NATIVE);
        // The file is lost and someone writes the defaults plus one change.
        let mut c = Config { schedule: Schedule::Off, ..Config::default() };
        c.source = Some(SourceUrl::new("https://u.example/r").unwrap());
        c.store(&paths).unwrap();
        let last = std::fs::read_to_string(paths.last_good_config()).unwrap();
        assert!(last.contains("[native"), "{last}");
    }

    #[test]
    fn hand_written_comments_survive_a_write() {
        let text = format!(
            "# Managed by the fleet team: ask #ops before changing.\n\
             source = 'https://u.example/r'   # the CDN\n\n\
             # check twice a day\nschedule = \"hourly 12\"\n{NATIVE}# slots above\n"
        );
        let (_d, paths) = device(&text);
        let mut c = Config::load(&paths).unwrap();
        c.schedule = Schedule::every("daily", "1").unwrap();
        c.boot_retry_limit = 5;
        c.store(&paths).unwrap();
        let after = std::fs::read_to_string(paths.config_file()).unwrap();
        for kept in [
            "# Managed by the fleet team: ask #ops before changing.\n",
            "source = 'https://u.example/r'   # the CDN\n",
            "# check twice a day\nschedule = \"daily 1\"",
            "# slots above",
            "env = [{ path = \"/boot/state\" }]",
        ] {
            assert!(after.contains(kept), "{kept:?} lost:\n{after}");
        }
        assert_eq!(Config::load(&paths).unwrap(), c);
        // Removing a key removes only that key.
        c.source = None;
        c.store(&paths).unwrap();
        let after = std::fs::read_to_string(paths.config_file()).unwrap();
        assert!(!after.contains("u.example") && after.contains("# check twice a day"), "{after}");
        assert_eq!(Config::load(&paths).unwrap(), c);
    }

    #[test]
    fn writes_go_through_a_legitimate_link_and_refuse_a_planted_one() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let paths = Paths::new(d.path());
        std::fs::create_dir_all(d.path().join("etc/update")).unwrap();
        std::fs::create_dir_all(d.path().join("data")).unwrap();
        std::fs::write(d.path().join("data/update.toml"), "# on /data\nschedule = \"off\"\n").unwrap();
        symlink("../../data/update.toml", paths.config_file()).unwrap();
        let mut c = Config::load(&paths).unwrap();
        c.schedule = Schedule::every("weekly", "1").unwrap();
        c.store(&paths).unwrap();
        assert!(std::fs::symlink_metadata(paths.config_file()).unwrap().file_type().is_symlink());
        let data = std::fs::read_to_string(d.path().join("data/update.toml")).unwrap();
        assert_eq!(data, "# on /data\nschedule = \"weekly 1\"\n");
        // The same link in a directory anyone can write is someone else's.
        std::fs::set_permissions(d.path().join("etc/update"), std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(c.store(&paths).unwrap_err().to_string().contains("planted"));
    }
}
