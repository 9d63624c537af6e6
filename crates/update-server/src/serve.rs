//! The accept loop: TCP, then the TLS handshake (when configured), then HTTP/1.1 or HTTP/2 on
//! hyper. Each request carries a [`Peer`] in its extensions: the remote address and, with
//! mutual TLS, the client certificate's identity. The handshake happens here, not in axum, so a
//! client that fails it never reaches a handler.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::limits::{Activity, Admission, ConnectionTracker, DeadlineBody, Limits, RateLimiter, Rated, TrackedBody};
use crate::tls::ClientCertificate;

/// An idle connection asked to close gets this long to do so before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// After shutdown is asked for, connections get this long to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Who is on the other end of a connection; in every request's extensions.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The remote socket address.
    pub remote: SocketAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
    /// The client certificate the handshake verified (mutual TLS only), read once per
    /// connection and shared by its requests.
    pub client: Option<Arc<ClientCertificate>>,
    /// The listener's per-device rate limits, for routes that learn who the device is only
    /// after authenticating it (hawkBit DDI, [`crate::ddi`]).
    pub rates: Option<Arc<RateLimiter>>,
}

/// Serves `app` on `listener` with the default [`Limits`] until `shutdown` completes, then lets
/// open connections finish (up to 10 s). With `tls`, every connection must complete the
/// handshake first.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    shutdown: impl Future<Output = ()> + Send,
) {
    serve_with_limits(listener, tls, app, Limits::default(), shutdown).await;
}

/// [`serve`] with chosen [`Limits`].
pub async fn serve_with_limits(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) {
    let tracker = Arc::new(ConnectionTracker::new(limits.max_connections));
    serve_tracked(listener, tls, app, limits, Arc::clone(&tracker), shutdown).await;
}

/// [`serve_with_limits`] with the caller's [`ConnectionTracker`] (to watch the connection cap).
pub async fn serve_tracked(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    limits: Limits,
    tracker: Arc<ConnectionTracker>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    builder.http2().timer(TokioTimer::new());
    let shared = Arc::new(Shared { rates: Arc::new(RateLimiter::new(&limits)), limits, builder });
    let mut shutdown = std::pin::pin!(shutdown);
    let mut last_refusal_log: Option<Instant> = None;
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(admission) = tracker.admit() else {
            // At the cap with every connection past its handshake: closed at once.
            if last_refusal_log.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                tracing::warn!(max = shared.limits.max_connections, %remote, "connection cap reached: refusing connections");
                last_refusal_log = Some(Instant::now());
            }
            drop(tcp);
            continue;
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(%remote, error = %e, "cannot set TCP_NODELAY");
        }
        let connection =
            Connection { acceptor: acceptor.clone(), app: app.clone(), shared: Arc::clone(&shared), admission };
        tokio::spawn(connection.run(tcp, remote));
    }
    drop(listener);
    tracing::info!("shutting down: waiting for open connections");
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.drain()).await.is_err() {
        tracing::warn!("connections still open after {} s; closing them", SHUTDOWN_GRACE.as_secs());
    }
}

/// What every connection of a listener shares.
struct Shared {
    limits: Limits,
    rates: Arc<RateLimiter>,
    builder: auto::Builder<TokioExecutor>,
}

struct Connection {
    acceptor: Option<TlsAcceptor>,
    app: Router,
    shared: Arc<Shared>,
    admission: Admission,
}

impl Connection {
    async fn run(self, tcp: TcpStream, remote: SocketAddr) {
        let Some(acceptor) = self.acceptor.clone() else {
            self.admission.established();
            let peer = Peer { remote, tls: false, client: None, rates: Some(Arc::clone(&self.shared.rates)) };
            return self.http(TokioIo::new(tcp), peer).await;
        };
        let evicted = self.admission.evicted.clone();
        let stream = tokio::select! {
            accepted = tokio::time::timeout(self.shared.limits.handshake_timeout, acceptor.accept(tcp)) => match accepted {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::info!(%remote, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::info!(%remote, "TLS handshake timed out");
                    return;
                }
            },
            () = evicted.cancelled() => {
                tracing::debug!(%remote, "connection cap: closing a connection still in its handshake");
                return;
            }
        };
        self.admission.established();
        let client = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(<[_]>::first)
            .map(|der| Arc::new(ClientCertificate::from_der(der)));
        let peer = Peer { remote, tls: true, client, rates: Some(Arc::clone(&self.shared.rates)) };
        self.http(TokioIo::new(stream), peer).await;
    }

    async fn http<I>(self, io: TokioIo<I>, peer: Peer)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let app = self.app;
        let remote = peer.remote;
        let shared = Arc::clone(&self.shared);
        let activity = Arc::new(Activity::default());
        let tracked = Arc::clone(&activity);
        let device: Option<Arc<str>> = peer.client.as_ref().and_then(|c| c.common_name.as_deref()).map(Arc::from);
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let in_flight = tracked.begin();
            let refused = match (&device, Rated::of(request.method(), request.uri().path())) {
                (Some(device), Some(kind)) => shared.rates.take(kind, device).err(),
                _ => None,
            };
            let mut request = request.map(|body| DeadlineBody::new(body, shared.limits.body_timeout));
            request.extensions_mut().insert(ConnectInfo(peer.remote));
            request.extensions_mut().insert(peer.clone());
            let app = app.clone();
            async move {
                let response = match refused {
                    Some(e) => e.into_response(),
                    None => app.oneshot(request).await?,
                };
                Ok::<_, Infallible>(response.map(|body| axum::body::Body::new(TrackedBody::new(body, in_flight))))
            }
        });
        let connection = self.shared.builder.serve_connection_with_upgrades(io, service);
        let mut connection = std::pin::pin!(connection);
        let idle_timeout = self.shared.limits.idle_timeout;
        let shutdown = self.admission.shutdown().clone();
        let mut closing = false;
        // After a graceful close is asked for, the client has this long to let it finish (an
        // HTTP/2 client that never acknowledges the GOAWAY's ping would hold it forever).
        let hard_close = tokio::time::sleep(Duration::MAX);
        let mut hard_close = std::pin::pin!(hard_close);
        loop {
            let check = match activity.idle_for() {
                Some(idle) => idle_timeout.saturating_sub(idle),
                None => idle_timeout,
            };
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(%remote, error = %e, "connection ended with an error");
                    }
                    break;
                }
                () = tokio::time::sleep(check), if !closing => {
                    if activity.idle_for().is_some_and(|idle| idle >= idle_timeout) {
                        tracing::debug!(%remote, "idle connection closed");
                        connection.as_mut().graceful_shutdown();
                        closing = true;
                        hard_close.as_mut().reset(tokio::time::Instant::now() + CLOSE_GRACE);
                    }
                }
                () = shutdown.cancelled(), if !closing => {
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
                () = hard_close.as_mut(), if closing => {
                    tracing::debug!(%remote, "idle connection did not close in time; dropped");
                    break;
                }
            }
        }
        drop(self.admission);
    }
}
