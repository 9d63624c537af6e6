//! The delta index (format 3): a signed list of the images' 4 KiB blocks and a store of those
//! blocks, compressed one by one, after the payload (docs/reference/bundle.md, docs/delta.md).
//!
//! A device that streams a bundle looks up every block of the new images by hash in what it
//! already has (its running slot, and what an interrupted attempt wrote to the target) and
//! fetches only the blocks it lacks, by HTTP Range, from the same file a full install reads.
//! The index is the lookup table; it does not replace the manifest's checks: a device assembles
//! each manifest chunk from blocks and writes it only after the chunk's signed SHA-256 matched.
//!
//! ```text
//! index = "LUDELTA1" | block size (u32 LE) | image count (u32 LE)
//!         | per image: entry count (u64 LE), entries (14 bytes each)
//! entry = hash (12 bytes) | word (u16 LE)
//!   word = 0: a run of all-zero blocks; the hash's first 8 bytes are the run length (u64 LE),
//!             its last 4 are zero
//!   word ≠ 0: one block; bits 0..15 are its compressed size in the store, bit 15 says it is
//!             new since the release the builder compared against ("front")
//! store = the distinct non-zero blocks, each a zstd frame: first the front blocks, then the
//!         others, each group in the order of first occurrence (images in manifest order)
//! ```
//!
//! The hash is the first 12 bytes of the block's SHA-256 (a second preimage costs 2^96 work).
//! A block's offset in the store is not written: it follows from the order.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use update_core::{Error, Result};

/// The first eight bytes of an index.
pub const INDEX_MAGIC: [u8; 8] = *b"LUDELTA1";
/// Bytes of a block hash in the index.
pub const HASH_LEN: usize = 12;
/// Bytes of one index entry.
pub const ENTRY_LEN: usize = HASH_LEN + 2;
/// Largest index accepted (bytes): about 4.5 million blocks (18 GiB of non-zero image).
pub const MAX_INDEX: u64 = 64 << 20;
/// The block size this code writes.
pub const BLOCK_SIZE: u64 = BLOCK_LEN as u64;
const BLOCK_LEN: usize = 4096;
const FRONT: u16 = 0x8000;
/// A block of all zeros in [`BlockIndex::images`].
pub const ZERO: u32 = u32::MAX;

/// A block's hash as the index lists it.
pub type BlockHash = [u8; HASH_LEN];

/// The index hash of a block.
#[must_use]
pub fn block_hash(data: &[u8]) -> BlockHash {
    Sha256::digest(data)[..HASH_LEN].try_into().expect("12 of 32 bytes")
}

/// Where the delta section is and what it holds (the manifest's `delta`, signed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaInfo {
    /// Block size of the index (a power of two, 512 to 1 MiB).
    pub block_size: u64,
    /// Index length; the index starts right after the payload.
    pub index_size: u64,
    /// Hex SHA-256 of the index.
    pub index_sha256: String,
    /// Store length; the store starts right after the index and ends the file.
    pub store_size: u64,
    /// Hex SHA-256 of the store.
    pub store_sha256: String,
}

/// One distinct block in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredBlock {
    /// Its index hash.
    pub hash: BlockHash,
    /// Offset in the store.
    pub offset: u64,
    /// Compressed length.
    pub zsize: u32,
    /// Uncompressed length (the block size, or less for an image's last block).
    pub len: u32,
    /// New since the release the builder compared against.
    pub front: bool,
}

/// A parsed, checked index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockIndex {
    /// Block size.
    pub block_size: u64,
    /// Per image (manifest order), one entry per block: an index into [`BlockIndex::store`],
    /// or [`ZERO`].
    pub images: Vec<Vec<u32>>,
    /// The distinct blocks, in store order.
    pub store: Vec<StoredBlock>,
}

impl BlockIndex {
    /// Parses and checks an index against the manifest's image sizes and `info`.
    ///
    /// # Errors
    /// [`Error::Verification`] for anything malformed: wrong magic or block size, entries not
    /// covering an image exactly, one hash given with two sizes, a store of another length.
    pub fn decode(bytes: &[u8], image_sizes: &[u64], info: &DeltaInfo, name: &str) -> Result<Self> {
        let bad = |why: String| Error::verification(format!("{name}: delta index"), why);
        let mut r = bytes;
        let mut take = |n: usize| -> Result<&[u8]> {
            if r.len() < n {
                return Err(bad("truncated".into()));
            }
            let (head, rest) = r.split_at(n);
            r = rest;
            Ok(head)
        };
        if take(8)? != INDEX_MAGIC {
            return Err(bad("bad magic".into()));
        }
        let block_size = u64::from(u32::from_le_bytes(take(4)?.try_into().expect("4")));
        if block_size != info.block_size {
            return Err(bad(format!("block size {block_size} is not the manifest's {}", info.block_size)));
        }
        let count = u32::from_le_bytes(take(4)?.try_into().expect("4")) as usize;
        if count != image_sizes.len() {
            return Err(bad(format!("{count} images, the manifest has {}", image_sizes.len())));
        }
        let bound = block_size + block_size / 64 + 1024;
        let mut by_hash: HashMap<BlockHash, u32> = HashMap::new();
        // In order of first occurrence, before front blocks are moved ahead.
        let mut first: Vec<StoredBlock> = Vec::new();
        let mut images = Vec::with_capacity(count);
        for (i, &size) in image_sizes.iter().enumerate() {
            let blocks = size.div_ceil(block_size);
            let entries = u64::from_le_bytes(take(8)?.try_into().expect("8"));
            if entries > blocks {
                return Err(bad(format!("image {i}: {entries} entries for {blocks} blocks")));
            }
            let mut list: Vec<u32> = Vec::with_capacity(usize::try_from(blocks).map_err(|_| bad("too large".into()))?);
            for _ in 0..entries {
                let e = take(ENTRY_LEN)?;
                let hash: BlockHash = e[..HASH_LEN].try_into().expect("12");
                let word = u16::from_le_bytes([e[HASH_LEN], e[HASH_LEN + 1]]);
                let at = list.len() as u64;
                if word == 0 {
                    let run = u64::from_le_bytes(hash[..8].try_into().expect("8"));
                    if run == 0 || hash[8..] != [0; 4] || run > blocks - at {
                        return Err(bad(format!("image {i} block {at}: a zero run of {run} blocks does not fit")));
                    }
                    list.extend(std::iter::repeat_n(ZERO, usize::try_from(run).expect("fits: bounded by blocks")));
                    continue;
                }
                if at >= blocks {
                    return Err(bad(format!("image {i}: more entries than its {blocks} blocks")));
                }
                let zsize = u32::from(word & !FRONT);
                let front = word & FRONT != 0;
                let len = u32::try_from((size - at * block_size).min(block_size)).expect("at most 1 MiB");
                if zsize == 0 || u64::from(zsize) > bound {
                    return Err(bad(format!("image {i} block {at}: compressed size {zsize} is implausible")));
                }
                let ordinal = match by_hash.get(&hash) {
                    Some(&o) => {
                        let s = &first[o as usize];
                        if s.zsize != zsize || s.front != front || s.len != len {
                            return Err(bad(format!("image {i} block {at}: one hash listed with two sizes")));
                        }
                        o
                    }
                    None => {
                        let o = u32::try_from(first.len()).map_err(|_| bad("too many blocks".into()))?;
                        first.push(StoredBlock { hash, offset: 0, zsize, len, front });
                        by_hash.insert(hash, o);
                        o
                    }
                };
                list.push(ordinal);
            }
            if list.len() as u64 != blocks {
                return Err(bad(format!("image {i}: entries cover {} of its {blocks} blocks", list.len())));
            }
            images.push(list);
        }
        if !r.is_empty() {
            return Err(bad(format!("{} bytes after the last entry", r.len())));
        }
        // Store order: front blocks first, then the others, each in order of first occurrence.
        // `first` has at most u32::MAX entries (checked as they were numbered).
        let mut order: Vec<u32> = (0..first.len()).map(|o| u32::try_from(o).expect("numbered as u32")).collect();
        order.sort_by_key(|&o| !first[o as usize].front);
        let mut new_of = vec![0u32; first.len()];
        let mut store = Vec::with_capacity(first.len());
        let mut offset = 0u64;
        for (n, &o) in order.iter().enumerate() {
            new_of[o as usize] = u32::try_from(n).expect("numbered as u32");
            let mut b = first[o as usize];
            b.offset = offset;
            offset += u64::from(b.zsize);
            store.push(b);
        }
        if offset != info.store_size {
            return Err(bad(format!("blocks add up to {offset} store bytes, the store is {}", info.store_size)));
        }
        for list in &mut images {
            for e in list.iter_mut().filter(|e| **e != ZERO) {
                *e = new_of[*e as usize];
            }
        }
        Ok(Self { block_size, images, store })
    }
}

/// Checks the manifest's `delta` against the images (called by `Manifest::check`).
pub(crate) fn check_info(info: &DeltaInfo) -> std::result::Result<(), String> {
    if !info.block_size.is_power_of_two() || !(512..=1 << 20).contains(&info.block_size) {
        return Err(format!("delta block size {} is not a power of two from 512 to 1 MiB", info.block_size));
    }
    if info.index_size < 16 || info.index_size > MAX_INDEX {
        return Err(format!("delta index size {} is outside 16..={MAX_INDEX}", info.index_size));
    }
    if !crate::format::is_hex_sha256(&info.index_sha256) || !crate::format::is_hex_sha256(&info.store_sha256) {
        return Err("delta: malformed sha256".into());
    }
    Ok(())
}

/// Builds the delta section of a bundle (build machines).
pub(crate) struct Builder {
    compressor: zstd::bulk::Compressor<'static>,
    /// Blocks of the release compared against (`--delta-base`): the others are "front".
    base: Option<std::collections::HashSet<BlockHash>>,
    seen: HashMap<BlockHash, u16>,
    index: Vec<u8>,
    /// Front blocks, compressed (what changed since the base: small).
    front: Vec<u8>,
    store_len: u64,
    images: u32,
}

impl Builder {
    pub(crate) fn new(level: i32, base: Option<std::collections::HashSet<BlockHash>>) -> Result<Self> {
        let mut index = INDEX_MAGIC.to_vec();
        index.extend_from_slice(&u32::try_from(BLOCK_LEN).expect("4096").to_le_bytes());
        index.extend_from_slice(&0u32.to_le_bytes());
        Ok(Self {
            compressor: zstd::bulk::Compressor::new(level).map_err(|e| Error::Other(format!("zstd: {e}")))?,
            base,
            seen: HashMap::new(),
            index,
            front: Vec::new(),
            store_len: 0,
            images: 0,
        })
    }

    /// Adds one image; the blocks that are not front go to `back` (in order).
    pub(crate) fn add_image(&mut self, path: &Path, back: &mut impl Write) -> Result<()> {
        let mut f = std::io::BufReader::with_capacity(
            1 << 20,
            std::fs::File::open(path).map_err(|e| Error::io("open image", path, e))?,
        );
        let count_at = self.index.len();
        self.index.extend_from_slice(&0u64.to_le_bytes());
        let mut entries = 0u64;
        let mut zeros = 0u64;
        let mut buf = vec![0u8; BLOCK_LEN];
        loop {
            let n = crate::write::read_full(&mut f, &mut buf).map_err(|e| Error::io("read image", path, e))?;
            if n == 0 {
                break;
            }
            let block = &buf[..n];
            if block.iter().all(|&b| b == 0) {
                zeros += 1;
            } else {
                if zeros > 0 {
                    self.push_zeros(zeros);
                    entries += 1;
                    zeros = 0;
                }
                let hash = block_hash(block);
                let word = match self.seen.get(&hash) {
                    Some(&w) => w,
                    None => {
                        let z = self.compressor.compress(block).map_err(|e| Error::Other(format!("zstd: {e}")))?;
                        let front = self.base.as_ref().is_some_and(|b| !b.contains(&hash));
                        let word = u16::try_from(z.len()).expect("a 4 KiB block compresses to less than 32 KiB")
                            | if front { FRONT } else { 0 };
                        if front {
                            self.front.extend_from_slice(&z);
                        } else {
                            back.write_all(&z).map_err(|e| Error::io("write", "scratch file", e))?;
                        }
                        self.store_len += z.len() as u64;
                        self.seen.insert(hash, word);
                        word
                    }
                };
                self.index.extend_from_slice(&hash);
                self.index.extend_from_slice(&word.to_le_bytes());
                entries += 1;
            }
            if n < buf.len() {
                break;
            }
        }
        if zeros > 0 {
            self.push_zeros(zeros);
            entries += 1;
        }
        self.index[count_at..count_at + 8].copy_from_slice(&entries.to_le_bytes());
        self.images += 1;
        Ok(())
    }

    fn push_zeros(&mut self, run: u64) {
        self.index.extend_from_slice(&run.to_le_bytes());
        self.index.extend_from_slice(&[0u8; 4]);
        self.index.extend_from_slice(&0u16.to_le_bytes());
    }

    /// The index and the front blocks; the back blocks were written to `back`.
    pub(crate) fn finish(mut self) -> (Vec<u8>, Vec<u8>, u64) {
        self.index[12..16].copy_from_slice(&self.images.to_le_bytes());
        (self.index, self.front, self.store_len)
    }
}

/// The index hashes of every non-zero block of a file (the release a new one is compared
/// against: its blocks are not "front").
///
/// # Errors
/// I/O errors naming the file.
pub fn base_blocks(path: &Path, into: &mut std::collections::HashSet<BlockHash>) -> Result<()> {
    let mut f =
        std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?);
    let mut buf = vec![0u8; BLOCK_LEN];
    loop {
        let n = crate::write::read_full(&mut f, &mut buf).map_err(|e| Error::io("read", path, e))?;
        if n == 0 {
            return Ok(());
        }
        if buf[..n].iter().any(|&b| b != 0) {
            into.insert(block_hash(&buf[..n]));
        }
        if n < buf.len() {
            return Ok(());
        }
    }
}

/// Decompresses a store block and checks it against its index hash.
///
/// # Errors
/// [`Error::Verification`] when it does not decompress to its length or its hash differs.
pub fn open_block(block: &StoredBlock, z: &[u8], out: &mut Vec<u8>, name: &str) -> Result<()> {
    let len = block.len as usize;
    out.clear();
    out.resize(len, 0);
    let n = zstd::bulk::Decompressor::new().and_then(|mut d| d.decompress_to_buffer(z, &mut out[..])).map_err(|e| {
        Error::verification(
            name,
            format!("delta block at store offset {}: does not match the signed index (zstd: {e})", block.offset),
        )
    })?;
    if n != len || block_hash(out) != block.hash {
        return Err(Error::verification(
            name,
            format!("delta block at store offset {}: content does not match the signed index", block.offset),
        ));
    }
    Ok(())
}

/// Checks a manifest chunk's compressed bytes, decompresses them into `out` and checks the
/// result: both signed hashes, as the stream does.
///
/// # Errors
/// [`Error::Verification`] naming the chunk by its payload offset.
pub fn open_chunk(chunk: &crate::Chunk, z: &[u8], out: &mut Vec<u8>, name: &str) -> Result<()> {
    use crate::read::{Hash, check_chunk, decompressor, unpack_chunk};
    let at = format!("chunk at payload offset {}", chunk.offset);
    let size = usize::try_from(chunk.size).map_err(|_| Error::verification(name, format!("{at}: too large")))?;
    out.clear();
    out.resize(size, 0);
    unpack_chunk(&mut decompressor()?, chunk, z, out, name, &at)?;
    check_chunk(chunk, out, name, &at, Hash::Plain)
}

/// Merges byte ranges (sorted by start, not overlapping) whose gaps are at most `gap` bytes,
/// then the closest ones until at most `cap` remain. Returns the merged ranges; the bytes in
/// merged gaps are fetched and thrown away.
#[must_use]
pub fn merge_ranges(ranges: &[std::ops::Range<u64>], gap: u64, cap: usize) -> Vec<std::ops::Range<u64>> {
    let mut out: Vec<std::ops::Range<u64>> = Vec::new();
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.start <= last.end + gap => last.end = last.end.max(r.end),
            _ => out.push(r.clone()),
        }
    }
    let cap = cap.max(1);
    if out.len() > cap {
        // Keep the cap - 1 widest gaps as cuts.
        let mut gaps: Vec<(u64, usize)> = out.windows(2).enumerate().map(|(i, w)| (w[1].start - w[0].end, i)).collect();
        gaps.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut cuts: Vec<usize> = gaps[..cap - 1].iter().map(|g| g.1).collect();
        cuts.sort_unstable();
        let mut merged = Vec::with_capacity(cap);
        let mut start = out[0].start;
        for &c in &cuts {
            merged.push(start..out[c].end);
            start = out[c + 1].start;
        }
        merged.push(start..out[out.len() - 1].end);
        out = merged;
    }
    out
}
