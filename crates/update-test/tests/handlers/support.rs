//! Payload builders shared by the handler tests.

use sha2::{Digest, Sha256};
use update_core::Version;
use update_core::component::{Component, ComponentName, Kind, Settings};

/// A tar of `entries`: a name ending in `/` is a directory, anything else a file (mode 0644).
pub fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, bytes) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        if name.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
        } else {
            h.set_mode(0o644);
            h.set_size(bytes.len() as u64);
        }
        b.append_data(&mut h, name, *bytes).unwrap();
    }
    b.into_inner().unwrap()
}

/// A tar with one raw entry whose name and type are written as given (no checks), after a
/// normal file: what a hostile or broken packer produces.
pub fn raw_tar(name: &[u8], kind: tar::EntryType, link: &str, data: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(2);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, "ok.txt", &b"ok"[..]).unwrap();
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_size(data.len() as u64);
    if !link.is_empty() {
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_cksum();
    b.append(&h, data).unwrap();
    b.into_inner().unwrap()
}

/// The verified component for `bytes`.
pub fn component(name: &str, kind: Kind, version: &str, bytes: &[u8], options: serde_json::Value) -> Component {
    let options: Settings = match options {
        serde_json::Value::Object(m) => m,
        _ => Settings::new(),
    };
    Component {
        name: ComponentName::new(name).unwrap(),
        kind,
        version: Version::parse(version).unwrap(),
        size: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(bytes)),
        requires: vec![],
        options,
    }
}
