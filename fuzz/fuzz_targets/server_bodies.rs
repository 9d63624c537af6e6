//! The server's device, operator and hawkBit DDI input: JSON bodies (check-in, event, DDI
//! feedback and configData) and query strings
//! (push, event list), with the checks the handlers run before the store. The input is
//! `query \0 body`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (query, body) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&[][..], data),
    };
    let query = String::from_utf8_lossy(query);
    assert!(update_server::fuzzing::request_bodies(body, &query) <= 6);
});
