//! Reading bundles on the device: structure, then signatures, then verified chunks.

use std::io::{Read, Seek, SeekFrom};

use sha2::{Digest, Sha256};
use update_core::config::Verify;
use update_core::keyring::Keyring;
use update_core::{Error, Result};

use crate::format::{Chunk, ComponentPayload, HEADER_LEN, Header, Hook, Manifest, SIGNATURE_ENTRY, signed_message};

/// A bundle whose header, manifest and signature block were read and structurally checked,
/// but whose signatures are not yet verified. Its manifest is for display only
/// (`update-tool bundle info`) until [`BundleReader::verify`] succeeds.
#[derive(Debug)]
pub struct BundleReader<R> {
    reader: R,
    name: String,
    header_bytes: [u8; HEADER_LEN],
    manifest_bytes: Vec<u8>,
    manifest: Manifest,
    signatures: Vec<([u8; 32], [u8; 64])>,
    payload_start: u64,
}

/// An I/O error of the bundle's reader. A reader that fetches over the network reports its
/// own errors (a lost server is a source error, not a local I/O error): those come out as they
/// went in.
fn reader_error(op: &'static str, name: &str, e: std::io::Error) -> Error {
    if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        if let Ok(inner) = e.into_inner().expect("checked").downcast::<Error>() {
            return *inner;
        }
        return Error::Other(format!("{op} {name}"));
    }
    Error::io(op, name, e)
}

fn read_exact_or(r: &mut impl Read, buf: &mut [u8], name: &str, what: &str) -> Result<()> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::verification(name, format!("truncated: the file ends inside the {what}"))
        } else {
            reader_error("read bundle", name, e)
        }
    })
}

impl<R: Read> BundleReader<R> {
    /// Reads the header, manifest and signature block from the start of `reader`.
    ///
    /// # Errors
    /// [`Error::Verification`] for anything malformed or truncated; I/O errors.
    pub fn open(mut reader: R, name: &str) -> Result<Self> {
        let mut header_bytes = [0u8; HEADER_LEN];
        read_exact_or(&mut reader, &mut header_bytes, name, "header")?;
        let header = Header::decode(&header_bytes, name)?;
        let mut manifest_bytes = vec![0u8; usize::try_from(header.manifest_len).expect("at most 16 MiB")];
        read_exact_or(&mut reader, &mut manifest_bytes, name, "manifest")?;
        let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
            .map_err(|e| Error::verification(format!("{name}: manifest"), format!("not valid JSON: {e}")))?;
        manifest.check(&header, name)?;
        let mut block = vec![0u8; usize::try_from(header.signatures_len).expect("small")];
        read_exact_or(&mut reader, &mut block, name, "signature block")?;
        let signatures = block
            .chunks_exact(SIGNATURE_ENTRY)
            .map(|e| (e[..32].try_into().expect("32"), e[32..].try_into().expect("64")))
            .collect();
        let payload_start = Manifest::payload_start(&header);
        Ok(Self { reader, name: name.to_owned(), header_bytes, manifest_bytes, manifest, signatures, payload_start })
    }

    /// The manifest, not yet verified.
    #[must_use]
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The hex SHA-256 of the bundle's head: header, manifest and signature block, as read.
    /// Signed repository metadata carries it
    /// ([`update_core::driver::BUNDLE_HEAD_SHA256`]) so a device streaming the bundle can
    /// check the head against the repository before reading on; the manifest's chunk hashes
    /// then fix the rest.
    #[must_use]
    pub fn head_sha256(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.header_bytes);
        h.update(&self.manifest_bytes);
        for (id, sig) in &self.signatures {
            h.update(id);
            h.update(sig);
        }
        hex::encode(h.finalize())
    }

    /// The key ids of the signature block, in order.
    #[must_use]
    pub fn signature_key_ids(&self) -> Vec<String> {
        self.signatures.iter().map(|(id, _)| hex::encode(id)).collect()
    }

    /// Verifies the signatures: every entry must name a signer listed in the manifest, every
    /// signature by a trusted key must be valid, and with [`Verify::Signatures`] at least
    /// `threshold` distinct trusted keys must have signed. Signatures by keys the device does
    /// not trust are ignored.
    ///
    /// # Errors
    /// [`Error::Verification`] saying which check failed and naming the keys;
    /// [`Error::InvalidValue`] for a threshold of 0 with [`Verify::Signatures`] (that would
    /// accept an unsigned bundle; [`Verify::IntegrityOnly`] is the explicit way to do so).
    pub fn verify(self, keyring: &Keyring, threshold: u32, policy: Verify) -> Result<VerifiedBundle<R>> {
        if policy == Verify::Signatures && threshold == 0 {
            return Err(Error::InvalidValue {
                what: "signature threshold".into(),
                value: "0".into(),
                reason: "at least 1 is required; integrity-only verification is the explicit way to skip signatures"
                    .into(),
            });
        }
        let message = signed_message(&self.header_bytes, &self.manifest_bytes);
        let fail = |why: String| Error::verification(&self.name, why);
        let mut trusted = Vec::new();
        for (i, (id, sig)) in self.signatures.iter().enumerate() {
            let key_id = hex::encode(id);
            if !self.manifest.signers.iter().any(|s| s.key_id == key_id) {
                return Err(fail(format!(
                    "signature {i} is by key {key_id}, which the manifest does not list as a signer"
                )));
            }
            if self.signatures[..i].iter().any(|(other, _)| other == id) {
                return Err(fail(format!("key {key_id} signed twice")));
            }
            if let Some(entry) = keyring.by_key_id(&key_id) {
                if !entry.public_key.verify(&message, sig) {
                    return Err(fail(format!(
                        "the signature by trusted key '{}' is invalid: the bundle was changed after signing",
                        entry.name
                    )));
                }
                trusted.push(entry.name.to_string());
            }
        }
        if policy == Verify::Signatures && trusted.len() < threshold as usize {
            // The names a bundle gives its signers are unverified text: show the device's own key
            // name where the keyring knows the key, else only the key id (hex, checked at parse).
            let signers: Vec<String> = self
                .manifest
                .signers
                .iter()
                .map(|s| match keyring.by_key_id(&s.key_id) {
                    Some(entry) => format!("{} ({})", entry.name, &s.key_id[..16]),
                    None => format!("an untrusted key ({})", &s.key_id[..16]),
                })
                .collect();
            return Err(fail(if self.signatures.is_empty() {
                "the bundle is not signed".to_owned()
            } else {
                format!(
                    "{} valid signature(s) by trusted keys [{}], {threshold} required; the bundle is signed by [{}]",
                    trusted.len(),
                    trusted.join(", "),
                    signers.join(", ")
                )
            }));
        }
        Ok(VerifiedBundle { inner: self, trusted_signers: trusted, streamed: false })
    }
}

/// A bundle whose signatures were verified; its payload is read by [`VerifiedBundle::stream`].
#[derive(Debug)]
pub struct VerifiedBundle<R> {
    inner: BundleReader<R>,
    trusted_signers: Vec<String>,
    streamed: bool,
}

impl<R: Read> VerifiedBundle<R> {
    /// The verified manifest.
    #[must_use]
    pub fn manifest(&self) -> &Manifest {
        &self.inner.manifest
    }

    /// The hex SHA-256 of the bundle's head ([`BundleReader::head_sha256`]).
    #[must_use]
    pub fn head_sha256(&self) -> String {
        self.inner.head_sha256()
    }

    /// Names of the trusted keys whose signatures verified.
    #[must_use]
    pub fn trusted_signers(&self) -> &[String] {
        &self.trusted_signers
    }

    /// The hook scripts (covered by the signed manifest, hashes checked at open).
    #[must_use]
    pub fn hooks(&self) -> &[Hook] {
        &self.inner.manifest.hooks
    }

    /// Checks the whole payload without decompressing: every chunk's compressed bytes against
    /// its signed hash, and that the file ends where the payload ends. The native driver runs
    /// this over the local file before writing anything, so a bundle changed anywhere is
    /// refused with the target slot untouched; [`VerifiedBundle::stream`] checks everything
    /// again while writing.
    ///
    /// # Errors
    /// [`Error::Verification`] naming the image, chunk and payload offset.
    pub fn check_payload(mut self) -> Result<()> {
        let name = self.inner.name.clone();
        let reader = &mut self.inner.reader;
        let mut zbuf = Vec::new();
        for part in self.inner.manifest.parts() {
            for (c, chunk) in part.chunks.iter().enumerate() {
                let at = format!("{} chunk {c} (payload offset {})", part.label, chunk.offset);
                zbuf.resize(usize::try_from(chunk.zsize).expect("bounded by check"), 0);
                read_exact_or(reader, &mut zbuf, &name, &at)?;
                if hex::encode(Sha256::digest(&zbuf)) != chunk.zsha256 {
                    return Err(Error::verification(
                        &name,
                        format!("{at}: compressed bytes do not match the signed hash"),
                    ));
                }
            }
        }
        if let Some(delta) = &self.inner.manifest.delta {
            for (len, want, what) in [
                (delta.index_size, &delta.index_sha256, "delta index"),
                (delta.store_size, &delta.store_sha256, "delta store"),
            ] {
                let mut h = Sha256::new();
                let mut rest = len;
                while rest > 0 {
                    zbuf.resize(usize::try_from(rest.min(1 << 20)).expect("at most 1 MiB"), 0);
                    read_exact_or(reader, &mut zbuf, &name, what)?;
                    h.update(&zbuf);
                    rest -= zbuf.len() as u64;
                }
                if hex::encode(h.finalize()) != *want {
                    return Err(Error::verification(&name, format!("the {what} does not match the signed hash")));
                }
            }
        }
        expect_end(reader, &name)
    }

    /// Where the payload starts in the file.
    #[must_use]
    pub fn payload_start(&self) -> u64 {
        self.inner.payload_start
    }

    /// Where the delta index and the block store start in the file (format 3).
    #[must_use]
    pub fn delta_offsets(&self) -> Option<(u64, u64)> {
        let m = &self.inner.manifest;
        let index = self.inner.payload_start + m.payload_size;
        m.delta.as_ref().map(|d| (index, index + d.index_size))
    }

    /// Reads the images' payload front to back (the components' follow it and are read with
    /// [`VerifiedBundle::component_reader`]). Each chunk's compressed bytes are hashed, decompressed
    /// with the output bounded by the declared size, and hashed again; only then is it passed
    /// to `sink(image index, offset in image, bytes)`. The file must end exactly where the
    /// payload ends. Reading and decompressing run on a worker thread while the caller's thread
    /// hashes and sinks the previous chunk (two cores: about twice the throughput).
    ///
    /// The whole-image SHA-256 in the manifest is not recomputed here: the signed chunk table
    /// already fixes every byte (each chunk's hash and size, contiguous, adding up to the
    /// image size). It is what a reader checks when it reads the written image back.
    ///
    /// # Errors
    /// [`Error::Verification`] naming the image, chunk and payload offset; the sink's errors.
    pub fn stream(&mut self, mut sink: impl FnMut(usize, u64, &[u8]) -> Result<()>) -> Result<()>
    where
        R: Send,
    {
        self.pump(None, None, &mut |idx, offset, bytes, _| sink(idx, offset, bytes)).map(|_| ())
    }

    /// The images' chunks in order, from the bundle or from the device (see
    /// [`VerifiedBundle::stream_reusing`]). `seek` positions the reader at a payload byte when
    /// chunks were skipped; without it every chunk is read from the bundle.
    fn pump(
        &mut self,
        mut local: Option<&mut LocalChunks<'_>>,
        seek: Option<fn(&mut R, u64) -> std::io::Result<()>>,
        sink: &mut ChunkSink<'_>,
    ) -> Result<StreamStats>
    where
        R: Send,
    {
        if self.streamed {
            return Err(Error::Other("the payload was already streamed".into()));
        }
        self.streamed = true;
        let name = self.inner.name.clone();
        let reader = &mut self.inner.reader;
        let manifest = &self.inner.manifest;
        let payload_start = self.inner.payload_start;
        let chunk_size = usize::try_from(manifest.chunk_size).expect("at most 16 MiB");
        // Decompressed chunks travel to this thread; emptied buffers travel back.
        type Full = (usize, u64, usize, Vec<u8>, Found);
        let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Result<Full>>(2);
        let (empty_tx, empty_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        for _ in 0..3 {
            empty_tx.send(vec![0u8; chunk_size]).expect("capacity");
        }
        let worker_name = name.clone();
        let mut stats = StreamStats::default();
        let worker_stats = &mut stats;
        std::thread::scope(|scope| {
            let worker = scope.spawn(move || -> Result<()> {
                let name = worker_name;
                let mut zbuf = Vec::new();
                let mut decompressor = decompressor()?;
                // The payload offset the reader is at.
                let mut at_payload = 0u64;
                let mut read_last = true;
                for (idx, image) in manifest.images.iter().enumerate() {
                    let mut offset = 0u64;
                    for (c, chunk) in image.chunks.iter().enumerate() {
                        let at = || format!("image '{}' chunk {c} (payload offset {})", image.slot_group, chunk.offset);
                        let step = (|| {
                            let size = usize::try_from(chunk.size).expect("bounded by check");
                            // The receiver hung up: it failed and reports its own error.
                            let Ok(mut out) = empty_rx.recv() else { return Ok(None) };
                            // 1. On the device already? Used only when its hash matches.
                            if let Some(local) = local.as_deref_mut() {
                                let found = local(idx, offset, chunk, &mut out[..size])?;
                                if found != Found::No && hex::encode(Sha256::digest(&out[..size])) == chunk.sha256 {
                                    match found {
                                        Found::InPlace => worker_stats.in_place += chunk.size,
                                        _ => worker_stats.copied += chunk.size,
                                    }
                                    read_last = false;
                                    return Ok(Some((out, found)));
                                }
                            }
                            // 2. From the bundle.
                            if at_payload != chunk.offset {
                                let seek =
                                    seek.ok_or_else(|| Error::Other("the bundle cannot be read out of order".into()))?;
                                seek(reader, payload_start + chunk.offset)
                                    .map_err(|e| reader_error("seek in bundle", &name, e))?;
                            }
                            zbuf.resize(usize::try_from(chunk.zsize).expect("bounded by check"), 0);
                            read_exact_or(reader, &mut zbuf, &name, &at())?;
                            at_payload = chunk.offset + chunk.zsize;
                            read_last = true;
                            worker_stats.fetched += chunk.zsize;
                            // The plain hash is checked on the caller's thread (pipelined).
                            unpack_chunk(&mut decompressor, chunk, &zbuf, &mut out[..size], &name, &at())?;
                            Ok(Some((out, Found::No)))
                        })();
                        match step {
                            Ok(Some((out, found))) => {
                                if full_tx.send(Ok((idx, offset, c, out, found))).is_err() {
                                    return Ok(());
                                }
                            }
                            Ok(None) => return Ok(()),
                            Err(e) => {
                                let _ = full_tx.send(Err(e));
                                return Ok(());
                            }
                        }
                        offset += chunk.size;
                    }
                }
                // The file ends where the payload ends (checked when the last chunk was read here).
                if manifest.components.is_empty()
                    && manifest.delta.is_none()
                    && read_last
                    && let Err(e) = expect_end(reader, &name)
                {
                    let _ = full_tx.send(Err(e));
                }
                Ok(())
            });
            let result = (|| -> Result<()> {
                for msg in &full_rx {
                    let (idx, offset, c, out, found) = msg?;
                    let chunk = &manifest.images[idx].chunks[c];
                    let data = &out[..usize::try_from(chunk.size).expect("bounded by check")];
                    // A chunk from the device was hashed where it was found.
                    if found == Found::No && hex::encode(Sha256::digest(data)) != chunk.sha256 {
                        return Err(Error::verification(
                            &name,
                            format!(
                                "image '{}' chunk {c} (payload offset {}): content does not match the signed hash",
                                manifest.images[idx].slot_group, chunk.offset
                            ),
                        ));
                    }
                    sink(idx, offset, data, found == Found::InPlace)?;
                    let _ = empty_tx.send(out);
                }
                Ok(())
            })();
            drop(full_rx);
            drop(empty_tx);
            let worker_result = worker.join().map_err(|_| Error::Other("the bundle reader thread panicked".into()))?;
            result.and(worker_result)
        })?;
        Ok(stats)
    }
}

/// Whether a chunk is on the device already (see [`VerifiedBundle::stream_reusing`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// Not here: read it from the bundle.
    No,
    /// Its bytes were read from where they go (an earlier, interrupted install wrote them):
    /// nothing to write.
    InPlace,
    /// Its bytes were read from elsewhere on the device (e.g. the running slot): write them.
    Copied,
}

/// Fills the buffer with chunk bytes from the device, if it may have them:
/// `(image index, offset in the image, chunk, buffer of the chunk's size)`.
pub type LocalChunks<'a> = dyn FnMut(usize, u64, &Chunk, &mut [u8]) -> Result<Found> + Send + 'a;

/// Receives verified chunks: `(image index, offset in the image, bytes, already in place)`.
pub type ChunkSink<'a> = dyn FnMut(usize, u64, &[u8], bool) -> Result<()> + 'a;

/// What [`VerifiedBundle::stream_reusing`] took from where (bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Chunk bytes (uncompressed) already in place.
    pub in_place: u64,
    /// Chunk bytes (uncompressed) copied from elsewhere on the device.
    pub copied: u64,
    /// Compressed bytes read from the bundle.
    pub fetched: u64,
}

impl<R: Read + Seek + Send> VerifiedBundle<R> {
    /// Like [`VerifiedBundle::stream`], but for each chunk `local` may first fill its bytes
    /// from the device (from where they go, after an interrupted install, or from elsewhere):
    /// they are used only when they match the chunk's signed hash, else the chunk is read from
    /// the bundle, seeking past the chunks that were not needed. `sink` gets
    /// `(image, offset, bytes, in place)`: a chunk in place needs no write.
    ///
    /// # Errors
    /// As [`VerifiedBundle::stream`], and `local`'s errors.
    pub fn stream_reusing(
        &mut self,
        local: &mut LocalChunks<'_>,
        mut sink: impl FnMut(usize, u64, &[u8], bool) -> Result<()>,
    ) -> Result<StreamStats> {
        let seek: fn(&mut R, u64) -> std::io::Result<()> = |r, at| r.seek(SeekFrom::Start(at)).map(|_| ());
        self.pump(Some(local), Some(seek), &mut sink)
    }
}

fn expect_end(reader: &mut impl Read, name: &str) -> Result<()> {
    let mut extra = [0u8; 1];
    match reader.read(&mut extra) {
        Ok(0) => Ok(()),
        Ok(_) => Err(Error::verification(name, "trailing bytes after the payload".to_owned())),
        Err(e) => Err(reader_error("read bundle", name, e)),
    }
}

impl<R: Read + Seek> VerifiedBundle<R> {
    /// The verified payload of component `index` (in manifest order) as a reader: each chunk is
    /// read at its offset, its compressed bytes hashed, decompressed with the output bounded by
    /// the declared size, and hashed again before a byte of it is returned; at the end the whole
    /// component's SHA-256 is compared too. A handler reading it sees only verified bytes, and an
    /// error (never a short read) where anything does not match.
    ///
    /// # Errors
    /// [`Error::Other`] for an index out of range.
    pub fn component_reader(&mut self, index: usize) -> Result<ComponentReader<'_, R>> {
        let component = self
            .inner
            .manifest
            .components
            .get(index)
            .ok_or_else(|| Error::Other(format!("the bundle has no component {index}")))?;
        Ok(ComponentReader {
            reader: &mut self.inner.reader,
            name: &self.inner.name,
            payload_start: self.inner.payload_start,
            component,
            next: 0,
            buf: Vec::new(),
            pos: 0,
            whole: Sha256::new(),
            zbuf: Vec::new(),
            decompressor: None,
            done: false,
        })
    }
}

/// A verified component payload (see [`VerifiedBundle::component_reader`]).
pub struct ComponentReader<'a, R> {
    reader: &'a mut R,
    name: &'a str,
    payload_start: u64,
    component: &'a ComponentPayload,
    next: usize,
    buf: Vec<u8>,
    pos: usize,
    whole: Sha256,
    zbuf: Vec<u8>,
    decompressor: Option<zstd::bulk::Decompressor<'static>>,
    done: bool,
}

impl<R> std::fmt::Debug for ComponentReader<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentReader")
            .field("component", &self.component.component.name)
            .field("next", &self.next)
            .finish()
    }
}

impl<R: Read + Seek> ComponentReader<'_, R> {
    fn refill(&mut self) -> Result<bool> {
        if self.done {
            return Ok(false);
        }
        let label = || format!("component '{}'", self.component.component.name);
        let Some(chunk) = self.component.chunks.get(self.next) else {
            let digest = hex::encode(std::mem::take(&mut self.whole).finalize());
            if digest != self.component.component.sha256 {
                return Err(Error::verification(
                    self.name,
                    format!("{}: its SHA-256 does not match the manifest", label()),
                ));
            }
            self.done = true;
            return Ok(false);
        };
        let at = format!("{} chunk {} (payload offset {})", label(), self.next, chunk.offset);
        // Seek only when not already there: chunks follow each other, and a seek would drop a
        // buffered reader's buffer (and, over the network, start a new request).
        let want = self.payload_start + chunk.offset;
        if self.reader.stream_position().map_err(|e| reader_error("seek in bundle", self.name, e))? != want {
            self.reader.seek(SeekFrom::Start(want)).map_err(|e| reader_error("seek in bundle", self.name, e))?;
        }
        self.zbuf.resize(usize::try_from(chunk.zsize).expect("bounded by check"), 0);
        read_exact_or(self.reader, &mut self.zbuf, self.name, &at)?;
        self.buf.resize(usize::try_from(chunk.size).expect("bounded by check"), 0);
        if self.decompressor.is_none() {
            self.decompressor = Some(decompressor()?);
        }
        let d = self.decompressor.as_mut().expect("set above");
        unpack_chunk(d, chunk, &self.zbuf, &mut self.buf, self.name, &at)?;
        check_chunk(chunk, &self.buf, self.name, &at, Hash::Plain)?;
        self.whole.update(&self.buf);
        self.pos = 0;
        self.next += 1;
        Ok(true)
    }
}

impl<R: Read + Seek> Read for ComponentReader<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            match self.refill() {
                Ok(true) => {}
                Ok(false) => return Ok(0),
                Err(e) => return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[derive(Clone, Copy)]
pub(crate) enum Hash {
    Compressed,
    Plain,
}

/// A zstd decompressor for chunks.
pub(crate) fn decompressor() -> Result<zstd::bulk::Decompressor<'static>> {
    zstd::bulk::Decompressor::new().map_err(|e| Error::Other(format!("zstd: {e}")))
}

/// Checks a chunk's compressed bytes `z` against its signed hash, then decompresses them into
/// `out` (exactly the chunk's size: no more is written, and fewer is an error). The caller
/// checks the plain hash of `out` (see [`check_chunk`]) before using it.
pub(crate) fn unpack_chunk(
    d: &mut zstd::bulk::Decompressor<'static>,
    chunk: &Chunk,
    z: &[u8],
    out: &mut [u8],
    name: &str,
    at: &str,
) -> Result<()> {
    check_chunk(chunk, z, name, at, Hash::Compressed)?;
    let size = out.len();
    let n = d
        .decompress_to_buffer(z, out)
        .map_err(|e| Error::verification(name, format!("{at}: does not decompress to {size} bytes: {e}")))?;
    if n != size {
        return Err(Error::verification(name, format!("{at}: decompressed to {n} bytes, {size} expected")));
    }
    Ok(())
}

pub(crate) fn check_chunk(chunk: &Chunk, bytes: &[u8], name: &str, at: &str, which: Hash) -> Result<()> {
    let (want, what) = match which {
        Hash::Compressed => (&chunk.zsha256, "compressed bytes do not"),
        Hash::Plain => (&chunk.sha256, "content does not"),
    };
    if hex::encode(Sha256::digest(bytes)) == *want {
        Ok(())
    } else {
        Err(Error::verification(name, format!("{at}: {what} match the signed hash")))
    }
}
