//! `cargo xtask delta-measure OLD.img NEW.img [--json] [--full] [--max-requests N] [--whole BYTES]`:
//! how many bytes and HTTP requests a "delta by reuse" update from OLD to NEW costs at each
//! chunking granularity (issue 13; `bench/delta.sh` runs it on real Debian root filesystems).
//!
//! Model. The bundle carries a signed index of NEW (one entry per chunk, in NEW's order) and a
//! payload: every distinct non-zero chunk of NEW once, in order of first use, each compressed on
//! its own. The device hashes its active slot (OLD) with the same chunker, keeps chunks whose
//! digest appears anywhere in OLD, makes all-zero chunks itself, and fetches the rest by HTTP
//! Range; missing chunks that sit next to each other in the payload share one request.
//!
//! Index layouts (entry: 16-byte truncated SHA-256, 4-byte compressed length, and for
//! variable-size chunks a 3-byte length):
//! - `flat`: an entry for every chunk of NEW, zeros included;
//! - `compact`: entries for non-zero chunks, each run of zero chunks as one 8-byte marker;
//! - `two-level`: the compact entries cut into groups where an entry's digest ends a group
//!   (content-defined, so groups resynchronise after an insertion); the top level lists each
//!   group's digest, entry count and payload offset (28 bytes), and the device fetches only the groups its own
//!   stored index (of OLD) does not have.

use std::collections::HashSet;
use std::ops::Range;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::sys::Result;

/// A chunk's identity: SHA-256 truncated to 16 bytes.
pub type ChunkId = [u8; 16];

/// How an image is cut into chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granularity {
    /// Aligned blocks of this many bytes (ext4's allocation unit is 4096).
    Fixed(usize),
    /// FastCDC (2020) with this average size, minimum avg/4 and maximum avg*4.
    Cdc(usize),
}

impl Granularity {
    /// The granularities the measurement compares.
    pub const ALL: [Granularity; 6] = [
        Granularity::Fixed(4096),
        Granularity::Cdc(4096),
        Granularity::Cdc(8192),
        Granularity::Cdc(16384),
        Granularity::Cdc(32768),
        Granularity::Cdc(65536),
    ];

    fn name(self) -> String {
        match self {
            Granularity::Fixed(n) => format!("fixed {} KiB", n / 1024),
            Granularity::Cdc(n) => format!("FastCDC {} KiB", n / 1024),
        }
    }

    fn max_len(self) -> usize {
        match self {
            Granularity::Fixed(n) => n,
            Granularity::Cdc(n) => n * 4,
        }
    }

    /// Bytes of one index entry.
    fn entry_bytes(self) -> u64 {
        match self {
            Granularity::Fixed(_) => 16 + 4,
            Granularity::Cdc(_) => 16 + 4 + 3,
        }
    }

    /// Chunk boundaries of `data`, as (offset, length), covering it exactly.
    pub fn cut(self, data: &[u8]) -> Vec<(usize, usize)> {
        match self {
            Granularity::Fixed(n) => (0..data.len()).step_by(n).map(|o| (o, n.min(data.len() - o))).collect(),
            Granularity::Cdc(avg) => {
                fastcdc::v2020::FastCDC::new(data, avg / 4, avg, avg * 4).map(|c| (c.offset, c.length)).collect()
            }
        }
    }
}

/// One chunk of an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    /// Byte offset in the image.
    pub offset: usize,
    /// Length in bytes.
    pub len: usize,
    /// Digest; `None` for an all-zero chunk (the device makes those itself).
    pub id: Option<ChunkId>,
}

/// The digest of a chunk.
pub fn chunk_id(bytes: &[u8]) -> ChunkId {
    let full = Sha256::digest(bytes);
    let mut id = [0u8; 16];
    id.copy_from_slice(&full[..16]);
    id
}

/// Cuts and hashes an image.
pub fn pieces(data: &[u8], g: Granularity) -> Vec<Piece> {
    let zeros = vec![0u8; g.max_len()];
    g.cut(data)
        .into_iter()
        .map(|(offset, len)| {
            let bytes = &data[offset..offset + len];
            let id = (bytes != &zeros[..len]).then(|| chunk_id(bytes));
            Piece { offset, len, id }
        })
        .collect()
}

/// What the device fetches: the payload (indices into NEW's pieces of each distinct non-zero
/// chunk, in order of first use) and the payload positions OLD does not provide.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    /// For each payload position, the index of the piece of NEW it holds.
    pub payload: Vec<usize>,
    /// Payload positions to download, ascending.
    pub missing: Vec<usize>,
}

/// Matches NEW's chunks against every chunk of OLD, wherever it is.
pub fn plan(new: &[Piece], old: &HashSet<ChunkId>) -> Plan {
    let mut seen = HashSet::new();
    let mut payload = Vec::new();
    let mut missing = Vec::new();
    for (i, p) in new.iter().enumerate() {
        let Some(id) = p.id else { continue };
        if !seen.insert(id) {
            continue;
        }
        if !old.contains(&id) {
            missing.push(payload.len());
        }
        payload.push(i);
    }
    Plan { payload, missing }
}

/// Runs of consecutive positions (ascending input) as half-open ranges.
pub fn merge_runs(positions: &[usize]) -> Vec<Range<usize>> {
    let mut runs: Vec<Range<usize>> = Vec::new();
    for &p in positions {
        match runs.last_mut() {
            Some(r) if r.end == p => r.end = p + 1,
            _ => runs.push(p..p + 1),
        }
    }
    runs
}

/// Byte ranges in the payload of runs of payload positions, given each position's stored size.
pub fn byte_ranges(runs: &[Range<usize>], sizes: &[u64]) -> Vec<Range<u64>> {
    let mut start = Vec::with_capacity(sizes.len() + 1);
    let mut at = 0u64;
    start.push(0);
    for s in sizes {
        at += s;
        start.push(at);
    }
    runs.iter().map(|r| start[r.start]..start[r.end]).collect()
}

/// Merges the smallest gaps between sorted, disjoint byte ranges until at most `max` remain;
/// returns the ranges and the extra bytes (the gaps) that the merging downloads.
pub fn cap_requests(ranges: &[Range<u64>], max: usize) -> (Vec<Range<u64>>, u64) {
    let max = max.max(1);
    if ranges.len() <= max {
        return (ranges.to_vec(), 0);
    }
    // Gap i lies between ranges[i] and ranges[i + 1]; close the smallest ones.
    let mut gaps: Vec<(u64, usize)> = ranges.windows(2).enumerate().map(|(i, w)| (w[1].start - w[0].end, i)).collect();
    gaps.sort_unstable();
    let close = ranges.len() - max;
    let mut closed = vec![false; ranges.len()];
    let mut extra = 0;
    for &(gap, i) in &gaps[..close] {
        closed[i] = true;
        extra += gap;
    }
    let mut out: Vec<Range<u64>> = Vec::with_capacity(max);
    let mut open = false;
    for (i, r) in ranges.iter().enumerate() {
        if open {
            if let Some(last) = out.last_mut() {
                last.end = r.end;
            }
        } else {
            out.push(r.clone());
        }
        open = closed[i];
    }
    (out, extra)
}

/// Groups consecutive payload positions into zstd frames of at most `max` raw bytes (a chunk
/// larger than `max` is a frame of its own).
pub fn frames(lens: &[usize], max: usize) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    let mut bytes = 0;
    for (i, &len) in lens.iter().enumerate() {
        match out.last_mut() {
            Some(f) if bytes + len <= max => {
                f.end = i + 1;
                bytes += len;
            }
            _ => {
                out.push(i..i + 1);
                bytes = len;
            }
        }
    }
    out
}

/// The frames (indices into `frames`) that hold at least one of the ascending `positions`.
pub fn touched_frames(frames: &[Range<usize>], positions: &[usize]) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    let mut f = 0;
    for &p in positions {
        while f < frames.len() && frames[f].end <= p {
            f += 1;
        }
        if f < frames.len() && frames[f].contains(&p) && out.last() != Some(&f) {
            out.push(f);
        }
    }
    out
}

/// Index sizes in bytes for the three layouts.
#[derive(Debug, PartialEq, Eq, serde::Serialize)]
pub struct IndexSizes {
    /// An entry per chunk, zeros included.
    pub flat: u64,
    /// Non-zero entries, zero runs as 8-byte markers.
    pub compact: u64,
    /// Top level plus the groups the device's stored index of OLD lacks.
    pub two_level: u64,
    /// Groups of the two-level index.
    pub groups: usize,
    /// Groups the device fetches.
    pub groups_fetched: usize,
}

/// Bytes of a top-level entry of the two-level index: group digest (16), entry count (4) and the
/// group's payload offset (8), so the device can place missing chunks without the other groups.
pub const TOP_ENTRY_BYTES: u64 = 16 + 4 + 8;

/// Average entries per group of the two-level index.
pub const GROUP_FAN: u16 = 64;

/// Groups of a compact entry sequence: a group ends after an entry whose digest is 0 modulo
/// `fan`; each group is identified by the digest of its entries.
fn groups(new: &[Piece], fan: u16) -> Vec<(ChunkId, u64)> {
    let mut out = Vec::new();
    let mut h = Sha256::new();
    let mut n = 0u64;
    for id in new.iter().filter_map(|p| p.id) {
        h.update(id);
        n += 1;
        if u16::from_le_bytes([id[0], id[1]]) % fan == 0 {
            let full = h.finalize_reset();
            let mut gid = [0u8; 16];
            gid.copy_from_slice(&full[..16]);
            out.push((gid, n));
            n = 0;
        }
    }
    if n > 0 {
        let full = h.finalize();
        let mut gid = [0u8; 16];
        gid.copy_from_slice(&full[..16]);
        out.push((gid, n));
    }
    out
}

/// The index sizes of NEW, with OLD's pieces for the two-level layout.
pub fn index_sizes(new: &[Piece], old: &[Piece], g: Granularity) -> IndexSizes {
    let entry = g.entry_bytes();
    let nonzero = new.iter().filter(|p| p.id.is_some()).count() as u64;
    let zero_runs = new.windows(2).filter(|w| w[0].id.is_some() && w[1].id.is_none()).count() as u64
        + u64::from(new.first().is_some_and(|p| p.id.is_none()));
    let compact = nonzero * entry + zero_runs * 8;
    let old_groups: HashSet<ChunkId> = groups(old, GROUP_FAN).into_iter().map(|(id, _)| id).collect();
    let new_groups = groups(new, GROUP_FAN);
    let fetched_groups: Vec<u64> =
        new_groups.iter().filter(|(id, _)| !old_groups.contains(id)).map(|(_, n)| n * entry).collect();
    let fetched: u64 = fetched_groups.iter().sum();
    let two_level = new_groups.len() as u64 * TOP_ENTRY_BYTES + zero_runs * 8 + fetched;
    IndexSizes {
        flat: new.len() as u64 * entry,
        compact,
        two_level,
        groups: new_groups.len(),
        groups_fetched: fetched_groups.len(),
    }
}

/// Compressed sizes of byte slices at a zstd level, on all cores.
fn compressed_sizes(slices: &[&[u8]], level: i32) -> Result<Vec<u64>> {
    compressed_sizes_dict(slices, level, &[])
}

/// Compressed sizes with a shared dictionary (none when `dict` is empty).
fn compressed_sizes_dict(slices: &[&[u8]], level: i32, dict: &[u8]) -> Result<Vec<u64>> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let per = slices.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = slices
            .chunks(per)
            .map(|part| {
                s.spawn(move || -> Result<Vec<u64>> {
                    let mut c = zstd::bulk::Compressor::with_dictionary(level, dict)
                        .map_err(|e| format!("zstd level {level}: {e}"))?;
                    part.iter()
                        .map(|b| c.compress(b).map(|v| v.len() as u64).map_err(|e| format!("zstd: {e}")))
                        .collect()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(slices.len());
        for h in handles {
            out.extend(h.join().map_err(|_| "a compression thread panicked".to_string())??);
        }
        Ok(out)
    })
}

/// Results for one granularity.
#[derive(Debug, serde::Serialize)]
pub struct Row {
    /// Granularity name.
    pub granularity: String,
    /// Chunks of NEW.
    pub chunks: usize,
    /// All-zero chunks of NEW.
    pub zero_chunks: usize,
    /// Distinct non-zero chunks of NEW (the payload).
    pub payload_chunks: usize,
    /// Index sizes.
    pub index: IndexSizes,
    /// Payload chunks OLD does not provide.
    pub missing_chunks: usize,
    /// Their raw bytes.
    pub missing_raw: u64,
    /// Their bytes, each compressed on its own at zstd 19.
    pub missing_z19: u64,
    /// Their bytes, each compressed on its own at zstd 3.
    pub missing_z3: u64,
    /// Their bytes with each run of consecutive missing chunks as one zstd 19 frame (a lower
    /// bound for frames that span chunks: the bundle cannot know the runs in advance).
    pub missing_z19_runs: u64,
    /// Bytes of the shared dictionary (trained on NEW's payload; shipped in the bundle).
    pub dict_bytes: u64,
    /// Missing chunks, each on its own at zstd 19 with the dictionary, plus the dictionary.
    pub missing_z19_dict: u64,
    /// Frames of up to `FRAME_BYTES` consecutive payload chunks at zstd 19: the bytes of every
    /// frame holding a missing chunk (the device fetches whole frames).
    pub frames_missing_z19: u64,
    /// Requests for those frames after merging adjacent ones.
    pub frames_requests: usize,
    /// HTTP range requests after merging adjacent missing chunks.
    pub requests: usize,
    /// Requests after merging the nearest gaps down to the cap.
    pub requests_capped: usize,
    /// Extra bytes (zstd 19 payload) the capping downloads.
    pub cap_extra: u64,
    /// Download with the compact index: index + missing_z19 + cap_extra.
    pub download_compact: u64,
    /// Download with the two-level index.
    pub download_two_level: u64,
    /// Full bundle payload (every payload chunk on its own) at zstd 19, with `--full`.
    pub full_z19: Option<u64>,
    /// The same at zstd 3, with `--full`.
    pub full_z3: Option<u64>,
    /// Full payload at zstd 19 with the shared dictionary (dictionary included), with `--full`.
    pub full_z19_dict: Option<u64>,
    /// Full payload as frames of up to `FRAME_BYTES` at zstd 19, with `--full`.
    pub full_z19_frames: Option<u64>,
}

/// Raw bytes per zstd frame in the frame-grouping variant.
pub const FRAME_BYTES: usize = 64 * 1024;

/// Dictionary size (zstd's default for `--train`).
const DICT_BYTES: usize = 112_640;

/// Trains a dictionary on up to 8 MiB of payload chunks taken evenly across the payload.
fn train_dictionary(chunks: &[&[u8]]) -> Result<Vec<u8>> {
    let total: usize = chunks.iter().map(|c| c.len()).sum();
    let step = (total / (8 << 20)).max(1);
    let samples: Vec<&[u8]> = chunks.iter().step_by(step).map(|c| &c[..c.len().min(16 * 1024)]).collect();
    zstd::dict::from_samples(&samples, DICT_BYTES).map_err(|e| format!("zstd dictionary training: {e}"))
}

/// Measures one granularity.
pub fn measure(old_img: &[u8], new_img: &[u8], g: Granularity, max_requests: usize, full: bool) -> Result<Row> {
    let old = pieces(old_img, g);
    let new = pieces(new_img, g);
    let old_ids: HashSet<ChunkId> = old.iter().filter_map(|p| p.id).collect();
    let plan = plan(&new, &old_ids);
    let bytes_of = |payload_pos: usize| {
        let p = &new[plan.payload[payload_pos]];
        &new_img[p.offset..p.offset + p.len]
    };
    let payload: Vec<&[u8]> = (0..plan.payload.len()).map(bytes_of).collect();
    let missing: Vec<&[u8]> = plan.missing.iter().map(|&i| payload[i]).collect();
    let z19 = compressed_sizes(&missing, 19)?;
    let z3 = compressed_sizes(&missing, 3)?;
    let runs = merge_runs(&plan.missing);
    let run_bytes: Vec<Vec<u8>> = runs.iter().map(|r| r.clone().flat_map(bytes_of).copied().collect()).collect();
    let run_slices: Vec<&[u8]> = run_bytes.iter().map(Vec::as_slice).collect();
    let z19_runs = compressed_sizes(&run_slices, 19)?;
    // Payload offsets need every chunk's stored size; without --full, present chunks are
    // estimated at the average ratio of the missing ones (they only matter for capping gaps).
    let (sizes, full_z19, full_z3) = if full {
        let s19 = compressed_sizes(&payload, 19)?;
        let s3: u64 = compressed_sizes(&payload, 3)?.iter().sum();
        let total = s19.iter().sum();
        (s19, Some(total), Some(s3))
    } else {
        let raw: u64 = missing.iter().map(|b| b.len() as u64).sum();
        let comp: u64 = z19.iter().sum();
        let mut sizes: Vec<u64> = payload.iter().map(|b| (b.len() as u64 * comp).div_ceil(raw.max(1))).collect();
        for (&pos, &s) in plan.missing.iter().zip(&z19) {
            sizes[pos] = s;
        }
        (sizes, None, None)
    };
    // A payload too small or too uniform to train on gets no dictionary (its size counts as 0).
    let dict = train_dictionary(&payload).unwrap_or_default();
    let missing_z19_dict = compressed_sizes_dict(&missing, 19, &dict)?.iter().sum::<u64>() + dict.len() as u64;
    let frame_list = frames(&payload.iter().map(|b| b.len()).collect::<Vec<_>>(), FRAME_BYTES);
    let frame_bytes: Vec<Vec<u8>> =
        frame_list.iter().map(|f| payload[f.clone()].iter().flat_map(|b| b.iter()).copied().collect()).collect();
    let touched = touched_frames(&frame_list, &plan.missing);
    let touched_slices: Vec<&[u8]> = touched.iter().map(|&f| frame_bytes[f].as_slice()).collect();
    let frames_missing_z19 = compressed_sizes(&touched_slices, 19)?.iter().sum();
    let (full_z19_dict, full_z19_frames) = if full {
        let all_frames: Vec<&[u8]> = frame_bytes.iter().map(Vec::as_slice).collect();
        (
            Some(compressed_sizes_dict(&payload, 19, &dict)?.iter().sum::<u64>() + dict.len() as u64),
            Some(compressed_sizes(&all_frames, 19)?.iter().sum()),
        )
    } else {
        (None, None)
    };
    let ranges = byte_ranges(&runs, &sizes);
    let (capped, cap_extra) = cap_requests(&ranges, max_requests);
    let index = index_sizes(&new, &old, g);
    let missing_z19: u64 = z19.iter().sum();
    Ok(Row {
        granularity: g.name(),
        chunks: new.len(),
        zero_chunks: new.iter().filter(|p| p.id.is_none()).count(),
        payload_chunks: plan.payload.len(),
        missing_chunks: plan.missing.len(),
        missing_raw: missing.iter().map(|b| b.len() as u64).sum(),
        missing_z19,
        missing_z3: z3.iter().sum(),
        missing_z19_runs: z19_runs.iter().sum(),
        dict_bytes: dict.len() as u64,
        missing_z19_dict,
        frames_missing_z19,
        frames_requests: merge_runs(&touched).len(),
        requests: ranges.len(),
        requests_capped: capped.len(),
        cap_extra,
        download_compact: index.compact + missing_z19 + cap_extra,
        download_two_level: index.two_level + missing_z19 + cap_extra,
        index,
        full_z19,
        full_z3,
        full_z19_dict,
        full_z19_frames,
    })
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn pct(n: u64, whole: Option<u64>) -> String {
    whole.map_or_else(String::new, |w| format!(" ({:.2}%)", n as f64 * 100.0 / w as f64))
}

/// The task's entry point.
pub fn main(args: &[String]) -> Result {
    let mut paths = Vec::new();
    let (mut json, mut full, mut max_requests, mut whole) = (false, false, 200usize, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => json = true,
            "--full" => full = true,
            "--max-requests" | "--whole" => {
                let v = it.next().ok_or_else(|| format!("{a} needs a number"))?;
                let n: u64 = v.parse().map_err(|_| format!("{a}: not a number: {v}"))?;
                if a == "--whole" {
                    whole = Some(n);
                } else {
                    max_requests = usize::try_from(n).map_err(|_| format!("{a}: too large: {v}"))?;
                }
            }
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            p => paths.push(p.to_string()),
        }
    }
    let [old, new] = paths.as_slice() else {
        return Err(
            "usage: cargo xtask delta-measure OLD.img NEW.img [--json] [--full] [--max-requests N] [--whole BYTES]"
                .into(),
        );
    };
    let old_img = read(Path::new(old))?;
    let new_img = read(Path::new(new))?;
    let mut rows = Vec::new();
    for g in Granularity::ALL {
        let t = std::time::Instant::now();
        let row = measure(&old_img, &new_img, g, max_requests, full)?;
        eprintln!("delta-measure: {} in {:.1} s", row.granularity, t.elapsed().as_secs_f64());
        rows.push(row);
    }
    if json {
        let doc =
            serde_json::json!({ "old": old, "new": new, "max_requests": max_requests, "whole": whole, "rows": rows });
        println!("{}", serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?);
        return Ok(());
    }
    println!("{old} -> {new}");
    for r in &rows {
        println!(
            "{:>14}: {} chunks ({} zero), missing {} ({} raw); index flat {} compact {} two-level {}; \
             missing z19 {} z3 {} z19-runs {} z19-dict {} 64K-frames {} in {} requests; requests {} capped {} (+{}); download compact {}{} two-level {}{}{}",
            r.granularity,
            r.chunks,
            r.zero_chunks,
            r.missing_chunks,
            r.missing_raw,
            r.index.flat,
            r.index.compact,
            r.index.two_level,
            r.missing_z19,
            r.missing_z3,
            r.missing_z19_runs,
            r.missing_z19_dict,
            r.frames_missing_z19,
            r.frames_requests,
            r.requests,
            r.requests_capped,
            r.cap_extra,
            r.download_compact,
            pct(r.download_compact, whole),
            r.download_two_level,
            pct(r.download_two_level, whole),
            r.full_z19.map_or_else(String::new, |f| format!(
                "; full z19 {f}{} dict {} 64K-frames {}",
                pct(f, whole),
                r.full_z19_dict.unwrap_or(0),
                r.full_z19_frames.unwrap_or(0)
            )),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random bytes (xorshift), so chunks differ from each other.
    fn noise(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()[0]
            })
            .collect()
    }

    fn ids(img: &[u8], g: Granularity) -> HashSet<ChunkId> {
        pieces(img, g).into_iter().filter_map(|p| p.id).collect()
    }

    #[test]
    fn fixed_blocks_cover_the_image_and_zero_blocks_have_no_id() {
        let mut img = noise(1, 4096 * 3 + 100);
        img[4096..8192].fill(0);
        let p = pieces(&img, Granularity::Fixed(4096));
        assert_eq!(
            p.iter().map(|p| (p.offset, p.len)).collect::<Vec<_>>(),
            [(0, 4096), (4096, 4096), (8192, 4096), (12288, 100)]
        );
        assert!(p[1].id.is_none());
        assert!(p[0].id.is_some() && p[2].id.is_some() && p[3].id.is_some());
    }

    #[test]
    fn a_block_moved_anywhere_is_reused_and_only_new_content_is_missing() {
        let a = noise(1, 4096);
        let b = noise(2, 4096);
        let c = noise(3, 4096);
        let old = [a.clone(), b.clone(), vec![0; 4096]].concat();
        // NEW: b moved to the front, a new block c, a twice, a zero block.
        let new = [b, c, a.clone(), a, vec![0; 4096]].concat();
        let g = Granularity::Fixed(4096);
        let plan = plan(&pieces(&new, g), &ids(&old, g));
        // Payload: b, c, a (the second a and the zero block are not stored again).
        assert_eq!(plan.payload, [0, 1, 2]);
        assert_eq!(plan.missing, [1]);
    }

    #[test]
    fn cdc_finds_shifted_content_that_fixed_blocks_miss() {
        let old = noise(7, 256 * 1024);
        let new = [noise(8, 1000), old.clone()].concat();
        let fixed = Granularity::Fixed(4096);
        let cdc = Granularity::Cdc(4096);
        let missing = |g: Granularity| {
            let p = pieces(&new, g);
            let plan = plan(&p, &ids(&old, g));
            plan.missing.iter().map(|&i| p[plan.payload[i]].len).sum::<usize>()
        };
        assert!(missing(fixed) >= 250 * 1024, "a 1000-byte shift breaks every aligned block");
        assert!(missing(cdc) < 40 * 1024, "CDC resynchronises after the insertion: {}", missing(cdc));
    }

    #[test]
    fn runs_merge_consecutive_positions_only() {
        assert_eq!(merge_runs(&[]), Vec::<Range<usize>>::new());
        assert_eq!(merge_runs(&[0, 1, 2, 5, 7, 8]), [0..3, 5..6, 7..9]);
    }

    #[test]
    fn frames_group_up_to_the_limit_and_touched_frames_are_found() {
        let f = frames(&[4, 4, 4, 10, 4, 4], 8);
        assert_eq!(f, [0..2, 2..3, 3..4, 4..6]);
        assert_eq!(touched_frames(&f, &[1, 4, 5]), [0, 3]);
        assert_eq!(touched_frames(&f, &[2, 3]), [1, 2]);
        assert_eq!(touched_frames(&f, &[]), Vec::<usize>::new());
    }

    #[test]
    fn byte_ranges_follow_stored_sizes() {
        let sizes = [10, 20, 30, 40, 50];
        assert_eq!(byte_ranges(&[0..2, 3..5], &sizes), [0..30, 60..150]);
    }

    #[test]
    fn capping_closes_the_smallest_gaps_and_counts_them() {
        let r = [0..10, 15..20, 100..110, 112..120, 500..510];
        // Gaps: 5, 80, 2, 380. Three requests: close 2 and 5.
        let (capped, extra) = cap_requests(&r, 3);
        assert_eq!(capped, [0..20, 100..120, 500..510]);
        assert_eq!(extra, 7);
        assert_eq!(cap_requests(&r, 5), (r.to_vec(), 0));
        let (one, extra) = cap_requests(&r, 1);
        assert_eq!(one.len(), 1);
        assert_eq!((one[0].clone(), extra), (0..510, 5 + 80 + 2 + 380));
    }

    #[test]
    fn compact_index_skips_zero_runs_and_two_level_fetches_only_changed_groups() {
        let g = Granularity::Fixed(4096);
        let body = noise(5, 4096 * 2000);
        let img = [body.clone(), vec![0; 4096 * 1000]].concat();
        let p = pieces(&img, g);
        let same = index_sizes(&p, &p, g);
        assert_eq!(same.flat, 3000 * 20);
        assert_eq!(same.compact, 2000 * 20 + 8);
        // Nothing changed: only the top level (groups of about GROUP_FAN entries) is fetched.
        assert!(same.two_level < same.compact / 10, "{same:?}");
        let mut changed = img.clone();
        changed[4096 * 1000] ^= 1;
        let one = index_sizes(&pieces(&changed, g), &p, g);
        assert!(one.two_level > same.two_level && one.two_level < same.compact / 5, "{one:?}");
    }
}
