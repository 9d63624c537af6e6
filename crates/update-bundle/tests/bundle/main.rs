//! Integration tests of the native bundle format (docs/reference/bundle.md), one binary with
//! one module per property. Bundles are made by `update_bundle::create` from `snakeoil` keys;
//! tampered and hand-built variants are derived from them in the tests, never stored.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod fixture;

mod components;
mod delta;
mod format_layout;
mod hand_built;
mod messages;
mod round_trip;
mod signatures;
mod tamper_sweep;
mod truncation;
