//! The boot state and its pure transitions.
//!
//! The shape is Bottlerocket's "signpost": the state is loaded once
//! ([`crate::BootEnv::load`]), changed by the plain functions below — which never write — and
//! persisted by one [`crate::BootEnv::store`]. Because a transition is a value-to-value function,
//! every rule here is property-tested over random sequences of installs, boots, failed boots,
//! rollbacks and power cuts (`tests/state_properties.rs`).
//!
//! # The state
//! Two slots, [`Slot::A`] and [`Slot::B`], a boot order (primary first) and per slot:
//! - `ok`: the slot holds a committed version (it booted and passed its health checks);
//! - `tries`: boot attempts left for a slot that is not ok (0 to
//!   [`MAX_BOOT_RETRY_LIMIT`]); an ok slot boots without counting.
//!
//! The storage sequence number is not part of the state: it belongs to the storage protocol
//! (the GRUB copies' cyclic `SEQ`, the U-Boot copies' flag byte, the file copies' counter) and
//! the stores compute it from what is on the disk, never from a caller's value.
//!
//! # The boot algorithm ([`BootState::boot`])
//! Walk the order, primary first:
//! 1. an ok slot boots as it is (nothing is written);
//! 2. a slot that is not ok with `tries > 0` boots with `tries - 1` (that new state is written
//!    *before* the kernel starts, so a crash of the new slot costs one try);
//! 3. a slot with 0 tries is skipped.
//!
//! If no slot qualifies (no ok slot and no tries left anywhere, which the transitions never
//! produce) the bootloader boots the primary slot anyway as a last resort, writing nothing:
//! a device that boots something can still be repaired over the network, one that halts cannot.

use std::fmt;
use std::str::FromStr;

use update_core::config::MAX_BOOT_RETRY_LIMIT;
use update_core::{Error, Result};

/// One of the two slots of every slot group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Slot {
    /// Slot A (the factory slot).
    A,
    /// Slot B.
    B,
}

impl Slot {
    /// Both slots, A first.
    pub const ALL: [Slot; 2] = [Slot::A, Slot::B];

    /// The other slot.
    #[must_use]
    pub fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }

    /// `"A"` or `"B"`: the spelling in the stored variables and on the kernel command line
    /// (`update.slot=A`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Slot::A => "A",
            Slot::B => "B",
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Slot {
    type Err = Error;
    /// Parses `A`/`B` (either case).
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "A" | "a" => Ok(Slot::A),
            "B" | "b" => Ok(Slot::B),
            _ => Err(Error::InvalidValue { what: "slot".into(), value: s.into(), reason: "expected A or B".into() }),
        }
    }
}

/// What the boot state says about one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SlotState {
    /// The slot holds a committed version (marked good after a successful boot).
    pub ok: bool,
    /// Boot attempts left while the slot is not ok (0 to [`MAX_BOOT_RETRY_LIMIT`]).
    pub tries: u8,
}

impl SlotState {
    /// A committed slot.
    pub const GOOD: SlotState = SlotState { ok: true, tries: 0 };
    /// A slot that must not be booted (being written, failed, or never installed).
    pub const UNBOOTABLE: SlotState = SlotState { ok: false, tries: 0 };

    /// A slot on trial with `tries` attempts left.
    #[must_use]
    pub fn trial(tries: u8) -> SlotState {
        SlotState { ok: false, tries }
    }
}

/// Why the bootloader picked a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BootReason {
    /// The slot is committed (ok); nothing was written.
    Committed,
    /// The slot is on trial; one try was used and `tries_left` remain.
    Trial {
        /// Tries left after this boot.
        tries_left: u8,
    },
    /// No slot qualified; the primary slot boots anyway and nothing is written.
    LastResort,
}

/// The result of [`BootState::boot`]: which slot boots and the state the bootloader writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BootChoice {
    /// The slot that boots.
    pub slot: Slot,
    /// Why.
    pub reason: BootReason,
    /// The state after the boot (equal to the state before unless a try was used).
    pub state: BootState,
}

impl BootChoice {
    /// Whether the bootloader must write the new state (a try was used).
    #[must_use]
    pub fn writes(&self) -> bool {
        matches!(self.reason, BootReason::Trial { .. })
    }
}

/// A fallback seen after boot: the primary slot ran out of tries and the other one booted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fallback {
    /// The slot that failed (still primary, not ok, 0 tries).
    pub failed: Slot,
    /// The slot that booted instead.
    pub booted: Slot,
}

impl fmt::Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "booted {} after {} failed", self.booted, self.failed)
    }
}

/// The boot state of an A/B device: order, and per slot `ok` and `tries`.
///
/// Constructed valid ([`BootState::new`] checks the try counts); every transition returns a
/// new valid state or refuses with [`Error::Refused`], and none of them writes anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BootState {
    primary: Slot,
    a: SlotState,
    b: SlotState,
}

impl Default for BootState {
    /// [`BootState::initial`].
    fn default() -> Self {
        Self::initial()
    }
}

fn refused(msg: String) -> Error {
    Error::Refused(msg)
}

impl BootState {
    /// A freshly provisioned device: A committed and primary, B not ok with 0 tries.
    #[must_use]
    pub fn initial() -> Self {
        Self { primary: Slot::A, a: SlotState::GOOD, b: SlotState::UNBOOTABLE }
    }

    /// A state from its parts.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] when a try count is above [`MAX_BOOT_RETRY_LIMIT`].
    pub fn new(primary: Slot, a: SlotState, b: SlotState) -> Result<Self> {
        for (slot, s) in [(Slot::A, a), (Slot::B, b)] {
            if u32::from(s.tries) > MAX_BOOT_RETRY_LIMIT {
                return Err(Error::InvalidValue {
                    what: format!("tries of slot {slot}"),
                    value: s.tries.to_string(),
                    reason: format!("at most {MAX_BOOT_RETRY_LIMIT}"),
                });
            }
        }
        Ok(Self { primary, a, b })
    }

    /// The primary slot (first in the boot order).
    #[must_use]
    pub fn primary(&self) -> Slot {
        self.primary
    }

    /// The boot order, primary first.
    #[must_use]
    pub fn order(&self) -> [Slot; 2] {
        [self.primary, self.primary.other()]
    }

    /// The state of one slot.
    #[must_use]
    pub fn slot(&self, slot: Slot) -> SlotState {
        match slot {
            Slot::A => self.a,
            Slot::B => self.b,
        }
    }

    fn slot_mut(&mut self, slot: Slot) -> &mut SlotState {
        match slot {
            Slot::A => &mut self.a,
            Slot::B => &mut self.b,
        }
    }

    /// The same state with `slot` replaced (crate-internal: bypasses the transitions' checks).
    pub(crate) fn with_slot(&self, slot: Slot, state: SlotState) -> Self {
        let mut next = *self;
        *next.slot_mut(slot) = state;
        next
    }

    /// Whether `slot` holds a committed version.
    #[must_use]
    pub fn is_committed(&self, slot: Slot) -> bool {
        self.slot(slot).ok
    }

    /// The committed slots, in boot order.
    pub fn committed(&self) -> impl Iterator<Item = Slot> + '_ {
        self.order().into_iter().filter(|s| self.is_committed(*s))
    }

    /// Starts an install into `target`: the target becomes not ok with 0 tries (so no bootloader
    /// picks it while it is being written) and the other slot becomes primary. The other slot
    /// is not changed. The caller passes the inactive slot, never the running one.
    ///
    /// # Errors
    /// [`Error::Refused`] when `target` is the only committed slot: writing it would leave the
    /// device with nothing known-good to boot.
    pub fn begin_install(&self, target: Slot) -> Result<Self> {
        let other = target.other();
        if self.is_committed(target) && !self.is_committed(other) {
            return Err(refused(format!(
                "slot {target} holds the only committed version (slot {other} is not marked good); \
                 boot slot {other} and mark it good, or install into slot {other}"
            )));
        }
        let mut next = *self;
        *next.slot_mut(target) = SlotState::UNBOOTABLE;
        next.primary = other;
        Ok(next)
    }

    /// The one atomic switch: `target` becomes primary, not ok, with `retry_limit` tries. If
    /// every try fails the bootloader falls back to the other slot, which must be committed.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] for a limit outside 1..=[`MAX_BOOT_RETRY_LIMIT`];
    /// [`Error::Refused`] when the other slot is not committed (nothing to fall back to).
    pub fn switch_to(&self, target: Slot, retry_limit: u32) -> Result<Self> {
        let limit = update_core::config::check_boot_retry_limit(retry_limit)?;
        let other = target.other();
        if !self.is_committed(other) {
            return Err(refused(format!(
                "cannot switch to slot {target}: slot {other} is not committed, so a failing \
                 slot {target} would have nothing to fall back to"
            )));
        }
        let mut next = *self;
        *next.slot_mut(target) = SlotState::trial(u8::try_from(limit).expect("limit is at most 9"));
        next.primary = target;
        Ok(next)
    }

    /// The booted slot passed its health checks: it becomes committed and primary.
    #[must_use]
    pub fn mark_good(&self, booted: Slot) -> Self {
        let mut next = *self;
        *next.slot_mut(booted) = SlotState::GOOD;
        next.primary = booted;
        next
    }

    /// `slot` must not be booted again: not ok, 0 tries; if it was primary the other slot
    /// becomes primary.
    ///
    /// # Errors
    /// [`Error::Refused`] when `slot` is the only committed slot.
    pub fn mark_bad(&self, slot: Slot) -> Result<Self> {
        let other = slot.other();
        if self.is_committed(slot) && !self.is_committed(other) {
            return Err(refused(format!(
                "slot {slot} holds the only committed version; marking it bad would leave nothing to boot"
            )));
        }
        let mut next = *self;
        *next.slot_mut(slot) = SlotState::UNBOOTABLE;
        if next.primary == slot {
            next.primary = other;
        }
        Ok(next)
    }

    /// Rolls back from the `booted` slot: the other slot becomes primary. A booted slot that
    /// is not committed also loses its remaining tries; a committed one stays committed (so
    /// it can be rolled forward to later).
    ///
    /// # Errors
    /// [`Error::Refused`] when the other slot is not committed.
    pub fn rollback(&self, booted: Slot) -> Result<Self> {
        let other = booted.other();
        if !self.is_committed(other) {
            return Err(refused(format!(
                "cannot roll back from slot {booted}: slot {other} does not hold a committed version"
            )));
        }
        let mut next = *self;
        next.primary = other;
        if !next.slot(booted).ok {
            *next.slot_mut(booted) = SlotState::UNBOOTABLE;
        }
        Ok(next)
    }

    /// Exactly what the bootloader does (the shipped GRUB fragment and U-Boot script, and
    /// [`crate::simulate_boot`]): see the [module documentation](self).
    #[must_use]
    pub fn boot(&self) -> BootChoice {
        for slot in self.order() {
            let s = self.slot(slot);
            if s.ok {
                return BootChoice { slot, reason: BootReason::Committed, state: *self };
            }
            if s.tries > 0 {
                let mut state = *self;
                state.slot_mut(slot).tries = s.tries - 1;
                return BootChoice { slot, reason: BootReason::Trial { tries_left: s.tries - 1 }, state };
            }
        }
        BootChoice { slot: self.primary, reason: BootReason::LastResort, state: *self }
    }
}

/// Whether `booted` came up because the primary slot ran out of tries — so `update status`
/// can say "booted A after B failed". `state` is the state loaded after boot.
#[must_use]
pub fn fallback_happened(state: &BootState, booted: Slot) -> Option<Fallback> {
    let primary = state.primary();
    let p = state.slot(primary);
    (booted != primary && !p.ok && p.tries == 0).then_some(Fallback { failed: primary, booted })
}

impl fmt::Display for BootState {
    /// `order=A B A=ok B=tries:2`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [first, second] = self.order();
        write!(f, "order={first} {second}")?;
        for slot in Slot::ALL {
            let s = self.slot(slot);
            if s.ok {
                write!(f, " {slot}=ok")?;
            } else {
                write!(f, " {slot}=tries:{}", s.tries)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_slot_gets_its_tries_then_the_old_slot_boots() {
        let s = BootState::initial().begin_install(Slot::B).unwrap();
        assert_eq!(s.boot().slot, Slot::A);
        let mut s = s.switch_to(Slot::B, 3).unwrap();
        for left in [2, 1, 0] {
            let c = s.boot();
            assert_eq!((c.slot, c.reason), (Slot::B, BootReason::Trial { tries_left: left }));
            s = c.state;
        }
        let c = s.boot();
        assert_eq!((c.slot, c.reason), (Slot::A, BootReason::Committed));
        assert_eq!(fallback_happened(&c.state, Slot::A), Some(Fallback { failed: Slot::B, booted: Slot::A }));
        assert_eq!(fallback_happened(&c.state, Slot::A).unwrap().to_string(), "booted A after B failed");
    }

    #[test]
    fn mark_good_commits_and_a_good_boot_writes_nothing() {
        let s = BootState::initial().begin_install(Slot::B).unwrap().switch_to(Slot::B, 2).unwrap();
        let c = s.boot();
        let s = c.state.mark_good(c.slot);
        assert_eq!(s.primary(), Slot::B);
        assert!(s.is_committed(Slot::A) && s.is_committed(Slot::B));
        assert!(!s.boot().writes());
        assert_eq!(fallback_happened(&s, Slot::B), None);
    }

    #[test]
    fn refusals_keep_a_committed_slot() {
        let s = BootState::initial();
        assert!(s.begin_install(Slot::A).is_err());
        assert!(s.switch_to(Slot::A, 3).is_err());
        assert!(s.mark_bad(Slot::A).is_err());
        assert!(s.rollback(Slot::A).is_err());
        assert!(s.begin_install(Slot::B).unwrap().switch_to(Slot::B, 0).is_err());
        assert!(s.begin_install(Slot::B).unwrap().switch_to(Slot::B, 10).is_err());
        assert!(BootState::new(Slot::A, SlotState::GOOD, SlotState::trial(10)).is_err());
    }

    #[test]
    fn rollback_abandons_a_trial() {
        let s = BootState::initial().begin_install(Slot::B).unwrap().switch_to(Slot::B, 3).unwrap();
        let r = s.rollback(Slot::B).unwrap();
        assert_eq!(r.primary(), Slot::A);
        assert_eq!(r.slot(Slot::B), SlotState::UNBOOTABLE);
        assert_eq!(r.boot().slot, Slot::A);
    }

    #[test]
    fn last_resort_boots_the_primary_without_writing() {
        let s = BootState::new(Slot::B, SlotState::UNBOOTABLE, SlotState::UNBOOTABLE).unwrap();
        let c = s.boot();
        assert_eq!((c.slot, c.reason, c.state), (Slot::B, BootReason::LastResort, s));
        assert!(!c.writes());
    }

    #[test]
    fn display_and_parse() {
        assert_eq!(BootState::initial().to_string(), "order=A B A=ok B=tries:0");
        assert_eq!("b".parse::<Slot>().unwrap(), Slot::B);
        assert!("C".parse::<Slot>().is_err());
    }
}
