//! Gives `libupdate.so` its SONAME, `libupdate.so.<ABI major>`: programs linked against it
//! record that name, so a library of another major version is never loaded in its place
//! (Debian's `libupdate1` package ships it; docs/packaging.md).

fn main() {
    // Kept equal to `UPDATE_ABI_MAJOR` in src/lib.rs (tests/abi.rs checks the SONAME against it).
    const ABI_MAJOR: u32 = 1;
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libupdate.so.{ABI_MAJOR}");
    println!("cargo:rerun-if-changed=build.rs");
}
