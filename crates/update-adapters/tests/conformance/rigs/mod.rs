//! One simulated device per tool.

pub mod apt;

#[cfg(feature = "mender")]
pub mod mender;
pub mod native;
#[cfg(feature = "ostree")]
pub mod ostree;
#[cfg(feature = "rauc")]
pub mod rauc;
#[cfg(feature = "swupdate")]
pub mod swupdate;
