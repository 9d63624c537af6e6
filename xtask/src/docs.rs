//! Generated documentation: the man pages (crate::man), shell completions and the driver matrix.

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
    for page in crate::man::PAGES {
        let text = crate::man::render(page, &crate::man::extra(&root, page)?)?;
        write_or_check(&root.join("docs/man").join(page.file), &text, check, &mut stale)?;
    }
    // Only the generated and the hand-written pages: a page left from an older layout would
    // be installed by the package.
    for entry in std::fs::read_dir(root.join("docs/man")).map_err(|e| format!("docs/man: {e}"))? {
        let name = entry.map_err(|e| e.to_string())?.file_name().to_string_lossy().into_owned();
        if !crate::man::PAGES.iter().any(|p| p.file == name) && !crate::man::HAND_WRITTEN.contains(&name.as_str()) {
            if check {
                stale.push(format!("docs/man/{name} (not a page we generate or write)"));
            } else {
                let path = root.join("docs/man").join(&name);
                std::fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
    }
    for (name, cmd) in [
        ("update", crate::man::update_command()),
        ("update-tool", update_tool::command()),
        ("update-server", update_server::cli::command()),
    ] {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let (file, text) = completion(shell, name, cmd.clone())?;
            write_or_check(&root.join("docs/completions").join(file), text.as_bytes(), check, &mut stale)?;
        }
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

/// One shell's completion script for `name`: clap_complete's, plus for `update` the names of
/// the trusted keys where an argument takes one ([`crate::man::KEY_NAME`]).
fn completion(shell: Shell, name: &str, mut cmd: clap::Command) -> Result<(String, String)> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut out);
    let text = String::from_utf8(out).map_err(|e| e.to_string())?;
    let file = match shell {
        Shell::Bash => name.to_owned(),
        Shell::Zsh => format!("_{name}"),
        Shell::Fish => format!("{name}.fish"),
        _ => return Err(format!("no completion file name for {shell}")),
    };
    if name != "update" {
        return Ok((file, text));
    }
    let text = match shell {
        Shell::Bash => format!("{text}{BASH_KEYS}"),
        Shell::Zsh => zsh_with_key_names(&text)?,
        _ => format!("{text}{}{FISH_KEYS}", fish_positional_values(&cmd)),
    };
    Ok((file, text))
}

/// bash: `update config key delete|update <TAB>` offers the names `update config key list`
/// prints (under the `--root` of the command line); everything else is clap_complete's.
const BASH_KEYS: &str = r#"
# Added by `cargo xtask docs`: the names of the trusted keys for `update config key delete|update`.
_update_key_names() {
    local i root=()
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            --root) root=(--root "${COMP_WORDS[i+1]}") ;;
            --root=*) root=("${COMP_WORDS[i]}") ;;
        esac
    done
    local line
    command update "${root[@]}" config key list 2>/dev/null | while IFS=' ' read -r line; do printf '%s\n' "${line%% *}"; done
}

_update_with_key_names() {
    local cur=${COMP_WORDS[COMP_CWORD]}
    if ((COMP_CWORD >= 4)) && [[ ${COMP_WORDS[COMP_CWORD-3]} == config && ${COMP_WORDS[COMP_CWORD-2]} == key ]] &&
        [[ ${COMP_WORDS[COMP_CWORD-1]} == delete || ${COMP_WORDS[COMP_CWORD-1]} == update ]]; then
        local IFS=$'
'
        COMPREPLY=($(compgen -W "$(_update_key_names)" -- "$cur"))
        return 0
    fi
    _update "$@"
}

if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _update_with_key_names -o nosort -o bashdefault -o default update
else
    complete -F _update_with_key_names -o bashdefault -o default update
fi
"#;

/// zsh: the key-name arguments of `update config key delete|update` complete the names
/// `update config key list` prints.
fn zsh_with_key_names(text: &str) -> Result<String> {
    let plain = "':name -- The key'\\''s name:_default'";
    let keys = "':name -- The key'\\''s name:_update_key_names'";
    if text.matches(plain).count() != 2 {
        return Err(format!("zsh completion: expected the key name of `key delete` and `key update` ({plain}) twice"));
    }
    let tail = "if [ \"$funcstack[1]\" = \"_update\" ]; then";
    let function = r#"# Added by `cargo xtask docs`: the names of the trusted keys.
(( $+functions[_update_key_names] )) ||
_update_key_names() {
    local -a root names
    local i
    for ((i = 2; i < CURRENT; i++)); do
        case ${words[i]} in
            --root) root=(--root "${words[i+1]}") ;;
            --root=*) root=("${words[i]}") ;;
        esac
    done
    names=(${${(f)"$(command update "${root[@]}" config key list 2>/dev/null)"}%% *})
    _describe -t keys 'trusted key' names
}

"#;
    let text = text.replace(plain, keys);
    let at = text.rfind(tail).ok_or("zsh completion: no final compdef block")?;
    Ok(format!("{}{function}{}", &text[..at], &text[at..]))
}

/// fish: clap_complete offers the values of options but not of positional arguments; these
/// lines add them for every subcommand whose positional argument has a fixed set of values.
fn fish_positional_values(cmd: &clap::Command) -> String {
    let mut out = String::from("\n# Added by `cargo xtask docs`: the values of positional arguments.\n");
    let mut stack: Vec<(Vec<String>, clap::Command)> = vec![(Vec::new(), cmd.clone())];
    while let Some((path, c)) = stack.pop() {
        for a in c.get_positionals() {
            let values: Vec<String> = a.get_possible_values().iter().map(|v| v.get_name().to_owned()).collect();
            if values.is_empty() || path.is_empty() {
                continue;
            }
            let mut cond = format!("__fish_update_using_subcommand {}", path[0]);
            for p in &path[1..] {
                cond.push_str(&format!("; and __fish_seen_subcommand_from {p}"));
            }
            out.push_str(&format!("complete -c update -n \"{cond}\" -f -a \"{}\"\n", values.join(" ")));
        }
        for sub in c.get_subcommands().filter(|s| s.get_name() != "help") {
            let mut p = path.clone();
            p.push(sub.get_name().to_owned());
            stack.push((p, sub.clone()));
        }
    }
    out
}

/// fish: the names of the trusted keys for `update config key delete|update`.
const FISH_KEYS: &str = r#"
# Added by `cargo xtask docs`: the names of the trusted keys.
function __fish_update_key_names
    set -l cmd (commandline -opc)
    set -l root
    for i in (seq 2 (count $cmd))
        switch $cmd[$i]
            case --root
                set root --root $cmd[(math $i + 1)]
            case '--root=*'
                set root $cmd[$i]
        end
    end
    command update $root config key list 2>/dev/null | string replace -r '\s.*' ''
end
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from key; and __fish_seen_subcommand_from delete update" -f -a "(__fish_update_key_names)"
"#;

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

/// The completion scripts in real shells: values of the config arguments, and the names of the
/// trusted keys read from a root that has two.
#[cfg(test)]
mod completion_tests {
    use std::path::PathBuf;
    use std::process::Command;

    use crate::sys::workspace;

    const KEYS: [&str; 2] = [
        "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAfUOu5IQIpSrKD2oLsVU7nG1qKsKjFg4KgWShkOIWiGA=\n-----END PUBLIC KEY-----\n",
        "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA4DnFW6yFtZSDK8qLsN+gue+XhRvvx+tG6+Lr5F6Ptno=\n-----END PUBLIC KEY-----\n",
    ];

    /// A directory with the `update` binary (built here) and a root with keys `vendor` and `backup`.
    /// `tag` keeps the tests' directories apart (a thread id's `ThreadId(3)` would be a syntax
    /// error in the bash line that names the root).
    fn setup(tag: &str) -> (PathBuf, PathBuf) {
        let ws = workspace();
        let st = Command::new(env!("CARGO"))
            .current_dir(&ws)
            .args(["build", "-q", "-p", "update-cli", "--bin", "update"])
            .status()
            .unwrap();
        assert!(st.success());
        let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| ws.join("target"), PathBuf::from);
        let tmp = std::env::temp_dir().join(format!("xtask-completion-{}-{tag}", std::process::id()));
        let bin = tmp.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy(target.join("debug/update"), bin.join("update")).unwrap();
        let root = tmp.join("root");
        for (name, pem) in [("vendor", KEYS[0]), ("backup", KEYS[1])] {
            let f = tmp.join(format!("{name}.pem"));
            std::fs::write(&f, pem).unwrap();
            let out = Command::new(bin.join("update"))
                .arg("--root")
                .arg(&root)
                .args(["config", "key", "add", name])
                .arg(format!("@{}", f.display()))
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
        (bin, root)
    }

    fn path_with(bin: &std::path::Path) -> String {
        format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default())
    }

    fn bash(bin: &std::path::Path, line: &str) -> Vec<String> {
        let script = format!(
            "source {}\nCOMP_WORDS=({line})\nCOMP_CWORD=$((${{#COMP_WORDS[@]}}))\nCOMP_WORDS+=('')\nCOMP_LINE=\"{line} \"\nCOMP_POINT=${{#COMP_LINE}}\n_update_with_key_names update '' \"${{COMP_WORDS[COMP_CWORD-1]}}\"\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
            workspace().join("docs/completions/update").display()
        );
        let out = Command::new("bash").arg("-c").arg(script).env("PATH", path_with(bin)).output().expect("bash");
        assert!(out.status.success(), "bash: {}", String::from_utf8_lossy(&out.stderr));
        let mut v: Vec<String> =
            String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.is_empty()).map(str::to_owned).collect();
        v.sort();
        v
    }

    #[test]
    fn bash_completes_values_and_key_names() {
        let (bin, root) = setup("bash");
        // clap_complete's bash offers the options beside the values.
        let has = |v: Vec<String>, want: &[&str]| want.iter().all(|w| v.contains(&(*w).to_owned()));
        assert!(has(bash(&bin, "update config verify"), &["true", "false"]));
        assert!(has(bash(&bin, "update config schedule"), &["hourly", "off"]));
        assert!(has(bash(&bin, "update config driver"), &["auto", "native"]));
        let r = root.display();
        assert_eq!(bash(&bin, &format!("update --root {r} config key delete")), ["backup", "vendor"]);
        assert_eq!(bash(&bin, &format!("update --root {r} config key update")), ["backup", "vendor"]);
        let _ = std::fs::remove_dir_all(bin.parent().unwrap());
    }

    /// Each bash script registers its command once sourced (`complete -p NAME`), `update`'s
    /// with the key-name wrapper.
    #[test]
    fn bash_scripts_register_their_commands() {
        for (file, function) in [
            ("update", "_update_with_key_names"),
            ("update-tool", "_update__tool"),
            ("update-server", "_update__server"),
        ] {
            let script =
                format!("source {}; complete -p {file}", workspace().join("docs/completions").join(file).display());
            let out = Command::new("bash").arg("-c").arg(script).output().expect("bash");
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{file}: {}", String::from_utf8_lossy(&out.stderr));
            assert!(text.contains(&format!("-F {function} ")) && text.trim_end().ends_with(file), "{file}: {text}");
        }
    }

    /// fish (when installed: CI installs it) through `complete -C`, its own completion engine.
    #[test]
    fn fish_completes_values_and_key_names() {
        if Command::new("fish").arg("--version").output().is_err() {
            eprintln!("fish is not installed: skipped (apt install fish)");
            return;
        }
        let (bin, root) = setup("fish");
        let fish = |line: &str| -> Vec<String> {
            let script =
                format!("source {}; complete -C '{line}'", workspace().join("docs/completions/update.fish").display());
            let out = Command::new("fish").arg("-c").arg(script).env("PATH", path_with(&bin)).output().unwrap();
            assert!(out.status.success(), "fish: {}", String::from_utf8_lossy(&out.stderr));
            let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| l.split('\t').next().unwrap_or("").to_owned())
                .collect();
            v.sort();
            v
        };
        assert_eq!(fish("update config verify "), ["false", "true"]);
        assert!(fish("update config schedule ").contains(&"weekly".to_owned()));
        // clap_complete's fish also offers the `key` subcommands again at this depth.
        let keys = fish(&format!("update --root {} config key delete ", root.display()));
        assert!(keys.contains(&"vendor".to_owned()) && keys.contains(&"backup".to_owned()), "{keys:?}");
        let _ = std::fs::remove_dir_all(bin.parent().unwrap());
    }

    /// zsh (when installed): every script loads (`zsh -n`); the key-name function is defined.
    #[test]
    fn zsh_scripts_parse() {
        if Command::new("zsh").arg("--version").output().is_err() {
            eprintln!("zsh is not installed: skipped (apt install zsh)");
            return;
        }
        for f in ["_update", "_update-tool", "_update-server"] {
            let out = Command::new("zsh").arg("-n").arg(workspace().join("docs/completions").join(f)).output().unwrap();
            assert!(out.status.success(), "{f}: {}", String::from_utf8_lossy(&out.stderr));
        }
        let text = std::fs::read_to_string(workspace().join("docs/completions/_update")).unwrap();
        assert_eq!(text.matches(":_update_key_names'").count(), 2);
    }
}
