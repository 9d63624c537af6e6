//! Running another program: the one process runner every layer uses (update tools, health
//! checks, bundle hooks, reboot commands).
//!
//! A [`Command`] runs without a shell, with standard input closed (or fed the bytes given to
//! [`Command::stdin_bytes`]). Both output streams are read
//! at the same time (standard error on its own thread), so a program that writes a lot to either
//! never blocks on a full pipe; each is kept up to a size cap ([`Command::max_output`]). With a
//! [`Command::timeout`] the program runs in its own process group and, when the time is up, the
//! whole group (the program and everything it started) is killed with `SIGKILL`.
//!
//! The program's end is its own exit, not the end of its output: a helper it left behind that
//! still holds the output pipes (a daemon that forked, a stuck child of a tool that crashed) gets
//! [`LEFTOVER_GRACE`] to finish; then, with a time limit, the group is killed, and without one
//! the runner stops reading and returns what it has.
//!
//! The program is found in exactly one place, [`Command::resolve`]: a bare name is looked up in
//! the search path, a path is used as it is. Every error names the command.
//!
//! A device re-rooted with `--root` ([`Command::under_root`]) runs only programs inside its
//! root: an absolute program is taken below the root, a bare name is looked up in
//! [`DEFAULT_PATH`] below the root (never the host's `PATH`), and the file found must not lead
//! out of the root through a symbolic link. Health checks and reboot commands go through here,
//! so under `--root` the host's `reboot` never runs. (What such a program then starts is its
//! own business: it sees `UPDATE_ROOT`.)

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::{Error, Result};

/// The search path used when neither the command nor the process has a `PATH`.
pub const DEFAULT_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// How long the helpers a program leaves behind may keep its output open after it exited.
pub const LEFTOVER_GRACE: Duration = Duration::from_secs(2);

/// How much of each output stream is kept by default (the rest is read and dropped).
pub const DEFAULT_MAX_OUTPUT: usize = 16 << 20;

/// A program to run, with its arguments, environment, time limit and output cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    search_path: Option<OsString>,
    root: Option<PathBuf>,
    timeout: Option<Duration>,
    max_output: usize,
    input: Option<Vec<u8>>,
}

/// What a finished program printed, and how it exited.
#[derive(Debug, Clone)]
pub struct Output {
    /// How it exited.
    pub status: ExitStatus,
    /// Standard output (lossy UTF-8; the last [`Command::max_output`] bytes).
    pub stdout: String,
    /// Standard error (lossy UTF-8; the last [`Command::max_output`] bytes).
    pub stderr: String,
    /// Whether either stream was longer than the cap and lost its beginning.
    pub truncated: bool,
}

impl Output {
    /// Whether it exited 0.
    #[must_use]
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// The program's explanation: the end of standard error, or of standard output when
    /// standard error is empty.
    #[must_use]
    pub fn detail(&self) -> String {
        let err = self.stderr.trim();
        if !err.is_empty() {
            return tail(err, 30);
        }
        tail(self.stdout.trim(), 10)
    }
}

/// The most of a program's words a message carries (the end of them).
pub const MAX_DETAIL: usize = 4096;

/// The last `n` lines of `text`, and at most [`MAX_DETAIL`] bytes of them (the end, after `…`).
#[must_use]
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let kept = lines[lines.len().saturating_sub(n)..].join("\n");
    if kept.len() <= MAX_DETAIL {
        return kept;
    }
    let mut start = kept.len() - MAX_DETAIL;
    while !kept.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &kept[start..])
}

impl Command {
    /// A command for `program`: a bare name (`rauc`) is looked up in the search path, anything
    /// with a `/` is used as it is.
    #[must_use]
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            search_path: None,
            root: None,
            timeout: None,
            max_output: DEFAULT_MAX_OUTPUT,
            input: None,
        }
    }

    /// Adds one argument.
    #[must_use]
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds arguments.
    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Adds a variable to the program's environment (which is otherwise the process's).
    #[must_use]
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Sets the search path: where a bare program name is looked up, and the program's own `PATH`.
    /// The process's `PATH` when not set.
    #[must_use]
    pub fn search_path(mut self, path: impl Into<OsString>) -> Self {
        self.search_path = Some(path.into());
        self
    }

    /// Runs the program from inside `root` (see the module docs); the root `/` changes nothing.
    /// The program gets `UPDATE_ROOT` set to the root.
    #[must_use]
    pub fn under_root(mut self, root: &Path) -> Self {
        if root != Path::new("/") {
            self.root = Some(root.to_owned());
        }
        self.env("UPDATE_ROOT", root)
    }

    /// Kills the program, and every process it started, when it runs longer than `limit`.
    #[must_use]
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = Some(limit);
        self
    }

    /// Keeps at most `bytes` of each output stream (the end; the beginning is dropped).
    #[must_use]
    pub fn max_output(mut self, bytes: usize) -> Self {
        self.max_output = bytes.max(1);
        self
    }

    /// Feeds `bytes` to the program's standard input (then closes it), instead of a closed
    /// standard input. A program that exits without reading them all is not an error.
    #[must_use]
    pub fn stdin_bytes(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.input = Some(bytes.into());
        self
    }

    /// The program as given.
    #[must_use]
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The time limit, if any.
    #[must_use]
    pub fn time_limit(&self) -> Option<Duration> {
        self.timeout
    }

    /// The command line, for messages: the program and its arguments.
    #[must_use]
    pub fn display(&self) -> String {
        std::iter::once(self.program.as_os_str())
            .chain(self.args.iter().map(OsString::as_os_str))
            .map(OsStr::to_string_lossy)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Finds the program that will run: the one place a program name becomes a path.
    ///
    /// # Errors
    /// [`Error::Io`] (not found) naming the program when it is not an executable file.
    pub fn resolve(&self) -> Result<PathBuf> {
        if let Some(root) = &self.root {
            return locate_under(root, &self.program).ok_or_else(|| {
                Error::Refused(format!(
                    "{} is not an executable file inside the device root {}: under --root only programs \
                     inside the root run, never the host's",
                    self.program.display(),
                    root.display()
                ))
            });
        }
        locate(&self.program, self.search_path.as_deref())
            .ok_or_else(|| Error::io("run", &self.program, std::io::Error::from(std::io::ErrorKind::NotFound)))
    }

    /// Runs the program to completion and collects its output (a failing exit is not an error).
    ///
    /// # Errors
    /// [`Error::Io`] naming the program when it cannot be found, started or read;
    /// [`Error::TimedOut`] when it ran longer than its time limit (it has been killed).
    pub fn run(&self) -> Result<Output> {
        self.run_lines(&mut |_| {})
    }

    /// Runs the program, handing each line of standard output to `on_line` as it is printed
    /// (lines end at `\n` or `\r`, so a redrawn progress bar is a line too), and collects
    /// everything as [`Command::run`] does.
    ///
    /// # Errors
    /// As [`Command::run`].
    pub fn run_lines(&self, on_line: &mut dyn FnMut(&str)) -> Result<Output> {
        use std::os::unix::process::CommandExt;
        let program = self.resolve()?;
        let mut cmd = std::process::Command::new(&program);
        let stdin = if self.input.is_some() { Stdio::piped() } else { Stdio::null() };
        cmd.args(&self.args).stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped());
        if let Some(p) = &self.search_path {
            cmd.env("PATH", p);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if self.timeout.is_some() {
            // Its own process group, so a timeout ends the program and its helpers, and nothing else.
            cmd.process_group(0);
        }
        let mut child = cmd.spawn().map_err(|e| Error::io("run", &program, e))?;
        let feeder = child.stdin.take().zip(self.input.clone()).map(|(mut pipe, bytes)| {
            std::thread::spawn(move || {
                use std::io::Write;
                // A program that stops reading (or exits) closes the pipe: not our error.
                let _ = pipe.write_all(&bytes);
            })
        });
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let watchdog = self.timeout.map(|limit| {
            let group = rustix::process::Pid::from_child(&child);
            std::thread::spawn(move || {
                if done_rx.recv_timeout(limit) == Err(mpsc::RecvTimeoutError::Timeout) {
                    // The group outlives its leader while any member runs; an error means it is gone.
                    let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
                    return true;
                }
                false
            })
        });
        let cap = self.max_output;
        let (err_tx, err_rx) = mpsc::channel::<Capture>();
        if let Some(mut pipe) = child.stderr.take() {
            std::thread::spawn(move || {
                let mut kept = Capture::new(cap);
                let mut buf = [0u8; 8192];
                loop {
                    match pipe.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => kept.push(&buf[..n]),
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
                let _ = err_tx.send(kept);
            });
        }
        // Standard output is read on a thread too, its lines handed to `on_line` here, so the
        // program's exit is seen while a helper it left behind still holds the pipe.
        let (line_tx, line_rx) = mpsc::channel::<std::io::Result<Vec<u8>>>();
        if let Some(pipe) = child.stdout.take() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(pipe);
                loop {
                    let mut line = Vec::new();
                    match read_line_cr(&mut reader, &mut line) {
                        Ok(0) => break,
                        Ok(_) => {
                            if line_tx.send(Ok(line)).is_err() {
                                break;
                            }
                        }
                        Err(e) => {
                            let _ = line_tx.send(Err(e));
                            break;
                        }
                    }
                }
            });
        }
        let mut out = Capture::new(cap);
        let mut read = Ok(());
        let mut exited: Option<ExitStatus> = None;
        let mut grace_ends = None;
        let mut abandoned = false;
        loop {
            match line_rx.recv_timeout(Duration::from_millis(50)) {
                Ok(Ok(line)) => {
                    on_line(String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']));
                    out.push(&line);
                }
                Ok(Err(e)) => read = Err(e),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if exited.is_none() {
                exited = child.try_wait().map_err(|e| Error::io("wait for", &program, e))?;
                if exited.is_some() {
                    grace_ends = Some(std::time::Instant::now() + LEFTOVER_GRACE);
                }
            }
            if grace_ends.is_some_and(|t| std::time::Instant::now() >= t) {
                abandoned = true;
                break;
            }
        }
        let status = match exited {
            Some(s) => Ok(s),
            None => child.wait().map_err(|e| Error::io("wait for", &program, e)),
        };
        if abandoned && self.timeout.is_some() {
            // What it left behind holds the output: end it (the group outlives its leader).
            let group = rustix::process::Pid::from_child(&child);
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
        if let Some(f) = feeder {
            let _ = f.join();
        }
        let wait_err = if abandoned { LEFTOVER_GRACE } else { Duration::from_secs(3600) };
        let mut err = err_rx.recv_timeout(wait_err).unwrap_or_else(|_| Capture::new(cap));
        if abandoned {
            err.push(b"\n(update: the program exited, but what it started kept its output open; stopped reading)\n");
        }
        let _ = done_tx.send(());
        let timed_out = watchdog.is_some_and(|w| w.join().unwrap_or(false));
        let output = Output {
            status: status?,
            truncated: out.dropped || err.dropped,
            stdout: out.into_string(),
            stderr: err.into_string(),
        };
        if timed_out {
            return Err(Error::TimedOut {
                command: program.display().to_string(),
                after: self.timeout.unwrap_or_default(),
                output: tail(format!("{}\n{}", output.stdout, output.stderr).trim(), 10),
            });
        }
        read.map_err(|e| Error::io("read output of", &program, e))?;
        Ok(output)
    }
}

/// Runs a reboot command (without a shell) and logs it: what every driver's `reboot` does.
///
/// # Errors
/// [`Error::Other`] when the command is empty or fails; [`Error::Io`] when it cannot be started.
pub fn reboot(command: &[String], root: &Path, events: &dyn crate::driver::Events) -> Result<()> {
    let (program, args) = command.split_first().ok_or_else(|| Error::Other("the reboot command is empty".into()))?;
    events.info(&format!("running {}", command.join(" ")));
    let out = Command::new(program).args(args).under_root(root).run()?;
    if out.success() {
        Ok(())
    } else {
        Err(Error::Other(format!("reboot command {command:?} failed with {}: {}", out.status, out.detail())))
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

/// The last `cap` bytes of a stream.
struct Capture {
    bytes: Vec<u8>,
    cap: usize,
    dropped: bool,
}

impl Capture {
    fn new(cap: usize) -> Self {
        Self { bytes: Vec::new(), cap, dropped: false }
    }

    fn push(&mut self, data: &[u8]) {
        self.bytes.extend_from_slice(data);
        // Trim only when twice the cap is reached, so dropping the front stays cheap.
        if self.bytes.len() > self.cap.saturating_mul(2) {
            self.trim();
        }
    }

    fn trim(&mut self) {
        if self.bytes.len() > self.cap {
            let excess = self.bytes.len() - self.cap;
            self.bytes.drain(..excess);
            self.dropped = true;
        }
    }

    fn into_string(mut self) -> String {
        self.trim();
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Finds `program` inside `root` (see the module docs): `Some(path)` when it is an executable
/// file whose real path is inside the root.
#[must_use]
pub fn locate_under(root: &Path, program: &Path) -> Option<PathBuf> {
    let paths = crate::Paths::new(root);
    let found = if program.is_absolute() {
        Some(paths.resolve(program)).filter(|p| is_executable(p))
    } else if program.components().count() == 1 {
        std::env::split_paths(DEFAULT_PATH).map(|d| paths.resolve(d).join(program)).find(|p| is_executable(p))
    } else {
        None
    }?;
    let real_root = root.canonicalize().ok()?;
    let real = found.canonicalize().ok()?;
    real.starts_with(&real_root).then_some(found)
}

/// Finds `program` in `path` (the process's `PATH` when `None`, [`DEFAULT_PATH`] when there is
/// none): `Some(path)` when it is an executable file. A program with a `/` is checked as it is.
#[must_use]
pub fn locate(program: &Path, path: Option<&OsStr>) -> Option<PathBuf> {
    if program.as_os_str().is_empty() {
        return None;
    }
    if program.components().count() > 1 || program.is_absolute() {
        return is_executable(program).then(|| program.to_owned());
    }
    let env_path = std::env::var_os("PATH");
    let search = path.or(env_path.as_deref()).unwrap_or(OsStr::new(DEFAULT_PATH));
    std::env::split_paths(search).map(|d| d.join(program)).find(|p| is_executable(p))
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    fn sh(script: &str) -> Command {
        Command::new("sh").args(["-c", script])
    }

    #[test]
    fn locates_in_path_and_by_path() {
        assert!(locate(Path::new("sh"), Some(OsStr::new("/bin:/usr/bin"))).is_some());
        assert!(locate(Path::new("no-such-tool-here"), Some(OsStr::new("/bin:/usr/bin"))).is_none());
        assert!(locate(Path::new("/bin/sh"), None).is_some());
        assert!(locate(Path::new("/etc/passwd"), None).is_none(), "not executable");
        assert!(locate(Path::new(""), None).is_none());
    }

    #[test]
    fn a_missing_program_is_an_error_naming_it() {
        for name in ["no-such-tool-here", "/no/such/dir/tool"] {
            let e = Command::new(name).run().unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Io);
            assert!(e.to_string().contains(name), "{e}");
        }
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
    fn collects_both_streams_lines_and_the_exit_status() {
        let mut lines = Vec::new();
        let out = sh("echo one; printf 'two\\rthree\\n'; echo oops >&2; exit 3")
            .env("X", "y")
            .run_lines(&mut |l| lines.push(l.to_owned()))
            .unwrap();
        assert_eq!(lines, ["one", "two", "three"]);
        assert_eq!(out.status.code(), Some(3));
        assert!(!out.success());
        assert_eq!(out.stderr, "oops\n");
        assert_eq!(out.detail(), "oops");
        assert!(!out.truncated);
        let out = sh("echo $X").env("X", "from the caller").run().unwrap();
        assert_eq!(out.stdout.trim(), "from the caller");
    }

    #[test]
    fn a_program_filling_both_pipes_finishes_promptly() {
        // 1 MiB on each stream, interleaved: with one stream unread, the program would block.
        let start = Instant::now();
        let out =
            sh("i=0; while [ $i -lt 64 ]; do head -c 16384 /dev/zero >&2; head -c 16384 /dev/zero; i=$((i+1)); done")
                .timeout(Duration::from_secs(60))
                .run()
                .unwrap();
        assert!(out.success());
        assert_eq!((out.stdout.len(), out.stderr.len()), (1 << 20, 1 << 20));
        assert!(start.elapsed() < Duration::from_secs(20), "{:?}", start.elapsed());
    }

    #[test]
    fn output_is_capped_and_keeps_its_end() {
        let out =
            sh("head -c 100000 /dev/zero | tr '\\0' a >&2; echo END >&2; seq 1 20000").max_output(1000).run().unwrap();
        assert!(out.truncated);
        assert_eq!(out.stderr.len(), 1000);
        assert!(out.stderr.ends_with("aaaEND\n"), "{}", &out.stderr[900..]);
        assert_eq!(out.stdout.len(), 1000);
        assert!(out.stdout.ends_with("19999\n20000\n"));
    }

    #[test]
    fn tails_are_short() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("", 2), "");
        let long = format!("{}é\nend", "x".repeat(10_000));
        let t = tail(&long, 30);
        assert!(t.len() <= MAX_DETAIL + "…".len() && t.starts_with('…') && t.ends_with("xé\nend"), "{}", t.len());
    }

    #[test]
    fn a_timeout_kills_the_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("grandchild-survived");
        // The grandchild would write the marker after 2 s; it must die with its parent at 300 ms.
        let script = format!("(sleep 2; touch '{}') & sleep 30", marker.display());
        let start = Instant::now();
        let e = sh(&script).timeout(Duration::from_millis(300)).run().unwrap_err();
        assert!(matches!(e, Error::TimedOut { .. }), "{e}");
        assert!(e.to_string().contains("sh did not finish within"), "{e}");
        assert!(start.elapsed() < Duration::from_secs(10), "{:?}", start.elapsed());
        std::thread::sleep(Duration::from_secs(3));
        assert!(!marker.exists(), "a grandchild outlived the timeout");
    }

    /// A helper left behind holding the output (a forked daemon, a stuck child of a tool) does
    /// not keep the runner waiting for the time limit: after the program's exit and the grace
    /// time the group is killed and the output so far returned, with the exit status.
    #[test]
    fn a_helper_left_holding_the_output_is_ended_after_the_grace_time() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("helper-survived");
        let script = format!("(sleep 6; touch '{}') & echo done; exit 3", marker.display());
        let start = Instant::now();
        let out = sh(&script).timeout(Duration::from_secs(60)).run().unwrap();
        let took = start.elapsed();
        assert!(took >= LEFTOVER_GRACE && took < LEFTOVER_GRACE + Duration::from_secs(3), "{took:?}");
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout.trim(), "done");
        assert!(out.stderr.contains("kept its output open"), "{}", out.stderr);
        std::thread::sleep(Duration::from_secs(7));
        assert!(!marker.exists(), "the helper outlived the grace time");
    }

    /// Without a time limit (no process group of its own) the runner still returns after the
    /// grace time; the helper is not ours to kill.
    #[test]
    fn without_a_time_limit_the_runner_returns_after_the_grace_time() {
        let start = Instant::now();
        let out = sh("sleep 8 & echo started").run().unwrap();
        assert!(start.elapsed() < LEFTOVER_GRACE + Duration::from_secs(3), "{:?}", start.elapsed());
        assert!(out.status.success());
        assert_eq!(out.stdout.trim(), "started");
    }

    /// A helper that finishes within the grace time is waited for: its output is kept whole.
    #[test]
    fn a_helper_that_ends_within_the_grace_time_is_read_to_the_end() {
        let out = sh("(sleep 0.3; echo late) & echo early").timeout(Duration::from_secs(60)).run().unwrap();
        assert_eq!(out.stdout, "early\nlate\n");
        assert!(!out.stderr.contains("kept its output open"));
    }

    #[test]
    fn a_timeout_keeps_what_was_printed() {
        let e = sh("echo started; echo still waiting >&2; sleep 30").timeout(Duration::from_millis(300)).run();
        let e = e.unwrap_err().to_string();
        assert!(e.contains("started") && e.contains("still waiting"), "{e}");
    }

    #[test]
    fn standard_input_is_fed_when_given() {
        let out = sh("tr a-z A-Z").stdin_bytes("hello\n").run().unwrap();
        assert_eq!(out.stdout, "HELLO\n");
        // A program that ignores its input still finishes.
        let out = sh("echo done").stdin_bytes(vec![b'x'; 1 << 20]).timeout(Duration::from_secs(30)).run().unwrap();
        assert_eq!(out.stdout, "done\n");
        assert_eq!(sh("cat").run().unwrap().stdout, "", "closed by default");
    }

    #[test]
    fn a_search_path_finds_the_program_and_is_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("my-tool");
        std::fs::write(&tool, "#!/bin/sh\necho \"$PATH\"\n").unwrap();
        std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let search = format!("{}:/bin:/usr/bin", dir.path().display());
        let out = Command::new("my-tool").search_path(&search).run().unwrap();
        assert_eq!(out.stdout.trim(), search);
        assert!(Command::new("my-tool").search_path("/bin").run().is_err());
    }
}
