//! One simulated device per tool.

#[cfg(feature = "rauc")]
pub mod rauc;
#[cfg(feature = "swupdate")]
pub mod swupdate;
