//! The bundle's header, manifest and signature block (`BundleReader::open`), signature
//! verification against a keyring, and the payload (`stream`: hashes, zstd with a bounded
//! output), and each component's verified reader (bundle format 2). The first input byte picks
//! the verification policy.
#![no_main]

use std::io::Cursor;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use update_bundle::{BundleReader, ComponentSource, CreateOptions};
use update_core::component::{ComponentName, Kind, Settings};
use update_core::config::Verify;
use update_core::keyring::{Keyring, PublicKey};
use update_core::{KeyName, SlotGroupName, parse_version};

fn keyring() -> &'static Keyring {
    static RING: OnceLock<Keyring> = OnceLock::new();
    RING.get_or_init(|| {
        let mut ring = Keyring::default();
        let key = PublicKey::from_verifying_key(libupdate_fuzz::signing_key().verifying_key());
        if let Ok(name) = KeyName::new("vendor") {
            let _ = ring.add(name, key, "");
        }
        write_seed();
        ring
    })
}

/// Small valid bundles signed by the fixture key: format 1 (two images, two chunks each) and
/// format 2 (one image and two components: a data file and a firmware image).
fn write_seed() {
    if std::env::var_os("LIBUPDATE_FUZZ_SEEDS").is_none() {
        return;
    }
    let mut seeds = Vec::new();
    for (name, with_components) in [("signed", false), ("components", true)] {
        let out = seed_bundle(with_components);
        let mut signed = vec![0u8];
        signed.extend_from_slice(&out);
        seeds.push((name, signed));
        if !with_components {
            let mut integrity = vec![1u8];
            integrity.extend_from_slice(&out);
            seeds.push(("integrity-only", integrity));
        }
    }
    libupdate_fuzz::write_seeds("bundle", &seeds);
}

fn seed_bundle(with_components: bool) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (a, b) = (dir.path().join("a.img"), dir.path().join("b.img"));
    std::fs::write(&a, b"rootfs ".repeat(700)).expect("write");
    std::fs::write(&b, (0..3000u32).map(|i| (i * 7 % 251) as u8).collect::<Vec<u8>>()).expect("write");
    let mut opts = CreateOptions::new(parse_version("2.0").expect("version"), "board");
    opts.chunk_size = 4096;
    opts.created = "2026-01-01T00:00:00Z".into();
    opts.images.push((SlotGroupName::new("rootfs").expect("name"), a.clone()));
    if with_components {
        for (name, kind, path) in [("calibration", Kind::Data, &a), ("mcu", Kind::Firmware, &b)] {
            opts.components.push(ComponentSource {
                name: ComponentName::new(name).expect("name"),
                kind,
                version: parse_version("1.1").expect("version"),
                requires: Vec::new(),
                options: Settings::new(),
                path: path.clone(),
            });
        }
    } else {
        opts.images.push((SlotGroupName::new("appfs").expect("name"), b));
    }
    opts.signers.push((KeyName::new("vendor").expect("name"), libupdate_fuzz::signing_key()));
    let mut scratch = tempfile::tempfile().expect("scratch");
    let mut out = Vec::new();
    update_bundle::create(&opts, &mut scratch, &mut out).expect("create");
    out
}

fuzz_target!(|data: &[u8]| {
    let ring = keyring();
    let Some((&mode, bytes)) = data.split_first() else { return };
    let Ok(reader) = BundleReader::open(Cursor::new(bytes), "fuzz.bundle") else { return };
    let _ = reader.signature_key_ids();
    let policy = if mode & 1 == 0 { Verify::Signatures } else { Verify::IntegrityOnly };
    let Ok(mut verified) = reader.verify(ring, 1, policy) else { return };
    let mut total = 0u64;
    let _ = verified.stream(|_, _, chunk| {
        total += chunk.len() as u64;
        Ok(())
    });
    for index in 0..verified.manifest().components.len() {
        let Ok(mut reader) = verified.component_reader(index) else { return };
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    }
});
