//! URL paths. `{id}` stands for a [`DeviceId`](crate::DeviceId) (fill it with [`device`]);
//! `{*path}` for the rest of the path. The templates are axum's syntax, so the server routes
//! them as they are.

/// The API prefix; a change that breaks clients gets a new one.
pub const API: &str = "/api/v1";
/// `GET`: 200 when the server and its store answer.
pub const HEALTH: &str = "/api/v1/health";
/// `POST` a device's [`Report`](crate::Report), answered by a [`CheckInAnswer`](crate::CheckInAnswer).
pub const CHECKIN: &str = "/api/v1/device/checkin";
/// `POST` one [`Event`](crate::Event); 204.
pub const EVENTS: &str = "/api/v1/device/events";
/// `GET` the device's push stream ([`push`](crate::push)); with `?device-id=ID` only when
/// the server trusts device-declared ids.
pub const PUSH: &str = "/api/v1/device/push";
/// The query parameter naming the device on [`PUSH`] (see [`Identified`](crate::Identified)).
pub const PUSH_DEVICE_ID: &str = "device-id";
/// `GET` (operator): the inventory.
pub const DEVICES: &str = "/api/v1/devices";
/// `GET` (operator): one device.
pub const DEVICE: &str = "/api/v1/devices/{id}";
/// `GET` (operator): a device's events, `?after=SEQ&limit=N`.
pub const DEVICE_EVENTS: &str = "/api/v1/devices/{id}/events";
/// `POST` (operator): ask a device to check now.
pub const CHECK_NOW: &str = "/api/v1/devices/{id}/check-now";
/// `GET` (viewer) the releases; `POST` (operator) a [`NewRelease`](crate::rollout::NewRelease).
pub const RELEASES: &str = "/api/v1/releases";
/// `GET` (viewer): one release, `{release}` its id.
pub const RELEASE: &str = "/api/v1/releases/{release}";
/// `GET` (viewer) a tag's devices; `POST` (operator) [`TagDevices`](crate::rollout::TagDevices) to add.
pub const TAG_DEVICES: &str = "/api/v1/tags/{tag}/devices";
/// `DELETE` (operator): a device leaves a tag.
pub const TAG_DEVICE: &str = "/api/v1/tags/{tag}/devices/{id}";
/// `GET` (viewer) the deployments; `POST` (operator) a [`NewDeployment`](crate::rollout::NewDeployment).
pub const DEPLOYMENTS: &str = "/api/v1/deployments";
/// `GET` (viewer): one deployment with its waves' counts, `{deployment}` its id.
pub const DEPLOYMENT: &str = "/api/v1/deployments/{deployment}";
/// `POST` (operator): pause a deployment.
pub const DEPLOYMENT_PAUSE: &str = "/api/v1/deployments/{deployment}/pause";
/// `POST` (operator): resume a paused deployment, accepting its current wave's failures.
pub const DEPLOYMENT_RESUME: &str = "/api/v1/deployments/{deployment}/resume";
/// `POST` (operator): abort a deployment for good.
pub const DEPLOYMENT_ABORT: &str = "/api/v1/deployments/{deployment}/abort";
/// `GET` (admin): the operator audit log, `?after=SEQ&limit=N`.
pub const AUDIT: &str = "/api/v1/audit";
/// `GET` (admin): checks the operator audit log's hash chain.
pub const AUDIT_VERIFY: &str = "/api/v1/audit/verify";
/// `GET`/`HEAD`: the repository's files, read-only.
pub const REPO: &str = "/repo/{*path}";

/// `template` with `{id}` replaced by `id`.
#[must_use]
pub fn device(template: &str, id: &crate::DeviceId) -> String {
    template.replace("{id}", id.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DeviceId;

    #[test]
    fn routes_are_under_the_api_prefix_and_filled_per_device() {
        for r in [
            HEALTH,
            CHECKIN,
            EVENTS,
            PUSH,
            DEVICES,
            DEVICE,
            DEVICE_EVENTS,
            CHECK_NOW,
            RELEASES,
            RELEASE,
            TAG_DEVICES,
            TAG_DEVICE,
            DEPLOYMENTS,
            DEPLOYMENT,
            DEPLOYMENT_PAUSE,
            DEPLOYMENT_RESUME,
            DEPLOYMENT_ABORT,
            AUDIT,
            AUDIT_VERIFY,
        ] {
            assert!(r.starts_with(API) && r[API.len()..].starts_with('/'), "{r}");
        }
        assert!(CHECK_NOW.ends_with(&format!("/{}", crate::push::CHECK_NOW)));
        let id = DeviceId::parse("SN:12@site").unwrap();
        assert_eq!(device(CHECK_NOW, &id), "/api/v1/devices/SN:12@site/check-now");
        assert_eq!(device(DEVICE, &id), "/api/v1/devices/SN:12@site");
    }
}
