//! Making bundles (build machines).

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use ed25519_dalek::{Signer as _, SigningKey};
use sha2::{Digest, Sha256};
use update_core::component::{ComponentName, Kind, Requirement, Settings};
use update_core::{Error, KeyName, Result, SlotGroupName, Version};

use crate::format::{
    Chunk, ComponentPayload, FORMAT_VERSION, HEADER_LEN, Header, Hook, HookKind, Image, Manifest, SIGNATURE_ENTRY,
    Signer, signed_message,
};

/// A component to put in a bundle: what the manifest says about it, and the file holding its
/// payload (size and hashes are computed).
#[derive(Debug, Clone)]
pub struct ComponentSource {
    /// Its name.
    pub name: ComponentName,
    /// Its kind (not `image`: images go in [`CreateOptions::images`]).
    pub kind: Kind,
    /// The version it installs.
    pub version: Version,
    /// Constraints on other components.
    pub requires: Vec<Requirement>,
    /// Kind-specific options.
    pub options: Settings,
    /// The payload file.
    pub path: PathBuf,
}
use crate::signing::public_key;

/// What goes into a bundle.
#[derive(Debug)]
pub struct CreateOptions {
    /// Release version.
    pub version: Version,
    /// Board name.
    pub compatible: String,
    /// Oldest version it may be installed over.
    pub min_version: Option<Version>,
    /// Images: slot group and file.
    pub images: Vec<(SlotGroupName, PathBuf)>,
    /// Components beside the images (format 2 when there is one).
    pub components: Vec<ComponentSource>,
    /// Hook scripts.
    pub hooks: Vec<(HookKind, PathBuf)>,
    /// Signing keys with their names.
    pub signers: Vec<(KeyName, SigningKey)>,
    /// Uncompressed chunk size (default 1 MiB).
    pub chunk_size: u64,
    /// zstd level (default 3).
    pub zstd_level: i32,
    /// Creation time (RFC 3339); now when empty.
    pub created: String,
    /// Add a delta index and block store (format 3), so devices fetch only the blocks they
    /// lack ([`crate::delta`]).
    pub delta: bool,
    /// Images of the release devices will most likely update from: blocks not in them go
    /// first in the store, so a device running that release fetches them in one range.
    pub delta_base: Vec<PathBuf>,
}

impl CreateOptions {
    /// Options with the defaults for chunk size, level and time.
    #[must_use]
    pub fn new(version: Version, compatible: &str) -> Self {
        Self {
            version,
            compatible: compatible.to_owned(),
            min_version: None,
            images: Vec::new(),
            components: Vec::new(),
            hooks: Vec::new(),
            signers: Vec::new(),
            chunk_size: 1 << 20,
            zstd_level: 3,
            created: String::new(),
            delta: false,
            delta_base: Vec::new(),
        }
    }
}

/// Writes a bundle to `out`. The payload is compressed into `scratch` first (the manifest,
/// which lists every chunk, comes before the payload in the file), then copied after the
/// signed header and manifest. Memory use is bounded by one chunk.
///
/// # Errors
/// I/O errors naming the image; [`Error::InvalidValue`] for no images and no components, an
/// empty image or component file, a component of kind `image`, or a
/// chunk size outside 1 byte to 16 MiB; [`Error::Verification`] when the result would not pass
/// [`Manifest::check`] (e.g. a slot group given twice).
pub fn create(opts: &CreateOptions, scratch: &mut File, out: &mut impl Write) -> Result<Manifest> {
    if opts.images.is_empty() && opts.components.is_empty() {
        return Err(Error::InvalidValue {
            what: "images".into(),
            value: String::new(),
            reason: "a bundle needs at least one --image or --component".into(),
        });
    }
    if let Some(c) = opts.components.iter().find(|c| c.kind == Kind::Image) {
        return Err(Error::InvalidValue {
            what: "component kind".into(),
            value: format!("{}=image", c.name),
            reason: "images are given with --image SLOT-GROUP=PATH".into(),
        });
    }
    if opts.chunk_size == 0 || opts.chunk_size > crate::format::MAX_CHUNK {
        return Err(Error::InvalidValue {
            what: "chunk size".into(),
            value: opts.chunk_size.to_string(),
            reason: "1 byte to 16 MiB".into(),
        });
    }
    scratch.set_len(0).map_err(|e| Error::io("truncate", "scratch file", e))?;
    scratch.seek(SeekFrom::Start(0)).map_err(|e| Error::io("seek", "scratch file", e))?;
    let mut packer = Packer {
        scratch,
        payload_len: 0,
        buf: vec![0u8; usize::try_from(opts.chunk_size).expect("at most 16 MiB")],
        compressor: zstd::bulk::Compressor::new(opts.zstd_level).map_err(|e| Error::Other(format!("zstd: {e}")))?,
    };
    let mut images = Vec::new();
    for (group, path) in &opts.images {
        let (size, sha256, chunks) = packer.pack(path, &format!("{group}={}", path.display()))?;
        images.push(Image { slot_group: group.clone(), size, sha256, chunks });
    }
    let mut components = Vec::new();
    for c in &opts.components {
        let (size, sha256, chunks) = packer.pack(&c.path, &format!("{}={}", c.name, c.path.display()))?;
        let component = update_core::component::Component {
            name: c.name.clone(),
            kind: c.kind.clone(),
            version: c.version.clone(),
            size,
            sha256,
            requires: c.requires.clone(),
            options: c.options.clone(),
        };
        components.push(ComponentPayload { component, chunks });
    }
    let payload_len = packer.payload_len;
    let scratch = packer.scratch;
    // The delta section: the index and the front blocks in memory, the other blocks after the
    // payload in the scratch file.
    let delta = if opts.delta {
        let base = if opts.delta_base.is_empty() {
            None
        } else {
            let mut set = std::collections::HashSet::new();
            for p in &opts.delta_base {
                crate::delta::base_blocks(p, &mut set)?;
            }
            Some(set)
        };
        let mut builder = crate::delta::Builder::new(opts.zstd_level, base)?;
        let mut back = std::io::BufWriter::new(&mut *scratch);
        for (_, path) in &opts.images {
            builder.add_image(path, &mut back)?;
        }
        back.flush().map_err(|e| Error::io("write", "scratch file", e))?;
        drop(back);
        let (index, front, store_len) = builder.finish();
        // The store's hash: front blocks, then the back blocks from the scratch file.
        let mut h = Sha256::new();
        h.update(&front);
        scratch.seek(SeekFrom::Start(payload_len)).map_err(|e| Error::io("seek", "scratch file", e))?;
        let back_len = std::io::copy(&mut (&mut *scratch).take(u64::MAX), &mut HashWriter(&mut h))
            .map_err(|e| Error::io("read", "scratch file", e))?;
        if front.len() as u64 + back_len != store_len {
            return Err(Error::Other(format!("scratch file held {back_len} of {store_len} store bytes")));
        }
        let info = crate::delta::DeltaInfo {
            block_size: crate::delta::BLOCK_SIZE,
            index_size: index.len() as u64,
            index_sha256: hex::encode(Sha256::digest(&index)),
            store_size: store_len,
            store_sha256: hex::encode(h.finalize()),
        };
        Some((info, index, front, back_len))
    } else {
        None
    };
    let mut hooks = Vec::new();
    for (kind, path) in &opts.hooks {
        let content = std::fs::read(path).map_err(|e| Error::io("read hook", path, e))?;
        hooks.push(Hook { kind: *kind, sha256: hex::encode(Sha256::digest(&content)), content });
    }
    // The oldest format that holds it: devices in the field read format 1.
    let format = if delta.is_some() {
        FORMAT_VERSION
    } else if components.is_empty() {
        1
    } else {
        2
    };
    let manifest = Manifest {
        format,
        version: opts.version.clone(),
        compatible: opts.compatible.clone(),
        min_version: opts.min_version.clone(),
        created: if opts.created.is_empty() { update_core::time_util::now_rfc3339() } else { opts.created.clone() },
        signers: opts
            .signers
            .iter()
            .map(|(n, k)| Signer { name: n.to_string(), key_id: public_key(k).key_id() })
            .collect(),
        chunk_size: opts.chunk_size,
        images,
        components,
        hooks,
        payload_size: payload_len,
        delta: delta.as_ref().map(|d| d.0.clone()),
    };
    let manifest_bytes = serde_json::to_vec(&manifest).map_err(|e| Error::Other(e.to_string()))?;
    let header = Header {
        format,
        manifest_len: manifest_bytes.len() as u64,
        signatures_len: (opts.signers.len() * SIGNATURE_ENTRY) as u64,
        payload_len,
    };
    let header_bytes: [u8; HEADER_LEN] = header.encode();
    manifest.check(&header, "new bundle")?;
    let message = signed_message(&header_bytes, &manifest_bytes);
    let mut sigs = Vec::with_capacity(opts.signers.len() * SIGNATURE_ENTRY);
    for (_, key) in &opts.signers {
        sigs.extend_from_slice(&hex::decode(public_key(key).key_id()).expect("hex"));
        sigs.extend_from_slice(&key.sign(&message).to_bytes());
    }
    let werr = |e| Error::io("write", "bundle", e);
    out.write_all(&header_bytes).map_err(werr)?;
    out.write_all(&manifest_bytes).map_err(werr)?;
    out.write_all(&sigs).map_err(werr)?;
    scratch.seek(SeekFrom::Start(0)).map_err(|e| Error::io("seek", "scratch file", e))?;
    let copied = std::io::copy(&mut (&mut *scratch).take(payload_len), out).map_err(werr)?;
    if copied != payload_len {
        return Err(Error::Other(format!("scratch file held {copied} of {payload_len} payload bytes")));
    }
    if let Some((_, index, front, back_len)) = &delta {
        out.write_all(index).map_err(werr)?;
        out.write_all(front).map_err(werr)?;
        let copied = std::io::copy(&mut scratch.take(*back_len), out).map_err(werr)?;
        if copied != *back_len {
            return Err(Error::Other(format!("scratch file held {copied} of {back_len} store bytes")));
        }
    }
    out.flush().map_err(werr)?;
    Ok(manifest)
}

/// Compresses files into the scratch payload, chunk by chunk.
struct Packer<'a> {
    scratch: &'a mut File,
    payload_len: u64,
    buf: Vec<u8>,
    compressor: zstd::bulk::Compressor<'static>,
}

impl Packer<'_> {
    /// Appends one file's chunks; returns its size, SHA-256 and chunk table. `what` names it in
    /// errors (`rootfs=rootfs.img`).
    fn pack(&mut self, path: &std::path::Path, what: &str) -> Result<(u64, String, Vec<Chunk>)> {
        let mut f = BufReader::new(File::open(path).map_err(|e| Error::io("open image", path, e))?);
        let mut whole = Sha256::new();
        let mut chunks = Vec::new();
        let mut size = 0u64;
        loop {
            let n = read_full(&mut f, &mut self.buf).map_err(|e| Error::io("read image", path, e))?;
            if n == 0 {
                break;
            }
            let data = &self.buf[..n];
            whole.update(data);
            let z = self.compressor.compress(data).map_err(|e| Error::Other(format!("zstd: {e}")))?;
            self.scratch.write_all(&z).map_err(|e| Error::io("write", "scratch file", e))?;
            chunks.push(Chunk {
                offset: self.payload_len,
                zsize: z.len() as u64,
                size: n as u64,
                sha256: hex::encode(Sha256::digest(data)),
                zsha256: hex::encode(Sha256::digest(&z)),
            });
            self.payload_len += z.len() as u64;
            size += n as u64;
            if n < self.buf.len() {
                break;
            }
        }
        if size == 0 {
            // Nothing would be written, and the target would keep stale content under the new version.
            return Err(Error::InvalidValue {
                what: "image".into(),
                value: what.into(),
                reason: "the file is empty".into(),
            });
        }
        Ok((size, hex::encode(whole.finalize()), chunks))
    }
}

/// Feeds what is written to a hash.
struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Reads until `buf` is full or the input ends.
pub(crate) fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
