//! `update-server`: serves a libupdate repository and the fleet API.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use tokio::net::TcpListener;
use update_protocol::DeviceId;
use update_server::cli::{Cli, Command, ServeArgs};
use update_server::clock::Clock;
use update_server::dashboard::{Dashboard, app_with_dashboard};
use update_server::ddi::{Ddi, DdiConfig};
use update_server::device::DeviceIdSource;
use update_server::error::ServerError;
use update_server::operator::{AdminToken, OperatorAccess, OperatorTokens};
use update_server::push::PushHub;
use update_server::repo::ServedRepository;
use update_server::store::Store;
use update_server::store::{PgStore, SqliteStore, redact_url};
use update_server::tls::ClientAuth;
use update_server::{AppState, app, serve, tls};

/// Events are pruned this often (`--events-per-device`, `--event-max-age-days`).
const RETENTION_INTERVAL: Duration = Duration::from_secs(60);

/// Push streams send a keep-alive comment this often.
const PUSH_KEEP_ALIVE: Duration = Duration::from_secs(15);

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
        Command::Serve(args) => runtime.block_on(run(*args)),
        Command::Events { device, db } => runtime.block_on(print_events(&device, &db)),
        Command::Devices { db } => runtime.block_on(print_devices(&db)),
        Command::DdiToken { device, db } => runtime.block_on(make_ddi_token(&device, &db)),
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

async fn make_ddi_token(device: &str, db: &str) -> Result<(), ServerError> {
    let id = DeviceId::parse(device).map_err(|e| ServerError::Usage(format!("device id {device:?}: {}", e.problem)))?;
    let store = open_store(db).await?;
    let (token, digest) = update_server::ddi::new_target_token().map_err(ServerError::Usage)?;
    let actor = update_server::audit::Actor { name: "update-server ddi-token".to_owned(), role: "admin" };
    store.set_target_token(&id, &digest, &actor, time::OffsetDateTime::now_utc()).await?;
    println!("{token}");
    Ok(())
}

/// The DDI settings of `serve`, when `--ddi` is given.
fn ddi_config(args: &ServeArgs) -> Result<Option<DdiConfig>, ServerError> {
    if !args.ddi {
        return Ok(None);
    }
    let tenant = &args.ddi_tenant;
    let valid = !tenant.is_empty()
        && tenant.len() <= 64
        && tenant.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        return Err(ServerError::Usage(format!("--ddi-tenant {tenant:?}: 1 to 64 of A-Z a-z 0-9 - _")));
    }
    let gateway = args.ddi_gateway_token_file.as_deref().map(AdminToken::from_file).transpose()?;
    Ok(Some(DdiConfig { tenant: tenant.clone(), poll: Duration::from_secs(u64::from(args.ddi_poll_secs)), gateway }))
}

async fn run(args: ServeArgs) -> Result<(), ServerError> {
    if !args.db.starts_with("sqlite:") && !is_postgres(&args.db) {
        return Err(ServerError::Usage(format!(
            "--db {}: expected sqlite:PATH, postgres://… or postgresql://…",
            redact_url(&args.db)
        )));
    }
    let repo = ServedRepository::open(&args.repo)?;
    let ddi = ddi_config(&args)?;
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
    let mut limits = args.limits();
    match update_server::limits::raise_open_file_limit() {
        Ok(open_files) => {
            let cap = update_server::limits::connections_within(limits.max_connections, open_files);
            if cap < limits.max_connections {
                tracing::warn!(
                    open_files,
                    max_connections = cap,
                    "the open-file limit is low: connections capped below --max-connections (raise LimitNOFILE)"
                );
            }
            limits.max_connections = cap;
        }
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
    let streams = usize::try_from(args.push_streams_per_device).unwrap_or(1);
    let push = Arc::new(PushHub::new(PUSH_KEEP_ALIVE).with_streams_per_device(streams));
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
    let retention = update_server::store::EventRetention {
        max_age: (args.event_max_age_days > 0).then(|| time::Duration::days(i64::from(args.event_max_age_days))),
        per_device: (args.events_per_device > 0).then_some(args.events_per_device),
    };
    let _pruning = update_server::retention::spawn(
        Arc::clone(&store),
        retention,
        RETENTION_INTERVAL,
        Clock::system(),
        Arc::clone(&push),
    );
    let state =
        AppState { repo: Arc::new(repo), store, device_ids, push: Arc::clone(&push), operator, clock: Clock::system() };
    let shutdown = async move {
        shutdown_signal().await;
        // Open push streams would hold their connections until the grace period ends.
        push.close();
    };
    let mut router = if args.dashboard {
        app_with_dashboard(state.clone(), Arc::new(Dashboard::new(client_auth.device_routes())))
    } else {
        app(state.clone())
    };
    if let Some(config) = ddi {
        tracing::info!(tenant = %config.tenant, poll_secs = config.poll.as_secs(), gateway_token = config.gateway.is_some(), "hawkBit DDI API on");
        router = router.merge(update_server::ddi::router(state, Arc::new(Ddi::new(config))));
    }
    tracing::info!(?limits, "limits");
    serve::serve_with_limits(listener, tls, router, limits, shutdown).await;
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
