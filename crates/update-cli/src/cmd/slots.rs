//! `update mark-good`, `update cancel`, `update rollback`.

use libupdate::Updater;
use update_core::Result;

/// `update mark-good`.
///
/// # Errors
/// As [`Updater::mark_good`].
pub fn mark_good(updater: &Updater) -> Result<()> {
    let c = updater.mark_good()?;
    crate::outln!("{}", c.message);
    Ok(())
}

/// `update rollback`.
///
/// # Errors
/// As [`Updater::rollback`].
pub fn rollback(updater: &Updater) -> Result<()> {
    let c = updater.rollback()?;
    crate::outln!("{}", c.message);
    Ok(())
}

/// `update cancel`.
///
/// # Errors
/// As [`Updater::cancel`].
pub fn cancel(updater: &Updater) -> Result<()> {
    let c = updater.cancel()?;
    crate::outln!("{}", c.message);
    Ok(())
}
