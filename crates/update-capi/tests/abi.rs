//! The ABI check: libupdate.so exports exactly the symbols of include/update.symbols, and each is
//! declared in include/update.h. Within an ABI major version (`UPDATE_ABI_MAJOR`) symbols are
//! only added, never removed or changed: a symbol that disappears fails this test; a new one
//! fails it too until it is added to update.symbols (and `UPDATE_ABI_MINOR` is bumped).
//! Prototypes are held by tests/header.rs (the header is regenerated and compared); the C
//! program and the Python script check `update_abi_version()` against the header at run time.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::{crate_dir, lib_dir, run};

#[test]
fn the_library_exports_exactly_the_listed_symbols() {
    let listed_text = std::fs::read_to_string(crate_dir().join("include/update.symbols")).expect("update.symbols");
    let listed: BTreeSet<&str> =
        listed_text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();

    let out = run(Command::new("nm").args(["-D", "--defined-only"]).arg(lib_dir().join("libupdate.so")));
    let exported: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .map(|name| name.split('@').next().unwrap_or(name).to_owned())
        .collect();
    let exported: BTreeSet<&str> = exported.iter().map(String::as_str).collect();

    let removed: Vec<&&str> = listed.difference(&exported).collect();
    assert!(
        removed.is_empty(),
        "symbols of the ABI are gone from libupdate.so (never within a major version): {removed:?}"
    );
    let added: Vec<&&str> = exported.difference(&listed).collect();
    assert!(
        added.is_empty(),
        "libupdate.so exports symbols that include/update.symbols does not list (add them and bump UPDATE_ABI_MINOR): {added:?}"
    );

    let header = std::fs::read_to_string(crate_dir().join("include/update.h")).expect("update.h");
    for name in &listed {
        assert!(
            header.contains(&format!(" {name}(")) || header.contains(&format!("*{name}(")),
            "{name} is not declared in update.h"
        );
    }
}

#[test]
fn the_soname_carries_the_abi_major() {
    let out = run(Command::new("readelf").args(["-d"]).arg(lib_dir().join("libupdate.so")));
    let dynamic = String::from_utf8_lossy(&out.stdout);
    // The crate has no rlib to import the constant from: the header holds it.
    let header = std::fs::read_to_string(crate_dir().join("include/update.h")).expect("update.h");
    let major = header.lines().find_map(|l| l.strip_prefix("#define UPDATE_ABI_MAJOR ")).expect("UPDATE_ABI_MAJOR");
    let want = format!("Library soname: [libupdate.so.{}]", major.trim());
    assert!(dynamic.contains(&want), "readelf -d libupdate.so has no '{want}':\n{dynamic}");
}
