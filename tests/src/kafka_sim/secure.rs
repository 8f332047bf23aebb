//! The simulator's listener as a `SASL_SSL` managed Kafka has it: TLS with the certificate the operator made, and
//! SCRAM-SHA-512 (RFC 5802, written here from the RFC, not from the operator's client) for the users of the
//! operator's users Secret. Until a connection has authenticated, only ApiVersions, SaslHandshake and
//! SaslAuthenticate are answered; anything else closes it, as Kafka does.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use kafka_protocol::messages::SaslHandshakeResponse;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest};
use kafka_protocol::protocol::StrBytes;
use ring::{digest, hmac, pbkdf2};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;

const MECHANISM: &str = "SCRAM-SHA-512";
const ITERATIONS: u32 = 4096;
const SALT: &[u8] = b"logpipe-simulator-salt";
const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
const ILLEGAL_SASL_STATE: i16 = 34;
const SASL_AUTHENTICATION_FAILED: i16 = 58;

/// What the simulator serves with once secured.
pub struct Secure {
    pub acceptor: tokio_rustls::TlsAcceptor,
    /// User name to password.
    pub users: BTreeMap<String, String>,
}

impl Secure {
    pub fn new(cert_pem: &str, key_pem: &str, users: BTreeMap<String, String>) -> Arc<Self> {
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(cert_pem.as_bytes()).collect::<Result<_, _>>().expect("certificate PEM");
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key PEM");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("certificate and key");
        Arc::new(Self { acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)), users })
    }
}

/// One connection's way through authentication.
pub enum Auth {
    /// A plaintext simulator: nothing to prove.
    Open,
    Start,
    Handshaken,
    Challenged {
        user: String,
        first_bare: String,
        server_first: String,
        nonce: String,
    },
    Done(String),
    Failed,
}

impl Auth {
    pub fn allows_requests(&self) -> bool {
        matches!(self, Auth::Open | Auth::Done(_))
    }

    pub fn handshake(&mut self, request: SaslHandshakeRequest) -> SaslHandshakeResponse {
        let mut response = SaslHandshakeResponse::default();
        response.mechanisms = vec![StrBytes::from_static_str(MECHANISM)];
        response.error_code = match self {
            Auth::Start if request.mechanism.as_str() == MECHANISM => {
                *self = Auth::Handshaken;
                0
            }
            Auth::Start => UNSUPPORTED_SASL_MECHANISM,
            _ => ILLEGAL_SASL_STATE,
        };
        response
    }

    pub fn authenticate(&mut self, request: SaslAuthenticateRequest, secure: &Secure) -> SaslAuthenticateResponse {
        let message = String::from_utf8_lossy(&request.auth_bytes).into_owned();
        let step = match std::mem::replace(self, Auth::Failed) {
            Auth::Handshaken => self.challenge(&message, secure),
            Auth::Challenged { user, first_bare, server_first, nonce } => {
                let password = secure.users.get(&user).cloned().unwrap_or_default();
                match verify(&password, &first_bare, &server_first, &nonce, &message) {
                    Ok(server_final) => {
                        *self = Auth::Done(user);
                        Ok(server_final)
                    }
                    Err(why) => Err((SASL_AUTHENTICATION_FAILED, why)),
                }
            }
            _ => Err((ILLEGAL_SASL_STATE, "SaslAuthenticate out of turn".to_owned())),
        };
        let mut response = SaslAuthenticateResponse::default();
        match step {
            Ok(reply) => response.auth_bytes = bytes::Bytes::from(reply),
            Err((code, why)) => {
                response.error_code = code;
                response.error_message = Some(StrBytes::from_string(why));
            }
        }
        response
    }

    fn challenge(&mut self, client_first: &str, secure: &Secure) -> Result<String, (i16, String)> {
        let refuse = |why: &str| Err((SASL_AUTHENTICATION_FAILED, why.to_owned()));
        let Some(first_bare) = client_first.strip_prefix("n,,") else { return refuse("no gs2 header") };
        let field = |k: &str| first_bare.split(',').find_map(|p| p.strip_prefix(k)?.strip_prefix('='));
        let (Some(user), Some(client_nonce)) = (field("n"), field("r")) else { return refuse("no user or nonce") };
        if !secure.users.contains_key(user) {
            return refuse("unknown user");
        }
        let nonce = format!("{client_nonce}simulator");
        let server_first = format!("r={nonce},s={},i={ITERATIONS}", B64.encode(SALT));
        *self = Auth::Challenged {
            user: user.to_owned(),
            first_bare: first_bare.to_owned(),
            server_first: server_first.clone(),
            nonce,
        };
        Ok(server_first)
    }
}

/// Checks the client's proof with what the server keeps of a password (the stored and server keys), and answers
/// with the server's signature.
fn verify(
    password: &str,
    first_bare: &str,
    server_first: &str,
    nonce: &str,
    client_final: &str,
) -> Result<String, String> {
    let without_proof = format!("c={},r={nonce}", B64.encode("n,,"));
    let proof = client_final
        .strip_prefix(&without_proof)
        .and_then(|rest| rest.strip_prefix(",p="))
        .and_then(|p| B64.decode(p).ok())
        .ok_or("malformed client-final message")?;
    let mut salted = [0u8; 64];
    let iterations = NonZeroU32::new(ITERATIONS).expect("nonzero");
    pbkdf2::derive(pbkdf2::PBKDF2_HMAC_SHA512, iterations, SALT, password.as_bytes(), &mut salted);
    let salted = hmac::Key::new(hmac::HMAC_SHA512, &salted);
    let stored_key = digest::digest(&digest::SHA512, hmac::sign(&salted, b"Client Key").as_ref());
    let server_key = hmac::sign(&salted, b"Server Key");
    let auth_message = format!("{first_bare},{server_first},{without_proof}");
    let signature = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA512, stored_key.as_ref()), auth_message.as_bytes());
    let client_key: Vec<u8> = proof.iter().zip(signature.as_ref()).map(|(p, s)| p ^ s).collect();
    if digest::digest(&digest::SHA512, &client_key).as_ref() != stored_key.as_ref() {
        return Err("wrong password".into());
    }
    let server_signature = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA512, server_key.as_ref()), auth_message.as_bytes());
    Ok(format!("v={}", B64.encode(server_signature.as_ref())))
}
