//! `cargo xtask fuzz [--long] [--seconds N] [TARGET]`: runs the cargo-fuzz targets in `fuzz/`
//! (docs/security.md, "Fuzzing").
//!
//! - default (CI): every target for `--seconds` (default 20) each, from its committed seeds
//!   (`fuzz/seeds/TARGET`) and its local corpus (`fuzz/corpus/TARGET`, not committed);
//! - `--long`: every target for at least 10 million executions.
//!
//! Each run ends with a line per target: executions, executions per second, seconds. A crash
//! fails the task and names the input libFuzzer saved under `fuzz/artifacts/TARGET/`; turn it
//! into a regression test in the crate that owns the parser.
//!
//! Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`).
//! Built without a sanitizer: the workspace forbids `unsafe` code, so what we look for is what
//! safe Rust does wrong on hostile input — panics, arithmetic overflow (debug assertions are on),
//! unbounded memory (`-rss_limit_mb`, `-malloc_limit_mb`) and hangs (`-timeout`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::sys::{Result, workspace};

/// Every target, one per parser of outside data.
pub const TARGETS: &[&str] = &[
    "bundle",
    "tuf_metadata",
    "config",
    "keyring",
    "grubenv",
    "ubootenv",
    "audit_line",
    "sse",
    "server_bodies",
    "server_range",
    "smp",
];

/// Executions per target in `--long` mode.
const LONG_RUNS: u64 = 10_000_000;

/// What one run did.
struct Figures {
    target: String,
    executions: u64,
    per_second: u64,
    seconds: f64,
}

/// A `cargo +nightly fuzz` command, outside the stable toolchain `cargo xtask` runs under.
fn cargo_fuzz() -> Command {
    let mut cmd = Command::new("rustup");
    cmd.args(["run", "nightly", "cargo", "fuzz"]);
    for var in ["RUSTUP_TOOLCHAIN", "CARGO", "RUSTC", "RUSTDOC", "CARGO_TARGET_DIR", "RUSTFLAGS"] {
        cmd.env_remove(var);
    }
    cmd.current_dir(workspace());
    cmd
}

/// The build flags every build and run shares (so `run` reuses the build).
const BUILD: &[&str] = &["--sanitizer", "none", "--debug-assertions"];

/// `cargo xtask fuzz [--long] [--seconds N] [TARGET]`.
pub fn main(args: &[String]) -> Result {
    let mut long = false;
    let mut seconds = 20u64;
    let mut only = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--long" => long = true,
            "--seconds" => {
                seconds = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .filter(|&s| s > 0)
                    .ok_or("--seconds needs a number of seconds above 0")?;
            }
            t if TARGETS.contains(&t) => only = Some(t),
            other => {
                return Err(format!(
                    "unknown argument '{other}'; usage: cargo xtask fuzz [--long] [--seconds N] [{}]",
                    TARGETS.join("|")
                ));
            }
        }
    }
    let status = cargo_fuzz().arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
    if !status.is_ok_and(|s| s.success()) {
        return Err("cargo-fuzz on the nightly toolchain is needed: rustup toolchain install nightly && \
                    cargo install cargo-fuzz --locked"
            .into());
    }
    let mut build = cargo_fuzz();
    build.arg("build").args(BUILD);
    crate::sys::run(&mut build)?;
    let targets: Vec<&str> = only.map_or_else(|| TARGETS.to_vec(), |t| vec![t]);
    let mut all = Vec::new();
    for target in targets {
        let figures = run_target(target, long, seconds)?;
        println!(
            "fuzz {:<14} {:>12} executions {:>8} exec/s {:>8.0} s",
            figures.target, figures.executions, figures.per_second, figures.seconds
        );
        all.push(figures);
    }
    println!("\n| target | executions | exec/s | seconds |\n|---|---:|---:|---:|");
    for f in &all {
        println!("| `{}` | {} | {} | {:.0} |", f.target, f.executions, f.per_second, f.seconds);
    }
    Ok(())
}

fn run_target(target: &str, long: bool, seconds: u64) -> Result<Figures> {
    let root = workspace();
    let corpus = root.join("fuzz/corpus").join(target);
    let seeds = root.join("fuzz/seeds").join(target);
    std::fs::create_dir_all(&corpus).map_err(|e| format!("create {}: {e}", corpus.display()))?;
    let mut cmd = cargo_fuzz();
    cmd.args(["run"]).args(BUILD).arg(target).arg(&corpus);
    if seeds.is_dir() {
        cmd.arg(&seeds);
    }
    cmd.args(["--", "-print_final_stats=1", "-rss_limit_mb=2048", "-malloc_limit_mb=512", "-timeout=10"]);
    if long {
        cmd.arg(format!("-runs={LONG_RUNS}"));
    } else {
        cmd.arg(format!("-max_total_time={seconds}"));
    }
    cmd.stderr(Stdio::piped());
    eprintln!("+ {cmd:?}");
    let started = Instant::now();
    let out = cmd.output().map_err(|e| format!("cannot run cargo fuzz: {e}"))?;
    let elapsed = started.elapsed().as_secs_f64();
    let log = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "fuzz target {target} failed ({}); the input is under {}:\n{}",
            out.status,
            Path::new("fuzz/artifacts").join(target).display(),
            tail.join("\n")
        ));
    }
    let stat = |name: &str| -> Option<u64> {
        log.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.trim_start_matches(':').trim().parse().ok()))
    };
    let executions = stat("stat::number_of_executed_units")
        .ok_or_else(|| format!("fuzz target {target}: no stat::number_of_executed_units in libFuzzer's output"))?;
    if long && executions < LONG_RUNS {
        return Err(format!("fuzz target {target}: {executions} executions, fewer than {LONG_RUNS}"));
    }
    Ok(Figures {
        target: target.to_owned(),
        executions,
        per_second: stat("stat::average_exec_per_sec").unwrap_or(0),
        seconds: elapsed,
    })
}
