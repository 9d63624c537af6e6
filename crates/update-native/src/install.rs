//! Installing a bundle: [`plan`] checks everything and writes nothing; [`execute`] writes.
//!
//! The write sequence, and why each crash point is safe (the boot state is in `update-boot`'s
//! power-cut-safe two-copy store):
//! 1. `begin_install(target)`: the target slot becomes unbootable (not ok, 0 tries) and the
//!    running slot primary. A cut before or after this store boots the running slot.
//! 2. Stream the payload: each chunk is verified against the signed manifest before its bytes
//!    reach the target device. A cut leaves a half-written target that nothing boots.
//! 3. Flush the target, read it back and hash it against the manifest.
//! 4. Record the new version for the target (`slots.json`, atomic) and run `post-install` hooks.
//! 5. `switch_to(target, boot-retry-limit)`: the one atomic write that makes the new slot
//!    primary on trial. A cut before it boots the old slot; after it the new slot gets its tries
//!    and the old slot stays committed for the fallback.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use update_boot::{BootEnv, Slot};
use update_bundle::{BundleReader, Manifest, VerifiedBundle};
use update_core::audit::{AuditAction, Outcome};
use update_core::blockdev::{BlockDevice, FileDevice};
use update_core::driver::{BundleInfo, Context, InstallOutcome, InstallRequest, Progress};
use update_core::{Error, Result, Version};

use crate::NativeDriver;
use crate::records;

/// Free space the state directory must have before an install starts (records, hooks).
pub const MIN_STATE_SPACE: u64 = 256 * 1024;

/// One image of the plan.
#[derive(Debug, Clone)]
pub struct PlannedImage {
    /// Slot group.
    pub group: String,
    /// Index in the manifest.
    pub index: usize,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 (hex) from the signed manifest.
    pub sha256: String,
    /// The target device (under the root).
    pub device: PathBuf,
}

/// Everything checked before a byte is written.
#[derive(Debug, Clone)]
pub struct InstallPlan {
    /// The slot being written (the inactive one).
    pub target: Slot,
    /// The running slot.
    pub booted: Slot,
    /// The version being installed.
    pub version: Version,
    /// The running version, if known.
    pub installed: Option<Version>,
    /// Images and where they go.
    pub images: Vec<PlannedImage>,
}

fn open_bundle(path: &Path) -> Result<BundleReader<BufReader<File>>> {
    let f = File::open(path).map_err(|e| Error::io("open bundle", path, e))?;
    BundleReader::open(BufReader::with_capacity(1 << 20, f), &path.display().to_string())
}

fn verify(ctx: &Context<'_>, request: &InstallRequest) -> Result<VerifiedBundle<BufReader<File>>> {
    if request.verify == update_core::config::Verify::IntegrityOnly {
        ctx.events.warn(&format!(
            "verify is false: installing {} without checking signatures (hashes are still checked)",
            request.bundle.display()
        ));
    }
    open_bundle(&request.bundle)?.verify(ctx.keyring, ctx.config.signature_threshold, request.verify)
}

fn info(m: &Manifest) -> BundleInfo {
    BundleInfo {
        version: m.version.clone(),
        compatible: m.compatible.clone(),
        size: m.images.iter().map(|i| i.size).sum::<u64>() + m.components.iter().map(|c| c.component.size).sum::<u64>(),
        images: m
            .images
            .iter()
            .map(|i| i.slot_group.to_string())
            .chain(
                m.components
                    .iter()
                    .map(|c| format!("{} ({} {})", c.component.name, c.component.kind, c.component.version)),
            )
            .collect(),
    }
}

/// Reads and verifies a bundle's manifest (signatures included) without installing it.
///
/// # Errors
/// Verification errors.
pub fn inspect(ctx: &Context<'_>, request: &InstallRequest) -> Result<BundleInfo> {
    Ok(info(verify(ctx, request)?.manifest()))
}

/// Checks everything: booted slot, compatibility, anti-rollback, slot groups, sizes, mounts.
///
/// # Errors
/// [`Error::Refused`] naming the first problem.
pub fn plan(driver: &NativeDriver, manifest: &Manifest) -> Result<InstallPlan> {
    let cfg = driver.config();
    let booted = driver.booted_slot()?;
    let target = booted.other();
    if manifest.compatible != cfg.compatible {
        return Err(Error::Refused(format!(
            "the bundle is for '{}', this device is '{}'",
            manifest.compatible, cfg.compatible
        )));
    }
    let records = records::load(&driver.paths)?;
    let installed = driver.release_version(&records, Some(booted));
    if let Some(v) = &installed {
        if manifest.version <= *v {
            return Err(Error::Refused(format!(
                "version {} is not newer than the running {v} (anti-rollback)",
                manifest.version
            )));
        }
        if let Some(min) = &manifest.min_version
            && v < min
        {
            return Err(Error::Refused(format!(
                "the bundle needs at least version {min} installed; this device runs {v}"
            )));
        }
    }
    let mut images = Vec::new();
    for (index, image) in manifest.images.iter().enumerate() {
        let group = image.slot_group.to_string();
        let device = driver.slot_path(&group, target).ok_or_else(|| {
            Error::Refused(format!("the bundle has an image for slot group '{group}', which this device does not have"))
        })?;
        let dev = FileDevice::open_read(&device)?;
        if image.size > dev.size() {
            return Err(Error::Refused(format!(
                "image '{group}' is {} bytes, larger than slot {target} ({}: {} bytes)",
                image.size,
                device.display(),
                dev.size()
            )));
        }
        if let Some(reason) = crate::mounts::busy_reason(&device) {
            return Err(Error::Refused(format!("target slot {target} is in use: {reason}")));
        }
        for data in &cfg.data {
            let data = driver.paths.resolve(data);
            if same_file(&data, &device) {
                return Err(Error::Refused(format!(
                    "slot {target} of '{group}' is the data partition {}: refusing to write user data",
                    data.display()
                )));
            }
        }
        images.push(PlannedImage { group, index, size: image.size, sha256: image.sha256.clone(), device });
    }
    let state_dir = driver.paths.state_dir();
    if let Ok(st) = rustix::fs::statvfs(&state_dir) {
        let free = st.f_bavail.saturating_mul(st.f_frsize);
        if free < MIN_STATE_SPACE {
            return Err(Error::Refused(format!(
                "no space left for the update's records in {}: {free} bytes free, {MIN_STATE_SPACE} needed",
                state_dir.display()
            )));
        }
    }
    for g in cfg.slots.keys() {
        // A bundle of components only leaves the OS slots alone.
        if !images.iter().any(|i| i.group == g.as_str()) && !manifest.images.is_empty() {
            return Err(Error::Refused(format!(
                "the bundle has no image for slot group '{g}': A and B switch together, so a bundle must update every slot group"
            )));
        }
    }
    Ok(InstallPlan { target, booted, version: manifest.version.clone(), installed, images })
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Hashes the first `len` bytes of a device. The device is read on this thread while a
/// second thread hashes the previous block, so reading and hashing overlap.
///
/// # Errors
/// Read errors.
pub fn hash_device(dev: &mut dyn BlockDevice, len: u64, progress: &dyn Progress) -> Result<String> {
    const BLOCK: usize = 1 << 20;
    let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<(Vec<u8>, usize)>(2);
    let (empty_tx, empty_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(3);
    for _ in 0..3 {
        empty_tx.send(vec![0u8; BLOCK]).expect("capacity");
    }
    std::thread::scope(|scope| {
        let hasher = scope.spawn(move || {
            let mut h = Sha256::new();
            for (buf, n) in full_rx {
                h.update(&buf[..n]);
                let _ = empty_tx.send(buf);
            }
            hex::encode(h.finalize())
        });
        let mut off = 0;
        let read = (|| -> Result<()> {
            while off < len {
                let n = usize::try_from((len - off).min(BLOCK as u64)).expect("at most 1 MiB");
                let mut buf = empty_rx.recv().map_err(|_| Error::Other("hasher thread stopped".into()))?;
                dev.read_at(off, &mut buf[..n])?;
                full_tx.send((buf, n)).map_err(|_| Error::Other("hasher thread stopped".into()))?;
                progress.advance(n as u64);
                off += n as u64;
            }
            Ok(())
        })();
        drop(full_tx);
        let digest = hasher.join().map_err(|_| Error::Other("hasher thread panicked".into()))?;
        read.map(|()| digest)
    })
}

/// Writes a verified bundle into the target devices and switches the boot environment:
/// steps 1–5 of the module documentation. `targets[i]` receives image `plan.images[i]`.
/// `before_switch` runs after the read-back check and before the switch (records, hooks); an
/// error there leaves the target unbootable and the running slot primary.
///
/// # Errors
/// Any failure; the running slot stays primary and committed.
pub fn execute<R: Read + Send>(
    bundle: &mut VerifiedBundle<R>,
    plan: &InstallPlan,
    targets: &mut [Box<dyn BlockDevice>],
    env: &mut dyn BootEnv,
    retry_limit: u32,
    progress: &dyn Progress,
    before_switch: impl FnOnce() -> Result<()>,
) -> Result<()> {
    // 1. The target can never boot while it is being written.
    let state = env.load()?;
    let preparing = state.begin_install(plan.target)?;
    if preparing != state {
        env.store(&preparing)?;
    }
    // 2. Stream: chunks arrive verified; write them.
    let total: u64 = plan.images.iter().map(|i| i.size).sum();
    progress.start("installing", total);
    let slot_of: Vec<Option<usize>> =
        (0..bundle.manifest().images.len()).map(|idx| plan.images.iter().position(|p| p.index == idx)).collect();
    bundle.stream(|idx, offset, bytes| {
        let t =
            slot_of.get(idx).copied().flatten().ok_or_else(|| Error::Other(format!("image {idx} is not planned")))?;
        targets[t].write_at(offset, bytes)?;
        progress.advance(bytes.len() as u64);
        Ok(())
    })?;
    progress.finish();
    // 3. Durable, then read back and compare with the signed hashes.
    for t in targets.iter_mut() {
        t.flush()?;
    }
    progress.start("verifying", total);
    for (image, t) in plan.images.iter().zip(targets.iter_mut()) {
        let got = hash_device(t.as_mut(), image.size, progress)?;
        if got != image.sha256 {
            return Err(Error::verification(
                t.describe(),
                format!(
                    "read-back SHA-256 of slot {} ('{}') is {got}, the manifest says {}",
                    plan.target, image.group, image.sha256
                ),
            ));
        }
    }
    progress.finish();
    // 4. Records and hooks.
    before_switch()?;
    // 5. The one atomic switch.
    let state = env.load()?;
    env.store(&state.switch_to(plan.target, retry_limit)?)?;
    Ok(())
}

/// The driver's install: verify, plan (OS slots and components), execute, audit the switch.
///
/// # Errors
/// Verification, policy and I/O errors; the running slot and boot state stay as they were
/// (except that the target slot is marked unbootable once writing starts), and every component
/// is rolled back.
pub fn install(driver: &NativeDriver, ctx: &Context<'_>, request: &InstallRequest) -> Result<InstallOutcome> {
    // An interrupted transaction is finished or undone before a new one starts.
    driver.recover(ctx)?;
    if let Some(j) = crate::transaction::Journal::load(&driver.paths)? {
        return Err(Error::Refused(format!(
            "transaction {} ({}) waits for its OS slot to boot and be marked good (or `update cancel`)",
            j.id, j.version
        )));
    }
    // Pass 1: signatures, structure, policy and every payload byte, before anything is written.
    let checked = verify(ctx, request)?;
    let plan = plan(driver, checked.manifest())?;
    let manifest = checked.manifest().clone();
    let components: Vec<_> = manifest.components.iter().map(|c| c.component.clone()).collect();
    let mut parts = crate::transaction::plan(ctx, driver.handlers, &components)?;
    if manifest.images.is_empty() && parts.is_empty() {
        return Err(Error::Refused(format!(
            "nothing to install: every component of {} is already active",
            manifest.version
        )));
    }
    checked.check_payload()?;
    // Pass 2: the same file again, verified again chunk by chunk while it is written.
    let reopen = || -> Result<VerifiedBundle<BufReader<File>>> {
        let b = verify(ctx, request)?;
        if *b.manifest() != manifest {
            return Err(Error::verification(
                request.bundle.display().to_string(),
                "the bundle changed while it was being installed",
            ));
        }
        Ok(b)
    };
    let mut components_bundle = reopen()?;
    let mut payload = |name: &update_core::component::ComponentName,
                       install: &mut dyn FnMut(&mut dyn Read) -> Result<()>|
     -> Result<()> {
        let index = manifest
            .components
            .iter()
            .position(|c| c.component.name == *name)
            .ok_or_else(|| Error::Other(format!("component '{name}' is not in the bundle")))?;
        let mut reader = components_bundle.component_reader(index)?;
        install(&mut reader)?;
        // What the handler left unread is still checked: the whole payload's hash is compared
        // at its end, so a handler never commits a payload that was not entirely verified.
        std::io::copy(&mut reader, &mut std::io::sink())
            .map_err(|e| Error::verification(request.bundle.display().to_string(), e.to_string()))?;
        Ok(())
    };
    if manifest.images.is_empty() {
        ctx.events.info(&format!("installing {} (components {}): no reboot needed", manifest.version, parts.summary()));
        crate::transaction::run(ctx, &mut parts, &manifest.version, None, &mut payload)?;
        return Ok(InstallOutcome {
            version: manifest.version.clone(),
            slot: InstallOutcome::COMPONENTS_ONLY.into(),
            reboot_required: false,
        });
    }
    let mut bundle = reopen()?;
    let mut env = driver.open_env()?;
    let before = env.load()?;
    let mut targets = plan
        .images
        .iter()
        .map(|i| crate::direct::SlotDevice::open(&i.device).map(|d| Box::new(d) as Box<dyn BlockDevice>))
        .collect::<Result<Vec<_>>>()?;
    ctx.events.info(&format!(
        "installing {} into slot {} ({}){}",
        plan.version,
        plan.target,
        plan.images.iter().map(|i| format!("{}={}", i.group, i.device.display())).collect::<Vec<_>>().join(", "),
        if parts.is_empty() { String::new() } else { format!(" with components {}", parts.summary()) }
    ));
    let hooks = bundle.hooks().to_vec();
    let paths = driver.paths.clone();
    let record_and_hooks = || -> Result<()> {
        let mut records = records::load(&paths)?;
        let images = plan.images.iter().map(|i| (i.group.clone(), i.sha256.clone()));
        records.slots.insert(plan.target.as_str().into(), records::installed(&plan.version, images));
        records::store(&paths, &records)?;
        for hook in &hooks {
            run_hook(&paths, ctx.events, hook, &plan)?;
        }
        // The components go into their inactive places and switch (journalled as waiting for
        // the boot) right before the one boot switch.
        if !parts.is_empty() {
            crate::transaction::run(ctx, &mut parts, &plan.version, Some(plan.target), &mut payload)?;
        }
        Ok(())
    };
    let result = execute(
        &mut bundle,
        &plan,
        &mut targets,
        env.as_mut(),
        ctx.config.boot_retry_limit,
        ctx.progress,
        record_and_hooks,
    );
    if let Err(e) = result {
        // The switch did not happen: components that were activated go back.
        crate::transaction::abandon(ctx, driver.handlers)?;
        return Err(e);
    }
    let after = env.load()?;
    ctx.events.audit(
        ctx.events
            .record(AuditAction::Switch, Outcome::Ok)
            .driver("native")
            .subject(plan.target.as_str())
            .message(format!("boot environment: {before} -> {after}")),
    );
    Ok(InstallOutcome { version: plan.version, slot: plan.target.as_str().into(), reboot_required: true })
}

fn run_hook(
    paths: &update_core::Paths,
    events: &dyn update_core::driver::Events,
    hook: &update_bundle::Hook,
    plan: &InstallPlan,
) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = paths.state_dir().join("hooks");
    update_core::atomic::ensure_dir(&dir)?;
    let file = dir.join(hook.kind.as_str());
    std::fs::write(&file, &hook.content).map_err(|e| Error::io("write hook", &file, e))?;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| Error::io("chmod hook", &file, e))?;
    let mut cmd = update_core::process::Command::new(&file)
        .env("UPDATE_TARGET_SLOT", plan.target.as_str())
        .env("UPDATE_VERSION", plan.version.to_string())
        .env("UPDATE_ROOT", paths.root());
    for i in &plan.images {
        cmd = cmd.env(format!("UPDATE_SLOT_{}", i.group.to_uppercase().replace(['-', '.'], "_")), &i.device);
    }
    let out = cmd.run_lines(&mut |line| events.info(&format!("{} hook: {line}", hook.kind.as_str())));
    let _ = std::fs::remove_file(&file);
    let out = out?;
    if out.success() {
        Ok(())
    } else {
        Err(Error::Refused(format!(
            "the bundle's {} hook failed with {}; slot {} is left unbootable: {}",
            hook.kind.as_str(),
            out.status,
            plan.target,
            out.detail()
        )))
    }
}
