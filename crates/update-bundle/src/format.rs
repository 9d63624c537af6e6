//! The bytes on disk: header, manifest and signature-block layouts, and their strict checks.

use serde::{Deserialize, Serialize};
use update_core::component::{Component, Kind};
use update_core::{Error, Result, SlotGroupName, Version};

/// The first eight bytes of every bundle.
pub const MAGIC: [u8; 8] = *b"LIBUPDB\0";
/// The newest format version this code reads and writes: 3 (a delta index after the payload).
/// A bundle is written in the oldest version that holds it: 1 for images only, 2 with
/// components, 3 with a delta index.
pub const FORMAT_VERSION: u32 = 3;
/// The oldest format version this code reads.
pub const OLDEST_FORMAT_VERSION: u32 = 1;
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
    /// Format version (1 or 2); the manifest's `format` must be the same.
    pub format: u32,
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
        b[8..12].copy_from_slice(&self.format.to_le_bytes());
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
        let format = u32_at(8);
        if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&format) {
            return Err(bad(format!(
                "format version {format} is not supported (this reads {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION})"
            )));
        }
        if u32_at(12) != 0 {
            return Err(bad(format!("unknown flags {:#x}", u32_at(12))));
        }
        if b[40..].iter().any(|&x| x != 0) {
            return Err(bad("reserved bytes 40..64 are not zero".into()));
        }
        let h = Header { format, manifest_len: u64_at(16), signatures_len: u64_at(24), payload_len: u64_at(32) };
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

/// One component beside the images (format 2): what the handler of its kind installs, and the
/// chunks of its payload, which follow the images' in the payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentPayload {
    /// Name, kind, version, size, whole-payload SHA-256, requirements and options.
    #[serde(flatten)]
    pub component: Component,
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
    /// Manifest format (1 or 2, as the header's).
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
    /// Components after the images, in payload order (format 2; absent in format 1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<ComponentPayload>,
    /// Hook scripts.
    pub hooks: Vec<Hook>,
    /// Payload length (equals the header's).
    pub payload_size: u64,
    /// The delta index and block store after the payload (format 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<crate::delta::DeltaInfo>,
}

pub(crate) fn is_hex_sha256(s: &str) -> bool {
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
        if self.format != header.format {
            return Err(bad(format!("manifest format {} is not the header's {}", self.format, header.format)));
        }
        if self.format == 1 && !self.components.is_empty() {
            return Err(bad("a format 1 manifest cannot list components".into()));
        }
        if self.images.is_empty() && self.components.is_empty() {
            return Err(bad("the bundle has no images and no components".into()));
        }
        match (&self.delta, self.format) {
            (Some(_), f) if f < 3 => return Err(bad(format!("a format {f} manifest cannot have a delta index"))),
            (None, 3) => return Err(bad("a format 3 manifest needs a delta index".into())),
            (Some(info), _) => crate::delta::check_info(info).map_err(bad)?,
            (None, _) => {}
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
        for (i, image) in self.images.iter().enumerate() {
            if self.images[..i].iter().any(|o| o.slot_group == image.slot_group) {
                return Err(bad(format!("slot group '{}' appears twice", image.slot_group)));
            }
        }
        for (i, c) in self.components.iter().enumerate() {
            let name = &c.component.name;
            if self.components[..i].iter().any(|o| o.component.name == *name) {
                return Err(bad(format!("component '{name}' appears twice")));
            }
            if c.component.kind == Kind::Image {
                return Err(bad(format!("component '{name}' has kind image: images are listed under \"images\"")));
            }
        }
        let mut offset = 0u64;
        for part in self.parts() {
            if part.chunks.is_empty() {
                return Err(bad(format!("{} is empty", part.label)));
            }
            if !is_hex_sha256(part.sha256) {
                return Err(bad(format!("{} has a malformed sha256", part.label)));
            }
            let mut total = 0u64;
            for (c, chunk) in part.chunks.iter().enumerate() {
                let at = || format!("{} chunk {c}", part.label);
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
            if total != part.size {
                return Err(bad(format!("{}: chunks add up to {total} bytes, it is {}", part.label, part.size)));
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

/// One stretch of the payload: an image or a component, as the readers walk them.
#[derive(Debug, Clone)]
pub struct Part<'a> {
    /// For messages: `image 'rootfs'` or `component 'mcu'`.
    pub label: String,
    /// Uncompressed size.
    pub size: u64,
    /// Hex SHA-256 of the whole uncompressed part.
    pub sha256: &'a str,
    /// Its chunks.
    pub chunks: &'a [Chunk],
}

impl Manifest {
    /// The images, then the components: the payload's order.
    pub fn parts(&self) -> impl Iterator<Item = Part<'_>> {
        let images = self.images.iter().map(|i| Part {
            label: format!("image '{}'", i.slot_group),
            size: i.size,
            sha256: &i.sha256,
            chunks: &i.chunks,
        });
        let components = self.components.iter().map(|c| Part {
            label: format!("component '{}'", c.component.name),
            size: c.component.size,
            sha256: &c.component.sha256,
            chunks: &c.chunks,
        });
        images.chain(components)
    }

    /// Where the payload starts in the file: after the header, manifest and signature block.
    #[must_use]
    pub fn payload_start(header: &Header) -> u64 {
        HEADER_LEN as u64 + header.manifest_len + header.signatures_len
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
