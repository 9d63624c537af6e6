//! The GRUB environment block (`GrubEnvBlock::parse`, as GRUB reads it); what parses must
//! encode and parse back to the same variables.
#![no_main]

use libfuzzer_sys::fuzz_target;
use update_boot::grubenv::GrubEnvBlock;

fuzz_target!(|data: &[u8]| {
    let _ = GrubEnvBlock::has_signature(data);
    let Ok(block) = GrubEnvBlock::parse(data) else { return };
    let size = block.encoded_len();
    let bytes = block.encode(size).expect("a block fits in its own encoded length");
    assert_eq!(bytes.len(), size);
    let again = GrubEnvBlock::parse(&bytes).expect("an encoded block parses");
    assert_eq!(again, block, "round trip changed the variables");
    // Padded to the standard block size when it fits, as the store writes it.
    if let Ok(padded) = block.encode(1024) {
        assert_eq!(GrubEnvBlock::parse(&padded).ok(), Some(block));
    }
});
