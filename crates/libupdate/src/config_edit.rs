//! `update config …`: config keys and the keyring, each change locked, validated, written
//! atomically and audited with its old and new value.

use serde_json::json;
use update_core::audit::{AuditAction, Outcome};
use update_core::config::{Config, Verify};
use update_core::driver::Context;
use update_core::keyring::{KeyEntry, Keyring, PublicKey};
use update_core::{KeyName, Result, atomic};

use crate::audited::Done;
use crate::log::{Logger, Severity};
use crate::{Setting, Updater};

impl Updater {
    /// Changes one config key: locks, re-reads the file strictly (a broken file is refused,
    /// never overwritten), applies, validates, writes atomically and audits the old and new value.
    ///
    /// # Errors
    /// [`update_core::Error::ConfigParse`] when the file on disk is broken;
    /// [`update_core::Error::InvalidValue`]; I/O errors.
    pub fn set(&mut self, setting: &Setting) -> Result<()> {
        if let Setting::Driver(name) = setting {
            self.drivers.check_name(name)?;
        }
        if let Setting::Log(update_core::config::LogTarget::File(p)) = setting
            && self.paths.resolve(p).is_dir()
        {
            return Err(update_core::Error::InvalidValue {
                what: "log".into(),
                value: p.display().to_string(),
                reason: "it is a directory; name a file (for example /var/log/update.log)".into(),
            });
        }
        let record = self.record(AuditAction::ConfigChange, Outcome::Ok).subject(setting.key());
        let stored = self.audited(
            record,
            || {
                let _lock = atomic::Lock::acquire(&self.paths.config_lock_file())?;
                let mut stored = Config::load(&self.paths)?;
                let old = setting.current(&stored);
                setting.apply(&mut stored);
                stored.validate()?;
                self.check_driver_accepts(&stored)?;
                let new = setting.current(&stored);
                stored.store(&self.paths)?;
                Ok((old, new, stored))
            },
            |(old, new, _), record| Done {
                line: format!("config {} changed from {old} to {new}", setting.key()),
                record: record.change(Some(old.clone()), Some(new.clone())),
                severity: Severity::Notice,
            },
        )?;
        if setting == &Setting::Verify(Verify::IntegrityOnly) {
            self.log(Severity::Warning, "verify set to false: updates will be installed without signature checks");
        }
        let (_, _, stored) = stored;
        self.logger = Logger::new(&self.paths, &stored.log);
        self.config = stored;
        self.forget_driver();
        self.warn_unworkable();
        Ok(())
    }

    /// Warns (log and stderr) about settings that can never work together: a signature threshold
    /// above the number of trusted keys, mutual TLS or a fleet server without a client identity.
    fn warn_unworkable(&self) {
        for w in self.config.warnings(&self.keyring) {
            self.log(Severity::Warning, &w);
            eprintln!("update: warning: {}", update_core::text::Untrusted(&w));
        }
    }

    /// Refuses a config the driver it selects cannot honour (a tool-facing key such as
    /// `boot-retry-limit` where the tool owns boot counting). With no driver available there is
    /// nothing to check against: the change is stored, and operations fail with "Not implemented".
    fn check_driver_accepts(&self, config: &Config) -> Result<()> {
        let ctx = Context { config, ..self.context() };
        let Ok(driver) = self.drivers.select(&ctx) else { return Ok(()) };
        match self.drivers.factory(driver.name()) {
            Some(factory) => factory.check_config(config),
            None => Ok(()),
        }
    }

    /// The stored config file's content (strict: a broken file is an error here).
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn stored_config(&self) -> Result<Config> {
        Config::load(&self.paths)
    }

    fn change_keyring(
        &mut self,
        action: AuditAction,
        name: &KeyName,
        f: impl FnOnce(&mut Keyring) -> Result<(Option<String>, Option<String>)>,
    ) -> Result<()> {
        let record = self.record(action, Outcome::Ok).subject(name.as_str());
        let (ring, _) = self.audited(
            record,
            || {
                let _lock = atomic::Lock::acquire(&self.paths.config_lock_file())?;
                let mut ring = Keyring::load(&self.paths)?;
                let change = f(&mut ring)?;
                ring.store(&self.paths)?;
                Ok((ring, change))
            },
            |(_, (old, new)), record| {
                let describe = |id: &Option<String>| id.as_ref().map(|id| json!({ "key-id": id }));
                Done {
                    record: record.change(describe(old), describe(new)),
                    severity: Severity::Notice,
                    line: format!("keyring: {action:?} key '{name}'"),
                }
            },
        )?;
        self.keyring = ring;
        self.warn_unworkable();
        Ok(())
    }

    /// `update config key add`.
    ///
    /// # Errors
    /// [`update_core::Error::Keyring`] for a duplicate name or key.
    pub fn key_add(&mut self, name: &KeyName, key: PublicKey) -> Result<()> {
        let now = update_core::time_util::now_rfc3339();
        self.change_keyring(AuditAction::KeyAdd, name, |r| {
            let e = r.add(name.clone(), key, &now)?;
            Ok((None, Some(e.key_id.clone())))
        })
    }

    /// `update config key update`.
    ///
    /// # Errors
    /// [`update_core::Error::Keyring`] when the name is missing.
    pub fn key_update(&mut self, name: &KeyName, key: PublicKey) -> Result<()> {
        let now = update_core::time_util::now_rfc3339();
        self.change_keyring(AuditAction::KeyUpdate, name, |r| {
            let old = r.update(name, key, &now)?;
            Ok((Some(old.key_id), Some(key.key_id())))
        })
    }

    /// `update config key delete`.
    ///
    /// # Errors
    /// [`update_core::Error::Keyring`] when the name is missing.
    pub fn key_delete(&mut self, name: &KeyName) -> Result<()> {
        self.change_keyring(AuditAction::KeyDelete, name, |r| {
            let old = r.delete(name)?;
            Ok((Some(old.key_id), None))
        })
    }

    /// `update config key list`.
    #[must_use]
    pub fn keys(&self) -> Vec<KeyEntry> {
        self.keyring.iter().cloned().collect()
    }
}
