//! A throwaway PKI, a repository directory, and a server on 127.0.0.1 with its clients.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use update_server::clock::Clock;
use update_server::dashboard::{Dashboard, app_with_dashboard};
use update_server::device::DeviceIdSource;
use update_server::limits::{ConnectionTracker, Limits};
use update_server::operator::{AdminToken, OperatorAccess, OperatorTokens, Role};
use update_server::push::PushHub;
use update_server::repo::ServedRepository;
use update_server::store::SqliteStore;
use update_server::{AppState, app, serve, tls};

/// A certificate authority.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    pub fn new(name: &str) -> Self {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(rcgen::DnType::CommonName, name);
        Self { issuer: CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap() }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    pub fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// A server certificate for `localhost` and 127.0.0.1.
    pub fn server(&self) -> Identity {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        Identity { cert_pem: cert.pem(), key_pem: key.serialize_pem() }
    }

    /// A device certificate whose subject CN is `cn`.
    pub fn device(&self, cn: &str) -> Identity {
        self.device_with_serial(cn, rand_serial())
    }

    /// A device certificate whose subject is CN `cn`, OU `ou` (the device's tag).
    pub fn device_in(&self, cn: &str, ou: &str) -> Identity {
        self.device_with(cn, rand_serial(), Some(ou))
    }

    /// A device certificate with a chosen serial number (to revoke it).
    pub fn device_with_serial(&self, cn: &str, serial: u64) -> Identity {
        self.device_with(cn, serial, None)
    }

    fn device_with(&self, cn: &str, serial: u64, ou: Option<&str>) -> Identity {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.serial_number = Some(rcgen::SerialNumber::from(serial));
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        if let Some(ou) = ou {
            p.distinguished_name.push(rcgen::DnType::OrganizationalUnitName, ou);
        }
        p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        Identity { cert_pem: cert.pem(), key_pem: key.serialize_pem() }
    }

    /// A CRL (PEM) revoking these serial numbers.
    pub fn crl(&self, revoked: &[u64]) -> String {
        let now = time::OffsetDateTime::now_utc();
        let params = rcgen::CertificateRevocationListParams {
            this_update: now - time::Duration::hours(1),
            next_update: now + time::Duration::days(7),
            crl_number: rcgen::SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|s| rcgen::RevokedCertParams {
                    serial_number: rcgen::SerialNumber::from(*s),
                    revocation_time: now - time::Duration::minutes(5),
                    reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        params.signed_by(&self.issuer).unwrap().pem().unwrap()
    }
}

fn rand_serial() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1000);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A certificate and its key, PEM.
#[derive(Clone)]
pub struct Identity {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Identity {
    pub fn write(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, &self.cert_pem).unwrap();
        std::fs::write(&key, &self.key_pem).unwrap();
        (cert, key)
    }
}

/// Push keep-alive in tests (15 s in production).
pub const PUSH_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_millis(300);

/// How the test server speaks.
#[derive(Clone, PartialEq, Eq)]
pub enum Transport {
    Plain,
    Tls,
    /// Clients must present a certificate from `TestServer::device_ca`.
    MutualTls,
}

pub struct Options {
    pub transport: Transport,
    /// Serial numbers of device certificates the CRL revokes (mutual TLS only).
    pub revoked: Vec<u64>,
    /// `--insecure-device-ids`.
    pub insecure_device_ids: bool,
    /// The operator token (`None`: no `--admin-token-file`).
    pub admin_token: Option<&'static str>,
    /// More named tokens: (name, role, token).
    pub operator_tokens: Vec<(&'static str, Role, &'static str)>,
    /// A manual clock (`None`: the system's).
    pub clock: Option<Clock>,
    /// `--dashboard`: the dashboard under /dashboard, and with mutual TLS a listener that lets
    /// browsers (no client certificate) finish the handshake.
    pub dashboard: bool,
    /// The listener's limits (`Limits::default()`: what `serve` uses without flags).
    pub limits: Limits,
    /// Push streams a device may hold at once.
    pub push_streams_per_device: usize,
}

/// The operator token of test servers.
pub const ADMIN_TOKEN: &str = "snakeoil-admin-token-0123456789";

impl Default for Options {
    fn default() -> Self {
        Self {
            transport: Transport::MutualTls,
            revoked: Vec::new(),
            insecure_device_ids: false,
            admin_token: Some(ADMIN_TOKEN),
            operator_tokens: Vec::new(),
            clock: None,
            dashboard: false,
            limits: Limits::default(),
            push_streams_per_device: 1,
        }
    }
}

/// A running server and everything it was made from.
pub struct TestServer {
    pub addr: SocketAddr,
    /// Issued the server's certificate.
    pub ca: Ca,
    /// Issues device certificates (mutual TLS).
    pub device_ca: Ca,
    pub dir: tempfile::TempDir,
    pub state: AppState,
    /// The dashboard's sessions (`Options::dashboard`).
    pub dashboard: Option<Arc<Dashboard>>,
    /// The listener's connections.
    pub connections: Arc<ConnectionTracker>,
    transport: Transport,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// The bytes of the test bundle: 300 KiB, no two 4 KiB blocks alike.
pub fn bundle_bytes() -> Vec<u8> {
    (0..300 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13).to_le_bytes()[0] ^ (i >> 12).to_le_bytes()[0])
        .collect()
}

pub const BUNDLE_PATH: &str = "targets/0f1e2d.demo-1.1.0.bundle";
/// The targets metadata of the test repository (unsigned here: the server only reads which
/// targets it lists; devices check the signatures): `demo-1.1.0.bundle` as version 1.1.0.
pub const TARGETS_JSON: &str = r#"{"signed":{"_type":"targets","version":1,"targets":{
  "demo-1.1.0.bundle":{"length":307200,"hashes":{"sha256":"00"},"custom":{"version":"1.1.0"}},
  "demo-2.0.0.bundle":{"length":307200,"hashes":{"sha256":"00"}}}},"signatures":[]}"#;
pub const ROOT_JSON: &str = "{\"signed\":{\"_type\":\"root\"},\"signatures\":[]}\n";

impl TestServer {
    pub async fn start(options: Options) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        std::fs::create_dir_all(repo.join("metadata")).unwrap();
        std::fs::create_dir_all(repo.join("targets")).unwrap();
        std::fs::write(repo.join("metadata/root.json"), ROOT_JSON).unwrap();
        std::fs::write(repo.join("metadata/1.targets.json"), TARGETS_JSON).unwrap();
        std::fs::write(repo.join(BUNDLE_PATH), bundle_bytes()).unwrap();
        std::fs::write(repo.join(".secret"), "hidden").unwrap();
        std::fs::write(dir.path().join("outside.txt"), "outside the repository").unwrap();
        std::os::unix::fs::symlink(dir.path().join("outside.txt"), repo.join("escape.txt")).unwrap();

        let ca = Ca::new("snakeoil server CA");
        let device_ca = Ca::new("snakeoil device CA");
        let client_auth = if options.transport == Transport::MutualTls {
            let ca_path = dir.path().join("device-ca.crt");
            std::fs::write(&ca_path, device_ca.pem()).unwrap();
            let mut crls = Vec::new();
            if !options.revoked.is_empty() {
                let crl = dir.path().join("devices.crl");
                std::fs::write(&crl, device_ca.crl(&options.revoked)).unwrap();
                crls.push(crl);
            }
            tls::ClientAuth::Required { ca: ca_path, crls }
        } else {
            tls::ClientAuth::NotRequested
        };
        let client_auth = if options.dashboard { client_auth.with_dashboard() } else { client_auth };
        let tls = match options.transport {
            Transport::Plain => None,
            Transport::Tls | Transport::MutualTls => {
                let (cert, key) = ca.server().write(dir.path(), "server");
                Some(tls::server_config(&cert, &key, &client_auth).unwrap())
            }
        };
        let db = format!("sqlite:{}", dir.path().join("server.db").display());
        let state = AppState {
            repo: Arc::new(ServedRepository::open(&repo).unwrap()),
            store: Arc::new(SqliteStore::open(&db).await.unwrap()),
            device_ids: if options.insecure_device_ids {
                DeviceIdSource::InsecureRequestField
            } else {
                DeviceIdSource::ClientCertificate
            },
            push: Arc::new(PushHub::new(PUSH_KEEP_ALIVE).with_streams_per_device(options.push_streams_per_device)),
            operator: {
                let mut tokens = match options.admin_token {
                    Some(token) => OperatorTokens::with_admin(AdminToken::new(token).unwrap()),
                    None => OperatorTokens::new(),
                };
                for (name, role, token) in &options.operator_tokens {
                    tokens.add(name, *role, token).unwrap();
                }
                if tokens.is_empty() { OperatorAccess::Disabled } else { OperatorAccess::Tokens(tokens) }
            },
            clock: options.clock.clone().unwrap_or_default(),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel();
        let dashboard = options.dashboard.then(|| Arc::new(Dashboard::new(client_auth.device_routes())));
        let router = match &dashboard {
            Some(d) => app_with_dashboard(state.clone(), Arc::clone(d)),
            None => app(state.clone()),
        };
        let connections = Arc::new(ConnectionTracker::new(options.limits.max_connections));
        let task = tokio::spawn(serve::serve_tracked(
            listener,
            tls,
            router,
            options.limits.clone(),
            Arc::clone(&connections),
            async {
                let _ = rx.await;
            },
        ));
        Self {
            addr,
            ca,
            device_ca,
            dir,
            state,
            dashboard,
            connections,
            transport: options.transport,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        let scheme = match self.transport {
            Transport::Plain => "http",
            Transport::Tls | Transport::MutualTls => "https",
        };
        format!("{scheme}://localhost:{}{path}", self.addr.port())
    }

    /// A client trusting this server's CA, presenting `identity` if given.
    pub fn client(&self, identity: Option<&Identity>) -> reqwest::Client {
        client_for(self.addr, &[self.ca.der()], identity)
    }

    /// An operator client: trusts the server, no client certificate needed for the operator
    /// API itself, but the server may require mutual TLS, so it presents an `operator` one.
    pub fn operator(&self) -> reqwest::Client {
        self.client(Some(&self.device_ca.device("operator-console")))
    }

    /// `GET path` on the operator API with the token: the JSON answer (any other status panics).
    pub async fn operator_get(&self, path: &str) -> serde_json::Value {
        let r = self.operator().get(self.url(path)).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap()
    }

    /// A TLS handshake and one `GET path` without reqwest, so a refusal is seen as the TLS
    /// error it is: `Ok(status line)` or `Err(the error)`.
    pub async fn raw_tls_get(&self, identity: Option<&Identity>, path: &str) -> Result<String, String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let config = client_config(&[self.ca.der()], identity);
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = connector.connect(name, tcp).await.map_err(|e| e.to_string())?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        tls.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
        let mut response = Vec::new();
        tls.read_to_end(&mut response).await.map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&response);
        Ok(text.lines().next().unwrap_or_default().to_owned())
    }

    /// Stops the server as `main` does: push streams closed, then a graceful shutdown.
    pub async fn stop(mut self) {
        self.state.push.close();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            // Well under the 10 s grace period: nothing may hold a connection open.
            tokio::time::timeout(std::time::Duration::from_secs(5), task).await.unwrap().unwrap();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

pub fn client_for(addr: SocketAddr, roots: &[CertificateDer<'static>], identity: Option<&Identity>) -> reqwest::Client {
    let mut config = client_config(roots, identity);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .resolve("localhost", addr)
        .no_proxy()
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap()
}

pub fn client_config(roots: &[CertificateDer<'static>], identity: Option<&Identity>) -> rustls::ClientConfig {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add(r.clone()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store);
    match identity {
        None => builder.with_no_client_auth(),
        Some(id) => {
            let chain = CertificateDer::pem_slice_iter(id.cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>().unwrap();
            let key = PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes()).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
    }
}

/// Sends `GET path` over plain HTTP/1.1 exactly as written (reqwest would normalise `%2e%2e`
/// away) and returns the status code.
pub async fn raw_get_status(addr: SocketAddr, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).await.unwrap();
    response.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("no status in {response:?}"))
}
