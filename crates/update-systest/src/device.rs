//! A simulated device: its disk image (factory state: one version in slot A, committed), its identity,
//! its signed repository on the server, the releases made for it, and booting it.
//!
//! Provisioning uses the project's own tools, as a factory line would: the keyring is written
//! by `update config key add`, the two GRUB environment files and the slot records by
//! `update_native::provision` (which calls `update_boot::create_configured` with the initial
//! boot state), the bundles by `update-tool bundle create`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use update_test::pki::Identity;

use crate::artifacts::Artifacts;
use crate::disk;
use crate::error::{Error, Result, check, io};
use crate::server::Repo;
use crate::util::{Rng, output, p, quiet, sha256, sha256_range};
use crate::vm::{Vm, VmOptions};
use crate::workspace;

/// The app's restart command in every rootfs: logs the version it finds in `current`.
const WEB_RESTART: &str =
    "#!/bin/sh\nset -e\necho \"started $(cat \"$UPDATE_APP_DIR/VERSION\")\" >> /var/log/web.log\n";
/// The app's health check in every rootfs: its own `health` file says `ok`.
const WEB_HEALTH: &str = "#!/bin/sh\nexec grep -qx ok \"$UPDATE_APP_DIR/health\"\n";

/// An app version and what its `health` file says (`ok`, or anything else for a broken one).
pub type AppPart<'a> = (&'a str, &'a str);
/// A site data version and its `site.conf` (policy `merge`).
pub type SitePart<'a> = (&'a str, &'a str);

/// The board name every release declares.
pub const COMPATIBLE: &str = "systest-pc";

/// A release's health check (`[[health-check]]` in its own update.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Passes.
    Good,
    /// Fails: the release is broken and must be rolled back by the bootloader.
    Broken,
}

impl Health {
    fn toml(self) -> (&'static str, &'static str) {
        match self {
            Health::Good => {
                ("the release is complete", r#"["/bin/sh", "-c", "test -s /etc/version && test -x /bin/update"]"#)
            }
            Health::Broken => {
                ("the application starts", r#"["/bin/sh", "-c", "echo SYSTEST-HEALTH-FAILED > /dev/console; exit 1"]"#)
            }
        }
    }
}

/// How a release's bundle is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleKind {
    /// The images' compressed chunks: a device streams all of them.
    Full,
    /// Format 3 (`update-tool bundle create --delta-base`) against the images in this slot of
    /// the device's disk (the release it runs): the device fetches only the 4 KiB blocks it
    /// does not already have (docs/delta.md).
    DeltaFrom(char),
}

/// What every device shares.
pub struct Ctx {
    /// Binaries, kernel, initramfs, core.img.
    pub art: Artifacts,
    /// The run's work directory.
    pub work: PathBuf,
    /// The vendor's signing key (bundles and repository metadata).
    pub vendor_key: PathBuf,
    /// Its public half (the devices' keyring).
    pub vendor_pub: PathBuf,
    /// The CA devices check the server with.
    pub server_ca: PathBuf,
    /// The server's port on the host.
    pub port: u16,
    /// The directory the server serves under /repo/.
    pub repo_root: PathBuf,
    /// QEMU resources.
    pub vm: VmOptions,
    /// Whether the devices report to the server (`server = …`, fleet reporting).
    pub fleet: bool,
    /// `boot-retry-limit` of every release.
    pub retry_limit: u32,
}

/// The images of one version, and their SHA-256.
#[derive(Debug, Clone)]
pub struct Release {
    /// The signed bundle (none for the factory image).
    pub bundle: Option<PathBuf>,
    boot_img: PathBuf,
    rootfs_img: PathBuf,
}

/// What the console said about one boot.
#[derive(Debug, Clone)]
pub struct BootInfo {
    /// The slot GRUB chose (`update: booting slot B (trial)`).
    pub slot: char,
    /// Why: committed, trial or last-resort.
    pub reason: String,
    /// The version in the booted rootfs (`/etc/version`).
    pub rootfs: String,
    /// The version on the booted boot partition (kernel and initramfs).
    pub boot: String,
    /// `SYSTEST-DATA ok`: the pre-update files on the data partition are intact.
    pub data_ok: bool,
}

/// One simulated device.
pub struct Device {
    /// Its name (also its certificate's CN and its repository's directory).
    pub name: String,
    dir: PathBuf,
    /// The disk image.
    pub disk: PathBuf,
    ctx: Arc<Ctx>,
    template: PathBuf,
    /// Known versions: version -> (boot SHA-256, rootfs SHA-256).
    pub known: BTreeMap<String, (String, String)>,
    /// Its repository.
    pub repo: Repo,
    /// Files on the data partition and their SHA-256, written before any update.
    pub userdata: Vec<(String, String)>,
    /// Boots so far.
    pub boots: u32,
    /// The newest release published to its repository.
    pub published: String,
    /// Whether the newest release is broken (fails its health check).
    pub published_broken: bool,
    /// Whether the device has downloaded the newest release completely.
    pub downloaded: bool,
    /// Extra files every release's rootfs holds under [`PAYLOAD_DIR`] (name -> content; none
    /// by default): a scenario changes some of them between releases, so a delta has something
    /// to fetch and much to reuse.
    pub payload: BTreeMap<String, Vec<u8>>,
}

/// Where the rootfs holds [`Device::payload`].
pub const PAYLOAD_DIR: &str = "usr/share/systest";

/// The update.toml of a release.
fn config_text(ctx: &Ctx, device: &str, health: Health) -> Result<String> {
    let template = workspace().join("tests/system/update.toml");
    let text = std::fs::read_to_string(&template).map_err(io("read", &template))?;
    let (name, command) = health.toml();
    let server = if ctx.fleet { format!("server = \"https://10.0.2.2:{}\"\n", ctx.port) } else { String::new() };
    Ok(text
        .replace("{{SOURCE}}", &format!("https://10.0.2.2:{}/repo/{device}/", ctx.port))
        .replace("{{RETRY_LIMIT}}", &ctx.retry_limit.to_string())
        .replace("{{SERVER}}\n", &server)
        .replace("{{COMPATIBLE}}", COMPATIBLE)
        .replace("{{HEALTH_NAME}}", name)
        .replace("{{HEALTH_COMMAND}}", command))
}

fn factory_version(v: &str) -> Result<update_core::Version> {
    Ok(update_core::parse_version(v)?)
}

fn mkdirs(root: &Path, dirs: &[&str]) -> Result {
    for d in dirs {
        let path = root.join(d);
        std::fs::create_dir_all(&path).map_err(io("create", &path))?;
    }
    Ok(())
}

fn copy_exec(src: &Path, dest: &Path) -> Result {
    use std::os::unix::fs::PermissionsExt;
    std::fs::copy(src, dest).map_err(io("copy", src))?;
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(0o755)).map_err(io("chmod", dest))
}

impl Device {
    /// Provisions a device with `factory` (e.g. 1.0.0) in slot A, committed, slot B empty, and
    /// initialises its repository. Its rootfs images hold `payload` (see [`Device::payload`]).
    pub fn create(
        ctx: Arc<Ctx>,
        name: &str,
        factory: &str,
        identity: &Identity,
        rng: &mut Rng,
        payload: BTreeMap<String, Vec<u8>>,
    ) -> Result<Device> {
        let dir = ctx.work.join("devices").join(name);
        std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        // 1. Factory provisioning in a staging root: keyring, boot environment, slot records.
        let stage = dir.join("stage");
        mkdirs(&stage, &["etc/update", "boot/efi/update", "var/lib/update", "var/log", "var/cache/update"])?;
        let cfg_file = stage.join("etc/update/update.toml");
        std::fs::write(&cfg_file, config_text(&ctx, name, Health::Good)?).map_err(io("write", &cfg_file))?;
        quiet(
            Command::new(&ctx.art.update)
                .arg("--root")
                .arg(&stage)
                .args(["config", "key", "add", "vendor"])
                .arg(format!("@{}", p(&ctx.vendor_pub))),
        )?;
        let paths = update_core::Paths::new(&stage);
        let config = update_core::config::Config::load(&paths)?;
        let native =
            config.native.ok_or_else(|| Error::Setup(format!("{} has no [native] table", cfg_file.display())))?;
        update_native::provision(&paths, &native, &factory_version(factory)?)?;

        // 2. The data partition: user files, the identity, the agent's state and logs.
        let data = dir.join("data");
        mkdirs(&data, &["user/settings", "identity", "var/lib", "var/cache/update", "site"])?;
        let files: [(&str, Vec<u8>); 3] = [
            ("user/photo.jpg", rng.bytes(768 * 1024)),
            ("user/notes.txt", format!("notes of {name}, written before any update\n").repeat(200).into_bytes()),
            ("user/settings/app.json", format!("{{\"device\": \"{name}\", \"volume\": 7}}\n").into_bytes()),
        ];
        let mut userdata = Vec::new();
        for (path, bytes) in &files {
            let f = data.join(path);
            std::fs::write(&f, bytes).map_err(io("write", &f))?;
            userdata.push(((*path).to_owned(), sha256(bytes)));
        }
        std::fs::copy(&identity.cert, data.join("identity/device.crt")).map_err(io("copy", &identity.cert))?;
        std::fs::copy(&identity.key, data.join("identity/device.key")).map_err(io("copy", &identity.key))?;
        quiet(Command::new("cp").arg("-a").arg(stage.join("var/lib/update")).arg(data.join("var/lib/")))?;
        quiet(Command::new("cp").arg("-a").arg(stage.join("var/log")).arg(data.join("var/")))?;

        // 3. What every rootfs of this device holds besides its version and config.
        let template = dir.join("rootfs-template");
        mkdirs(
            &template,
            &[
                "bin",
                "sbin",
                "etc/update/tls",
                "etc/systest",
                "proc",
                "sys",
                "dev",
                "tmp",
                "data",
                "boot/efi",
                "var/lib/update",
                "var/log",
                "var/cache/update",
                "root",
                "usr/lib/web",
            ],
        )?;
        for (name, text) in [("restart", WEB_RESTART), ("health", WEB_HEALTH)] {
            let f = template.join("usr/lib/web").join(name);
            std::fs::write(&f, text).map_err(io("write", &f))?;
            std::fs::set_permissions(&f, <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o755))
                .map_err(io("chmod", &f))?;
        }
        copy_exec(&ctx.art.busybox, &template.join("bin/busybox"))?;
        let applets = output(Command::new(&ctx.art.busybox).arg("--list"))?;
        for applet in applets.lines().map(str::trim).filter(|a| !a.is_empty() && *a != "busybox") {
            std::os::unix::fs::symlink("busybox", template.join("bin").join(applet))
                .map_err(io("symlink", &template.join("bin").join(applet)))?;
        }
        copy_exec(&ctx.art.update, &template.join("bin/update"))?;
        let guest = workspace().join("tests/system");
        copy_exec(&guest.join("rootfs-init"), &template.join("sbin/init"))?;
        copy_exec(&guest.join("systest-reboot"), &template.join("sbin/systest-reboot"))?;
        copy_exec(&guest.join("systest-off"), &template.join("sbin/systest-off"))?;
        std::fs::copy(stage.join("etc/update/keys.toml"), template.join("etc/update/keys.toml"))
            .map_err(io("copy", &stage.join("etc/update/keys.toml")))?;
        std::fs::copy(&ctx.server_ca, template.join("etc/update/tls/server-ca.crt"))
            .map_err(io("copy", &ctx.server_ca))?;
        let sums: String = userdata.iter().map(|(path, sha)| format!("{sha}  {path}\n")).collect();
        std::fs::write(template.join("etc/systest/userdata.sha256"), sums).map_err(io("write", &template))?;

        let repo = Repo::init(&ctx.art.update_tool, &ctx.repo_root, name, &ctx.vendor_key)?;
        let mut dev = Device {
            name: name.to_owned(),
            disk: dir.join("disk.img"),
            dir: dir.clone(),
            ctx: ctx.clone(),
            template,
            known: BTreeMap::new(),
            repo,
            userdata,
            boots: 0,
            published: factory.to_owned(),
            published_broken: false,
            downloaded: false,
            payload,
        };

        // 4. The disk: GPT, GRUB, ESP (board grub.cfg, our fragment, the two environment files),
        //    slot A = the factory version, slot B empty, data.
        let factory = dev.release(factory, Health::Good, None)?;
        let esp = dir.join("esp.img");
        let env = stage.join("boot/efi/update");
        disk::fat_image(
            &esp,
            "ESP",
            disk::part(disk::ESP).mib,
            &[
                ("/grub/grub.cfg", &guest.join("grub.cfg")),
                ("/update/update-boot.cfg", &workspace().join("crates/update-boot/data/grub.cfg")),
                ("/update/bootenv1", &env.join("bootenv1")),
                ("/update/bootenv2", &env.join("bootenv2")),
            ],
        )?;
        let data_img = dir.join("data.img");
        disk::ext4_image(&data_img, "data", disk::part(disk::DATA).mib, &data)?;
        disk::create(&dev.disk)?;
        disk::install_grub(&dev.disk, &ctx.art.core_img)?;
        disk::write_part(&dev.disk, disk::ESP, &esp)?;
        disk::write_part(&dev.disk, 3, &factory.boot_img)?;
        disk::write_part(&dev.disk, 5, &factory.rootfs_img)?;
        disk::write_part(&dev.disk, disk::DATA, &data_img)?;
        for f in [esp, data_img, factory.boot_img, factory.rootfs_img] {
            let _ = std::fs::remove_file(f);
        }
        Ok(dev)
    }

    /// Builds a release: a boot partition image (kernel, initramfs, version) and a rootfs
    /// image (busybox, `update`, init, its update.toml, version, the payload), and with
    /// `bundle` the signed bundle of both, made that way.
    pub fn release(&mut self, version: &str, health: Health, bundle: Option<BundleKind>) -> Result<Release> {
        let rel = self.dir.join("releases").join(version);
        let _ = std::fs::remove_dir_all(&rel);
        std::fs::create_dir_all(&rel).map_err(io("create", &rel))?;
        let tree = rel.join("rootfs");
        quiet(Command::new("cp").arg("-a").arg(&self.template).arg(&tree))?;
        std::fs::write(tree.join("etc/version"), format!("{version}\n")).map_err(io("write", &tree))?;
        std::fs::write(tree.join("etc/update/update.toml"), config_text(&self.ctx, &self.name, health)?)
            .map_err(io("write", &tree))?;
        if !self.payload.is_empty() {
            let dir = tree.join(PAYLOAD_DIR);
            std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
            for (name, bytes) in &self.payload {
                std::fs::write(dir.join(name), bytes).map_err(io("write", &dir.join(name)))?;
            }
        }
        let rootfs_img = rel.join("rootfs.img");
        disk::rootfs_image(&rootfs_img, "rootfs", disk::part(5).mib, &tree)?;
        let _ = std::fs::remove_dir_all(&tree);
        let version_file = rel.join("version");
        std::fs::write(&version_file, format!("{version}\n")).map_err(io("write", &version_file))?;
        let boot_img = rel.join("boot.img");
        disk::fat_image(
            &boot_img,
            "BOOT",
            disk::part(3).mib,
            &[("/vmlinuz", &self.ctx.art.kernel), ("/initrd.gz", &self.ctx.art.initrd), ("/version", &version_file)],
        )?;
        let hashes = (sha256_range(&boot_img, 0, disk::size(3))?, sha256_range(&rootfs_img, 0, disk::size(5))?);
        self.known.insert(version.to_owned(), hashes);
        let bundle = match bundle {
            None => None,
            Some(kind) => {
                let out = rel.join("system.bundle");
                let mut cmd = Command::new(&self.ctx.art.update_tool);
                cmd.args(["bundle", "create", "--out"])
                    .arg(&out)
                    .args(["--version", version, "--compatible", COMPATIBLE, "--key"])
                    .arg(&self.ctx.vendor_key)
                    .arg(format!("--image=boot={}", p(&boot_img)))
                    .arg(format!("--image=rootfs={}", p(&rootfs_img)))
                    .arg(format!("--hook=post-install={}", p(&workspace().join("tests/system/post-install-hook"))));
                if let BundleKind::DeltaFrom(slot) = kind {
                    // The base: the images the device runs, read from its disk.
                    let (boot_part, rootfs_part) = disk::slot_parts(slot);
                    for (part, file) in [(boot_part, "base-boot.img"), (rootfs_part, "base-rootfs.img")] {
                        let base = rel.join(file);
                        disk::read_part(&self.disk, part, &base)?;
                        cmd.arg("--delta-base").arg(base);
                    }
                }
                quiet(&mut cmd)?;
                for file in ["base-boot.img", "base-rootfs.img"] {
                    let _ = std::fs::remove_file(rel.join(file));
                }
                Some(out)
            }
        };
        Ok(Release { bundle, boot_img, rootfs_img })
    }

    /// Builds a release and publishes its full bundle as the repository's one target; returns
    /// the bundle.
    pub fn publish(&mut self, version: &str, health: Health) -> Result<PathBuf> {
        self.publish_as(version, health, BundleKind::Full)
    }

    /// Builds a release and publishes its bundle, made as `kind` says, as the repository's one
    /// target; returns the bundle.
    pub fn publish_as(&mut self, version: &str, health: Health, kind: BundleKind) -> Result<PathBuf> {
        let rel = self.release(version, health, Some(kind))?;
        let bundle = rel.bundle.ok_or_else(|| check(format!("{version} was built without its bundle")))?;
        self.repo.publish(&bundle)?;
        for f in [rel.boot_img, rel.rootfs_img] {
            let _ = std::fs::remove_file(f);
        }
        self.published = version.to_owned();
        self.published_broken = health == Health::Broken;
        self.downloaded = false;
        Ok(bundle)
    }

    /// Builds a components-only release (no OS images: installed without a reboot) of the app
    /// `web` and the site data `site`, signs it and publishes it as the repository's one target.
    pub fn publish_components(
        &mut self,
        version: &str,
        app: Option<AppPart<'_>>,
        site: Option<SitePart<'_>>,
    ) -> Result {
        let rel = self.dir.join("releases").join(version);
        let _ = std::fs::remove_dir_all(&rel);
        let tar = |label: &str, files: &[(&str, &str)]| -> Result<PathBuf> {
            let src = rel.join(label);
            std::fs::create_dir_all(&src).map_err(io("create", &src))?;
            for (name, text) in files {
                std::fs::write(src.join(name), text).map_err(io("write", &src))?;
            }
            let out = rel.join(format!("{label}.tar"));
            quiet(Command::new("tar").arg("-C").arg(&src).args(["--owner=0", "--group=0", "-cf"]).arg(&out).arg("."))?;
            Ok(out)
        };
        let mut args: Vec<String> = Vec::new();
        if let Some((v, health)) = app {
            let t = tar("web", &[("VERSION", v), ("health", health)])?;
            args.push(format!("--component=web:app:{v}={}", p(&t)));
        }
        if let Some((v, conf)) = site {
            let t = tar("site", &[("site.conf", conf)])?;
            args.push(format!("--component=site:data:{v}={}", p(&t)));
            args.push(r#"--option=site:policy={"site.conf":"merge"}"#.to_owned());
        }
        let out = rel.join("components.bundle");
        quiet(
            Command::new(&self.ctx.art.update_tool)
                .args(["bundle", "create", "--out"])
                .arg(&out)
                .args(["--version", version, "--compatible", COMPATIBLE, "--key"])
                .arg(&self.ctx.vendor_key)
                .args(&args),
        )?;
        self.repo.publish(&out)?;
        self.published = version.to_owned();
        self.published_broken = app.is_some_and(|(_, health)| health != "ok");
        self.downloaded = false;
        Ok(())
    }

    /// The boot-retry-limit of its releases.
    pub fn retry_limit(&self) -> u32 {
        self.ctx.retry_limit
    }

    /// Starts QEMU and reads the boot up to the data check: GRUB's choice, the booted
    /// versions, and `SYSTEST-DATA`.
    pub fn boot(&mut self, label: &str) -> Result<(Vm, BootInfo)> {
        self.boots += 1;
        let logs = self.ctx.work.join("logs");
        std::fs::create_dir_all(&logs).map_err(io("create", &logs))?;
        let log = logs.join(format!("{}-{:03}-{label}.log", self.name, self.boots));
        let mut vm = Vm::start(&format!("{} boot {} ({label})", self.name, self.boots), &self.disk, &log, self.ctx.vm)?;
        let grub = vm.expect("update: booting slot ", Duration::from_secs(90))?;
        let rest = grub.text.split("update: booting slot ").nth(1).unwrap_or_default();
        let slot = rest.chars().next().unwrap_or('?');
        let reason = rest.split('(').nth(1).and_then(|r| r.split(')').next()).unwrap_or_default().to_owned();
        let line = vm.expect("SYSTEST-BOOT ", Duration::from_secs(150))?;
        let field = |k: &str| -> String {
            line.text.split_whitespace().find_map(|w| w.strip_prefix(&format!("{k}="))).unwrap_or_default().to_owned()
        };
        let booted_slot = field("slot").chars().next().unwrap_or('?');
        if booted_slot != slot {
            return Err(vm.error(format!("GRUB chose slot {slot} but Linux runs with update.slot={booted_slot}")));
        }
        let data = vm.expect("SYSTEST-DATA ", Duration::from_secs(60))?;
        let info = BootInfo {
            slot,
            reason,
            rootfs: field("rootfs"),
            boot: field("boot"),
            data_ok: data.text.ends_with(" ok"),
        };
        Ok((vm, info))
    }

    /// Checks a boot from the host: both partitions of the booted slot hold exactly the images
    /// of one known version (kernel and rootfs switched together), and the data files are intact.
    pub fn verify_boot(&self, info: &BootInfo) -> Result {
        if !info.data_ok {
            return Err(check(format!("{}: the guest found the data partition's files changed", self.name)));
        }
        if info.rootfs != info.boot {
            return Err(check(format!(
                "{}: slot {} boots the kernel of {} with the rootfs of {}",
                self.name, info.slot, info.boot, info.rootfs
            )));
        }
        let (want_boot, want_rootfs) = self.known.get(&info.rootfs).ok_or_else(|| {
            check(format!("{}: slot {} runs unknown version '{}'", self.name, info.slot, info.rootfs))
        })?;
        let (boot_part, rootfs_part) = disk::slot_parts(info.slot);
        let got_boot = sha256_range(&self.disk, disk::offset(boot_part), disk::size(boot_part))?;
        let got_rootfs = sha256_range(&self.disk, disk::offset(rootfs_part), disk::size(rootfs_part))?;
        if &got_boot != want_boot || &got_rootfs != want_rootfs {
            return Err(check(format!(
                "{}: slot {} booted but does not hold complete {} images (boot {}, rootfs {})",
                self.name,
                info.slot,
                info.rootfs,
                if &got_boot == want_boot { "ok" } else { "DIFFERENT" },
                if &got_rootfs == want_rootfs { "ok" } else { "DIFFERENT" },
            )));
        }
        Ok(())
    }

    /// Reads the pre-update files (and `extra`) from the data partition on the host with
    /// debugfs and compares their SHA-256. QEMU must not be running.
    pub fn check_data_from_host(&self, extra: &[(String, String)]) -> Result {
        for (path, want) in self.userdata.iter().chain(extra) {
            let bytes = disk::read_data_file(&self.disk, &format!("/{path}"))?;
            let got = sha256(&bytes);
            if &got != want {
                return Err(check(format!("{}: /data/{path} changed: SHA-256 {got}, written as {want}", self.name)));
            }
        }
        Ok(())
    }
}
