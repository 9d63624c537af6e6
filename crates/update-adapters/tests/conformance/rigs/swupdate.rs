//! A simulated swupdate device: two raw slots in files, `/etc/swupdate.cfg` with the CA as
//! `public-key-file` and `bootloader = "grub"`, `.swu` files built with `cpio -H crc` and a
//! CMS-signed `sw-description` (openssl), and a simulated bootloader implementing U-Boot's
//! bootcount protocol on the driver's variables (`update_slot`, `upgrade_available`,
//! `bootcount`, `bootlimit`; <https://docs.u-boot.org/en/latest/api/bootcount.html>).
//!
//! Debian's swupdate has the GRUB environment path compiled in (`/boot/grub/grubenv`), so the
//! rig runs the real `/usr/bin/swupdate` through a wrapper that gives it a private mount
//! namespace with the rig's `boot/` bound on `/boot` (`unshare --mount`): the host's /boot is
//! never touched.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use update_adapters::swupdate::{SwupdateFactory, SwupdateOptions};
use update_adapters::tool::ToolSpec;
use update_core::driver::DriverFactory;

use crate::suite::{Artifact, Rig};
use crate::support::{Harness, Pki, cmd, flip_byte, image_bytes, sh, uboot_bootcount};

const SLOT_SIZE: usize = 2 << 20;
const IMAGE_SIZE: usize = 1 << 20;

pub struct SwupdateRig {
    dir: tempfile::TempDir,
    harness: Harness,
    pki: Pki,
    built: u32,
}

impl SwupdateRig {
    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn grubenv(&self) -> PathBuf {
        self.p("boot/grub/grubenv")
    }
}

/// Reads a grubenv with `grub-editenv list`.
pub fn grubenv_list(file: &std::path::Path) -> BTreeMap<String, String> {
    sh(cmd("grub-editenv", [file.as_os_str(), "list".as_ref()]))
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect()
}

impl Rig for SwupdateRig {
    const DRIVER: &'static str = "swupdate";
    const TOOLS: &'static [&'static str] = &["swupdate", "grub-editenv", "cpio", "openssl", "unshare", "mount"];
    const NEEDS_ROOT: bool = true;
    const FALLS_BACK: bool = true;
    const PROGRESS: bool = false;
    const FACTORY_VERSION: Option<&'static str> = None;

    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for sub in ["etc", "boot/grub", "slots", "proc", "build", "bin"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        assert!(std::path::Path::new("/boot").is_dir(), "the rig binds its boot/ over /boot, which must exist");
        let pki = Pki::create(&d.join("pki"));
        let mut a = image_bytes("1.0.0", IMAGE_SIZE);
        a.resize(SLOT_SIZE, 0);
        std::fs::write(d.join("slots/A.img"), &a).unwrap();
        std::fs::write(d.join("slots/B.img"), vec![0u8; SLOT_SIZE]).unwrap();
        let env = d.join("boot/grub/grubenv");
        sh(cmd("grub-editenv", [env.as_os_str(), "create".as_ref()]));
        sh(cmd("grub-editenv", [env.as_os_str()]).args(["set", "update_slot=A"]));
        std::fs::write(d.join("proc/cmdline"), "console=ttyS0 update.slot=A\n").unwrap();
        std::fs::write(d.join("etc/hwrevision"), "libupdate-test 1.0\n").unwrap();
        std::fs::write(
            d.join("etc/swupdate.cfg"),
            format!(
                "globals :\n{{\n\tverbose = true;\n\tloglevel = 5;\n\tpublic-key-file = \"{}\";\n\tbootloader = \"grub\";\n}};\n",
                pki.ca_cert.display()
            ),
        )
        .unwrap();
        let wrapper = d.join("bin/swupdate");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\n# Runs the real swupdate with {d}/boot on /boot, in a private mount namespace.\n\
                 exec unshare --mount --propagation private -- sh -c 'mount --bind \"$0\" /boot && exec /usr/bin/swupdate \"$@\"' '{d}/boot' \"$@\"\n",
                d = d.display()
            ),
        )
        .unwrap();
        sh(cmd("chmod", ["755".as_ref(), wrapper.as_os_str()]));
        let harness = Harness::new(d, "swupdate");
        Self { dir, harness, pki, built: 0 }
    }

    fn harness(&self) -> &Harness {
        &self.harness
    }

    fn harness_mut(&mut self) -> &mut Harness {
        &mut self.harness
    }

    fn factory(&self) -> Box<dyn DriverFactory> {
        Box::new(SwupdateFactory::new(SwupdateOptions {
            tool: ToolSpec::new(self.p("bin/swupdate")),
            reboot_command: vec!["true".into()],
            ..SwupdateOptions::default()
        }))
    }

    fn missing_tool_factory() -> Box<dyn DriverFactory> {
        Box::new(SwupdateFactory::new(SwupdateOptions {
            tool: ToolSpec::new("swupdate-not-installed"),
            ..SwupdateOptions::default()
        }))
    }

    fn artifact(&mut self, version: &str, kind: Artifact) -> PathBuf {
        self.built += 1;
        let b = self.p(&format!("build/swu-{}", self.built));
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(b.join("rootfs.img"), image_bytes(version, IMAGE_SIZE)).unwrap();
        let sha = sh(cmd("sha256sum", [b.join("rootfs.img")]));
        let sha = sha.split_whitespace().next().unwrap();
        let image = |slot: &str| {
            format!(
                "\t\t\t{slot} = {{\n\t\t\t\timages: ( {{ filename = \"rootfs.img\"; device = \"{}\"; type = \"raw\"; sha256 = \"{sha}\"; }} );\n\t\t\t}};\n",
                self.p(&format!("slots/{slot}.img")).display()
            )
        };
        std::fs::write(
            b.join("sw-description"),
            format!(
                "software =\n{{\n\tversion = \"{version}\";\n\tdescription = \"libupdate conformance\";\n\
                 \thardware-compatibility: [ \"1.0\" ];\n\tlibupdate-test = {{\n\t\tstable = {{\n{}{}\t\t}};\n\t}};\n}}\n",
                image("A"),
                image("B")
            ),
        )
        .unwrap();
        let (cert, key) = match kind {
            Artifact::Untrusted => (&self.pki.evil_cert, &self.pki.evil_key),
            _ => (&self.pki.signer_cert, &self.pki.signer_key),
        };
        sh(Command::new("openssl")
            .args(["cms", "-sign", "-in", "sw-description", "-out", "sw-description.sig", "-signer"])
            .arg(cert)
            .arg("-inkey")
            .arg(key)
            .args(["-outform", "DER", "-nosmimecap", "-binary"])
            .current_dir(&b));
        let out = self.p(&format!("build/update-{version}-{}.swu", self.built));
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "printf 'sw-description\\nsw-description.sig\\nrootfs.img\\n' | cpio --quiet -o -H crc > '{}'",
                out.display()
            ))
            .current_dir(&b)
            .status()
            .unwrap();
        assert!(status.success());
        if kind == Artifact::Tampered {
            let len = std::fs::metadata(&out).unwrap().len();
            flip_byte(&out, len - (IMAGE_SIZE as u64) / 2);
        }
        out
    }

    fn reboot(&mut self) {
        let env = grubenv_list(&self.grubenv());
        let (slot, set) = uboot_bootcount(&env, "update_slot", "A", |s| if s == "A" { "B".into() } else { "A".into() });
        if !set.is_empty() {
            sh(cmd("grub-editenv", [self.grubenv().as_os_str(), "set".as_ref()]).args(&set));
        }
        std::fs::write(self.p("proc/cmdline"), format!("console=ttyS0 update.slot={slot}\n")).unwrap();
    }

    fn snapshot(&self) -> Vec<(String, Vec<u8>)> {
        ["slots/A.img", "slots/B.img", "boot/grub/grubenv"]
            .iter()
            .map(|f| ((*f).to_owned(), std::fs::read(self.p(f)).unwrap()))
            .collect()
    }
}
