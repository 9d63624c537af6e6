//! Component handlers with real parts: the shared handler suite against the `data`, `files`,
//! `app` and `firmware` (a simulated MCU on a pty) handlers, the `fwupd` handler against the real
//! fwupd daemon and its test device, and the example out-of-tree handler, the data policies, and
//! the out-of-tree protocol's refusals.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod data;
mod external;
mod files;
mod firmware;
mod fwupd;
mod support;
