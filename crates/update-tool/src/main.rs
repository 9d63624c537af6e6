//! `update-tool`: keys and bundles, for build machines.

use std::fs::OpenOptions;
use std::io::{BufReader, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod cert;
mod repo;

use clap::{Parser, Subcommand};
use update_bundle::{BundleReader, CreateOptions, HookKind, signing};
use update_core::config::Verify;
use update_core::keyring::{Keyring, PublicKey};
use update_core::{Error, KeyName, Result, SlotGroupName, parse_version};

/// Keys and bundles for libupdate.
///
/// Exit codes are those of `update` (docs/reference/exit-codes.md): 0 success, 2 usage,
/// 6 verification failed, 7 refused (a key file exists), 9 I/O, 11 key problems.
#[derive(Debug, Parser)]
#[command(name = "update-tool", version, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Signing keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Bundles.
    #[command(subcommand)]
    Bundle(BundleCommand),
    /// Signed repositories in TUF's format.
    #[command(subcommand)]
    Repo(repo::RepoCommand),
    /// A small PKI for a fleet: a CA, update-server's certificate, device certificates.
    #[command(subcommand)]
    Cert(cert::CertCommand),
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Make an ed25519 key pair: DIR/NAME.key (private, PKCS#8 PEM, mode 0600) and DIR/NAME.pub
    /// (base64 of the public key, what `update config key add` takes).
    Generate {
        /// The key's name.
        name: String,
        /// The directory to write to.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum BundleCommand {
    /// Make a signed bundle.
    Create {
        /// The bundle file to write.
        #[arg(long)]
        out: PathBuf,
        /// Release version (semver).
        #[arg(long)]
        version: String,
        /// The board it is for.
        #[arg(long)]
        compatible: String,
        /// A private key file; repeat for several signatures. The key's name is the file stem.
        #[arg(long = "key", required = true)]
        keys: Vec<PathBuf>,
        /// The oldest installed version this bundle may be installed over.
        #[arg(long)]
        min_version: Option<String>,
        /// An image: SLOT-GROUP=PATH (e.g. rootfs=rootfs.ext4); repeat for several.
        #[arg(long = "image", required = true)]
        images: Vec<String>,
        /// A hook script: KIND=PATH (KIND: post-install).
        #[arg(long = "hook")]
        hooks: Vec<String>,
        /// Uncompressed chunk size in KiB (1 to 16384).
        #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=16384))]
        chunk_kib: u64,
        /// zstd level (1-19).
        #[arg(long, default_value_t = 3)]
        level: i32,
    },
    /// Verify a bundle completely: signatures, structure and every chunk.
    Verify {
        /// The bundle.
        file: PathBuf,
        /// A trusted public key file; repeat for several.
        #[arg(long = "pub", required = true)]
        pubs: Vec<PathBuf>,
        /// Distinct trusted signatures required.
        #[arg(long, default_value_t = 1)]
        threshold: u32,
    },
    /// Show what a bundle says it contains (NOT verified; use `verify`).
    Info {
        /// The bundle.
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn split_pair(what: &str, text: &str) -> Result<(String, PathBuf)> {
    let (k, v) = text.split_once('=').ok_or_else(|| Error::InvalidValue {
        what: what.into(),
        value: text.into(),
        reason: "expected NAME=PATH".into(),
    })?;
    Ok((k.to_owned(), PathBuf::from(v)))
}

fn key_name(path: &Path) -> Result<KeyName> {
    KeyName::new(&path.file_stem().unwrap_or_default().to_string_lossy())
}

fn create_new(path: &Path, mode: u32) -> Result<std::fs::File> {
    OpenOptions::new().write(true).create_new(true).mode(mode).open(path).map_err(|e| Error::io("create", path, e))
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Key(KeyCommand::Generate { name, out }) => {
            let name = KeyName::new(&name)?;
            std::fs::create_dir_all(&out).map_err(|e| Error::io("create directory", &out, e))?;
            let (kpath, ppath) = (out.join(format!("{name}.key")), out.join(format!("{name}.pub")));
            for p in [&kpath, &ppath] {
                if p.exists() {
                    return Err(Error::Refused(format!("{} exists; refusing to overwrite a key", p.display())));
                }
            }
            let key = signing::generate()?;
            let mut f = create_new(&kpath, 0o600)?;
            f.write_all(signing::private_pem(&key)?.as_bytes()).map_err(|e| Error::io("write", &kpath, e))?;
            f.sync_all().map_err(|e| Error::io("fsync", &kpath, e))?;
            let mut f = create_new(&ppath, 0o644)?;
            writeln!(f, "{}", signing::public_text(&key)).map_err(|e| Error::io("write", &ppath, e))?;
            println!(
                "wrote {} and {} (key id {})",
                kpath.display(),
                ppath.display(),
                signing::public_key(&key).key_id()
            );
        }
        Command::Bundle(BundleCommand::Create {
            out,
            version,
            compatible,
            keys,
            min_version,
            images,
            hooks,
            chunk_kib,
            level,
        }) => {
            let mut opts = CreateOptions::new(parse_version(&version)?, &compatible);
            opts.min_version = min_version.as_deref().map(parse_version).transpose()?;
            opts.chunk_size = chunk_kib * 1024;
            opts.zstd_level = level;
            for k in &keys {
                opts.signers.push((key_name(k)?, signing::read_private(k)?));
            }
            for i in &images {
                let (g, p) = split_pair("--image", i)?;
                opts.images.push((SlotGroupName::new(&g)?, p));
            }
            for h in &hooks {
                let (k, p) = split_pair("--hook", h)?;
                opts.hooks.push((k.parse::<HookKind>()?, p));
            }
            let dir = out.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
            let mut scratch = tempfile::tempfile_in(dir).map_err(|e| Error::io("create scratch file in", dir, e))?;
            let tmp =
                tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io("create temporary file in", dir, e))?;
            let mut w = BufWriter::with_capacity(1 << 20, tmp.as_file());
            let manifest = update_bundle::create(&opts, &mut scratch, &mut w)?;
            drop(w);
            tmp.as_file().sync_all().map_err(|e| Error::io("fsync", &out, e))?;
            tmp.persist(&out).map_err(|e| Error::io("rename into place", &out, e.error))?;
            let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
            let raw: u64 = manifest.images.iter().map(|i| i.size).sum();
            println!(
                "wrote {} ({} bytes; images {} bytes; {} signature(s))",
                out.display(),
                size,
                raw,
                manifest.signers.len()
            );
        }
        Command::Bundle(BundleCommand::Verify { file, pubs, threshold }) => {
            let mut ring = Keyring::default();
            for p in &pubs {
                let text = std::fs::read_to_string(p).map_err(|e| Error::io("read", p, e))?;
                ring.add(key_name(p)?, PublicKey::parse(&text)?, "")?;
            }
            let f = std::fs::File::open(&file).map_err(|e| Error::io("open", &file, e))?;
            let reader = BundleReader::open(BufReader::with_capacity(1 << 20, f), &file.display().to_string())?;
            let mut verified = reader.verify(&ring, threshold, Verify::Signatures)?;
            let mut bytes = 0u64;
            verified.stream(|_, _, data| {
                bytes += data.len() as u64;
                Ok(())
            })?;
            let m = verified.manifest();
            println!(
                "{}: OK — version {} for {}, {} image byte(s) verified, signed by {}",
                file.display(),
                m.version,
                m.compatible,
                bytes,
                verified.trusted_signers().join(", ")
            );
        }
        Command::Bundle(BundleCommand::Info { file, json }) => {
            let f = std::fs::File::open(&file).map_err(|e| Error::io("open", &file, e))?;
            let reader = BundleReader::open(BufReader::new(f), &file.display().to_string())?;
            let m = reader.manifest();
            if json {
                let v = serde_json::json!({
                    "verified": false,
                    "version": m.version.to_string(),
                    "compatible": m.compatible,
                    "min-version": m.min_version.as_ref().map(ToString::to_string),
                    "created": m.created,
                    "signers": m.signers,
                    "chunk-size": m.chunk_size,
                    "payload-size": m.payload_size,
                    "images": m.images.iter().map(|i| serde_json::json!({
                        "slot-group": i.slot_group, "size": i.size, "sha256": i.sha256, "chunks": i.chunks.len(),
                    })).collect::<Vec<_>>(),
                    "hooks": m.hooks.iter().map(|h| h.kind.as_str()).collect::<Vec<_>>(),
                });
                println!("{}", serde_json::to_string_pretty(&v).map_err(|e| Error::Other(e.to_string()))?);
            } else {
                println!("{} (not verified: run `update-tool bundle verify`)", file.display());
                println!("  version     {}", m.version);
                println!("  compatible  {}", m.compatible);
                if let Some(v) = &m.min_version {
                    println!("  min-version {v}");
                }
                println!("  created     {}", m.created);
                for s in &m.signers {
                    println!("  signer      {} {}", s.name, s.key_id);
                }
                for i in &m.images {
                    println!(
                        "  image       {} {} bytes, {} chunks, sha256 {}",
                        i.slot_group,
                        i.size,
                        i.chunks.len(),
                        i.sha256
                    );
                }
                for h in &m.hooks {
                    println!("  hook        {}", h.kind.as_str());
                }
            }
        }
        Command::Repo(cmd) => repo::run(cmd)?,
        Command::Cert(cmd) => cert::run(cmd)?,
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("update-tool: error: {e}");
            ExitCode::from(e.kind().exit_code())
        }
    }
}
