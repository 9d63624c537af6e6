//! Versioned `--json` output (docs/reference/json.md, schemas in docs/reference/schemas/).
//!
//! Every document printed with `--json` is one JSON object whose `schema` field names what it is
//! and the major version of its shape, `libupdate/<name>/<major>` (`libupdate/status/1`). Within
//! a major version fields are only added; a rename or removal makes a new major. Keys are
//! kebab-case. Lists (history, drivers, keys) are wrapped in an object so that they carry the
//! version too (`{"schema": "libupdate/history/1", "records": [...]}`).
//!
//! Version 1 also repeats the few keys that were snake_case before the naming was made uniform
//! (`tries_left`, `reboot_required`, `public_key`, `key_id`, `last_hash`) under their old
//! names, with the same value; version 2 drops them. They are added here, at the edge, so the
//! library's own types serialize kebab-case only.

use serde::Serialize;
use serde_json::{Map, Value};
use update_core::{Error, Result};

/// The major version of every schema this binary prints.
pub const MAJOR: u32 = 1;

/// What a `--json` document is; each has a schema in docs/reference/schemas/`<name>`.schema.json.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Doc {
    /// `update status --json`.
    Status,
    /// `update history --json`.
    History,
    /// `update history --verify --json`.
    HistoryVerify,
    /// `update --json` (check).
    Check,
    /// `update --now --json` (install).
    Install,
    /// `update drivers --json`.
    Drivers,
    /// `update config key list --json`.
    KeyList,
    /// `update config show --json`.
    ConfigShow,
    /// An error, printed instead of the document the command would have printed.
    Error,
    /// One line of `--progress-fd` (JSON Lines).
    Progress,
    /// What `mark-good`, `cancel`, `mark-bad`, `rollback`, `config KEY VALUE` and
    /// `config key add|update|delete` changed.
    Change,
}

impl Doc {
    /// Every document, for the schema tests.
    pub const ALL: [Doc; 11] = [
        Doc::Status,
        Doc::History,
        Doc::HistoryVerify,
        Doc::Check,
        Doc::Install,
        Doc::Drivers,
        Doc::KeyList,
        Doc::ConfigShow,
        Doc::Error,
        Doc::Progress,
        Doc::Change,
    ];

    /// The schema's name: `status`, `history`, `key-list`, …
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Doc::Status => "status",
            Doc::History => "history",
            Doc::HistoryVerify => "history-verify",
            Doc::Check => "check",
            Doc::Install => "install",
            Doc::Drivers => "drivers",
            Doc::KeyList => "key-list",
            Doc::ConfigShow => "config-show",
            Doc::Error => "error",
            Doc::Progress => "progress",
            Doc::Change => "change",
        }
    }

    /// The value of the `schema` field: `libupdate/status/1`.
    #[must_use]
    pub fn id(self) -> String {
        format!("libupdate/{}/{MAJOR}", self.name())
    }

    /// The key a list is wrapped under (`records`, `drivers`, `keys`).
    fn list_key(self) -> &'static str {
        match self {
            Doc::History => "records",
            Doc::Drivers => "drivers",
            Doc::KeyList => "keys",
            _ => "items",
        }
    }
}

/// Adds `old` beside `new` (same value) in every object `objects` yields.
fn legacy<'a>(objects: impl Iterator<Item = &'a mut Value>, new: &str, old: &str) {
    for o in objects.filter_map(Value::as_object_mut) {
        if let Some(v) = o.get(new).cloned() {
            o.insert(old.to_owned(), v);
        }
    }
}

fn items<'a>(v: &'a mut Value, key: &str) -> Vec<&'a mut Value> {
    v.get_mut(key).and_then(Value::as_array_mut).map(|a| a.iter_mut().collect()).unwrap_or_default()
}

/// The document for `value`: the `schema` field added, a list wrapped, the version-1 legacy
/// keys repeated.
///
/// # Errors
/// When `value` cannot be serialized.
pub fn document<T: Serialize + ?Sized>(doc: Doc, value: &T) -> Result<Value> {
    // Through text rather than `serde_json::to_value`: the pretty writer's code for each report
    // type is in the binary anyway (a second, Value, serializer per type would not be), and the
    // rest is one function for every type (the binary is near its size limit).
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::Other(format!("JSON output: {e}")))?;
    document_from_text(doc, &text)
}

fn document_from_text(doc: Doc, text: &str) -> Result<Value> {
    let value: Value = serde_json::from_str(text).map_err(|e| Error::Other(format!("JSON output: {e}")))?;
    let mut v = match value {
        Value::Object(map) => Value::Object(map),
        other => {
            let mut map = Map::new();
            map.insert(doc.list_key().to_owned(), other);
            Value::Object(map)
        }
    };
    match doc {
        Doc::Status => legacy(items(&mut v, "slots").into_iter(), "tries-left", "tries_left"),
        Doc::Install => legacy(v.get_mut("installed").into_iter(), "reboot-required", "reboot_required"),
        Doc::KeyList => {
            legacy(items(&mut v, "keys").into_iter(), "public-key", "public_key");
            legacy(items(&mut v, "keys").into_iter(), "key-id", "key_id");
        }
        Doc::HistoryVerify => legacy(std::iter::once(&mut v), "last-hash", "last_hash"),
        _ => {}
    }
    if let Value::Object(map) = &mut v {
        map.insert("schema".to_owned(), Value::String(doc.id()));
    }
    Ok(v)
}

/// Prints the document for `value` as pretty JSON on stdout.
///
/// # Errors
/// When `value` cannot be serialized.
pub fn print<T: Serialize + ?Sized>(doc: Doc, value: &T) -> Result<()> {
    crate::outln!("{}", pretty(&document(doc, value)?));
    Ok(())
}

/// Reports what `command` changed: `message` on stdout, or with `--json` a `change` document
/// of `fields` (an object) with `command` and `message` added.
///
/// # Errors
/// None in practice (the document is built from JSON values).
pub fn changed(json: bool, command: &str, fields: Value, message: &str) -> Result<()> {
    if !json {
        crate::outln!("{message}");
        return Ok(());
    }
    let mut v = fields;
    if let Value::Object(map) = &mut v {
        map.insert("command".to_owned(), Value::from(command));
        map.insert("message".to_owned(), Value::from(message));
    }
    print(Doc::Change, &v)
}

/// A document as pretty JSON text (one way of writing a [`Value`] in the binary: each way costs
/// its own code).
#[must_use]
pub fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// The `error` object: the stable kind (the `--json` name of docs/reference/exit-codes.md), the
/// message and the exit code.
#[must_use]
pub fn error_object(kind: &str, message: &str, exit_code: u8) -> Value {
    serde_json::json!({ "kind": kind, "message": message, "exit-code": exit_code })
}

/// The error document: `{"schema": "libupdate/error/1", "error": {…}}`.
#[must_use]
pub fn error_document(kind: &str, message: &str, exit_code: u8) -> Value {
    serde_json::json!({ "schema": Doc::Error.id(), "error": error_object(kind, message, exit_code) })
}

/// Prints an error document on stdout (for a command run with `--json`). A closed stdout is
/// ignored here: the exit code still tells the error.
pub fn print_error(kind: &str, message: &str, exit_code: u8) {
    use std::io::Write;
    let doc = error_document(kind, message, exit_code);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", pretty(&doc)).and_then(|()| out.flush());
}

/// Whether the raw command line asks for `--json` (for errors found before it is parsed).
#[must_use]
pub fn requested(args: impl IntoIterator<Item = std::ffi::OsString>) -> bool {
    args.into_iter().skip(1).take_while(|a| a != "--").any(|a| a == "--json")
}
