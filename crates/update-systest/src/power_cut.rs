//! Real power cuts: QEMU is killed (SIGKILL) at random moments of an update — while the bundle
//! downloads, while it is verified and written, while the boot environment is written (the
//! begin-install store and the switch), and while the agent marks a new slot good — and then
//! the device boots again. Every such boot must reach the guest's init with GRUB's choice, and
//! from the host both partitions of the booted slot must hold exactly the images of one known
//! version, and the files written on the data partition before the update must be
//! byte-identical (read with debugfs from the image; the guest also checks them).
//!
//! The moments are chosen per boot: the host follows the console (the agent's log lines and
//! progress bars, the bundle's post-install hook right before the switch, the init script's
//! markers), picks a class that still needs cuts, and kills QEMU a random delay after the
//! marker that opens that phase, within the phase's measured duration. The class reported is
//! the phase the last marker before the kill belongs to, not the one planned.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::Scenario;
use crate::device::{BootInfo, Device, Health};
use crate::error::{Result, check};
use crate::util::Rng;
use crate::vm::{Next, Vm};

/// A phase of `update --now` or of the agent's post-boot step, as the console shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// From the command until the download starts: TUF metadata over HTTPS.
    Check,
    /// `downloading [...]`, or for a streamed install (the bundle read from the server as it is
    /// written, which the repository's signed head hash allows) `notice: installing X while
    /// streaming it from …`: the bundle's head is read and verified, the plan checked.
    Download,
    /// `notice: installing X from …`: the whole bundle is verified before anything is written.
    Verify,
    /// `info: installing X into slot …`: the begin-install boot-environment store (the target
    /// slot becomes unbootable), until the first chunk is written.
    EnvBegin,
    /// `looking for reusable blocks [...]` (a delta bundle): the running slot is read and
    /// hashed, nothing is written (the begin-install store follows it).
    DeltaScan,
    /// `fetching changed blocks [...]`: the blocks the device lacks are fetched by HTTP Range,
    /// checked against the signed index and written into the target.
    DeltaFetch,
    /// `installing [...]`: chunks written into the slot.
    Write,
    /// `verifying [...]`: the slot read back and hashed.
    ReadBack,
    /// `SYSTEST-HOOK` (post-install hook): the records are written; the switch store follows.
    EnvSwitch,
    /// `notice: installed X into slot …`: switched; the reboot follows.
    Switched,
    /// The guest resets.
    Reboot,
    /// `SYSTEST-DAEMON-START`: the agent's post-boot step starts.
    AgentStart,
    /// `notice: daemon started`: on a trial boot, the health checks and the mark-good store.
    MarkGood,
    /// The agent said the slot is marked good.
    MarkedGood,
}

impl Phase {
    /// The phase a console line of `update --now` opens.
    pub fn of_update_line(text: &str) -> Option<Phase> {
        // Log lines first: one written while a progress bar is drawn shares its console line,
        // and it happened after the bar.
        if text.contains("SYSTEST-REBOOT") {
            Some(Phase::Reboot)
        } else if text.contains("notice: installed ") {
            Some(Phase::Switched)
        } else if text.contains("SYSTEST-HOOK") {
            Some(Phase::EnvSwitch)
        } else if text.contains("info: installing ") && text.contains(" into slot ") {
            Some(Phase::EnvBegin)
        } else if text.contains("notice: installing ") && text.contains(" while streaming it from ") {
            Some(Phase::Download)
        } else if text.contains("notice: installing ") && text.contains(" from ") {
            Some(Phase::Verify)
        } else if text.starts_with("fetching changed blocks [") {
            Some(Phase::DeltaFetch)
        } else if text.starts_with("looking for reusable blocks [") {
            Some(Phase::DeltaScan)
        } else if text.starts_with("verifying [") {
            Some(Phase::ReadBack)
        } else if text.starts_with("installing [") {
            Some(Phase::Write)
        } else if text.starts_with("downloading [") {
            Some(Phase::Download)
        } else {
            None
        }
    }

    /// The phase a console line of the agent's post-boot step opens.
    pub fn of_daemon_line(text: &str) -> Option<Phase> {
        if text.contains("SYSTEST-DAEMON-START") {
            Some(Phase::AgentStart)
        } else if text.contains("notice: daemon started") {
            Some(Phase::MarkGood)
        } else if text.contains("marked good") {
            Some(Phase::MarkedGood)
        } else {
            None
        }
    }

    /// The class a cut in this phase counts for.
    pub fn class(self) -> Class {
        match self {
            Phase::Check | Phase::Download => Class::Download,
            Phase::Verify | Phase::DeltaScan | Phase::DeltaFetch | Phase::Write | Phase::ReadBack => Class::Install,
            Phase::EnvBegin | Phase::EnvSwitch => Class::EnvWrite,
            Phase::AgentStart | Phase::MarkGood => Class::MarkGood,
            Phase::Switched | Phase::Reboot | Phase::MarkedGood => Class::Other,
        }
    }
}

/// What a power cut interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// Metadata and bundle download.
    Download,
    /// Verification, writing and reading back the slot.
    Install,
    /// A boot-environment store (begin-install or the switch).
    EnvWrite,
    /// The agent's health checks and mark-good on a trial boot.
    MarkGood,
    /// After the switch or after mark-good (the reboot, the daemon's exit).
    Other,
}

impl Class {
    /// The four classes the suite must cover.
    pub const REQUIRED: [Class; 4] = [Class::Download, Class::Install, Class::EnvWrite, Class::MarkGood];

    /// Its name in the summary.
    pub fn name(self) -> &'static str {
        match self {
            Class::Download => "download",
            Class::Install => "install",
            Class::EnvWrite => "environment write",
            Class::MarkGood => "mark-good",
            Class::Other => "after switch / mark-good",
        }
    }

    fn trigger(self, rng: &mut Rng) -> Phase {
        match self {
            Class::Download => Phase::Download,
            // A streamed install has no verification pass before writing: its install cuts
            // land while chunks are fetched, checked and written.
            Class::Install => Phase::Write,
            Class::EnvWrite if rng.below(1) == 0 => Phase::EnvBegin,
            Class::EnvWrite => Phase::EnvSwitch,
            Class::MarkGood => Phase::MarkGood,
            Class::Other => Phase::Switched,
        }
    }
}

/// When each phase was first seen in one run.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    /// When the command was sent.
    pub started: Option<Instant>,
    seen: BTreeMap<Phase, Instant>,
    /// The install continued one a cut interrupted (the engine's `continuing an interrupted
    /// install` line: chunks already in the slot are checked and kept).
    pub resumed: bool,
}

impl Timeline {
    /// Records the first time a phase is seen.
    pub fn mark(&mut self, phase: Phase, at: Instant) {
        self.seen.entry(phase).or_insert(at);
    }

    /// Milliseconds from the first `a` to the first `b`, when both were seen.
    pub fn between(&self, a: Phase, b: Phase) -> Option<u64> {
        let (ta, tb) = (self.seen.get(&a)?, self.seen.get(&b)?);
        u64::try_from(tb.checked_duration_since(*ta)?.as_millis()).ok()
    }
}

/// Measured lengths of the phases a trigger opens (ms): a cut lands a random delay up to this
/// after its trigger.
#[derive(Debug, Clone)]
pub struct Windows(BTreeMap<Phase, u64>);

impl Default for Windows {
    fn default() -> Self {
        Windows(BTreeMap::from([
            (Phase::Download, 4000),
            (Phase::Verify, 8000),
            (Phase::Write, 3000),
            (Phase::EnvBegin, 300),
            (Phase::EnvSwitch, 300),
            (Phase::MarkGood, 400),
            (Phase::Switched, 300),
        ]))
    }
}

impl Windows {
    /// Takes the durations a complete run showed.
    pub fn learn(&mut self, t: &Timeline) {
        let pairs = [
            (Phase::Download, Phase::Download, Phase::EnvBegin),
            (Phase::Verify, Phase::Verify, Phase::EnvSwitch),
            (Phase::Write, Phase::Write, Phase::ReadBack),
            (Phase::DeltaFetch, Phase::DeltaFetch, Phase::Write),
            (Phase::EnvBegin, Phase::EnvBegin, Phase::Write),
            (Phase::EnvSwitch, Phase::EnvSwitch, Phase::Switched),
            (Phase::MarkGood, Phase::MarkGood, Phase::MarkedGood),
            (Phase::Switched, Phase::Switched, Phase::Reboot),
        ];
        for (key, a, b) in pairs {
            if let Some(ms) = t.between(a, b) {
                self.0.insert(key, ms.max(1));
            }
        }
    }

    fn get(&self, p: Phase) -> u64 {
        self.0.get(&p).copied().unwrap_or(1000)
    }
}

/// One power cut.
#[derive(Debug, Clone)]
pub struct Cut {
    /// The device.
    pub device: String,
    /// The boot it happened in.
    pub boot: u32,
    /// The class planned.
    pub planned: Class,
    /// The phase the last marker before the kill opened.
    pub phase: Phase,
    /// Milliseconds after the trigger marker.
    pub after_trigger_ms: u64,
    /// Milliseconds after the command (or the agent) started.
    pub after_start_ms: u64,
    /// The version running, and the one being installed, when the power went.
    pub from: String,
    /// The version being installed (or marked good).
    pub to: String,
    /// What the next boot booted.
    pub outcome: Option<String>,
}

/// State shared by the devices cutting power in parallel.
#[derive(Debug, Default)]
pub struct Shared {
    /// Every cut.
    pub cuts: Vec<Cut>,
    /// Phase lengths.
    pub windows: Windows,
    /// Whether any complete run has been measured.
    pub measured: bool,
    /// Cuts wanted in total.
    pub want_total: usize,
    /// The classes that must get cuts.
    pub required: Vec<Class>,
    /// Cuts wanted in each required class.
    pub want_per_class: usize,
    /// Boots after a cut that did not reach a good, verified slot.
    pub unbootable: usize,
    /// Installs that continued one a cut interrupted.
    pub resumed: usize,
    /// Boots in this phase of the suite.
    pub boots: u32,
    /// Set when one device failed: the others stop at their next boot.
    pub abort: bool,
}

impl Shared {
    fn count(&self, class: Class) -> usize {
        self.cuts.iter().filter(|c| c.phase.class() == class).count()
    }

    fn deficit(&self, class: Class) -> usize {
        if self.required.contains(&class) { self.want_per_class.saturating_sub(self.count(class)) } else { 0 }
    }

    /// Whether enough cuts have been made.
    pub fn done(&self) -> bool {
        self.cuts.len() >= self.want_total && self.required.iter().all(|c| self.deficit(*c) == 0)
    }
}

/// How following the console ended.
pub(crate) enum End {
    /// The power was cut.
    Cut(Landed),
    /// The end marker (the guest's prompt) came.
    Prompt,
    /// QEMU exited by itself (the reboot after an install, under -no-reboot).
    Exited,
}

/// Where a cut landed.
pub(crate) struct Landed {
    /// The phase of the last marker before the kill.
    pub phase: Phase,
    /// Milliseconds after the trigger line.
    pub after_trigger_ms: u64,
    /// Milliseconds after the command was sent.
    pub after_start_ms: u64,
}

/// What [`follow`] does.
pub(crate) enum Plan {
    /// Kill QEMU `delay_ms` after the first line of phase `trigger` whose progress bar is at
    /// least `min_bar` of 30 full (0: the phase's first line).
    Cut { class: Class, trigger: Phase, delay_ms: u64, min_bar: usize },
    /// Let the command run to its end.
    Complete,
}

/// How full a progress bar line is, of 30 (`fetching changed blocks [=====     ] 2/6 MiB`);
/// 0 for a line without a bar.
pub(crate) fn bar_fill(text: &str) -> usize {
    text.split_once('[')
        .and_then(|(_, rest)| rest.split_once(']'))
        .map_or(0, |(bar, _)| bar.chars().filter(|c| *c == '=').count())
}

fn lock(shared: &Arc<Mutex<Shared>>) -> std::sync::MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Follows the console from `start` and kills QEMU as planned. `phase_of` maps console lines
/// to phases; the run ends with the cut, when QEMU exits by itself (the reboot after the
/// install), or at `end_marker` (the guest's prompt after a step that completed).
pub(crate) fn follow(
    vm: &mut Vm,
    plan: &Plan,
    start: Instant,
    phase_of: fn(&str) -> Option<Phase>,
    end_marker: &str,
    timeout: Duration,
) -> Result<(End, Timeline)> {
    let mut timeline = Timeline { started: Some(start), seen: BTreeMap::new(), resumed: false };
    let mut current = Phase::Check;
    let mut kill_at: Option<(Instant, Instant)> = None; // (trigger time, kill time)
    let give_up = start + timeout;
    let mut plan_trigger = match plan {
        Plan::Cut { trigger, .. } => Some(*trigger),
        Plan::Complete => None,
    };
    loop {
        let until = kill_at.map_or(give_up, |(_, k)| k.min(give_up));
        match vm.next_line(until)? {
            Next::Line(l) => {
                if let Some(phase) = phase_of(&l.text) {
                    current = phase;
                    timeline.mark(phase, l.at);
                    // A bundle already downloaded completely is not downloaded again: a cut
                    // planned for the download then lands in the verification.
                    if plan_trigger == Some(Phase::Download) && phase == Phase::Verify {
                        plan_trigger = Some(Phase::Verify);
                    }
                    if kill_at.is_none()
                        && plan_trigger == Some(phase)
                        && let Plan::Cut { delay_ms, min_bar, .. } = plan
                        && bar_fill(&l.text) >= *min_bar
                    {
                        kill_at = Some((l.at, l.at + Duration::from_millis(*delay_ms)));
                    }
                }
                if l.text.contains("continuing an interrupted install") {
                    timeline.resumed = true;
                }
                if l.text.contains(end_marker) {
                    return Ok((End::Prompt, timeline));
                }
                if l.text.contains("SYSTEST-RC ") && !l.text.contains("SYSTEST-RC 0") {
                    return Err(vm.error(format!("the update command failed ({}):\n{}", l.text, vm.tail(15))));
                }
            }
            Next::Exited => return Ok((End::Exited, timeline)),
            Next::Timeout => {
                if let Some((trigger, k)) = kill_at
                    && Instant::now() >= k
                {
                    vm.kill();
                    let after_trigger = u64::try_from(k.duration_since(trigger).as_millis()).unwrap_or(u64::MAX);
                    let after_start = u64::try_from(k.duration_since(start).as_millis()).unwrap_or(u64::MAX);
                    let landed =
                        Landed { phase: current, after_trigger_ms: after_trigger, after_start_ms: after_start };
                    return Ok((End::Cut(landed), timeline));
                }
                if Instant::now() >= give_up {
                    vm.kill();
                    return Err(vm.error(format!("no progress within {timeout:?}; last lines:\n{}", vm.tail(15))));
                }
            }
        }
    }
}

fn describe(info: &BootInfo, cut: &Cut) -> String {
    let which = if info.rootfs == cut.to {
        "new"
    } else if info.rootfs == cut.from {
        "old"
    } else {
        "other"
    };
    format!("{which} version {} in slot {} ({})", info.rootfs, info.slot, info.reason)
}

/// Cuts the power again and again on one device until the shared targets are met. The device
/// runs `committed` (committed) at the start; new releases are `next_major`.0.0 and up.
pub fn run(
    dev: &mut Device,
    shared: &Arc<Mutex<Shared>>,
    rng: &mut Rng,
    next_major: &mut u64,
    budget: Instant,
) -> Result {
    let mut pending: Option<usize> = None;
    let mut cut_trial: BTreeSet<String> = BTreeSet::new();
    let mut committed = dev.published.clone();
    loop {
        if lock(shared).abort {
            return Err(check(format!("{}: stopped because another part of the suite failed", dev.name)));
        }
        if Instant::now() > budget {
            return Err(check(format!("{}: the cut targets were not met within the time budget", dev.name)));
        }
        let label = if pending.is_some() { "after-cut" } else { "cycle" };
        let booted = dev.boot(label).and_then(|(vm, info)| dev.verify_boot(&info).map(|()| (vm, info)));
        lock(shared).boots += 1;
        let (mut vm, info) = match booted {
            Ok(b) => b,
            Err(e) => {
                let mut s = lock(shared);
                if let Some(k) = pending {
                    s.cuts[k].outcome = Some(format!("NOT A GOOD BOOT: {e}"));
                }
                s.unbootable += 1;
                return Err(e);
            }
        };
        if let Some(k) = pending.take() {
            let mut s = lock(shared);
            let outcome = describe(&info, &s.cuts[k]);
            eprintln!("system-test: {}: boot after the cut: {outcome}", dev.name);
            s.cuts[k].outcome = Some(outcome);
        }
        if info.reason == "committed" {
            committed = info.rootfs.clone();
        }
        if lock(shared).done() {
            let (end, _) = follow(
                &mut vm,
                &Plan::Complete,
                Instant::now(),
                Phase::of_daemon_line,
                "SYSTEST-READY",
                Duration::from_secs(120),
            )?;
            if !matches!(end, End::Prompt) {
                return Err(vm.error(format!("the last boot did not reach the prompt:\n{}", vm.tail(15))));
            }
            vm.command("systest-off", Duration::from_secs(30)).ok();
            vm.wait_exit(Duration::from_secs(30))?;
            dev.check_data_from_host(&[])?;
            return Ok(());
        }

        // The agent's post-boot step: on a trial boot, maybe cut the power during mark-good.
        let want_mark_good = lock(shared).deficit(Class::MarkGood) > 0;
        let daemon_start = Instant::now();
        let daemon_plan = if info.reason == "trial" && want_mark_good && cut_trial.insert(info.rootfs.clone()) {
            let w = lock(shared).windows.get(Phase::MarkGood);
            Plan::Cut { class: Class::MarkGood, trigger: Phase::MarkGood, delay_ms: rng.below(w), min_bar: 0 }
        } else {
            Plan::Complete
        };
        let (end, timeline) = follow(
            &mut vm,
            &daemon_plan,
            daemon_start,
            Phase::of_daemon_line,
            "SYSTEST-READY",
            Duration::from_secs(180),
        )?;
        if info.reason == "trial" && matches!(end, End::Prompt) {
            lock(shared).windows.learn(&timeline);
        }
        if let End::Cut(Landed { phase, after_trigger_ms, after_start_ms }) = end {
            let cut = Cut {
                device: dev.name.clone(),
                boot: dev.boots,
                planned: Class::MarkGood,
                phase,
                after_trigger_ms,
                after_start_ms,
                from: committed.clone(),
                to: info.rootfs.clone(),
                outcome: None,
            };
            eprintln!(
                "system-test: {}: power cut {} ms into {} (planned mark-good)",
                dev.name,
                after_trigger_ms,
                phase.class().name()
            );
            let mut s = lock(shared);
            s.cuts.push(cut);
            pending = Some(s.cuts.len() - 1);
            drop(s);
            dev.check_data_from_host(&[])?;
            continue;
        }
        if matches!(end, End::Exited) {
            return Err(vm.error(format!("the guest stopped during the agent's post-boot step:\n{}", vm.tail(20))));
        }

        let plan = {
            let s = lock(shared);
            let update_classes = [Class::Download, Class::Install, Class::EnvWrite];
            let (most, class) = update_classes
                .iter()
                .map(|c| (s.deficit(*c), *c))
                .fold((0, Class::Download), |best, x| if x.0 > best.0 { x } else { best });
            let mark_good = s.deficit(Class::MarkGood);
            let cut = |class: Class, rng: &mut Rng| {
                let trigger = class.trigger(rng);
                Plan::Cut { class, trigger, delay_ms: rng.below(s.windows.get(trigger)), min_bar: 0 }
            };
            if !s.measured || (mark_good > 0 && mark_good >= most) {
                // Measure the phases first; let an install complete so the next boot is a trial.
                Plan::Complete
            } else if most > 0 {
                cut(class, rng)
            } else {
                // Only the total is short: cut anywhere in the update.
                let any = update_classes[usize::try_from(rng.below(2)).unwrap_or(0)];
                cut(any, rng)
            }
        };
        // Publish a newer (good) release when the device runs the newest one, when the newest
        // one is broken, or when a cut during the download is planned and the device already
        // holds the whole bundle.
        let download_planned = matches!(plan, Plan::Cut { trigger: Phase::Download, .. });
        if info.rootfs == dev.published || dev.published_broken || (download_planned && dev.downloaded) {
            *next_major += 1;
            dev.publish(&format!("{next_major}.0.0"), Health::Good)?;
        }
        let from = info.rootfs.clone();
        let to = dev.published.clone();
        let start = Instant::now();
        vm.send("update --now")?;
        let (end, timeline) =
            follow(&mut vm, &plan, start, Phase::of_update_line, "SYSTEST-READY", Duration::from_secs(300))?;
        if timeline.seen.keys().any(|p| *p > Phase::Download) {
            dev.downloaded = true;
        }
        if timeline.resumed {
            lock(shared).resumed += 1;
        }
        match end {
            End::Cut(Landed { phase, after_trigger_ms, after_start_ms }) => {
                let planned = match plan {
                    Plan::Cut { class, .. } => class,
                    Plan::Complete => Class::Other,
                };
                eprintln!(
                    "system-test: {}: power cut {after_start_ms} ms into `update --now` ({}: {after_trigger_ms} ms after {phase:?})",
                    dev.name,
                    phase.class().name()
                );
                let mut s = lock(shared);
                s.cuts.push(Cut {
                    device: dev.name.clone(),
                    boot: dev.boots,
                    planned,
                    phase,
                    after_trigger_ms,
                    after_start_ms,
                    from,
                    to,
                    outcome: None,
                });
                pending = Some(s.cuts.len() - 1);
            }
            End::Prompt | End::Exited => {
                if matches!(end, End::Prompt) {
                    // The command finished without a reboot (nothing to install): reboot.
                    vm.send("systest-reboot")?;
                }
                vm.wait_exit(Duration::from_secs(60))?;
                let mut s = lock(shared);
                if timeline.seen.contains_key(&Phase::Switched) {
                    s.windows.learn(&timeline);
                    s.measured = true;
                }
            }
        }
        dev.check_data_from_host(&[])?;
    }
}

/// Cuts the power on a fresh device (1.0.0) until `class` has its share of the cuts
/// (`UPDATE_SYSTEST_CUTS` / 4, rounded up), with a good, verified boot after every cut.
/// Cuts that land in another class are counted there and reported too.
///
/// # Errors
/// A boot after a cut that is not a good, verified slot; too few cuts within the time budget;
/// anything the device did not do as it must.
pub fn scenario(s: &mut Scenario, class: Class) -> Result {
    let mut dev = s.device("device-1", "1.0.0")?;
    let want = s.options.cuts.div_ceil(4);
    let shared = Arc::new(Mutex::new(Shared {
        want_total: want,
        required: vec![class],
        want_per_class: want,
        ..Shared::default()
    }));
    let budget = Instant::now() + s.options.budget();
    let mut next_major = 1;
    let result = run(&mut dev, &shared, &mut s.rng, &mut next_major, budget);
    s.count_boots(&dev);
    let state = lock(&shared);
    let file = s.ctx.work.join("power-cuts.txt");
    let _ = std::fs::write(&file, table(&state));
    for line in summary(&state) {
        s.ok(line);
    }
    s.ok(format!("installs after a cut that kept what the cut one had written (resumed): {}", state.resumed));
    s.ok(format!(
        "boots after a cut that were not a good, verified slot: {} (every cut: {})",
        state.unbootable,
        file.display()
    ));
    let (unbootable, done, resumed) = (state.unbootable, state.done(), state.resumed);
    let install_cuts = state.count(Class::Install);
    drop(state);
    result?;
    // Cuts while chunks are written leave a cursor (checkpoints every eighth of the images):
    // the install after such a cut continues from it. Several such cuts with no install that
    // continued would mean resuming is broken (each cut misses the first checkpoint with a
    // chance of about a tenth).
    if class == Class::Install && install_cuts >= 3 && resumed == 0 {
        return Err(check(format!("{install_cuts} cuts during installs, and no install after them continued")));
    }
    if unbootable > 0 {
        return Err(check(format!("{unbootable} boot(s) after a power cut did not reach a good, verified slot")));
    }
    if !done {
        return Err(check(format!("fewer than {want} cuts in the {} class", class.name())));
    }
    Ok(())
}

/// One line per cut: where it was planned and where it landed, and what booted after it.
pub fn table(s: &Shared) -> String {
    s.cuts
        .iter()
        .map(|c| {
            format!(
                "{} boot {:>3}  planned {:<18} landed in {:<10} {:>6} ms after its marker, {:>6} ms into the step  {} -> {}: {}\n",
                c.device,
                c.boot,
                c.planned.name(),
                format!("{:?}", c.phase),
                c.after_trigger_ms,
                c.after_start_ms,
                c.from,
                c.to,
                c.outcome.as_deref().unwrap_or("-")
            )
        })
        .collect()
}

/// The summary lines: cuts and outcomes per class.
pub fn summary(s: &Shared) -> Vec<String> {
    let mut out = Vec::new();
    for class in Class::REQUIRED.iter().chain([Class::Other].iter()) {
        let cuts: Vec<&Cut> = s.cuts.iter().filter(|c| c.phase.class() == *class).collect();
        if cuts.is_empty() && !s.required.contains(class) {
            continue;
        }
        let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
        for c in &cuts {
            // "new version 4.0.0 in slot B (trial)" counts as "new version (trial)".
            let key = match &c.outcome {
                None => "no boot after it".to_owned(),
                Some(o) => match (o.split(' ').next(), o.rsplit_once('(')) {
                    (Some(which), Some((_, reason))) if o.contains(" version ") => {
                        format!("{which} version ({reason}")
                    }
                    _ => o.clone(),
                },
            };
            *outcomes.entry(key).or_default() += 1;
        }
        let text: Vec<String> = outcomes.iter().map(|(k, n)| format!("{n}× {k}")).collect();
        out.push(format!(
            "{:<26} {:>3} cuts -> {}",
            class.name(),
            cuts.len(),
            if text.is_empty() { "-".into() } else { text.join(", ") }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_lines_open_phases() {
        let cases = [
            ("downloading [==    ] 2/13 MiB 11 MiB/s", Some(Phase::Download)),
            (
                "2026-11-30T17:02:52Z update[148] notice: installing 2.0.0 from /var/cache/update/system.bundle",
                Some(Phase::Verify),
            ),
            (
                "2026-11-30T17:02:53Z update[148] info: installing 2.0.0 into slot B (boot=/dev/vda4, rootfs=/dev/vda6)",
                Some(Phase::EnvBegin),
            ),
            ("installing [=     ] 3/48 MiB 10 MiB/s", Some(Phase::Write)),
            (
                "2026-12-05T13:02:52Z update[148] notice: installing 2.0.0 while streaming it from https://10.0.2.2:8443/repo/targets/system.bundle",
                Some(Phase::Download),
            ),
            ("verifying [====   ] 7/48 MiB 50 MiB/s", Some(Phase::ReadBack)),
            ("looking for reusable blocks [==========  ] 31/48 MiB 40 MiB/s", Some(Phase::DeltaScan)),
            ("fetching changed blocks [=====       ] 2/5 MiB 7 MiB/s", Some(Phase::DeltaFetch)),
            (
                "2026-12-05T20:46:20Z update[145] info: delta: 25.7 MiB reused from slot A, 0.0 MiB already in slot B, \
                 16.2 MiB zero; fetching 5.0 MiB (5260722 bytes) in 7 requests after a 111024-byte index, instead of 27.2 MiB",
                None,
            ),
            ("SYSTEST-HOOK version=2.0.0 slot=B", Some(Phase::EnvSwitch)),
            ("2026-11-30T17:02:57Z update[148] notice: installed 2.0.0 into slot B", Some(Phase::Switched)),
            ("SYSTEST-REBOOT", Some(Phase::Reboot)),
            ("scheduled checks are off", None),
            // A log line written while a bar is drawn shares the console line; it came later.
            (
                "downloading [=====] 13/13 MiB 12 MiB/s 2026-11-30T17:02:52Z update[148] notice: installing 2.0.0 from /x",
                Some(Phase::Verify),
            ),
        ];
        for (line, want) in cases {
            assert_eq!(Phase::of_update_line(line), want, "{line}");
        }
        assert_eq!(Phase::of_daemon_line("SYSTEST-DAEMON-START"), Some(Phase::AgentStart));
        assert_eq!(
            Phase::of_daemon_line("2026-11-30T17:03:23Z update[144] notice: daemon started"),
            Some(Phase::MarkGood)
        );
        assert_eq!(
            Phase::of_daemon_line("the booted slot passed its health checks and is marked good"),
            Some(Phase::MarkedGood)
        );
    }

    #[test]
    fn progress_bars_are_measured() {
        assert_eq!(bar_fill("fetching changed blocks [================              ] 3/5 MiB 7 MiB/s"), 16);
        assert_eq!(bar_fill("fetching changed blocks [                              ] 0/5 MiB 0 MiB/s"), 0);
        assert_eq!(bar_fill("2026-12-05T20:46:18Z update[145] notice: installing 2.0.0 while streaming it"), 0);
        assert_eq!(Phase::DeltaFetch.class(), Class::Install);
        assert!(Phase::EnvBegin < Phase::DeltaScan && Phase::DeltaFetch < Phase::Write);
    }

    #[test]
    fn every_phase_has_a_class_and_required_classes_are_covered() {
        assert_eq!(Phase::Check.class(), Class::Download);
        assert_eq!(Phase::ReadBack.class(), Class::Install);
        assert_eq!(Phase::EnvSwitch.class(), Class::EnvWrite);
        assert_eq!(Phase::MarkGood.class(), Class::MarkGood);
        assert_eq!(Phase::Switched.class(), Class::Other);
        let mut s =
            Shared { want_total: 4, want_per_class: 1, required: Class::REQUIRED.to_vec(), ..Shared::default() };
        assert!(!s.done());
        for phase in [Phase::Download, Phase::Write, Phase::EnvBegin, Phase::MarkGood] {
            s.cuts.push(Cut {
                device: "d".into(),
                boot: 1,
                planned: phase.class(),
                phase,
                after_trigger_ms: 1,
                after_start_ms: 2,
                from: "1.0.0".into(),
                to: "2.0.0".into(),
                outcome: Some("old version 1.0.0 in slot A (committed)".into()),
            });
        }
        assert!(s.done());
        assert!(summary(&s)[0].contains("1× old version (committed)"), "{:?}", summary(&s));
        // A scenario for one class is done only when that class has its share.
        let mut one = Shared { want_total: 2, want_per_class: 2, required: vec![Class::Install], ..Shared::default() };
        one.cuts = s.cuts.clone();
        assert!(!one.done(), "one install cut of two");
        one.cuts.push(Cut { phase: Phase::ReadBack, ..s.cuts[1].clone() });
        assert!(one.done());
        assert_eq!(summary(&one).len(), 4, "every class with cuts is reported: {:?}", summary(&one));
    }

    #[test]
    fn windows_are_learned_from_a_timeline() {
        let t0 = Instant::now();
        let mut t = Timeline::default();
        t.mark(Phase::EnvSwitch, t0);
        t.mark(Phase::Switched, t0 + Duration::from_millis(18));
        t.mark(Phase::Switched, t0 + Duration::from_millis(500)); // the first time counts
        let mut w = Windows::default();
        w.learn(&t);
        assert_eq!(w.get(Phase::EnvSwitch), 18);
        assert_eq!(w.get(Phase::Download), 4000);
    }
}
