//! [`DeviceId`]: who a device is.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::limits::{Invalid, MAX_DEVICE_ID};

/// A device's id: the subject common name of its certificate. 1 to 128 bytes of ASCII letters,
/// digits and `.`, `_`, `-`, `:`, `@` (so it can appear in a URL path unescaped).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct DeviceId(String);

impl DeviceId {
    /// Checks `s`.
    ///
    /// # Errors
    /// Why `s` is not a device id (field `device-id`).
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        if s.is_empty() || s.len() > MAX_DEVICE_ID {
            return Err(Invalid::new("device-id", format!("must be 1 to {MAX_DEVICE_ID} bytes")));
        }
        if let Some(c) = s.chars().find(|c| !(c.is_ascii_alphanumeric() || ".-_:@".contains(*c))) {
            return Err(Invalid::new(
                "device-id",
                format!("{c:?} is not allowed (letters, digits and . _ - : @ only)"),
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// The id.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<DeviceId> for String {
    fn from(id: DeviceId) -> Self {
        id.0
    }
}

impl TryFrom<String> for DeviceId {
    type Error = Invalid;

    fn try_from(s: String) -> Result<Self, Invalid> {
        Self::parse(&s)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn device_ids() {
        for ok in ["device-0001", "a", "SN:1234.5_x@site", &"x".repeat(MAX_DEVICE_ID)] {
            assert_eq!(DeviceId::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["", "a/b", "a b", "dev\u{e9}", "..%2f", &"x".repeat(MAX_DEVICE_ID + 1), "a\nb"] {
            assert_eq!(DeviceId::parse(bad).unwrap_err().field, "device-id", "{bad:?}");
            assert!(serde_json::from_value::<DeviceId>(serde_json::json!(bad)).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn device_ids_round_trip(s in "[A-Za-z0-9._:@-]{1,128}") {
            let id = DeviceId::parse(&s).unwrap();
            let json = serde_json::to_string(&id).unwrap();
            prop_assert_eq!(&json, &serde_json::to_string(&s).unwrap());
            prop_assert_eq!(serde_json::from_str::<DeviceId>(&json).unwrap(), id);
        }
    }
}
