//! The native engine's device: `update-test`'s [`SimDevice`], a GPT disk image on a real loop
//! device (partitions from `partx -a`: boot-a, boot-b, rootfs-a, rootfs-b, data), an ext4 factory
//! rootfs 1.0.0 and a kernel image in slot A, user data on the data partition, and two GRUB-format
//! boot-environment copies. Updates are native bundles made with the `update-bundle` writer from a
//! fresh ext4 rootfs and kernel image per version, signed with a vendor key that the rig puts into
//! the device's keyring; the untrusted ones are signed with a second key the device does not know,
//! and the unsigned ones have no signature at all.
//! A reboot runs `update_boot::simulate_boot` (the Rust twin of the shipped GRUB fragment) through
//! [`SimDevice::reboot`], then checks that the booted slot's rootfs holds the version the slot
//! records say it does.
//!
//! Where native legitimately differs from the tools (the [`Rig`] constants below):
//! - it has no tool: "without tool" and "unconfigured" both mean no `[native]` table in the
//!   config, and the factory declines with "no [native] table in the config";
//! - `check` (inspect) reads the signed manifest only. The manifest carries every chunk's hash,
//!   and install verifies the whole payload against them before it writes a byte
//!   (docs/reference/bundle.md, "the device's verification order"), so a bundle with a changed
//!   payload byte is inspected as the release it claims to be and refused by install;
//! - it enforces `signature-threshold` itself: two required signatures refuse a bundle with one,
//!   as a verification failure.

use std::path::{Path, PathBuf};

use update_boot::Slot;
use update_bundle::CreateOptions;
use update_core::config::NativeConfig;
use update_core::driver::DriverFactory;
use update_core::keyring::Keyring;
use update_core::{KeyName, Paths, SlotGroupName};
use update_native::NativeFactory;
use update_test::device::{SimDevice, SimOptions, hash_prefix, make_kernel, make_rootfs};
use update_test::disk::ext4_cat;

use crate::suite::{Artifact, Rig};
use crate::support::Harness;

const ROOTFS_MIB: u64 = 16;
const BOOT_MIB: u64 = 2;
const DATA_MIB: u64 = 8;
/// The release rootfs image (ext4), smaller than its slot.
const IMAGE_MIB: u64 = 12;

pub struct NativeRig {
    // Dropped first: detaches the loop device before the directory goes.
    dev: SimDevice,
    harness: Harness,
    /// The build machine's side: signing keys and scratch space, outside the device's root.
    build: PathBuf,
    built: u32,
    _dir: tempfile::TempDir,
}

fn group(name: &str) -> SlotGroupName {
    SlotGroupName::new(name).unwrap()
}

fn device_len(path: &Path) -> u64 {
    use std::io::Seek;
    std::fs::File::open(path).and_then(|mut f| f.seek(std::io::SeekFrom::End(0))).unwrap()
}

impl NativeRig {
    fn key_file(&self, name: &str) -> PathBuf {
        self.build.join(format!("{name}.key.pem"))
    }
}

impl Rig for NativeRig {
    const DRIVER: &'static str = "native";
    const TOOLS: &'static [&'static str] = &["sfdisk", "losetup", "partx", "mkfs.ext4", "debugfs"];
    const NEEDS_ROOT: bool = true;
    const NEEDS_LOOP_DEVICES: bool = true;
    const FALLS_BACK: bool = true;
    const PROGRESS: bool = true;
    const FACTORY_VERSION: Option<&'static str> = Some("1.0.0");
    const MISSING_TOOL_DECLINE: &'static str = "no [native] table in the config";
    const UNCONFIGURED_DECLINES: &'static [&'static str] = &["no [native] table in the config"];
    const INSPECT_CHECKS_PAYLOAD: bool = false;
    const SIGNATURE_THRESHOLD: bool = true;
    const UNSIGNED_ARTIFACTS: bool = true;
    const REPORTS_TRIES: bool = true;

    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("device");
        let opts = SimOptions {
            loop_devices: true,
            rootfs_mib: ROOTFS_MIB,
            boot_mib: BOOT_MIB,
            data_mib: DATA_MIB,
            ..SimOptions::default()
        };
        let dev = SimDevice::create(&root, &opts).unwrap_or_else(|e| panic!("cannot build the simulated device: {e}"));
        let build = dir.path().join("build");
        std::fs::create_dir_all(&build).unwrap();
        std::fs::create_dir_all(root.join("srv/update")).unwrap();
        // The vendor key is trusted by the device; the stranger's is not.
        let mut keyring = Keyring::default();
        for name in ["vendor", "stranger"] {
            let key = update_bundle::signing::generate().unwrap();
            let pem = update_bundle::signing::private_pem(&key).unwrap();
            std::fs::write(build.join(format!("{name}.key.pem")), pem).unwrap();
            if name == "vendor" {
                let public = update_bundle::signing::public_key(&key);
                keyring.add(KeyName::new(name).unwrap(), public, "2026-01-01T00:00:00Z").unwrap();
            }
        }
        let paths = Paths::new(&root);
        keyring.store(&paths).unwrap();
        let mut harness = Harness::new(&root, "native");
        harness.config.native = Some(dev.native.clone());
        harness.keyring = keyring;
        Self { dev, harness, build, built: 0, _dir: dir }
    }

    fn harness(&self) -> &Harness {
        &self.harness
    }

    fn harness_mut(&mut self) -> &mut Harness {
        &mut self.harness
    }

    fn factory(&self) -> Box<dyn DriverFactory> {
        Box::new(NativeFactory::default())
    }

    /// Native has no program: the same factory, probed with a config that has no `[native]` table.
    fn missing_tool_factory() -> Box<dyn DriverFactory> {
        Box::new(NativeFactory::default())
    }

    fn registered_factory() -> &'static dyn DriverFactory {
        &update_native::FACTORY
    }

    fn config_tables(&self) -> String {
        #[derive(serde::Serialize)]
        struct Tables<'a> {
            native: &'a NativeConfig,
        }
        toml::to_string(&Tables { native: &self.dev.native }).unwrap()
    }

    fn artifact(&mut self, version: &str, kind: Artifact) -> PathBuf {
        self.built += 1;
        let scratch = self.build.join(format!("release-{}", self.built));
        std::fs::create_dir_all(&scratch).unwrap();
        let rootfs = scratch.join("rootfs.img");
        let kernel = scratch.join("kernel.img");
        make_rootfs(&rootfs, version, "ok", IMAGE_MIB, 256).unwrap();
        make_kernel(&kernel, version, 256 << 10).unwrap();
        let mut opts = CreateOptions::new(update_core::parse_version(version).unwrap(), &self.dev.native.compatible);
        opts.images = vec![(group("rootfs"), rootfs), (group("kernel"), kernel)];
        if kind != Artifact::Unsigned {
            let signer = if kind == Artifact::Untrusted { "stranger" } else { "vendor" };
            let key = update_bundle::signing::read_private(&self.key_file(signer)).unwrap();
            opts.signers = vec![(KeyName::new(signer).unwrap(), key)];
        }
        opts.chunk_size = 256 << 10;
        let out = self.dev.root.join(format!("srv/update/release-{version}-{}.bundle", self.built));
        let mut tmp = tempfile::tempfile().unwrap();
        let mut file = std::fs::File::create(&out).unwrap();
        update_bundle::create(&opts, &mut tmp, &mut file).unwrap();
        drop(file);
        std::fs::remove_dir_all(&scratch).unwrap();
        if kind == Artifact::Tampered {
            // One byte in the middle of the payload (after the signed header, manifest and
            // signature block), so the signatures still verify.
            let bytes = std::fs::read(&out).unwrap();
            let header: [u8; update_bundle::HEADER_LEN] = bytes[..update_bundle::HEADER_LEN].try_into().unwrap();
            let h = update_bundle::Header::decode(&header, "bundle").unwrap();
            let payload = update_bundle::HEADER_LEN as u64 + h.manifest_len + h.signatures_len;
            crate::support::flip_byte(&out, payload + h.payload_len / 2);
        }
        out
    }

    fn reboot(&mut self) {
        let slot = self.dev.reboot().unwrap_or_else(|e| panic!("simulated boot failed: {e}"));
        // The system that comes up is the one its slot records claim.
        let records = update_native::records::load(&self.dev.paths()).unwrap();
        let recorded = records
            .get(slot.as_str())
            .unwrap_or_else(|| panic!("slot {slot} booted, but it holds no recorded version"));
        let running = ext4_cat(&self.dev.slot_device("rootfs", slot), "/etc/version").unwrap();
        assert_eq!(running.trim(), recorded.version, "slot {slot}'s rootfs");
    }

    /// SHA-256 of both slots of every slot group, the data partition, both boot-environment
    /// copies and the slot records.
    fn snapshot(&self) -> Vec<(String, Vec<u8>)> {
        let mut parts: Vec<(String, PathBuf)> = Vec::new();
        for g in ["kernel", "rootfs"] {
            for s in Slot::ALL {
                parts.push((format!("{g} slot {s}"), self.dev.slot_device(g, s)));
            }
        }
        parts.push(("data".into(), self.dev.data_device()));
        for f in ["boot/update/env1", "boot/update/env2", "var/lib/update/slots.json"] {
            parts.push((f.into(), self.dev.root.join(f)));
        }
        parts
            .into_iter()
            .map(|(name, path)| {
                let digest = hash_prefix(&path, device_len(&path)).unwrap();
                (name, digest.into_bytes())
            })
            .collect()
    }
}
