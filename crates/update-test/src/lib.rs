//! Test tools for libupdate: simulated devices ([`device::SimDevice`]) built on real disk
//! images, loop devices and ext4 filesystems ([`disk`]), a throwaway PKI for HTTPS with mutual
//! TLS ([`pki`], also used by the QEMU system test in `update-systest`), and the `update-sim`
//! binary that the demo and shell tests drive (`create`, `reboot`, `health`, `destroy`).

pub mod apt;
pub mod device;
pub mod disk;
pub mod fwupd;
pub mod handler_suite;
pub mod mcu;
pub mod pki;
