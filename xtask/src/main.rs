//! `cargo xtask <task>`: the project's own commands.
//!
//! - `test`  — installs the Debian packages the tests need (when root and missing), then runs
//!   every test of the workspace. This is the README's "run all tests" command.
//! - `ci`    — `test`, then fmt, clippy, docs and the generated-files check (what `.ci/run` runs).
//! - `demo`  — the main job: an end-to-end update of a simulated device from a local signed source.
//! - `system-test` — proof on a real boot: a GPT disk with GRUB under QEMU, updated over HTTPS
//!   from update-server, with real power cuts (docs/system-test.md).
//! - `fuzz [--long] [--seconds N] [TARGET]` — the cargo-fuzz targets in `fuzz/`, a bounded time
//!   each (CI) or at least 10 million executions each (`--long`); docs/security.md.
//! - `delta-measure OLD.img NEW.img [--json] [--full]` — bytes and HTTP requests of a delta by
//!   reuse at each chunking granularity, index included (`bench/delta.sh`, docs/benchmarks.md).
//! - `docs`  — regenerates the man page, shell completions and docs/drivers.md.

mod delta_measure;
mod demo;
mod demo_config;
mod docs;
mod fuzz;
mod man;
mod sys;
mod system_test;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().map_or("help", String::as_str);
    let rest = &args[args.len().min(1)..];
    let result = match task {
        "test" => sys::test(rest),
        "ci" => sys::ci(),
        "demo" => demo::main_job(rest),
        "system-test" => system_test::main(rest),
        "fuzz" => fuzz::main(rest),
        "delta-measure" => delta_measure::main(rest),
        "docs" => docs::generate(false),
        "check-docs" => docs::generate(true),
        // The public TUF conformance suite, then python-tuf interop (docs/security.md).
        "tuf-conformance" => sys::run(std::process::Command::new("tests/tuf-conformance/run.sh").args(rest))
            .and_then(|()| sys::run(&mut std::process::Command::new("tests/tuf-conformance/python-tuf-interop.sh"))),
        _ => {
            eprintln!("usage: cargo xtask <test|ci|demo|system-test|fuzz|delta-measure|docs|check-docs>");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {task}: error: {e}");
            ExitCode::FAILURE
        }
    }
}
