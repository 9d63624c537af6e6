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
        Command::Reset => update_core::config::Config::load(&update_core::Paths::new(&cli.root)).and_then(|c| {
            let paths = update_core::Paths::new(&cli.root);
            let native = c.native.ok_or_else(|| update_core::Error::Other("not a simulated device".into()))?;
            update_native::provision(&paths, &native, &update_core::Version::new(1, 0, 0))?;
            std::fs::write(paths.kernel_cmdline(), "update.slot=A\n")
                .map_err(|e| update_core::Error::io("write", paths.kernel_cmdline(), e))?;
            Ok("reset to 1.0.0 in slot A".to_owned())
        }),
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
