//! Slot devices written and read back with `O_DIRECT`.
//!
//! Buffered writes to a block device go through its page cache (and, for a loop device, the
//! backing file's cache too): the install then waits on writeback throttling, and a read-back
//! "verifies" the cache, not the device. A [`SlotDevice`] writes and reads aligned blocks with
//! `O_DIRECT` (through an aligned bounce buffer, in safe code) and only the unaligned tail of
//! an image through the page cache. Where `O_DIRECT` is refused (tmpfs, some filesystems) it
//! falls back to buffered I/O.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use update_core::blockdev::{BlockDevice, FileDevice};
use update_core::{Error, Result};

/// Alignment of offsets, lengths and buffers for direct I/O (covers 512 and 4096-byte sectors).
const ALIGN: usize = 4096;
/// Largest direct transfer per call.
const MAX_IO: usize = 4 << 20;

/// A slot opened for installing: direct I/O where possible.
#[derive(Debug)]
pub struct SlotDevice {
    buffered: FileDevice,
    direct: Option<File>,
    path: PathBuf,
    bounce: Vec<u8>,
}

impl SlotDevice {
    /// Opens `path` read-write, with a direct-I/O handle when the kernel allows it.
    ///
    /// # Errors
    /// [`Error::Io`] naming the path.
    pub fn open(path: &Path) -> Result<Self> {
        let buffered = FileDevice::open(path)?;
        let flags = rustix::fs::OFlags::DIRECT.bits();
        let flags = i32::try_from(flags).unwrap_or(0);
        let direct = OpenOptions::new().read(true).write(true).custom_flags(flags).open(path).ok();
        Ok(Self { buffered, direct, path: path.to_owned(), bounce: Vec::new() })
    }

    /// Whether direct I/O is in use.
    #[must_use]
    pub fn is_direct(&self) -> bool {
        self.direct.is_some()
    }

    fn aligned_buffer(&mut self, len: usize) -> &mut [u8] {
        if self.bounce.len() < len + ALIGN {
            self.bounce = vec![0u8; len + ALIGN];
        }
        let start = self.bounce.as_ptr().align_offset(ALIGN);
        &mut self.bounce[start..start + len]
    }

    /// Falls back to buffered I/O for good after a direct-I/O error (e.g. EINVAL on a
    /// filesystem that accepts the flag at open but not the transfer).
    fn drop_direct(&mut self) {
        self.direct = None;
    }
}

fn split_aligned(offset: u64, len: usize) -> usize {
    if offset.is_multiple_of(ALIGN as u64) { len / ALIGN * ALIGN } else { 0 }
}

impl BlockDevice for SlotDevice {
    fn size(&self) -> u64 {
        self.buffered.size()
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        if offset.checked_add(buf.len() as u64).is_none_or(|e| e > self.size()) {
            return self.buffered.read_at(offset, buf);
        }
        let mut done = if self.direct.is_some() { split_aligned(offset, buf.len()) } else { 0 };
        let mut pos = 0;
        while pos < done {
            let n = (done - pos).min(MAX_IO);
            let file = self.direct.take().expect("checked");
            let bounce = self.aligned_buffer(n);
            let r = file.read_exact_at(bounce, offset + pos as u64);
            if r.is_ok() {
                buf[pos..pos + n].copy_from_slice(bounce);
                self.direct = Some(file);
                pos += n;
            } else {
                self.drop_direct();
                done = pos;
            }
        }
        if done < buf.len() {
            self.buffered.read_at(offset + done as u64, &mut buf[done..])?;
        }
        Ok(())
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        if offset.checked_add(data.len() as u64).is_none_or(|e| e > self.size()) {
            return self.buffered.write_at(offset, data);
        }
        let mut done = if self.direct.is_some() { split_aligned(offset, data.len()) } else { 0 };
        let mut pos = 0;
        while pos < done {
            let n = (done - pos).min(MAX_IO);
            let file = self.direct.take().expect("checked");
            let bounce = self.aligned_buffer(n);
            bounce.copy_from_slice(&data[pos..pos + n]);
            match file.write_all_at(bounce, offset + pos as u64) {
                Ok(()) => {
                    self.direct = Some(file);
                    pos += n;
                }
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {
                    self.drop_direct();
                    done = pos;
                }
                Err(e) => return Err(Error::io("write", &self.path, e)),
            }
        }
        if done < data.len() {
            self.buffered.write_at(offset + done as u64, &data[done..])?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if let Some(f) = &self.direct {
            f.sync_all().map_err(|e| Error::io("fsync", &self.path, e))?;
        }
        self.buffered.flush()
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unaligned_and_aligned_writes_read_back_identically() {
        let d = tempfile::tempdir_in("/var/tmp").unwrap();
        let p = d.path().join("slot");
        std::fs::write(&p, vec![0u8; 3 << 20]).unwrap();
        let mut dev = SlotDevice::open(&p).unwrap();
        let data: Vec<u8> = (0..(1 << 20) + 777).map(|i| (i * 7 % 251) as u8).collect();
        dev.write_at(4096, &data).unwrap();
        dev.write_at(4096 + data.len() as u64, b"tail").unwrap();
        dev.flush().unwrap();
        let mut back = vec![0u8; data.len()];
        dev.read_at(4096, &mut back).unwrap();
        assert_eq!(back, data);
        let file = std::fs::read(&p).unwrap();
        assert_eq!(&file[4096..4096 + data.len()], &data[..]);
        assert_eq!(&file[4096 + data.len()..4096 + data.len() + 4], b"tail");
    }
}
