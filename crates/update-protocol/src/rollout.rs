//! Rollouts (issue 14): releases, device tags, deployments in waves, and the assignment a
//! device finds in its check-in answer.
//!
//! The server decides *which* signed release a device should run and *from when*; it never
//! hands the device bytes or keys. An [`Assignment`] names a target of the signed repository
//! and its version: the device still resolves that target through the repository's TUF
//! metadata, so a compromised server can at most choose among releases the repository signs
//! (and the device's anti-rollback keeps it from choosing an older one).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::limits::{Invalid, MAX_FIELD, check_text};
use crate::window::MaintenanceWindow;

/// Longest accepted tag, in bytes.
pub const MAX_TAG: usize = 64;
/// Most waves a deployment may have.
pub const MAX_WAVES: usize = 16;
/// Most devices one tag request may name.
pub const MAX_TAG_DEVICES: usize = 10_000;

/// A device group's name: 1 to 64 bytes of ASCII letters, digits and `.`, `_`, `-`, `:`
/// (safe unescaped in a URL path).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Tag(String);

impl Tag {
    /// Checks `s`.
    ///
    /// # Errors
    /// Why `s` is not a tag (field `tag`).
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        if s.is_empty() || s.len() > MAX_TAG {
            return Err(Invalid::new("tag", format!("must be 1 to {MAX_TAG} bytes")));
        }
        if let Some(c) = s.chars().find(|c| !(c.is_ascii_alphanumeric() || "._-:".contains(*c))) {
            return Err(Invalid::new("tag", format!("{c:?} is not allowed (letters, digits and . _ - : only)")));
        }
        Ok(Self(s.to_owned()))
    }

    /// The tag.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Tag> for String {
    fn from(t: Tag) -> Self {
        t.0
    }
}

impl TryFrom<String> for Tag {
    type Error = Invalid;

    fn try_from(s: String) -> Result<Self, Invalid> {
        Self::parse(&s)
    }
}

/// Checks a repository target name: what `update-tool repo add --name` gave, as listed in the
/// signed targets metadata. Relative, `/`-separated, no empty, `.` or `..` segment, no
/// backslash or control character, at most 256 bytes.
///
/// # Errors
/// What is wrong (field `target`).
pub fn check_target_name(name: &str) -> Result<(), Invalid> {
    check_text("target", name, MAX_FIELD)?;
    if name.is_empty() {
        return Err(Invalid::new("target", "empty"));
    }
    if name.contains('\\') || name.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return Err(Invalid::new("target", "must be a relative path without empty, `.` or `..` segments"));
    }
    Ok(())
}

/// What the device should do about its assignment. A value this build does not know reads as
/// [`AssignmentAction::Unknown`], which a device treats like [`AssignmentAction::Hold`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AssignmentAction {
    /// Install the release now (from `allowed-from` on), if the repository signs it and it is
    /// newer than what runs.
    Install,
    /// The deployment is paused: start nothing new; an update already under way may finish.
    Hold,
    /// The device's wave is open, but its maintenance window is closed: install when the
    /// window opens (the server says `install` then; the device checks the window too).
    Wait,
    /// The deployment was aborted with `rollback-on-abort`: a device that runs the release goes
    /// back to its other slot and never installs the release again; one that does not run it
    /// does nothing. Either installs nothing while this stands.
    Rollback,
    /// From a newer server: do nothing.
    #[serde(other)]
    Unknown,
}

/// The part of a check-in answer that tells a device which release its deployment wants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Assignment {
    /// The deployment's id.
    pub deployment: i64,
    /// The repository target to install (looked up in the signed targets metadata).
    pub target: String,
    /// The release's version as the operator registered it (the device checks it against the
    /// signed metadata and what it runs).
    pub version: String,
    /// The device's wave (0 is the first).
    pub wave: u32,
    /// What to do.
    pub action: AssignmentAction,
    /// Not before this time (RFC 3339): when the device's wave opened.
    pub allowed_from: String,
    /// Only inside this window, if the deployment has one (left out otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<MaintenanceWindow>,
    /// With a window and `install`: when the open window closes (RFC 3339), as the server
    /// reads the window in its time zone. The device starts no install at or after it, even
    /// when it cannot reach the server again (it needs no time-zone database of its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_closes: Option<String>,
    /// With a window: when the next window opens (RFC 3339; after the open one for `install`),
    /// if within a year. The device logs it and checks in then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_opens: Option<String>,
}

impl Assignment {
    /// Checks sizes and characters.
    ///
    /// # Errors
    /// What is wrong, naming the field.
    pub fn validate(&self) -> Result<(), Invalid> {
        check_target_name(&self.target)?;
        check_text("version", &self.version, MAX_FIELD)?;
        check_text("allowed-from", &self.allowed_from, MAX_FIELD)?;
        for (field, t) in [("window-closes", &self.window_closes), ("window-opens", &self.window_opens)] {
            check_text(field, t.as_deref().unwrap_or(""), MAX_FIELD)?;
        }
        if let Some(w) = &self.window {
            w.validate()?;
        }
        Ok(())
    }
}

/// `POST /api/v1/releases`: registers a signed repository target as a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct NewRelease {
    /// The repository target name.
    pub target: String,
    /// Its version.
    pub version: String,
}

impl NewRelease {
    /// Checks the fields.
    ///
    /// # Errors
    /// What is wrong, naming the field.
    pub fn validate(&self) -> Result<(), Invalid> {
        check_target_name(&self.target)?;
        check_text("version", &self.version, MAX_FIELD)?;
        if self.version.is_empty() {
            return Err(Invalid::new("version", "empty"));
        }
        Ok(())
    }
}

/// `POST /api/v1/tags/{tag}/devices`: devices to add to a tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagDevices {
    /// Device ids (they need not have checked in yet).
    pub devices: Vec<crate::DeviceId>,
}

/// One wave of a deployment. Waves are cumulative: a wave opens to more devices of the
/// group, chosen in a fixed order per deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Wave {
    /// `{"devices": N}`: N more devices (a canary cohort), at least 1.
    Devices(u32),
    /// `{"percent": P}`: up to P% of the group in all (rounded up), 1 to 100.
    Percent(u8),
}

/// `POST /api/v1/deployments`: a release to a tag, in waves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct NewDeployment {
    /// The release's id.
    pub release: i64,
    /// The device group.
    pub tag: Tag,
    /// The waves, in order; the last one must be `{"percent": 100}`.
    pub waves: Vec<Wave>,
    /// The least time between the opening of one wave and the next, in seconds.
    pub min_wave_interval_secs: u64,
    /// The rollout pauses when a wave's failed (or rolled-back) devices exceed this percentage
    /// of the devices that attempted it (0 to 100; 0 pauses on the first failure).
    pub max_failure_percent: u8,
    /// Devices install only inside this window (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance_window: Option<MaintenanceWindow>,
    /// When the deployment is aborted, tell the devices it told to install to roll back
    /// ([`AssignmentAction::Rollback`]). Off by default (and then not written).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rollback_on_abort: bool,
}

impl NewDeployment {
    /// Checks the wave plan and the threshold.
    ///
    /// # Errors
    /// What is wrong, naming the field.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.waves.is_empty() || self.waves.len() > MAX_WAVES {
            return Err(Invalid::new("waves", format!("1 to {MAX_WAVES} waves")));
        }
        let mut last_percent = 0;
        for w in &self.waves {
            match *w {
                Wave::Devices(0) => return Err(Invalid::new("waves", "a {\"devices\": N} wave needs N >= 1")),
                Wave::Devices(_) => {}
                Wave::Percent(p) if p == 0 || p > 100 || p <= last_percent => {
                    return Err(Invalid::new("waves", "percentages must be 1 to 100 and increase"));
                }
                Wave::Percent(p) => last_percent = p,
            }
        }
        if self.waves.last() != Some(&Wave::Percent(100)) {
            return Err(Invalid::new("waves", "the last wave must be {\"percent\": 100}"));
        }
        if self.max_failure_percent > 100 {
            return Err(Invalid::new("max-failure-percent", "0 to 100"));
        }
        if self.min_wave_interval_secs > 366 * 24 * 3600 {
            return Err(Invalid::new("min-wave-interval-secs", "at most a year"));
        }
        if let Some(w) = &self.maintenance_window {
            w.validate()?;
        }
        Ok(())
    }
}

/// A deployment's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeploymentState {
    /// Waves open as their time comes.
    Running,
    /// Stopped by an operator or by the failure threshold; devices are told to hold.
    Paused,
    /// Ended by an operator; devices are no longer told about it.
    Aborted,
    /// From a newer server.
    #[serde(other)]
    Unknown,
}

impl DeploymentState {
    /// The wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentState::Running => "running",
            DeploymentState::Paused => "paused",
            DeploymentState::Aborted => "aborted",
            DeploymentState::Unknown => "unknown",
        }
    }

    /// The state named `name` ([`DeploymentState::Unknown`] for any other).
    #[must_use]
    pub fn from_name(name: &str) -> Self {
        [DeploymentState::Running, DeploymentState::Paused, DeploymentState::Aborted]
            .into_iter()
            .find(|s| s.as_str() == name)
            .unwrap_or(DeploymentState::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tags() {
        for ok in ["field", "site:berlin", "a", "canary_1.x-2", &"t".repeat(MAX_TAG)] {
            assert_eq!(Tag::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["", "a b", "a/b", "x@y", "caf\u{e9}", &"t".repeat(MAX_TAG + 1)] {
            assert_eq!(Tag::parse(bad).unwrap_err().field, "tag", "{bad:?}");
            assert!(serde_json::from_value::<Tag>(json!(bad)).is_err());
        }
    }

    #[test]
    fn target_names() {
        for ok in ["demo-2.0.0.bundle", "boards/pi4/rootfs-2.0.upd"] {
            check_target_name(ok).unwrap();
        }
        for bad in ["", "/abs", "a//b", "../x", "a/./b", "a\\b", "a\nb", &"x".repeat(MAX_FIELD + 1)] {
            assert_eq!(check_target_name(bad).unwrap_err().field, "target", "{bad:?}");
        }
    }

    #[test]
    fn the_wire_form_of_an_assignment() {
        let a = Assignment {
            deployment: 7,
            target: "demo-2.0.0.bundle".into(),
            version: "2.0.0".into(),
            wave: 1,
            action: AssignmentAction::Install,
            allowed_from: "2026-03-01T10:00:00Z".into(),
            window: None,
            window_closes: None,
            window_opens: None,
        };
        let wire = json!({"deployment": 7, "target": "demo-2.0.0.bundle", "version": "2.0.0", "wave": 1,
                          "action": "install", "allowed-from": "2026-03-01T10:00:00Z"});
        assert_eq!(serde_json::to_value(&a).unwrap(), wire);
        assert_eq!(serde_json::from_value::<Assignment>(wire).unwrap(), a);
        a.validate().unwrap();
        let newer: AssignmentAction = serde_json::from_value(json!("install-at-night")).unwrap();
        assert_eq!(newer, AssignmentAction::Unknown);
        assert_eq!(serde_json::to_value(AssignmentAction::Hold).unwrap(), "hold");
        assert_eq!(serde_json::to_value(AssignmentAction::Wait).unwrap(), "wait");
        assert_eq!(serde_json::to_value(AssignmentAction::Rollback).unwrap(), "rollback");
        assert_eq!(serde_json::from_value::<AssignmentAction>(json!("rollback")).unwrap(), AssignmentAction::Rollback);
        let windowed = json!({"deployment": 7, "target": "t", "version": "2", "wave": 0, "action": "wait",
            "allowed-from": "2026-03-01T10:00:00Z",
            "window": {"cron": "0 2 * * *", "duration-secs": 3600, "time-zone": "UTC"},
            "window-opens": "2026-03-02T02:00:00Z"});
        let w: Assignment = serde_json::from_value(windowed.clone()).unwrap();
        w.validate().unwrap();
        assert_eq!(w.window_opens.as_deref(), Some("2026-03-02T02:00:00Z"));
        assert_eq!(serde_json::to_value(&w).unwrap(), windowed);
        let bad = Assignment { window_closes: Some("2026\u{1b}[2J".into()), ..w };
        assert_eq!(bad.validate().unwrap_err().field, "window-closes");
    }

    #[test]
    fn wave_plans() {
        let plan = json!({"release": 1, "tag": "field", "waves": [{"devices": 2}, {"percent": 10}, {"percent": 100}],
                          "min-wave-interval-secs": 3600, "max-failure-percent": 20});
        let d: NewDeployment = serde_json::from_value(plan.clone()).unwrap();
        assert_eq!(d.waves, [Wave::Devices(2), Wave::Percent(10), Wave::Percent(100)]);
        d.validate().unwrap();
        assert_eq!(serde_json::to_value(&d).unwrap(), plan);
        assert!(!d.rollback_on_abort);
        let mut with_rollback = plan.clone();
        with_rollback["rollback-on-abort"] = json!(true);
        let r: NewDeployment = serde_json::from_value(with_rollback.clone()).unwrap();
        assert!(r.rollback_on_abort);
        assert_eq!(serde_json::to_value(&r).unwrap(), with_rollback);
        for (field, waves, threshold) in [
            ("waves", vec![], 5),
            ("waves", vec![Wave::Percent(50)], 5),
            ("waves", vec![Wave::Devices(0), Wave::Percent(100)], 5),
            ("waves", vec![Wave::Percent(50), Wave::Percent(50), Wave::Percent(100)], 5),
            ("waves", vec![Wave::Percent(0), Wave::Percent(100)], 5),
            ("waves", vec![Wave::Percent(100); MAX_WAVES + 1], 5),
            ("max-failure-percent", vec![Wave::Percent(100)], 101),
        ] {
            let bad = NewDeployment { waves, max_failure_percent: threshold, ..d.clone() };
            assert_eq!(bad.validate().unwrap_err().field, field, "{bad:?}");
        }
        assert!(serde_json::from_value::<Wave>(json!({"percent": 300})).is_err());
        assert!(serde_json::from_value::<Wave>(json!({"share": 3})).is_err());
    }

    #[test]
    fn deployment_states() {
        for s in [DeploymentState::Running, DeploymentState::Paused, DeploymentState::Aborted] {
            assert_eq!(DeploymentState::from_name(s.as_str()), s);
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(DeploymentState::from_name("archived"), DeploymentState::Unknown);
        assert_eq!(serde_json::from_value::<DeploymentState>(json!("archived")).unwrap(), DeploymentState::Unknown);
    }

    #[test]
    fn releases_are_checked() {
        let r = NewRelease { target: "demo-2.0.0.bundle".into(), version: "2.0.0".into() };
        r.validate().unwrap();
        assert_eq!(NewRelease { version: String::new(), ..r.clone() }.validate().unwrap_err().field, "version");
        assert_eq!(NewRelease { target: "../x".into(), ..r }.validate().unwrap_err().field, "target");
    }
}
