//! Format 2: components beside (or instead of) images, read back through verified readers.

use std::io::{Cursor, Read};

use update_bundle::{BundleReader, ComponentSource, CreateOptions};
use update_core::component::{ComponentName, Kind, Requirement, Settings};
use update_core::config::Verify;
use update_core::{SlotGroupName, Version};

use crate::fixture::{keyring, mixed, random_bytes, snakeoil};

struct Made {
    bundle: Vec<u8>,
    payloads: Vec<Vec<u8>>,
}

fn make(images: &[(&str, Vec<u8>)], components: &[(&str, Kind, Vec<u8>)], chunk: u64) -> Made {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = CreateOptions::new(Version::new(3, 0, 0), "snakeoil-board");
    opts.chunk_size = chunk;
    opts.created = "2026-01-01T00:00:00Z".into();
    for (i, (group, data)) in images.iter().enumerate() {
        let path = dir.path().join(format!("i{i}"));
        std::fs::write(&path, data).unwrap();
        opts.images.push((SlotGroupName::new(group).unwrap(), path));
    }
    for (i, (name, kind, data)) in components.iter().enumerate() {
        let path = dir.path().join(format!("c{i}"));
        std::fs::write(&path, data).unwrap();
        let mut options = Settings::new();
        options.insert("restart".into(), serde_json::json!(["systemctl", "restart", name]));
        opts.components.push(ComponentSource {
            name: ComponentName::new(name).unwrap(),
            kind: kind.clone(),
            version: Version::new(2, 1, u64::try_from(i).unwrap()),
            requires: if i > 0 {
                vec![Requirement {
                    component: ComponentName::new(components[0].0).unwrap(),
                    versions: semver::VersionReq::parse(">=2.1").unwrap(),
                }]
            } else {
                Vec::new()
            },
            options,
            path,
        });
    }
    opts.signers.push((update_core::KeyName::new("vendor").unwrap(), snakeoil(1)));
    let mut scratch = tempfile::tempfile().unwrap();
    let mut bundle = Vec::new();
    update_bundle::create(&opts, &mut scratch, &mut bundle).unwrap();
    Made { bundle, payloads: components.iter().map(|c| c.2.clone()).collect() }
}

fn read_all(bundle: &[u8]) -> Vec<std::io::Result<Vec<u8>>> {
    let ring = keyring(&[("vendor", &snakeoil(1))]);
    let mut v =
        BundleReader::open(Cursor::new(bundle), "x.bundle").unwrap().verify(&ring, 1, Verify::Signatures).unwrap();
    let n = v.manifest().components.len();
    (0..n)
        .map(|i| {
            let mut out = Vec::new();
            v.component_reader(i).unwrap().read_to_end(&mut out).map(|_| out)
        })
        .collect()
}

#[test]
fn components_round_trip_in_any_order_with_or_without_images() {
    let fw = random_bytes(1, 70_000);
    let app = mixed(2, 200_001);
    for images in [vec![("rootfs", random_bytes(3, 50_000))], vec![]] {
        let made = make(&images, &[("mcu", Kind::Firmware, fw.clone()), ("web-ui", Kind::App, app.clone())], 16 << 10);
        assert_eq!(u32::from_le_bytes(made.bundle[8..12].try_into().unwrap()), 2, "format 2 in the header");
        let got = read_all(&made.bundle);
        assert_eq!(got.len(), 2);
        for (g, want) in got.into_iter().zip(&made.payloads) {
            assert_eq!(&g.unwrap(), want);
        }
        // Out of order, and twice: each reader seeks to its own chunks.
        let ring = keyring(&[("vendor", &snakeoil(1))]);
        let mut v = BundleReader::open(Cursor::new(&made.bundle), "x.bundle")
            .unwrap()
            .verify(&ring, 1, Verify::Signatures)
            .unwrap();
        for i in [1, 0, 1] {
            let mut out = Vec::new();
            v.component_reader(i).unwrap().read_to_end(&mut out).unwrap();
            assert_eq!(out, made.payloads[i]);
        }
        assert!(v.component_reader(2).is_err());
        let m = v.manifest();
        assert_eq!(m.components[1].component.requires[0].component.as_str(), "mcu");
        assert_eq!(m.components[0].component.kind, Kind::Firmware);
        assert_eq!(m.components[0].component.options["restart"][2], "mcu");
    }
}

#[test]
fn a_bundle_without_components_stays_format_1() {
    let made = make(&[("rootfs", random_bytes(3, 5000))], &[], 4096);
    assert_eq!(u32::from_le_bytes(made.bundle[8..12].try_into().unwrap()), 1);
    let manifest_len = usize::try_from(u64::from_le_bytes(made.bundle[16..24].try_into().unwrap())).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&made.bundle[64..64 + manifest_len]).unwrap();
    assert_eq!(json["format"], 1);
    assert!(json.get("components").is_none(), "a format 1 manifest has no components key");
}

#[test]
fn every_changed_payload_byte_of_a_component_is_an_error_never_a_short_read() {
    let made = make(&[], &[("site", Kind::Data, random_bytes(9, 9000))], 4096);
    let payload_len = usize::try_from(u64::from_le_bytes(made.bundle[32..40].try_into().unwrap())).unwrap();
    let start = made.bundle.len() - payload_len;
    let ring = keyring(&[("vendor", &snakeoil(1))]);
    // Every 97th payload byte, flipped: the reader errors (the signatures still verify).
    for at in (start..made.bundle.len()).step_by(97) {
        let mut bad = made.bundle.clone();
        bad[at] ^= 0x40;
        let mut v =
            BundleReader::open(Cursor::new(&bad), "x.bundle").unwrap().verify(&ring, 1, Verify::Signatures).unwrap();
        let mut out = Vec::new();
        let e = v.component_reader(0).unwrap().read_to_end(&mut out).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "byte {at}");
        assert!(e.to_string().contains("component 'site' chunk"), "byte {at}: {e}");
        // Whole chunks before the damaged one may have been returned, never a byte of it.
        assert!(made.payloads[0].starts_with(&out), "byte {at}: unverified bytes returned");
        assert!(out.len() % 4096 == 0, "byte {at}: a partial chunk was returned");
        // check_payload refuses the same file before anything is written.
        let v =
            BundleReader::open(Cursor::new(&bad), "x.bundle").unwrap().verify(&ring, 1, Verify::Signatures).unwrap();
        assert!(v.check_payload().is_err(), "byte {at}");
    }
    // Truncated: the reader errors at the missing chunk.
    let short = &made.bundle[..made.bundle.len() - 10];
    let mut v =
        BundleReader::open(Cursor::new(short), "x.bundle").unwrap().verify(&ring, 1, Verify::Signatures).unwrap();
    let mut out = Vec::new();
    let e = v.component_reader(0).unwrap().read_to_end(&mut out).unwrap_err();
    assert!(e.to_string().contains("truncated"), "{e}");
}

#[test]
fn manifest_rules_for_components() {
    let made = make(&[("rootfs", random_bytes(3, 5000))], &[("mcu", Kind::Firmware, random_bytes(4, 5000))], 4096);
    let manifest_len = usize::try_from(u64::from_le_bytes(made.bundle[16..24].try_into().unwrap())).unwrap();
    let m: update_bundle::Manifest = serde_json::from_slice(&made.bundle[64..64 + manifest_len]).unwrap();
    let header = update_bundle::Header::decode(made.bundle[..64].try_into().unwrap(), "x").unwrap();
    m.check(&header, "x.bundle").unwrap();
    type Edit = fn(&mut update_bundle::Manifest);
    let cases: &[(Edit, &str)] = &[
        (|m| m.components.push(m.components[0].clone()), "component 'mcu' appears twice"),
        (|m| m.components[0].component.kind = Kind::Image, "component 'mcu' has kind image"),
        (|m| m.components[0].component.size += 1, "component 'mcu': chunks add up to 5000 bytes, it is 5001"),
        (|m| m.components[0].component.sha256 = "x".into(), "component 'mcu' has a malformed sha256"),
        (|m| m.components[0].chunks[0].offset += 1, "component 'mcu' chunk 0: offset"),
        (
            |m| {
                m.components[0].chunks.clear();
                m.components[0].component.size = 0;
            },
            "component 'mcu' is empty",
        ),
        (|m| m.format = 1, "manifest format 1 is not the header's 2"),
        (
            |m| {
                m.images.clear();
                m.components.clear();
            },
            "no images and no components",
        ),
    ];
    for (i, (edit, want)) in cases.iter().enumerate() {
        let mut bad = m.clone();
        edit(&mut bad);
        let e = bad.check(&header, "x.bundle").unwrap_err().to_string();
        assert!(e.contains(want), "case {i}: {e}");
    }
    // Format 1 cannot carry components.
    let mut one = m.clone();
    one.format = 1;
    let h1 = update_bundle::Header { format: 1, ..header };
    assert!(one.check(&h1, "x.bundle").unwrap_err().to_string().contains("format 1 manifest cannot list components"));
}

#[test]
fn create_refuses_image_kind_components_and_empty_bundles() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p");
    std::fs::write(&path, b"x").unwrap();
    let mut opts = CreateOptions::new(Version::new(1, 0, 0), "b");
    let mut scratch = tempfile::tempfile().unwrap();
    let e = update_bundle::create(&opts, &mut scratch, &mut Vec::new()).unwrap_err().to_string();
    assert!(e.contains("at least one --image or --component"), "{e}");
    opts.components.push(ComponentSource {
        name: ComponentName::new("os").unwrap(),
        kind: Kind::Image,
        version: Version::new(1, 0, 0),
        requires: Vec::new(),
        options: Settings::new(),
        path,
    });
    let e = update_bundle::create(&opts, &mut scratch, &mut Vec::new()).unwrap_err().to_string();
    assert!(e.contains("--image SLOT-GROUP=PATH"), "{e}");
}
