//! CRC-32 (IEEE 802.3, reflected polynomial `0xEDB88320`): the checksum of the U-Boot
//! environment and of the plain boot-state file.
//!
//! One byte per step through a 1 KiB table built at compile time. The inputs are small (an
//! environment copy is a few KiB to a few hundred KiB, read or written once per boot-state
//! change), so a table-per-byte loop is fast enough and keeps the device binary small: the
//! `crc32fast` crate it replaces carried a 16 KiB slicing table and a SIMD path
//! (docs/drivers.md, "Binary size").

/// The reflected IEEE polynomial.
const POLY: u32 = 0xEDB8_8320;

/// `TABLE[b]` is the CRC register after shifting byte `b` through an all-zero register.
const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut byte = 0;
    while byte < 256 {
        #[expect(clippy::cast_possible_truncation, reason = "byte < 256")]
        let mut crc = byte as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ POLY } else { crc >> 1 };
            bit += 1;
        }
        table[byte] = crc;
        byte += 1;
    }
    table
};

/// The CRC-32 of `data` (the same value as zlib's `crc32` and `crc32fast::hash`).
#[must_use]
pub fn hash(data: &[u8]) -> u32 {
    !data.iter().fold(!0u32, |crc, &b| TABLE[usize::from(crc.to_le_bytes()[0] ^ b)] ^ (crc >> 8))
}

#[cfg(test)]
mod tests {
    use super::hash;
    use proptest::prelude::*;

    #[test]
    fn known_values() {
        // The CRC-32 check value, and the empty input.
        assert_eq!(hash(b"123456789"), 0xCBF4_3926);
        assert_eq!(hash(b""), 0);
        assert_eq!(hash(b"The quick brown fox jumps over the lazy dog"), 0x414F_A339);
    }

    proptest! {
        #[test]
        fn same_as_crc32fast(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
            prop_assert_eq!(hash(&data), crc32fast::hash(&data));
        }
    }
}
