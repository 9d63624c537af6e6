//! Making bundles (build machines).

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use ed25519_dalek::{Signer as _, SigningKey};
use sha2::{Digest, Sha256};
use update_core::{Error, KeyName, Result, SlotGroupName, Version};

use crate::format::{
    Chunk, HEADER_LEN, Header, Hook, HookKind, Image, Manifest, SIGNATURE_ENTRY, Signer, signed_message,
};
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
            hooks: Vec::new(),
            signers: Vec::new(),
            chunk_size: 1 << 20,
            zstd_level: 3,
            created: String::new(),
        }
    }
}

/// Writes a bundle to `out`. The payload is compressed into `scratch` first (the manifest,
/// which lists every chunk, comes before the payload in the file), then copied after the
/// signed header and manifest. Memory use is bounded by one chunk.
///
/// # Errors
/// I/O errors naming the image; [`Error::InvalidValue`] for no images, an empty image file or a
/// chunk size outside 1 byte to 16 MiB; [`Error::Verification`] when the result would not pass
/// [`Manifest::check`] (e.g. a slot group given twice).
pub fn create(opts: &CreateOptions, scratch: &mut File, out: &mut impl Write) -> Result<Manifest> {
    if opts.images.is_empty() {
        return Err(Error::InvalidValue {
            what: "images".into(),
            value: String::new(),
            reason: "a bundle needs at least one --image".into(),
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
    let mut payload_len = 0u64;
    let mut images = Vec::new();
    let chunk_len = usize::try_from(opts.chunk_size).expect("at most 16 MiB");
    let mut buf = vec![0u8; chunk_len];
    let mut compressor =
        zstd::bulk::Compressor::new(opts.zstd_level).map_err(|e| Error::Other(format!("zstd: {e}")))?;
    for (group, path) in &opts.images {
        let mut f = BufReader::new(File::open(path).map_err(|e| Error::io("open image", path, e))?);
        let mut whole = Sha256::new();
        let mut chunks = Vec::new();
        let mut size = 0u64;
        loop {
            let n = read_full(&mut f, &mut buf).map_err(|e| Error::io("read image", path, e))?;
            if n == 0 {
                break;
            }
            let data = &buf[..n];
            whole.update(data);
            let z = compressor.compress(data).map_err(|e| Error::Other(format!("zstd: {e}")))?;
            scratch.write_all(&z).map_err(|e| Error::io("write", "scratch file", e))?;
            chunks.push(Chunk {
                offset: payload_len,
                zsize: z.len() as u64,
                size: n as u64,
                sha256: hex::encode(Sha256::digest(data)),
                zsha256: hex::encode(Sha256::digest(&z)),
            });
            payload_len += z.len() as u64;
            size += n as u64;
            if n < chunk_len {
                break;
            }
        }
        if size == 0 {
            // Nothing would be written, and the slot would keep stale content under the new version.
            return Err(Error::InvalidValue {
                what: "image".into(),
                value: format!("{group}={}", path.display()),
                reason: "the file is empty".into(),
            });
        }
        images.push(Image { slot_group: group.clone(), size, sha256: hex::encode(whole.finalize()), chunks });
    }
    let mut hooks = Vec::new();
    for (kind, path) in &opts.hooks {
        let content = std::fs::read(path).map_err(|e| Error::io("read hook", path, e))?;
        hooks.push(Hook { kind: *kind, sha256: hex::encode(Sha256::digest(&content)), content });
    }
    let manifest = Manifest {
        format: 1,
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
        hooks,
        payload_size: payload_len,
    };
    let manifest_bytes = serde_json::to_vec(&manifest).map_err(|e| Error::Other(e.to_string()))?;
    let header = Header {
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
    let copied = std::io::copy(&mut scratch.take(payload_len), out).map_err(werr)?;
    if copied != payload_len {
        return Err(Error::Other(format!("scratch file held {copied} of {payload_len} payload bytes")));
    }
    out.flush().map_err(werr)?;
    Ok(manifest)
}

/// Reads until `buf` is full or the input ends.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
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
