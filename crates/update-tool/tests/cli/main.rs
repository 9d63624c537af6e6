//! `update-tool` as a build machine runs it: real processes, real files, documented exit codes
//! (docs/reference/update-tool.md). One binary, one module per command group.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod bundle;
mod cert;
mod key;
mod modes;
mod repo;

use std::path::Path;
use std::process::{Command, Output};

/// Runs `update-tool` with `args` in `dir`.
fn tool(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_update-tool")).current_dir(dir).args(args).output().unwrap()
}

/// The exit code, with the output shown when the assertion fails.
#[track_caller]
fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}
