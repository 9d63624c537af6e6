//! The bytes on disk: header, manifest and signature-block layouts, and their strict checks.

use serde::{Deserialize, Serialize};
use update_core::{Error, Result, SlotGroupName, Version};

/// The first eight bytes of every bundle.
pub const MAGIC: [u8; 8] = *b"LIBUPDB\0";
/// The format version this code reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// Header length in bytes.
pub const HEADER_LEN: usize = 64;
/// Largest manifest accepted (bytes).
pub const MAX_MANIFEST: u64 = 16 << 20;
/// One signature-block entry: key id (32 bytes) and ed25519 signature (64 bytes).
pub const SIGNATURE_ENTRY: usize = 96;
/// Most signatures accepted.
pub const MAX_SIGNATURES: u64 = 64;
/// Largest chunk (uncompressed) accepted.
pub const MAX_CHUNK: u64 = 16 << 20;
/// Largest hook script accepted.
pub const MAX_HOOK: usize = 1 << 20;
/// Domain separation for signatures.
pub const SIGNING_DOMAIN: &[u8] = b"libupdate bundle v1\0";

/// The fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Manifest length in bytes.
    pub manifest_len: u64,
    /// Signature block length in bytes (a multiple of 96).
    pub signatures_len: u64,
    /// Payload length in bytes.
    pub payload_len: u64,
}

impl Header {
    /// The 64 bytes: magic, format version (u32 LE), flags (u32 LE, zero), manifest length,
    /// signature block length and payload length (u64 LE each), 24 zero bytes.
    #[must_use]
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[16..24].copy_from_slice(&self.manifest_len.to_le_bytes());
        b[24..32].copy_from_slice(&self.signatures_len.to_le_bytes());
        b[32..40].copy_from_slice(&self.payload_len.to_le_bytes());
        b
    }

    /// Parses and checks the header.
    ///
    /// # Errors
    /// [`Error::Verification`] for a wrong magic, version, flags, limits or non-zero reserved bytes.
    pub fn decode(b: &[u8; HEADER_LEN], name: &str) -> Result<Self> {
        let bad = |why: String| Error::verification(format!("{name}: header"), why);
        if b[0..8] != MAGIC {
            return Err(bad("not a libupdate bundle (bad magic)".into()));
        }
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"));
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"));
        if u32_at(8) != FORMAT_VERSION {
            return Err(bad(format!("format version {} is not supported (this reads {FORMAT_VERSION})", u32_at(8))));
        }
        if u32_at(12) != 0 {
            return Err(bad(format!("unknown flags {:#x}", u32_at(12))));
        }
        if b[40..].iter().any(|&x| x != 0) {
            return Err(bad("reserved bytes 40..64 are not zero".into()));
        }
        let h = Header { manifest_len: u64_at(16), signatures_len: u64_at(24), payload_len: u64_at(32) };
        if h.manifest_len == 0 || h.manifest_len > MAX_MANIFEST {
            return Err(bad(format!("manifest length {} is outside 1..={MAX_MANIFEST}", h.manifest_len)));
        }
        if !h.signatures_len.is_multiple_of(SIGNATURE_ENTRY as u64)
            || h.signatures_len > MAX_SIGNATURES * SIGNATURE_ENTRY as u64
        {
            return Err(bad(format!(
                "signature block length {} is not a multiple of {SIGNATURE_ENTRY} up to {MAX_SIGNATURES} entries",
                h.signatures_len
            )));
        }
        Ok(h)
    }
}

/// A key that signed the bundle, as listed in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signer {
    /// The key's name on the build machine.
    pub name: String,
    /// Hex SHA-256 of the raw public key.
    pub key_id: String,
}

/// One chunk of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// Offset of the compressed bytes from the start of the payload.
    pub offset: u64,
    /// Compressed length.
    pub zsize: u64,
    /// Uncompressed length.
    pub size: u64,
    /// Hex SHA-256 of the uncompressed bytes.
    pub sha256: String,
    /// Hex SHA-256 of the compressed bytes.
    pub zsha256: String,
}

/// One image: the content of one slot group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// The slot group it is written to.
    pub slot_group: SlotGroupName,
    /// Uncompressed size.
    pub size: u64,
    /// Hex SHA-256 of the whole image.
    pub sha256: String,
    /// The chunks, in order and contiguous.
    pub chunks: Vec<Chunk>,
}

/// When a hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HookKind {
    /// After every image is written and verified, before the switch; failure aborts the install.
    PostInstall,
}

impl HookKind {
    /// The name (`post-install`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            HookKind::PostInstall => "post-install",
        }
    }
}

impl std::str::FromStr for HookKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "post-install" => Ok(HookKind::PostInstall),
            _ => Err(Error::InvalidValue {
                what: "hook kind".into(),
                value: s.into(),
                reason: "expected post-install".into(),
            }),
        }
    }
}

/// A hook script carried in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hook {
    /// When it runs.
    pub kind: HookKind,
    /// Hex SHA-256 of the script.
    pub sha256: String,
    /// The script (base64 in the JSON).
    #[serde(with = "b64")]
    pub content: Vec<u8>,
}

mod b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD.decode(s).map_err(serde::de::Error::custom)
    }
}

/// The signed description of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Manifest format (1).
    pub format: u32,
    /// Release version.
    pub version: Version,
    /// The board it is for.
    pub compatible: String,
    /// The oldest installed version it may be installed over.
    pub min_version: Option<Version>,
    /// Creation time (RFC 3339).
    pub created: String,
    /// Keys that signed it.
    pub signers: Vec<Signer>,
    /// Uncompressed chunk size used when it was made.
    pub chunk_size: u64,
    /// Images in payload order.
    pub images: Vec<Image>,
    /// Hook scripts.
    pub hooks: Vec<Hook>,
    /// Payload length (equals the header's).
    pub payload_size: u64,
}

fn is_hex_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Manifest {
    /// Checks the structure: no empty image, chunks contiguous and within limits, sizes adding
    /// up, hashes well-formed, payload size matching the header, no duplicate slot groups or signers.
    ///
    /// # Errors
    /// [`Error::Verification`] naming the image and chunk.
    pub fn check(&self, header: &Header, name: &str) -> Result<()> {
        let bad = |why: String| Error::verification(format!("{name}: manifest"), why);
        if self.format != 1 {
            return Err(bad(format!("manifest format {} is not supported", self.format)));
        }
        if self.payload_size != header.payload_len {
            return Err(bad(format!(
                "payload size {} does not match the header's {}",
                self.payload_size, header.payload_len
            )));
        }
        if self.chunk_size == 0 || self.chunk_size > MAX_CHUNK {
            return Err(bad(format!("chunk size {} is outside 1..={MAX_CHUNK}", self.chunk_size)));
        }
        let mut offset = 0u64;
        for (i, image) in self.images.iter().enumerate() {
            if self.images[..i].iter().any(|o| o.slot_group == image.slot_group) {
                return Err(bad(format!("slot group '{}' appears twice", image.slot_group)));
            }
            if image.chunks.is_empty() {
                return Err(bad(format!("image '{}' is empty", image.slot_group)));
            }
            if !is_hex_sha256(&image.sha256) {
                return Err(bad(format!("image '{}' has a malformed sha256", image.slot_group)));
            }
            let mut total = 0u64;
            for (c, chunk) in image.chunks.iter().enumerate() {
                let at = || format!("image '{}' chunk {c}", image.slot_group);
                if chunk.offset != offset {
                    return Err(bad(format!("{}: offset {} where {offset} was expected", at(), chunk.offset)));
                }
                if chunk.size == 0 || chunk.size > self.chunk_size {
                    return Err(bad(format!("{}: size {} is outside 1..={}", at(), chunk.size, self.chunk_size)));
                }
                if chunk.zsize == 0 || chunk.zsize > chunk.size + chunk.size / 64 + 1024 {
                    return Err(bad(format!("{}: compressed size {} is implausible", at(), chunk.zsize)));
                }
                if !is_hex_sha256(&chunk.sha256) || !is_hex_sha256(&chunk.zsha256) {
                    return Err(bad(format!("{}: malformed sha256", at())));
                }
                offset = offset.checked_add(chunk.zsize).ok_or_else(|| bad("offsets overflow".into()))?;
                total = total.checked_add(chunk.size).ok_or_else(|| bad("sizes overflow".into()))?;
            }
            if total != image.size {
                return Err(bad(format!(
                    "image '{}': chunks add up to {total} bytes, the image is {}",
                    image.slot_group, image.size
                )));
            }
        }
        if offset != self.payload_size {
            return Err(bad(format!("chunks add up to {offset} payload bytes, the payload is {}", self.payload_size)));
        }
        for (i, s) in self.signers.iter().enumerate() {
            if !is_hex_sha256(&s.key_id) || self.signers[..i].iter().any(|o| o.key_id == s.key_id) {
                return Err(bad(format!("signer '{}' has a malformed or repeated key id", s.name)));
            }
        }
        for h in &self.hooks {
            if h.content.len() > MAX_HOOK {
                return Err(bad(format!("{} hook is larger than {MAX_HOOK} bytes", h.kind.as_str())));
            }
            if !is_hex_sha256(&h.sha256) || hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&h.content)) != h.sha256
            {
                return Err(bad(format!("{} hook does not match its sha256", h.kind.as_str())));
            }
        }
        Ok(())
    }
}

/// The message signed: the domain, the 64 header bytes and the manifest bytes.
#[must_use]
pub fn signed_message(header: &[u8; HEADER_LEN], manifest: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNING_DOMAIN.len() + HEADER_LEN + manifest.len());
    m.extend_from_slice(SIGNING_DOMAIN);
    m.extend_from_slice(header);
    m.extend_from_slice(manifest);
    m
}
