//! `update-tool`: keys and bundles, for build machines.
//!
//! The binary is a thin `main` over [`main`]; [`command`] gives the clap definition to the man
//! page and completion generator (`cargo xtask docs`), which stays out of the binary.

use std::fs::OpenOptions;
use std::io::{BufReader, BufWriter, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
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
/// Exit codes are those of `update`: 0 success, 2 usage, 6 verification failed, 7 refused (a
/// key file exists), 9 I/O, 11 key problems.
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
// Parsed once per run: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
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
        #[arg(long = "image", required_unless_present = "components")]
        images: Vec<String>,
        /// A component beside the images (bundle format 2): NAME:KIND:VERSION=PATH, e.g.
        /// mcu:firmware:2.1.0=zephyr.signed.bin; KIND is files, app, firmware, data, fwupd or
        /// an out-of-tree handler's kind. Repeat for several.
        #[arg(long = "component")]
        components: Vec<String>,
        /// A requirement of a component on another: NAME:OTHER:VERSIONS, e.g. web-ui:mcu:>=2.1.
        #[arg(long = "requires")]
        requires: Vec<String>,
        /// A kind-specific option of a component: NAME:KEY=VALUE; VALUE is JSON (true, 3,
        /// ["a","b"], {"k":"v"}), or else taken as a string.
        #[arg(long = "option")]
        options: Vec<String>,
        /// A hook script: KIND=PATH (KIND: post-install).
        #[arg(long = "hook")]
        hooks: Vec<String>,
        /// Uncompressed chunk size in KiB (1 to 16384).
        #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=16384))]
        chunk_kib: u64,
        /// zstd level (1-19).
        #[arg(long, default_value_t = 3)]
        level: i32,
        /// Add a delta index of 4 KiB blocks and a store of them (bundle format 3): a device
        /// streaming the bundle fetches only the blocks it does not already have. The chunk size
        /// must be a multiple of 4 KiB.
        #[arg(long)]
        delta: bool,
        /// An image of the release most devices will update from (repeat for each slot
        /// group): blocks not in it go first in the store, so those devices fetch them in one
        /// request. Implies --delta.
        #[arg(long = "delta-base")]
        delta_base: Vec<PathBuf>,
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

/// `--component NAME:KIND:VERSION=PATH`, `--requires NAME:OTHER:VERSIONS` and
/// `--option NAME:KEY=VALUE` into the writer's component list.
fn component_sources(
    components: &[String],
    requires: &[String],
    options: &[String],
) -> Result<Vec<update_bundle::ComponentSource>> {
    use update_core::component::{ComponentName, Kind, Requirement};
    let bad = |what: &str, value: &str, reason: &str| Error::InvalidValue {
        what: what.into(),
        value: value.into(),
        reason: reason.into(),
    };
    let mut out: Vec<update_bundle::ComponentSource> = Vec::new();
    for c in components {
        let (spec, path) = split_pair("--component", c)?;
        let mut it = spec.splitn(3, ':');
        let (Some(name), Some(kind), Some(version)) = (it.next(), it.next(), it.next()) else {
            return Err(bad("--component", c, "expected NAME:KIND:VERSION=PATH"));
        };
        out.push(update_bundle::ComponentSource {
            name: ComponentName::new(name)?,
            kind: Kind::parse(kind)?,
            version: parse_version(version)?,
            requires: Vec::new(),
            options: update_core::component::Settings::new(),
            path,
        });
    }
    let find = |out: &mut Vec<update_bundle::ComponentSource>, name: &str, arg: &str, value: &str| {
        let i = out.iter().position(|c| c.name.as_str() == name);
        i.ok_or_else(|| bad(arg, value, &format!("no --component named '{name}'")))
    };
    for r in requires {
        let mut it = r.splitn(3, ':');
        let (Some(name), Some(other), Some(versions)) = (it.next(), it.next(), it.next()) else {
            return Err(bad("--requires", r, "expected NAME:OTHER:VERSIONS, e.g. web-ui:mcu:>=2.1"));
        };
        let i = find(&mut out, name, "--requires", r)?;
        let versions = semver::VersionReq::parse(versions).map_err(|e| bad("--requires", r, &e.to_string()))?;
        out[i].requires.push(Requirement { component: ComponentName::new(other)?, versions });
    }
    for o in options {
        let (name, rest) = o.split_once(':').ok_or_else(|| bad("--option", o, "expected NAME:KEY=VALUE"))?;
        let (key, value) = rest.split_once('=').ok_or_else(|| bad("--option", o, "expected NAME:KEY=VALUE"))?;
        let i = find(&mut out, name, "--option", o)?;
        let value = serde_json::from_str(value).unwrap_or_else(|_| serde_json::Value::String(value.to_owned()));
        out[i].options.insert(key.to_owned(), value);
    }
    Ok(out)
}

fn key_name(path: &Path) -> Result<KeyName> {
    KeyName::new(&path.file_stem().unwrap_or_default().to_string_lossy())
}

fn create_new(path: &Path, mode: u32) -> Result<std::fs::File> {
    let f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| Error::io("create", path, e))?;
    // Exactly `mode`, whatever the umask: a public key is 0644, a private key 0600.
    f.set_permissions(std::fs::Permissions::from_mode(mode)).map_err(|e| Error::io("set the mode of", path, e))?;
    Ok(f)
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
            components,
            requires,
            options,
            hooks,
            chunk_kib,
            level,
            delta,
            delta_base,
        }) => {
            let mut opts = CreateOptions::new(parse_version(&version)?, &compatible);
            opts.min_version = min_version.as_deref().map(parse_version).transpose()?;
            opts.chunk_size = chunk_kib * 1024;
            opts.zstd_level = level;
            opts.delta = delta || !delta_base.is_empty();
            if opts.delta && !opts.chunk_size.is_multiple_of(update_bundle::delta::BLOCK_SIZE) {
                return Err(update_core::Error::InvalidValue {
                    what: "--chunk-kib".into(),
                    value: chunk_kib.to_string(),
                    reason: "a delta bundle's chunks must be whole 4 KiB blocks".into(),
                });
            }
            opts.delta_base = delta_base;
            for k in &keys {
                opts.signers.push((key_name(k)?, signing::read_private(k)?));
            }
            for i in &images {
                let (g, p) = split_pair("--image", i)?;
                opts.images.push((SlotGroupName::new(&g)?, p));
            }
            opts.components = component_sources(&components, &requires, &options)?;
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
            // A bundle is a public artefact (served, copied to devices): 0644 whatever the umask;
            // the temporary file it is built in starts 0600.
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644))
                .map_err(|e| Error::io("set mode 0644 of", tmp.path(), e))?;
            tmp.as_file().sync_all().map_err(|e| Error::io("fsync", &out, e))?;
            tmp.persist(&out).map_err(|e| Error::io("rename into place", &out, e.error))?;
            let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
            let raw: u64 = manifest.images.iter().map(|i| i.size).sum();
            let parts: u64 = manifest.components.iter().map(|c| c.component.size).sum();
            println!(
                "wrote {} ({} bytes; images {} bytes; components {} bytes; {} signature(s))",
                out.display(),
                size,
                raw,
                parts,
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
            let mut component_bytes = 0u64;
            for i in 0..verified.manifest().components.len() {
                component_bytes += std::io::copy(&mut verified.component_reader(i)?, &mut std::io::sink())
                    .map_err(|e| Error::Other(e.to_string()))?;
            }
            let m = verified.manifest();
            println!(
                "{}: OK — version {} for {}, {} image byte(s) and {} component byte(s) verified, signed by {}",
                file.display(),
                m.version,
                m.compatible,
                bytes,
                component_bytes,
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
                    "components": m.components.iter().map(|c| serde_json::json!({
                        "name": c.component.name, "kind": c.component.kind, "version": c.component.version.to_string(),
                        "size": c.component.size, "sha256": c.component.sha256, "chunks": c.chunks.len(),
                        "requires": c.component.requires, "options": c.component.options,
                    })).collect::<Vec<_>>(),
                    "hooks": m.hooks.iter().map(|h| h.kind.as_str()).collect::<Vec<_>>(),
                    "delta": m.delta.as_ref().map(|d| serde_json::json!({
                        "block-size": d.block_size, "index-size": d.index_size, "store-size": d.store_size,
                    })),
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
                for c in &m.components {
                    let c_ = &c.component;
                    println!(
                        "  component   {} {} {} {} bytes, {} chunks, sha256 {}",
                        c_.name,
                        c_.kind,
                        c_.version,
                        c_.size,
                        c.chunks.len(),
                        c_.sha256
                    );
                    for r in &c_.requires {
                        println!("    requires  {} {}", r.component, r.versions);
                    }
                }
                for h in &m.hooks {
                    println!("  hook        {}", h.kind.as_str());
                }
                if let Some(d) = &m.delta {
                    println!(
                        "  delta       {}-byte blocks, index {} bytes, store {} bytes",
                        d.block_size, d.index_size, d.store_size
                    );
                }
            }
        }
        Command::Repo(cmd) => repo::run(cmd)?,
        Command::Cert(cmd) => cert::run(cmd)?,
    }
    Ok(())
}

/// The clap command (for the man page and shell completions).
#[must_use]
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Runs the command line and returns the process exit code.
#[must_use]
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("update-tool: error: {e}");
            ExitCode::from(e.kind().exit_code())
        }
    }
}
