//! Man pages that stand alone: `update(1)`, `update-tool(1)` and `update-server(8)` generated from
//! the clap definitions (every subcommand with its arguments and options), followed by the
//! hand-written sections in `dist/man/<page>.roff` (EXIT STATUS, ENVIRONMENT, FILES, EXAMPLES,
//! SEE ALSO); `update.toml(5)` is written by hand in `docs/man/update.toml.5`. The tests below
//! check that every subcommand and option is in its page, that no page names a repository path
//! or a page an installed system does not have, and that groff renders each without a warning.

use std::path::Path;

use clap::builder::PossibleValuesParser;
use clap::{Command, ValueHint};

use crate::sys::Result;

/// One generated page.
pub struct Page {
    /// The file name under docs/man/ (`update.1`).
    pub file: &'static str,
    /// The manual section.
    pub section: &'static str,
    /// The command it documents.
    pub cmd: fn() -> Command,
}

/// Every generated page.
pub const PAGES: &[Page] = &[
    Page { file: "update.1", section: "1", cmd: update_command },
    Page { file: "update-tool.1", section: "1", cmd: update_tool::command },
    Page { file: "update-server.8", section: "8", cmd: update_server::cli::command },
];

/// The hand-written pages (kept in docs/man/ as they are installed; update-dbus.8 is checked
/// against its options by a test of crates/update-dbus).
pub const HAND_WRITTEN: &[&str] = &["update.toml.5", "update-dbus.8"];

/// The driver names `update config driver` takes: `auto` and every driver of the binary.
fn driver_names() -> Vec<&'static str> {
    let mut names = vec!["auto"];
    names.extend(update_cli::factories().iter().map(|f| f.name()));
    names
}

/// `update`'s command with the values its free-text arguments take, for the man page and the
/// completions (the binary checks these values itself, with its own messages and exit codes).
pub fn update_command() -> Command {
    let bool_values = || PossibleValuesParser::new(["true", "false"]);
    let path = |a: clap::Arg| a.value_hint(ValueHint::FilePath);
    update_cli::command()
        .edit("root", |a| a.value_hint(ValueHint::DirPath))
        .edit("source", |a| a.value_hint(ValueHint::Url))
        .sub("config", |c| {
            c.sub("verify", |s| s.edit("value", |a| a.value_parser(bool_values())))
                .sub("secure", |s| s.edit("value", |a| a.value_parser(bool_values())))
                .sub("schedule", |s| {
                    s.edit("unit", |a| {
                        a.value_parser(PossibleValuesParser::new([
                            "monthly", "weekly", "daily", "hourly", "minute", "off",
                        ]))
                    })
                })
                .sub("boot-retry-limit", |s| {
                    s.edit("limit", |a| {
                        a.value_parser(PossibleValuesParser::new(["1", "2", "3", "4", "5", "6", "7", "8", "9"]))
                            .hide_possible_values(true)
                    })
                })
                .sub("driver", |s| s.edit("name", |a| a.value_parser(PossibleValuesParser::new(driver_names()))))
                .sub("source", |s| s.edit("url", |a| a.value_hint(ValueHint::Url)))
                .sub("server", |s| s.edit("url", |a| a.value_hint(ValueHint::Url)))
                .sub("log", |s| s.edit("target", path))
                .sub("client-cert", |s| s.edit("path", path))
                .sub("client-key", |s| s.edit("path", path))
                .sub("server-ca", |s| s.edit("path", path))
                .sub("key", |k| {
                    // KEY_NAME marks the arguments whose values the completions ask
                    // `update config key list` for (crate::docs::key_name_completion).
                    k.sub("delete", |s| s.edit("name", |a| a.value_name(KEY_NAME)))
                        .sub("update", |s| s.edit("name", |a| a.value_name(KEY_NAME)))
                })
        })
}

/// `Command::mut_arg` in place: clap's own moves the argument to the end, which reorders
/// positional arguments (and `mut_subcommand` reorders the help). Panics (in `cargo xtask docs` and the tests) when there is no `id`,
/// so a renamed argument is noticed.
trait EditArg {
    fn edit(self, id: &str, f: impl Fn(clap::Arg) -> clap::Arg) -> Self;
    /// `Command::mut_subcommand` in place, for the same reason.
    fn sub(self, name: &str, f: impl FnMut(Command) -> Command) -> Self;
}

impl EditArg for Command {
    fn edit(self, id: &str, f: impl Fn(clap::Arg) -> clap::Arg) -> Self {
        assert!(self.get_arguments().any(|a| a.get_id() == id), "{}: no argument {id}", self.get_name());
        self.mut_args(|a| if a.get_id() == id { f(a) } else { a })
    }

    fn sub(self, name: &str, mut f: impl FnMut(Command) -> Command) -> Self {
        assert!(self.find_subcommand(name).is_some(), "{}: no subcommand {name}", self.get_name());
        self.mut_subcommands(|c| if c.get_name() == name { f(c) } else { c })
    }
}

/// The date in every page's title line (`.TH`), also in the hand-written update.toml(5): a fixed
/// day so that `cargo xtask check-docs` compares equal on any day; moved forward with a release.
pub const DATE: &str = "2026-12-06";

/// The value name of an argument that takes the name of a trusted key.
pub const KEY_NAME: &str = "KEY_NAME";

/// Renders one generated page: clap_mangen's head (name, synopsis, description, options), a
/// COMMANDS section with every subcommand in full, then `extra` (hand-written roff).
pub fn render(page: &Page, extra: &str) -> Result<Vec<u8>> {
    let mut cmd = (page.cmd)();
    cmd.build();
    let version = cmd.get_version().unwrap_or_default().to_owned();
    let man = clap_mangen::Man::new(cmd.clone())
        .section(page.section)
        .date(DATE)
        .source(format!("libupdate {version}"))
        .manual("libupdate");
    let mut out = Vec::new();
    let e = |e: std::io::Error| e.to_string();
    man.render_title(&mut out).map_err(e)?;
    man.render_name_section(&mut out).map_err(e)?;
    man.render_synopsis_section(&mut out).map_err(e)?;
    man.render_description_section(&mut out).map_err(e)?;
    man.render_options_section(&mut out).map_err(e)?;
    let mut commands = Vec::new();
    for sub in cmd.get_subcommands() {
        leaf_commands(sub, &mut commands);
    }
    if !commands.is_empty() {
        out.extend_from_slice(b".SH COMMANDS\n");
    }
    for sub in commands {
        command_entry(&sub, &mut out)?;
    }
    out.extend_from_slice(extra.as_bytes());
    if !extra.ends_with('\n') {
        out.push(b'\n');
    }
    man.render_version_section(&mut out).map_err(e)?;
    Ok(paragraph_breaks(&out))
}

/// clap_mangen writes a blank line in a help text as `.br`, an empty line, `.br`: an empty line
/// is already a paragraph break, and the breaks around it draw warnings from mandoc
/// ("skipping paragraph macro"). One `.sp` says the same.
fn paragraph_breaks(page: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(page).replace("\n.br\n\n.br\n", "\n.sp\n").into_bytes()
}

/// The runnable subcommands below `cmd` (a command with subcommands is a group, not listed).
fn leaf_commands(cmd: &Command, out: &mut Vec<Command>) {
    if cmd.get_name() == "help" || cmd.is_hide_set() {
        return;
    }
    if cmd.has_subcommands() {
        for sub in cmd.get_subcommands() {
            leaf_commands(sub, out);
        }
    } else {
        out.push(cmd.clone());
    }
}

/// One subcommand: `.SS` with its full name, its synopsis, its long help and its arguments
/// (without the global ones, which the OPTIONS section documents once).
fn command_entry(sub: &Command, out: &mut Vec<u8>) -> Result {
    let full = sub.get_bin_name().unwrap_or(sub.get_name()).to_owned();
    let globals: Vec<String> =
        sub.get_arguments().filter(|a| a.is_global_set()).map(|a| a.get_id().to_string()).collect();
    let mut local = sub.clone().edit("help", |a| a.hide(true));
    for id in &globals {
        local = local.edit(id, |a| a.hide(true));
    }
    let e = |e: std::io::Error| e.to_string();
    let man = clap_mangen::Man::new(local.clone());
    // clap_mangen's sections start with `.SH NAME`-style headings: keep their bodies only.
    let mut synopsis = Vec::new();
    man.render_synopsis_section(&mut synopsis).map_err(e)?;
    let mut options = Vec::new();
    if local.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut options).map_err(e)?;
    }
    out.extend_from_slice(format!(".SS \"{}\"\n", escape(&full)).as_bytes());
    out.extend_from_slice(&body(&synopsis));
    out.extend_from_slice(b".PP\n");
    let help = local.get_long_about().or(local.get_about()).map(ToString::to_string).unwrap_or_default();
    for (i, para) in help.split("\n\n").enumerate() {
        if i > 0 {
            out.extend_from_slice(b".PP\n");
        }
        out.extend_from_slice(escape(para.trim()).as_bytes());
        out.push(b'\n');
    }
    if !options.is_empty() {
        out.extend_from_slice(b".RS\n");
        out.extend_from_slice(&body(&options));
        out.extend_from_slice(b".RE\n");
    }
    Ok(())
}

/// The lines of a rendered section after its `.SH` heading.
fn body(section: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(section);
    let mut out = String::new();
    for line in text.lines() {
        if !line.starts_with(".SH ") && !line.starts_with(".ie ") && !line.starts_with(".el ") {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.into_bytes()
}

/// Text for roff: backslashes, minus signs, apostrophes, other than ASCII and a leading control
/// character escaped.
fn escape(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let line: String = line
            .replace('\\', "\\e")
            .replace('-', "\\-")
            .replace('\'', "\\(aq")
            .chars()
            .map(|c| if c.is_ascii() { c.to_string() } else { format!("\\[u{:04X}]", u32::from(c)) })
            .collect();
        if line.starts_with('.') {
            out.push_str("\\&");
        }
        out.push_str(&line);
        out.push('\n');
    }
    out.trim_end().to_owned()
}

/// The hand-written sections of a generated page.
pub fn extra(root: &Path, page: &Page) -> Result<String> {
    let path = root.join("dist/man").join(format!("{}.roff", page.file));
    std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::process::Command as Process;

    use super::{HAND_WRITTEN, PAGES, extra, render};
    use crate::sys::workspace;

    fn pages() -> Vec<(String, String)> {
        let root = workspace();
        let mut out: Vec<(String, String)> = PAGES
            .iter()
            .map(|p| {
                let text = render(p, &extra(&root, p).unwrap()).unwrap();
                (p.file.to_owned(), String::from_utf8(text).unwrap())
            })
            .collect();
        for f in HAND_WRITTEN {
            out.push(((*f).to_owned(), std::fs::read_to_string(root.join("docs/man").join(f)).unwrap()));
        }
        out
    }

    /// Every subcommand (by its full name) and every long option and positional argument of
    /// every command is in the page.
    #[test]
    fn every_subcommand_and_option_is_documented() {
        for page in PAGES {
            let text = String::from_utf8(render(page, &extra(&workspace(), page).unwrap()).unwrap()).unwrap();
            let plain = text.replace("\\-", "-");
            let mut cmd = (page.cmd)();
            cmd.build();
            let mut stack = vec![cmd];
            while let Some(c) = stack.pop() {
                if c.get_name() == "help" {
                    continue;
                }
                let name = c.get_bin_name().unwrap_or(c.get_name()).to_owned();
                assert!(plain.contains(&name), "{}: no {name:?}", page.file);
                for a in c.get_arguments() {
                    if let Some(long) = a.get_long() {
                        assert!(plain.contains(&format!("--{long}")), "{}: {name} --{long} is missing", page.file);
                    } else if a.is_positional() {
                        let v = a
                            .get_value_names()
                            .and_then(|v| v.first())
                            .map_or(a.get_id().to_string(), ToString::to_string);
                        assert!(plain.contains(&v), "{}: {name} {v} is missing", page.file);
                    }
                    for v in a.get_possible_values().into_iter().filter(|_| !a.is_hide_possible_values_set()) {
                        assert!(
                            plain.contains(v.get_name()),
                            "{}: {name} value {} is missing",
                            page.file,
                            v.get_name()
                        );
                    }
                }
                stack.extend(c.get_subcommands().cloned());
            }
        }
    }

    /// `update(1)` has the sections a user looks for, and names every exit code.
    #[test]
    fn update_1_has_the_standard_sections_and_every_exit_code() {
        let pages = pages();
        let (_, text) = pages.iter().find(|(f, _)| f == "update.1").unwrap();
        for s in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "OPTIONS",
            "COMMANDS",
            "EXIT STATUS",
            "ENVIRONMENT",
            "FILES",
            "EXAMPLES",
            "SEE ALSO",
        ] {
            assert!(
                text.contains(&format!(".SH {s}\n")) || text.contains(&format!(".SH \"{s}\"\n")),
                "update.1: no {s}"
            );
        }
        let exit = &text[text.find(".SH \"EXIT STATUS\"").unwrap()..];
        let exit = &exit[..exit[1..].find(".SH ").unwrap()];
        for code in 0..=12 {
            assert!(exit.contains(&format!(".B {code}\n")), "update.1 EXIT STATUS: no {code}");
        }
    }

    /// No page points at the source tree, and every page it names is one we install or one
    /// every Debian system has.
    #[test]
    fn pages_stand_alone() {
        let pages = pages();
        let ours: BTreeSet<String> = pages.iter().map(|(f, _)| f.clone()).collect();
        // Pages of packages every systemd Debian system has (man-db, systemd, logrotate).
        let system = [
            "systemd.service.5",
            "systemctl.1",
            "journalctl.1",
            "tmpfiles.d.5",
            "sysusers.d.5",
            "logrotate.8",
            "syslog.3",
        ];
        for (file, text) in &pages {
            for tree in ["docs/", "crates/", "dist/", "xtask", ".md", "cargo "] {
                assert!(!text.contains(tree), "{file} names {tree:?}, which an installed system does not have");
            }
            // References are written \fBname\fR(n) or .BR name (n).
            let plain = text.replace("\\fB", "").replace("\\fR", "").replace("\\-", "-").replace(".BR ", "");
            for (i, _) in plain.match_indices('(') {
                let section = plain[i + 1..].split(')').next().unwrap_or("");
                if !matches!(section, "1" | "5" | "8" | "3" | "7") {
                    continue;
                }
                let name: String = plain[..i]
                    .trim_end()
                    .chars()
                    .rev()
                    .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                let page = format!("{name}.{section}");
                assert!(
                    ours.contains(&page) || system.contains(&page.as_str()),
                    "{file} refers to {name}({section}), which is not installed"
                );
            }
        }
    }

    /// groff renders every page without a warning, and so do man-db (`man --warnings`) and
    /// mandoc's linter (when installed).
    #[test]
    fn pages_render_without_warnings() {
        let dir = tempfile_dir();
        for (file, text) in pages() {
            let path = dir.join(&file);
            std::fs::write(&path, &text).unwrap();
            let out = Process::new("groff")
                .args(["-man", "-ww", "-z"])
                .arg(&path)
                .output()
                .expect("groff (apt install groff-base)");
            assert!(
                out.status.success() && out.stderr.is_empty(),
                "{file}: groff: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let out = Process::new("man")
                .args(["--warnings", "-E", "UTF-8", "-l"])
                .arg(&path)
                .env("MANWIDTH", "80")
                .env("MAN_KEEP_FORMATTING", "0")
                .output()
                .expect("man (apt install man-db)");
            assert!(out.status.success(), "{file}: man failed");
            assert!(out.stderr.is_empty(), "{file}: man --warnings: {}", String::from_utf8_lossy(&out.stderr));
            // mandoc's linter is stricter than groff (dates, redundant breaks); CI installs it.
            match Process::new("mandoc").args(["-Tlint", "-W", "warning"]).arg(&path).output() {
                Ok(out) => assert!(
                    out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
                    "{file}: mandoc -Tlint: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
                Err(_) => eprintln!("mandoc is not installed: {file} not linted (apt install mandoc)"),
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-man-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
