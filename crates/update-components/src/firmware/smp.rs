//! MCUmgr's Simple Management Protocol (SMP): the 8-byte header, CBOR bodies, the commands of
//! the OS and image management groups that an update needs, and a client that sends a request
//! and waits for its response over any [`Link`].
//!
//! Published facts used (Zephyr's "SMP Protocol Specification" and the groups 0 and 1 pages):
//! the header is `Res(3) Ver(2) Op(3)`, flags, big-endian length, big-endian group, sequence
//! number and command id; a response repeats the group, id and sequence with `op + 1`; errors
//! are `{"rc": n, "rsn"?: text}` in SMP version 1 and `{"err": {"group": g, "rc": n}}` in
//! version 2.

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use super::cbor::Value;
use super::serial::{FrameDecoder, FrameError, encode_packet};

/// The operation of an SMP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Read request.
    Read = 0,
    /// Read response.
    ReadRsp = 1,
    /// Write request.
    Write = 2,
    /// Write response.
    WriteRsp = 3,
}

impl Op {
    fn from_bits(b: u8) -> Option<Op> {
        match b {
            0 => Some(Op::Read),
            1 => Some(Op::ReadRsp),
            2 => Some(Op::Write),
            3 => Some(Op::WriteRsp),
            _ => None,
        }
    }

    /// The response operation for a request operation.
    #[must_use]
    pub fn response(self) -> Op {
        match self {
            Op::Read | Op::ReadRsp => Op::ReadRsp,
            Op::Write | Op::WriteRsp => Op::WriteRsp,
        }
    }
}

/// Group 0: OS management.
pub const GROUP_OS: u16 = 0;
/// Group 1: image management.
pub const GROUP_IMAGE: u16 = 1;
/// OS group: echo.
pub const OS_ECHO: u8 = 0;
/// OS group: system reset.
pub const OS_RESET: u8 = 5;
/// OS group: MCUmgr parameters (buffer size and count).
pub const OS_PARAMS: u8 = 6;
/// Image group: state read (op read) and state write (op write).
pub const IMAGE_STATE: u8 = 0;
/// Image group: upload.
pub const IMAGE_UPLOAD: u8 = 1;
/// Image group: erase.
pub const IMAGE_ERASE: u8 = 5;
/// Image group: slot information.
pub const IMAGE_SLOT_INFO: u8 = 6;

/// MCUmgr's generic result codes (`MGMT_ERR_*`) that the simulator and the messages use.
pub mod rc {
    /// Success.
    pub const OK: u64 = 0;
    /// Unknown error.
    pub const EUNKNOWN: u64 = 1;
    /// Out of memory (also: too large).
    pub const ENOMEM: u64 = 2;
    /// Invalid argument.
    pub const EINVAL: u64 = 3;
    /// Not found.
    pub const ENOENT: u64 = 5;
    /// Operation not allowed in the current state.
    pub const EBADSTATE: u64 = 6;
    /// Command not supported.
    pub const ENOTSUP: u64 = 8;
    /// Corrupt data.
    pub const ECORRUPT: u64 = 9;
    /// Busy.
    pub const EBUSY: u64 = 10;

    /// A short name for a code, for messages.
    #[must_use]
    pub fn name(rc: u64) -> &'static str {
        match rc {
            OK => "ok",
            EUNKNOWN => "unknown error",
            ENOMEM => "no memory",
            EINVAL => "invalid value",
            4 => "timeout",
            ENOENT => "not found",
            EBADSTATE => "not allowed in the current state",
            7 => "message too large",
            ENOTSUP => "not supported",
            ECORRUPT => "corrupt",
            EBUSY => "busy",
            11 => "access denied",
            _ => "device-specific error",
        }
    }
}

/// The SMP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Protocol version: 0 is SMP version 1, 1 is version 2.
    pub version: u8,
    /// The operation.
    pub op: Op,
    /// Flags (0).
    pub flags: u8,
    /// Length of the CBOR body.
    pub len: u16,
    /// The group.
    pub group: u16,
    /// Sequence number.
    pub seq: u8,
    /// Command id within the group.
    pub id: u8,
}

/// Size of the header.
pub const HEADER_LEN: usize = 8;

impl Header {
    /// The 8 header bytes.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let l = self.len.to_be_bytes();
        let g = self.group.to_be_bytes();
        [((self.version & 3) << 3) | self.op as u8, self.flags, l[0], l[1], g[0], g[1], self.seq, self.id]
    }

    /// Parses a header.
    ///
    /// # Errors
    /// Fewer than 8 bytes, or reserved bits set.
    pub fn parse(b: &[u8]) -> Result<Header, ProtocolError> {
        if b.len() < HEADER_LEN {
            return Err(ProtocolError::Malformed("packet shorter than the SMP header".into()));
        }
        if b[0] & 0xe0 != 0 {
            return Err(ProtocolError::Malformed("reserved bits set in the SMP header".into()));
        }
        let op = Op::from_bits(b[0] & 7).ok_or_else(|| ProtocolError::Malformed("unknown SMP operation".into()))?;
        Ok(Header {
            version: (b[0] >> 3) & 3,
            op,
            flags: b[1],
            len: u16::from_be_bytes([b[2], b[3]]),
            group: u16::from_be_bytes([b[4], b[5]]),
            seq: b[6],
            id: b[7],
        })
    }
}

/// One SMP packet: header and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// The header (its `len` is set by [`Packet::encode`]).
    pub header: Header,
    /// The CBOR body (a map).
    pub body: Value,
}

impl Packet {
    /// Header plus CBOR body, with the header's length set.
    ///
    /// # Errors
    /// The body is longer than 65535 bytes.
    pub fn encode(&self) -> Result<Vec<u8>, ProtocolError> {
        let body = self.body.encode();
        let len =
            u16::try_from(body.len()).map_err(|_| ProtocolError::Malformed("SMP body over 65535 bytes".into()))?;
        let mut out = Header { len, ..self.header }.to_bytes().to_vec();
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Parses a packet; the header's length must match the body.
    ///
    /// # Errors
    /// A bad header, a length mismatch, or a body that is not a CBOR map.
    pub fn decode(bytes: &[u8]) -> Result<Packet, ProtocolError> {
        let header = Header::parse(bytes)?;
        let body = &bytes[HEADER_LEN..];
        if body.len() != usize::from(header.len) {
            return Err(ProtocolError::Malformed(format!(
                "SMP header says {} body bytes, the packet has {}",
                header.len,
                body.len()
            )));
        }
        let body = Value::decode(body).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
        if !matches!(body, Value::Map(_)) {
            return Err(ProtocolError::Malformed("SMP body is not a CBOR map".into()));
        }
        Ok(Packet { header, body })
    }
}

/// What went wrong talking SMP.
#[derive(Debug)]
pub enum ProtocolError {
    /// Reading or writing the line failed.
    Io(io::Error),
    /// No response within the time limit.
    NoAnswer(Duration),
    /// A frame was damaged or hostile (bad CRC, base64, length).
    Frame(FrameError),
    /// A packet or body was malformed or not what the command answers.
    Malformed(String),
    /// The device answered with an error code.
    Device {
        /// The group that answered (SMP version 2), else the request's.
        group: u16,
        /// The result code.
        rc: u64,
        /// The device's reason text, if any.
        reason: Option<String>,
    },
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::Io(e) => write!(f, "{e}"),
            ProtocolError::NoAnswer(t) => write!(f, "no answer within {} ms", t.as_millis()),
            ProtocolError::Frame(e) => write!(f, "damaged frame: {e}"),
            ProtocolError::Malformed(m) => write!(f, "malformed answer: {m}"),
            ProtocolError::Device { group, rc, reason } => {
                write!(f, "device error {rc} ({}) in group {group}", rc::name(*rc))?;
                if let Some(r) = reason {
                    write!(f, ": {}", r.escape_debug())?;
                }
                Ok(())
            }
        }
    }
}

/// A byte link to the device (a serial port, or the simulator's side of a pty).
pub trait Link {
    /// Writes all of `bytes`.
    ///
    /// # Errors
    /// The line is gone.
    fn send(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Reads what is available, waiting at most until `deadline`; `Ok(0)` when it passed.
    ///
    /// # Errors
    /// The line is gone.
    fn recv(&mut self, buf: &mut [u8], deadline: Instant) -> io::Result<usize>;
}

/// One entry of the image list (image state read).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageSlot {
    /// Image number (0 on single-image devices).
    pub image: u64,
    /// Slot: 0 primary, 1 secondary.
    pub slot: u64,
    /// Version text (`1.2.3` or `1.2.3.4` with a build number).
    pub version: String,
    /// MCUboot's image hash (the SHA-256 TLV).
    pub hash: Vec<u8>,
    /// The bootloader can boot it.
    pub bootable: bool,
    /// Marked to run at the next reset.
    pub pending: bool,
    /// Confirmed (will keep running).
    pub confirmed: bool,
    /// Running now.
    pub active: bool,
    /// Pending permanently (no test run).
    pub permanent: bool,
}

/// What an upload chunk's response says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadAnswer {
    /// The offset the device wants next (where it continues).
    pub off: u64,
    /// After the last chunk: whether the device's SHA-256 matched ours, if it says.
    pub matched: Option<bool>,
}

/// The largest packet a client accepts from a device.
pub const MAX_RESPONSE: usize = 8192;

/// An SMP client over a [`Link`]: one request at a time, responses matched by sequence number.
pub struct Client<L> {
    link: L,
    decoder: FrameDecoder,
    seq: u8,
    timeout: Duration,
    /// Data bytes sent in upload chunks (for measurements and tests).
    pub uploaded_bytes: u64,
}

impl<L: Link> Client<L> {
    /// A client that waits `timeout` for each response.
    pub fn new(link: L, timeout: Duration) -> Self {
        Self { link, decoder: FrameDecoder::new(MAX_RESPONSE), seq: 0, timeout, uploaded_bytes: 0 }
    }

    /// The link, giving up the client.
    pub fn into_link(self) -> L {
        self.link
    }

    /// The link.
    pub fn link_mut(&mut self) -> &mut L {
        &mut self.link
    }

    /// The time limit per request.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends a request and returns the response body (errors in the body become
    /// [`ProtocolError::Device`]).
    ///
    /// # Errors
    /// No answer in time, damaged frames, malformed answers, device errors, I/O errors.
    pub fn request(&mut self, op: Op, group: u16, id: u8, body: Value) -> Result<Value, ProtocolError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let header = Header { version: 0, op, flags: 0, len: 0, group, seq, id };
        let bytes = encode_packet(&Packet { header, body }.encode()?);
        self.decoder.reset();
        self.link.send(&bytes).map_err(ProtocolError::Io)?;
        let deadline = Instant::now() + self.timeout;
        let mut buf = [0u8; 512];
        let mut packets = Vec::new();
        loop {
            let n = self.link.recv(&mut buf, deadline).map_err(ProtocolError::Io)?;
            if n == 0 {
                return Err(ProtocolError::NoAnswer(self.timeout));
            }
            packets.clear();
            self.decoder.feed(&buf[..n], &mut packets);
            for p in packets.drain(..) {
                let p = Packet::decode(&p.map_err(ProtocolError::Frame)?)?;
                let h = p.header;
                if h.seq != seq || h.op == op {
                    // A late answer to an earlier request, or our own echo: not ours.
                    continue;
                }
                if h.op != op.response() || h.group != group || h.id != id {
                    return Err(ProtocolError::Malformed(format!(
                        "answer for group {} command {} op {:?}, expected group {group} command {id}",
                        h.group, h.id, h.op
                    )));
                }
                return check_rc(group, p.body);
            }
        }
    }

    /// Echo: the device returns the text.
    ///
    /// # Errors
    /// As [`Client::request`]; a different text is malformed.
    pub fn echo(&mut self, text: &str) -> Result<(), ProtocolError> {
        let body = self.request(Op::Write, GROUP_OS, OS_ECHO, Value::map([("d", Value::Text(text.into()))]))?;
        match body.get("r").and_then(Value::as_text) {
            Some(r) if r == text => Ok(()),
            _ => Err(ProtocolError::Malformed("echo answered with a different text".into())),
        }
    }

    /// Asks the device to reset (it answers before resetting).
    ///
    /// # Errors
    /// As [`Client::request`].
    pub fn reset(&mut self) -> Result<(), ProtocolError> {
        self.request(Op::Write, GROUP_OS, OS_RESET, Value::Map(Vec::new())).map(|_| ())
    }

    /// The image list.
    ///
    /// # Errors
    /// As [`Client::request`]; an answer without `images` is malformed.
    pub fn image_state(&mut self) -> Result<Vec<ImageSlot>, ProtocolError> {
        let body = self.request(Op::Read, GROUP_IMAGE, IMAGE_STATE, Value::Map(Vec::new()))?;
        parse_image_list(&body)
    }

    /// Marks an image to run at the next reset (`confirm = false`, test) or confirms it
    /// (`confirm = true`; without a hash: the running image). Returns the new image list.
    ///
    /// # Errors
    /// As [`Client::request`].
    pub fn image_set_state(&mut self, hash: Option<&[u8]>, confirm: bool) -> Result<Vec<ImageSlot>, ProtocolError> {
        let mut entries = vec![(Value::Text("confirm".into()), Value::Bool(confirm))];
        if let Some(h) = hash {
            entries.push((Value::Text("hash".into()), Value::Bytes(h.to_vec())));
        }
        let body = self.request(Op::Write, GROUP_IMAGE, IMAGE_STATE, Value::Map(entries))?;
        parse_image_list(&body)
    }

    /// Erases the secondary slot (clears a pending mark with it).
    ///
    /// # Errors
    /// As [`Client::request`].
    pub fn image_erase(&mut self) -> Result<(), ProtocolError> {
        self.request(Op::Write, GROUP_IMAGE, IMAGE_ERASE, Value::map([("slot", Value::Uint(1))])).map(|_| ())
    }

    /// The size of the slots of image 0, if the device implements slot info.
    ///
    /// # Errors
    /// As [`Client::request`], except that "not supported" is `Ok(None)`.
    pub fn slot_size(&mut self) -> Result<Option<u64>, ProtocolError> {
        match self.request(Op::Read, GROUP_IMAGE, IMAGE_SLOT_INFO, Value::Map(Vec::new())) {
            Ok(body) => Ok(body
                .get("images")
                .and_then(Value::as_array)
                .and_then(|a| a.iter().find(|i| i.get("image").and_then(Value::as_u64).unwrap_or(0) == 0))
                .and_then(|i| {
                    i.get("max_image_size").and_then(Value::as_u64).or_else(|| {
                        i.get("slots")
                            .and_then(Value::as_array)
                            .and_then(|s| s.iter().find(|s| s.get("slot").and_then(Value::as_u64) == Some(1)))
                            .and_then(|s| s.get("size").and_then(Value::as_u64))
                    })
                })),
            Err(ProtocolError::Device { rc: rc::ENOTSUP, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sends one upload chunk at `off`; the first chunk (`off` 0) carries the total length and
    /// the SHA-256 of the whole upload.
    ///
    /// # Errors
    /// As [`Client::request`]; an answer without `off` is malformed.
    pub fn upload_chunk(
        &mut self,
        off: u64,
        data: &[u8],
        first: Option<(u64, &[u8])>,
    ) -> Result<UploadAnswer, ProtocolError> {
        let body = upload_body(off, data, first);
        let answer = self.request(Op::Write, GROUP_IMAGE, IMAGE_UPLOAD, body)?;
        self.uploaded_bytes += data.len() as u64;
        let off = answer
            .get("off")
            .and_then(Value::as_u64)
            .ok_or_else(|| ProtocolError::Malformed("upload answer without an offset".into()))?;
        Ok(UploadAnswer { off, matched: answer.get("match").and_then(Value::as_bool) })
    }
}

/// The body of an upload request.
#[must_use]
pub fn upload_body(off: u64, data: &[u8], first: Option<(u64, &[u8])>) -> Value {
    let mut e = vec![(Value::Text("off".into()), Value::Uint(off))];
    if let Some((len, sha)) = first {
        e.push((Value::Text("image".into()), Value::Uint(0)));
        e.push((Value::Text("len".into()), Value::Uint(len)));
        e.push((Value::Text("sha".into()), Value::Bytes(sha.to_vec())));
    }
    e.push((Value::Text("data".into()), Value::Bytes(data.to_vec())));
    Value::Map(e)
}

/// How many data bytes fit into one upload packet of at most `mtu` bytes (header included).
#[must_use]
pub fn chunk_capacity(mtu: usize, off: u64, first: Option<(u64, &[u8])>) -> usize {
    // The body without data, plus the header, plus the data's byte-string head (≤ 3 bytes
    // for up to 65535 bytes; the empty one counted 1).
    let overhead = upload_body(off, &[], first).encode().len() + HEADER_LEN + 2;
    mtu.saturating_sub(overhead)
}

fn check_rc(group: u16, body: Value) -> Result<Value, ProtocolError> {
    if let Some(err) = body.get("err") {
        let rc = err.get("rc").and_then(Value::as_u64).unwrap_or(rc::EUNKNOWN);
        if rc != rc::OK {
            let g = err.get("group").and_then(Value::as_u64).and_then(|g| u16::try_from(g).ok()).unwrap_or(group);
            return Err(ProtocolError::Device { group: g, rc, reason: None });
        }
    }
    if let Some(r) = body.get("rc") {
        let rc = r.as_u64().unwrap_or(rc::EUNKNOWN);
        if rc != rc::OK {
            let reason = body.get("rsn").and_then(Value::as_text).map(str::to_owned);
            return Err(ProtocolError::Device { group, rc, reason });
        }
    }
    Ok(body)
}

/// Parses an image list (`{"images": [...]}`).
///
/// # Errors
/// No `images` array, or an entry without `slot`, `version` or `hash`.
pub fn parse_image_list(body: &Value) -> Result<Vec<ImageSlot>, ProtocolError> {
    let images = body
        .get("images")
        .and_then(Value::as_array)
        .ok_or_else(|| ProtocolError::Malformed("image list without images".into()))?;
    let flag = |v: &Value, k| v.get(k).and_then(Value::as_bool).unwrap_or(false);
    images
        .iter()
        .map(|i| {
            Ok(ImageSlot {
                image: i.get("image").and_then(Value::as_u64).unwrap_or(0),
                slot: i
                    .get("slot")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| ProtocolError::Malformed("image without slot".into()))?,
                version: i
                    .get("version")
                    .and_then(Value::as_text)
                    .ok_or_else(|| ProtocolError::Malformed("image without version".into()))?
                    .to_owned(),
                hash: i.get("hash").and_then(Value::as_bytes).map(<[u8]>::to_vec).unwrap_or_default(),
                bootable: flag(i, "bootable"),
                pending: flag(i, "pending"),
                confirmed: flag(i, "confirmed"),
                active: flag(i, "active"),
                permanent: flag(i, "permanent"),
            })
        })
        .collect()
}

/// The body of an image list answer (the simulator's side of [`parse_image_list`]).
#[must_use]
pub fn image_list_body(slots: &[ImageSlot]) -> Value {
    Value::map([(
        "images",
        Value::Array(
            slots
                .iter()
                .map(|s| {
                    Value::map([
                        ("image", Value::Uint(s.image)),
                        ("slot", Value::Uint(s.slot)),
                        ("version", Value::Text(s.version.clone())),
                        ("hash", Value::Bytes(s.hash.clone())),
                        ("bootable", Value::Bool(s.bootable)),
                        ("pending", Value::Bool(s.pending)),
                        ("confirmed", Value::Bool(s.confirmed)),
                        ("active", Value::Bool(s.active)),
                        ("permanent", Value::Bool(s.permanent)),
                    ])
                })
                .collect(),
        ),
    )])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_bit_layout() {
        let h = Header { version: 1, op: Op::Write, flags: 0, len: 0x0102, group: 1, seq: 7, id: 1 };
        let b = h.to_bytes();
        assert_eq!(b, [0x0a, 0, 1, 2, 0, 1, 7, 1]);
        assert_eq!(Header::parse(&b).unwrap(), h);
        assert!(Header::parse(&[0x20, 0, 0, 0, 0, 0, 0, 0]).is_err(), "reserved bits");
        assert!(Header::parse(&[0; 7]).is_err(), "short");
    }

    #[test]
    fn packet_length_must_match() {
        let p = Packet {
            header: Header { version: 0, op: Op::Read, flags: 0, len: 0, group: 1, seq: 1, id: 0 },
            body: Value::Map(vec![]),
        };
        let mut b = p.encode().unwrap();
        assert_eq!(Packet::decode(&b).unwrap(), Packet { header: Header { len: 1, ..p.header }, body: p.body });
        b.push(0);
        assert!(Packet::decode(&b).is_err());
        let not_map = [0, 0, 0, 1, 0, 1, 1, 0, 0x01];
        assert!(Packet::decode(&not_map).is_err());
    }

    #[test]
    fn errors_in_both_smp_versions() {
        let v1 = Value::map([("rc", Value::Uint(rc::EBADSTATE)), ("rsn", Value::Text("busy".into()))]);
        assert!(matches!(check_rc(1, v1), Err(ProtocolError::Device { rc: rc::EBADSTATE, .. })));
        let v2 = Value::map([("err", Value::map([("group", Value::Uint(1)), ("rc", Value::Uint(3))]))]);
        assert!(matches!(check_rc(1, v2), Err(ProtocolError::Device { rc: 3, group: 1, .. })));
        assert!(check_rc(1, Value::map([("rc", Value::Uint(0))])).is_ok());
    }

    #[test]
    fn chunks_fill_the_mtu_exactly() {
        let sha = [0u8; 32];
        for mtu in [128usize, 256, 384, 1024] {
            for first in [None, Some((300_000u64, &sha[..]))] {
                let off = if first.is_some() { 0 } else { 262_000 };
                let n = chunk_capacity(mtu, off, first);
                let body = upload_body(off, &vec![0; n], first);
                let len = body.encode().len() + HEADER_LEN;
                assert!(len <= mtu && len + 3 > mtu, "mtu {mtu}: {len}");
            }
        }
    }
}
