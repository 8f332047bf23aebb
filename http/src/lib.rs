//! `/metrics` (OpenMetrics text), `/healthz` and `/readyz` over HTTP/1.1.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::CONTENT_TYPE;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::net::TcpListener;

/// A loop must turn at least this often for `/healthz` to say alive.
pub const STALL_MS: i64 = 60_000;

/// What a process (agent or indexer) exposes.
pub trait Health: Send + Sync + 'static {
    fn registry(&self) -> &prometheus_client::registry::Registry;
    fn alive(&self) -> bool;
    fn ready(&self) -> bool;
}

/// Serves until the listener fails.
pub async fn serve<M: Health>(listener: TcpListener, metrics: Arc<M>) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                let response = respond(&*metrics, req.uri().path());
                async move { Ok::<_, Infallible>(response) }
            });
            if let Err(error) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!(%error, "http connection");
            }
        });
    }
}

fn respond(metrics: &impl Health, path: &str) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match path {
        "/metrics" => {
            let mut text = String::new();
            match prometheus_client::encoding::text::encode(&mut text, metrics.registry()) {
                Ok(()) => (StatusCode::OK, "application/openmetrics-text; version=1.0.0; charset=utf-8", text),
                Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, "text/plain", e.to_string()),
            }
        }
        "/healthz" if metrics.alive() => (StatusCode::OK, "text/plain", "ok\n".into()),
        "/healthz" => (StatusCode::SERVICE_UNAVAILABLE, "text/plain", "the main loop has stalled\n".into()),
        "/readyz" if metrics.ready() => (StatusCode::OK, "text/plain", "ready\n".into()),
        "/readyz" => (StatusCode::SERVICE_UNAVAILABLE, "text/plain", "not ready\n".into()),
        _ => (StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    response
}
