//! The file's length is fixed by the signed header: a bundle cut short anywhere, or with
//! anything appended, is refused, and the error says so.

use update_core::config::Verify;

use crate::fixture::{device_check, expected_pieces, small};

#[test]
fn truncation_at_every_length_is_refused() {
    let (built, ring) = small(&[("rootfs", 3000), ("app", 700)], 1024);
    let l = built.layout();
    for len in 0..built.bundle.len() {
        let out = device_check(&built.bundle[..len], "short.bundle", &ring, 1, Verify::Signatures);
        let part = if len < l.manifest.start {
            "inside the header"
        } else if len < l.signatures.start {
            "inside the manifest"
        } else if len < l.payload.start {
            "inside the signature block"
        } else {
            "inside the image '"
        };
        for e in [out.pre_error(), out.stream_error()] {
            assert!(e.contains("short.bundle") && e.contains("truncated") && e.contains(part), "{len} bytes: {e}");
        }
        let all = expected_pieces(&built);
        assert!(out.received.len() < all.len() && out.received == all[..out.received.len()]);
    }
    eprintln!("truncation: {} lengths, every one refused", built.bundle.len());
}

#[test]
fn trailing_bytes_are_refused() {
    let (built, ring) = small(&[("rootfs", 3000), ("app", 700)], 1024);
    let tails: [&[u8]; 4] = [&[0], &[0xff; 4096], b"LIBUPDB\0", &built.bundle];
    for tail in tails {
        let bytes = [built.bundle.as_slice(), tail].concat();
        let out = device_check(&bytes, "long.bundle", &ring, 1, Verify::Signatures);
        for e in [out.pre_error(), out.stream_error()] {
            assert!(e.contains("long.bundle") && e.contains("trailing bytes after the payload"), "{e}");
        }
        // The check comes after the last chunk: what the sink got is still exactly the images.
        assert_eq!(out.received, expected_pieces(&built));
    }
}
