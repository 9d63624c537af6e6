//! Integration tests of the `update` binary, run as a real process against a re-rooted device.
//! All in one test binary (ripgrep's layout); one module per property.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

mod audit_log;
mod config_crash;
mod config_files;
mod config_roundtrip;
mod external_driver;
mod json_schema;
mod keyring;
mod logging;
mod no_driver;
mod output;
