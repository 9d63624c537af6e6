//! Fixtures shared by the fuzz targets: one fixed signing key, and the seed inputs a target
//! writes when `LIBUPDATE_FUZZ_SEEDS=DIR` is set (how `fuzz/seeds/` was made).

use std::path::PathBuf;

use ed25519_dalek::SigningKey;
use time::OffsetDateTime;

/// The key every fixture is signed with (fixed, so the seeds are reproducible).
#[must_use]
pub fn signing_key() -> SigningKey {
    SigningKey::from_bytes(&[0x42; 32])
}

/// The time the fuzz targets run at: the fixtures' metadata is valid then.
#[must_use]
pub fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_780_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Writes `files` into `$LIBUPDATE_FUZZ_SEEDS/<target>/` when that variable is set.
pub fn write_seeds(target: &str, files: &[(&str, Vec<u8>)]) {
    let Some(dir) = std::env::var_os("LIBUPDATE_FUZZ_SEEDS") else { return };
    let dir = PathBuf::from(dir).join(target);
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    for (name, bytes) in files {
        let _ = std::fs::write(dir.join(name), bytes);
    }
}
