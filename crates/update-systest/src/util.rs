//! Small helpers: running tools, hashing byte ranges, a seeded random number generator.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::error::{Result, io};

/// Runs a command and returns its standard output (update-test's runner: a failure carries
/// the command and its standard error).
pub fn output(cmd: &mut Command) -> Result<String> {
    Ok(update_test::disk::sh(cmd)?)
}

/// Runs a command quietly, failing with its output when it fails.
pub fn quiet(cmd: &mut Command) -> Result {
    output(cmd).map(drop)
}

/// `sh -c SCRIPT`, quietly.
pub fn shell(script: &str) -> Result {
    quiet(Command::new("sh").arg("-c").arg(script))
}

/// Formats a path for messages and command lines.
pub fn p(path: &Path) -> String {
    path.display().to_string()
}

/// Hex SHA-256 of `len` bytes of a file from `offset`.
pub fn sha256_range(file: &Path, offset: u64, len: u64) -> Result<String> {
    let mut f = std::fs::File::open(file).map_err(io("open", file))?;
    f.seek(SeekFrom::Start(offset)).map_err(io("seek", file))?;
    let mut h = Sha256::new();
    let mut left = len;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let n = usize::try_from(left.min(1 << 20)).unwrap_or(1 << 20);
        f.read_exact(&mut buf[..n]).map_err(io("read", file))?;
        h.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(hex::encode(h.finalize()))
}

/// Hex SHA-256 of bytes.
pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// SplitMix64: a small seeded generator, so a failing run can be repeated with `--seed`.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform number of milliseconds in `0..=max_ms`.
    pub fn below(&mut self, max_ms: u64) -> u64 {
        self.next_u64() % (max_ms + 1)
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len + 8);
        while v.len() < len {
            v.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        v.truncate(len);
        v
    }
}

/// A seed from the clock.
pub fn clock_seed() -> u64 {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    d.as_secs() ^ u64::from(d.subsec_nanos()).rotate_left(32)
}
