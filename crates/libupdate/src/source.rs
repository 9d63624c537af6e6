//! Resolving the update source to local update files.
//!
//! `file://PATH` names either one update file (any name) or a directory whose update files
//! (by extension, [`UPDATE_EXTENSIONS`]: `.bundle`, `.raucb`, `.swu`, `.mender`) are the
//! candidates; other files (a README, an index page) are ignored. The driver inspects each
//! candidate and the newest eligible one wins. `https://` and
//! `http://` sources are fetched by the `update-fetch` layer (the repository issue); until it
//! lands they are refused with a clear error.

use std::path::PathBuf;

use update_core::config::SourceUrl;
use update_core::{Error, Paths, Result};

/// File extensions of update files in a directory source.
pub const UPDATE_EXTENSIONS: [&str; 4] = ["bundle", "raucb", "swu", "mender"];

/// What a source offers.
#[derive(Debug, Clone)]
pub struct Offer {
    /// Local update files.
    pub files: Vec<PathBuf>,
    /// Whether the source names one file (then an ineligible file is an error, not "no update").
    pub single: bool,
}

/// The local files a source offers.
///
/// # Errors
/// [`Error::Source`] when the source cannot be read.
pub fn candidates(paths: &Paths, url: &SourceUrl) -> Result<Offer> {
    let Some(p) = url.file_path() else {
        return Err(Error::Source {
            url: url.to_string(),
            reason: format!(
                "{}:// sources need the update-fetch layer, which this build does not have yet",
                url.scheme()
            ),
        });
    };
    let path = paths.resolve(p);
    let meta = std::fs::metadata(&path)
        .map_err(|e| Error::Source { url: url.to_string(), reason: format!("{}: {e}", path.display()) })?;
    if meta.is_file() {
        return Ok(Offer { files: vec![path], single: true });
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&path)
        .map_err(|e| Error::Source { url: url.to_string(), reason: format!("{}: {e}", path.display()) })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .filter(|p| p.extension().is_some_and(|e| UPDATE_EXTENSIONS.iter().any(|x| e == *x)))
        .collect();
    files.sort();
    // An empty directory is a source with no releases yet: "no update", not an error.
    Ok(Offer { files, single: false })
}
