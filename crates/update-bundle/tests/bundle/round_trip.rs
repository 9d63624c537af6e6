//! What goes in comes out: every image byte for byte, through both device paths.

use std::io::Cursor;

use sha2::{Digest, Sha256};
use update_bundle::BundleReader;
use update_core::config::Verify;

use crate::fixture::{
    Spec, build, compressible, device_check, expected_pieces, keyring, mixed, random_bytes, reassemble, snakeoil,
    try_build,
};

const CHUNK: u64 = 4096;

#[test]
fn several_images_come_back_byte_for_byte() {
    let key = snakeoil(1);
    let images = vec![
        // Random and compressible halves, not a multiple of the chunk size.
        ("rootfs", [random_bytes(7, 10_000), compressible(9_001)].concat()),
        // Exactly three chunks: no empty fourth chunk.
        ("kernel", compressible(3 * 4096)),
        // Smaller than one chunk.
        ("firmware", random_bytes(8, 1)),
        ("app", mixed(9, 4097)),
    ];
    let built = build(&Spec { images, signers: vec![("vendor", &key)], chunk_size: CHUNK });
    let out = device_check(&built.bundle, "release.bundle", &keyring(&[("vendor", &key)]), 1, Verify::Signatures);
    out.pre.as_ref().unwrap();
    out.stream.as_ref().unwrap();
    assert_eq!(reassemble(&out.received, built.images.len()), built.images);
    // One piece per chunk, in payload order, none larger than the chunk size.
    assert_eq!(out.received, expected_pieces(&built));
    assert!(out.received.iter().all(|(_, _, d)| !d.is_empty() && d.len() as u64 <= CHUNK));
    let counts: Vec<usize> = built.manifest.images.iter().map(|i| i.chunks.len()).collect();
    assert_eq!(counts, [5, 3, 1, 2]);
}

#[test]
fn the_manifest_describes_the_images() {
    let key = snakeoil(1);
    let data = [random_bytes(1, 5000), compressible(70_000)];
    let built = build(&Spec {
        images: vec![("rootfs", data[0].clone()), ("kernel", data[1].clone())],
        signers: vec![("vendor", &key)],
        chunk_size: CHUNK,
    });
    let reader = BundleReader::open(Cursor::new(&built.bundle), "b").unwrap();
    assert_eq!(reader.manifest(), &built.manifest, "what open reads is what create wrote");
    let verified = reader.verify(&keyring(&[("vendor", &key)]), 1, Verify::Signatures).unwrap();
    let m = verified.manifest();
    assert_eq!(m.version.to_string(), "2.0.0");
    assert_eq!(m.compatible, "snakeoil-board");
    assert_eq!(m.chunk_size, CHUNK);
    assert_eq!(verified.trusted_signers(), ["vendor"]);
    for (image, data) in m.images.iter().zip(&data) {
        assert_eq!(image.size, data.len() as u64);
        assert_eq!(image.sha256, hex::encode(Sha256::digest(data)));
    }
    // Compressible data is stored compressed, random data is not inflated beyond the bound.
    let z = |i: usize| m.images[i].chunks.iter().map(|c| c.zsize).sum::<u64>();
    assert!(z(1) < 70_000 / 10, "compressible image stored in {} bytes", z(1));
    assert!(z(0) <= 5000 + 5000 / 64 + 1024 * 2);
    assert_eq!(m.payload_size, z(0) + z(1));
}

#[test]
fn creating_twice_gives_the_same_bytes() {
    // ed25519 signatures are deterministic and the creation time is fixed: reproducible bundles.
    let key = snakeoil(1);
    let spec =
        || Spec { images: vec![("rootfs", mixed(1, 20_000))], signers: vec![("vendor", &key)], chunk_size: CHUNK };
    assert_eq!(build(&spec()).bundle, build(&spec()).bundle);
}

#[test]
fn an_empty_image_file_is_refused_when_creating() {
    // An empty image would write nothing: the slot would keep stale content under the new
    // version. It is always a build mistake, so `create` refuses it and names the file.
    let key = snakeoil(1);
    let err = try_build(&Spec {
        images: vec![("rootfs", compressible(5000)), ("app", Vec::new())],
        signers: vec![("vendor", &key)],
        chunk_size: CHUNK,
    })
    .err()
    .expect("an empty image was accepted");
    let text = err.to_string();
    assert!(text.contains("app=") && text.contains("1-app.img") && text.contains("empty"), "{text}");
    assert_eq!(err.kind(), update_core::ErrorKind::Usage);
}

#[test]
fn create_refuses_bad_options() {
    let key = snakeoil(1);
    let no_images = try_build(&Spec { images: vec![], signers: vec![("vendor", &key)], chunk_size: CHUNK });
    assert!(no_images.err().unwrap().to_string().contains("at least one --image"));
    for chunk_size in [0, (16 << 20) + 1] {
        let r = try_build(&Spec { images: vec![("a", vec![1])], signers: vec![("vendor", &key)], chunk_size });
        assert!(r.err().unwrap().to_string().contains("chunk size"), "chunk size {chunk_size} accepted");
    }
    let twice = try_build(&Spec {
        images: vec![("rootfs", vec![1]), ("rootfs", vec![2])],
        signers: vec![("vendor", &key)],
        chunk_size: CHUNK,
    });
    assert!(twice.err().unwrap().to_string().contains("slot group 'rootfs' appears twice"));
    let same_key_twice = try_build(&Spec {
        images: vec![("rootfs", vec![1])],
        signers: vec![("vendor", &key), ("vendor-again", &key)],
        chunk_size: CHUNK,
    });
    assert!(same_key_twice.err().unwrap().to_string().contains("repeated key id"));
}

#[test]
fn one_byte_chunks_work() {
    // The smallest chunk size: every byte its own zstd frame.
    let key = snakeoil(1);
    let data = random_bytes(3, 300);
    let built = build(&Spec { images: vec![("rootfs", data.clone())], signers: vec![("vendor", &key)], chunk_size: 1 });
    assert_eq!(built.manifest.images[0].chunks.len(), 300);
    let out = device_check(&built.bundle, "b", &keyring(&[("vendor", &key)]), 1, Verify::Signatures);
    assert!(out.accepted());
    assert_eq!(reassemble(&out.received, 1), [data]);
}

#[test]
fn hooks_travel_in_the_signed_manifest() {
    let key = snakeoil(1);
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("rootfs.img");
    let hook = dir.path().join("post-install.sh");
    std::fs::write(&image, compressible(5000)).unwrap();
    std::fs::write(&hook, b"#!/bin/sh\necho installed \"$@\"\n").unwrap();
    let mut opts = update_bundle::CreateOptions::new(update_core::parse_version("3.1").unwrap(), "snakeoil-board");
    opts.images = vec![(update_core::SlotGroupName::new("rootfs").unwrap(), image)];
    opts.hooks = vec![(update_bundle::HookKind::PostInstall, hook)];
    opts.signers = vec![(update_core::KeyName::new("vendor").unwrap(), key.clone())];
    opts.min_version = Some(update_core::parse_version("3.0").unwrap());
    opts.chunk_size = CHUNK;
    let mut bundle = Vec::new();
    update_bundle::create(&opts, &mut tempfile::tempfile().unwrap(), &mut bundle).unwrap();
    let v = BundleReader::open(Cursor::new(&bundle), "b")
        .unwrap()
        .verify(&keyring(&[("vendor", &key)]), 1, Verify::Signatures)
        .unwrap();
    assert_eq!(v.hooks().len(), 1);
    assert_eq!(v.hooks()[0].kind, update_bundle::HookKind::PostInstall);
    assert_eq!(v.hooks()[0].content, b"#!/bin/sh\necho installed \"$@\"\n");
    assert_eq!(v.manifest().min_version.as_ref().unwrap().to_string(), "3.0.0");
    assert!(!v.manifest().created.is_empty(), "an empty `created` option means now");
}

#[test]
fn a_bundle_streams_once() {
    let (built, ring) = crate::fixture::small(&[("rootfs", 5000)], CHUNK);
    let mut v =
        BundleReader::open(Cursor::new(&built.bundle), "b").unwrap().verify(&ring, 1, Verify::Signatures).unwrap();
    v.stream(|_, _, _| Ok(())).unwrap();
    assert!(v.stream(|_, _, _| Ok(())).unwrap_err().to_string().contains("already streamed"));
}

#[test]
fn a_sink_error_stops_the_stream_and_is_returned() {
    let (built, ring) = crate::fixture::small(&[("rootfs", 50_000)], CHUNK);
    let mut v =
        BundleReader::open(Cursor::new(&built.bundle), "b").unwrap().verify(&ring, 1, Verify::Signatures).unwrap();
    let mut calls = 0;
    let err = v
        .stream(|_, _, _| {
            calls += 1;
            if calls == 3 { Err(update_core::Error::Other("slot device full".into())) } else { Ok(()) }
        })
        .unwrap_err();
    assert_eq!(err.to_string(), "slot device full");
    assert_eq!(calls, 3, "the sink was called after it failed");
}
