//! Block devices behind a trait, so the install and boot-environment code can be driven by a
//! real file or device ([`FileDevice`]) or by the power-cut simulator (`sim::SimDisk`, with the
//! `sim` feature: tests only).

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Positional reads and writes with an explicit durability barrier.
///
/// Writes may be buffered (and lost at a power cut) until [`BlockDevice::flush`] returns.
pub trait BlockDevice {
    /// Size in bytes.
    fn size(&self) -> u64;
    /// Reads exactly `buf.len()` bytes at `offset`.
    ///
    /// # Errors
    /// I/O errors, or reading past the end.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()>;
    /// Writes all of `data` at `offset`.
    ///
    /// # Errors
    /// I/O errors, or writing past the end.
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()>;
    /// Makes every write so far durable (fsync).
    ///
    /// # Errors
    /// I/O errors.
    fn flush(&mut self) -> Result<()>;
    /// A name for messages (the path).
    fn describe(&self) -> String;
}

/// A regular file or a block device node, or a window (offset, size) inside one.
#[derive(Debug)]
pub struct FileDevice {
    file: File,
    path: PathBuf,
    base: u64,
    size: u64,
}

impl FileDevice {
    /// Opens a file or block device read-write; its size is its current length.
    ///
    /// # Errors
    /// [`Error::Io`] naming the path.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_window(path, 0, None, true)
    }

    /// Opens read-only.
    ///
    /// # Errors
    /// [`Error::Io`] naming the path.
    pub fn open_read(path: &Path) -> Result<Self> {
        Self::open_window(path, 0, None, false)
    }

    /// Opens `size` bytes at `base` inside a file or device (`None`: to the end).
    ///
    /// # Errors
    /// [`Error::Io`] naming the path, or a window past the end.
    pub fn open_window(path: &Path, base: u64, size: Option<u64>, write: bool) -> Result<Self> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(write)
            .open(path)
            .map_err(|e| Error::io(if write { "open for writing" } else { "open" }, path, e))?;
        let end = file.seek(SeekFrom::End(0)).map_err(|e| Error::io("find the size of", path, e))?;
        let size = size.unwrap_or(end.saturating_sub(base));
        if base.checked_add(size).is_none_or(|e| e > end) {
            return Err(Error::Refused(format!(
                "{} is {end} bytes, too small for {size} bytes at offset {base}",
                path.display()
            )));
        }
        Ok(Self { file, path: path.to_owned(), base, size })
    }

    fn check(&self, offset: u64, len: usize) -> Result<()> {
        if offset.checked_add(len as u64).is_none_or(|e| e > self.size) {
            return Err(Error::io(
                "access",
                &self.path,
                std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("{len} bytes at {offset} is past the end ({})", self.size),
                ),
            ));
        }
        Ok(())
    }
}

impl BlockDevice for FileDevice {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.check(offset, buf.len())?;
        self.file.read_exact_at(buf, self.base + offset).map_err(|e| Error::io("read", &self.path, e))
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        self.check(offset, data.len())?;
        self.file.write_all_at(data, self.base + offset).map_err(|e| Error::io("write", &self.path, e))
    }
    fn flush(&mut self) -> Result<()> {
        self.file.sync_all().map_err(|e| Error::io("fsync", &self.path, e))
    }
    fn describe(&self) -> String {
        if self.base == 0 { self.path.display().to_string() } else { format!("{}@{}", self.path.display(), self.base) }
    }
}

#[cfg(feature = "sim")]
pub mod sim {
    //! A simulated disk for power-cut tests (TEST-RIG level 1).
    //!
    //! A [`SimDisk`] holds the durable bytes and the writes not yet flushed. Every write counts
    //! as one step; with [`SimDisk::crash_after`] set, the step with that number fails and every
    //! later operation fails too, as if the power went. [`SimDisk::after_power_cut`] then gives
    //! what a disk could hold after the cut: everything flushed, plus — chosen by a seed — some
    //! of the unflushed writes, each kept whole, dropped, or torn at a 512-byte sector boundary.
    //! [`SimDisk::part`] gives partitions (windows) that all share one crash clock.

    use std::cell::RefCell;
    use std::rc::Rc;

    use super::BlockDevice;
    use crate::error::{Error, Result};

    const SECTOR: usize = 512;

    #[derive(Debug)]
    struct Inner {
        durable: Vec<u8>,
        pending: Vec<(u64, Vec<u8>)>,
        steps: u64,
        crash_after: Option<u64>,
        crashed: bool,
    }

    /// A simulated disk (cheap to clone: clones share the disk).
    #[derive(Debug, Clone)]
    pub struct SimDisk(Rc<RefCell<Inner>>);

    impl SimDisk {
        /// A zeroed disk of `size` bytes.
        #[must_use]
        pub fn new(size: usize) -> Self {
            Self::from_bytes(vec![0; size])
        }

        /// A disk holding `bytes`, all durable.
        #[must_use]
        pub fn from_bytes(bytes: Vec<u8>) -> Self {
            Self(Rc::new(RefCell::new(Inner {
                durable: bytes,
                pending: Vec::new(),
                steps: 0,
                crash_after: None,
                crashed: false,
            })))
        }

        /// Makes write or flush number `step` (counting from 0) fail and the disk go dark.
        pub fn crash_after(&self, step: u64) {
            self.0.borrow_mut().crash_after = Some(step);
        }

        /// How many writes and flushes were issued.
        #[must_use]
        pub fn steps(&self) -> u64 {
            self.0.borrow().steps
        }

        /// Whether the simulated power cut happened.
        #[must_use]
        pub fn crashed(&self) -> bool {
            self.0.borrow().crashed
        }

        /// The current contents as a reader sees them (durable plus pending).
        #[must_use]
        pub fn contents(&self) -> Vec<u8> {
            let inner = self.0.borrow();
            let mut out = inner.durable.clone();
            for (off, data) in &inner.pending {
                let o = usize::try_from(*off).expect("in range");
                out[o..o + data.len()].copy_from_slice(data);
            }
            out
        }

        /// A new disk holding what survives a power cut now: flushed data plus, chosen by
        /// `seed`, a subset of the unflushed writes (some torn at sector boundaries).
        #[must_use]
        pub fn after_power_cut(&self, seed: u64) -> SimDisk {
            let inner = self.0.borrow();
            let mut out = inner.durable.clone();
            let mut rng = seed ^ 0x9e37_79b9_7f4a_7c15;
            let mut next = move || {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng
            };
            for (off, data) in &inner.pending {
                let o = usize::try_from(*off).expect("in range");
                match next() % 3 {
                    0 => {}
                    1 => out[o..o + data.len()].copy_from_slice(data),
                    _ => {
                        // Torn: keep a random prefix of whole sectors (relative to the disk).
                        let first_boundary = (o / SECTOR + 1) * SECTOR - o;
                        let sectors = data.len().div_ceil(SECTOR) + 1;
                        let keep = (first_boundary + SECTOR * usize::try_from(next() % sectors as u64).expect("small"))
                            .min(data.len());
                        out[o..o + keep].copy_from_slice(&data[..keep]);
                    }
                }
            }
            SimDisk::from_bytes(out)
        }

        /// A partition: `size` bytes at `offset`.
        #[must_use]
        pub fn part(&self, offset: u64, size: u64) -> SimPart {
            SimPart { disk: self.clone(), offset, size }
        }

        /// The whole disk as one device.
        #[must_use]
        pub fn whole(&self) -> SimPart {
            let size = self.0.borrow().durable.len() as u64;
            self.part(0, size)
        }

        fn step(&self) -> Result<()> {
            let mut inner = self.0.borrow_mut();
            if inner.crashed {
                return Err(Error::Other("simulated power cut: the disk is gone".into()));
            }
            let n = inner.steps;
            inner.steps += 1;
            if inner.crash_after == Some(n) {
                inner.crashed = true;
                return Err(Error::Other(format!("simulated power cut at step {n}")));
            }
            Ok(())
        }
    }

    /// A window of a [`SimDisk`].
    #[derive(Debug, Clone)]
    pub struct SimPart {
        disk: SimDisk,
        offset: u64,
        size: u64,
    }

    impl SimPart {
        fn check(&self, offset: u64, len: usize) -> Result<u64> {
            if offset.checked_add(len as u64).is_none_or(|e| e > self.size) {
                return Err(Error::Other(format!("sim: {len} bytes at {offset} past the end ({})", self.size)));
            }
            Ok(self.offset + offset)
        }
    }

    impl BlockDevice for SimPart {
        fn size(&self) -> u64 {
            self.size
        }
        fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
            let abs = self.check(offset, buf.len())?;
            if self.disk.crashed() {
                return Err(Error::Other("simulated power cut: the disk is gone".into()));
            }
            let inner = self.disk.0.borrow();
            let a = usize::try_from(abs).expect("in range");
            buf.copy_from_slice(&inner.durable[a..a + buf.len()]);
            for (off, data) in &inner.pending {
                let (ws, we) = (*off, *off + data.len() as u64);
                let (rs, re) = (abs, abs + buf.len() as u64);
                let (s, e) = (ws.max(rs), we.min(re));
                if s < e {
                    let (s, e) = (usize::try_from(s).expect("in range"), usize::try_from(e).expect("in range"));
                    let w = usize::try_from(ws).expect("in range");
                    buf[s - a..e - a].copy_from_slice(&data[s - w..e - w]);
                }
            }
            Ok(())
        }
        fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()> {
            let abs = self.check(offset, data.len())?;
            self.disk.step()?;
            self.disk.0.borrow_mut().pending.push((abs, data.to_vec()));
            Ok(())
        }
        fn flush(&mut self) -> Result<()> {
            self.disk.step()?;
            let mut inner = self.disk.0.borrow_mut();
            let pending = std::mem::take(&mut inner.pending);
            for (off, data) in pending {
                let o = usize::try_from(off).expect("in range");
                inner.durable[o..o + data.len()].copy_from_slice(&data);
            }
            Ok(())
        }
        fn describe(&self) -> String {
            format!("sim@{}", self.offset)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn unflushed_writes_may_vanish_flushed_stay() {
            let d = SimDisk::new(4096);
            let mut p = d.part(1024, 2048);
            p.write_at(0, &[1; 600]).unwrap();
            p.flush().unwrap();
            p.write_at(1000, &[2; 1000]).unwrap();
            let mut buf = [0; 4];
            p.read_at(998, &mut buf).unwrap();
            assert_eq!(buf, [0, 0, 2, 2]);
            let mut kept_some = false;
            for seed in 0..32 {
                let after = d.after_power_cut(seed).contents();
                assert!(after[1024..1624].iter().all(|&b| b == 1));
                kept_some |= after[2024] == 2;
            }
            assert!(kept_some);
        }

        #[test]
        fn crash_point_stops_everything() {
            let d = SimDisk::new(1024);
            d.crash_after(1);
            let mut p = d.whole();
            p.write_at(0, &[1]).unwrap();
            assert!(p.flush().is_err());
            assert!(p.write_at(0, &[1]).is_err());
            assert!(d.crashed());
        }
    }
}
