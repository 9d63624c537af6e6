//! `cargo xtask system-test [--long] [--seed N] [--cuts N]`: proof on a real boot.
//!
//! Builds, without root or loop devices, a GPT disk image with BIOS GRUB, our GRUB fragment and
//! its two environment files on the ESP, boot and rootfs slots A/B and a data partition, with a
//! Debian kernel (fetched with `apt-get download`), a busybox userland and a statically linked
//! `update`; runs `update-server` on the host over HTTPS with mutual TLS; and boots the image
//! under QEMU (TCG) again and again, two devices in parallel:
//!
//! - device-1: the happy path (1.0.0 -> 2.0.0, committed by the agent), a bad update (3.0.0
//!   fails its health check, GRUB falls back to 2.0.0, status and audit log report it) and user
//!   data across both ([`scenarios`]); then power cuts;
//! - device-2: power cuts from the start ([`power_cut`]).
//!
//! Guest files live in `tests/system/`; the run's files and console logs in
//! `target/system/run/`. See docs/system-test.md.

mod artifacts;
mod device;
mod disk;
mod pki;
mod power_cut;
mod scenarios;
mod server;
mod util;
mod vm;

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::sys::Result;
use device::{Ctx, Device};
use power_cut::Shared;
use util::{Rng, io, quiet};

/// Debian packages the system test uses (installed by .ci/run), with a file each provides.
const PACKAGES: &[(&str, &str)] = &[
    ("qemu-system-x86", "/usr/bin/qemu-system-x86_64"),
    ("grub-pc-bin", "/usr/lib/grub/i386-pc/boot.img"),
    ("grub-common", "/usr/bin/grub-mkimage"),
    ("busybox-static", "/bin/busybox"),
    ("mtools", "/usr/bin/mcopy"),
    ("dosfstools", "/usr/sbin/mkfs.vfat"),
    ("cpio", "/usr/bin/cpio"),
    ("kmod", "/usr/bin/kmod"),
    ("e2fsprogs", "/usr/sbin/debugfs"),
    ("fdisk", "/usr/sbin/sfdisk"),
];

struct Options {
    long: bool,
    seed: u64,
    cuts: usize,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options { long: false, seed: util::clock_seed(), cuts: 0 };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--long" => o.long = true,
            "--seed" => o.seed = it.next().and_then(|s| s.parse().ok()).ok_or("--seed needs a number")?,
            "--cuts" => o.cuts = it.next().and_then(|s| s.parse().ok()).ok_or("--cuts needs a number")?,
            other => {
                return Err(format!(
                    "unknown option {other}; usage: cargo xtask system-test [--long] [--seed N] [--cuts N]"
                ));
            }
        }
    }
    if o.cuts == 0 {
        o.cuts = if o.long { 60 } else { 20 };
    }
    Ok(o)
}

fn lock(shared: &Arc<Mutex<Shared>>) -> std::sync::MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `cargo xtask system-test`.
pub fn main(args: &[String]) -> Result {
    let opts = parse(args)?;
    let t0 = Instant::now();
    let missing: Vec<&str> = PACKAGES.iter().filter(|(_, f)| !Path::new(f).exists()).map(|(p, _)| *p).collect();
    if !missing.is_empty() {
        return Err(format!(
            "the system test needs these Debian packages: {} (see docs/system-test.md; .ci/run installs them)",
            missing.join(" ")
        ));
    }
    let work = artifacts::system_dir().join("run");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(io("create", &work))?;
    eprintln!("system-test: seed {} (repeat with --seed {})", opts.seed, opts.seed);
    let mut rng = Rng::new(opts.seed);

    let art = artifacts::prepare(&work)?;
    eprintln!("system-test: kernel {} ; artifacts ready after {:.0} s", art.kernel_package, t0.elapsed().as_secs_f64());
    let keys = work.join("keys");
    quiet(Command::new(&art.update_tool).args(["key", "generate", "vendor", "--out"]).arg(&keys))?;
    let pki = pki::Pki::new(&work.join("pki"))?;
    let server = server::Server::start(&art.update_server, &work, &pki)?;
    let ctx = Arc::new(Ctx {
        art,
        work: work.clone(),
        vendor_key: keys.join("vendor.key"),
        vendor_pub: keys.join("vendor.pub"),
        server_ca: pki.server_ca.clone(),
        port: server.port,
        repo_root: server.repo_root.clone(),
        vm: vm::VmOptions { smp: 1, mem_mib: 384, deadline: Duration::from_secs(300) },
        fleet: true,
        retry_limit: 2,
    });
    let result = run(&ctx, &pki, &server, &opts, &mut rng, t0);
    server.stop();
    result
}

fn run(ctx: &Arc<Ctx>, pki: &pki::Pki, server: &server::Server, opts: &Options, rng: &mut Rng, t0: Instant) -> Result {
    let mut dev1 = Device::create(ctx.clone(), "device-1", &pki.client("device-1")?, rng)?;
    let mut dev2 = Device::create(ctx.clone(), "device-2", &pki.client("device-2")?, rng)?;
    let t_images = t0.elapsed();
    eprintln!("system-test: two devices provisioned after {:.0} s", t_images.as_secs_f64());

    let shared = Arc::new(Mutex::new(Shared {
        want_total: opts.cuts,
        want_per_class: opts.cuts.div_ceil(4),
        ..Shared::default()
    }));
    let budget = Instant::now() + Duration::from_secs(if opts.long { 5400 } else { 1800 });
    let mut rng2 = Rng::new(rng.next_u64());
    let shared2 = shared.clone();
    let worker = std::thread::spawn(move || {
        let mut next_major = 1;
        let r = power_cut::run(&mut dev2, &shared2, &mut rng2, &mut next_major, budget);
        if r.is_err() {
            lock(&shared2).abort = true;
        }
        r
    });
    let mut report = scenarios::Report::default();
    let fleet = if ctx.fleet {
        Some(scenarios::Fleet { server, pki, operator: pki.client("operator-console")? })
    } else {
        None
    };
    let scen = scenarios::happy_and_bad(&mut dev1, &mut report, fleet.as_ref());
    let t_scen = report.seconds;
    if scen.is_ok() {
        let mut s = lock(&shared);
        s.windows.learn(&report.timeline);
        s.measured = true;
    } else {
        lock(&shared).abort = true;
    }
    let cuts1 = if scen.is_ok() {
        let mut next_major = 3;
        let r = power_cut::run(&mut dev1, &shared, rng, &mut next_major, budget);
        if r.is_err() {
            lock(&shared).abort = true;
        }
        r
    } else {
        Ok(())
    };
    let cuts2 = worker.join().map_err(|_| "the device-2 thread panicked".to_owned())?;
    let total = t0.elapsed();

    // Summary.
    let s = lock(&shared);
    let table: String = s
        .cuts
        .iter()
        .map(|c| {
            format!(
                "{} boot {:>3}  planned {:<18} landed in {:<10} {:>6} ms after its marker, {:>6} ms into the step  {} -> {}: {}\n",
                c.device,
                c.boot,
                c.planned.name(),
                format!("{:?}", c.phase),
                c.after_trigger_ms,
                c.after_start_ms,
                c.from,
                c.to,
                c.outcome.as_deref().unwrap_or("-")
            )
        })
        .collect();
    let table_file = ctx.work.join("power-cuts.txt");
    let _ = std::fs::write(&table_file, &table);
    println!("\n== system test summary (seed {})", opts.seed);
    println!("scenarios (device-1, {} boots, {t_scen:.0} s):", report.boots);
    for c in &report.checks {
        println!("  ok  {c}");
    }
    if let Err(e) = &scen {
        println!("  FAILED: {e}");
    }
    println!(
        "power cuts ({} moments, {} boots after cuts):",
        s.cuts.len(),
        s.cuts.iter().filter(|c| c.outcome.is_some()).count()
    );
    for line in power_cut::summary(&s) {
        println!("  {line}");
    }
    println!("  boots after a cut that were not a good, verified slot: {}", s.unbootable);
    println!("  every cut: {}", table_file.display());
    println!(
        "wall time: {:.0} s in all ({:.0} s building and provisioning, {:.0} s booting; {} boots)",
        total.as_secs_f64(),
        t_images.as_secs_f64(),
        (total - t_images).as_secs_f64(),
        report.boots + s.boots
    );
    println!("console logs: {}", ctx.work.join("logs").display());
    let enough = s.done();
    let unbootable = s.unbootable;
    drop(s);
    scen?;
    cuts1.map_err(|e| format!("device-1: {e}"))?;
    cuts2.map_err(|e| format!("device-2: {e}"))?;
    if unbootable > 0 {
        return Err(format!("{unbootable} boot(s) after a power cut did not reach a good, verified slot"));
    }
    if !enough {
        return Err("too few power cuts".into());
    }
    println!("PASS: 0 unbootable");
    Ok(())
}
