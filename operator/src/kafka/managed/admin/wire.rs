//! One connection to one Kafka broker: TLS and SCRAM when the cluster asks for them, length-prefixed frames,
//! correlation ids, and the API versions both sides support, negotiated once at connect.

use super::scram::{self, ScramError};
use super::{Access, AdminError};
use bytes::{Buf, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslHandshakeRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// A plain or a TLS connection.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Stream for T {}

const CLIENT_ID: &str = "logpipe-operator";
/// Larger responses than this are refused rather than allocated: a metadata response of a big cluster is a few MiB.
const MAX_FRAME: usize = 64 << 20;
const UNSUPPORTED_VERSION: i16 = 35;

pub struct Wire {
    stream: Box<dyn Stream>,
    address: String,
    next_correlation: i32,
    /// Per API key, the highest version the broker supports.
    broker_max: HashMap<i16, (i16, i16)>,
    timeout: Duration,
}

impl Wire {
    pub async fn connect(address: &str, timeout: Duration, access: &Access) -> Result<Self, AdminError> {
        let timed_out = || AdminError::Timeout { address: address.into(), what: "connect" };
        let io = |source| AdminError::Io { address: address.into(), source };
        let tcp = tokio::time::timeout(timeout, TcpStream::connect(address)).await.map_err(|_| timed_out())?;
        let tcp = tcp.map_err(io)?;
        let stream: Box<dyn Stream> = match access {
            Access::Plaintext => Box::new(tcp),
            Access::SaslSsl { ca_pem, server_name, .. } => {
                let connector =
                    tls_connector(ca_pem).map_err(|reason| AdminError::Tls { address: address.into(), reason })?;
                let name = ServerName::try_from(server_name.clone()).map_err(|e| AdminError::Tls {
                    address: address.into(),
                    reason: format!("{server_name:?}: {e}"),
                })?;
                let handshake = tokio::time::timeout(timeout, connector.connect(name, tcp));
                Box::new(handshake.await.map_err(|_| timed_out())?.map_err(io)?)
            }
        };
        let mut conn =
            Self { stream, address: address.into(), next_correlation: 1, broker_max: HashMap::new(), timeout };
        conn.negotiate().await?;
        if let Access::SaslSsl { username, password, .. } = access {
            conn.authenticate(username, password).await?;
        }
        Ok(conn)
    }

    /// SCRAM-SHA-512 over SaslHandshake v1 and SaslAuthenticate: the server proves it knows the password too.
    async fn authenticate(&mut self, username: &str, password: &str) -> Result<(), AdminError> {
        let mechanism = scram::SHA512;
        let mut handshake = SaslHandshakeRequest::default();
        handshake.mechanism = StrBytes::from_static_str(mechanism.name);
        let response = self.call(&handshake).await?;
        if response.error_code != 0 {
            return Err(self.broker_error("SaslHandshake", response.error_code, None));
        }
        let nonce = scram::nonce().ok_or_else(|| self.sasl_error(ScramError::Refused("no random nonce".into())))?;
        let client = scram::Client::new(mechanism, username, &nonce);
        let server_first = self.sasl_round(client.first_message()).await?;
        let last = client.answer(password, &server_first).map_err(|e| self.sasl_error(e))?;
        let server_final = self.sasl_round(last.message.clone()).await?;
        last.verify(&server_final).map_err(|e| self.sasl_error(e))
    }

    async fn sasl_round(&mut self, message: String) -> Result<String, AdminError> {
        let mut request = SaslAuthenticateRequest::default();
        request.auth_bytes = bytes::Bytes::from(message);
        let response = self.call(&request).await?;
        if response.error_code != 0 {
            return Err(self.broker_error("SaslAuthenticate", response.error_code, response.error_message.as_ref()));
        }
        String::from_utf8(response.auth_bytes.to_vec())
            .map_err(|_| self.sasl_error(ScramError::Malformed("bytes that are not UTF-8".into())))
    }

    fn sasl_error(&self, source: ScramError) -> AdminError {
        AdminError::Sasl { address: self.address.clone(), source }
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// ApiVersions at the newest version we know, falling back to v0, which every broker answers.
    async fn negotiate(&mut self) -> Result<(), AdminError> {
        let mut request = ApiVersionsRequest::default();
        request.client_software_name = StrBytes::from_static_str(CLIENT_ID);
        request.client_software_version = StrBytes::from_static_str(env!("CARGO_PKG_VERSION"));
        let mut response = self.exchange(&request, 3).await?;
        if response.error_code == UNSUPPORTED_VERSION {
            response = self.exchange(&request, 0).await?;
        }
        if response.error_code != 0 {
            return Err(self.broker_error("ApiVersions", response.error_code, None));
        }
        self.broker_max = response.api_keys.iter().map(|k| (k.api_key, (k.min_version, k.max_version))).collect();
        Ok(())
    }

    /// Sends `request` at the newest version both sides support.
    pub async fn call<R: Request>(&mut self, request: &R) -> Result<R::Response, AdminError> {
        let name = api_name(R::KEY);
        let (min, max) = self.broker_max.get(&R::KEY).copied().ok_or(AdminError::Unsupported { api: name })?;
        let version = R::VERSIONS.max.min(max);
        if version < R::VERSIONS.min.max(min) {
            return Err(AdminError::Unsupported { api: name });
        }
        self.exchange(request, version).await
    }

    async fn exchange<R: Request>(&mut self, request: &R, version: i16) -> Result<R::Response, AdminError> {
        let correlation = self.next_correlation;
        self.next_correlation = self.next_correlation.wrapping_add(1);
        let mut header = RequestHeader::default();
        header.request_api_key = R::KEY;
        header.request_api_version = version;
        header.correlation_id = correlation;
        header.client_id = Some(StrBytes::from_static_str(CLIENT_ID));
        let api = api_name(R::KEY);
        let encode = |e| AdminError::Encode { api, reason: format!("{e:#}") };
        let mut body = BytesMut::new();
        header.encode(&mut body, R::header_version(version)).map_err(encode)?;
        request.encode(&mut body, version).map_err(encode)?;
        let io = |source| AdminError::Io { address: self.address.clone(), source };
        let mut frame = BytesMut::with_capacity(body.len() + 4);
        frame.extend_from_slice(&(body.len() as i32).to_be_bytes());
        frame.extend_from_slice(&body);
        let mut response = tokio::time::timeout(self.timeout, async {
            self.stream.write_all(&frame).await?;
            let len = self.stream.read_i32().await?;
            let len = usize::try_from(len).ok().filter(|&l| l <= MAX_FRAME).ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, format!("response frame of {len} bytes"))
            })?;
            let mut buf = vec![0u8; len];
            self.stream.read_exact(&mut buf).await?;
            Ok::<_, std::io::Error>(bytes::Bytes::from(buf))
        })
        .await
        .map_err(|_| AdminError::Timeout { address: self.address.clone(), what: api })?
        .map_err(io)?;
        let decode = |e| AdminError::Decode { api, reason: format!("{e:#}") };
        let header = ResponseHeader::decode(&mut response, R::Response::header_version(version)).map_err(decode)?;
        if header.correlation_id != correlation {
            let reason = format!("correlation id {} for request {correlation}", header.correlation_id);
            return Err(AdminError::Decode { api, reason });
        }
        let decoded = R::Response::decode(&mut response, version).map_err(decode)?;
        if response.has_remaining() {
            let reason = format!("{} bytes left over at version {version}", response.remaining());
            return Err(AdminError::Decode { api, reason });
        }
        Ok(decoded)
    }

    pub fn broker_error(&self, api: &'static str, code: i16, message: Option<&StrBytes>) -> AdminError {
        AdminError::Broker {
            address: self.address.clone(),
            api,
            code,
            message: message.map(|m| m.to_string()).unwrap_or_default(),
        }
    }
}

/// Trusts only the cluster's own CA.
fn tls_connector(ca_pem: &str) -> Result<tokio_rustls::TlsConnector, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.map_err(|e| format!("the CA: {e}"))?).map_err(|e| format!("the CA: {e}"))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

pub fn api_name(key: i16) -> &'static str {
    match ApiKey::try_from(key) {
        Ok(ApiKey::Metadata) => "Metadata",
        Ok(ApiKey::ApiVersions) => "ApiVersions",
        Ok(ApiKey::DescribeCluster) => "DescribeCluster",
        Ok(ApiKey::DescribeConfigs) => "DescribeConfigs",
        Ok(ApiKey::CreateTopics) => "CreateTopics",
        Ok(ApiKey::AlterPartitionReassignments) => "AlterPartitionReassignments",
        Ok(ApiKey::ListPartitionReassignments) => "ListPartitionReassignments",
        Ok(ApiKey::SaslHandshake) => "SaslHandshake",
        Ok(ApiKey::SaslAuthenticate) => "SaslAuthenticate",
        _ => "another API",
    }
}
