//! `--source` and `--verify` apply to one run only (through the facade the CLI uses).

use libupdate::Overrides;
use update_core::config::{Config, SourceUrl, Verify};
use update_core::{ErrorKind, KeyName, Paths};

use crate::common::{Fixture, key};

#[test]
fn source_and_verify_overrides_apply_to_one_run_and_leave_the_stored_config() {
    let fx = Fixture::new();
    let paths = Paths::new(fx.root());
    // The configured source is empty; another directory has 2.0 signed by an untrusted key.
    std::fs::create_dir_all(fx.root().join("srv/other")).unwrap();
    let mut o = fx.options("2.0", "ok");
    o.signers = vec![(KeyName::new("stranger").unwrap(), key(99))];
    let published = fx.publish(&o);
    let moved = fx.root().join("srv/other").join(published.file_name().unwrap());
    std::fs::rename(&published, &moved).unwrap();
    std::fs::write(fx.source().join("README"), "no bundles here").unwrap();
    let stored = std::fs::read(paths.config_file()).unwrap();

    // Configured source: nothing eligible.
    assert!(fx.updater().check().unwrap().available.is_none());
    // --source: the other directory is used, and its bundle fails verification (untrusted key).
    let mut up = fx.updater();
    up.apply_overrides(&Overrides { source: Some(SourceUrl::new("file:///srv/other").unwrap()), ..Default::default() });
    // A check whose every candidate fails verification is an error, as for --now (exit 6).
    let e = up.check().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Verification, "{e}");
    assert!(e.to_string().contains("0 valid signature(s)"), "{e}");
    // --source and --verify false: the unsigned-by-us bundle is accepted for this run.
    let mut up = fx.updater();
    up.apply_overrides(&Overrides {
        source: Some(SourceUrl::new("file:///srv/other").unwrap()),
        verify: Some(Verify::IntegrityOnly),
        ..Default::default()
    });
    assert_eq!(up.check().unwrap().available.unwrap().info.version.to_string(), "2.0.0");
    // The stored config is byte for byte what it was; a new run is back to the stored policy.
    assert_eq!(std::fs::read(paths.config_file()).unwrap(), stored);
    assert_eq!(Config::load(&paths).unwrap().verify, Verify::Signatures);
    let mut up = fx.updater();
    up.apply_overrides(&Overrides { source: Some(SourceUrl::new("file:///srv/other").unwrap()), ..Default::default() });
    let e = up.install_now(true).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Verification, "{e}");
    // With --verify false the install goes through (integrity still checked) and is logged.
    let mut up = fx.updater();
    up.apply_overrides(&Overrides {
        source: Some(SourceUrl::new("file:///srv/other").unwrap()),
        verify: Some(Verify::IntegrityOnly),
        ..Default::default()
    });
    assert_eq!(up.install_now(true).unwrap().installed.unwrap().slot, "B");
    let log = std::fs::read_to_string(fx.root().join("var/log/update.log")).unwrap();
    assert!(log.contains("without checking signatures"), "{log}");
    assert_eq!(std::fs::read(paths.config_file()).unwrap(), stored);
}
