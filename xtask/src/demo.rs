//! The main job (written with the native engine).

use crate::sys::Result;

/// `cargo xtask demo`.
pub fn run(_args: &[String]) -> Result {
    Err("the demo needs the native driver, which is not built yet".into())
}
