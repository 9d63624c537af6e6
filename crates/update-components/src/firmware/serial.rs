//! SMP over a serial line: the console framing and the tty itself.
//!
//! Published facts used (Zephyr's "SMP transport over serial"/UART section): a packet is sent as
//! `BE16 length` + SMP packet + `BE16 CRC16`, where the length counts the packet and the CRC and
//! the CRC is CRC-16/XMODEM (polynomial 0x1021, initial 0) over the packet. Those bytes are
//! base64-encoded and split into lines of at most 127 bytes including a 2-byte marker and the
//! newline: `0x06 0x09` starts a packet, `0x04 0x14` continues it. Every line decodes on its own
//! (93 raw bytes → 124 base64 characters), and lines without a marker are console text.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::smp::Link;

/// Marker of a packet's first line.
pub const START: [u8; 2] = [0x06, 0x09];
/// Marker of a continuation line.
pub const CONTINUATION: [u8; 2] = [0x04, 0x14];
/// The longest line, marker and newline included.
pub const MAX_LINE: usize = 127;
/// Raw bytes per line: `(127 - 3) / 4 * 3`.
pub const RAW_PER_LINE: usize = (MAX_LINE - 3) / 4 * 3;

/// CRC-16/XMODEM (polynomial 0x1021, initial 0, no reflection, no final XOR).
#[must_use]
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc
}

/// The lines that carry one SMP packet.
#[must_use]
pub fn encode_packet(packet: &[u8]) -> Vec<u8> {
    // The length field is 16 bits: longer packets cannot be framed (Packet::encode bounds the
    // body to 65535 bytes; with the header this saturates instead of wrapping).
    let total = u16::try_from(packet.len() + 2).unwrap_or(u16::MAX);
    let mut raw = Vec::with_capacity(packet.len() + 4);
    raw.extend_from_slice(&total.to_be_bytes());
    raw.extend_from_slice(packet);
    raw.extend_from_slice(&crc16(packet).to_be_bytes());
    encode_lines(&raw)
}

/// Splits already length-prefixed and CRC-suffixed bytes into marked base64 lines (what
/// [`encode_packet`] does after adding the prefix and CRC; a test device uses it to send
/// damaged packets).
#[must_use]
pub fn encode_lines(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() * 4 / 3 + raw.len() / RAW_PER_LINE * 3 + 8);
    for (i, chunk) in raw.chunks(RAW_PER_LINE).enumerate() {
        out.extend_from_slice(if i == 0 { &START } else { &CONTINUATION });
        out.extend_from_slice(STANDARD.encode(chunk).as_bytes());
        out.push(b'\n');
    }
    out
}

/// Why received lines were not a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// A line longer than 127 bytes.
    LineTooLong,
    /// A line's base64 does not decode.
    Base64,
    /// The length prefix is too small or larger than the receiver accepts.
    Length(usize),
    /// More bytes than the length prefix announced.
    Overrun,
    /// The CRC does not match.
    Crc,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::LineTooLong => write!(f, "line longer than {MAX_LINE} bytes"),
            FrameError::Base64 => write!(f, "invalid base64"),
            FrameError::Length(n) => write!(f, "packet length {n} out of range"),
            FrameError::Overrun => write!(f, "more bytes than the length prefix announced"),
            FrameError::Crc => write!(f, "CRC16 mismatch"),
        }
    }
}

/// Reassembles packets from received bytes; bounded memory whatever arrives.
#[derive(Debug)]
pub struct FrameDecoder {
    max_packet: usize,
    line: Vec<u8>,
    overlong: bool,
    /// The packet being received: announced length and bytes so far (after the prefix).
    packet: Option<(usize, Vec<u8>)>,
}

impl FrameDecoder {
    /// A decoder that refuses packets longer than `max_packet` bytes.
    #[must_use]
    pub fn new(max_packet: usize) -> Self {
        Self { max_packet, line: Vec::with_capacity(MAX_LINE), overlong: false, packet: None }
    }

    /// Forgets any partial line or packet.
    pub fn reset(&mut self) {
        self.line.clear();
        self.overlong = false;
        self.packet = None;
    }

    /// Feeds received bytes; complete packets (header and body, without prefix and CRC) and
    /// framing errors are appended to `out` in order.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Result<Vec<u8>, FrameError>>) {
        for &b in bytes {
            if b == b'\n' {
                if self.overlong {
                    self.overlong = false;
                } else {
                    let line = std::mem::take(&mut self.line);
                    if let Some(r) = self.line_done(&line) {
                        out.push(r);
                    }
                    self.line = line;
                }
                self.line.clear();
            } else if !self.overlong {
                if self.line.len() + 1 >= MAX_LINE {
                    // Only packet lines are bounded; console text may be longer.
                    if self.line.starts_with(&START) || self.line.starts_with(&CONTINUATION) {
                        out.push(Err(FrameError::LineTooLong));
                        self.packet = None;
                    }
                    self.overlong = true;
                    self.line.clear();
                } else {
                    self.line.push(b);
                }
            }
        }
    }

    fn line_done(&mut self, line: &[u8]) -> Option<Result<Vec<u8>, FrameError>> {
        let start = line.starts_with(&START);
        if !start && !line.starts_with(&CONTINUATION) {
            return None; // console text
        }
        if !start && self.packet.is_none() {
            return None; // the rest of a packet we did not see start
        }
        let Ok(raw) = STANDARD.decode(&line[2..]) else {
            self.packet = None;
            return Some(Err(FrameError::Base64));
        };
        let raw = if start {
            if raw.len() < 2 {
                self.packet = None;
                return Some(Err(FrameError::Length(raw.len())));
            }
            let total = usize::from(u16::from_be_bytes([raw[0], raw[1]]));
            if total < 2 + 1 || total > self.max_packet + 2 {
                self.packet = None;
                return Some(Err(FrameError::Length(total)));
            }
            self.packet = Some((total, Vec::with_capacity(total)));
            &raw[2..]
        } else {
            &raw[..]
        };
        let (total, buf) = self.packet.as_mut()?;
        let total = *total;
        if buf.len() + raw.len() > total {
            self.packet = None;
            return Some(Err(FrameError::Overrun));
        }
        buf.extend_from_slice(raw);
        if buf.len() < total {
            return None;
        }
        let (_, mut buf) = self.packet.take()?;
        if crc16(&buf) != 0 {
            return Some(Err(FrameError::Crc));
        }
        buf.truncate(total - 2);
        Some(Ok(buf))
    }
}

/// A serial port in raw mode.
#[derive(Debug)]
pub struct SerialPort {
    file: File,
    path: PathBuf,
}

impl SerialPort {
    /// Opens `path` (a tty) read-write without making it the controlling terminal, takes it
    /// exclusively where the driver allows, and sets raw 8N1 at `baud` with no flow control.
    ///
    /// # Errors
    /// The path cannot be opened or is not a terminal, or the speed is refused.
    pub fn open(path: &Path, baud: u32) -> io::Result<SerialPort> {
        use rustix::fs::{Mode, OFlags};
        use rustix::termios::{ControlModes, OptionalActions, QueueSelector, SpecialCodeIndex};
        let fd =
            rustix::fs::open(path, OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC | OFlags::NONBLOCK, Mode::empty())?;
        // Not every tty driver supports exclusive mode; it only guards against a second opener.
        let _ = rustix::termios::ioctl_tiocexcl(&fd);
        let mut t = rustix::termios::tcgetattr(&fd)?;
        t.make_raw();
        t.control_modes |= ControlModes::CLOCAL | ControlModes::CREAD;
        t.control_modes -= ControlModes::CSTOPB | ControlModes::PARENB;
        t.special_codes[SpecialCodeIndex::VMIN] = 0;
        t.special_codes[SpecialCodeIndex::VTIME] = 0;
        t.set_speed(baud)?;
        rustix::termios::tcsetattr(&fd, OptionalActions::Now, &t)?;
        rustix::termios::tcflush(&fd, QueueSelector::IFlush)?;
        Ok(SerialPort { file: File::from(fd), path: path.to_owned() })
    }

    /// The path it was opened from.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Waits until `fd` is readable or `deadline` passes; `Ok(false)` on timeout.
///
/// # Errors
/// `poll` failed.
pub fn wait_readable(fd: impl AsFd, deadline: Instant) -> io::Result<bool> {
    use rustix::event::{PollFd, PollFlags, Timespec};
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        let ts = Timespec {
            tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(0) => {}
            Ok(_) => return Ok(true),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

impl Link for SerialPort {
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut rest = bytes;
        while !rest.is_empty() {
            match self.file.write(rest) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "the serial line accepts no bytes")),
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    use rustix::event::{PollFd, PollFlags, Timespec};
                    let mut fds = [PollFd::new(&self.file, PollFlags::OUT)];
                    let ts = Timespec { tv_sec: 1, tv_nsec: 0 };
                    if rustix::event::poll(&mut fds, Some(&ts))? == 0 {
                        return Err(io::Error::new(io::ErrorKind::TimedOut, "the serial line takes no bytes"));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
        loop {
            if !wait_readable(&self.file, deadline)? {
                return Ok(0);
            }
            match self.file.read(buf) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the serial line was hung up")),
                Ok(n) => return Ok(n),
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_xmodem_check_value() {
        assert_eq!(crc16(b"123456789"), 0x31c3);
        assert_eq!(crc16(b""), 0);
    }

    #[test]
    fn lines_are_at_most_127_bytes_and_decode_back() {
        for len in [8usize, 89, 90, 91, 92, 93, 94, 300, 1000] {
            let packet: Vec<u8> = (0..len).map(|i| u8::try_from(i * 7 % 251).unwrap()).collect();
            let framed = encode_packet(&packet);
            let lines: Vec<&[u8]> = framed.split_inclusive(|b| *b == b'\n').collect();
            for (i, l) in lines.iter().enumerate() {
                assert!(l.len() <= MAX_LINE, "{len}: line {i} is {} bytes", l.len());
                assert_eq!(&l[..2], if i == 0 { &START } else { &CONTINUATION });
            }
            let mut d = FrameDecoder::new(4096);
            let mut out = Vec::new();
            // Byte by byte, with console text before it.
            d.feed(b"*** Booting Zephyr OS ***\n", &mut out);
            for b in &framed {
                d.feed(std::slice::from_ref(b), &mut out);
            }
            assert_eq!(out, vec![Ok(packet)], "{len}");
        }
    }

    #[test]
    fn damaged_frames_are_refused() {
        let framed = encode_packet(&[1, 2, 3, 4, 5, 6, 7, 8, 0xa0]);
        let run = |bytes: &[u8], max: usize| {
            let mut d = FrameDecoder::new(max);
            let mut out = Vec::new();
            d.feed(bytes, &mut out);
            out
        };
        // A flipped payload bit (re-encoded so base64 stays valid) and a flipped CRC byte.
        for flip in [4usize, 12] {
            let mut raw = STANDARD.decode(&framed[2..framed.len() - 1]).unwrap();
            raw[flip] ^= 0x10;
            let mut f = START.to_vec();
            f.extend_from_slice(STANDARD.encode(&raw).as_bytes());
            f.push(b'\n');
            assert_eq!(run(&f, 4096), vec![Err(FrameError::Crc)], "flip {flip}");
        }
        let mut bad = framed.clone();
        bad[5] = b'!';
        assert_eq!(run(&bad, 4096), vec![Err(FrameError::Base64)]);
        assert_eq!(run(&framed, 4), vec![Err(FrameError::Length(11))], "over the receiver's limit");
        let mut long = START.to_vec();
        long.extend(std::iter::repeat_n(b'A', 200));
        long.push(b'\n');
        assert_eq!(run(&long, 4096), vec![Err(FrameError::LineTooLong)]);
        // A length prefix smaller than the data that follows.
        let mut raw = STANDARD.decode(&framed[2..framed.len() - 1]).unwrap();
        raw[1] = 4;
        let mut f = START.to_vec();
        f.extend_from_slice(STANDARD.encode(&raw).as_bytes());
        f.push(b'\n');
        assert_eq!(run(&f, 4096), vec![Err(FrameError::Overrun)]);
        // Console text longer than a frame is ignored, and the next packet still decodes.
        let mut text = vec![b'x'; 500];
        text.push(b'\n');
        text.extend_from_slice(&framed);
        assert_eq!(run(&text, 4096).len(), 1);
        assert!(run(&text, 4096)[0].is_ok());
    }
}
