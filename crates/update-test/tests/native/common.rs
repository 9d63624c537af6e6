//! A simulated device with a vendor key, a source directory and bundle builders.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use libupdate::Updater;
use update_boot::Slot;
use update_bundle::CreateOptions;
use update_core::keyring::Keyring;
use update_core::{KeyName, Paths, SlotGroupName, Version};
use update_test::device::{SimDevice, SimOptions, hash_prefix, make_kernel, make_rootfs};

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub dev: SimDevice,
    pub key: SigningKey,
    pub images: PathBuf,
}

pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

impl Fixture {
    pub fn new() -> Self {
        Self::with(SimOptions { rootfs_mib: 16, boot_mib: 2, data_mib: 8, ..SimOptions::default() })
    }

    pub fn with(opts: SimOptions) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("device");
        let dev = SimDevice::create(&root, &opts).unwrap();
        let key = key(7);
        let paths = Paths::new(&root);
        let mut ring = Keyring::default();
        ring.add(KeyName::new("vendor").unwrap(), update_bundle::signing::public_key(&key), "t").unwrap();
        ring.store(&paths).unwrap();
        let mut config = update_core::config::Config::load(&paths).unwrap();
        config.source = Some(update_core::config::SourceUrl::new("file:///srv/update").unwrap());
        config.log = update_core::config::LogTarget::File("/var/log/update.log".into());
        config.store(&paths).unwrap();
        std::fs::create_dir_all(root.join("srv/update")).unwrap();
        let images = dir.path().join("images");
        std::fs::create_dir_all(&images).unwrap();
        Fixture { dir, dev, key, images }
    }

    pub fn root(&self) -> &Path {
        &self.dev.root
    }

    pub fn source(&self) -> PathBuf {
        self.root().join("srv/update")
    }

    pub fn updater(&self) -> Updater {
        Updater::open(Paths::new(self.root()), vec![&update_native::FACTORY as &dyn update_core::driver::DriverFactory])
            .unwrap()
    }

    /// Release images for `version`: (rootfs, kernel).
    pub fn release_images(&self, version: &str, health: &str) -> (PathBuf, PathBuf) {
        let rootfs = self.images.join(format!("rootfs-{version}.img"));
        let kernel = self.images.join(format!("kernel-{version}.img"));
        if !rootfs.exists() {
            make_rootfs(&rootfs, version, health, 12, 512).unwrap();
            make_kernel(&kernel, version, 256 << 10).unwrap();
        }
        (rootfs, kernel)
    }

    pub fn options(&self, version: &str, health: &str) -> CreateOptions {
        let (rootfs, kernel) = self.release_images(version, health);
        let mut o = CreateOptions::new(update_core::parse_version(version).unwrap(), "demo-board");
        o.images =
            vec![(SlotGroupName::new("rootfs").unwrap(), rootfs), (SlotGroupName::new("kernel").unwrap(), kernel)];
        o.signers = vec![(KeyName::new("vendor").unwrap(), self.key.clone())];
        o.chunk_size = 256 << 10;
        o
    }

    /// Writes a bundle into the source directory (replacing all others) and returns its path.
    pub fn publish(&self, opts: &CreateOptions) -> PathBuf {
        for e in std::fs::read_dir(self.source()).unwrap().flatten() {
            std::fs::remove_file(e.path()).unwrap();
        }
        let path = self.source().join(format!("release-{}.bundle", opts.version));
        let mut scratch = tempfile::tempfile().unwrap();
        let mut out = std::fs::File::create(&path).unwrap();
        update_bundle::create(opts, &mut scratch, &mut out).unwrap();
        path
    }

    pub fn publish_version(&self, version: &str, health: &str) -> PathBuf {
        self.publish(&self.options(version, health))
    }

    /// SHA-256 of both slots of every group, the data partition, both env copies and the
    /// slot records: everything a refused update must leave alone.
    pub fn fingerprint(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        for g in ["rootfs", "kernel"] {
            for s in Slot::ALL {
                let p = self.dev.slot_device(g, s);
                let len = std::fs::File::open(&p).map(seek_len).unwrap();
                m.insert(format!("{g}-{s}"), hash_prefix(&p, len).unwrap());
            }
        }
        let data = self.dev.data_device();
        let len = std::fs::File::open(&data).map(seek_len).unwrap();
        m.insert("data".into(), hash_prefix(&data, len).unwrap());
        for f in ["boot/update/env1", "boot/update/env2", "var/lib/update/slots.json", "proc/cmdline"] {
            let p = self.root().join(f);
            m.insert(f.into(), hash_prefix(&p, 1 << 30).unwrap());
        }
        m
    }

    pub fn slot_version(&self, slot: Slot) -> String {
        self.dev.read_rootfs_file(slot, "/etc/version").unwrap().trim().to_owned()
    }
}

pub fn seek_len(mut f: std::fs::File) -> u64 {
    use std::io::Seek;
    f.seek(std::io::SeekFrom::End(0)).unwrap()
}

pub fn v(text: &str) -> Version {
    update_core::parse_version(text).unwrap()
}
