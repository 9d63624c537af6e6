//! update-server end to end: a real server on loopback (rustls, certificates from rcgen, a real
//! SQLite file), driven by reqwest. One test binary; one module per property.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[allow(dead_code, reason = "shared helpers; not every module uses each one")]
mod util;

mod browser;
mod dashboard;
mod device_api;
mod device_transport;
mod fleet_client;
mod internal_errors;
mod limits;
mod mtls;
mod operator;
mod paging;
mod push;
mod range;
mod rollout;
mod stored_text;
