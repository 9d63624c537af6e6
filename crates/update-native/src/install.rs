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
use std::io::{BufReader, Read, Seek};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use update_boot::{BootEnv, Slot};
use update_bundle::{BundleReader, Found, Manifest, StreamStats, VerifiedBundle};
use update_core::audit::{AuditAction, Outcome};
use update_core::blockdev::{BlockDevice, FileDevice};
use update_core::driver::{BundleInfo, Context, InstallOutcome, InstallRequest, Progress, ReadSeek};
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
    /// What was checked before anything is written (space, memory), for the log.
    pub checks: Vec<String>,
}

/// Memory the install needs at most: the chunk buffers in flight (three decompressed chunks
/// and the largest compressed one), the bundle reader's buffer, and a margin for the
/// decompressor and hashing.
#[must_use]
pub fn memory_needed(manifest: &Manifest) -> u64 {
    let largest_z = manifest.parts().flat_map(|p| p.chunks.iter()).map(|c| c.zsize).max().unwrap_or(0);
    memory_for(manifest.chunk_size, largest_z)
}

fn memory_for(chunk_size: u64, largest_compressed: u64) -> u64 {
    3 * chunk_size + largest_compressed + (1 << 20) + (4 << 20)
}

/// `MemAvailable` of this machine, from /proc/meminfo (the kernel's, also under `--root`:
/// reading it changes nothing).
fn memory_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Where a bundle is read from: a local file, or the network (a streamed install).
type BundleSource = BufReader<Box<dyn ReadSeek>>;

/// Opens the request's bundle: the local file, or a fresh stream whose head must match the
/// hash the signed repository metadata gave for it.
fn open_bundle(request: &InstallRequest) -> Result<BundleReader<BundleSource>> {
    let path = &request.bundle;
    let name = path.display().to_string();
    let Some(stream) = &request.stream else {
        let f = File::open(path).map_err(|e| Error::io("open bundle", path, e))?;
        return BundleReader::open(BufReader::with_capacity(1 << 20, Box::new(f) as Box<dyn ReadSeek>), &name);
    };
    // A small buffer: the reader asks for small windows first, so a head read stays small.
    let reader = BundleReader::open(BufReader::with_capacity(64 * 1024, (stream.open)()?), &name)?;
    if let Some(want) = &stream.head_sha256 {
        let got = reader.head_sha256();
        if !got.eq_ignore_ascii_case(want) {
            return Err(Error::verification(
                &name,
                format!("the bundle's head has SHA-256 {got}, the signed repository metadata says {want}"),
            ));
        }
    }
    Ok(reader)
}

fn verify(ctx: &Context<'_>, request: &InstallRequest) -> Result<VerifiedBundle<BundleSource>> {
    if request.verify == update_core::config::Verify::IntegrityOnly {
        ctx.events.warn(&format!(
            "verify is false: installing {} without checking signatures (hashes are still checked)",
            request.bundle.display()
        ));
    }
    open_bundle(request)?.verify(ctx.keyring, ctx.config.signature_threshold, request.verify)
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
    let mut checks = Vec::new();
    let state_dir = driver.paths.state_dir();
    if let Ok(st) = rustix::fs::statvfs(&state_dir) {
        let free = st.f_bavail.saturating_mul(st.f_frsize);
        if free < MIN_STATE_SPACE {
            return Err(Error::Refused(format!(
                "no space left for the update's records in {}: {free} bytes free, {MIN_STATE_SPACE} needed",
                state_dir.display()
            )));
        }
        checks.push(format!("{} free in {} ({} needed)", mib(free), state_dir.display(), mib(MIN_STATE_SPACE)));
    }
    let needed = memory_needed(manifest);
    if let Some(available) = memory_available() {
        if available < needed {
            return Err(Error::Refused(format!(
                "not enough memory: the install needs {} (chunks of {}), {} available",
                mib(needed),
                mib(manifest.chunk_size),
                mib(available)
            )));
        }
        checks.push(format!("memory {} needed, {} available", mib(needed), mib(available)));
    }
    checks.push("nothing staged: the images go straight into their slots".to_owned());
    for g in cfg.slots.keys() {
        // A bundle of components only leaves the OS slots alone.
        if !images.iter().any(|i| i.group == g.as_str()) && !manifest.images.is_empty() {
            return Err(Error::Refused(format!(
                "the bundle has no image for slot group '{g}': A and B switch together, so a bundle must update every slot group"
            )));
        }
    }
    Ok(InstallPlan { target, booted, version: manifest.version.clone(), installed, images, checks })
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

/// Bytes written between two checkpoints of a resumable install (flush, then the cursor): an
/// eighth of the images, between 1 and 32 MiB. A cut loses at most that much work; each
/// checkpoint costs one flush of the targets and one small atomic write.
#[must_use]
pub fn checkpoint_bytes(total: u64) -> u64 {
    (total / 8).clamp(1 << 20, 32 << 20)
}

/// Where an earlier, interrupted install of the same bundle into the same slot left off, and
/// how to record progress, so a later attempt reuses what is already written (checked chunk by
/// chunk against the signed hashes) instead of fetching it again.
pub struct Resume<'a> {
    /// Per planned image (plan order): bytes from its start that an earlier attempt wrote and
    /// flushed.
    pub durable: Vec<u64>,
    /// Read handles to the targets (plan order), used on the reader thread.
    pub readers: Vec<Box<dyn BlockDevice + Send>>,
    /// Records the durable bytes per planned image; called after the targets were flushed.
    pub checkpoint: &'a mut dyn FnMut(&[u64]) -> Result<()>,
}

impl std::fmt::Debug for Resume<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resume").field("durable", &self.durable).finish_non_exhaustive()
    }
}

/// How [`execute`] runs.
pub struct Run<'a> {
    /// Boot tries of the new slot (`boot-retry-limit`).
    pub retry_limit: u32,
    /// Progress display.
    pub progress: &'a dyn Progress,
    /// Resuming and checkpointing (none: every chunk is read from the bundle and written).
    pub resume: Option<Resume<'a>>,
    /// A delta install: its pieces are fetched first, then every chunk is assembled on the
    /// device ([`crate::delta`]).
    pub delta: Option<&'a mut crate::delta::DeltaInstall>,
}

/// Writes a verified bundle into the target devices and switches the boot environment:
/// steps 1–5 of the module documentation. `targets[i]` receives image `plan.images[i]`.
/// `before_switch` runs after the read-back check and before the switch (records, hooks); an
/// error there leaves the target unbootable and the running slot primary.
///
/// # Errors
/// Any failure; the running slot stays primary and committed.
pub fn execute<R: Read + Seek + Send>(
    bundle: &mut VerifiedBundle<R>,
    plan: &InstallPlan,
    targets: &mut [Box<dyn BlockDevice>],
    env: &mut dyn BootEnv,
    run: Run<'_>,
    before_switch: impl FnOnce() -> Result<()>,
) -> Result<StreamStats> {
    let Run { retry_limit, progress, resume, mut delta } = run;
    // 1. The target can never boot while it is being written.
    let state = env.load()?;
    let preparing = state.begin_install(plan.target)?;
    if preparing != state {
        env.store(&preparing)?;
    }
    // 2. Stream: chunks arrive verified (from the bundle, or already in place from an
    //    interrupted attempt); write them, checkpointing as they become durable.
    let total: u64 = plan.images.iter().map(|i| i.size).sum();
    if let Some(d) = delta.as_deref_mut() {
        d.fetch(targets, progress)?;
    }
    progress.start("installing", total);
    let slot_of: Vec<Option<usize>> =
        (0..bundle.manifest().images.len()).map(|idx| plan.images.iter().position(|p| p.index == idx)).collect();
    let planned = |idx: usize| {
        slot_of.get(idx).copied().flatten().ok_or_else(|| Error::Other(format!("image {idx} is not planned")))
    };
    let (mut durable, mut readers, mut checkpoint) = match resume {
        Some(r) => (r.durable, r.readers, Some(r.checkpoint)),
        None => (vec![0; plan.images.len()], Vec::new(), None),
    };
    durable.resize(plan.images.len(), 0);
    let earlier = durable.clone();
    // What is written (not yet flushed) per planned image, and bytes since the last checkpoint.
    let mut written = earlier.clone();
    let mut since = 0u64;
    let every = checkpoint_bytes(total);
    let mut local = |idx: usize, offset: u64, chunk: &update_bundle::Chunk, buf: &mut [u8]| -> Result<Found> {
        let t = planned(idx)?;
        match readers.get_mut(t) {
            Some(r) if offset + chunk.size <= earlier[t] => {
                r.read_at(offset, buf)?;
                Ok(Found::InPlace)
            }
            _ => match delta.as_deref_mut() {
                Some(d) => {
                    d.assemble(t, offset, chunk, buf)?;
                    Ok(Found::Copied)
                }
                None => Ok(Found::No),
            },
        }
    };
    let streamed = bundle.stream_reusing(&mut local, |idx, offset, bytes, in_place| {
        let t = planned(idx)?;
        if !in_place {
            targets[t].write_at(offset, bytes)?;
            since += bytes.len() as u64;
        }
        written[t] = written[t].max(offset + bytes.len() as u64);
        progress.advance(bytes.len() as u64);
        if let Some(cp) = checkpoint.as_mut()
            && since >= every
        {
            for d in targets.iter_mut() {
                d.flush()?;
            }
            cp(&written)?;
            since = 0;
        }
        Ok(())
    });
    let stats = match streamed {
        Ok(stats) => stats,
        Err(e) => {
            // A lost network (or a bad chunk) ends this attempt: what is written is made
            // durable and recorded, so the next attempt continues from there.
            if let Some(cp) = checkpoint.as_mut()
                && targets.iter_mut().try_for_each(|d| d.flush()).is_ok()
            {
                let _ = cp(&written);
            }
            return Err(e);
        }
    };
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
    Ok(stats)
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
    if request.stream.is_none() {
        // A local file is checked whole before a byte is written. A streamed bundle is not
        // read twice: each chunk is checked against the signed manifest before it is written,
        // and a bad one stops the install with the target slot unbootable and everything
        // else as it was.
        checked.check_payload()?;
    } else {
        drop(checked);
    }
    // Pass 2: the same file again, verified again chunk by chunk while it is written.
    let reopen = || -> Result<VerifiedBundle<BundleSource>> {
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
    ctx.events.info(&format!("checked before writing: {}", plan.checks.join("; ")));
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
    // The cursor names this bundle and slot before a byte is written (an older cursor, for
    // other content, is replaced); an earlier attempt of the same bundle into the same slot
    // leaves what it wrote to be checked and kept.
    let cursor = InstallCursor::path(&driver.paths);
    let head = bundle.head_sha256();
    let earlier = InstallCursor::load(&cursor).filter(|c| c.head == head && c.target == plan.target.as_str());
    let durable: Vec<u64> = plan
        .images
        .iter()
        .map(|i| earlier.as_ref().and_then(|c| c.durable.get(&i.group)).copied().unwrap_or(0).min(i.size))
        .collect();
    let record = |durable: &[u64]| -> Result<()> {
        let c = InstallCursor {
            head: head.clone(),
            target: plan.target.as_str().to_owned(),
            durable: update_core::sort::collect_map(
                plan.images.iter().map(|i| i.group.clone()).zip(durable.iter().copied()),
            ),
        };
        c.store(&cursor)
    };
    record(&durable)?;
    if durable.iter().any(|d| *d > 0) {
        ctx.events.info(&format!(
            "continuing an interrupted install: {} of slot {} written earlier are checked and kept where they match the signed hashes",
            mib(durable.iter().sum()),
            plan.target
        ));
    }
    let readers = if durable.iter().any(|d| *d > 0) {
        plan.images
            .iter()
            .map(|i| FileDevice::open_read(&i.device).map(|d| Box::new(d) as Box<dyn BlockDevice + Send>))
            .collect::<Result<Vec<_>>>()?
    } else {
        Vec::new()
    };
    // A streamed format 3 bundle: fetch only the blocks this device lacks.
    let mut delta = match (&request.stream, bundle.delta_offsets()) {
        (Some(stream), Some(delta_offsets)) if stream.ranges.is_some() => {
            let old: Vec<PathBuf> =
                plan.images.iter().filter_map(|i| driver.slot_path(&i.group, plan.booted)).collect();
            let setup = crate::delta::Setup {
                name: &stream.url,
                manifest: &manifest,
                payload_start: bundle.payload_start(),
                delta_offsets,
                images: &plan.images,
                old: &old,
                durable: &durable,
            };
            let ranges = stream.ranges.clone().expect("checked");
            // A source error (a server that ignores Range, a lost index request) costs only the
            // delta: the full stream is verified chunk by chunk all the same. A verification
            // error (an index that does not match its signed hash) stops the install.
            let prepared = if old.len() == plan.images.len() {
                match crate::delta::DeltaInstall::prepare(&setup, ranges, ctx.progress) {
                    Err(e) if e.kind() == update_core::ErrorKind::Source => {
                        ctx.events.warn(&format!("delta: {e}; streaming in full"));
                        None
                    }
                    other => other?,
                }
            } else {
                None
            };
            match &prepared {
                Some(d) => ctx.events.info(&format!(
                    "delta: {} reused from slot {}, {} already in slot {}, {} zero; fetching {} ({} bytes) in {} requests after a {}-byte index, instead of {}",
                    mib(d.stats.reused),
                    plan.booted,
                    mib(d.stats.in_place),
                    plan.target,
                    mib(d.stats.zero),
                    mib(d.stats.fetch),
                    d.stats.fetch,
                    d.stats.requests,
                    d.stats.index,
                    mib(d.stats.full)
                )),
                None => ctx.events.info("delta: it would not fetch less than the full stream; streaming in full"),
            }
            prepared
        }
        _ => None,
    };
    let mut checkpoint = |d: &[u64]| record(d);
    let run = Run {
        retry_limit: ctx.config.boot_retry_limit,
        progress: ctx.progress,
        resume: Some(Resume { durable, readers, checkpoint: &mut checkpoint }),
        delta: delta.as_mut(),
    };
    let stats = match execute(&mut bundle, &plan, &mut targets, env.as_mut(), run, record_and_hooks) {
        Ok(stats) => stats,
        Err(e) => {
            // The switch did not happen: components that were activated go back.
            crate::transaction::abandon(ctx, driver.handlers)?;
            return Err(e);
        }
    };
    let _ = std::fs::remove_file(&cursor);
    if stats.in_place > 0 {
        ctx.events.info(&format!(
            "resumed an interrupted install: {} of slot {} already written were checked and kept, {} read from the bundle",
            mib(stats.in_place),
            plan.target,
            mib(stats.fetched)
        ));
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

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
}

/// How far an install got: `<state>/install-cursor.json`, written before the first byte goes
/// to the target and after each checkpoint (the targets flushed first), removed after the
/// switch. Only a hint: every chunk it lets an attempt keep is checked against its signed hash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct InstallCursor {
    /// The bundle's head hash (it fixes every chunk).
    pub head: String,
    /// The slot being written.
    pub target: String,
    /// Bytes from the start of each slot group's image that are written and flushed.
    pub durable: std::collections::BTreeMap<String, u64>,
}

impl InstallCursor {
    /// Its file.
    #[must_use]
    pub fn path(paths: &update_core::Paths) -> PathBuf {
        paths.state_dir().join("install-cursor.json")
    }

    /// The cursor, if there is a readable one (an unreadable one is no cursor: the install
    /// starts from the beginning).
    #[must_use]
    pub fn load(path: &Path) -> Option<Self> {
        let file = update_core::atomic::open_read(path, "read install cursor").ok()??;
        let bytes = update_core::atomic::read_bounded(file, 64 * 1024, &path.display().to_string()).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Writes it atomically.
    ///
    /// # Errors
    /// I/O errors naming the file.
    pub fn store(&self, path: &Path) -> Result<()> {
        let bytes = serde_json::to_vec(self).map_err(|e| Error::Other(e.to_string()))?;
        update_core::atomic::write_atomic(path, &bytes, 0o644)
    }
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

#[cfg(test)]
mod tests {
    #[test]
    fn checkpoints_and_memory_scale_with_the_bundle() {
        assert_eq!(super::checkpoint_bytes(0), 1 << 20);
        assert_eq!(super::checkpoint_bytes(80 << 20), 10 << 20);
        assert_eq!(super::checkpoint_bytes(1 << 40), 32 << 20);
        assert_eq!(super::memory_for(1 << 20, 1 << 19), (3 << 20) + (1 << 19) + (5 << 20));
        assert!(super::memory_for(16 << 20, 16 << 20) < 80 << 20, "the largest chunks fit a small device");
    }
}
