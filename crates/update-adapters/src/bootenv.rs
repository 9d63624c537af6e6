//! The bootloader environment a tool shares with the bootloader: GRUB's `grubenv` block (read
//! with update-boot's parser, written with `grub-editenv`) or U-Boot's environment (`fw_printenv`,
//! read with update-boot's parser, and `fw_setenv`).
//!
//! Writes go through the bootloader's own tool, all variables in one call, so each switch is one
//! write of the environment. Note the limit the design brief names: GRUB's environment is one
//! 1 KiB block rewritten in place, so a power cut during that write can lose it; U-Boot's
//! redundant environment (two copies) does not have that problem.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use update_boot::grubenv::GrubEnvBlock;
use update_boot::ubootenv::UbootEnv;
use update_core::{Error, Result};

use crate::tool::{Failure, Tool};

/// Where the environment lives and how it is written.
#[derive(Debug, Clone)]
pub enum ToolBootEnv {
    /// A GRUB environment block file, written with `grub-editenv`.
    Grub {
        /// The `grubenv` file.
        file: PathBuf,
        /// `grub-editenv`.
        editenv: Tool,
    },
    /// The U-Boot environment, through `fw_printenv` and `fw_setenv` (with their `/etc/fw_env.config`).
    Uboot {
        /// `fw_printenv`.
        printenv: Tool,
        /// `fw_setenv`.
        setenv: Tool,
    },
}

impl ToolBootEnv {
    /// Reads every variable.
    ///
    /// # Errors
    /// I/O errors naming the file; the tool's error.
    pub fn read(&self) -> Result<BTreeMap<String, String>> {
        match self {
            ToolBootEnv::Grub { file, .. } => {
                let bytes = std::fs::read(file).map_err(|e| Error::io("read", file, e))?;
                let block = GrubEnvBlock::parse(&bytes)
                    .map_err(|_| Error::Other(format!("{} is not a GRUB environment block", file.display())))?;
                Ok(update_core::sort::collect_map(block.iter().map(|(k, v)| (k.to_owned(), v.to_owned()))))
            }
            ToolBootEnv::Uboot { printenv, .. } => {
                let out =
                    printenv.run_ok("read the U-Boot environment", std::iter::empty::<&str>(), &|_| Failure::Other)?;
                Ok(update_core::sort::collect_map(
                    UbootEnv::parse_printenv(&out.stdout).iter().map(|(k, v)| (k.to_owned(), v.to_owned())),
                ))
            }
        }
    }

    /// Sets variables, all in one write.
    ///
    /// # Errors
    /// The tool's error.
    pub fn write(&self, vars: &[(&str, String)]) -> Result<()> {
        match self {
            ToolBootEnv::Grub { file, editenv } => {
                let mut args = vec![file.display().to_string(), "set".into()];
                args.extend(vars.iter().map(|(k, v)| format!("{k}={v}")));
                editenv.run_ok("write the GRUB environment", &args, &|_| Failure::Other)?;
            }
            ToolBootEnv::Uboot { setenv, .. } => {
                // `fw_setenv -s FILE` applies a script in one write. libubootenv's fw_setenv (Debian's
                // libubootenv-tool) reads `name=value` lines; it ignores U-Boot's `name value` form.
                static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let script = std::env::temp_dir().join(format!("update-fw_setenv-{}-{n}.txt", std::process::id()));
                let text: String = vars.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
                std::fs::write(&script, text).map_err(|e| Error::io("write", &script, e))?;
                let r = setenv
                    .run_ok("write the U-Boot environment", ["-s".as_ref(), script.as_os_str()], &|_| Failure::Other);
                let _ = std::fs::remove_file(&script);
                r?;
            }
        }
        Ok(())
    }
}

/// Reads the booted slot from the kernel command line: the value of `key=` (`update.slot=B`).
///
/// # Errors
/// [`Error::Io`] when the command line cannot be read.
pub fn cmdline_value(cmdline: &Path, key: &str) -> Result<Option<String>> {
    let text = std::fs::read_to_string(cmdline).map_err(|e| Error::io("read", cmdline, e))?;
    let prefix = format!("{key}=");
    Ok(text.split_whitespace().find_map(|w| w.strip_prefix(prefix.as_str())).map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grubenv_is_read_with_update_boots_parser() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("grubenv");
        let mut block = b"# GRUB Environment Block\nupdate_slot=B\nbootcount=1\npath=C:\\\\x\n".to_vec();
        block.resize(1024, b'#');
        std::fs::write(&file, &block).unwrap();
        let editenv = crate::tool::ToolSpec::new("true").tool("test").unwrap();
        let env = ToolBootEnv::Grub { file: file.clone(), editenv };
        let vars = env.read().unwrap();
        assert_eq!(vars.get("update_slot").map(String::as_str), Some("B"));
        assert_eq!(vars.get("path").map(String::as_str), Some("C:\\x"));
        assert_eq!(vars.len(), 3);
        std::fs::write(&file, b"garbage").unwrap();
        let e = env.read().unwrap_err();
        assert!(e.to_string().contains("is not a GRUB environment block"), "{e}");
    }
}
