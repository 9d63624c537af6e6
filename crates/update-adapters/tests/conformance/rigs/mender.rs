//! A simulated mender device: `RootfsPartA`/`RootfsPartB` are loop devices (mender writes only
//! to block devices) named `dev/mmcblk0p2` and `dev/mmcblk0p3`, a redundant U-Boot environment in
//! two files read and written by the real `fw_printenv`/`fw_setenv` (libubootenv) through
//! `-c` wrappers, artifacts built and signed (ECDSA P-256) with `mender-artifact`, and a
//! simulated U-Boot running mender's bootcount integration (`mender_boot_part`,
//! `upgrade_available`, `bootcount` against `bootlimit=1`;
//! <https://docs.mender.io/operating-system-updates-yocto-project/board-integration/bootloader-support/u-boot>).
//!
//! Two things mender finds by fixed paths are redirected for the test: it runs in a private
//! mount namespace with the rig's `etc/mender` bound on `/etc/mender` (it reads
//! `/etc/mender/artifact_info` from there), and the device "booted" is what a `mount` wrapper
//! prints for `/` (mender compares that with `mender_boot_part` to know its running partition).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use update_adapters::mender::{MenderFactory, MenderOptions};
use update_adapters::tool::ToolSpec;
use update_core::driver::DriverFactory;

use crate::suite::{Artifact, Rig};
use crate::support::{Harness, cmd, flip_byte, noise_bytes, sh, tar_member, uboot_bootcount};

const SLOT_SIZE: usize = 4 << 20;
const IMAGE_SIZE: usize = 1 << 20;

pub struct MenderRig {
    dir: tempfile::TempDir,
    harness: Harness,
    loops: Vec<String>,
    built: u32,
}

fn other_part(p: &str) -> String {
    if p == "2" { "3".into() } else { "2".into() }
}

impl MenderRig {
    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn search_path(&self) -> String {
        format!("{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", self.p("bin").display())
    }

    fn env_list(&self) -> BTreeMap<String, String> {
        sh(cmd(self.p("bin/fw_printenv").to_str().unwrap(), std::iter::empty::<&str>()))
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
            .collect()
    }

    fn env_set(&self, vars: &[String]) {
        let script = self.p("fw_setenv.script");
        // libubootenv's script format is `name=value`.
        let text: String = vars.iter().map(|v| format!("{v}\n")).collect();
        std::fs::write(&script, text).unwrap();
        sh(cmd(self.p("bin/fw_setenv").to_str().unwrap(), ["-s".as_ref(), script.as_os_str()]));
    }
}

fn script(path: &std::path::Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    sh(cmd("chmod", ["755".as_ref(), path.as_os_str()]));
}

impl Rig for MenderRig {
    const DRIVER: &'static str = "mender";
    const TOOLS: &'static [&'static str] =
        &["mender", "mender-artifact", "fw_printenv", "fw_setenv", "losetup", "unshare", "mount", "tar", "openssl"];
    const NEEDS_ROOT: bool = true;
    const FALLS_BACK: bool = true;
    const PROGRESS: bool = false;
    const FACTORY_VERSION: Option<&'static str> = Some("1.0.0");
    const ROLLBACK_AFTER_COMMIT: bool = false;

    fn new() -> Self {
        assert!(std::path::Path::new("/etc/mender").is_dir(), "the rig binds its etc/mender over /etc/mender");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_owned();
        for sub in ["etc/mender", "var/lib/mender", "slots", "dev", "bin", "pki", "build"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let mut rig = Self { dir, harness: Harness::new(&d, "mender"), loops: Vec::new(), built: 0 };
        // Slots on loop devices.
        let mut a = noise_bytes(1, IMAGE_SIZE);
        a.resize(SLOT_SIZE, 0);
        std::fs::write(d.join("slots/rootfs2.img"), &a).unwrap();
        std::fs::write(d.join("slots/rootfs3.img"), vec![0u8; SLOT_SIZE]).unwrap();
        for n in ["2", "3"] {
            let dev = sh(cmd(
                "losetup",
                ["-f".as_ref(), "--show".as_ref(), d.join(format!("slots/rootfs{n}.img")).as_os_str()],
            ));
            let dev = dev.trim().to_owned();
            std::os::unix::fs::symlink(&dev, d.join(format!("dev/mmcblk0p{n}"))).unwrap();
            rig.loops.push(dev);
        }
        // Keys.
        let pki = d.join("pki");
        for (key, public) in [("sign.pem", "verify.pem"), ("evil.pem", "evil.pub.pem")] {
            sh(cmd("openssl", ["ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out"]).arg(pki.join(key)));
            sh(cmd("openssl", ["ec", "-pubout", "-in"]).arg(pki.join(key)).arg("-out").arg(pki.join(public)));
        }
        // The U-Boot environment, redundant, through wrappers that pass its config.
        let defenv = d.join("u-boot-initial-env");
        std::fs::write(
            &defenv,
            "bootlimit=1\nbootcount=0\nupgrade_available=0\nmender_boot_part=2\nmender_boot_part_hex=2\n",
        )
        .unwrap();
        std::fs::write(d.join("uboot.env"), vec![0u8; 16384]).unwrap();
        std::fs::write(d.join("uboot-redund.env"), vec![0u8; 16384]).unwrap();
        std::fs::write(
            d.join("fw_env.config"),
            format!("{d}/uboot.env 0x0000 0x4000\n{d}/uboot-redund.env 0x0000 0x4000\n", d = d.display()),
        )
        .unwrap();
        for tool in ["fw_printenv", "fw_setenv"] {
            script(
                &d.join(format!("bin/{tool}")),
                &format!(
                    "exec /usr/bin/{tool} -c '{d}/fw_env.config' -f '{}' \"$@\"",
                    defenv.display(),
                    d = d.display()
                ),
            );
        }
        rig.env_set(&["mender_boot_part=2".into(), "mender_boot_part_hex=2".into(), "bootlimit=1".into()]);
        // What is mounted on / (the simulated boot writes booted-device).
        std::fs::write(d.join("booted-device"), format!("{}/dev/mmcblk0p2\n", d.display())).unwrap();
        script(
            &d.join("bin/mount"),
            &format!(
                "if [ $# -eq 0 ]; then echo \"$(cat '{d}/booted-device') on / type ext4 (rw,relatime)\"; exit 0; fi\nexec /usr/bin/mount \"$@\"",
                d = d.display()
            ),
        );
        script(
            &d.join("bin/mender"),
            &format!(
                "exec unshare --mount --propagation private -- sh -c 'mount --bind \"$0\" /etc/mender && exec /usr/bin/mender \"$@\"' '{d}/etc/mender' \"$@\"",
                d = d.display()
            ),
        );
        std::fs::write(d.join("etc/mender/artifact_info"), "artifact_name=1.0.0\n").unwrap();
        std::fs::write(d.join("var/lib/mender/device_type"), "device_type=libupdate-test\n").unwrap();
        std::fs::write(
            d.join("etc/mender/mender.conf"),
            format!(
                r#"{{"RootfsPartA": "{d}/dev/mmcblk0p2", "RootfsPartB": "{d}/dev/mmcblk0p3", "ArtifactVerifyKey": "{d}/pki/verify.pem", "DeviceTypeFile": "{d}/var/lib/mender/device_type"}}"#,
                d = d.display()
            ),
        )
        .unwrap();
        rig
    }

    fn harness(&self) -> &Harness {
        &self.harness
    }

    fn harness_mut(&mut self) -> &mut Harness {
        &mut self.harness
    }

    fn factory(&self) -> Box<dyn DriverFactory> {
        Box::new(MenderFactory::new(MenderOptions {
            tool: ToolSpec::new(self.p("bin/mender")).with_path(self.search_path()),
            reboot_command: vec!["true".into()],
            ..MenderOptions::default()
        }))
    }

    fn missing_tool_factory() -> Box<dyn DriverFactory> {
        Box::new(MenderFactory::new(MenderOptions {
            tool: ToolSpec::new("mender-not-installed"),
            ..MenderOptions::default()
        }))
    }

    fn artifact(&mut self, version: &str, kind: Artifact) -> PathBuf {
        self.built += 1;
        let image = self.p(&format!("build/rootfs-{}.img", self.built));
        std::fs::write(&image, noise_bytes(u64::from(self.built) + 100, IMAGE_SIZE)).unwrap();
        let out = self.p(&format!("build/update-{version}-{}.mender", self.built));
        let key = self.p(if kind == Artifact::Untrusted { "pki/evil.pem" } else { "pki/sign.pem" });
        sh(Command::new("mender-artifact")
            .args(["write", "rootfs-image", "-t", "libupdate-test", "-n", version, "-f"])
            .arg(&image)
            .arg("-o")
            .arg(&out)
            .arg("-k")
            .arg(&key));
        if kind == Artifact::Tampered {
            let (start, len) = tar_member(&out, "data/0000.tar.gz").expect("a payload");
            flip_byte(&out, start + len / 2);
        }
        out
    }

    fn reboot(&mut self) {
        let env = self.env_list();
        let (part, mut set) = uboot_bootcount(&env, "mender_boot_part", "2", other_part);
        if set.iter().any(|s| s.starts_with("mender_boot_part=")) {
            set.push(format!("mender_boot_part_hex={part}"));
        }
        if !set.is_empty() {
            self.env_set(&set);
        }
        std::fs::write(self.p("booted-device"), format!("{}/dev/mmcblk0p{part}\n", self.dir.path().display())).unwrap();
    }

    fn snapshot(&self) -> Vec<(String, Vec<u8>)> {
        ["slots/rootfs2.img", "slots/rootfs3.img", "uboot.env", "uboot-redund.env"]
            .iter()
            .map(|f| ((*f).to_owned(), std::fs::read(self.p(f)).unwrap()))
            .collect()
    }
}

impl Drop for MenderRig {
    fn drop(&mut self) {
        for l in &self.loops {
            let _ = Command::new("losetup").args(["-d", l]).status();
        }
    }
}
