//! `update mark-good`, `update cancel`, `update mark-bad`, `update rollback`.

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

/// `update mark-bad`.
///
/// # Errors
/// As [`Updater::mark_bad`].
pub fn mark_bad(updater: &Updater) -> Result<()> {
    let c = updater.mark_bad()?;
    crate::outln!("{}", c.message);
    Ok(())
}
