//! Canonical JSON agrees with olpc-cjson (what tough signs) exactly when the publishing side
//! calls the value portable; everything we sign therefore verifies in tough.

use proptest::prelude::*;
use serde::Serialize;
use serde_json::Value;
use update_repo::canonical::{check_portable, to_canonical_json};

fn olpc(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, olpc_cjson::CanonicalFormatter::new());
    value.serialize(&mut ser).unwrap();
    out
}

fn json_value() -> impl Strategy<Value = Value> {
    // Quotes, backslashes, control characters, a space and '!' (which sort before the closing
    // quote), non-ASCII in NFC and a combining mark (not NFC after a letter).
    let text = "[a-c \"\\\\!\\x00-\\x1f~é日\u{301}]{0,5}";
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        text.prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("[ab !\"\\\\\u{1}é]{0,3}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn canonical_json_matches_olpc_cjson_exactly_when_portable(value in json_value()) {
        let ours = to_canonical_json(&value).unwrap();
        prop_assert_eq!(check_portable(&value).is_ok(), ours == olpc(&value));
        // An exact encoding: it parses back to the same value (canonical JSON writes control
        // characters raw, which JSON parsers refuse, so only without them).
        if !ours.iter().any(|b| *b < 0x20) {
            prop_assert_eq!(serde_json::from_slice::<Value>(&ours).unwrap(), value);
        }
    }
}

#[test]
fn floats_are_not_canonical() {
    assert!(to_canonical_json(&serde_json::json!({"a": [1.5]})).is_err());
}
