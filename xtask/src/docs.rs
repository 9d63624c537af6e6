//! Generated documentation: the man page, shell completions and the driver matrix.

use std::path::Path;
use std::process::Command;

use clap_complete::Shell;

use crate::sys::{Result, workspace};

fn write_or_check(path: &Path, bytes: &[u8], check: bool, stale: &mut Vec<String>) -> Result {
    if check {
        if std::fs::read(path).ok().as_deref() != Some(bytes) {
            stale.push(path.display().to_string());
        }
        return Ok(());
    }
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes (or with `check`, compares) every generated file.
pub fn generate(check: bool) -> Result {
    let root = workspace();
    let mut stale = Vec::new();
    let cmd = update_cli::command();
    let mut man = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut man).map_err(|e| e.to_string())?;
    write_or_check(&root.join("docs/man/update.1"), &man, check, &mut stale)?;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let mut page = Vec::new();
        // clap wants a 'static name; this runs once per subcommand in a short-lived tool.
        let name: &'static str = Box::leak(format!("update-{}", sub.get_name()).into_boxed_str());
        clap_mangen::Man::new(sub.clone().name(name)).render(&mut page).map_err(|e| e.to_string())?;
        write_or_check(&root.join(format!("docs/man/{name}.1")), &page, check, &mut stale)?;
    }
    for (shell, file) in [(Shell::Bash, "update.bash"), (Shell::Zsh, "_update"), (Shell::Fish, "update.fish")] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut cmd.clone(), "update", &mut out);
        write_or_check(&root.join(format!("docs/completions/{file}")), &out, check, &mut stale)?;
    }
    let matrix = driver_matrix()?;
    write_or_check(&root.join("docs/drivers-matrix.md"), matrix.as_bytes(), check, &mut stale)?;
    if check {
        let missing = missing_paths(&root)?;
        if !missing.is_empty() {
            return Err(format!("docs name files that are not in the repository:\n  {}", missing.join("\n  ")));
        }
    }
    if stale.is_empty() {
        Ok(())
    } else {
        Err(format!("generated files are out of date (run `cargo xtask docs`): {}", stale.join(", ")))
    }
}

/// The top-level directories a repository path in the docs starts with.
const TREE: &[&str] = &["crates/", "docs/", "tests/", "xtask/", "bench/", "dist/", "fuzz/", ".ci/"];

/// Every repository path named in README.md, CHANGELOG.md and docs/**/*.md that does not exist,
/// as `path (file:line)`. A path segment in capitals (`fuzz/seeds/TARGET`) is a placeholder.
fn missing_paths(root: &Path) -> Result<Vec<String>> {
    let mut files = vec![root.join("README.md"), root.join("CHANGELOG.md")];
    let mut dirs = vec![root.join("docs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut missing = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let shown = file.strip_prefix(root).unwrap_or(file).display().to_string();
        for (n, line) in text.lines().enumerate() {
            for path in repo_paths(line) {
                if !root.join(&path).exists() {
                    missing.push(format!("{path} ({shown}:{})", n + 1));
                }
            }
        }
    }
    Ok(missing)
}

/// The repository paths in one line of Markdown: a word that starts with one of [`TREE`] (not
/// inside a longer path or a URL), up to the first character that cannot be in our file names.
fn repo_paths(line: &str) -> Vec<String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-');
    let mut out = Vec::new();
    for (i, _) in line.char_indices() {
        let before = line[..i].chars().next_back();
        if before.is_some_and(|c| ok(c) || c == ':') || !TREE.iter().any(|t| line[i..].starts_with(t)) {
            continue;
        }
        let end = line[i..].find(|c: char| !ok(c)).map_or(line.len(), |e| i + e);
        let path = line[i..end].trim_end_matches(['.', '/']);
        let placeholder = path.split('/').any(|s| s.len() > 1 && s.chars().all(|c| c.is_ascii_uppercase() || c == '_'));
        if !placeholder && path.len() > 2 {
            out.push(path.to_owned());
        }
    }
    out
}

fn driver_matrix() -> Result<String> {
    let out = Command::new(env!("CARGO"))
        .current_dir(workspace())
        .args([
            "run",
            "-q",
            "-p",
            "update-cli",
            "--bin",
            "update",
            "--",
            "--root",
            "/nonexistent-root",
            "drivers",
            "--markdown",
        ])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("update drivers --markdown failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(format!(
        "<!-- Generated by `cargo xtask docs` from `update drivers --markdown`; CI checks it is current. -->\n{}",
        String::from_utf8_lossy(&out.stdout)
    ))
}

#[cfg(test)]
mod tests {
    use super::repo_paths;

    #[test]
    fn paths_are_found_in_prose_links_and_code_but_not_urls_or_placeholders() {
        assert_eq!(
            repo_paths("see `crates/update-core/src/lib.rs`, and docs/native.md."),
            ["crates/update-core/src/lib.rs", "docs/native.md"]
        );
        assert_eq!(repo_paths("[x](docs/a.md#anchor) (tests/system/)"), ["docs/a.md", "tests/system"]);
        assert!(repo_paths("https://example.com/docs/a.md and ../shared/tests/x and fuzz/seeds/TARGET").is_empty());
        assert!(repo_paths("upstream's swupd-client/docs/swupd.1.rst").is_empty());
    }
}
