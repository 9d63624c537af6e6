//! `update config …`.

use std::io::Read;
use std::path::PathBuf;

use libupdate::{Setting, Updater};
use update_core::config::{self, LogTarget, Schedule, SourceUrl};
use update_core::keyring::PublicKey;
use update_core::{Error, KeyName, Result};

use crate::cli::{ConfigCommand, KeyCommand};

fn bool_setting(what: &str, value: &str) -> Result<bool> {
    config::parse_bool(what, value)
}

fn path_setting(what: &str, text: &str) -> Result<Option<PathBuf>> {
    if text == "none" {
        return Ok(None);
    }
    if !text.starts_with('/') {
        return Err(Error::InvalidValue {
            what: what.into(),
            value: text.into(),
            reason: "expected an absolute path or none".into(),
        });
    }
    Ok(Some(PathBuf::from(text)))
}

fn read_key(text: &str) -> Result<PublicKey> {
    let material = if text == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map_err(|e| Error::io("read", "standard input", e))?;
        s
    } else if let Some(file) = text.strip_prefix('@') {
        std::fs::read_to_string(file).map_err(|e| Error::io("read", file, e))?
    } else {
        text.to_owned()
    };
    PublicKey::parse(&material)
}

/// Runs a config subcommand.
///
/// # Errors
/// Invalid values (nothing is written), a broken config file, I/O errors.
pub fn run(updater: &mut Updater, command: ConfigCommand) -> Result<()> {
    let setting = match command {
        ConfigCommand::Source { url } => Setting::Source(SourceUrl::new(&url)?),
        ConfigCommand::Key(k) => return key(updater, k),
        ConfigCommand::Schedule { unit, count } => Setting::Schedule(match (unit.as_str(), count) {
            ("off", None) => Schedule::Off,
            ("off", Some(_)) => {
                return Err(Error::InvalidValue {
                    what: "schedule".into(),
                    value: "off".into(),
                    reason: "off takes no number".into(),
                });
            }
            (unit, Some(count)) => Schedule::every(unit, &count)?,
            (unit, None) => {
                return Err(Error::InvalidValue {
                    what: "schedule".into(),
                    value: unit.into(),
                    reason: "expected `schedule <monthly|weekly|daily|hourly|minute> <N>` or `schedule off`".into(),
                });
            }
        }),
        ConfigCommand::Log { target } => Setting::Log(LogTarget::new(&target)?),
        ConfigCommand::Verify { value } => Setting::Verify(bool_setting("verify", &value)?.into()),
        ConfigCommand::BootRetryLimit { limit } => Setting::BootRetryLimit(config::parse_boot_retry_limit(&limit)?),
        ConfigCommand::Secure { value } => Setting::Secure(bool_setting("secure", &value)?.into()),
        ConfigCommand::ClientCert { path } => Setting::ClientCert(path_setting("client-cert", &path)?),
        ConfigCommand::ClientKey { path } => Setting::ClientKey(path_setting("client-key", &path)?),
        ConfigCommand::Server { url } => Setting::Server(if url == "none" {
            None
        } else {
            let url = SourceUrl::new(&url)?;
            config::check_server_url(&url)?;
            Some(url)
        }),
        ConfigCommand::ServerCa { path } => Setting::ServerCa(path_setting("server-ca", &path)?),
        ConfigCommand::SignatureThreshold { count } => {
            Setting::SignatureThreshold(count.parse().map_err(|_| Error::InvalidValue {
                what: "signature-threshold".into(),
                value: count.clone(),
                reason: "expected a whole number from 1 to 16".into(),
            })?)
        }
        ConfigCommand::Driver { name } => {
            if name != "auto" && !libupdate::PROBE_ORDER.iter().any(|(n, _)| *n == name) {
                return Err(Error::InvalidValue {
                    what: "driver".into(),
                    value: name,
                    reason: format!("known drivers: auto, {}", libupdate::PROBE_ORDER.map(|(n, _)| n).join(", ")),
                });
            }
            Setting::Driver(name)
        }
        ConfigCommand::Show { json } => return show(updater, json),
    };
    updater.set(&setting)?;
    println!("{} = {}", setting.key(), setting.current(updater.config()));
    Ok(())
}

fn show(updater: &Updater, json: bool) -> Result<()> {
    let stored = updater.stored_config()?;
    if json {
        return crate::print_json(&serde_json::json!({
            "file": updater.paths().config_file(),
            "config": stored,
            "keys": updater.keys().len(),
        }));
    }
    println!("# {}", updater.paths().config_file().display());
    print!("{}", stored.to_toml());
    Ok(())
}

fn key(updater: &mut Updater, command: KeyCommand) -> Result<()> {
    match command {
        KeyCommand::Add { name, public_key } => {
            let name = KeyName::new(&name)?;
            let key = read_key(&public_key)?;
            updater.key_add(&name, key)?;
            println!("added key {name} ({})", key.key_id());
        }
        KeyCommand::Update { name, public_key } => {
            let name = KeyName::new(&name)?;
            let key = read_key(&public_key)?;
            updater.key_update(&name, key)?;
            println!("updated key {name} ({})", key.key_id());
        }
        KeyCommand::Delete { name } => {
            let name = KeyName::new(&name)?;
            updater.key_delete(&name)?;
            println!("deleted key {name}");
        }
        KeyCommand::List { json } => {
            let keys = updater.keys();
            if json {
                return crate::print_json(&keys);
            }
            for k in keys {
                println!("{:<20} {} {} {}", k.name, k.algorithm, k.public_key.to_base64(), k.key_id);
            }
        }
    }
    Ok(())
}
