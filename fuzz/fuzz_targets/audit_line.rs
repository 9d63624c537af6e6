//! One line of the audit log (`AuditRecord`, JSON); a record that parses must write and read
//! back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use update_core::audit::AuditRecord;

fuzz_target!(|data: &[u8]| {
    let Ok(record) = serde_json::from_slice::<AuditRecord>(data) else { return };
    let line = serde_json::to_string(&record).expect("a record serialises");
    assert!(!line.contains('\n'), "a record must stay on one line");
    let again: AuditRecord = serde_json::from_str(&line).expect("a written record parses");
    assert_eq!(again, record);
});
