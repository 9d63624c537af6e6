//! The native engine end to end: simulated devices on real loop devices (when root) with real
//! ext4 images, through the libupdate facade. One test binary, one module per property.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

mod components;
mod components_sigkill;

mod app_update;

mod firmware_update;

mod fwupd_update;

mod ab_cycle;
mod daemon;
mod delta_sigkill;
mod fleet;
mod honest_state;
mod hooks;
mod https;
mod overrides;
mod refusals;
mod repository;
mod rooted;
mod sigkill;
mod streaming;
mod torture;
