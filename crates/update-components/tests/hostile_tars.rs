//! Hostile archives: each is refused with a clear error, the live tree stays byte for byte what
//! it was, and nothing outside the tree is written. Each class has more than one example.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::os::unix::fs::FileTypeExt;

use support::{Device, Item, component, raw_end, raw_entry, snapshot, tar_of, update};
use tar::EntryType;
use update_components::files::FilesHandler;
use update_core::ErrorKind;
use update_core::component::{Handler, Kind};

const CANARY: &[u8] = b"root:x:0:0:canary\n";

fn device() -> Device {
    let d = Device::new("site", Kind::Files, serde_json::json!({ "path": "/opt/site" }));
    std::fs::create_dir_all(d.path("/etc")).unwrap();
    std::fs::write(d.path("/etc/passwd"), CANARY).unwrap();
    let v1 = tar_of(&[Item::File("index.html", b"one", 0o644), Item::Dir("d", 0o755)]);
    update(&mut FilesHandler::new(), &d.ctx("t1"), &component("site", Kind::Files, "1.0.0", &v1), &v1);
    d
}

/// A raw entry: name, type, link target, data.
type RawEntry<'a> = (&'a [u8], EntryType, &'a [u8], &'a [u8]);

fn raw(entries: &[RawEntry<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, link, data) in entries {
        raw_entry(&mut out, name, *kind, link, data.len() as u64, data);
    }
    raw_end(&mut out);
    out
}

/// Installs `payload` as v2 and checks it is refused with `words`, changing nothing live.
fn refused(payload: &[u8], options: serde_json::Value, words: &str) {
    refused_as(payload, payload, options, words);
}

/// As [`refused`], for a component the manifest declares as `declared` (a stream cut short).
fn refused_as(payload: &[u8], declared: &[u8], options: serde_json::Value, words: &str) {
    let d = device();
    let before_live = snapshot(&d.path("/opt/site/"));
    let outside = |d: &Device| {
        let mut s = snapshot(d.root());
        // Our own place and state may change (the inactive side, the record); nothing else.
        s.retain(|p, _| !p.starts_with("opt/site.d") && !p.starts_with("var/lib/update/components"));
        s
    };
    let before_outside = outside(&d);
    let mut c = component("site", Kind::Files, "2.0.0", declared);
    c.options = options.as_object().unwrap().clone();
    let mut h = FilesHandler::new();
    let ctx = d.ctx("t2");
    let e = h.install(&ctx, &c, &mut &payload[..]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Refused, "{e}");
    assert!(e.to_string().contains(words), "expected {words:?} in: {e}");
    assert!(e.to_string().contains("files component site"), "the component is named: {e}");
    assert_eq!(snapshot(&d.path("/opt/site/")), before_live, "live tree changed by: {e}");
    assert_eq!(outside(&d), before_outside, "something outside the tree changed by: {e}");
    assert_eq!(std::fs::read(d.path("/etc/passwd")).unwrap(), CANARY);
    // Activation of a refused install is refused too; rollback leaves v1.
    assert!(h.activate(&ctx, &c).is_err());
    h.rollback(&ctx, &c).unwrap();
    assert_eq!(snapshot(&d.path("/opt/site/")), before_live);
    assert_eq!(h.status(&ctx).unwrap().active.unwrap().to_string(), "1.0.0");
}

fn none() -> serde_json::Value {
    serde_json::json!({})
}

#[test]
fn absolute_paths_are_refused() {
    refused(&raw(&[(b"/etc/passwd", EntryType::Regular, b"", b"owned")]), none(), "an absolute path");
    refused(
        &raw(&[(b"ok.txt", EntryType::Regular, b"", b"x"), (b"/tmp/x", EntryType::Directory, b"", b"")]),
        none(),
        "an absolute path",
    );
}

#[test]
fn dot_dot_is_refused() {
    refused(&raw(&[(b"../../../etc/passwd", EntryType::Regular, b"", b"owned")]), none(), "'..'");
    refused(&raw(&[(b"d/../../x", EntryType::Regular, b"", b"owned")]), none(), "'..'");
    refused(&raw(&[(b"d/..", EntryType::Directory, b"", b"")]), none(), "'..'");
}

#[test]
fn nothing_is_written_through_an_earlier_symlink() {
    refused(
        &raw(&[(b"etc", EntryType::Symlink, b"../../../etc", b""), (b"etc/passwd", EntryType::Regular, b"", b"owned")]),
        none(),
        "through the symbolic link",
    );
    refused(
        &raw(&[(b"a/b", EntryType::Symlink, b"/", b""), (b"a/b/etc/passwd", EntryType::Regular, b"", b"owned")]),
        none(),
        "through the symbolic link",
    );
    // A directory entry through the link, and a hard link placed through it.
    refused(
        &raw(&[(b"l", EntryType::Symlink, b"/etc", b""), (b"l/new", EntryType::Directory, b"", b"")]),
        none(),
        "through the symbolic link",
    );
}

#[test]
fn hard_links_outside_the_tree_are_refused() {
    refused(&raw(&[(b"h", EntryType::Link, b"/etc/passwd", b"")]), none(), "outside the tree");
    refused(&raw(&[(b"h", EntryType::Link, b"../../../etc/passwd", b"")]), none(), "outside the tree");
    refused(
        &raw(&[(b"l", EntryType::Symlink, b"/etc", b""), (b"h", EntryType::Link, b"l/passwd", b"")]),
        none(),
        "not a directory of the tree",
    );
    refused(
        &raw(&[(b"l", EntryType::Symlink, b"/etc/passwd", b""), (b"h", EntryType::Link, b"l", b"")]),
        none(),
        "not a regular file",
    );
    refused(&raw(&[(b"h", EntryType::Link, b"not-yet.txt", b"")]), none(), "not a regular file");
}

#[test]
fn device_nodes_and_fifos_need_the_signed_option() {
    refused(&raw(&[(b"null", EntryType::Char, b"", b"")]), none(), "a device node");
    refused(&raw(&[(b"sda", EntryType::Block, b"", b"")]), none(), "a device node");
    refused(&raw(&[(b"pipe", EntryType::Fifo, b"", b"")]), none(), "a FIFO");
    refused(
        &raw(&[(b"null", EntryType::Char, b"", b"")]),
        serde_json::json!({ "allow-devices": false }),
        "allow-devices",
    );

    // Allowed by the signed option: created.
    let d = device();
    let payload = raw(&[(b"pipe", EntryType::Fifo, b"", b""), (b"zero", EntryType::Char, b"", b"")]);
    let mut c = component("site", Kind::Files, "2.0.0", &payload);
    c.options = serde_json::json!({ "allow-devices": true }).as_object().unwrap().clone();
    update(&mut FilesHandler::new(), &d.ctx("t2"), &c, &payload);
    assert!(std::fs::symlink_metadata(d.path("/opt/site/pipe")).unwrap().file_type().is_fifo());
    assert!(std::fs::symlink_metadata(d.path("/opt/site/zero")).unwrap().file_type().is_char_device());
}

#[test]
fn absurd_sizes_are_refused_before_writing() {
    let mut huge = Vec::new();
    raw_entry(&mut huge, b"big.bin", EntryType::Regular, b"", 1 << 40, b"only a few bytes");
    raw_end(&mut huge);
    refused(&huge, none(), "claims 1099511627776 bytes");
    // Just over what the payload could hold.
    let mut over = Vec::new();
    raw_entry(&mut over, b"a.bin", EntryType::Regular, b"", 4000, &[7u8; 512]);
    raw_end(&mut over);
    refused(&over, none(), "claims 4000 bytes");
}

#[test]
fn truncated_and_malformed_archives_are_refused() {
    let whole = tar_of(&[Item::File("a.bin", &[1u8; 3000], 0o644), Item::File("b.bin", b"b", 0o644)]);
    refused_as(&whole[..1500], &whole, none(), "truncated");
    refused_as(&whole[..3900], &whole, none(), "truncated");
    refused_as(&whole[..512], &whole, none(), "truncated");
    let mut bad_sum = whole.clone();
    bad_sum[148] ^= 0x5; // the checksum field of the first header
    refused(&bad_sum, none(), "malformed");
    refused(&raw(&[(b"sock", EntryType::new(b'9'), b"", b"")]), none(), "unsupported entry type");
}
