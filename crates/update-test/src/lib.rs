//! Test tools for libupdate: simulated devices ([`device::SimDevice`]) built on real disk
//! images, loop devices and ext4 filesystems ([`disk`]), and the `update-sim` binary that the
//! demo and shell tests drive (`create`, `reboot`, `health`, `destroy`).

pub mod device;
pub mod disk;
