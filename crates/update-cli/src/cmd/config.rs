//! `update config …`.

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

/// Reports a key added or updated.
fn key_changed(json: bool, command: &str, name: &KeyName, key: &PublicKey, message: &str) -> Result<()> {
    let fields = serde_json::json!({ "key": name.to_string(), "key-id": key.key_id() });
    crate::json::changed(json, command, fields, message)
}

/// A key given inline, as `@FILE` or as `-` (standard input); files and standard input are
/// read up to [`update_core::keyring::MAX_KEY_INPUT`] bytes.
fn read_key(text: &str) -> Result<PublicKey> {
    if text == "-" {
        PublicKey::read_from(std::io::stdin().lock(), "standard input")
    } else if let Some(file) = text.strip_prefix('@') {
        let f = std::fs::File::open(file).map_err(|e| Error::io("read", file, e))?;
        PublicKey::read_from(f, file)
    } else {
        PublicKey::parse(text)
    }
}

/// Runs a config subcommand.
///
/// # Errors
/// Invalid values (nothing is written), a broken config file, I/O errors.
pub fn run(updater: &mut Updater, command: ConfigCommand, json: bool) -> Result<()> {
    let setting = match command {
        ConfigCommand::Key(k) => return key(updater, k, json),
        ConfigCommand::Show => return show(updater, json),
        other => setting(other)?,
    };
    updater.set(&setting)?;
    let (key, value) = (setting.key(), setting.current(updater.config()));
    crate::json::changed(
        json,
        "config",
        serde_json::json!({ "setting": key, "value": value }),
        &format!("{key} = {value}"),
    )
}

/// The [`Setting`] for `update config KEY VALUE`, from text: the key as the command names it
/// (`source`, `schedule`, `client-cert`, …) and its value (`schedule` takes `daily 3`). Parsed by
/// the same definitions as the command line (for the D-Bus service's `SetConfig`).
///
/// # Errors
/// [`Error::Usage`] for an unknown key; [`Error::InvalidValue`] for a bad value.
pub fn parse_setting(key: &str, value: &str) -> Result<Setting> {
    if matches!(key, "key" | "show") || key.starts_with('-') {
        return Err(Error::Usage(format!("`{key}` is not a setting")));
    }
    let key = key.strip_prefix("tls.").unwrap_or(key);
    let values: Vec<&str> = if key == "schedule" { value.split_whitespace().collect() } else { vec![value] };
    let args = ["update", "config", key, "--"].into_iter().chain(values);
    let cli = <crate::Cli as clap::Parser>::try_parse_from(args).map_err(|e| {
        let text = e.render().to_string();
        Error::Usage(text.lines().next().unwrap_or_default().trim_start_matches("error: ").to_owned())
    })?;
    match cli.command {
        Some(crate::cli::Command::Config(c)) => setting(c),
        _ => Err(Error::Usage(format!("`{key}` is not a setting"))),
    }
}

/// The [`Setting`] a config subcommand other than `key` and `show` asks for.
fn setting(command: ConfigCommand) -> Result<Setting> {
    Ok(match command {
        ConfigCommand::Source { url } => Setting::Source(SourceUrl::new(&url)?),
        ConfigCommand::Key(_) | ConfigCommand::Show => {
            return Err(Error::Usage("`config key` and `config show` are not settings".into()));
        }
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
        ConfigCommand::Driver { name } => Setting::Driver(name),
    })
}

fn show(updater: &Updater, json: bool) -> Result<()> {
    let stored = updater.stored_config()?;
    if json {
        return crate::json::print(
            crate::json::Doc::ConfigShow,
            &serde_json::json!({
                "file": updater.paths().config_file(),
                "config": stored,
                "keys": updater.keys().len(),
            }),
        );
    }
    crate::outln!("# {}", updater.paths().config_file().display());
    crate::out!("{}", stored.to_toml());
    Ok(())
}

fn key(updater: &mut Updater, command: KeyCommand, json: bool) -> Result<()> {
    match command {
        KeyCommand::Add { name, public_key } => {
            let name = KeyName::new(&name)?;
            let key = read_key(&public_key)?;
            updater.key_add(&name, key)?;
            key_changed(json, "config key add", &name, &key, &format!("added key {name} ({})", key.key_id()))?;
        }
        KeyCommand::Update { name, public_key } => {
            let name = KeyName::new(&name)?;
            let key = read_key(&public_key)?;
            updater.key_update(&name, key)?;
            key_changed(json, "config key update", &name, &key, &format!("updated key {name} ({})", key.key_id()))?;
        }
        KeyCommand::Delete { name } => {
            let name = KeyName::new(&name)?;
            updater.key_delete(&name)?;
            crate::json::changed(
                json,
                "config key delete",
                serde_json::json!({ "key": name.to_string() }),
                &format!("deleted key {name}"),
            )?;
        }
        KeyCommand::List => {
            let keys = updater.keys();
            if json {
                return crate::json::print(crate::json::Doc::KeyList, &keys);
            }
            for k in keys {
                crate::outln!("{:<20} {} {} {}", k.name, k.algorithm, k.public_key.to_base64(), k.key_id);
            }
        }
    }
    Ok(())
}
