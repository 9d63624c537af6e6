//! Running a tool: locate it in `PATH`, run it without a shell, collect its output, and turn a
//! failure into an [`Error`] of the right kind with the tool's own words in the message.

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

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

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Finds `program` in `path` (the process's `PATH` when `None`). A program with a `/` is checked as is.
#[must_use]
pub fn locate(program: &Path, path: Option<&OsStr>) -> Option<PathBuf> {
    if program.as_os_str().is_empty() {
        return None;
    }
    if program.components().count() > 1 || program.is_absolute() {
        return is_executable(program).then(|| program.to_owned());
    }
    let env_path = std::env::var_os("PATH");
    let search = path.or(env_path.as_deref()).unwrap_or(OsStr::new("/usr/sbin:/usr/bin:/sbin:/bin"));
    std::env::split_paths(search).map(|d| d.join(program)).find(|p| is_executable(p))
}

/// A located tool, bound to the driver that runs it (for error messages).
#[derive(Debug, Clone)]
pub struct Tool {
    driver: &'static str,
    program: PathBuf,
    spec: ToolSpec,
    timeout: Option<Duration>,
}

/// What a finished run printed.
#[derive(Debug, Clone)]
pub struct Output {
    /// How it exited.
    pub status: ExitStatus,
    /// Standard output (lossy UTF-8).
    pub stdout: String,
    /// Standard error (lossy UTF-8).
    pub stderr: String,
}

impl Output {
    /// Whether it exited 0.
    #[must_use]
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// The tool's explanation: standard error, or the end of standard output when that is empty.
    #[must_use]
    pub fn detail(&self) -> String {
        let err = self.stderr.trim();
        if !err.is_empty() {
            return tail(err, 30);
        }
        tail(self.stdout.trim(), 10)
    }
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

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

    /// A command for the tool with the spec's environment; stdin is closed.
    #[must_use]
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command_of(args.into_iter().map(|a| a.as_ref().to_owned()).collect())
    }

    fn command_of(&self, args: Vec<OsString>) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(args).stdin(Stdio::null());
        if let Some(p) = &self.spec.path {
            cmd.env("PATH", p);
        }
        for (k, v) in &self.spec.env {
            cmd.env(k, v);
        }
        // Tools print in the C locale so their messages can be matched.
        cmd.env("LC_ALL", "C");
        cmd
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
        use std::os::unix::process::CommandExt;
        let mut cmd = self.command_of(args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        if self.timeout.is_some() {
            // Its own process group, so a timeout ends the tool and its helpers, and nothing else.
            cmd.process_group(0);
        }
        let mut child = cmd.spawn().map_err(|e| Error::io("run", &self.program, e))?;
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let watchdog = self.timeout.map(|limit| {
            let pid = child.id();
            std::thread::spawn(move || {
                if done_rx.recv_timeout(limit) == Err(mpsc::RecvTimeoutError::Timeout) {
                    let _ = Command::new("kill").args(["-KILL", "--", &format!("-{pid}")]).status();
                    return true;
                }
                false
            })
        });
        let mut err_pipe = child.stderr.take().expect("stderr is piped");
        let err_thread = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = err_pipe.read_to_end(&mut buf);
            buf
        });
        let mut stdout = String::new();
        if let Some(out) = child.stdout.take() {
            let mut reader = BufReader::new(out);
            let mut line = Vec::new();
            loop {
                line.clear();
                // Progress lines may end in `\r` (a redrawn bar) or `\n`.
                let n =
                    read_line_cr(&mut reader, &mut line).map_err(|e| Error::io("read output of", &self.program, e))?;
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&line);
                on_line(text.trim_end_matches(['\r', '\n']));
                stdout.push_str(&text);
            }
        }
        let status = child.wait().map_err(|e| Error::io("wait for", &self.program, e))?;
        let stderr = String::from_utf8_lossy(&err_thread.join().unwrap_or_default()).into_owned();
        let _ = done_tx.send(());
        if watchdog.is_some_and(|w| w.join().unwrap_or(false)) {
            return Err(Error::Other(format!(
                "{} did not finish within {} s and was stopped: {}",
                self.program.display(),
                self.timeout.unwrap_or_default().as_secs(),
                tail(format!("{stdout}\n{stderr}").trim(), 10)
            )));
        }
        Ok(Output { status, stdout, stderr })
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

/// Reads up to and including the next `\n` or `\r`.
fn read_line_cr(reader: &mut impl BufRead, out: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut total = 0;
    loop {
        let (done, used) = {
            let buf = match reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                return Ok(total);
            }
            match buf.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(i) => {
                    out.extend_from_slice(&buf[..=i]);
                    (true, i + 1)
                }
                None => {
                    out.extend_from_slice(buf);
                    (false, buf.len())
                }
            }
        };
        reader.consume(used);
        total += used;
        if done {
            return Ok(total);
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
    fn splits_progress_on_cr_and_lf() {
        let mut r = std::io::Cursor::new(b"10%\r20%\rdone\nlast".to_vec());
        let mut lines = Vec::new();
        loop {
            let mut l = Vec::new();
            if read_line_cr(&mut r, &mut l).unwrap() == 0 {
                break;
            }
            lines.push(String::from_utf8(l).unwrap());
        }
        assert_eq!(lines, ["10%\r", "20%\r", "done\n", "last"]);
    }

    #[test]
    fn a_hanging_tool_is_stopped_with_its_children() {
        let tool = ToolSpec::new("sh").tool("test").unwrap().with_timeout(Duration::from_millis(300));
        let start = std::time::Instant::now();
        let e = tool.run(["-c", "sleep 30 & sleep 30"]).unwrap_err();
        assert!(e.to_string().contains("did not finish"), "{e}");
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn failure_keeps_the_tools_words() {
        let spec = ToolSpec::new("sh");
        let tool = spec.tool("test").unwrap();
        let e = tool
            .run_ok("check", ["-c", "echo bad signature >&2; exit 3"], &|t| {
                if t.contains("signature") { Failure::Verification } else { Failure::Other }
            })
            .unwrap_err();
        assert_eq!(e.kind(), update_core::ErrorKind::Verification);
        assert!(e.to_string().contains("bad signature"), "{e}");
    }
}
