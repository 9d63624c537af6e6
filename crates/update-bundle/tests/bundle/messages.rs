//! Every refusal names the file, and a payload refusal names the image, the chunk and its
//! payload offset, so an operator can find the damage with `update-tool bundle info`.

use std::io::Cursor;

use update_bundle::BundleReader;
use update_core::ErrorKind;
use update_core::config::Verify;

use crate::fixture::{Spec, build, device_check, keyring, mixed, snakeoil};

const NAME: &str = "/srv/releases/2.0.bundle";

#[test]
fn a_changed_chunk_is_named_by_image_chunk_and_offset() {
    let key = snakeoil(1);
    let built = build(&Spec {
        images: vec![("rootfs", mixed(1, 9000)), ("kernel", mixed(2, 4 * 4096))],
        signers: vec![("vendor", &key)],
        chunk_size: 4096,
    });
    let chunk = &built.manifest.images[1].chunks[2];
    let mut bytes = built.bundle.clone();
    bytes[built.layout().payload.start + usize::try_from(chunk.offset).unwrap() + 1] ^= 0x80;
    let out = device_check(&bytes, NAME, &keyring(&[("vendor", &key)]), 1, Verify::Signatures);
    let want = format!(
        "verification failed for {NAME}: image 'kernel' chunk 2 (payload offset {}): \
         compressed bytes do not match the signed hash",
        chunk.offset
    );
    assert_eq!(out.pre_error(), want);
    assert_eq!(out.stream_error(), want);
    assert_eq!(out.stream.unwrap_err().kind(), ErrorKind::Verification);
}

#[test]
fn header_manifest_and_signature_errors_name_the_file() {
    let key = snakeoil(1);
    let built =
        build(&Spec { images: vec![("rootfs", mixed(1, 100))], signers: vec![("vendor", &key)], chunk_size: 4096 });
    let l = built.layout();
    let ring = keyring(&[("vendor", &key)]);
    let cases: [(usize, &str); 4] = [
        (0, ": header: not a libupdate bundle (bad magic)"),
        (l.manifest.start, ": manifest: not valid JSON"),
        // The last byte of the manifest JSON is its closing brace.
        (l.manifest.end - 1, ": manifest: not valid JSON"),
        (l.signatures.start + 40, ": the signature by trusted key 'vendor' is invalid"),
    ];
    for (at, want) in cases {
        let mut bytes = built.bundle.clone();
        bytes[at] ^= 0x01;
        let err = BundleReader::open(Cursor::new(&bytes), NAME)
            .and_then(|r| r.verify(&ring, 1, Verify::Signatures))
            .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with(&format!("verification failed for {NAME}")) && text.contains(want), "{at}: {text}");
        assert_eq!(err.kind(), ErrorKind::Verification);
    }
}

#[test]
fn a_changed_manifest_value_breaks_the_signature() {
    // Still valid JSON, still passes the structure check: only the signature catches it.
    let key = snakeoil(1);
    let built =
        build(&Spec { images: vec![("rootfs", mixed(1, 100))], signers: vec![("vendor", &key)], chunk_size: 4096 });
    let l = built.layout();
    let text = std::str::from_utf8(&built.bundle[l.manifest.clone()]).unwrap();
    let at = l.manifest.start + text.find("snakeoil-board").unwrap();
    let mut bytes = built.bundle.clone();
    bytes[at] = b'S';
    let reader = BundleReader::open(Cursor::new(&bytes), NAME).unwrap();
    assert_eq!(reader.manifest().compatible, "Snakeoil-board");
    let err = reader.verify(&keyring(&[("vendor", &key)]), 1, Verify::Signatures).unwrap_err().to_string();
    assert!(err.contains(NAME) && err.contains("the bundle was changed after signing"), "{err}");
}
