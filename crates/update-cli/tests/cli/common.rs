//! A throwaway device root and a way to run `update` against it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Dev {
    pub dir: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Dev {
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap() }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.root().join("etc/update/update.toml")
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_update"));
        c.arg("--root").arg(self.root()).env_remove("UPDATE_ROOT");
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let out: Output = self.cmd().args(args).output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs and asserts success.
    pub fn ok(&self, args: &[&str]) -> Run {
        let r = self.run(args);
        assert_eq!(r.code, 0, "update {args:?} failed: {}{}", r.stdout, r.stderr);
        r
    }

    pub fn show_json(&self) -> serde_json::Value {
        let r = self.ok(&["config", "show", "--json"]);
        serde_json::from_str::<serde_json::Value>(&r.stdout).unwrap()["config"].clone()
    }

    /// Every file under the root with its content.
    pub fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
            let Ok(rd) = std::fs::read_dir(dir) else { return };
            for e in rd.flatten() {
                let p = e.path();
                let ft = e.file_type().unwrap();
                if ft.is_dir() {
                    walk(&p, out);
                } else if ft.is_file() {
                    out.insert(p.clone(), std::fs::read(&p).unwrap());
                } else {
                    out.insert(p, Vec::new());
                }
            }
        }
        let mut m = BTreeMap::new();
        walk(self.root(), &mut m);
        m
    }
}
