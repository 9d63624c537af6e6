//! The native bundle format (docs/reference/bundle.md).
//!
//! One file per release, readable front to back in one pass:
//!
//! ```text
//! | header (64 bytes) | manifest (JSON) | signature block | payload: zstd chunks, image after image, then component after component |
//! ```
//!
//! Format 2 adds components (firmware, apps, file trees, device data) after the images; format 3
//! adds a delta index and block store after the payload ([`delta`]). A bundle is written in the
//! oldest format that holds it, so devices in the field keep reading what they can.
//!
//! The signatures cover the header and the manifest; the manifest carries the SHA-256 of every
//! chunk (compressed and uncompressed) and of every whole image, so every byte of the file is
//! covered: [`BundleReader::open`] checks the structure, [`BundleReader::verify`] the
//! signatures against the keyring, and [`VerifiedBundle::stream`] hands out a chunk only after
//! both its hashes matched. Chunks sit at known offsets, so a later reader can fetch them by
//! HTTP Range.

pub mod delta;
pub mod format;
pub mod read;
pub mod signing;
pub mod write;

pub use format::{Chunk, ComponentPayload, HEADER_LEN, Header, Hook, HookKind, Image, MAGIC, Manifest, Signer};
pub use read::{BundleReader, ComponentReader, Found, LocalChunks, StreamStats, VerifiedBundle};
pub use write::{ComponentSource, CreateOptions, create};
