//! HTTPS for the API server: `POST /validate-logpipeline` with an AdmissionReview. The certificate can be swapped
//! while serving (a renewal), since each TLS handshake asks [`Certificate`] for the current one.

use super::review::{respond, verdict, Verdict};
use super::AdmissionError;
use crate::metrics::Metrics;
use crate::validate::Defaults;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::header::CONTENT_TYPE;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use kube::core::DynamicObject;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::convert::Infallible;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;

pub const PATH: &str = "/validate-logpipeline";
/// The API server sends the object and the old one, each at most its 3 MiB request limit.
const MAX_BODY: usize = 8 << 20;
/// A connection that has not sent its request by then holds no task longer: the API server's own timeout for
/// the webhook is seconds.
const SLOW_CLIENT: Duration = Duration::from_secs(10);

/// What the webhook judges by: the operator's defaults and policy, and the namespace it watches; and where it
/// counts its verdicts.
#[derive(Clone)]
pub struct Judge {
    pub defaults: Defaults,
    pub scope: Option<String>,
    pub metrics: Arc<Metrics>,
}

/// The serving certificate of the moment.
#[derive(Debug)]
pub struct Certificate(RwLock<Arc<CertifiedKey>>);

impl Certificate {
    pub fn new(cert_pem: &str, key_pem: &str) -> Result<Self, AdmissionError> {
        Ok(Self(RwLock::new(certified(cert_pem, key_pem)?)))
    }

    pub fn replace(&self, cert_pem: &str, key_pem: &str) -> Result<(), AdmissionError> {
        let key = certified(cert_pem, key_pem)?;
        *self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = key;
        Ok(())
    }
}

impl ResolvesServerCert for Certificate {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner())))
    }
}

fn certified(cert_pem: &str, key_pem: &str) -> Result<Arc<CertifiedKey>, AdmissionError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())?;
    Ok(Arc::new(CertifiedKey::from_der(chain, key, &rustls::crypto::ring::default_provider())?))
}

/// Serves until the listener fails.
pub async fn serve(listener: TcpListener, certificate: Arc<Certificate>, judge: Arc<Judge>) -> std::io::Result<()> {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_no_client_auth()
        .with_cert_resolver(certificate);
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    loop {
        let (stream, peer) = listener.accept().await?;
        let (acceptor, judge) = (acceptor.clone(), Arc::clone(&judge));
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(SLOW_CLIENT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => return tracing::debug!(%error, %peer, "admission TLS handshake"),
                Err(_) => return tracing::debug!(%peer, "admission TLS handshake timed out"),
            };
            let service = service_fn(move |req| {
                let judge = Arc::clone(&judge);
                async move { Ok::<_, Infallible>(handle(req, &judge).await) }
            });
            let mut http = http1::Builder::new();
            http.timer(TokioTimer::new()).header_read_timeout(SLOW_CLIENT);
            if let Err(error) = http.serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!(%error, %peer, "admission connection");
            }
        });
    }
}

async fn handle(req: Request<hyper::body::Incoming>, judge: &Judge) -> Response<Full<Bytes>> {
    if req.method() != Method::POST || req.uri().path() != PATH {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    }
    let body = match tokio::time::timeout(SLOW_CLIENT, Limited::new(req.into_body(), MAX_BODY).collect()).await {
        Ok(Ok(body)) => body.to_bytes(),
        Ok(Err(error)) => return plain(StatusCode::BAD_REQUEST, &format!("reading the request: {error}\n")),
        Err(_) => return plain(StatusCode::REQUEST_TIMEOUT, "the request body did not arrive in time\n"),
    };
    let response = match serde_json::from_slice::<AdmissionReview<DynamicObject>>(&body).map(AdmissionReview::try_into)
    {
        Ok(Ok(request)) => judged(&request, judge),
        Ok(Err(_)) => AdmissionResponse::invalid("an AdmissionReview without a request"),
        Err(error) => AdmissionResponse::invalid(format!("not an AdmissionReview: {error}")),
    };
    match serde_json::to_vec(&response.into_review()) {
        Ok(json) => {
            let mut answer = Response::new(Full::new(Bytes::from(json)));
            answer.headers_mut().insert(CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
            answer
        }
        Err(error) => plain(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()),
    }
}

fn judged(request: &AdmissionRequest<DynamicObject>, judge: &Judge) -> AdmissionResponse {
    let verdict = verdict(request, &judge.defaults, judge.scope.as_deref());
    judge.metrics.admission_review(verdict.label());
    let (namespace, name, user) =
        (request.namespace.as_deref().unwrap_or_default(), &request.name, &request.user_info.username);
    match &verdict {
        Verdict::Refused(invalid) => tracing::info!(namespace, name, ?user, %invalid, "refused a LogPipeline"),
        other => tracing::debug!(namespace, name, ?user, verdict = ?other, "admitted a LogPipeline"),
    }
    respond(request, &verdict)
}

fn plain(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text.to_owned())));
    *response.status_mut() = status;
    response
}
