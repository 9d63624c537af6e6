//! Canonical JSON: the bytes that TUF signatures cover.
//!
//! TUF signs "the canonical JSON form (OLPC) of `signed`". We produce the form of the TUF
//! reference implementation (python-tuf's securesystemslib): no whitespace, object keys sorted
//! by code point, strings with only `"` and `\` escaped (everything else, control characters and
//! non-ASCII included, written raw as UTF-8), integers only (a float is refused).
//!
//! `tough` (olpc-cjson) differs in two corners: it sorts keys by their *quoted* form (so `"a b"`
//! sorts before `"a"`, because a space is less than the closing quote) and it normalises strings
//! to Unicode NFC. The verifier therefore also accepts a signature over the tough key order
//! (both orders are exact encodings of the same value, so this admits no other value); strings
//! that are not NFC are not normalised, so tough-signed metadata with such strings is refused.
//! The publishing side refuses to sign metadata on which the dialects would disagree
//! (`check_portable`, feature `publish`), so what we publish verifies everywhere.

use std::cmp::Ordering;

use serde_json::Value;

/// The value cannot be written as canonical JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not representable as canonical JSON: {0}")]
pub struct NotCanonical(pub String);

#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyOrder {
    /// By code point of the raw key (TUF reference implementation).
    CodePoint,
    /// By bytes of the quoted, escaped key (olpc-cjson, used by tough).
    Quoted,
}

/// The canonical JSON bytes of a value (TUF reference form).
///
/// # Errors
/// [`NotCanonical`] when the value holds a floating-point number.
pub fn to_canonical_json(value: &Value) -> Result<Vec<u8>, NotCanonical> {
    let mut out = Vec::with_capacity(1024);
    encode(value, &mut out, KeyOrder::CodePoint)?;
    Ok(out)
}

/// The forms a signature over `value` may cover: the reference form, and the tough key order
/// when that differs.
pub(crate) fn signing_forms(value: &Value) -> Result<(Vec<u8>, Option<Vec<u8>>), NotCanonical> {
    let primary = to_canonical_json(value)?;
    let mut quoted = Vec::with_capacity(primary.len());
    encode(value, &mut quoted, KeyOrder::Quoted)?;
    Ok((primary.clone(), (quoted != primary).then_some(quoted)))
}

#[cfg(feature = "publish")]
/// Checks that every TUF implementation computes the same canonical bytes for `value`: object
/// keys order the same both ways and every string is in Unicode NFC. The publishing side runs
/// this before signing.
///
/// # Errors
/// [`NotCanonical`] naming the offending key or string.
pub fn check_portable(value: &Value) -> Result<(), NotCanonical> {
    let (_, alternative) = signing_forms(value)?;
    if alternative.is_some() {
        return Err(NotCanonical(
            "two object keys of which one is a prefix of the other followed by a space, '!' or a control \
             character (e.g. \"a\" and \"a b\") sort differently in the TUF reference and tough; rename one"
                .into(),
        ));
    }
    check_nfc(value)
}

#[cfg(feature = "publish")]
fn check_nfc(value: &Value) -> Result<(), NotCanonical> {
    let bad = |s: &str| {
        (!unicode_normalization::is_nfc(s))
            .then(|| NotCanonical(format!("the string {s:?} is not in Unicode NFC; tough would sign it normalised")))
    };
    match value {
        Value::String(s) => bad(s).map_or(Ok(()), Err),
        Value::Array(a) => a.iter().try_for_each(check_nfc),
        Value::Object(o) => o.iter().try_for_each(|(k, v)| bad(k).map_or_else(|| check_nfc(v), Err)),
        _ => Ok(()),
    }
}

fn encode(value: &Value, out: &mut Vec<u8>, order: KeyOrder) -> Result<(), NotCanonical> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.extend_from_slice(i.to_string().as_bytes());
            } else if let Some(u) = n.as_u64() {
                out.extend_from_slice(u.to_string().as_bytes());
            } else {
                return Err(NotCanonical(format!("floating-point number {n}")));
            }
        }
        Value::String(s) => encode_str(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                encode(item, out, order)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            match order {
                KeyOrder::CodePoint => update_core::sort::sort(&mut keys),
                KeyOrder::Quoted => update_core::sort::sort_by(&mut keys, |a, b| quoted_cmp(a, b)),
            }
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                encode_str(key, out);
                out.push(b':');
                encode(&map[key.as_str()], out, order)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn encode_str(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s.as_bytes() {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

fn quoted_cmp(a: &str, b: &str) -> Ordering {
    let mut qa = Vec::with_capacity(a.len() + 2);
    let mut qb = Vec::with_capacity(b.len() + 2);
    encode_str(a, &mut qa);
    encode_str(b, &mut qb);
    qa.cmp(&qb)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn canon(v: &Value) -> String {
        String::from_utf8(to_canonical_json(v).unwrap()).unwrap()
    }

    #[test]
    fn reference_vectors() {
        // securesystemslib's own assertions.
        assert_eq!(canon(&json!([1, 2, 3])), "[1,2,3]");
        assert_eq!(canon(&json!([])), "[]");
        assert_eq!(canon(&json!({})), "{}");
        assert_eq!(canon(&json!({"A": [99]})), r#"{"A":[99]}"#);
        assert_eq!(canon(&json!({"A": true})), r#"{"A":true}"#);
        assert_eq!(canon(&json!({"B": false})), r#"{"B":false}"#);
        assert_eq!(canon(&json!({"x": 3, "y": 2})), r#"{"x":3,"y":2}"#);
        assert_eq!(canon(&json!({"x": 3, "y": null})), r#"{"x":3,"y":null}"#);
        assert_eq!(canon(&json!("a\"b\\c\n\u{1}é")), "\"a\\\"b\\\\c\n\u{1}é\"");
        assert_eq!(
            canon(&json!({"b": 1, "a": {"d": -4, "c": 18446744073709551615u64}})),
            r#"{"a":{"c":18446744073709551615,"d":-4},"b":1}"#
        );
        assert!(to_canonical_json(&json!({"x": 8.0})).is_err());
    }

    #[test]
    #[cfg(feature = "publish")]
    fn key_order_dialects() {
        let v = json!({"a": 1, "a b": 2});
        assert_eq!(canon(&v), r#"{"a":1,"a b":2}"#);
        let (_, alt) = signing_forms(&v).unwrap();
        assert_eq!(String::from_utf8(alt.unwrap()).unwrap(), r#"{"a b":2,"a":1}"#);
        assert!(check_portable(&v).is_err());
        assert!(check_portable(&json!({"a": 1, "ab": 2, "b": ["é"]})).is_ok());
        assert!(check_portable(&json!({"x": "e\u{301}"})).is_err());
    }
}
