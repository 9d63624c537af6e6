//! One boot of the device: QEMU (TCG only, never KVM) with the disk image, a virtio NIC on
//! QEMU's user network, and the serial console on stdio. A reader thread timestamps every
//! console line (split on `\n` and `\r`, so progress bars count too) and logs it; the scenario
//! reads the lines, writes commands to the console, and can cut the power (SIGKILL of QEMU) at
//! any moment. Every boot has a hard deadline.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use crate::error::{Error, Result, io};

/// A console line and when the host read it.
#[derive(Debug, Clone)]
pub struct Line {
    /// When it was read.
    pub at: Instant,
    /// The text, without control characters and escape sequences.
    pub text: String,
}

/// What waiting for the next line gave.
pub enum Next {
    /// A line.
    Line(Line),
    /// Nothing before the time given.
    Timeout,
    /// QEMU has exited (powered off, reset with -no-reboot, or killed).
    Exited,
}

/// A running guest.
pub struct Vm {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    rx: Receiver<Line>,
    /// Every line read so far.
    pub lines: Vec<Line>,
    /// When QEMU started.
    pub started: Instant,
    deadline: Instant,
    /// The console log.
    pub log: PathBuf,
    killed: bool,
}

/// QEMU's resources per guest.
#[derive(Debug, Clone, Copy)]
pub struct VmOptions {
    /// Virtual CPUs.
    pub smp: u32,
    /// Memory in MiB.
    pub mem_mib: u32,
    /// Hard deadline of one boot.
    pub deadline: Duration,
}

fn clean(raw: &[u8]) -> String {
    let mut out = String::new();
    let text = String::from_utf8_lossy(raw);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ params final-byte
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        if !c.is_control() || c == '\t' {
            out.push(c);
        }
    }
    out.trim().to_owned()
}

impl Vm {
    /// Boots the disk.
    pub fn start(name: &str, disk: &Path, log: &Path, opts: VmOptions) -> Result<Vm> {
        let mut child = Command::new("qemu-system-x86_64")
            .args(["-machine", "q35,accel=tcg", "-cpu", "max"])
            .args(["-smp", &opts.smp.to_string(), "-m", &opts.mem_mib.to_string()])
            .args(["-nodefaults", "-display", "none", "-serial", "stdio", "-monitor", "none", "-no-reboot"])
            .arg("-drive")
            .arg(format!("file={},format=raw,if=virtio", disk.display()))
            .args(["-netdev", "user,id=net0", "-device", "virtio-net-pci,netdev=net0,romfile="])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::Tool {
                command: "qemu-system-x86_64".into(),
                detail: format!("cannot start it: {e}"),
            })?;
        let started = Instant::now();
        let (tx, rx) = channel();
        let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
            let _ = child.kill();
            return Err(Error::Tool { command: "qemu-system-x86_64".into(), detail: "no console pipes".into() });
        };
        let mut logf = std::fs::File::create(log).map_err(io("create", log))?;
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut pending: Vec<u8> = Vec::new();
            loop {
                let n = match stdout.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let now = Instant::now();
                for &b in &buf[..n] {
                    if b == b'\n' || b == b'\r' {
                        let text = clean(&pending);
                        pending.clear();
                        if !text.is_empty() {
                            let _ = writeln!(logf, "[{:8.3}] {text}", now.duration_since(started).as_secs_f64());
                            if tx.send(Line { at: now, text }).is_err() {
                                return;
                            }
                        }
                    } else {
                        pending.push(b);
                    }
                }
            }
            let text = clean(&pending);
            if !text.is_empty() {
                let _ = writeln!(logf, "[{:8.3}] {text}", started.elapsed().as_secs_f64());
                let _ = tx.send(Line { at: Instant::now(), text });
            }
        });
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            for l in s.lines().filter(|l| !l.trim().is_empty()) {
                let _ = tx2.send(Line { at: Instant::now(), text: format!("qemu: {l}") });
            }
        });
        let stdin = child.stdin.take();
        Ok(Vm {
            name: name.to_owned(),
            child,
            stdin,
            rx,
            lines: Vec::new(),
            started,
            deadline: started + opts.deadline,
            log: log.to_owned(),
            killed: false,
        })
    }

    /// The next console line, waiting until `until` (or the boot's deadline) at most.
    pub fn next_line(&mut self, until: Instant) -> Result<Next> {
        let until = until.min(self.deadline);
        let wait = until.saturating_duration_since(Instant::now());
        match self.rx.recv_timeout(wait) {
            Ok(line) => {
                self.lines.push(line.clone());
                Ok(Next::Line(line))
            }
            Err(RecvTimeoutError::Timeout) => {
                if Instant::now() >= self.deadline {
                    self.kill();
                    let detail = format!(
                        "hard deadline of {:?} passed; QEMU killed; console log {}",
                        self.deadline - self.started,
                        self.log.display()
                    );
                    return Err(self.error(detail));
                }
                Ok(Next::Timeout)
            }
            Err(RecvTimeoutError::Disconnected) => Ok(Next::Exited),
        }
    }

    /// Waits for a line containing `needle`.
    pub fn expect(&mut self, needle: &str, timeout: Duration) -> Result<Line> {
        let until = Instant::now() + timeout;
        loop {
            match self.next_line(until)? {
                Next::Line(l) if l.text.contains(needle) => return Ok(l),
                Next::Line(l) if l.text.contains("SYSTEST-PANIC") => {
                    return Err(self.error(format!(
                        "the guest failed: {}; console log {}",
                        l.text,
                        self.log.display()
                    )));
                }
                Next::Line(_) => {}
                Next::Timeout => {
                    let detail = format!(
                        "no '{needle}' within {timeout:?}; last lines:\n{}\nconsole log {}",
                        self.tail(12),
                        self.log.display()
                    );
                    return Err(self.error(detail));
                }
                Next::Exited => {
                    let detail = format!(
                        "QEMU exited before '{needle}'; last lines:\n{}\nconsole log {}",
                        self.tail(12),
                        self.log.display()
                    );
                    return Err(self.error(detail));
                }
            }
        }
    }

    /// An [`Error::Guest`] of this boot.
    pub fn error(&self, detail: String) -> Error {
        Error::Guest { vm: self.name.clone(), detail }
    }

    /// The last `n` lines, for messages.
    pub fn tail(&self, n: usize) -> String {
        let skip = self.lines.len().saturating_sub(n);
        self.lines[skip..].iter().map(|l| format!("    {}", l.text)).collect::<Vec<_>>().join("\n")
    }

    /// Types a line on the serial console.
    pub fn send(&mut self, text: &str) -> Result {
        let name = &self.name;
        let console =
            |e: std::io::Error| Error::Guest { vm: name.clone(), detail: format!("writing to the console: {e}") };
        let stdin = self.stdin.as_mut().ok_or_else(|| console(std::io::ErrorKind::BrokenPipe.into()))?;
        stdin.write_all(format!("{text}\n").as_bytes()).map_err(console)?;
        stdin.flush().map_err(console)
    }

    /// Runs a shell command in the guest (which is at its `SYSTEST-READY` prompt) and returns
    /// its exit code and console lines; waits for the next prompt.
    pub fn command(&mut self, cmd: &str, timeout: Duration) -> Result<(i32, Vec<String>)> {
        let first = self.lines.len();
        self.send(cmd)?;
        let rc_line = self.expect("SYSTEST-RC ", timeout)?;
        let rc = rc_line.text.rsplit(' ').next().and_then(|s| s.parse().ok()).unwrap_or(-1);
        let out: Vec<String> = self.lines[first..self.lines.len() - 1].iter().map(|l| l.text.clone()).collect();
        self.expect("SYSTEST-READY", Duration::from_secs(10))?;
        Ok((rc, out))
    }

    /// Like [`Vm::command`], failing unless the command exits 0.
    pub fn ok(&mut self, cmd: &str, timeout: Duration) -> Result<Vec<String>> {
        let (rc, out) = self.command(cmd, timeout)?;
        if rc == 0 { Ok(out) } else { Err(self.error(format!("`{cmd}` exited {rc}:\n    {}", out.join("\n    ")))) }
    }

    /// Cuts the power: SIGKILL of QEMU, at once.
    pub fn kill(&mut self) {
        if !self.killed {
            let _ = self.child.kill();
            self.killed = true;
        }
        let _ = self.child.wait();
    }

    /// Waits until QEMU exits by itself (power-off, or a reset under -no-reboot), draining the
    /// console into `lines`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result {
        let until = Instant::now() + timeout;
        loop {
            match self.next_line(until)? {
                Next::Line(_) => {}
                Next::Exited => break,
                Next::Timeout => {
                    self.kill();
                    return Err(self.error(format!(
                        "QEMU did not exit within {timeout:?}; killed; last lines:\n{}",
                        self.tail(12)
                    )));
                }
            }
        }
        let _ = self.child.wait();
        Ok(())
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn console_text_is_cleaned() {
        assert_eq!(clean(b"\x1b[0m\x1b[?25lupdate: booting slot B (trial)\x1b[K  "), "update: booting slot B (trial)");
        assert_eq!(clean(b"  downloading [==  ] 1/13 MiB\x07"), "downloading [==  ] 1/13 MiB");
    }
}
