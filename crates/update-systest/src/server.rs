//! The host side of the network: `update-server` over HTTPS with mutual TLS on 127.0.0.1 (the
//! guest reaches it as 10.0.2.2), serving one signed repository per simulated device, which
//! `update-tool repo` publishes into while the guests run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use update_test::pki::{Identity, Pki};

use crate::error::{Error, Result, io};
use crate::util::{p, quiet};

/// A running `update-server`.
pub struct Server {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The directory served under `/repo/`.
    pub repo_root: PathBuf,
    /// The operator token file.
    pub token_file: PathBuf,
    /// Its log.
    pub log: PathBuf,
}

fn free_port() -> Result<u16> {
    let bind = |e: std::io::Error| Error::Setup(format!("cannot bind a port on 127.0.0.1: {e}"));
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(bind)?;
    l.local_addr().map(|a| a.port()).map_err(bind)
}

fn server_error(detail: String) -> Error {
    Error::Tool { command: "update-server serve".into(), detail }
}

impl Server {
    /// Starts the server and waits until it accepts connections.
    pub fn start(bin: &Path, work: &Path, pki: &Pki) -> Result<Self> {
        let repo_root = work.join("repo");
        std::fs::create_dir_all(&repo_root).map_err(io("create", &repo_root))?;
        let token_file = work.join("admin-token");
        let token = format!("systest-{:016x}", crate::util::clock_seed());
        std::fs::write(&token_file, format!("{token}\n")).map_err(io("write", &token_file))?;
        let port = free_port()?;
        let log = work.join("update-server.log");
        let log_file = std::fs::File::create(&log).map_err(io("create", &log))?;
        let child = Command::new(bin)
            .arg("serve")
            .arg("--repo")
            .arg(&repo_root)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--tls-cert")
            .arg(&pki.server.cert)
            .arg("--tls-key")
            .arg(&pki.server.key)
            .arg("--client-ca")
            .arg(&pki.client_ca_cert)
            .arg("--admin-token-file")
            .arg(&token_file)
            .arg("--db")
            .arg(format!("sqlite:{}", p(&work.join("server.db"))))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().map_err(io("open", &log))?)
            .stderr(log_file)
            .spawn()
            .map_err(|e| server_error(format!("cannot start {}: {e}", bin.display())))?;
        let mut server = Server { child, port, repo_root, token_file, log };
        let start = Instant::now();
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(server_error(format!("exited with {status}; see {}", server.log.display())));
            }
            if start.elapsed() > Duration::from_secs(30) {
                return Err(server_error(format!("did not listen within 30 s; see {}", server.log.display())));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    /// Stops it: SIGTERM to our own child, then SIGKILL if it lingers.
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// `GET /api/v1/devices/{id}/events` on the operator API: the bearer token from
    /// `--admin-token-file`, over mutual TLS with an operator certificate from the device CA.
    pub fn device_events(&self, pki: &Pki, operator: &Identity, device: &str) -> Result<Vec<serde_json::Value>> {
        use ureq::tls::{ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};
        let pem = |path: &Path| std::fs::read(path).map_err(io("read", path));
        let certs = |bytes: &[u8]| -> Vec<ureq::tls::Certificate<'static>> {
            ureq::tls::parse_pem(bytes)
                .filter_map(|i| match i {
                    Ok(PemItem::Certificate(c)) => Some(c.to_owned()),
                    _ => None,
                })
                .collect()
        };
        let url = format!("https://127.0.0.1:{}/api/v1/devices/{device}/events", self.port);
        let http = |detail: String| Error::Http { url: format!("GET {url}"), detail };
        let key = PrivateKey::from_pem(&pem(&operator.key)?)
            .map_err(|e| http(format!("operator key {}: {e}", operator.key.display())))?
            .to_owned();
        let tls = TlsConfig::builder()
            .root_certs(RootCerts::new_with_certs(&certs(&pem(&pki.server_ca)?)))
            .client_cert(Some(ClientCert::new_with_certs(&certs(&pem(&operator.cert)?), key)))
            .build();
        let agent: ureq::Agent =
            ureq::Agent::config_builder().tls_config(tls).http_status_as_error(false).build().into();
        let token = std::fs::read_to_string(&self.token_file).map_err(io("read", &self.token_file))?;
        let mut resp = agent
            .get(&url)
            .header("Authorization", &format!("Bearer {}", token.trim()))
            .call()
            .map_err(|e| http(e.to_string()))?;
        let status = resp.status();
        let body = resp.body_mut().read_to_string().map_err(|e| http(e.to_string()))?;
        if !status.is_success() {
            return Err(http(format!("{status}: {body}")));
        }
        let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| http(format!("{e}: {body}")))?;
        Ok(v["events"].as_array().cloned().unwrap_or_default())
    }
}

/// One device's signed repository, with one target (`system.bundle`) that each release replaces.
#[derive(Debug, Clone)]
pub struct Repo {
    tool: PathBuf,
    dir: PathBuf,
    key: PathBuf,
}

/// The name of the one target.
pub const TARGET: &str = "system.bundle";

impl Repo {
    /// `update-tool repo init` under the server's root; `key` holds every role (it is the
    /// vendor key in the device's keyring, so the device's keyring anchor trusts this root).
    pub fn init(tool: &Path, root: &Path, name: &str, key: &Path) -> Result<Self> {
        let dir = root.join(name);
        quiet(Command::new(tool).args(["repo", "init"]).arg(&dir).arg("--key").arg(key))?;
        Ok(Repo { tool: tool.to_owned(), dir, key: key.to_owned() })
    }

    /// Publishes a bundle as the target (replacing the previous release) and signs the repository.
    pub fn publish(&self, bundle: &Path) -> Result {
        quiet(
            Command::new(&self.tool)
                .args(["repo", "add"])
                .arg(&self.dir)
                .arg(bundle)
                .args(["--name", TARGET, "--key"])
                .arg(&self.key),
        )
    }
}
