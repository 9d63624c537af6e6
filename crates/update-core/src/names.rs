//! Validated names: key names and slot-group names.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

fn check_name(what: &str, text: &str) -> Result<()> {
    let ok = !text.is_empty()
        && text.len() <= 64
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !text.starts_with('.')
        && !text.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidValue {
            what: what.into(),
            value: text.into(),
            reason: "use 1 to 64 characters from A-Z a-z 0-9 - _ . , not starting with '.' or '-'".into(),
        })
    }
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps a name.
            ///
            /// # Errors
            /// [`Error::InvalidValue`] when the name has characters outside `A-Za-z0-9-_.`.
            pub fn new(text: &str) -> Result<Self> {
                check_name($what, text)?;
                Ok(Self(text.to_owned()))
            }

            /// The name as text.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(s: String) -> Result<Self> {
                Self::new(&s)
            }
        }

        impl From<$name> for String {
            fn from(n: $name) -> String {
                n.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Self::new(s)
            }
        }
    };
}

name_type!(
    /// The name of a trusted key in the keyring (`vendor`, `release-2026`).
    KeyName,
    "key name"
);
name_type!(
    /// The name of a slot group (`rootfs`, `kernel`, `firmware`, `app`).
    SlotGroupName,
    "slot group name"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        assert!(KeyName::new("vendor-2026_a.b").is_ok());
        for bad in ["", "../x", "a b", ".hidden", "-flag", "x/y", &"a".repeat(65)] {
            assert!(KeyName::new(bad).is_err(), "{bad:?} accepted");
        }
    }
}
