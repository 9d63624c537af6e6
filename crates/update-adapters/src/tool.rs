//! Running a tool: locate it in `PATH`, run it with update-core's process runner
//! ([`update_core::process`]), and turn a failure into an [`Error`] of the right kind with the
//! tool's own words in the message.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::time::Duration;

use update_core::process::Command;
use update_core::{Error, Result};

/// How a tool is found and run: the program (a name looked up in `PATH`, or a path), extra
/// environment variables, and the `PATH` to search (the process's when `None`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolSpec {
    /// The program: a bare name (`rauc`) is looked up in `PATH`; anything with a `/` is used as is.
    pub program: PathBuf,
    /// Variables added to the tool's environment (`DBUS_SYSTEM_BUS_ADDRESS`, …).
    pub env: Vec<(OsString, OsString)>,
    /// The search path for the program and for the tools it runs itself; the process's `PATH` when `None`.
    pub path: Option<OsString>,
}

impl ToolSpec {
    /// A spec for `program` with the process's environment.
    #[must_use]
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self { program: program.into(), env: Vec::new(), path: None }
    }

    /// Adds an environment variable for the tool.
    #[must_use]
    pub fn with_env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Sets the search path.
    #[must_use]
    pub fn with_path(mut self, path: impl Into<OsString>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// Finds the program: `Some(path)` when it exists and is executable.
    #[must_use]
    pub fn locate(&self) -> Option<PathBuf> {
        locate(&self.program, self.path.as_deref())
    }

    /// The tool, located; `None` when it is not installed.
    #[must_use]
    pub fn tool(&self, driver: &'static str) -> Option<Tool> {
        self.locate().map(|program| Tool { driver, program, spec: self.clone(), timeout: None })
    }
}

/// Finds `program` in `path` (the process's `PATH` when `None`). A program with a `/` is checked as is.
#[must_use]
pub fn locate(program: &Path, path: Option<&OsStr>) -> Option<PathBuf> {
    update_core::process::locate(program, path)
}

/// A located tool, bound to the driver that runs it (for error messages).
#[derive(Debug, Clone)]
pub struct Tool {
    driver: &'static str,
    program: PathBuf,
    spec: ToolSpec,
    timeout: Option<Duration>,
}

pub use update_core::process::Output;

/// How a failed run is classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// A signature, digest or format check failed: [`Error::Verification`].
    Verification,
    /// The tool refused by policy (compatibility, version, state): [`Error::Refused`].
    Refused,
    /// Anything else: [`Error::Other`].
    Other,
}

/// A tool's failure messages as word tables. Each entry is a word or a phrase of consecutive
/// words, matched whole and case-insensitively (`tar` matches "archive/tar: invalid tar header"
/// but not "start" or "target"); an entry ending in `*` matches every word that begins with it
/// (`verif*`: "verify", "verification"). The tables are tried in order: `other` (messages that
/// look like a check failing but are not, such as a full disk), `verification`, `refused`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureWords {
    /// Words that make a failure [`Failure::Other`] whatever else it says.
    pub other: &'static [&'static str],
    /// Words of a failed signature, digest or format check.
    pub verification: &'static [&'static str],
    /// Words of a refusal by policy.
    pub refused: &'static [&'static str],
}

impl FailureWords {
    /// Classifies a tool's output.
    #[must_use]
    pub fn classify(&self, text: &str) -> Failure {
        let lower = text.to_lowercase();
        let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
        let found = |table: &[&str]| table.iter().any(|entry| has_phrase(&words, entry));
        if found(self.other) {
            Failure::Other
        } else if found(self.verification) {
            Failure::Verification
        } else if found(self.refused) {
            Failure::Refused
        } else {
            Failure::Other
        }
    }
}

/// Whether `words` holds the words of `entry` one after another.
fn has_phrase(words: &[&str], entry: &str) -> bool {
    let (entry, prefix) = entry.strip_suffix('*').map_or((entry, false), |e| (e, true));
    let want: Vec<String> =
        entry.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect();
    let Some((last, _)) = want.split_last() else { return false };
    words.windows(want.len()).any(|w| {
        w.iter().zip(&want).enumerate().all(|(i, (have, want))| {
            if prefix && i == w.len() - 1 { have.starts_with(last.as_str()) } else { have == want }
        })
    })
}

impl Tool {
    /// The program's path.
    #[must_use]
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The driver's name.
    #[must_use]
    pub fn driver(&self) -> &'static str {
        self.driver
    }

    /// The same tool with one more environment variable.
    #[must_use]
    pub fn with_env(&self, key: impl Into<OsString>, value: impl Into<OsString>) -> Tool {
        let mut t = self.clone();
        t.spec.env.push((key.into(), value.into()));
        t
    }

    /// The same tool, killed (with everything it started) when a run takes longer than `limit`.
    /// Some tools hang on bad input (swupdate 2022.12 in check mode on a hardware mismatch).
    #[must_use]
    pub fn with_timeout(&self, limit: Duration) -> Tool {
        Tool { timeout: Some(limit), ..self.clone() }
    }

    /// The runner's command for the tool with the spec's environment and time limit; stdin is
    /// closed and messages are in the C locale.
    #[must_use]
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command_of(args.into_iter().map(|a| a.as_ref().to_owned()).collect())
    }

    fn command_of(&self, args: Vec<OsString>) -> Command {
        let mut cmd = Command::new(&self.program).args(args);
        if let Some(p) = &self.spec.path {
            cmd = cmd.search_path(p);
        }
        for (k, v) in &self.spec.env {
            cmd = cmd.env(k, v);
        }
        if let Some(limit) = self.timeout {
            cmd = cmd.timeout(limit);
        }
        // Tools print in the C locale so their messages can be matched.
        cmd.env("LC_ALL", "C")
    }

    /// Runs the tool to completion.
    ///
    /// # Errors
    /// [`Error::Io`] when it cannot be started (a failing exit is not an error here).
    pub fn run<I, S>(&self, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.run_lines(args, &mut |_| {})
    }

    /// Runs the tool, handing each line of standard output to `on_line` as it is printed
    /// (progress), and collecting everything.
    ///
    /// # Errors
    /// [`Error::Io`] when it cannot be started or its output cannot be read.
    pub fn run_lines<I, S>(&self, args: I, on_line: &mut dyn FnMut(&str)) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.run_lines_of(args.into_iter().map(|a| a.as_ref().to_owned()).collect(), on_line)
    }

    // The one non-generic body behind the generic entry points (keeps the binary small).
    fn run_lines_of(&self, args: Vec<OsString>, on_line: &mut dyn FnMut(&str)) -> Result<Output> {
        self.command_of(args).run_lines(on_line)
    }

    /// Runs the tool and returns its output when it exits 0; otherwise the error `classify`
    /// chooses, with the tool's words in the message.
    ///
    /// # Errors
    /// [`Error::Io`] when it cannot be started; the classified error when it fails.
    pub fn run_ok<I, S>(&self, op: &str, args: I, classify: &dyn Fn(&str) -> Failure) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = self.run_lines_of(args.into_iter().map(|a| a.as_ref().to_owned()).collect(), &mut |_| {})?;
        if out.success() { Ok(out) } else { Err(self.failure(op, &out, classify)) }
    }

    /// The error for a failed run.
    #[must_use]
    pub fn failure(&self, op: &str, out: &Output, classify: &dyn Fn(&str) -> Failure) -> Error {
        let all = format!("{}\n{}", out.stdout, out.stderr);
        let detail = out.detail();
        let message = format!("{} {op} failed ({}): {detail}", self.program.display(), out.status);
        match classify(&all) {
            Failure::Verification => Error::verification(format!("{} {op}", self.driver), message),
            Failure::Refused => Error::Refused(message),
            Failure::Other => Error::Other(message),
        }
    }
}

/// The first of `candidates` (device paths, re-rooted by `paths`) that exists.
#[must_use]
pub fn first_existing(paths: &update_core::Paths, candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(|c| paths.resolve(c)).find(|p| p.exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_in_path_and_by_path() {
        assert!(locate(Path::new("sh"), Some(OsStr::new("/bin:/usr/bin"))).is_some());
        assert!(locate(Path::new("no-such-tool-here"), Some(OsStr::new("/bin:/usr/bin"))).is_none());
        assert!(locate(Path::new("/bin/sh"), None).is_some());
        assert!(locate(Path::new(""), None).is_none());
    }

    #[test]
    fn a_hanging_tool_is_stopped_with_its_children() {
        let tool = ToolSpec::new("sh").tool("test").unwrap().with_timeout(Duration::from_millis(300));
        let start = std::time::Instant::now();
        let e = tool.run(["-c", "sleep 30 & sleep 30"]).unwrap_err();
        assert!(e.to_string().contains("did not finish"), "{e}");
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    const WORDS: FailureWords = FailureWords {
        other: &["no space left"],
        verification: &["signature", "tar", "verif*", "not a .swu"],
        refused: &["compatible"],
    };

    #[test]
    fn words_match_whole() {
        for (text, want) in [
            ("archive/tar: invalid tar header", Failure::Verification),
            ("Bad Signature", Failure::Verification),
            ("Verification failed", Failure::Verification),
            ("ERROR: not a .swu file", Failure::Verification),
            // Parts of words are not words.
            ("failed to start the target", Failure::Other),
            ("signatures", Failure::Other),
            ("unverified", Failure::Other),
            ("not a swupdate image", Failure::Other),
            ("incompatible", Failure::Other),
            ("board not compatible", Failure::Refused),
            // `other` wins over everything.
            ("verify: no space left on device", Failure::Other),
            ("", Failure::Other),
        ] {
            assert_eq!(WORDS.classify(text), want, "{text:?}");
        }
    }

    #[test]
    fn failure_keeps_the_tools_words() {
        let spec = ToolSpec::new("sh");
        let tool = spec.tool("test").unwrap();
        let e = tool.run_ok("check", ["-c", "echo bad signature >&2; exit 3"], &|t| WORDS.classify(t)).unwrap_err();
        assert_eq!(e.kind(), update_core::ErrorKind::Verification);
        assert!(e.to_string().contains("bad signature"), "{e}");
    }
}
