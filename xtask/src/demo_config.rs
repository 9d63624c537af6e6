//! Small edits of the demo device's config that have no `update config` command.

use std::path::Path;

use crate::sys::Result;

/// Appends a `[[health-check]]` the daemon runs after booting a new slot.
pub fn add_health_check(root: &Path, name: &str, command_toml_array: &str) -> Result {
    let file = root.join("etc/update/update.toml");
    let mut text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    text.push_str(&format!("\n[[health-check]]\nname = \"{name}\"\ncommand = {command_toml_array}\n"));
    std::fs::write(&file, text).map_err(|e| format!("{}: {e}", file.display()))
}
