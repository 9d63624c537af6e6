//! Integration tests of update-repo: one binary, one module per property.
//!
//! Every fixture repository is built by code from `snakeoil` keys ([`fixture`]); each attack
//! test changes it the way an attacker could and checks that the device refuses it with an
//! error naming the role and the file.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod fixture;
mod handmade;

mod canonical_json;
mod delegations;
mod endless_data;
mod freeze;
mod key_types;
mod mix_and_match;
mod rollback;
mod root_chain;
mod signatures;
mod target_integrity;
mod tough_interop;
mod trust_anchor;
mod workflow;
