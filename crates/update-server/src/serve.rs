//! The accept loop: TCP, then the TLS handshake (when configured), then HTTP/1.1 or HTTP/2 on
//! hyper. Each request carries a [`Peer`] in its extensions: the remote address and, with
//! mutual TLS, the client certificate's identity. The handshake happens here, not in axum, so a
//! client that fails it never reaches a handler.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::tls::ClientCertificate;

/// A client that has not finished the TLS handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A client that has not sent a request's headers by then is dropped (HTTP/1.1).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// After shutdown is asked for, connections get this long to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Who is on the other end of a connection; in every request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The remote socket address.
    pub remote: SocketAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
    /// The client certificate the handshake verified (mutual TLS only).
    pub client: Option<ClientCertificate>,
}

/// Serves `app` on `listener` until `shutdown` completes, then lets open connections finish
/// (up to 10 s). With `tls`, every connection must complete the handshake first.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    shutdown: impl Future<Output = ()> + Send,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
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
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(%remote, error = %e, "cannot set TCP_NODELAY");
        }
        let connection = Connection {
            acceptor: acceptor.clone(),
            app: app.clone(),
            builder: builder.clone(),
            watcher: graceful.watcher(),
        };
        tokio::spawn(connection.run(tcp, remote));
    }
    drop(listener);
    tracing::info!("shutting down: waiting for open connections");
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after {} s; closing them", SHUTDOWN_GRACE.as_secs());
    }
}

struct Connection {
    acceptor: Option<TlsAcceptor>,
    app: Router,
    builder: auto::Builder<TokioExecutor>,
    watcher: Watcher,
}

impl Connection {
    async fn run(self, tcp: TcpStream, remote: SocketAddr) {
        let Some(acceptor) = self.acceptor.clone() else {
            let peer = Peer { remote, tls: false, client: None };
            return self.http(TokioIo::new(tcp), peer).await;
        };
        let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                tracing::info!(%remote, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::info!(%remote, "TLS handshake timed out");
                return;
            }
        };
        let client = stream.get_ref().1.peer_certificates().and_then(<[_]>::first).map(ClientCertificate::from_der);
        let peer = Peer { remote, tls: true, client };
        self.http(TokioIo::new(stream), peer).await;
    }

    async fn http<I>(self, io: TokioIo<I>, peer: Peer)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let app = self.app;
        let remote = peer.remote;
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer.remote));
            request.extensions_mut().insert(peer.clone());
            app.clone().oneshot(request)
        });
        let connection = self.builder.serve_connection_with_upgrades(io, service);
        if let Err(e) = self.watcher.watch(connection).await {
            tracing::debug!(%remote, error = %e, "connection ended with an error");
        }
    }
}
