//! include/update.h is exactly what cbindgen makes from the sources and cbindgen.toml now.
//! `UPDATE_BLESS=1 cargo test -p update-capi --test header` rewrites it after a deliberate change
//! (then update include/update.symbols and docs/reference/c-api.md with it).

use std::path::Path;

#[test]
fn the_checked_in_header_is_the_generated_one() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut fresh = Vec::new();
    cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen parses the crate")
        .write(&mut fresh);
    let fresh = String::from_utf8(fresh).expect("UTF-8 header");
    let path = crate_dir.join("include/update.h");
    if std::env::var_os("UPDATE_BLESS").is_some() {
        std::fs::create_dir_all(crate_dir.join("include")).expect("create include/");
        std::fs::write(&path, &fresh).expect("write include/update.h");
        return;
    }
    let checked_in =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e} (UPDATE_BLESS=1 writes it)", path.display()));
    assert!(
        checked_in == fresh,
        "{} differs from what cbindgen makes of the sources; run UPDATE_BLESS=1 cargo test -p update-capi --test header\n--- fresh ---\n{fresh}",
        path.display()
    );
}
