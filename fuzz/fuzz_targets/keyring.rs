//! Keyring input: a public key as `update config key add NAME @FILE` takes it (base64, hex or
//! PEM: `PublicKey::parse`) and the stored keyring file (`Keyring::parse`).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use update_core::keyring::{Keyring, PublicKey};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(key) = PublicKey::parse(text) {
        // Any accepted form names the same key as its base64 form.
        assert_eq!(PublicKey::parse(&key.to_base64()).ok(), Some(key));
        let _ = key.verify(b"message", data);
    }
    if let Ok(ring) = Keyring::parse(text, Path::new("/var/lib/update/keyring.toml")) {
        for entry in ring.iter() {
            assert!(ring.by_key_id(&entry.public_key.key_id()).is_some());
        }
    }
});
