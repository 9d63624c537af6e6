//! The facade's own suite, against a driver defined only here ([`fake::FakeFactory`]): the
//! facade must select it, offer it files by the extensions it names, probe it once per
//! `Updater`, and audit every state-changing call — with no driver name known to libupdate.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod fake;

mod failed_release;
mod install;
mod not_implemented;
mod probe_once;
mod selection;
