//! The small part of CBOR (RFC 8949) that SMP bodies use: maps keyed by text, integers, byte and
//! text strings, arrays and booleans.
//!
//! The decoder takes hostile input (bytes from a serial line): every length is checked against
//! the bytes that remain before anything is allocated, nesting is bounded, and nothing panics.
//! Definite and indefinite lengths are accepted (Zephyr answers with indefinite maps); tags,
//! floats and simple values other than `false`/`true`/`null`/`undefined` are refused. The encoder
//! writes definite lengths in the shortest form.

use std::fmt;

/// How deep arrays and maps may nest in a decoded item (SMP bodies nest two or three levels).
pub const MAX_DEPTH: usize = 16;

/// One CBOR data item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// An unsigned integer (major type 0).
    Uint(u64),
    /// A negative integer `-1 - n` (major type 1), stored as the `n` on the wire.
    Nint(u64),
    /// A byte string.
    Bytes(Vec<u8>),
    /// A text string.
    Text(String),
    /// An array.
    Array(Vec<Value>),
    /// A map, in wire order.
    Map(Vec<(Value, Value)>),
    /// `false` or `true`.
    Bool(bool),
    /// `null` (or `undefined`).
    Null,
}

/// Why bytes are not a CBOR item we accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub &'static str);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad CBOR: {}", self.0)
    }
}

impl Value {
    /// A text key's value in a map (`None` for other items or a missing key).
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => entries.iter().find_map(|(k, v)| match k {
                Value::Text(t) if t == key => Some(v),
                _ => None,
            }),
            _ => None,
        }
    }

    /// The value as an unsigned integer.
    #[must_use]
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Uint(n) => Some(*n),
            _ => None,
        }
    }

    /// The value as a signed integer (negative integers below `i64::MIN` are `None`).
    #[must_use]
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Uint(n) => i64::try_from(*n).ok(),
            Value::Nint(n) => i64::try_from(*n).ok().map(|n| -1 - n),
            _ => None,
        }
    }

    /// The value as a boolean.
    #[must_use]
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The value as text.
    #[must_use]
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }

    /// The value as bytes.
    #[must_use]
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The value as an array.
    #[must_use]
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// A map from text keys (the shape of every SMP body).
    #[must_use]
    pub fn map<const N: usize>(entries: [(&str, Value); N]) -> Value {
        Value::Map(entries.into_iter().map(|(k, v)| (Value::Text(k.to_owned()), v)).collect())
    }

    /// Appends the encoding of this item to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Value::Uint(n) => head(out, 0, *n),
            Value::Nint(n) => head(out, 1, *n),
            Value::Bytes(b) => {
                head(out, 2, b.len() as u64);
                out.extend_from_slice(b);
            }
            Value::Text(t) => {
                head(out, 3, t.len() as u64);
                out.extend_from_slice(t.as_bytes());
            }
            Value::Array(items) => {
                head(out, 4, items.len() as u64);
                for i in items {
                    i.encode_into(out);
                }
            }
            Value::Map(entries) => {
                head(out, 5, entries.len() as u64);
                for (k, v) in entries {
                    k.encode_into(out);
                    v.encode_into(out);
                }
            }
            Value::Bool(false) => out.push(0xf4),
            Value::Bool(true) => out.push(0xf5),
            Value::Null => out.push(0xf6),
        }
    }

    /// The encoding of this item.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Decodes exactly one item that fills `bytes`.
    ///
    /// # Errors
    /// Truncated or trailing bytes, unsupported types, invalid UTF-8 text, too deep nesting.
    pub fn decode(bytes: &[u8]) -> Result<Value, DecodeError> {
        let mut d = Decoder { bytes, pos: 0 };
        let v = d.item(0)?;
        if d.pos != bytes.len() {
            return Err(DecodeError("trailing bytes after the item"));
        }
        Ok(v)
    }
}

fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    // Each arm's range makes the narrowing exact.
    #[allow(clippy::cast_possible_truncation)]
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

struct Decoder<'a> {
    bytes: &'a [u8],
    pos: usize,
}

/// The argument of a head: a number, or the indefinite-length marker.
enum Arg {
    Len(u64),
    Indefinite,
}

impl Decoder<'_> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = *self.bytes.get(self.pos).ok_or(DecodeError("truncated"))?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError("length beyond the end of the input"));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn arg(&mut self, info: u8) -> Result<Arg, DecodeError> {
        let n = match info {
            0..=23 => u64::from(info),
            24 => u64::from(self.byte()?),
            25 => self.take(2).map(|b| u64::from(u16::from_be_bytes([b[0], b[1]])))?,
            26 => self.take(4).map(|b| u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])))?,
            27 => self.take(8).map(|b| u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))?,
            31 => return Ok(Arg::Indefinite),
            _ => return Err(DecodeError("reserved additional information")),
        };
        Ok(Arg::Len(n))
    }

    /// A length that must fit in what is left (each element takes at least one byte).
    fn bounded(&self, n: u64) -> Result<usize, DecodeError> {
        usize::try_from(n)
            .ok()
            .filter(|n| *n <= self.remaining())
            .ok_or(DecodeError("length beyond the end of the input"))
    }

    fn at_break(&mut self) -> Result<bool, DecodeError> {
        match self.bytes.get(self.pos) {
            Some(0xff) => {
                self.pos += 1;
                Ok(true)
            }
            Some(_) => Ok(false),
            None => Err(DecodeError("indefinite item without its break")),
        }
    }

    fn string(&mut self, major: u8, arg: Arg) -> Result<Vec<u8>, DecodeError> {
        match arg {
            Arg::Len(n) => {
                let n = self.bounded(n)?;
                Ok(self.take(n)?.to_vec())
            }
            Arg::Indefinite => {
                let mut out = Vec::new();
                while !self.at_break()? {
                    let b = self.byte()?;
                    if b >> 5 != major {
                        return Err(DecodeError("chunk of another type in an indefinite string"));
                    }
                    match self.arg(b & 0x1f)? {
                        Arg::Len(n) => {
                            let n = self.bounded(n)?;
                            out.extend_from_slice(self.take(n)?);
                        }
                        Arg::Indefinite => return Err(DecodeError("nested indefinite string")),
                    }
                }
                Ok(out)
            }
        }
    }

    fn item(&mut self, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError("nested too deeply"));
        }
        let b = self.byte()?;
        let (major, info) = (b >> 5, b & 0x1f);
        match major {
            0 | 1 => match self.arg(info)? {
                Arg::Len(n) if major == 0 => Ok(Value::Uint(n)),
                Arg::Len(n) => Ok(Value::Nint(n)),
                Arg::Indefinite => Err(DecodeError("indefinite integer")),
            },
            2 => {
                let a = self.arg(info)?;
                Ok(Value::Bytes(self.string(2, a)?))
            }
            3 => {
                let a = self.arg(info)?;
                String::from_utf8(self.string(3, a)?)
                    .map(Value::Text)
                    .map_err(|_| DecodeError("text string is not UTF-8"))
            }
            4 => {
                let mut items = Vec::new();
                match self.arg(info)? {
                    Arg::Len(n) => {
                        for _ in 0..self.bounded(n)? {
                            items.push(self.item(depth + 1)?);
                        }
                    }
                    Arg::Indefinite => {
                        while !self.at_break()? {
                            items.push(self.item(depth + 1)?);
                        }
                    }
                }
                Ok(Value::Array(items))
            }
            5 => {
                let mut entries = Vec::new();
                match self.arg(info)? {
                    Arg::Len(n) => {
                        // Each entry takes at least two bytes.
                        let n = self.bounded(n.saturating_mul(2))? / 2;
                        for _ in 0..n {
                            let k = self.item(depth + 1)?;
                            entries.push((k, self.item(depth + 1)?));
                        }
                    }
                    Arg::Indefinite => {
                        while !self.at_break()? {
                            let k = self.item(depth + 1)?;
                            entries.push((k, self.item(depth + 1)?));
                        }
                    }
                }
                Ok(Value::Map(entries))
            }
            6 => Err(DecodeError("tags are not accepted")),
            _ => match info {
                20 => Ok(Value::Bool(false)),
                21 => Ok(Value::Bool(true)),
                22 | 23 => Ok(Value::Null),
                _ => Err(DecodeError("floats and other simple values are not accepted")),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_encodings_from_rfc_8949_appendix_a() {
        let cases: &[(Value, &str)] = &[
            (Value::Uint(0), "00"),
            (Value::Uint(23), "17"),
            (Value::Uint(24), "1818"),
            (Value::Uint(1000), "1903e8"),
            (Value::Uint(1_000_000), "1a000f4240"),
            (Value::Uint(1_000_000_000_000), "1b000000e8d4a51000"),
            (Value::Nint(0), "20"),
            (Value::Nint(999), "3903e7"),
            (Value::Bytes(vec![1, 2, 3, 4]), "4401020304"),
            (Value::Text("IETF".into()), "6449455446"),
            (Value::Array(vec![Value::Uint(1), Value::Uint(2), Value::Uint(3)]), "83010203"),
            (Value::map([("a", Value::Uint(1))]), "a1616101"),
            (Value::Bool(true), "f5"),
            (Value::Null, "f6"),
        ];
        for (v, h) in cases {
            assert_eq!(hex::encode(v.encode()), *h, "{v:?}");
            assert_eq!(&Value::decode(&hex::decode(h).unwrap()).unwrap(), v, "{h}");
        }
        assert_eq!(Value::Nint(999).as_i64(), Some(-1000));
    }

    #[test]
    fn indefinite_lengths_are_accepted() {
        // {_ "a": 1, "b": [_ 2, 3]} and (_ h'0102', h'03')
        let v = Value::decode(&hex::decode("bf61610161629f0203ffff").unwrap()).unwrap();
        assert_eq!(v.get("a"), Some(&Value::Uint(1)));
        assert_eq!(v.get("b").and_then(Value::as_array).map(<[Value]>::len), Some(2));
        let v = Value::decode(&hex::decode("5f42010241 03ff".replace(' ', "")).unwrap()).unwrap();
        assert_eq!(v, Value::Bytes(vec![1, 2, 3]));
    }

    #[test]
    fn hostile_input_is_refused_without_panics_or_huge_allocations() {
        for bad in [
            "",                   // nothing
            "1b00",               // truncated argument
            "5bffffffffffffffff", // byte string of 2^64-1 bytes
            "9bffffffffffffffff", // array of 2^64-1 items
            "bbffffffffffffffff", // map of 2^64-1 entries
            "bf6161",             // indefinite map without value and break
            "c0",                 // tag
            "fb3ff0000000000000", // float
            "62c328",             // invalid UTF-8
            "0000",               // trailing bytes
            "1c",                 // reserved info
            "5f9fff",             // indefinite bytes with an array chunk
        ] {
            assert!(Value::decode(&hex::decode(bad).unwrap()).is_err(), "{bad} accepted");
        }
        let deep = vec![0x81u8; MAX_DEPTH + 2];
        assert!(Value::decode(&deep).is_err());
    }
}
