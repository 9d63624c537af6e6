//! Installing by delta (docs/delta.md): a streamed format 3 bundle carries a signed index of
//! its images' 4 KiB blocks. The device fetches the index, looks for every block in what it
//! already has, and fetches only the rest by HTTP Range from the same file:
//!
//! 1. [`DeltaInstall::prepare`] (nothing written): fetch the index and check it against the
//!    manifest's hash; hash the running slot's blocks and keep those the new images use; find
//!    blocks an interrupted attempt already wrote in place in the target. Chunks of the
//!    manifest that would cost more as blocks than whole are fetched whole. When all of it
//!    would not cost less than the full stream, there is no delta.
//! 2. [`DeltaInstall::fetch`] (after the target is marked unbootable): the missing blocks and
//!    chunks in a few merged ranges, each block checked against the signed index and each
//!    chunk against the manifest before it is written to its place in the target.
//! 3. [`DeltaInstall::assemble`], during the stream: each manifest chunk is put together from
//!    zeros, the running slot and the target, and the bundle reader writes it only when its
//!    signed SHA-256 matches (else it reads that chunk from the bundle).

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use update_bundle::delta::{BlockHash, BlockIndex, ZERO, block_hash, merge_ranges, open_block, open_chunk};
use update_bundle::{Chunk, Manifest};
use update_core::blockdev::{BlockDevice, FileDevice};
use update_core::driver::{Progress, ReadRanges};
use update_core::{Error, Result};

use crate::install::PlannedImage;

/// At most this many range requests for the pieces (after merging the closest).
pub const MAX_REQUESTS: usize = 64;
/// Gaps up to this size between two pieces are fetched rather than cut (a request costs more).
pub const MERGE_GAP: u64 = 4096;

/// What a delta install takes from where (bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeltaStats {
    /// The index.
    pub index: u64,
    /// Image bytes found in the running slot.
    pub reused: u64,
    /// Image bytes already in place in the target (an interrupted attempt wrote them).
    pub in_place: u64,
    /// Image bytes that are zero blocks.
    pub zero: u64,
    /// Bytes to fetch, merged gaps included.
    pub fetch: u64,
    /// Range requests for them (the index's not counted).
    pub requests: u64,
    /// What the full stream of the same chunks would have fetched.
    pub full: u64,
    /// Manifest chunks fetched whole (cheaper than their missing blocks).
    pub whole_chunks: u64,
}

#[derive(Debug, Clone, Copy)]
enum Piece {
    /// A store block (index ordinal).
    Block(u32),
    /// A manifest chunk: planned image, chunk number.
    Chunk(usize, usize),
}

/// A delta install being prepared, fetched and assembled (see the module docs).
pub struct DeltaInstall {
    name: String,
    index: BlockIndex,
    /// Manifest image index per planned image.
    image_of: Vec<usize>,
    /// Where a block is in the running slot: ordinal → (old device, offset).
    old_at: HashMap<u32, (usize, u64)>,
    old: Vec<FileDevice>,
    targets: Vec<FileDevice>,
    /// Ordinal → positions (planned image, offset) it is written to.
    need: HashMap<u32, Vec<(usize, u64)>>,
    /// Pieces to fetch, sorted by file offset: (file range, piece).
    pieces: Vec<(Range<u64>, Piece)>,
    /// The pieces' ranges merged into the requests to send.
    merged: Vec<Range<u64>>,
    chunks: Vec<Vec<Chunk>>,
    ranges: Arc<ReadRanges>,
    /// What it found and will fetch.
    pub stats: DeltaStats,
}

impl std::fmt::Debug for DeltaInstall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeltaInstall").field("name", &self.name).field("stats", &self.stats).finish_non_exhaustive()
    }
}

/// What [`DeltaInstall::prepare`] needs to know about the install.
#[derive(Debug)]
pub struct Setup<'a> {
    /// The bundle (for messages).
    pub name: &'a str,
    /// The verified manifest.
    pub manifest: &'a Manifest,
    /// Where the payload, the index and the store start in the file.
    pub payload_start: u64,
    /// The index's start and the store's start.
    pub delta_offsets: (u64, u64),
    /// The planned images (targets).
    pub images: &'a [PlannedImage],
    /// The running slot's device per planned image.
    pub old: &'a [std::path::PathBuf],
    /// Per planned image: bytes from its start already written and flushed (resume).
    pub durable: &'a [u64],
}

impl DeltaInstall {
    /// Step 1: fetch and check the index, find what the device has, plan the ranges.
    /// `Ok(None)`: no delta (it would not pay, or the bundle's chunks are not whole blocks).
    ///
    /// # Errors
    /// A source error fetching the index; [`Error::Verification`] for an index that does not
    /// match the manifest; read errors on the slots.
    pub fn prepare(setup: &Setup<'_>, ranges: Arc<ReadRanges>, progress: &dyn Progress) -> Result<Option<Self>> {
        let m = setup.manifest;
        let Some(info) = &m.delta else { return Ok(None) };
        if !m.chunk_size.is_multiple_of(info.block_size) {
            return Ok(None);
        }
        let bs = info.block_size;
        // The index, checked against the signed hash before it is parsed.
        let (index_start, store_start) = setup.delta_offsets;
        let len = usize::try_from(info.index_size).map_err(|_| Error::Other("index too large".into()))?;
        let mut bytes = Vec::with_capacity(len);
        let whole = index_start..index_start + info.index_size;
        ranges(std::slice::from_ref(&whole), &mut |_, b| {
            bytes.extend_from_slice(b);
            Ok(())
        })?;
        if bytes.len() != len || hex::encode(Sha256::digest(&bytes)) != info.index_sha256 {
            return Err(Error::verification(setup.name, "the delta index does not match the signed hash"));
        }
        let sizes: Vec<u64> = m.images.iter().map(|i| i.size).collect();
        let index = BlockIndex::decode(&bytes, &sizes, info, setup.name)?;
        drop(bytes);
        let mut stats = DeltaStats { index: info.index_size, ..DeltaStats::default() };
        let image_of: Vec<usize> = setup.images.iter().map(|i| i.index).collect();
        // 2. The running slot: every block the new images use, wherever it is.
        let mut wanted: HashMap<BlockHash, u32> = HashMap::new();
        for &idx in &image_of {
            for &e in index.images[idx].iter().filter(|e| **e != ZERO) {
                wanted.insert(index.store[e as usize].hash, e);
            }
        }
        let mut old = Vec::new();
        let mut old_at: HashMap<u32, (usize, u64)> = HashMap::new();
        let scan_total: u64 = setup.old.iter().filter_map(|p| FileDevice::open_read(p).ok()).map(|d| d.size()).sum();
        progress.start("looking for reusable blocks", scan_total);
        let mut buf = vec![0u8; 1 << 20];
        for (d, path) in setup.old.iter().enumerate() {
            let mut dev = FileDevice::open_read(path)?;
            let size = dev.size();
            let mut at = 0u64;
            while at < size {
                let n = usize::try_from((size - at).min(buf.len() as u64)).expect("at most 1 MiB");
                dev.read_at(at, &mut buf[..n])?;
                for (k, block) in buf[..n].chunks(usize::try_from(bs).expect("at most 1 MiB")).enumerate() {
                    if block.iter().all(|&b| b == 0) {
                        continue;
                    }
                    if let Some(&e) = wanted.get(&block_hash(block)) {
                        old_at.entry(e).or_insert((d, at + k as u64 * bs));
                    }
                }
                at += n as u64;
                progress.advance(n as u64);
            }
            old.push(dev);
        }
        progress.finish();
        drop(wanted);
        // 3. Per chunk: what is missing, and whether it is cheaper whole.
        let mut targets = Vec::new();
        let mut need: HashMap<u32, Vec<(usize, u64)>> = HashMap::new();
        let mut pieces = Vec::new();
        let mut chunks = Vec::new();
        let mut block = vec![0u8; usize::try_from(bs).expect("at most 1 MiB")];
        for (t, &idx) in image_of.iter().enumerate() {
            let mut target = FileDevice::open_read(&setup.images[t].device)?;
            let image = &m.images[idx];
            let entries = &index.images[idx];
            let mut offset = 0u64;
            for (c, chunk) in image.chunks.iter().enumerate() {
                let first = offset / bs;
                let end = offset + chunk.size;
                offset = end;
                if end <= setup.durable.get(t).copied().unwrap_or(0) {
                    continue;
                }
                stats.full += chunk.zsize;
                let mut missing: Vec<(u32, u64)> = Vec::new();
                let (mut reused, mut zero, mut in_place) = (0u64, 0u64, 0u64);
                for b in first..end.div_ceil(bs) {
                    let e = entries[usize::try_from(b).expect("fits")];
                    let at = b * bs;
                    if e == ZERO {
                        zero += (end - at).min(bs);
                        continue;
                    }
                    let s = &index.store[e as usize];
                    if old_at.contains_key(&e) {
                        reused += u64::from(s.len);
                        continue;
                    }
                    let buf = &mut block[..s.len as usize];
                    if at + u64::from(s.len) <= target.size() {
                        target.read_at(at, buf)?;
                        if block_hash(buf) == s.hash {
                            in_place += u64::from(s.len);
                            continue;
                        }
                    }
                    missing.push((e, at));
                }
                let mut distinct: Vec<u32> = missing.iter().map(|m| m.0).filter(|e| !need.contains_key(e)).collect();
                distinct.sort_unstable();
                distinct.dedup();
                let cost: u64 = distinct.iter().map(|&e| u64::from(index.store[e as usize].zsize)).sum();
                if cost >= chunk.zsize {
                    stats.whole_chunks += 1;
                    let start = setup.payload_start + chunk.offset;
                    pieces.push((start..start + chunk.zsize, Piece::Chunk(t, c)));
                    continue;
                }
                stats.reused += reused;
                stats.zero += zero;
                stats.in_place += in_place;
                for (e, at) in missing {
                    need.entry(e).or_default().push((t, at));
                }
            }
            targets.push(target);
            chunks.push(image.chunks.clone());
        }
        for &e in need.keys() {
            let s = &index.store[e as usize];
            let start = store_start + s.offset;
            pieces.push((start..start + u64::from(s.zsize), Piece::Block(e)));
        }
        pieces.sort_by_key(|p| p.0.start);
        let wanted: Vec<Range<u64>> = pieces.iter().map(|p| p.0.clone()).collect();
        let merged = merge_ranges(&wanted, MERGE_GAP, MAX_REQUESTS);
        stats.fetch = merged.iter().map(|r| r.end - r.start).sum();
        stats.requests = merged.len() as u64;
        if stats.fetch >= stats.full {
            return Ok(None);
        }
        Ok(Some(Self {
            name: setup.name.to_owned(),
            index,
            image_of,
            old_at,
            old,
            targets,
            need,
            pieces,
            merged,
            chunks,
            ranges,
            stats,
        }))
    }

    /// Step 2: fetch the missing pieces and write each, once checked, to its place in the
    /// targets; then flush them. The targets are also flushed every eighth of the fetch (at
    /// least 1 MiB written, as the stream's checkpoints): what a power cut in the middle finds
    /// durable, the next attempt finds in place and does not fetch again. Slots are written with
    /// `O_DIRECT` ([`crate::direct`]), which bypasses the page cache but not a disk's volatile
    /// write cache, and falls back to buffered writes where the kernel refuses it; the flushes
    /// make the progress durable on such devices too.
    ///
    /// # Errors
    /// Source errors; [`Error::Verification`] for a piece that does not match the signed index
    /// or manifest; write errors.
    pub fn fetch(&mut self, targets: &mut [Box<dyn BlockDevice>], progress: &dyn Progress) -> Result<()> {
        progress.start("fetching changed blocks", self.stats.fetch);
        let mut cur = 0usize;
        let mut buf: Vec<u8> = Vec::new();
        let mut out: Vec<u8> = Vec::new();
        let pieces = &self.pieces;
        let (index, need, chunks, name) = (&self.index, &self.need, &self.chunks, &self.name);
        let every = crate::install::checkpoint_bytes(self.stats.fetch);
        let mut since = 0u64;
        // Blocks that land next to each other in a target go down in one write.
        let mut pending = Pending::default();
        let mut sink = |at: u64, mut bytes: &[u8]| -> Result<()> {
            progress.advance(bytes.len() as u64);
            let mut at = at;
            while !bytes.is_empty() && cur < pieces.len() {
                let (range, piece) = &pieces[cur];
                let want = range.start + buf.len() as u64;
                if at < want {
                    // A merged gap, or bytes before the piece.
                    let skip = usize::try_from((want - at).min(bytes.len() as u64)).expect("fits");
                    bytes = &bytes[skip..];
                    at += skip as u64;
                    continue;
                }
                if at > want {
                    return Err(Error::Other(format!("{name}: delta ranges skipped byte {want}")));
                }
                let take = usize::try_from((range.end - want).min(bytes.len() as u64)).expect("fits");
                buf.extend_from_slice(&bytes[..take]);
                bytes = &bytes[take..];
                at += take as u64;
                if buf.len() as u64 == range.end - range.start {
                    match *piece {
                        Piece::Block(e) => {
                            open_block(&index.store[e as usize], &buf, &mut out, name)?;
                            for &(t, offset) in need.get(&e).map(Vec::as_slice).unwrap_or_default() {
                                pending.write(targets, t, offset, &out)?;
                                since += out.len() as u64;
                            }
                        }
                        Piece::Chunk(t, c) => {
                            open_chunk(&chunks[t][c], &buf, &mut out, name)?;
                            let offset: u64 = chunks[t][..c].iter().map(|k| k.size).sum();
                            pending.write(targets, t, offset, &out)?;
                            since += out.len() as u64;
                        }
                    }
                    buf.clear();
                    cur += 1;
                    if since >= every {
                        pending.drain(targets)?;
                        for t in targets.iter_mut() {
                            t.flush()?;
                        }
                        since = 0;
                    }
                }
            }
            Ok(())
        };
        let fetched = (self.ranges)(&self.merged, &mut sink);
        // What was checked is written even when the fetch stopped: the next attempt finds it.
        let drained = pending.drain(targets);
        fetched?;
        drained?;
        if cur != self.pieces.len() {
            return Err(Error::Other(format!(
                "{}: {} delta pieces were not fetched",
                self.name,
                self.pieces.len() - cur
            )));
        }
        for t in targets.iter_mut() {
            t.flush()?;
        }
        progress.finish();
        Ok(())
    }

    /// Step 3: puts chunk `chunk` of planned image `t` at `offset` together into `buf` from
    /// zeros, the running slot and the target. The caller checks it against the manifest.
    ///
    /// # Errors
    /// Read errors.
    pub fn assemble(&mut self, t: usize, offset: u64, chunk: &Chunk, buf: &mut [u8]) -> Result<()> {
        let bs = self.index.block_size;
        let entries = &self.index.images[self.image_of[t]];
        let mut at = 0usize;
        while (at as u64) < chunk.size {
            let pos = offset + at as u64;
            let len = usize::try_from((chunk.size - at as u64).min(bs)).expect("at most 1 MiB");
            let out = &mut buf[at..at + len];
            let e = entries[usize::try_from(pos / bs).expect("fits")];
            if e == ZERO {
                out.fill(0);
            } else if let Some(&(d, from)) = self.old_at.get(&e) {
                self.old[d].read_at(from, out)?;
            } else {
                self.targets[t].read_at(pos, out)?;
            }
            at += len;
        }
        Ok(())
    }
}

/// Checked bytes waiting to be written: consecutive writes to one target that continue each
/// other are gathered (up to [`Pending::MAX`]) and issued as one, so 4 KiB delta blocks that
/// are contiguous in the target cost one `O_DIRECT` write instead of one each.
#[derive(Default)]
struct Pending {
    target: usize,
    offset: u64,
    bytes: Vec<u8>,
}

impl Pending {
    const MAX: usize = 1 << 20;

    fn write(&mut self, targets: &mut [Box<dyn BlockDevice>], t: usize, offset: u64, data: &[u8]) -> Result<()> {
        let continues = !self.bytes.is_empty()
            && self.target == t
            && self.offset + self.bytes.len() as u64 == offset
            && self.bytes.len() + data.len() <= Self::MAX;
        if !continues {
            self.drain(targets)?;
            self.target = t;
            self.offset = offset;
        }
        self.bytes.extend_from_slice(data);
        Ok(())
    }

    fn drain(&mut self, targets: &mut [Box<dyn BlockDevice>]) -> Result<()> {
        if self.bytes.is_empty() {
            return Ok(());
        }
        let t =
            targets.get_mut(self.target).ok_or_else(|| Error::Other(format!("delta: no target {}", self.target)))?;
        let result = t.write_at(self.offset, &self.bytes);
        self.bytes.clear();
        result
    }
}
