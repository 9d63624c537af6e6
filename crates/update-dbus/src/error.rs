//! D-Bus errors: one name per stable error kind of [`update_core::ErrorKind`] (the kinds the
//! `update` command maps to exit codes), `org.libupdate.Update1.Error.<Kind>` in CamelCase:
//! `busy` is `org.libupdate.Update1.Error.Busy`, `not-supported` is `…Error.NotSupported`.
//! A caller that is not authorized gets `org.libupdate.Update1.Error.AccessDenied`.

use update_core::ErrorKind;

/// An error reply.
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.libupdate.Update1.Error")]
pub enum UpdateError {
    /// A bus error.
    #[zbus(error)]
    ZBus(zbus::Error),
    /// The caller may not do this (not root, and polkit did not allow it).
    AccessDenied(String),
    /// [`ErrorKind::Failure`].
    Failure(String),
    /// [`ErrorKind::Usage`].
    Usage(String),
    /// [`ErrorKind::Config`].
    Config(String),
    /// [`ErrorKind::NotImplemented`].
    NotImplemented(String),
    /// [`ErrorKind::NotSupported`].
    NotSupported(String),
    /// [`ErrorKind::Verification`].
    Verification(String),
    /// [`ErrorKind::Refused`].
    Refused(String),
    /// [`ErrorKind::Busy`].
    Busy(String),
    /// [`ErrorKind::Io`].
    Io(String),
    /// [`ErrorKind::Source`].
    Source(String),
    /// [`ErrorKind::Keyring`].
    Keyring(String),
}

impl UpdateError {
    /// The error for `kind` with `message`.
    pub fn new(kind: ErrorKind, message: String) -> Self {
        match kind {
            ErrorKind::Usage => Self::Usage(message),
            ErrorKind::Config => Self::Config(message),
            ErrorKind::NotImplemented => Self::NotImplemented(message),
            ErrorKind::NotSupported => Self::NotSupported(message),
            ErrorKind::Verification => Self::Verification(message),
            ErrorKind::Refused => Self::Refused(message),
            ErrorKind::Busy => Self::Busy(message),
            ErrorKind::Io => Self::Io(message),
            ErrorKind::Source => Self::Source(message),
            ErrorKind::Keyring => Self::Keyring(message),
            _ => Self::Failure(message),
        }
    }

    /// `org.libupdate.Update1.Error.AccessDenied`.
    pub fn access_denied(message: String) -> Self {
        Self::AccessDenied(message)
    }

    /// The D-Bus error name, as text (for the `Finished` signal).
    pub fn dbus_name(&self) -> String {
        zbus::DBusError::name(self).to_string()
    }

    /// The message, as text.
    pub fn message(&self) -> String {
        match self {
            Self::ZBus(e) => e.to_string(),
            other => zbus::DBusError::description(other).unwrap_or_default().to_owned(),
        }
    }
}

impl From<update_core::Error> for UpdateError {
    fn from(e: update_core::Error) -> Self {
        Self::new(e.kind(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind the CLI maps to an exit code has its own name, derived from the kind's text.
    #[test]
    fn every_error_kind_has_its_dbus_name() {
        let kinds = [
            ErrorKind::Failure,
            ErrorKind::Usage,
            ErrorKind::Config,
            ErrorKind::NotImplemented,
            ErrorKind::NotSupported,
            ErrorKind::Verification,
            ErrorKind::Refused,
            ErrorKind::Busy,
            ErrorKind::Io,
            ErrorKind::Source,
            ErrorKind::Keyring,
        ];
        for kind in kinds {
            let camel: String = kind
                .as_str()
                .split('-')
                .map(|w| {
                    let mut c = w.chars();
                    c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
                })
                .collect();
            let e = UpdateError::new(kind, "m".into());
            assert_eq!(e.dbus_name(), format!("org.libupdate.Update1.Error.{camel}"), "{kind:?}");
            assert_eq!(e.message(), "m");
        }
        assert_eq!(UpdateError::access_denied("no".into()).dbus_name(), "org.libupdate.Update1.Error.AccessDenied");
    }
}
