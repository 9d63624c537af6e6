//! The settable config keys (`update config <key> <value>`), each validated before it is stored.

use std::path::PathBuf;

use serde_json::{Value, json};
use update_core::config::{Config, LogTarget, Schedule, Secure, SourceUrl, Verify};
use update_core::{Error, Result};

/// One change to the config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting {
    /// `source`.
    Source(SourceUrl),
    /// `schedule`.
    Schedule(Schedule),
    /// `log`.
    Log(LogTarget),
    /// `verify`.
    Verify(Verify),
    /// `secure`.
    Secure(Secure),
    /// `boot-retry-limit` (validated by the caller's parser).
    BootRetryLimit(u32),
    /// `signature-threshold`.
    SignatureThreshold(u32),
    /// `driver` (`auto` or a name).
    Driver(String),
    /// `tls.client-cert`.
    ClientCert(Option<PathBuf>),
    /// `tls.client-key`.
    ClientKey(Option<PathBuf>),
    /// `tls.server-ca`.
    ServerCa(Option<PathBuf>),
    /// `server` (the fleet server).
    Server(Option<SourceUrl>),
}

fn opt_path(p: Option<&PathBuf>) -> Value {
    p.map_or(Value::Null, |p| json!(p.display().to_string()))
}

/// Every settable key, as [`Setting::key`] names it.
pub const KEYS: [&str; 12] = [
    "source",
    "schedule",
    "log",
    "verify",
    "secure",
    "boot-retry-limit",
    "signature-threshold",
    "driver",
    "tls.client-cert",
    "tls.client-key",
    "tls.server-ca",
    "server",
];

fn unknown_key(key: &str) -> Error {
    Error::InvalidValue {
        what: "config key".into(),
        value: key.into(),
        reason: format!("expected one of {}", KEYS.join(", ")),
    }
}

impl Setting {
    /// The current value of `key` in `c`, as JSON (null when unset), for callers that name keys
    /// as text.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] for an unknown key.
    pub fn get(c: &Config, key: &str) -> Result<Value> {
        // Any value of the right variant will do: `current` reads the key, not the value
        // (`source` has no value to spare, so it is read here).
        let probe = match key {
            "source" => return Ok(c.source.as_ref().map_or(Value::Null, |s| json!(s.as_str()))),
            "server" => Setting::Server(None),
            "schedule" => Setting::Schedule(Schedule::Off),
            "log" => Setting::Log(c.log.clone()),
            "verify" => Setting::Verify(c.verify),
            "secure" => Setting::Secure(c.secure),
            "boot-retry-limit" => Setting::BootRetryLimit(0),
            "signature-threshold" => Setting::SignatureThreshold(0),
            "driver" => Setting::Driver(String::new()),
            "tls.client-cert" => Setting::ClientCert(None),
            "tls.client-key" => Setting::ClientKey(None),
            "tls.server-ca" => Setting::ServerCa(None),
            other => return Err(unknown_key(other)),
        };
        Ok(probe.current(c))
    }

    /// The key's name in the file.
    #[must_use]
    pub fn key(&self) -> &'static str {
        match self {
            Setting::Source(_) => "source",
            Setting::Schedule(_) => "schedule",
            Setting::Log(_) => "log",
            Setting::Verify(_) => "verify",
            Setting::Secure(_) => "secure",
            Setting::BootRetryLimit(_) => "boot-retry-limit",
            Setting::SignatureThreshold(_) => "signature-threshold",
            Setting::Driver(_) => "driver",
            Setting::ClientCert(_) => "tls.client-cert",
            Setting::ClientKey(_) => "tls.client-key",
            Setting::ServerCa(_) => "tls.server-ca",
            Setting::Server(_) => "server",
        }
    }

    /// The key's current value in `config`, as JSON (for the audit record).
    #[must_use]
    pub fn current(&self, c: &Config) -> Value {
        match self {
            Setting::Source(_) => c.source.as_ref().map_or(Value::Null, |s| json!(s.as_str())),
            Setting::Schedule(_) => json!(c.schedule.to_string()),
            Setting::Log(_) => json!(c.log.to_string()),
            Setting::Verify(_) => json!(bool::from(c.verify)),
            Setting::Secure(_) => json!(bool::from(c.secure)),
            Setting::BootRetryLimit(_) => json!(c.boot_retry_limit),
            Setting::SignatureThreshold(_) => json!(c.signature_threshold),
            Setting::Driver(_) => json!(c.driver),
            Setting::ClientCert(_) => opt_path(c.tls.client_cert.as_ref()),
            Setting::ClientKey(_) => opt_path(c.tls.client_key.as_ref()),
            Setting::ServerCa(_) => opt_path(c.tls.server_ca.as_ref()),
            Setting::Server(_) => c.server.as_ref().map_or(Value::Null, |s| json!(s.as_str())),
        }
    }

    /// Applies the change.
    pub fn apply(&self, c: &mut Config) {
        match self.clone() {
            Setting::Source(s) => c.source = Some(s),
            Setting::Schedule(s) => c.schedule = s,
            Setting::Log(l) => c.log = l,
            Setting::Verify(v) => c.verify = v,
            Setting::Secure(s) => c.secure = s,
            Setting::BootRetryLimit(n) => c.boot_retry_limit = n,
            Setting::SignatureThreshold(n) => c.signature_threshold = n,
            Setting::Driver(d) => c.driver = d,
            Setting::ClientCert(p) => c.tls.client_cert = p,
            Setting::ClientKey(p) => c.tls.client_key = p,
            Setting::ServerCa(p) => c.tls.server_ca = p,
            Setting::Server(s) => c.server = s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_reads_and_an_unknown_one_is_named() {
        let c = Config::default();
        for key in KEYS {
            let v = Setting::get(&c, key).unwrap_or_else(|e| panic!("{key}: {e}"));
            assert!(!v.is_object() && !v.is_array(), "{key}: {v}");
        }
        assert_eq!(Setting::get(&c, "tls.client-key").ok(), Some(Value::Null));
        let e = Setting::get(&c, "no-such-key").expect_err("unknown key");
        assert_eq!(e.kind(), update_core::ErrorKind::Usage);
        assert!(e.to_string().contains("no-such-key"), "{e}");
    }
}
