//! The client-under-test CLI of the TUF conformance suite (`tuf-conformance`'s CLIENT-CLI.md),
//! over `update-repo`'s device-side verifier and `update-fetch`'s HTTP transport:
//!
//! ```text
//! tuf-conformance-client --metadata-dir DIR init TRUSTED_ROOT
//! tuf-conformance-client --metadata-dir DIR --metadata-url URL refresh
//! tuf-conformance-client --metadata-dir DIR --metadata-url URL --target-name NAME… \
//!     --target-base-url URL --target-dir DIR download
//! ```
//!
//! The metadata directory is the verifier's state directory (`root.json`, `timestamp.json`, …,
//! one `<role>.json` per delegated role). Exit code 0 on success, 1 on any failure.
//! Test tooling only: run by `tests/tuf-conformance/run.sh`, never installed on a device.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use update_repo::target_name::role_file_name;
use update_repo::{FetchError, TargetName, Transport, TrustAnchor, TufClient};

/// TUF conformance client over libupdate's update-repo.
#[derive(Debug, Parser)]
struct Cli {
    /// Directory of the trusted metadata.
    #[arg(long)]
    metadata_dir: PathBuf,
    /// Base URL of the repository's metadata.
    #[arg(long)]
    metadata_url: Option<String>,
    /// Target to download (repeatable; processed in order).
    #[arg(long)]
    target_name: Vec<String>,
    /// Base URL of the repository's targets.
    #[arg(long)]
    target_base_url: Option<String>,
    /// Directory for downloaded targets.
    #[arg(long)]
    target_dir: Option<PathBuf>,
    /// More output (accepted for compatibility).
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Trust the given root.json (copied into the metadata directory; nothing is fetched).
    Init {
        /// The initial trusted root.
        trusted_root: PathBuf,
    },
    /// Update the metadata by the TUF client workflow.
    Refresh,
    /// Refresh, then download and verify each --target-name into --target-dir.
    Download,
}

/// Repository files over HTTP, below a base URL.
struct Http {
    base: String,
    fetcher: update_fetch::Fetcher,
}

impl Http {
    fn new(base: &str) -> Result<Self, String> {
        let fetcher = update_fetch::Fetcher::new(update_fetch::FetchOptions {
            plaintext: update_fetch::Plaintext::AllowVerifiedContent,
            attempts: 1,
            ..update_fetch::FetchOptions::default()
        })
        .map_err(|e| e.to_string())?;
        Ok(Self { base: base.trim_end_matches('/').to_owned(), fetcher })
    }
}

impl Transport for Http {
    fn fetch(&self, path: &str, max_bytes: u64) -> Result<Vec<u8>, FetchError> {
        let url = format!("{}/{path}", self.base);
        match self.fetcher.get_bytes(&url, max_bytes) {
            Ok(Some(b)) => Ok(b),
            Ok(None) => Err(FetchError::NotFound),
            Err(e) if e.kind() == update_core::ErrorKind::Verification => {
                Err(FetchError::TooLarge { limit: max_bytes })
            }
            Err(e) => Err(FetchError::Failed(e.to_string())),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tuf-conformance-client: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: &Cli) -> Result<(), String> {
    let root_path = cli.metadata_dir.join("root.json");
    if let Command::Init { trusted_root } = &cli.command {
        let bytes = std::fs::read(trusted_root).map_err(|e| format!("read {}: {e}", trusted_root.display()))?;
        return std::fs::write(&root_path, bytes).map_err(|e| format!("write {}: {e}", root_path.display()));
    }
    let metadata_url = cli.metadata_url.as_deref().ok_or("--metadata-url is required")?;
    // The trusted root is the one in the metadata directory (init put it there; refreshes
    // replace it with each newer root they trust).
    let root = std::fs::read(&root_path).map_err(|e| format!("read {}: {e}", root_path.display()))?;
    // The verifier fetches `metadata/…` and `targets/…`: the two URLs of the protocol.
    let targets = cli.target_base_url.as_deref().map(Http::new).transpose()?;
    let transport = Split { metadata: Http::new(metadata_url)?, targets };
    let updater = TufClient::new(transport, &cli.metadata_dir, TrustAnchor::PinnedRoot(root));
    let now = time::OffsetDateTime::now_utc();
    let mut trusted = updater.refresh(now).map_err(|e| e.to_string())?;
    if matches!(cli.command, Command::Refresh) {
        return Ok(());
    }
    let target_dir = cli.target_dir.as_ref().ok_or("--target-dir is required")?;
    for name in &cli.target_name {
        let name = TargetName::new(name).map_err(|e| e.to_string())?;
        updater.find_target(&mut trusted, &name, now).map_err(|e| e.to_string())?;
        let path = target_dir.join(role_file_name(name.as_str()));
        // A copy already downloaded and still matching is not fetched again.
        if std::fs::read(&path).is_ok_and(|b| trusted.verify_target(&name, &b).is_ok()) {
            continue;
        }
        let data = updater.fetch_target(&trusted, &name).map_err(|e| e.to_string())?;
        write_in_download_order(target_dir, &path, &data)?;
    }
    Ok(())
}

/// Writes a downloaded target so that its modification time is later than every other file's in
/// `dir`. The suite lists downloads in modification-time order, and two downloads a few
/// milliseconds apart can get the same time from the kernel's coarse file clock (one tick, up to
/// 10 ms), which would list them in directory order instead.
fn write_in_download_order(dir: &std::path::Path, path: &std::path::Path, data: &[u8]) -> Result<(), String> {
    let newest_other = std::fs::read_dir(dir)
        .map_err(|e| format!("read {}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .filter(|entry| entry.path() != path)
        .filter_map(|entry| entry.metadata().ok()?.modified().ok())
        .max();
    let file = std::fs::File::create(path).map_err(|e| format!("create {}: {e}", path.display()))?;
    std::io::Write::write_all(&mut &file, data).map_err(|e| format!("write {}: {e}", path.display()))?;
    let written = file.metadata().and_then(|m| m.modified()).map_err(|e| format!("stat {}: {e}", path.display()))?;
    if let Some(newest) = newest_other.filter(|newest| written <= *newest) {
        let later = newest + std::time::Duration::from_millis(1);
        file.set_modified(later).map_err(|e| format!("set the time of {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Maps the verifier's `metadata/NAME` and `targets/NAME` onto the two base URLs.
struct Split {
    metadata: Http,
    targets: Option<Http>,
}

impl Transport for Split {
    fn fetch(&self, path: &str, max_bytes: u64) -> Result<Vec<u8>, FetchError> {
        if let Some(rest) = path.strip_prefix("metadata/") {
            return self.metadata.fetch(rest, max_bytes);
        }
        match (path.strip_prefix("targets/"), &self.targets) {
            (Some(rest), Some(targets)) => targets.fetch(rest, max_bytes),
            _ => Err(FetchError::Failed(format!("no base URL for {path}"))),
        }
    }
}
