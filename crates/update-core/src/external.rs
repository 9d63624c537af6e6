//! What the two out-of-tree protocols share: component handlers (docs/components.md, "Out-of-tree
//! handlers") and drivers (docs/reference/external-driver.md).
//!
//! Both run an executable installed by another package, without a shell, inside the device root
//! ([`Command::under_root`]), with one JSON request on standard input and a time limit that kills
//! it and everything it started. Both answer one JSON object carrying its [`Protocol`] version and
//! `ok`. This module builds that command and judges the answer the same way for both: more than
//! [`MAX_RESPONSE`] bytes, anything that is not one JSON object, a protocol major other than the
//! client's, a non-zero exit or `ok: false` — each is a clear error, with the program's words
//! escaped ([`crate::text::escape`]) before anyone reads them.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::process::{self, Command, Output};
use crate::text::escape;
use crate::{Error, Result};

/// The most an out-of-tree program may answer (its JSON object), in bytes.
pub const MAX_RESPONSE: usize = 64 << 10;

/// A protocol version: the major changes incompatibly, the minor only adds fields (both sides
/// ignore fields they do not know).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Protocol {
    /// Incompatible changes.
    pub major: u32,
    /// Compatible additions.
    pub minor: u32,
}

/// The program on the other side, for messages and the version check.
#[derive(Debug, Clone, Copy)]
pub struct Peer<'a> {
    /// How messages name it (`out-of-tree web handler /usr/lib/update/handlers/web`).
    pub who: &'a str,
    /// What it is (`handler`, `driver`), for "install a … for protocol N".
    pub noun: &'a str,
    /// The protocol major this client speaks.
    pub major: u32,
}

/// The command for one request: `program` inside `root`, `request` as JSON on standard input,
/// the time limit (at least one second) and a cap on what is kept of its output.
///
/// # Errors
/// [`Error::Other`] when the request cannot be encoded.
pub fn command(
    program: &Path,
    root: &Path,
    limit: Duration,
    max_output: usize,
    request: &impl Serialize,
) -> Result<Command> {
    let bytes = serde_json::to_vec(request).map_err(|e| Error::Other(format!("encode the request: {e}")))?;
    Ok(Command::new(program)
        .under_root(root)
        .timeout(limit.max(Duration::from_secs(1)))
        .max_output(max_output)
        .stdin_bytes(bytes))
}

/// Checks the answer to `phase`: `text` is what the program printed as its answer (all of
/// standard output for handlers), `oversized` whether it printed more than [`MAX_RESPONSE`].
/// Returns the JSON object, whether or not it says `ok` (see [`failure`]).
///
/// # Errors
/// [`Error::Other`] for an oversized answer, a failed program without an answer, or anything
/// but one JSON object; [`Error::Refused`] for another protocol major (or none).
pub fn answer(peer: Peer<'_>, phase: &str, out: &Output, text: &str, oversized: bool) -> Result<serde_json::Value> {
    let Peer { who, noun, major } = peer;
    if oversized {
        return Err(Error::Other(format!(
            "{who}: {phase} printed more than {MAX_RESPONSE} bytes; its answer is refused"
        )));
    }
    let value = match serde_json::from_str::<serde_json::Value>(text.trim()) {
        Ok(v @ serde_json::Value::Object(_)) => v,
        _ if !out.success() => {
            return Err(Error::Other(format!("{who}: {phase} failed ({}): {}", out.status, escape(&out.detail()))));
        }
        _ => {
            return Err(Error::Other(format!(
                "{who}: {phase} exited 0 but did not answer one JSON object (protocol {major}): {}",
                escape(&process::tail(text.trim(), 3))
            )));
        }
    };
    let theirs = value.get("protocol").and_then(|p| p.get("major")).and_then(serde_json::Value::as_u64);
    if theirs != Some(u64::from(major)) {
        return Err(Error::Refused(format!(
            "{who} speaks protocol major {}, this update speaks {major}: install a {noun} for protocol {major}",
            theirs.map_or_else(|| "(none given)".into(), |m| m.to_string())
        )));
    }
    Ok(value)
}

/// Why the program failed `phase`, escaped for people: `None` when it exited 0 and answered
/// `"ok": true`; else its `error` (or the end of its standard error) with its exit status.
#[must_use]
pub fn failure(peer: Peer<'_>, phase: &str, out: &Output, value: &serde_json::Value) -> Option<String> {
    if value.get("ok") == Some(&serde_json::Value::Bool(true)) && out.success() {
        return None;
    }
    let why = value.get("error").and_then(serde_json::Value::as_str).map_or_else(|| out.detail(), str::to_owned);
    Some(format!("{}: {phase} failed ({}): {}", peer.who, out.status, escape(&why)))
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    const PEER: Peer<'static> = Peer { who: "driver x", noun: "driver", major: 1 };

    fn out(code: i32, stdout: &str) -> Output {
        Output {
            status: std::process::ExitStatus::from_raw(code << 8),
            stdout: stdout.into(),
            stderr: String::new(),
            truncated: false,
        }
    }

    #[test]
    fn one_object_of_our_major_is_an_answer() {
        let text = r#"{"protocol": {"major": 1, "minor": 7}, "ok": true, "new": 1}"#;
        let v = answer(PEER, "status", &out(0, text), text, false).unwrap();
        assert_eq!(failure(PEER, "status", &out(0, text), &v), None);
    }

    #[test]
    fn everything_else_is_refused_with_escaped_words() {
        for (text, code, want) in [
            ("all good\u{1b}[2J", 0, "did not answer one JSON object (protocol 1): all good\\u{1b}[2J"),
            ("[1]", 0, "did not answer one JSON object"),
            ("{} {}", 0, "did not answer one JSON object"),
            (
                r#"{"protocol": {"major": 2, "minor": 0}, "ok": true}"#,
                0,
                "speaks protocol major 2, this update speaks 1",
            ),
            (r#"{"ok": true}"#, 0, "speaks protocol major (none given)"),
            ("", 3, "status failed (exit status: 3)"),
        ] {
            let e = answer(PEER, "status", &out(code, text), text, false).unwrap_err();
            assert!(e.to_string().contains(want), "{text}: {e}");
        }
        let e = answer(PEER, "status", &out(0, "{}"), "{}", true).unwrap_err();
        assert!(e.to_string().contains("printed more than 65536 bytes"), "{e}");
        let text = r#"{"protocol": {"major": 1, "minor": 0}, "ok": false, "error": "disk\nfull"}"#;
        let v = answer(PEER, "install", &out(0, text), text, false).unwrap();
        assert_eq!(
            failure(PEER, "install", &out(0, text), &v).unwrap(),
            "driver x: install failed (exit status: 0): disk\\nfull"
        );
        let ok = r#"{"protocol": {"major": 1, "minor": 0}, "ok": true}"#;
        let v = answer(PEER, "install", &out(1, ok), ok, false).unwrap();
        assert!(failure(PEER, "install", &out(1, ok), &v).is_some(), "a non-zero exit fails whatever the answer says");
    }
}
