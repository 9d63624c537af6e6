//! Endless data: no file is read past its signed length, or past the client's limit when no
//! metadata gives one.

use std::io::Read;

use serde_json::Value;
use update_repo::{Limits, MetaFile, Refusal, Role, TargetName, Timestamp};

use crate::fixture::{BUNDLE, Fixture, assert_refused};

#[test]
fn oversized_timestamp_is_refused() {
    let f = Fixture::new();
    // Validly signed, but padded past the 16 KiB limit.
    f.edit::<Timestamp>("metadata/timestamp.json", &[&f.keys.timestamp], |t| {
        t.extra.insert("x-padding".into(), Value::String("x".repeat(20_000)));
    });
    assert_refused(f.refresh("a"), Role::Timestamp, "metadata/timestamp.json", |r| {
        *r == Refusal::TooLarge { limit: 16 * 1024 }
    });
}

#[test]
fn oversized_root_is_refused() {
    let f = Fixture::new();
    f.write("metadata/2.root.json", &vec![b' '; 600 * 1024]);
    assert_refused(f.refresh("a"), Role::Root, "metadata/2.root.json", |r| {
        *r == Refusal::TooLarge { limit: 512 * 1024 }
    });
}

#[test]
fn oversized_snapshot_is_refused() {
    let f = Fixture::new();
    let file = f.snapshot_file();
    let mut bytes = f.read(&file);
    let length = bytes.len() as u64;
    bytes.extend_from_slice(&[b' '; 4096]);
    f.write(&file, &bytes);
    assert_refused(f.refresh("a"), Role::Snapshot, &file, |r| *r == Refusal::TooLarge { limit: length });
}

#[test]
fn oversized_targets_metadata_is_refused() {
    let f = Fixture::new();
    let file = f.targets_file();
    let mut bytes = f.read(&file);
    let length = bytes.len() as u64;
    bytes.extend_from_slice(&[b'\n'; 100]);
    f.write(&file, &bytes);
    assert_refused(f.refresh("a"), Role::Targets, &file, |r| *r == Refusal::TooLarge { limit: length });
}

#[test]
fn snapshot_without_a_signed_length_is_bounded_by_the_limit() {
    let f = Fixture::new();
    f.edit::<Timestamp>("metadata/timestamp.json", &[&f.keys.timestamp], |t| {
        let v = t.meta["snapshot.json"].version;
        t.meta.insert(
            "snapshot.json".into(),
            MetaFile { version: v, length: None, hashes: None, extra: Default::default() },
        );
    });
    let limits = Limits { max_snapshot_size: 256, ..Limits::default() };
    let file = f.snapshot_file();
    assert_refused(f.updater("a").with_limits(limits).refresh(f.now), Role::Snapshot, &file, |r| {
        *r == Refusal::TooLarge { limit: 256 }
    });
    // With the default limit the same repository is fine.
    f.refresh("a").unwrap();
}

#[test]
fn oversized_target_is_refused() {
    let f = Fixture::new();
    let trusted = f.refresh("a").unwrap();
    let name = TargetName::new(BUNDLE).unwrap();
    let file = format!("targets/{}", trusted.target_file(&name).unwrap());
    let mut data = f.read(&file);
    data.extend_from_slice(b"and then some more");
    f.write(&file, &data);
    let err = f.updater("a").fetch_target(&trusted, &name).unwrap_err();
    assert!(matches!(err.refusal(), Some(Refusal::TooLarge { .. })), "{err}");
    let msg = err.to_string();
    assert!(msg.starts_with(&format!("target {BUNDLE} ({file}) refused: larger than")), "{msg}");
}

#[test]
fn a_streamed_target_is_cut_at_its_signed_length() {
    let f = Fixture::new();
    let trusted = f.refresh("a").unwrap();
    let info = trusted.target(&TargetName::new(BUNDLE).unwrap()).unwrap();
    // A server that never stops sending.
    let mut endless = std::io::repeat(b'x');
    let mut checker = info.checker();
    let mut buf = [0u8; 7];
    let mut read = 0u64;
    let err = loop {
        let n = endless.read(&mut buf).unwrap();
        read += n as u64;
        if let Err(e) = checker.update(&buf[..n]) {
            break e;
        }
        assert!(read < 1024, "the checker never stopped the stream");
    };
    assert_eq!(err, Refusal::TooLarge { limit: info.length });
    assert!(read <= info.length + buf.len() as u64);
}
