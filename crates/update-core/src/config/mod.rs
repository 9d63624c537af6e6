//! The device configuration: `/etc/update/update.toml`.
//!
//! Strict TOML: unknown keys are refused with the file, line, table and key in the message.
//! Every write is atomic ([`crate::atomic::write_atomic`]) and also refreshes a "last good" copy
//! in the state directory, so a file broken by hand never leaves the device without a working
//! configuration: commands that change the config refuse until it is fixed, while the operations
//! that keep the device updating (`update`, `status`, the daemon) fall back to the last good copy
//! with a warning. The reference is docs/reference/config.md.

mod device;
mod file;
mod url;
mod values;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use device::{BootConfig, BootloaderKind, EnvLocation, HealthCheck, NativeConfig, SlotPair, TlsConfig};
pub use file::MAX_CONFIG_BYTES;
pub(crate) use file::read_text;
pub use url::{SourceUrl, check_server_url, redact_userinfo};
pub use values::{LogTarget, Schedule, ScheduleUnit, Secure, Verify, parse_bool};

use crate::error::{Error, Result};
use crate::keyring::Keyring;

fn default_retry_limit() -> u32 {
    3
}
fn default_threshold() -> u32 {
    1
}
fn is_default_retry(v: &u32) -> bool {
    *v == default_retry_limit()
}
fn is_default_threshold(v: &u32) -> bool {
    *v == default_threshold()
}

/// The highest `boot-retry-limit` the shipped bootloader scripts can count down from.
pub const MAX_BOOT_RETRY_LIMIT: u32 = 9;

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// `auto` (probe in order) or a driver name (`native`, `rauc`, `swupdate`, `mender`, `ostree`, `swupd`).
    #[serde(default = "default_driver")]
    pub driver: String,
    /// Where updates come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceUrl>,
    /// When the daemon checks the source.
    #[serde(default)]
    pub schedule: Schedule,
    /// Where log lines go.
    #[serde(default)]
    pub log: LogTarget,
    /// Signature policy.
    #[serde(default)]
    pub verify: Verify,
    /// Transport policy.
    #[serde(default)]
    pub secure: Secure,
    /// Boot attempts of a new slot before the bootloader falls back (1 to 9).
    #[serde(default = "default_retry_limit", skip_serializing_if = "is_default_retry")]
    pub boot_retry_limit: u32,
    /// How many distinct trusted keys must sign an update (default 1).
    #[serde(default = "default_threshold", skip_serializing_if = "is_default_threshold")]
    pub signature_threshold: u32,
    /// TLS files.
    #[serde(default, skip_serializing_if = "is_default")]
    pub tls: TlsConfig,
    /// The native driver's device description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native: Option<NativeConfig>,
    /// Health checks run after a new slot boots.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health_check: Vec<HealthCheck>,
    /// The fleet server (`update-server`) the device checks in with, reports each update step
    /// to and listens to for pushed checks: its base URL, `https://` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<SourceUrl>,
    /// Where each component a bundle may carry lives on this device (`[components.NAME]`:
    /// `kind` and the handler's settings; docs/components.md).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub components: std::collections::BTreeMap<crate::component::ComponentName, ComponentConfig>,
}

/// One `[components.NAME]` table: the kind, and the handler's settings (checked by the handler).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentConfig {
    /// The component's kind (`files`, `app`, `firmware`, `data`, or an out-of-tree kind).
    pub kind: crate::component::Kind,
    /// Everything else in the table.
    #[serde(flatten)]
    pub settings: crate::component::Settings,
}

impl Config {
    /// The device's entry for component `name`, if `update.toml` has one.
    #[must_use]
    pub fn device_component(
        &self,
        name: &crate::component::ComponentName,
    ) -> Option<crate::component::DeviceComponent> {
        self.components.get(name).map(|c| crate::component::DeviceComponent {
            name: name.clone(),
            kind: c.kind.clone(),
            settings: c.settings.clone(),
        })
    }
}

fn default_driver() -> String {
    "auto".into()
}
fn is_default<T: Default + PartialEq>(t: &T) -> bool {
    *t == T::default()
}

impl Default for Config {
    fn default() -> Self {
        Self {
            driver: default_driver(),
            source: None,
            schedule: Schedule::Off,
            log: LogTarget::Syslog,
            verify: Verify::Signatures,
            secure: Secure::ServerAuth,
            boot_retry_limit: default_retry_limit(),
            signature_threshold: default_threshold(),
            tls: TlsConfig::default(),
            native: None,
            health_check: Vec::new(),
            server: None,
            components: std::collections::BTreeMap::new(),
        }
    }
}

/// Checks a `boot-retry-limit` value.
///
/// # Errors
/// [`Error::InvalidValue`] outside 1..=[`MAX_BOOT_RETRY_LIMIT`].
pub fn check_boot_retry_limit(v: u32) -> Result<u32> {
    if (1..=MAX_BOOT_RETRY_LIMIT).contains(&v) {
        Ok(v)
    } else {
        Err(Error::InvalidValue {
            what: "boot-retry-limit".into(),
            value: v.to_string(),
            reason: format!("expected a whole number from 1 to {MAX_BOOT_RETRY_LIMIT}"),
        })
    }
}

/// Parses a `boot-retry-limit` from the command line.
///
/// # Errors
/// [`Error::InvalidValue`] unless it is a whole number in range.
pub fn parse_boot_retry_limit(text: &str) -> Result<u32> {
    let v: u32 = text.parse().map_err(|_| Error::InvalidValue {
        what: "boot-retry-limit".into(),
        value: text.into(),
        reason: format!("expected a whole number from 1 to {MAX_BOOT_RETRY_LIMIT}"),
    })?;
    check_boot_retry_limit(v)
}

/// Where in a TOML document a byte offset falls: the line number and the enclosing table.
fn locate(text: &str, offset: usize) -> (usize, String) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let table = before
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map_or_else(|| "top level".to_owned(), |l| format!("table {}", l.split('#').next().unwrap_or(l).trim()));
    (line, table)
}

impl Config {
    /// Parses and validates a config file's text. `path` is used in error messages only.
    ///
    /// # Errors
    /// [`Error::ConfigParse`] naming the line, table and key for syntax errors, unknown keys and
    /// invalid values.
    pub fn parse(text: &str, path: &Path) -> Result<Config> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let msg = e.message().trim().to_owned();
            let message = match e.span() {
                Some(span) => {
                    let (line, table) = locate(text, span.start);
                    let key = text.get(span.clone()).unwrap_or("").lines().next().unwrap_or("").trim();
                    if key.is_empty() || key.len() > 60 {
                        format!("line {line}, {table}: {msg}")
                    } else {
                        format!("line {line}, {table}, at `{key}`: {msg}")
                    }
                }
                None => msg,
            };
            Error::ConfigParse { path: path.to_owned(), message: redact_userinfo(&message) }
        })?;
        config
            .validate()
            .map_err(|e| Error::ConfigParse { path: path.to_owned(), message: redact_userinfo(&e.to_string()) })?;
        Ok(config)
    }

    /// Checks the values serde cannot check alone.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] naming the key.
    pub fn validate(&self) -> Result<()> {
        check_boot_retry_limit(self.boot_retry_limit)?;
        if self.signature_threshold == 0 || self.signature_threshold > 16 {
            return Err(Error::InvalidValue {
                what: "signature-threshold".into(),
                value: self.signature_threshold.to_string(),
                reason: "expected a whole number from 1 to 16".into(),
            });
        }
        crate::names::KeyName::new(&self.driver).map_err(|_| Error::InvalidValue {
            what: "driver".into(),
            value: self.driver.clone(),
            reason: "expected auto or a driver name".into(),
        })?;
        if let Some(native) = &self.native {
            if native.slots.is_empty() {
                return Err(Error::InvalidValue {
                    what: "native.slots".into(),
                    value: String::new(),
                    reason: "at least one slot group is needed".into(),
                });
            }
            if native.boot.env.is_empty() || native.boot.env.len() > 2 {
                return Err(Error::InvalidValue {
                    what: "native.boot.env".into(),
                    value: native.boot.env.len().to_string(),
                    reason: "expected one or two environment copies".into(),
                });
            }
        }
        if let Some(server) = &self.server {
            check_server_url(server)?;
        }
        for hc in &self.health_check {
            if hc.command.is_empty() {
                return Err(Error::InvalidValue {
                    what: "health-check.command".into(),
                    value: hc.name.clone(),
                    reason: "the command is empty".into(),
                });
            }
        }
        Ok(())
    }

    /// Combinations that are valid but can never work, to show (as warnings) when a key or a
    /// trusted key changes: a signature threshold above the number of trusted keys, mutual TLS
    /// or a fleet server without a client identity.
    #[must_use]
    pub fn warnings(&self, keyring: &Keyring) -> Vec<String> {
        let mut out = Vec::new();
        let threshold = usize::try_from(self.signature_threshold).unwrap_or(usize::MAX);
        if self.verify == Verify::Signatures && threshold > keyring.len() {
            out.push(format!(
                "signature-threshold is {threshold} but the keyring holds {} key(s): every update will be refused \
                 until enough keys are trusted (update config key add NAME KEY)",
                keyring.len()
            ));
        }
        let identity = self.tls.client_cert.is_some() && self.tls.client_key.is_some();
        if self.secure == Secure::MutualTls && !identity {
            out.push(
                "secure is true but no client identity is set: every connection to the source will fail \
                 (update config client-cert PATH; update config client-key PATH)"
                    .into(),
            );
        }
        if self.server.is_some() && !identity {
            out.push(
                "a fleet server is set but no client identity: it will refuse the device \
                 (update config client-cert PATH; update config client-key PATH)"
                    .into(),
            );
        }
        out
    }

    /// The file's text.
    #[must_use]
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip() {
        let c = Config::default();
        let back = Config::parse(&c.to_toml(), Path::new("x")).unwrap();
        assert_eq!(c, back);
    }

    #[test]
    fn components_tables_parse_round_trip_and_validate_names_and_kinds() {
        let text = "[components.mcu]\nkind = \"firmware\"\nport = \"/dev/ttyACM0\"\nbaud = 115200\n\n\
                    [components.web-ui]\nkind = \"app\"\nrestart = [\"systemctl\", \"restart\", \"web-ui\"]\n";
        let c = Config::parse(text, Path::new("x")).unwrap();
        let mcu = c.device_component(&crate::component::ComponentName::new("mcu").unwrap()).unwrap();
        assert_eq!(mcu.kind, crate::component::Kind::Firmware);
        assert_eq!(mcu.settings["port"], "/dev/ttyACM0");
        assert_eq!(mcu.settings["baud"], 115_200);
        assert_eq!(c.components.len(), 2);
        assert_eq!(Config::parse(&c.to_toml(), Path::new("x")).unwrap(), c);
        for (bad, want) in [
            ("[components.Mcu]\nkind = \"firmware\"\n", "component name"),
            ("[components.mcu]\nport = \"/dev/ttyACM0\"\n", "missing field `kind`"),
            ("[components.mcu]\nkind = \"../x\"\n", "component kind"),
        ] {
            let e = Config::parse(bad, Path::new("x")).unwrap_err().to_string();
            assert!(e.contains(want), "{bad:?}: {e}");
        }
    }

    #[test]
    fn unknown_key_names_line_table_and_key() {
        let text = "source = \"https://a.example/\"\n[tls]\nclient-certt = \"/x\"\n";
        let e = Config::parse(text, Path::new("/etc/update/update.toml")).unwrap_err().to_string();
        assert!(e.contains("/etc/update/update.toml"), "{e}");
        assert!(e.contains("line 3"), "{e}");
        assert!(e.contains("[tls]"), "{e}");
        assert!(e.contains("client-certt"), "{e}");
    }

    #[test]
    fn credentials_in_a_hand_edited_file_are_refused_and_not_echoed() {
        for text in [
            "source = \"https://user:hunter2@u.example/r\"",
            "source = 'http://hunter2@u.example/'",
            "server = \"https://dev:hunter2@fleet.example:8443\"",
            "# a comment\n\nserver = \"https://:hunter2@fleet.example\"\n",
        ] {
            let e = Config::parse(text, Path::new("/etc/update/update.toml")).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Config);
            let e = e.to_string();
            assert!(e.contains("credentials") && !e.contains("hunter2"), "{text}: {e}");
        }
    }

    #[test]
    fn combinations_that_can_never_work_warn() {
        let key = |b: u8| {
            let sk = ed25519_dalek::SigningKey::from_bytes(&[b; 32]);
            crate::keyring::PublicKey::from_verifying_key(sk.verifying_key())
        };
        let mut ring = Keyring::default();
        let mut c = Config::default();
        assert_eq!(c.warnings(&ring).len(), 1, "threshold 1, no keys");
        ring.add(crate::KeyName::new("a").unwrap(), key(1), "t").unwrap();
        assert!(c.warnings(&ring).is_empty());
        for (threshold, warns) in [(2, true), (3, true), (16, true), (1, false)] {
            c.signature_threshold = threshold;
            assert_eq!(c.warnings(&ring).iter().any(|w| w.contains("signature-threshold")), warns, "{threshold}");
        }
        c.verify = Verify::IntegrityOnly;
        c.signature_threshold = 5;
        assert!(c.warnings(&ring).is_empty(), "no signatures checked: the threshold does not matter");
        c = Config { secure: Secure::MutualTls, ..Config::default() };
        assert!(c.warnings(&ring).iter().any(|w| w.contains("secure is true")));
        c.tls.client_cert = Some("/etc/update/device.crt".into());
        assert!(c.warnings(&ring).iter().any(|w| w.contains("secure is true")), "a certificate without its key");
        c.tls.client_key = Some("/etc/update/device.key".into());
        assert!(c.warnings(&ring).is_empty());
        c = Config { server: Some(SourceUrl::new("https://fleet.example").unwrap()), ..Config::default() };
        assert!(c.warnings(&ring).iter().any(|w| w.contains("fleet server")));
    }

    #[test]
    fn bad_values_in_file_are_refused() {
        for text in [
            "boot-retry-limit = 0",
            "boot-retry-limit = 10",
            "log = \"relative.log\"",
            "verify = \"yes\"",
            "source = \"gopher://x/\"",
            "server = \"http://fleet.example\"",
            "server = \"file:///srv\"",
        ] {
            assert!(Config::parse(text, Path::new("f")).is_err(), "{text}");
        }
    }

    #[test]
    fn server_url_round_trips() {
        let c = Config::parse("server = \"https://fleet.example:8443\"\n", Path::new("f")).unwrap();
        assert_eq!(c.server.as_ref().map(SourceUrl::as_str), Some("https://fleet.example:8443"));
        assert_eq!(Config::parse(&c.to_toml(), Path::new("f")).unwrap(), c);
    }
}
