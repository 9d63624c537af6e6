//! MCUboot's image format: the 32-byte header and the TLV trailer with the image hash.
//!
//! Published facts used (MCUboot's design document, "Image format"): all fields are
//! little-endian; the header is `ih_magic` (0x96f3b83d), `ih_load_addr`, `ih_hdr_size` (u16),
//! `ih_protect_tlv_size` (u16), `ih_img_size`, `ih_flags`, `ih_ver` (major u8, minor u8,
//! revision u16, build number u32) and 4 bytes of padding. The body follows at `ih_hdr_size`;
//! after it an optional protected TLV area (info magic 0x6908) and the TLV area (info magic
//! 0x6907), each opened by `magic u16, total length u16` (the total counts the info itself);
//! each TLV is `type u16, length u16, value`. TLV 0x10 is the SHA-256 over header, body and
//! protected TLVs: the hash the image list reports.

use sha2::{Digest, Sha256};

/// `ih_magic`.
pub const IMAGE_MAGIC: u32 = 0x96f3_b83d;
/// The TLV area's info magic.
pub const TLV_INFO_MAGIC: u16 = 0x6907;
/// The protected TLV area's info magic.
pub const TLV_PROT_INFO_MAGIC: u16 = 0x6908;
/// TLV type of the SHA-256 image hash.
pub const TLV_SHA256: u16 = 0x10;
/// Header flags of encrypted images (AES-128, AES-256).
pub const FLAGS_ENCRYPTED: u32 = 0x04 | 0x08;
/// Size of the fixed header.
pub const HEADER_SIZE: usize = 32;
const HEADER_SIZE_U16: u16 = 32;

/// `ih_ver`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImageVersion {
    /// Major.
    pub major: u8,
    /// Minor.
    pub minor: u8,
    /// Revision.
    pub revision: u16,
    /// Build number.
    pub build: u32,
}

impl ImageVersion {
    /// As the image list shows it: `major.minor.revision`, plus `.build` when not 0.
    #[must_use]
    pub fn text(&self) -> String {
        if self.build == 0 {
            format!("{}.{}.{}", self.major, self.minor, self.revision)
        } else {
            format!("{}.{}.{}.{}", self.major, self.minor, self.revision, self.build)
        }
    }

    /// The version for a component version, when it fits (`u8.u8.u16`; pre-release and build
    /// metadata have no place in `ih_ver`).
    #[must_use]
    pub fn from_semver(v: &update_core::Version) -> Option<ImageVersion> {
        if !v.pre.is_empty() || !v.build.is_empty() {
            return None;
        }
        Some(ImageVersion {
            major: u8::try_from(v.major).ok()?,
            minor: u8::try_from(v.minor).ok()?,
            revision: u16::try_from(v.patch).ok()?,
            build: 0,
        })
    }

    /// The component version of an image list version text (`1.2.3` or `1.2.3.4`; the build
    /// number is dropped).
    #[must_use]
    pub fn semver_of_text(text: &str) -> Option<update_core::Version> {
        let mut parts = text.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = parts.next()?.parse().ok()?;
        match parts.next() {
            None => {}
            Some(b) => {
                b.parse::<u32>().ok()?;
            }
        }
        if parts.next().is_some() {
            return None;
        }
        Some(update_core::Version::new(major, minor, patch))
    }
}

/// A parsed and hash-checked MCUboot image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McubootImage {
    /// `ih_load_addr`.
    pub load_addr: u32,
    /// `ih_hdr_size`.
    pub header_size: u16,
    /// `ih_img_size`.
    pub body_size: u32,
    /// `ih_flags`.
    pub flags: u32,
    /// `ih_ver`.
    pub version: ImageVersion,
    /// The SHA-256 TLV (checked against the bytes).
    pub hash: [u8; 32],
    /// Length of the whole image (header, body and TLVs).
    pub total_size: usize,
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

impl McubootImage {
    /// Parses an image and checks its hash TLV; bytes after the TLV area (flash padding,
    /// `0xff`) are allowed only when `trailing_erased` is set.
    ///
    /// # Errors
    /// A text naming what is wrong: the magic, sizes beyond the data, a missing or wrong hash.
    pub fn parse(bytes: &[u8], trailing_erased: bool) -> Result<McubootImage, String> {
        let magic = le32(bytes, 0).ok_or("shorter than an MCUboot header")?;
        if magic != IMAGE_MAGIC {
            return Err(format!("not an MCUboot image (magic {magic:#010x}, expected {IMAGE_MAGIC:#010x})"));
        }
        let short = || "shorter than an MCUboot header".to_owned();
        let load_addr = le32(bytes, 4).ok_or_else(short)?;
        let header_size = le16(bytes, 8).ok_or_else(short)?;
        let protect_size = le16(bytes, 10).ok_or_else(short)?;
        let body_size = le32(bytes, 12).ok_or_else(short)?;
        let flags = le32(bytes, 16).ok_or_else(short)?;
        let version = ImageVersion {
            major: *bytes.get(20).ok_or_else(short)?,
            minor: *bytes.get(21).ok_or_else(short)?,
            revision: le16(bytes, 22).ok_or_else(short)?,
            build: le32(bytes, 24).ok_or_else(short)?,
        };
        if usize::from(header_size) < HEADER_SIZE {
            return Err(format!("header size {header_size} is below {HEADER_SIZE}"));
        }
        if flags & FLAGS_ENCRYPTED != 0 {
            return Err("encrypted images are not supported by this handler".into());
        }
        let beyond = || "the header's sizes reach beyond the image".to_owned();
        let body_end = usize::from(header_size)
            .checked_add(usize::try_from(body_size).map_err(|_| beyond())?)
            .ok_or_else(beyond)?;
        let mut at = body_end;
        if protect_size > 0 {
            if le16(bytes, at) != Some(TLV_PROT_INFO_MAGIC) || le16(bytes, at + 2) != Some(protect_size) {
                return Err("protected TLV area does not match the header".into());
            }
            at += usize::from(protect_size);
        }
        let hashed_end = at;
        if le16(bytes, at) != Some(TLV_INFO_MAGIC) {
            return Err("no TLV area after the image body".into());
        }
        let tlv_total = usize::from(le16(bytes, at + 2).ok_or_else(beyond)?);
        let end = at.checked_add(tlv_total).filter(|e| *e <= bytes.len()).ok_or_else(beyond)?;
        let mut hash = None;
        let mut p = at + 4;
        while p < end {
            let t = le16(bytes, p).ok_or_else(beyond)?;
            let l = usize::from(le16(bytes, p + 2).ok_or_else(beyond)?);
            let v =
                bytes.get(p + 4..p + 4 + l).filter(|_| p + 4 + l <= end).ok_or("a TLV reaches beyond the TLV area")?;
            if t == TLV_SHA256 {
                hash = Some(<[u8; 32]>::try_from(v).map_err(|_| "SHA-256 TLV is not 32 bytes")?);
            }
            p += 4 + l;
        }
        let hash = hash.ok_or("no SHA-256 TLV")?;
        let computed: [u8; 32] = Sha256::digest(&bytes[..hashed_end]).into();
        if computed != hash {
            return Err("the SHA-256 TLV does not match the image".into());
        }
        if end != bytes.len() && !(trailing_erased && bytes[end..].iter().all(|b| *b == 0xff)) {
            return Err(format!("{} bytes after the TLV area", bytes.len() - end));
        }
        Ok(McubootImage { load_addr, header_size, body_size, flags, version, hash, total_size: end })
    }
}

/// Builds an unsigned MCUboot image (header, body, SHA-256 TLV) — what `imgtool create`
/// without a key writes; for tests, demos and the simulated MCU.
#[must_use]
pub fn build_image(version: ImageVersion, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_SIZE + body.len() + 40);
    out.extend_from_slice(&IMAGE_MAGIC.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // load address
    out.extend_from_slice(&HEADER_SIZE_U16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // no protected TLVs
    out.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // flags
    out.push(version.major);
    out.push(version.minor);
    out.extend_from_slice(&version.revision.to_le_bytes());
    out.extend_from_slice(&version.build.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(body);
    let hash = Sha256::digest(&out);
    out.extend_from_slice(&TLV_INFO_MAGIC.to_le_bytes());
    out.extend_from_slice(&(4u16 + 4 + 32).to_le_bytes());
    out.extend_from_slice(&TLV_SHA256.to_le_bytes());
    out.extend_from_slice(&32u16.to_le_bytes());
    out.extend_from_slice(&hash);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(major: u8, minor: u8, revision: u16) -> ImageVersion {
        ImageVersion { major, minor, revision, build: 0 }
    }

    #[test]
    fn built_images_parse_back() {
        let img = build_image(v(2, 1, 300), b"firmware body");
        let p = McubootImage::parse(&img, false).unwrap();
        assert_eq!(p.version, v(2, 1, 300));
        assert_eq!(p.version.text(), "2.1.300");
        assert_eq!(p.total_size, img.len());
        let mut padded = img.clone();
        padded.extend_from_slice(&[0xff; 64]);
        assert!(McubootImage::parse(&padded, true).is_ok());
        assert!(McubootImage::parse(&padded, false).is_err());
    }

    #[test]
    fn damaged_images_are_refused() {
        let img = build_image(v(1, 0, 0), &[0x55; 100]);
        let mut bad_magic = img.clone();
        bad_magic[0] ^= 1;
        let mut bad_body = img.clone();
        bad_body[40] ^= 1;
        let mut bad_size = img.clone();
        bad_size[12] = 0xff;
        let mut encrypted = img.clone();
        encrypted[16] = 0x04;
        let truncated = &img[..img.len() - 1];
        for (what, bytes) in [
            ("magic", &bad_magic[..]),
            ("body", &bad_body),
            ("size", &bad_size),
            ("encrypted", &encrypted),
            ("truncated", truncated),
            ("empty", &[]),
            ("zeros", &[0; 64]),
        ] {
            assert!(McubootImage::parse(bytes, false).is_err(), "{what} accepted");
        }
    }

    #[test]
    fn versions_map_to_semver() {
        assert_eq!(ImageVersion::from_semver(&update_core::Version::new(2, 1, 3)), Some(v(2, 1, 3)));
        assert_eq!(ImageVersion::from_semver(&update_core::Version::new(256, 0, 0)), None);
        assert_eq!(ImageVersion::from_semver(&update_core::Version::parse("1.0.0-rc1").unwrap()), None);
        assert_eq!(ImageVersion::semver_of_text("1.2.3.4"), Some(update_core::Version::new(1, 2, 3)));
        assert_eq!(ImageVersion::semver_of_text("1.2"), None);
        assert_eq!(ImageVersion::semver_of_text("1.2.3.4.5"), None);
    }
}
