//! Conditional and Range request headers (RFC 9110) as the repository handler decides them:
//! a 206 must lie inside the file. Input: 8 bytes of file length (little endian), a byte of
//! flags, then `name: value` header lines.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let length = u64::from_le_bytes(data[..8].try_into().unwrap_or_default()) % (1 << 40);
    let flags = data[8];
    let mut headers = Vec::new();
    for line in data[9..].split(|&b| b == b'\n') {
        if let Some(i) = line.iter().position(|&b| b == b':') {
            headers.push((&line[..i], line[i + 1..].trim_ascii()));
        }
    }
    let last_modified = (flags & 2 != 0).then_some(1_700_000_000);
    match update_server::fuzzing::range_decision(flags & 1 != 0, &headers, length, "\"1-64-5\"", last_modified) {
        Ok(Some((first, last))) => assert!(first <= last && last < length, "206 {first}-{last} of {length}"),
        Ok(None) => {}
        Err(status) => assert!(matches!(status, 304 | 412 | 416)),
    }
});
