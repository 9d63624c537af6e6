//! `update-sim`: build and drive a simulated device (see `update_test::device`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use update_test::device::{SimDevice, SimOptions, health, reboot_root};

/// Simulated A/B devices for tests and the demo.
#[derive(Debug, Parser)]
#[command(name = "update-sim")]
struct Cli {
    /// The device's root directory.
    #[arg(long, env = "UPDATE_ROOT")]
    root: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build a device: GPT image on a loop device (as root) or plain files, version in slot A.
    Create {
        /// Use plain files even when loop devices are available.
        #[arg(long)]
        plain: bool,
        /// Factory version.
        #[arg(long, default_value = "1.0.0")]
        version: String,
        /// Board name.
        #[arg(long, default_value = "demo-board")]
        compatible: String,
        /// Rootfs slot size in MiB.
        #[arg(long, default_value_t = 64)]
        rootfs_mib: u64,
    },
    /// Run the bootloader algorithm once and "boot" the chosen slot.
    Reboot,
    /// Health check of the booted slot (exit 0 when healthy).
    Health,
    /// Detach the loop device of the device's disk image.
    Destroy,
    /// Back to the factory state: slot A (1.0.0) committed and booted; slot B's content is kept.
    Reset,
    /// Run the real installer (libupdate + the native driver) like `update --now --noreboot`;
    /// the SIGKILL torture test kills this process at random moments.
    Install,
    /// `update mark-good` through libupdate: commits the booted slot and the components waiting
    /// for it (the component power-cut torture kills this process too).
    MarkGood,
    /// Power on a simulated MCUboot microcontroller on a pty linked at `<root>/dev/ttyACM0` and
    /// serve MCUmgr SMP until standard input closes (or the process is killed: a power cut).
    Mcu {
        /// The MCU's flash file (created with `--version` in the primary slot when absent).
        #[arg(long)]
        flash: PathBuf,
        /// Factory firmware version, for a new flash file.
        #[arg(long, default_value = "1.0.0")]
        version: String,
        /// Bytes per slot, for a new flash file.
        #[arg(long, default_value_t = 256 << 10)]
        slot_size: usize,
        /// The port link, a device path under the root.
        #[arg(long, default_value = "/dev/ttyACM0")]
        port: String,
    },
    /// Write a firmware image for the simulated MCU (an MCUboot image with a SHA-256 TLV).
    McuImage {
        /// The firmware version.
        #[arg(long)]
        version: String,
        /// Body size in bytes.
        #[arg(long, default_value_t = 100_000)]
        size: usize,
        /// Firmware that faults at start: the watchdog resets it and MCUboot reverts it.
        #[arg(long)]
        crash_at_start: bool,
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
    },
    /// Build release images: an ext4 rootfs (with /etc/version and /etc/health) and a kernel.
    MakeImage {
        /// The release version.
        #[arg(long)]
        version: String,
        /// What /etc/health says: ok, or anything else for a broken release.
        #[arg(long, default_value = "ok")]
        health: String,
        /// Where to write the rootfs image.
        #[arg(long)]
        rootfs: PathBuf,
        /// Where to write the kernel image.
        #[arg(long)]
        kernel: PathBuf,
        /// Rootfs image size in MiB.
        #[arg(long, default_value_t = 32)]
        rootfs_mib: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Create { plain, version, compatible, rootfs_mib } => (|| {
            let opts = SimOptions {
                loop_devices: !plain && update_test::disk::can_use_loop_devices(),
                compatible,
                version: update_core::parse_version(&version)?,
                rootfs_mib,
                ..SimOptions::default()
            };
            let mut dev = SimDevice::create(&cli.root, &opts)?;
            dev.keep_attached();
            // A safe reboot command inside the root: `update --root … --now` reboots the
            // simulated device, never the host.
            let exe = std::env::current_exe().map_err(|e| update_core::Error::io("find", "update-sim", e))?;
            update_test::device::install_program(&cli.root, &exe, update_test::device::SIM_PROGRAM)?;
            let paths = update_core::Paths::new(&cli.root);
            let mut config = update_core::config::Config::load(&paths)?;
            if let Some(native) = config.native.as_mut() {
                native.reboot_command = Some(vec![update_test::device::SIM_PROGRAM.into(), "reboot".into()]);
            }
            config.store(&paths)?;
            Ok(format!(
                "created {} device at {} ({})",
                opts.compatible,
                cli.root.display(),
                if opts.loop_devices { "GPT image on a loop device" } else { "plain files" }
            ))
        })(),
        Command::Reboot => reboot_root(&cli.root).map(|s| format!("booted slot {s}")),
        Command::Health => health(&cli.root),
        Command::MakeImage { version, health, rootfs, kernel, rootfs_mib } => (|| {
            update_test::device::make_rootfs(&rootfs, &version, &health, rootfs_mib, 4096)?;
            update_test::device::make_kernel(&kernel, &version, 4 << 20)?;
            Ok(format!("made {} and {}", rootfs.display(), kernel.display()))
        })(),
        Command::Install => libupdate::Updater::open(
            update_core::Paths::new(&cli.root),
            vec![&update_native::FACTORY as &dyn update_core::driver::DriverFactory],
        )
        .and_then(|u| u.install_now(true))
        .map(|r| format!("installed {:?}", r.installed.map(|o| o.version.to_string()))),
        Command::MarkGood => libupdate::Updater::open(
            update_core::Paths::new(&cli.root),
            vec![&update_native::FACTORY as &dyn update_core::driver::DriverFactory],
        )
        .and_then(|u| u.mark_good())
        .map(|c| c.message),
        Command::Reset => update_core::config::Config::load(&update_core::Paths::new(&cli.root)).and_then(|c| {
            let paths = update_core::Paths::new(&cli.root);
            let native = c.native.ok_or_else(|| update_core::Error::Other("not a simulated device".into()))?;
            update_native::provision(&paths, &native, &update_core::Version::new(1, 0, 0))?;
            std::fs::write(paths.kernel_cmdline(), "update.slot=A\n")
                .map_err(|e| update_core::Error::io("write", paths.kernel_cmdline(), e))?;
            Ok("reset to 1.0.0 in slot A".to_owned())
        }),
        Command::Mcu { flash, version, slot_size, port } => run_mcu(&cli.root, &flash, &version, slot_size, &port),
        Command::McuImage { version, size, crash_at_start, out } => {
            let image = if crash_at_start {
                update_test::mcu::SimMcu::crashing_image(&version, size)
            } else {
                update_test::mcu::SimMcu::image(&version, size)
            };
            std::fs::write(&out, image)
                .map_err(|e| update_core::Error::io("write", &out, e))
                .map(|()| format!("wrote firmware {version} to {}", out.display()))
        }
        Command::Destroy => update_test::disk::detach_image(&cli.root.join("disk.img")).map(|()| "detached".to_owned()),
    };
    match result {
        Ok(msg) => {
            println!("update-sim: {msg}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("update-sim: error: {e}");
            ExitCode::from(e.kind().exit_code())
        }
    }
}

/// `update-sim mcu`: runs the simulated MCU until standard input closes, printing each change of
/// the image it runs.
fn run_mcu(
    root: &std::path::Path,
    flash: &std::path::Path,
    version: &str,
    slot_size: usize,
    port: &str,
) -> update_core::Result<String> {
    use update_test::mcu::{McuOptions, SimMcu};
    if !flash.exists() {
        SimMcu::create_flash(flash, slot_size, &SimMcu::image(version, slot_size / 4))
            .map_err(|e| update_core::Error::io("create", flash, e))?;
    }
    let link = root.join(port.trim_start_matches('/'));
    let opts = McuOptions { slot_size, ..McuOptions::default() };
    let mcu = SimMcu::start(flash, &link, opts).map_err(|e| update_core::Error::io("start the MCU on", &link, e))?;
    eprintln!("update-sim: MCU on {} ({}), slot size {slot_size}", link.display(), mcu.pts().display());
    let closed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let closed = std::sync::Arc::clone(&closed);
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
            closed.store(true, std::sync::atomic::Ordering::SeqCst);
        });
    }
    let mut shown = None;
    while !closed.load(std::sync::atomic::Ordering::SeqCst) {
        for event in mcu.take_events() {
            eprintln!("update-sim: {event}");
        }
        let now = mcu.running();
        if shown.as_ref() != Some(&now) {
            let (version, confirmed) = &now;
            eprintln!(
                "update-sim: MCU runs {version} ({})",
                if *confirmed { "confirmed" } else { "test run, unconfirmed" }
            );
            shown = Some(now);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (version, _) = mcu.running();
    Ok(format!("MCU stopped, running {version}"))
}
