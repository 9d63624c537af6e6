//! The command-line definitions of `update-server`. The doc comments are the help text; the man
//! page and shell completions are generated from the same definitions (`cargo xtask docs`).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The libupdate repository and fleet server.
///
/// Exit codes: 0 stopped cleanly, 2 usage, 3 a configuration file (repository, certificate,
/// key, token) is missing or invalid, 9 the socket or the database cannot be opened, 10 the
/// operator audit log's chain is broken (`audit`).
/// Logging: RUST_LOG (default `info`), on stderr.
#[derive(Debug, Parser)]
#[command(name = "update-server", version, max_term_width = 100)]
pub struct Cli {
    #[allow(missing_docs, reason = "a doc comment here would become clap help text")]
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the repository and the API until SIGINT or SIGTERM.
    Serve(Box<ServeArgs>),
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
    /// Make a new hawkBit DDI target token for a device and print it on stdout, once: the
    /// database keeps only its SHA-256. The device sends it as `Authorization: TargetToken
    /// TOKEN` (SWUpdate: `suricatta -k TOKEN` or `targettoken`). A new token replaces the
    /// device's old one at once; the change is in the operator audit log. Safe while the
    /// server runs.
    DdiToken {
        /// The device id (the DDI controllerId).
        device: String,
        /// The database, as for `serve`.
        #[arg(long, value_name = "URL", default_value = "sqlite:update-server.db")]
        db: String,
    },
}

/// The options of `update-server serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The repository directory (made by `update-tool repo init`), served read-only under /repo/.
    #[arg(long, value_name = "DIR")]
    pub repo: PathBuf,
    /// The address to listen on, e.g. 0.0.0.0:8443 or [::]:8443.
    // The help text is the doc comment: `[::]` must read as written, not as a rustdoc link.
    #[allow(rustdoc::broken_intra_doc_links)]
    #[arg(long, value_name = "ADDR")]
    pub listen: SocketAddr,
    /// The server certificate chain (PEM, leaf first). Without --tls-cert/--tls-key the server
    /// speaks plain HTTP, for use behind a TLS-terminating proxy only.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The server's private key (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Mutual TLS: every client must present a certificate issued by this CA (PEM). The device
    /// id is the certificate's subject common name.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub client_ca: Option<PathBuf>,
    /// A certificate revocation list (PEM) from the client CA; repeat for several. A device
    /// certificate it lists is refused during the handshake.
    #[arg(long = "client-crl", value_name = "PEM", requires = "client_ca")]
    pub client_crls: Vec<PathBuf>,
    /// The database: sqlite:PATH (created if missing; WAL mode), or PostgreSQL:
    /// postgres://USER:PASSWORD@HOST/DB or postgresql:///DB?host=/SOCKET/DIR (servers sharing
    /// one database pass check-now requests to each other). The password is never shown.
    #[arg(long, value_name = "URL", default_value = "sqlite:update-server.db")]
    pub db: String,
    /// The operator API's bearer token: a file holding one line of at least 16 visible ASCII
    /// characters (mode 0600). Without it the operator API is disabled.
    #[arg(long, value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Named operator tokens with roles: a file (mode 0600) of lines `NAME ROLE TOKEN`, ROLE
    /// one of viewer, operator, admin; `#` starts a comment line. May be combined with
    /// --admin-token-file (an admin named `admin`).
    #[arg(long, value_name = "FILE")]
    pub operator_tokens: Option<PathBuf>,
    /// TEST ONLY: trust the `device-id` a client puts in its requests instead of a client
    /// certificate. Anyone can then speak for any device.
    #[arg(long, conflicts_with = "client_ca")]
    pub insecure_device_ids: bool,
    /// Serve the operator dashboard under /dashboard on the same listener. Operators log in
    /// with their --operator-tokens / --admin-token-file token. With --client-ca the handshake
    /// then lets clients without a certificate (browsers) through, and every route outside
    /// /dashboard refuses them with 401. Off by default.
    #[arg(long)]
    pub dashboard: bool,
    /// Open connections at most. At the cap a new connection evicts the oldest one still in its
    /// TLS handshake, or is closed when there is none. Kept below the open-file limit, which
    /// the server raises to its hard limit at start (the unit sets LimitNOFILE).
    #[arg(long, value_name = "N", default_value_t = 50_000)]
    pub max_connections: usize,
    /// Seconds a client has to finish the TLS handshake.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub handshake_timeout: u64,
    /// Seconds a client has to send a request's headers (HTTP/1.1).
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout: u64,
    /// Seconds a client has to send a request's body, counted from its headers.
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub body_timeout: u64,
    /// Seconds a connection (HTTP/2 or HTTP/1.1 keep-alive) may stay open with no request in
    /// flight. A push stream is a request in flight.
    #[arg(long, value_name = "SECS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_timeout: u64,
    /// Check-ins one device (client certificate) may make per minute, in a burst of as many;
    /// more are answered 429 with Retry-After. 0: no limit.
    #[arg(long, value_name = "N", default_value_t = 60)]
    pub checkins_per_minute: u32,
    /// Events one device may send per minute (429 beyond). 0: no limit.
    #[arg(long, value_name = "N", default_value_t = 120)]
    pub events_per_minute: u32,
    /// Push streams one device may open per minute (429 beyond). 0: no limit.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub push_opens_per_minute: u32,
    /// Push streams one device may hold at once; a newer one ends its oldest.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub push_streams_per_device: u64,
    /// Keep at most this many events per device (the oldest go first). 0: no limit.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub events_per_device: u32,
    /// Delete events received more than this many days ago. 0: keep them.
    #[arg(long, value_name = "DAYS", default_value_t = 0)]
    pub event_max_age_days: u32,
    /// Serve hawkBit's Direct Device Integration API under /TENANT/controller/v1/ on the same
    /// listener, for devices that run a hawkBit client such as SWUpdate's suricatta. They
    /// follow the same deployments; their feedback
    /// counts like a native device's events. A device authenticates with its client
    /// certificate (the common name must be its controllerId), its target token
    /// (`update-server ddi-token`), or the gateway token. Off by default.
    #[arg(long)]
    pub ddi: bool,
    /// The DDI tenant: the first path segment (compared without regard to case).
    #[arg(long, value_name = "NAME", default_value = "DEFAULT", requires = "ddi")]
    pub ddi_tenant: String,
    /// How long DDI devices wait between two polls (config.polling.sleep), in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 300, requires = "ddi",
          value_parser = clap::value_parser!(u32).range(1..=86_400))]
    pub ddi_poll_secs: u32,
    /// The DDI gateway token, which may speak for every device: a file (mode 0600) holding one
    /// line of at least 16 visible ASCII characters. Without it, gateway tokens are refused.
    #[arg(long, value_name = "FILE", requires = "ddi")]
    pub ddi_gateway_token_file: Option<PathBuf>,
}

impl ServeArgs {
    /// The connection and request limits these options ask for.
    #[must_use]
    pub fn limits(&self) -> crate::limits::Limits {
        use std::time::Duration;
        crate::limits::Limits {
            max_connections: self.max_connections,
            handshake_timeout: Duration::from_secs(self.handshake_timeout),
            header_timeout: Duration::from_secs(self.header_timeout),
            body_timeout: Duration::from_secs(self.body_timeout),
            idle_timeout: Duration::from_secs(self.idle_timeout),
            checkins_per_minute: self.checkins_per_minute,
            events_per_minute: self.events_per_minute,
            push_opens_per_minute: self.push_opens_per_minute,
        }
    }
}

/// The clap command (for the man page and shell completions).
#[must_use]
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}
