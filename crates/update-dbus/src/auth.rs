//! Who may change the device. Reading properties and the config is open to every caller; the
//! state-changing methods need root (the caller's uid, from the bus's `GetConnectionUnixUser`)
//! or, for other users, a yes from polkit's `CheckAuthorization` for the method's action
//! (dist/polkit/org.libupdate.update.policy) when polkit runs on the bus. Without polkit: root only.

use std::collections::HashMap;

use zbus::message::Header;
use zbus::zvariant::Value;

use crate::error::UpdateError;

const POLKIT: &str = "org.freedesktop.PolicyKit1";

/// A polkit action: what a state-changing method does.
#[derive(Debug, Clone, Copy)]
pub enum Action {
    /// `Check`: asks the source, queues what it finds.
    Check,
    /// `Install`.
    Install,
    /// `Cancel`, `MarkGood`, `Rollback`: change which slot boots.
    ManageSlots,
    /// `SetConfig`.
    Configure,
}

impl Action {
    /// The polkit action id.
    pub fn id(self) -> &'static str {
        match self {
            Action::Check => "org.libupdate.update.check",
            Action::Install => "org.libupdate.update.install",
            Action::ManageSlots => "org.libupdate.update.manage-slots",
            Action::Configure => "org.libupdate.update.configure",
        }
    }
}

/// `Ok` when the caller of the message with `header` may do `action`.
///
/// # Errors
/// `org.libupdate.Update1.Error.AccessDenied` when not; bus errors.
pub async fn authorize(conn: &zbus::Connection, header: &Header<'_>, action: Action) -> Result<(), UpdateError> {
    let sender = header.sender().ok_or_else(|| UpdateError::access_denied("the call names no sender".into()))?;
    let dbus = zbus::fdo::DBusProxy::new(conn).await?;
    let uid = dbus.get_connection_unix_user(sender.clone().into()).await.map_err(zbus::Error::from)?;
    if uid == 0 {
        return Ok(());
    }
    let polkit = zbus::names::BusName::try_from(POLKIT).map_err(zbus::Error::from)?;
    if !dbus.name_has_owner(polkit).await.unwrap_or(false) {
        return Err(UpdateError::access_denied(format!(
            "{} needs root: uid {uid} is not root and polkit is not running",
            action.id()
        )));
    }
    let subject: (&str, HashMap<&str, Value<'_>>) =
        ("system-bus-name", HashMap::from([("name", Value::from(sender.as_str()))]));
    let details: HashMap<&str, &str> = HashMap::new();
    // Flags 1: AllowUserInteraction (an authentication agent may ask for a password).
    let reply = conn
        .call_method(
            Some(POLKIT),
            "/org/freedesktop/PolicyKit1/Authority",
            Some("org.freedesktop.PolicyKit1.Authority"),
            "CheckAuthorization",
            &(subject, action.id(), details, 1u32, ""),
        )
        .await?;
    let (authorized, _challenge, _details): (bool, bool, HashMap<String, String>) = reply.body().deserialize()?;
    if authorized {
        Ok(())
    } else {
        Err(UpdateError::access_denied(format!("polkit does not allow uid {uid} {}", action.id())))
    }
}
