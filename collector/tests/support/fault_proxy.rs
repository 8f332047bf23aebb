//! An HTTP proxy in front of the Elasticsearch-API server that injects what a loaded cluster does: slow bulk
//! requests, whole requests failing with 500 or 429, 413 for large requests, 400 for requests holding a marked
//! document, and single documents answered 429 or 503 (those are not forwarded, as a real cluster would not have
//! indexed them). It can also speak HTTPS with a certificate from a test's own CA, and answer the ILM API that the
//! test server lacks.

use bytes::Bytes;
use elasticsearch::http::transport::Transport;
use elasticsearch::http::{headers::HeaderMap, Method};
use elasticsearch::{BulkParts, Elasticsearch};
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    pub latency: Duration,
    /// Probability a bulk request is answered 500 without being forwarded.
    pub request_500: f64,
    /// Probability a bulk request is answered 429 without being forwarded.
    pub request_429: f64,
    /// Bulk requests with more documents than this are answered 413 (0: never).
    pub too_large_over: usize,
    /// Probability each document is answered 429 or 503 and not forwarded.
    pub document: f64,
    /// Every request without exactly this `Authorization` header is answered 401, as a secured cluster does.
    pub authorization: Option<&'static str>,
    /// Bulk requests holding this text are refused whole with 400, as Elasticsearch refuses a body it cannot read.
    pub poison: Option<&'static str>,
    /// Answer the ILM API, which the test server lacks, as Elasticsearch does, keeping each policy put.
    pub ilm: bool,
}

#[derive(Debug, Default)]
pub struct FaultStats {
    pub bulk_requests: AtomicU64,
    pub whole_500: AtomicU64,
    pub whole_429: AtomicU64,
    pub too_large: AtomicU64,
    pub document_faults: AtomicU64,
    pub unauthorized: AtomicU64,
    pub poisoned: AtomicU64,
    /// (name, body) of each ILM policy put.
    pub ilm_policies: Mutex<Vec<(String, Value)>>,
}

pub struct FaultProxy {
    pub url: String,
    pub stats: Arc<FaultStats>,
    _runtime: tokio::runtime::Runtime,
}

struct State {
    upstream: Elasticsearch,
    transport: Transport,
    faults: Faults,
    stats: Arc<FaultStats>,
    rng: Mutex<u64>,
}

impl State {
    fn chance(&self, p: f64) -> bool {
        let mut x = self.rng.lock().unwrap();
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        (*x % 10_000) as f64 / 10_000.0 < p
    }
}

/// A certificate authority made for one test, and a server certificate it signed for 127.0.0.1.
pub struct TestCa {
    pub ca_pem: String,
    server: Arc<rustls::ServerConfig>,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, name);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().unwrap();
        let mut leaf = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        leaf.subject_alt_names.push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
        leaf.extended_key_usages.push(rcgen::ExtendedKeyUsagePurpose::ServerAuth);
        let cert = leaf.signed_by(&key, &issuer).unwrap();
        let key = rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der());
        let server = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key.into())
            .unwrap();
        Self { ca_pem: ca_cert.pem(), server: Arc::new(server) }
    }
}

impl FaultProxy {
    pub fn start(upstream: &str, faults: Faults, seed: u64) -> Self {
        Self::serve(upstream, faults, seed, None)
    }

    /// The proxy speaking HTTPS, with a certificate `ca` signed.
    pub fn start_tls(upstream: &str, faults: Faults, seed: u64, ca: &TestCa) -> Self {
        Self::serve(upstream, faults, seed, Some(tokio_rustls::TlsAcceptor::from(Arc::clone(&ca.server))))
    }

    fn serve(upstream: &str, faults: Faults, seed: u64, tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{}", listener.local_addr().unwrap());
        let stats = Arc::new(FaultStats::default());
        let state = Arc::new(State {
            upstream: Elasticsearch::new(Transport::single_node(upstream).unwrap()),
            transport: Transport::single_node(upstream).unwrap(),
            faults,
            stats: Arc::clone(&stats),
            rng: Mutex::new(seed | 1),
        });
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let state = Arc::clone(&state);
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        // A client that does not trust the certificate ends the handshake; nothing to serve.
                        Some(tls) => {
                            if let Ok(stream) = tls.accept(stream).await {
                                connection(state, stream).await;
                            }
                        }
                        None => connection(state, stream).await,
                    }
                });
            }
        });
        Self { url, stats, _runtime: runtime }
    }
}

async fn connection<S>(state: Arc<State>, stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| handle(Arc::clone(&state), req));
    let io = hyper_util::rt::TokioIo::new(stream);
    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
}

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert("content-type", "application/json".parse().unwrap());
    r
}

async fn handle(state: Arc<State>, req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    if let Some(expected) = state.faults.authorization {
        if parts.headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected) {
            state.stats.unauthorized.fetch_add(1, Ordering::Relaxed);
            let reason = "unable to authenticate user for REST request";
            return Ok(reply(
                StatusCode::UNAUTHORIZED,
                json!({"error": {"type": "security_exception", "reason": reason}, "status": 401}),
            ));
        }
    }
    if let Some(name) = parts.uri.path().strip_prefix("/_ilm/policy/").filter(|_| state.faults.ilm) {
        let policy = serde_json::from_slice(&body).unwrap_or(Value::Null);
        state.stats.ilm_policies.lock().unwrap().push((name.to_owned(), policy));
        return Ok(reply(StatusCode::OK, json!({"acknowledged": true})));
    }
    if parts.uri.path() != "/_bulk" {
        let method = match parts.method.as_str() {
            "PUT" => Method::Put,
            "POST" => Method::Post,
            "DELETE" => Method::Delete,
            "HEAD" => Method::Head,
            _ => Method::Get,
        };
        let body = (!body.is_empty()).then(|| body.to_vec());
        let response =
            state.transport.send::<Vec<u8>, ()>(method, parts.uri.path(), HeaderMap::new(), None, body, None).await;
        return Ok(match response {
            Ok(r) => {
                let status = StatusCode::from_u16(r.status_code().as_u16()).unwrap();
                reply(status, r.json::<Value>().await.unwrap_or(Value::Null))
            }
            Err(e) => reply(StatusCode::BAD_GATEWAY, json!({"error": e.to_string()})),
        });
    }
    Ok(bulk(&state, body).await)
}

async fn bulk(state: &State, body: Bytes) -> Response<Full<Bytes>> {
    let (f, s) = (&state.faults, &state.stats);
    s.bulk_requests.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep(f.latency).await;
    let lines: Vec<Bytes> = body.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(Bytes::copy_from_slice).collect();
    let docs = lines.len() / 2;
    if state.chance(f.request_500) {
        s.whole_500.fetch_add(1, Ordering::Relaxed);
        return reply(StatusCode::INTERNAL_SERVER_ERROR, json!({"error": "injected"}));
    }
    if state.chance(f.request_429) {
        s.whole_429.fetch_add(1, Ordering::Relaxed);
        return reply(StatusCode::TOO_MANY_REQUESTS, json!({"error": "injected"}));
    }
    if f.poison.is_some_and(|p| memchr::memmem::find(&body, p.as_bytes()).is_some()) {
        s.poisoned.fetch_add(1, Ordering::Relaxed);
        let error = json!({"type": "x_content_parse_exception", "reason": "injected: unreadable bulk line"});
        return reply(StatusCode::BAD_REQUEST, json!({"error": error, "status": 400}));
    }
    if f.too_large_over > 0 && docs > f.too_large_over {
        s.too_large.fetch_add(1, Ordering::Relaxed);
        return reply(StatusCode::PAYLOAD_TOO_LARGE, json!({"error": "injected"}));
    }
    let faulted: Vec<bool> = (0..docs).map(|_| state.chance(f.document)).collect();
    let forward: Vec<Bytes> =
        lines.chunks(2).zip(&faulted).filter(|(_, &x)| !x).flat_map(|(pair, _)| pair.iter().cloned()).collect();
    let mut upstream_items = Vec::new().into_iter();
    if !forward.is_empty() {
        let response = state.upstream.bulk(BulkParts::None).body(forward).send().await;
        let Ok(response) = response else {
            return reply(StatusCode::BAD_GATEWAY, json!({"error": "upstream"}));
        };
        let value: Value = response.json().await.unwrap_or(Value::Null);
        upstream_items = value["items"].as_array().cloned().unwrap_or_default().into_iter();
    }
    let mut items = Vec::with_capacity(docs);
    for (i, x) in faulted.into_iter().enumerate() {
        if x {
            s.document_faults.fetch_add(1, Ordering::Relaxed);
            let status = if i % 2 == 0 { 429 } else { 503 };
            items.push(json!({"create": {"status": status, "error": {"type": "injected", "reason": "injected"}}}));
        } else {
            items.push(upstream_items.next().unwrap_or(Value::Null));
        }
    }
    reply(StatusCode::OK, json!({"errors": true, "items": items}))
}
