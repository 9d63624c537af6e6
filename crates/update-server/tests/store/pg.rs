//! A throwaway PostgreSQL cluster per test: `initdb` into a temporary directory under /tmp,
//! the server on a Unix socket in that directory only (no TCP port), stopped and removed on
//! drop. As root (CI), initdb and the server run as `nobody` through `runuser`: PostgreSQL
//! refuses to run as root.
//!
//! Without PostgreSQL (Debian: `apt-get install postgresql`) the tests fail, naming the
//! package; `UPDATE_SERVER_SKIP_PG=1` skips them instead (local machines only).

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Command;

const SKIP_VAR: &str = "UPDATE_SERVER_SKIP_PG";

/// The newest `/usr/lib/postgresql/N/bin`, or `UPDATE_SERVER_PG_BIN`.
fn bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("UPDATE_SERVER_PG_BIN") {
        return Some(dir.into());
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    run_as: Option<String>,
}

impl Cluster {
    /// A running cluster with a database `fleet`; `None` when PostgreSQL is missing and the
    /// skip variable is set (panics otherwise).
    pub fn start() -> Option<Self> {
        let Some(bin) = bin_dir() else {
            if std::env::var_os(SKIP_VAR).is_some_and(|v| v == "1") {
                eprintln!("PostgreSQL is not installed: skipped ({SKIP_VAR}=1)");
                return None;
            }
            panic!(
                "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): apt-get install postgresql, \
                 or set {SKIP_VAR}=1 to skip these tests on this machine"
            );
        };
        // Short: the socket path must stay under 108 bytes.
        let dir = tempfile::Builder::new().prefix("pg").tempdir_in("/tmp").unwrap();
        let root = std::fs::metadata("/proc/self").unwrap().uid() == 0;
        let run_as = root.then(|| "nobody".to_owned());
        if root {
            let uid: u32 = String::from_utf8(Command::new("id").args(["-u", "nobody"]).output().unwrap().stdout)
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            std::os::unix::fs::chown(dir.path(), Some(uid), None).unwrap();
        }
        let cluster = Self { dir, bin, run_as };
        let data = cluster.data();
        cluster.run(
            "initdb",
            &["-D", &data, "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8", "-N", "--auth-local=trust"],
        );
        let options = format!(
            "-c listen_addresses='' -k {} -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            cluster.dir.path().display()
        );
        let log = format!("{}/server.log", cluster.dir.path().display());
        cluster.run("pg_ctl", &["-D", &data, "-l", &log, "-w", "-t", "30", "-o", &options, "start"]);
        let psql_bin = cluster.bin.join("psql");
        let host = cluster.dir.path().display().to_string();
        let out = Command::new(psql_bin)
            .args(["-X", "-q", "-h", &host, "-U", "postgres", "-d", "postgres", "-c", "CREATE DATABASE fleet"])
            .output()
            .unwrap();
        assert!(out.status.success(), "CREATE DATABASE: {}", String::from_utf8_lossy(&out.stderr));
        Some(cluster)
    }

    fn data(&self) -> String {
        format!("{}/data", self.dir.path().display())
    }

    fn run(&self, program: &str, args: &[&str]) {
        let program = self.bin.join(program);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&program);
                c
            }
            None => Command::new(&program),
        };
        // `nobody` cannot enter the test's working directory (often under /root).
        let out = cmd.args(args).current_dir(self.dir.path()).output().unwrap();
        assert!(
            out.status.success(),
            "{} {args:?}: {}{}",
            program.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The database over the socket: `postgresql:///fleet?host=DIR&user=postgres`.
    pub fn url(&self) -> String {
        format!("postgresql:///fleet?host={}&user=postgres", self.dir.path().display())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let program = self.bin.join("pg_ctl");
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&program);
                c
            }
            None => Command::new(&program),
        };
        let _ = cmd.args(["-D", &data, "-m", "immediate", "-w", "stop"]).current_dir(self.dir.path()).output();
    }
}
