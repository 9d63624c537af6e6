//! One simulated device per tool.

#[cfg(feature = "rauc")]
pub mod rauc;
