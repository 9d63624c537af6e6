//! `update-tool repo`: signed repositories in TUF's format (docs/reference/repository.md).
//!
//! A thin front end over `update_repo::publish`; `repo verify` runs the device-side verifier.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use ed25519_dalek::SigningKey;
use time::{Duration, OffsetDateTime};
use update_bundle::signing;
use update_core::keyring::PublicKey;
use update_core::{Error, Result};
use update_repo::publish::{Expiries, Repository, RoleKeySet, parse_expiry};
use update_repo::{DirTransport, Role, TargetName, TrustAnchor, TufClient, tuf_key_id};

/// Repository commands.
#[derive(Debug, Subcommand)]
pub enum RepoCommand {
    /// Create a repository in DIR: root version 1 (consistent snapshots) and empty targets,
    /// snapshot and timestamp metadata.
    Init {
        /// The repository directory (metadata/ and targets/ are made inside).
        dir: PathBuf,
        /// A root private key (PKCS#8 PEM, as `update-tool key generate` writes); repeat for
        /// several. These keys also hold the other roles unless --targets-key, --snapshot-key or
        /// --timestamp-key name others.
        #[arg(long = "key", required = true)]
        keys: Vec<PathBuf>,
        /// A targets private key (repeatable).
        #[arg(long = "targets-key")]
        targets_keys: Vec<PathBuf>,
        /// A snapshot private key (repeatable).
        #[arg(long = "snapshot-key")]
        snapshot_keys: Vec<PathBuf>,
        /// A timestamp private key (repeatable).
        #[arg(long = "timestamp-key")]
        timestamp_keys: Vec<PathBuf>,
        /// Distinct signatures every role requires.
        #[arg(long, default_value_t = 1)]
        threshold: u64,
        /// When the root expires: a duration (365d, 52w, 1y) or an RFC 3339 time.
        #[arg(long, default_value = "1y")]
        expires: String,
    },
    /// Copy FILE into targets/ under its content-addressed name and stage it in the targets
    /// metadata; `repo sign` publishes it (or give --key to publish at once).
    Add {
        /// The repository directory.
        dir: PathBuf,
        /// The file (a bundle).
        file: PathBuf,
        /// The target's name (default: the file's name); `/`-separated, no `..`.
        #[arg(long)]
        name: Option<String>,
        /// Application data signed with the target: a JSON object.
        #[arg(long)]
        custom: Option<String>,
        /// Publish at once, signing with these keys (as `repo sign --key`).
        #[arg(long = "key")]
        keys: Vec<PathBuf>,
    },
    /// Publish: sign new versions of targets, snapshot and timestamp with the keys given.
    Sign {
        /// The repository directory.
        dir: PathBuf,
        /// A private key of the targets, snapshot or timestamp role; repeat for several.
        #[arg(long = "key", required = true)]
        keys: Vec<PathBuf>,
        /// When the targets and snapshot expire (duration or RFC 3339 time).
        #[arg(long, default_value = "90d")]
        expires: String,
        /// When the timestamp expires.
        #[arg(long, default_value = "1d")]
        timestamp_expires: String,
    },
    /// Replace a key of a role in a new root version, signed by the old and the new root keys.
    RotateKey {
        /// The repository directory.
        dir: PathBuf,
        /// The role whose key changes: root, targets, snapshot or timestamp.
        #[arg(long)]
        role: Role,
        /// The key to retire: a private key file, or a public key file (NAME.pub).
        #[arg(long)]
        old: PathBuf,
        /// The key that replaces it: a private key file, or a public key file.
        #[arg(long)]
        new: PathBuf,
        /// More root private keys to sign the new root with (repeatable); --old and --new sign
        /// too when they are private keys of the root role.
        #[arg(long = "key")]
        keys: Vec<PathBuf>,
        /// When the new root expires.
        #[arg(long, default_value = "1y")]
        expires: String,
    },
    /// Re-sign the timestamp only, with a new version and expiry (run it from cron).
    Refresh {
        /// The repository directory.
        dir: PathBuf,
        /// A timestamp private key; repeat for several.
        #[arg(long = "key", required = true)]
        keys: Vec<PathBuf>,
        /// When the new timestamp expires.
        #[arg(long, default_value = "1d")]
        expires: String,
    },
    /// Check a repository as a device would: the root chain, timestamp, snapshot, targets and
    /// every target's bytes.
    Verify {
        /// The repository directory.
        dir: PathBuf,
        /// The root to trust (default: DIR/metadata/1.root.json, so the whole chain is checked).
        #[arg(long)]
        root: Option<PathBuf>,
    },
}

fn read_keys(paths: &[PathBuf]) -> Result<Vec<SigningKey>> {
    paths.iter().map(|p| signing::read_private(p)).collect()
}

/// A key file: a private key (PEM) or a public key in any text form the keyring accepts.
fn read_any_key(path: &Path) -> Result<(PublicKey, Option<SigningKey>)> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
    if text.contains("PRIVATE KEY") {
        let key = signing::read_private(path)?;
        Ok((signing::public_key(&key), Some(key)))
    } else {
        let key = PublicKey::parse(&text).map_err(|e| Error::Keyring(format!("{}: {e}", path.display())))?;
        Ok((key, None))
    }
}

fn valid_for(text: &str, now: OffsetDateTime) -> Result<Duration> {
    let until = parse_expiry(text, now)?;
    if until <= now {
        return Err(Error::InvalidValue {
            what: "expiry".into(),
            value: text.into(),
            reason: "is not in the future".into(),
        });
    }
    Ok(until - now)
}

fn publics(keys: &[SigningKey]) -> Vec<PublicKey> {
    keys.iter().map(signing::public_key).collect()
}

/// Runs a repository command.
///
/// # Errors
/// Whatever the repository layer reports, as [`update_core::Error`].
pub fn run(cmd: RepoCommand) -> Result<()> {
    let now = OffsetDateTime::now_utc();
    match cmd {
        RepoCommand::Init { dir, keys, targets_keys, snapshot_keys, timestamp_keys, threshold, expires } => {
            let root = read_keys(&keys)?;
            let mut signers = root.clone();
            let mut role = |paths: &[PathBuf]| -> Result<Vec<PublicKey>> {
                if paths.is_empty() {
                    return Ok(publics(&root));
                }
                let k = read_keys(paths)?;
                signers.extend(k.iter().cloned());
                Ok(publics(&k))
            };
            let set = RoleKeySet {
                root: publics(&root),
                targets: role(&targets_keys)?,
                snapshot: role(&snapshot_keys)?,
                timestamp: role(&timestamp_keys)?,
            };
            let expiries = Expiries { root: valid_for(&expires, now)?, ..Expiries::default() };
            let repo = Repository::init(&dir, &set, threshold, &signers, &expiries, now)?;
            println!("initialised {}: root version 1, threshold {threshold}", dir.display());
            for r in Role::ALL {
                for k in repo.root().role_public_keys(r) {
                    println!("  {:<9} TUF key id {} (keyring key id {})", r.as_str(), tuf_key_id(&k), k.key_id());
                }
            }
            println!(
                "devices pin {} (or trust its signers' keys in their keyring)",
                dir.join("metadata/1.root.json").display()
            );
        }
        RepoCommand::Add { dir, file, name, custom, keys } => {
            let repo = Repository::open(&dir)?;
            let name = match name {
                Some(n) => n,
                None => file
                    .file_name()
                    .and_then(|n| n.to_str())
                    .ok_or_else(|| Error::Usage(format!("{}: give --name", file.display())))?
                    .to_owned(),
            };
            let name = TargetName::new(&name)?;
            let custom = custom
                .map(|c| {
                    serde_json::from_str(&c).map_err(|e| Error::InvalidValue {
                        what: "--custom".into(),
                        value: c.clone(),
                        reason: e.to_string(),
                    })
                })
                .transpose()?;
            let custom = with_bundle_head(&file, custom)?;
            let info = repo.add_target(&file, &name, custom)?;
            println!("staged {name}: {} bytes, sha256 {}", info.length, info.hashes["sha256"]);
            if keys.is_empty() {
                println!("publish with: update-tool repo sign {} --key …", dir.display());
            } else {
                sign(repo, &keys, &Expiries::default())?;
            }
        }
        RepoCommand::Sign { dir, keys, expires, timestamp_expires } => {
            let expiries = Expiries {
                targets: valid_for(&expires, now)?,
                snapshot: valid_for(&expires, now)?,
                timestamp: valid_for(&timestamp_expires, now)?,
                ..Expiries::default()
            };
            sign(Repository::open(&dir)?, &keys, &expiries)?;
        }
        RepoCommand::RotateKey { dir, role, old, new, keys, expires } => {
            let mut repo = Repository::open(&dir)?;
            let (old_key, old_private) = read_any_key(&old)?;
            let (new_key, new_private) = read_any_key(&new)?;
            let mut signers = read_keys(&keys)?;
            signers.extend(old_private);
            signers.extend(new_private);
            let version = repo.rotate_key(role, &old_key, &new_key, &signers, valid_for(&expires, now)?, now)?;
            println!(
                "root version {version}: {role} key {} replaced by {}",
                tuf_key_id(&old_key),
                tuf_key_id(&new_key)
            );
            let still: Vec<&str> = Role::ALL
                .into_iter()
                .filter(|r| repo.root().role_public_keys(*r).contains(&old_key))
                .map(Role::as_str)
                .collect();
            if !still.is_empty() {
                println!("the old key still holds the role(s): {}", still.join(", "));
            }
            if role == Role::Root {
                println!("devices follow the chain from any earlier root");
            } else {
                println!(
                    "devices refuse {role} metadata signed by the old key from now on: run `update-tool repo {} {} --key <new key> …`",
                    if role == Role::Timestamp { "refresh" } else { "sign" },
                    dir.display()
                );
            }
        }
        RepoCommand::Refresh { dir, keys, expires } => {
            let repo = Repository::open(&dir)?;
            let version = repo.refresh_timestamp(&read_keys(&keys)?, valid_for(&expires, now)?, now)?;
            println!(
                "timestamp version {version}, expires {}",
                update_repo::metadata::expires::format(now + valid_for(&expires, now)?)
            );
        }
        RepoCommand::Verify { dir, root } => verify(&dir, root.as_deref(), now)?,
    }
    Ok(())
}

fn sign(mut repo: Repository, keys: &[PathBuf], expiries: &Expiries) -> Result<()> {
    let published = repo.sign(&read_keys(keys)?, expiries, OffsetDateTime::now_utc())?;
    println!(
        "published targets version {} ({} target(s)), snapshot version {}, timestamp version {}",
        published.targets_version, published.targets, published.snapshot_version, published.timestamp_version
    );
    Ok(())
}

fn verify(dir: &Path, root: Option<&Path>, now: OffsetDateTime) -> Result<()> {
    let root_path = root.map_or_else(|| dir.join("metadata/1.root.json"), Path::to_path_buf);
    let pinned = std::fs::read(&root_path).map_err(|e| Error::io("read", &root_path, e))?;
    let state = tempfile::tempdir().map_err(|e| Error::io("create temporary directory", std::env::temp_dir(), e))?;
    let updater = TufClient::new(DirTransport::new(dir), state.path(), TrustAnchor::PinnedRoot(pinned));
    let trusted = updater.refresh(now)?;
    let mut bytes = 0u64;
    let names: Vec<TargetName> = trusted.target_names().collect();
    for name in &names {
        bytes += updater.fetch_target(&trusted, name)?.len() as u64;
    }
    let exp = |t| update_repo::metadata::expires::format(t);
    let root = &trusted.root().signed;
    println!("{}: OK", dir.display());
    println!("  root      version {} expires {}", root.version, exp(root.expires));
    if let (Some(ts), Some(snap), Some(targets)) = (trusted.timestamp(), trusted.snapshot(), trusted.targets()) {
        println!("  timestamp version {} expires {}", ts.signed.version, exp(ts.signed.expires));
        println!("  snapshot  version {} expires {}", snap.signed.version, exp(snap.signed.expires));
        println!("  targets   version {} expires {}", targets.signed.version, exp(targets.signed.expires));
    }
    println!("  {} target(s), {bytes} byte(s), every length and digest verified", names.len());
    Ok(())
}

/// Adds the bundle's head hash ([`update_core::driver::BUNDLE_HEAD_SHA256`]) to a target's
/// custom metadata when the file is a native bundle, so devices can stream it (install while
/// reading from the server) with the head checked against the signed metadata. Other files
/// are left as they are.
fn with_bundle_head(file: &std::path::Path, custom: Option<serde_json::Value>) -> Result<Option<serde_json::Value>> {
    let f = std::fs::File::open(file).map_err(|e| Error::io("open", file, e))?;
    let Ok(bundle) = update_bundle::BundleReader::open(std::io::BufReader::new(f), &file.display().to_string()) else {
        return Ok(custom);
    };
    let mut custom = custom.unwrap_or_else(|| serde_json::json!({}));
    if let Some(map) = custom.as_object_mut() {
        map.insert(update_core::driver::BUNDLE_HEAD_SHA256.to_owned(), bundle.head_sha256().into());
    }
    Ok(Some(custom))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: RepoCommand,
    }

    fn repo(args: &[&str]) -> Result<()> {
        let cli = Cli::try_parse_from(std::iter::once("repo").chain(args.iter().copied()))
            .map_err(|e| Error::Usage(e.to_string()))?;
        run(cli.cmd)
    }

    fn key(dir: &Path, name: &str) -> String {
        let key = signing::generate().unwrap();
        let path = dir.join(format!("{name}.key"));
        std::fs::write(&path, signing::private_pem(&key).unwrap()).unwrap();
        std::fs::write(dir.join(format!("{name}.pub")), signing::public_text(&key)).unwrap();
        path.display().to_string()
    }

    #[test]
    fn init_add_sign_refresh_rotate_verify() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        let (root, targets, ts, root2) = (key(t, "root"), key(t, "targets"), key(t, "ts"), key(t, "root2"));
        let dir = t.join("repo");
        let d = dir.to_str().unwrap();
        repo(&["init", d, "--key", &root, "--targets-key", &targets, "--timestamp-key", &ts, "--expires", "30d"])
            .unwrap();
        assert!(repo(&["init", d, "--key", &root]).is_err(), "init over an existing repository");
        let bundle = t.join("app-1.0.upd");
        std::fs::write(&bundle, b"app 1.0").unwrap();
        let b = bundle.to_str().unwrap();
        repo(&["add", d, b, "--custom", r#"{"version":"1.0"}"#]).unwrap();
        // The root key signs the snapshot; targets and timestamp have their own keys.
        let err = repo(&["sign", d, "--key", &root, "--key", &ts]).unwrap_err();
        assert_eq!(err.kind(), update_core::ErrorKind::Failure, "{err}");
        repo(&["sign", d, "--key", &root, "--key", &targets, "--key", &ts]).unwrap();
        repo(&["add", d, b, "--name", "boards/pi4/app.upd", "--key", &root, "--key", &targets, "--key", &ts]).unwrap();
        repo(&["refresh", d, "--key", &ts, "--expires", "12h"]).unwrap();
        repo(&["verify", d]).unwrap();
        repo(&["rotate-key", d, "--role", "root", "--old", &root, "--new", &root2]).unwrap();
        let ts_pub = t.join("ts.pub");
        let ts2 = key(t, "ts2");
        repo(&[
            "rotate-key",
            d,
            "--role",
            "timestamp",
            "--old",
            ts_pub.to_str().unwrap(),
            "--new",
            &ts2,
            "--key",
            &root2,
        ])
        .unwrap();
        // The timestamp on disk is signed by the retired key: devices refuse it.
        let err = repo(&["verify", d]).unwrap_err();
        assert_eq!(err.kind(), update_core::ErrorKind::Verification, "{err}");
        repo(&["refresh", d, "--key", &ts2]).unwrap();
        repo(&["verify", d]).unwrap();
        repo(&["verify", d, "--root", dir.join("metadata/3.root.json").to_str().unwrap()]).unwrap();
        assert!(repo(&["add", d, b, "--name", "../escape"]).is_err());
        assert!(repo(&["sign", d, "--key", &root2, "--expires", "soon"]).is_err());
    }
}
