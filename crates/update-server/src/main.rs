//! `update-server`: serves a libupdate repository and the fleet API.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tokio::net::TcpListener;
use update_protocol::DeviceId;
use update_server::clock::Clock;
use update_server::dashboard::{Dashboard, app_with_dashboard};
use update_server::device::DeviceIdSource;
use update_server::error::ServerError;
use update_server::operator::{AdminToken, OperatorAccess, OperatorTokens};
use update_server::push::PushHub;
use update_server::repo::ServedRepository;
use update_server::store::Store;
use update_server::store::{PgStore, SqliteStore, redact_url};
use update_server::tls::ClientAuth;
use update_server::{AppState, app, serve, tls};

/// Push streams send a keep-alive comment this often.
const PUSH_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The libupdate repository and fleet server.
///
/// Exit codes: 0 stopped cleanly, 2 usage, 3 a configuration file (repository, certificate,
/// key, token) is missing or invalid, 9 the socket or the database cannot be opened, 10 the
/// operator audit log's chain is broken (`audit`).
/// Logging: RUST_LOG (default `info`), on stderr.
#[derive(Debug, Parser)]
#[command(name = "update-server", version, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the repository and the API until SIGINT or SIGTERM.
    Serve(ServeArgs),
    /// Print a device's events from the database, oldest first, as JSON lines (the fields of
    /// `GET /api/v1/devices/{id}/events`). Safe while the server runs.
    Events {
        /// The device id.
        device: String,
        /// The database, as for `serve`.
        #[arg(long, value_name = "URL", default_value = "sqlite:update-server.db")]
        db: String,
    },
    /// Print every device the database knows, as JSON lines (the fields of
    /// `GET /api/v1/devices`). Safe while the server runs.
    Devices {
        /// The database, as for `serve`.
        #[arg(long, value_name = "URL", default_value = "sqlite:update-server.db")]
        db: String,
    },
    /// Print the operator audit log as JSON lines and check its hash chain: exit 0 when it
    /// holds (the last line is `{"ok":true,…}`), 10 when a row was edited, removed or
    /// inserted (the last line names it). Safe while the server runs.
    Audit {
        /// The database, as for `serve`.
        #[arg(long, value_name = "URL", default_value = "sqlite:update-server.db")]
        db: String,
    },
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// The repository directory (made by `update-tool repo init`), served read-only under /repo/.
    #[arg(long, value_name = "DIR")]
    repo: PathBuf,
    /// The address to listen on, e.g. 0.0.0.0:8443 or [::]:8443.
    #[arg(long, value_name = "ADDR")]
    listen: SocketAddr,
    /// The server certificate chain (PEM, leaf first). Without --tls-cert/--tls-key the server
    /// speaks plain HTTP, for use behind a TLS-terminating proxy only.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The server's private key (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Mutual TLS: every client must present a certificate issued by this CA (PEM). The device
    /// id is the certificate's subject common name.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    client_ca: Option<PathBuf>,
    /// A certificate revocation list (PEM) from the client CA; repeat for several. A device
    /// certificate it lists is refused during the handshake.
    #[arg(long = "client-crl", value_name = "PEM", requires = "client_ca")]
    client_crls: Vec<PathBuf>,
    /// The database: sqlite:PATH (created if missing; WAL mode), or PostgreSQL:
    /// postgres://USER:PASSWORD@HOST/DB or postgresql:///DB?host=/SOCKET/DIR (servers sharing
    /// one database pass check-now requests to each other). The password is never shown.
    #[arg(long, value_name = "URL", default_value = "sqlite:update-server.db")]
    db: String,
    /// The operator API's bearer token: a file holding one line of at least 16 visible ASCII
    /// characters (mode 0600). Without it the operator API is disabled.
    #[arg(long, value_name = "FILE")]
    admin_token_file: Option<PathBuf>,
    /// Named operator tokens with roles: a file (mode 0600) of lines `NAME ROLE TOKEN`, ROLE
    /// one of viewer, operator, admin; `#` starts a comment line. May be combined with
    /// --admin-token-file (an admin named `admin`).
    #[arg(long, value_name = "FILE")]
    operator_tokens: Option<PathBuf>,
    /// TEST ONLY: trust the `device-id` a client puts in its requests instead of a client
    /// certificate. Anyone can then speak for any device.
    #[arg(long, conflicts_with = "client_ca")]
    insecure_device_ids: bool,
    /// Serve the operator dashboard under /dashboard on the same listener (docs/dashboard.md).
    /// Operators log in with their --operator-tokens / --admin-token-file token. With
    /// --client-ca the handshake then lets clients without a certificate (browsers) through,
    /// and every route outside /dashboard refuses them with 401. Off by default.
    #[arg(long)]
    dashboard: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("update-server: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve(args) => runtime.block_on(run(args)),
        Command::Events { device, db } => runtime.block_on(print_events(&device, &db)),
        Command::Devices { db } => runtime.block_on(print_devices(&db)),
        Command::Audit { db } => match runtime.block_on(print_audit(&db)) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::from(10),
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("update-server: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn is_postgres(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

async fn open_store(db: &str) -> Result<Arc<dyn Store>, ServerError> {
    if is_postgres(db) {
        return Ok(Arc::new(PgStore::open(db).await?));
    }
    if !db.starts_with("sqlite:") {
        return Err(ServerError::Usage(format!(
            "--db {}: expected sqlite:PATH, postgres://… or postgresql://…",
            redact_url(db)
        )));
    }
    let path = db.trim_start_matches("sqlite:");
    if !std::path::Path::new(path).exists() {
        return Err(ServerError::Usage(format!("--db {db}: no such database")));
    }
    Ok(Arc::new(SqliteStore::open(db).await?))
}

fn print_json(value: &impl serde::Serialize) {
    println!("{}", serde_json::to_string(value).unwrap_or_default());
}

async fn print_events(device: &str, db: &str) -> Result<(), ServerError> {
    let id = DeviceId::parse(device).map_err(|e| ServerError::Usage(format!("device id {device:?}: {}", e.problem)))?;
    let store = open_store(db).await?;
    let mut after = 0;
    loop {
        let Some(events) = store.events(&id, after, 1000).await? else {
            return Err(ServerError::Usage(format!("no device {device:?} in {db}")));
        };
        let Some(last) = events.last() else { return Ok(()) };
        after = last.seq;
        for e in &events {
            print_json(e);
        }
    }
}

async fn print_devices(db: &str) -> Result<(), ServerError> {
    let store = open_store(db).await?;
    for d in store.devices().await? {
        print_json(&d);
    }
    Ok(())
}

async fn print_audit(db: &str) -> Result<bool, ServerError> {
    let store = open_store(db).await?;
    let mut rows = Vec::new();
    loop {
        let page = store.audit_log(rows.last().map_or(0, |r: &update_server::audit::AuditEntry| r.seq), 1000).await?;
        if page.is_empty() {
            break;
        }
        rows.extend(page);
    }
    for r in &rows {
        print_json(r);
    }
    match update_server::audit::verify(&rows) {
        Ok((entries, head)) => {
            print_json(&serde_json::json!({"ok": true, "entries": entries, "head": head}));
            Ok(true)
        }
        Err(broken) => {
            print_json(&serde_json::json!({"ok": false, "seq": broken.seq, "problem": broken.problem}));
            Ok(false)
        }
    }
}

async fn run(args: ServeArgs) -> Result<(), ServerError> {
    if !args.db.starts_with("sqlite:") && !is_postgres(&args.db) {
        return Err(ServerError::Usage(format!(
            "--db {}: expected sqlite:PATH, postgres://… or postgresql://…",
            redact_url(&args.db)
        )));
    }
    let repo = ServedRepository::open(&args.repo)?;
    let mut client_auth = match &args.client_ca {
        Some(ca) => ClientAuth::Required { ca: ca.clone(), crls: args.client_crls.clone() },
        None => ClientAuth::NotRequested,
    };
    if args.dashboard {
        client_auth = client_auth.with_dashboard();
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls::server_config(cert, key, &client_auth)?),
        _ => None,
    };
    let push = Arc::new(PushHub::new(PUSH_KEEP_ALIVE));
    let store: Arc<dyn Store> = if is_postgres(&args.db) {
        let store = PgStore::open(&args.db).await?;
        store.forward_pushes(Arc::clone(&push)).await?;
        tracing::info!(db = %redact_url(&args.db), "PostgreSQL store; check-now requests shared with other servers");
        Arc::new(store)
    } else {
        Arc::new(SqliteStore::open(&args.db).await?)
    };
    let device_ids = if args.insecure_device_ids {
        tracing::warn!("--insecure-device-ids: clients name their own device id; for tests only");
        DeviceIdSource::InsecureRequestField
    } else {
        if args.client_ca.is_none() {
            tracing::warn!("no --client-ca: devices cannot be identified, the device API will refuse every request");
        }
        DeviceIdSource::ClientCertificate
    };
    let mut tokens = match &args.admin_token_file {
        Some(path) => OperatorTokens::with_admin(AdminToken::from_file(path)?),
        None => OperatorTokens::new(),
    };
    if let Some(path) = &args.operator_tokens {
        tokens.read_file(path)?;
    }
    let operator = if tokens.is_empty() {
        tracing::warn!("no --admin-token-file or --operator-tokens: the operator API is disabled");
        OperatorAccess::Disabled
    } else {
        tracing::info!(tokens = ?tokens, "operator tokens");
        OperatorAccess::Tokens(tokens)
    };
    if args.dashboard && matches!(operator, OperatorAccess::Disabled) {
        return Err(ServerError::Usage(
            "--dashboard needs --operator-tokens or --admin-token-file (operators log in with their token)".to_owned(),
        ));
    }
    if args.dashboard && tls.is_none() {
        tracing::warn!(
            "--dashboard without --tls-cert: the session cookie is Secure, so browsers keep it only over HTTPS (a TLS-terminating proxy)"
        );
    }
    let listener =
        TcpListener::bind(args.listen).await.map_err(|source| ServerError::Listen { addr: args.listen, source })?;
    let local = listener.local_addr().unwrap_or(args.listen);
    if tls.is_none() {
        tracing::warn!("no --tls-cert/--tls-key: serving plain HTTP; only do this behind a TLS-terminating proxy");
    }
    tracing::info!(
        listen = %local,
        repo = %repo.root().display(),
        tls = tls.is_some(),
        mutual_tls = args.client_ca.is_some(),
        dashboard = args.dashboard,
        "update-server ready"
    );
    let state =
        AppState { repo: Arc::new(repo), store, device_ids, push: Arc::clone(&push), operator, clock: Clock::system() };
    let shutdown = async move {
        shutdown_signal().await;
        // Open push streams would hold their connections until the grace period ends.
        push.close();
    };
    let router = if args.dashboard {
        app_with_dashboard(state, Arc::new(Dashboard::new(client_auth.device_routes())))
    } else {
        app(state)
    };
    serve::serve(listener, tls, router, shutdown).await;
    tracing::info!("stopped");
    Ok(())
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("shutdown requested");
}
