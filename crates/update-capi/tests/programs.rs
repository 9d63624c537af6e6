//! The C library used from C and from Python, each doing a real install on a simulated device
//! (plain files, the native driver, a real signed bundle): tests/c/install.c built with `gcc`
//! against include/update.h and libupdate.so (and once more statically against libupdate.a),
//! and tests/python/install.py with only `ctypes`. Each program checks the calls' results
//! itself; this test then checks the device: the new release is in slot B and the device boots
//! it.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{crate_dir, lib_dir, run, show};

use base64::Engine;
use ed25519_dalek::SigningKey;
use update_boot::Slot;
use update_core::{KeyName, SlotGroupName};
use update_test::device::{SimDevice, SimOptions, make_kernel, make_rootfs};

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn public(seed: u8) -> String {
    base64::engine::general_purpose::STANDARD.encode(key(seed).verifying_key().as_bytes())
}

/// A device running 1.0.0 with a bundle of 2.0.0 signed by key 7 in /srv/update (the programs
/// set the source and add the key themselves).
struct Device {
    dir: tempfile::TempDir,
    sim: SimDevice,
}

impl Device {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts =
            SimOptions { loop_devices: false, rootfs_mib: 16, boot_mib: 2, data_mib: 8, ..SimOptions::default() };
        let sim = SimDevice::create(&dir.path().join("device"), &opts).expect("simulated device");
        let images = dir.path().join("images");
        std::fs::create_dir_all(&images).expect("images dir");
        let (rootfs, kernel) = (images.join("rootfs.img"), images.join("kernel.img"));
        make_rootfs(&rootfs, "2.0.0", "ok", 12, 512).expect("rootfs image");
        make_kernel(&kernel, "2.0.0", 256 << 10).expect("kernel image");
        let mut o =
            update_bundle::CreateOptions::new(update_core::parse_version("2.0.0").expect("version"), "demo-board");
        o.images = vec![
            (SlotGroupName::new("rootfs").expect("name"), rootfs),
            (SlotGroupName::new("kernel").expect("name"), kernel),
        ];
        o.signers = vec![(KeyName::new("vendor").expect("name"), key(7))];
        o.chunk_size = 256 << 10;
        let source = sim.root.join("srv/update");
        std::fs::create_dir_all(&source).expect("source dir");
        let mut scratch = tempfile::tempfile().expect("scratch");
        let mut out = std::fs::File::create(source.join("release-2.0.0.bundle")).expect("bundle file");
        update_bundle::create(&o, &mut scratch, &mut out).expect("bundle");
        Self { dir, sim }
    }

    /// After a program ran: 2.0.0 is in slot B, and the device boots it.
    fn assert_installed(&self) {
        assert_eq!(self.sim.read_rootfs_file(Slot::B, "/etc/version").expect("slot B").trim(), "2.0.0");
        assert_eq!(self.sim.read_rootfs_file(Slot::A, "/etc/version").expect("slot A").trim(), "1.0.0");
        assert_eq!(self.sim.reboot().expect("reboot"), Slot::B, "the device boots the new slot");
    }
}

/// Compiles tests/c/install.c into `exe`, against libupdate.so or (with `static_lib`)
/// libupdate.a.
fn gcc(exe: &Path, static_lib: bool) {
    let lib = lib_dir();
    let mut cmd = Command::new("gcc");
    cmd.args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic"])
        .arg("-I")
        .arg(crate_dir().join("include"))
        .arg(crate_dir().join("tests/c/install.c"))
        .arg("-o")
        .arg(exe)
        .arg("-pthread");
    if static_lib {
        // What a program linking the archive needs besides it (rustc --print native-static-libs).
        cmd.arg(lib.join("libupdate.a")).args(["-lgcc_s", "-lutil", "-lrt", "-lpthread", "-lm", "-ldl", "-lc"]);
    } else {
        cmd.arg("-L").arg(&lib).arg("-lupdate");
    }
    run(&mut cmd);
}

fn check_c_output(out: &Output) {
    println!("{}", show(out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("install.c: all checks passed"), "{}", show(out));
    assert!(stderr.contains("wrong key: verification: "), "the wrong key is reported as such:\n{}", show(out));
    assert!(stderr.contains("cancelled: install cancelled"), "the cancel is reported:\n{}", show(out));
}

#[test]
fn a_c_program_installs_an_update_through_libupdate_so() {
    let dev = Device::new();
    let exe = dev.dir.path().join("install");
    gcc(&exe, false);
    // The program records the SONAME, libupdate.so.1, as an installed system provides it (the
    // ldconfig link); cargo writes only libupdate.so.
    let loader_dir = dev.dir.path().join("lib");
    std::fs::create_dir(&loader_dir).unwrap();
    std::os::unix::fs::symlink(lib_dir().join("libupdate.so"), loader_dir.join("libupdate.so.1")).unwrap();
    let out =
        run(Command::new(&exe).env("LD_LIBRARY_PATH", &loader_dir).arg(&dev.sim.root).arg(public(7)).arg(public(9)));
    check_c_output(&out);
    dev.assert_installed();
}

#[test]
fn a_c_program_installs_an_update_through_libupdate_a() {
    let dev = Device::new();
    let exe = dev.dir.path().join("install-static");
    gcc(&exe, true);
    // No libupdate.so anywhere the loader looks: the program carries the library.
    let out = run(Command::new(&exe).env_remove("LD_LIBRARY_PATH").arg(&dev.sim.root).arg(public(7)).arg(public(9)));
    check_c_output(&out);
    dev.assert_installed();
}

/// The packages libupdate1 and libupdate-dev as installed (dist/deb/build.sh, then
/// dist/deb/smoke.sh installs them): tests/c/install.c built with the flags `pkg-config`
/// gives for the installed libupdate.pc (the installed update.h, the libupdate.so link) and run
/// with the loader's default paths, which find libupdate.so.1 where ldconfig put it. Runs only
/// when `UPDATE_CAPI_INSTALLED=1` (CI sets it after installing the packages); otherwise it says
/// so and passes.
#[test]
fn a_c_program_built_against_the_installed_packages_installs_an_update() {
    if std::env::var_os("UPDATE_CAPI_INSTALLED").is_none_or(|v| v != "1") {
        eprintln!("skipped: UPDATE_CAPI_INSTALLED=1 is not set (the libupdate1 and libupdate-dev packages)");
        return;
    }
    let pkg_config = |args: &[&str]| -> Vec<String> {
        let out = run(Command::new("pkg-config").args(args).arg("libupdate"));
        String::from_utf8(out.stdout).expect("pkg-config output").split_whitespace().map(str::to_owned).collect()
    };
    let cflags = pkg_config(&["--cflags"]);
    let libs = pkg_config(&["--libs"]);
    let libdir = pkg_config(&["--variable=libdir"]).concat();
    assert!(Path::new(&libdir).join("libupdate.so.1").is_file(), "{libdir}/libupdate.so.1 is not installed");
    assert!(Path::new("/usr/include/update.h").is_file(), "/usr/include/update.h is not installed");

    let dev = Device::new();
    let exe = dev.dir.path().join("install-installed");
    // No -I of the source tree: the header is the installed one.
    run(Command::new("gcc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic"])
        .args(&cflags)
        .arg(crate_dir().join("tests/c/install.c"))
        .arg("-o")
        .arg(&exe)
        .arg("-pthread")
        .args(&libs));
    let needed = run(Command::new("readelf").arg("-d").arg(&exe));
    assert!(
        String::from_utf8_lossy(&needed.stdout).contains("Shared library: [libupdate.so.1]"),
        "the program does not record libupdate.so.1:\n{}",
        show(&needed)
    );
    let out = run(Command::new(&exe).env_remove("LD_LIBRARY_PATH").arg(&dev.sim.root).arg(public(7)).arg(public(9)));
    check_c_output(&out);
    dev.assert_installed();
}

/// Validates `doc` against docs/reference/schemas/<name>.schema.json: the documents of the C
/// API are those of `update … --json`.
fn assert_schema(name: &str, doc: &serde_json::Value) {
    let path = crate_dir().join(format!("../../docs/reference/schemas/{name}.schema.json"));
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("schema")).expect("schema is JSON");
    let validator = jsonschema::draft202012::options().should_validate_formats(true).build(&schema).expect("schema");
    let errors: Vec<String> = validator.iter_errors(doc).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{name} does not match its schema:\n{}\n{doc:#}", errors.join("\n"));
    assert_eq!(doc["schema"], format!("libupdate/{name}/1"));
}

#[test]
fn a_python_ctypes_script_installs_an_update() {
    let dev = Device::new();
    let docs = dev.dir.path().join("documents");
    std::fs::create_dir_all(&docs).expect("documents dir");
    let out = run(Command::new("python3")
        .arg(crate_dir().join("tests/python/install.py"))
        .arg(lib_dir().join("libupdate.so"))
        .arg(&dev.sim.root)
        .arg(public(7))
        .arg(public(9))
        .arg(&docs));
    println!("{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("install.py: all checks passed"), "{}", show(&out));
    for name in ["key-list", "check", "install", "status", "history"] {
        let text = std::fs::read_to_string(docs.join(format!("{name}.json"))).expect("the script kept the document");
        assert_schema(name, &serde_json::from_str(&text).expect("JSON"));
    }
    dev.assert_installed();
}
