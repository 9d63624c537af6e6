//! A U-Boot environment copy (`decode_copy`: CRC, flag, `name=value\0` data) in single and
//! redundant layouts, and the data area alone; what decodes must encode and decode back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use update_boot::ubootenv::{UbootEnv, decode_copy, newer_copy};

fuzz_target!(|data: &[u8]| {
    for redundant in [false, true] {
        if let Ok(copy) = decode_copy(data, redundant) {
            if let Ok(bytes) = copy.env.encode_copy(data.len(), copy.flag) {
                assert_eq!(bytes.len(), data.len());
                assert_eq!(decode_copy(&bytes, redundant).ok(), Some(copy.clone()), "round trip changed the copy");
            }
            if let Some(flag) = copy.flag {
                assert!(newer_copy(flag, flag.wrapping_add(1)) <= 1);
            }
        }
    }
    // The data area without a CRC (the fuzzer cannot forge CRCs, so reach the parser directly).
    let env = UbootEnv::parse_data(data);
    if let Ok(bytes) = env.encode_data(data.len() + 1) {
        assert_eq!(UbootEnv::parse_data(&bytes), env, "round trip changed the variables");
    }
});
