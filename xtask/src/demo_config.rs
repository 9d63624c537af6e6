//! Small edits of the demo device's config that have no `update config` command.

use std::path::Path;

use crate::sys::Result;

/// Sets `[native] reboot-command` so `update --now` reboots the simulated device.
pub fn set_reboot_command(root: &Path, toml_array: &str) -> Result {
    let file = root.join("etc/update/update.toml");
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    let text = text.replacen("[native]\n", &format!("[native]\nreboot-command = {toml_array}\n"), 1);
    std::fs::write(&file, text).map_err(|e| format!("{}: {e}", file.display()))
}
