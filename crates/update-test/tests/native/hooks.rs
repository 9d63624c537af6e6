//! A bundle's post-install hook runs after the images are verified in the target slot and before
//! the switch; a failing hook refuses the install and leaves the running slot primary.

use update_boot::Slot;
use update_bundle::HookKind;
use update_core::ErrorKind;

use crate::common::Fixture;

fn with_hook(fx: &Fixture, script: &str) {
    let hook = fx.images.join("post-install.sh");
    std::fs::write(&hook, script).unwrap();
    let mut o = fx.options("2.0", "ok");
    o.hooks = vec![(HookKind::PostInstall, hook)];
    fx.publish(&o);
}

#[test]
fn post_install_hook_runs_with_the_target_slot() {
    let fx = Fixture::new();
    let marker = fx.dir.path().join("hook-ran");
    with_hook(
        &fx,
        &format!(
            "#!/bin/sh\necho \"$UPDATE_TARGET_SLOT $UPDATE_VERSION $UPDATE_SLOT_ROOTFS\" > {}\n",
            marker.display()
        ),
    );
    let r = fx.updater().install_now(true).unwrap();
    assert_eq!(r.installed.unwrap().slot, "B");
    let ran = std::fs::read_to_string(&marker).unwrap();
    assert!(ran.starts_with("B 2.0.0 "), "{ran}");
    assert!(ran.trim_end().ends_with("rootfs-b"), "{ran}");
    assert_eq!(fx.dev.reboot().unwrap(), Slot::B);
}

#[test]
fn a_failing_hook_refuses_the_install_and_the_running_slot_stays_primary() {
    let fx = Fixture::new();
    with_hook(&fx, "#!/bin/sh\necho migration failed >&2\nexit 3\n");
    let e = fx.updater().install_now(true).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Refused, "{e}");
    assert!(e.to_string().contains("post-install hook failed"), "{e}");
    let s = fx.updater().status().unwrap();
    assert_eq!(s.primary.as_deref(), Some("A"));
    assert_eq!(fx.dev.reboot().unwrap(), Slot::A);
    assert_eq!(fx.dev.reboot().unwrap(), Slot::A);
}
