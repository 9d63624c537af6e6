//! A simulated rauc device: a private D-Bus system bus, `rauc service` with a test system.conf
//! (two raw slots in files, `bootloader=grub` with a grubenv file, a central status file, an
//! X.509 keyring), bundles built with `rauc bundle`, and a simulated GRUB that runs the
//! slot-selection algorithm of rauc's documented GRUB integration
//! (<https://rauc.readthedocs.io/en/latest/integration.html#grub>, contrib/grub.conf): for each
//! slot in `ORDER`, boot the first with `X_OK=1` and `X_TRY=0`, setting `X_TRY=1` on the way.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use update_adapters::rauc::{RaucFactory, RaucOptions};
use update_adapters::tool::ToolSpec;
use update_core::driver::DriverFactory;

use crate::suite::{Artifact, Rig};
use crate::support::{Harness, Pki, Service, cmd, flip_byte, image_bytes, sh, wait_until};

const SLOT_SIZE: usize = 2 << 20;
const IMAGE_SIZE: usize = 1 << 20;

pub struct RaucRig {
    dir: tempfile::TempDir,
    harness: Harness,
    pki: Pki,
    bus: Service,
    bus_address: String,
    service: Option<Service>,
    built: u32,
}

impl RaucRig {
    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn conf(&self) -> PathBuf {
        self.p("etc/rauc/system.conf")
    }

    fn grubenv(&self) -> PathBuf {
        self.p("boot/grub/grubenv")
    }

    fn env_get(&self) -> Vec<(String, String)> {
        sh(cmd("grub-editenv", [self.grubenv().as_os_str(), "list".as_ref()]))
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
            .collect()
    }

    fn start_service(&mut self, booted: &str) {
        if let Some(mut s) = self.service.take() {
            s.stop();
        }
        let log = self.p(&format!("rauc-service-{booted}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new("rauc")
            .arg(format!("--conf={}", self.conf().display()))
            .arg("service")
            .arg(format!("--override-boot-slot={booted}"))
            .env("DBUS_SYSTEM_BUS_ADDRESS", &self.bus_address)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start rauc service");
        let svc = Service { name: "rauc service".into(), child, log };
        let conf = self.conf();
        let addr = self.bus_address.clone();
        let up = wait_until(20, || {
            Command::new("rauc")
                .arg(format!("--conf={}", conf.display()))
                .args(["status", "--output-format=json"])
                .env("DBUS_SYSTEM_BUS_ADDRESS", &addr)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        assert!(up, "rauc service did not come up:\n{}", svc.log_text());
        self.service = Some(svc);
    }
}

fn start_bus(dir: &Path) -> (Service, String) {
    let conf = dir.join("bus.conf");
    std::fs::write(
        &conf,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}/bus.socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"#,
            dir.display()
        ),
    )
    .unwrap();
    let log = dir.join("dbus.log");
    let mut child = Command::new("dbus-daemon")
        .arg(format!("--config-file={}", conf.display()))
        .args(["--nofork", "--print-address"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start dbus-daemon");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.starts_with("unix:"), "dbus-daemon printed {line:?}");
    (Service { name: "dbus-daemon".into(), child, log }, line.trim().to_owned())
}

impl RaucRig {
    /// The rig's factory, running `program` as rauc (a counting wrapper, say).
    pub fn factory_with_program(&self, program: impl Into<std::path::PathBuf>) -> Box<dyn DriverFactory> {
        Box::new(RaucFactory::new(RaucOptions {
            tool: ToolSpec::new(program).with_env("DBUS_SYSTEM_BUS_ADDRESS", &self.bus_address),
            system_conf: None,
            reboot_command: vec!["true".into()],
        }))
    }
}

impl Rig for RaucRig {
    const DRIVER: &'static str = "rauc";
    const TOOLS: &'static [&'static str] = &["rauc", "dbus-daemon", "grub-editenv", "mksquashfs", "openssl"];
    const NEEDS_ROOT: bool = true;
    const FALLS_BACK: bool = true;
    const PROGRESS: bool = true;
    const FACTORY_VERSION: Option<&'static str> = None;

    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for sub in ["etc/rauc", "boot/grub", "slots", "mnt", "build"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let pki = Pki::create(&d.join("pki"));
        let mut a = image_bytes("1.0.0", IMAGE_SIZE);
        a.resize(SLOT_SIZE, 0);
        std::fs::write(d.join("slots/A.img"), &a).unwrap();
        std::fs::write(d.join("slots/B.img"), vec![0u8; SLOT_SIZE]).unwrap();
        let env = d.join("boot/grub/grubenv");
        sh(cmd("grub-editenv", [env.as_os_str(), "create".as_ref()]));
        sh(cmd("grub-editenv", [env.as_os_str()]).args(["set", "ORDER=A B", "A_OK=1", "B_OK=0", "A_TRY=0", "B_TRY=0"]));
        std::fs::write(
            d.join("etc/rauc/system.conf"),
            format!(
                "[system]\ncompatible=libupdate-test\nbootloader=grub\ngrubenv={env}\nstatusfile={d}/status.raucs\n\
                 bundle-formats=plain\nmountprefix={d}/mnt\n\n[keyring]\npath={ca}\n\n\
                 [slot.rootfs.0]\ndevice={d}/slots/A.img\ntype=raw\nbootname=A\n\n\
                 [slot.rootfs.1]\ndevice={d}/slots/B.img\ntype=raw\nbootname=B\n",
                env = env.display(),
                d = d.display(),
                ca = pki.ca_cert.display()
            ),
        )
        .unwrap();
        let (bus, bus_address) = start_bus(d);
        let harness = Harness::new(d, "rauc");
        let mut rig = Self { dir, harness, pki, bus, bus_address, service: None, built: 0 };
        rig.start_service("A");
        rig
    }

    fn harness(&self) -> &Harness {
        &self.harness
    }

    fn harness_mut(&mut self) -> &mut Harness {
        &mut self.harness
    }

    fn factory(&self) -> Box<dyn DriverFactory> {
        self.factory_with_program("rauc")
    }

    fn missing_tool_factory() -> Box<dyn DriverFactory> {
        Box::new(RaucFactory::new(RaucOptions { tool: ToolSpec::new("rauc-not-installed"), ..RaucOptions::default() }))
    }

    fn artifact(&mut self, version: &str, kind: Artifact) -> PathBuf {
        self.built += 1;
        let content = self.p(&format!("build/content-{}", self.built));
        std::fs::create_dir_all(&content).unwrap();
        std::fs::write(content.join("rootfs.img"), image_bytes(version, IMAGE_SIZE)).unwrap();
        std::fs::write(
            content.join("manifest.raucm"),
            format!(
                "[update]\ncompatible=libupdate-test\nversion={version}\n\n[bundle]\nformat=plain\n\n\
                 [image.rootfs]\nfilename=rootfs.img\n"
            ),
        )
        .unwrap();
        let out = self.p(&format!("build/update-{version}-{}.raucb", self.built));
        let (cert, key) = match kind {
            Artifact::Untrusted => (&self.pki.evil_cert, &self.pki.evil_key),
            _ => (&self.pki.signer_cert, &self.pki.signer_key),
        };
        sh(Command::new("rauc")
            .arg(format!("--cert={}", cert.display()))
            .arg(format!("--key={}", key.display()))
            .arg("bundle")
            .arg(&content)
            .arg(&out));
        if kind == Artifact::Tampered {
            flip_byte(&out, (IMAGE_SIZE / 2) as u64);
        }
        out
    }

    fn reboot(&mut self) {
        let env: std::collections::BTreeMap<String, String> = self.env_get().into_iter().collect();
        let get = |k: &str| env.get(k).cloned().unwrap_or_default();
        let mut set = Vec::new();
        let mut chosen = None;
        for slot in get("ORDER").split_whitespace() {
            let ok = get(&format!("{slot}_OK")) == "1";
            let tried = get(&format!("{slot}_TRY")) == "1";
            set.push(format!("{slot}_TRY=1"));
            if ok && !tried {
                chosen = Some(slot.to_owned());
                break;
            }
        }
        let chosen = chosen.expect("the simulated GRUB found no bootable slot");
        sh(cmd("grub-editenv", [self.grubenv().as_os_str(), "set".as_ref()]).args(&set));
        self.start_service(&chosen);
    }

    fn snapshot(&self) -> Vec<(String, Vec<u8>)> {
        ["slots/A.img", "slots/B.img", "boot/grub/grubenv"]
            .iter()
            .map(|f| ((*f).to_owned(), std::fs::read(self.p(f)).unwrap()))
            .collect()
    }
}

impl Drop for RaucRig {
    fn drop(&mut self) {
        if let Some(mut s) = self.service.take() {
            s.stop();
        }
        self.bus.stop();
    }
}
