//! The fleet server's push channel as the device reads it (`EventStream`: server-sent events,
//! lines bounded to 64 KiB).
#![no_main]

use libfuzzer_sys::fuzz_target;
use update_fetch::EventStream;

fuzz_target!(|data: &[u8]| {
    let stream = EventStream::from_reader(Box::new(std::io::Cursor::new(data.to_vec())), "https://fuzz/push");
    for event in stream {
        match event {
            // Lossy UTF-8: one character (up to 3 bytes) per input byte at most; an event without
            // an `event:` field is a "message" (the default name, not from the input).
            Ok(e) => assert!(
                e.data.chars().count() <= data.len()
                    && (e.event == "message" || e.event.chars().count() <= data.len())
            ),
            Err(_) => break,
        }
    }
});
