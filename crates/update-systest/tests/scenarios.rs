//! The system test's scenarios: real boots of a GPT disk with GRUB under QEMU (TCG), updated
//! over HTTPS with mutual TLS from `update-server`, with real power cuts. Each is ignored by a
//! plain `cargo test` (it needs QEMU and minutes); run them with
//!
//! ```text
//! cargo xtask system-test                                   # installs the packages, runs all
//! cargo test -p update-systest -- --ignored --list          # the scenarios
//! cargo test -p update-systest -- --ignored happy_path      # one of them
//! ```
//!
//! Options (`UPDATE_SYSTEST_LONG`, `UPDATE_SYSTEST_SEED`, `UPDATE_SYSTEST_CUTS`) and what each
//! scenario proves: docs/system-test.md and the `update_systest` crate documentation.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use update_systest::power_cut::{self, Class};
use update_systest::{delta, run, scenarios};

#[test]
#[ignore = "boots QEMU for minutes: cargo xtask system-test"]
fn happy_path() {
    run("happy_path", scenarios::happy_path);
}

#[test]
#[ignore = "boots QEMU for minutes: cargo xtask system-test"]
fn bad_update_falls_back() {
    run("bad_update_falls_back", scenarios::bad_update_falls_back);
}

#[test]
#[ignore = "boots QEMU for minutes: cargo xtask system-test"]
fn failed_release_is_never_installed_again() {
    run("failed_release_is_never_installed_again", scenarios::failed_release_is_never_installed_again);
}

#[test]
#[ignore = "boots QEMU for minutes: cargo xtask system-test"]
fn app_and_data_update() {
    run("app_and_data_update", scenarios::app_and_data_update);
}

#[test]
#[ignore = "boots QEMU for minutes: cargo xtask system-test"]
fn delta_update_resumes_after_power_cut() {
    run("delta_update_resumes_after_power_cut", delta::delta_update_resumes_after_power_cut);
}

#[test]
#[ignore = "boots QEMU for minutes: cargo xtask system-test"]
fn power_cuts_during_download() {
    run("power_cuts_during_download", |s| power_cut::scenario(s, Class::Download));
}

#[test]
#[ignore = "boots QEMU for minutes: cargo xtask system-test"]
fn power_cuts_during_install() {
    run("power_cuts_during_install", |s| power_cut::scenario(s, Class::Install));
}

#[test]
#[ignore = "boots QEMU for minutes: cargo xtask system-test"]
fn power_cuts_during_environment_write() {
    run("power_cuts_during_environment_write", |s| power_cut::scenario(s, Class::EnvWrite));
}

#[test]
#[ignore = "boots QEMU for minutes: cargo xtask system-test"]
fn power_cuts_during_mark_good() {
    run("power_cuts_during_mark_good", |s| power_cut::scenario(s, Class::MarkGood));
}
