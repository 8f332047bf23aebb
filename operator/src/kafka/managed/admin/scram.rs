//! The client side of SCRAM (RFC 5802, without channel binding, as Kafka speaks it): the first message, the
//! proof answering the server's salt and iteration count, and the check that the server knew the password too.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::{digest, hmac, pbkdf2};
use std::num::NonZeroU32;

/// Fewer iterations than Kafka's own minimum would only weaken the proof; more than this is a server stalling us.
const MIN_ITERATIONS: u32 = 4096;
const MAX_ITERATIONS: u32 = 1 << 20;
/// `n,,`: no channel binding, no authorization identity.
const GS2_HEADER: &str = "n,,";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    #[error("the server's SCRAM message {0:?} is malformed")]
    Malformed(String),
    #[error("the server's nonce does not extend ours")]
    Nonce,
    #[error("the server asks for {0} iterations")]
    Iterations(u32),
    #[error("the server refused the proof: {0}")]
    Refused(String),
    #[error("the server's signature is wrong: it does not know the password")]
    ServerSignature,
}

/// SCRAM-SHA-512 (the managed Kafka's mechanism), or SHA-256.
#[derive(Clone, Copy)]
pub struct Mechanism {
    hmac: hmac::Algorithm,
    pbkdf2: pbkdf2::Algorithm,
    digest: &'static digest::Algorithm,
    pub name: &'static str,
}

pub const SHA512: Mechanism = Mechanism {
    hmac: hmac::HMAC_SHA512,
    pbkdf2: pbkdf2::PBKDF2_HMAC_SHA512,
    digest: &digest::SHA512,
    name: "SCRAM-SHA-512",
};

pub const SHA256: Mechanism = Mechanism {
    hmac: hmac::HMAC_SHA256,
    pbkdf2: pbkdf2::PBKDF2_HMAC_SHA256,
    digest: &digest::SHA256,
    name: "SCRAM-SHA-256",
};

/// The exchange after the first message.
pub struct Client {
    mechanism: Mechanism,
    nonce: String,
    first_bare: String,
}

/// The proof, and the signature the server must answer with.
pub struct Final {
    pub message: String,
    server_signature: Vec<u8>,
}

impl Client {
    /// `nonce`: printable, without commas; fresh for every exchange.
    pub fn new(mechanism: Mechanism, username: &str, nonce: &str) -> Self {
        let name = username.replace('=', "=3D").replace(',', "=2C");
        Self { mechanism, nonce: nonce.to_owned(), first_bare: format!("n={name},r={nonce}") }
    }

    pub fn first_message(&self) -> String {
        format!("{GS2_HEADER}{}", self.first_bare)
    }

    pub fn answer(&self, password: &str, server_first: &str) -> Result<Final, ScramError> {
        let malformed = || ScramError::Malformed(server_first.to_owned());
        let field = |key: &str| {
            server_first.split(',').find_map(|part| part.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
        };
        let nonce = field("r").ok_or_else(malformed)?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(ScramError::Nonce);
        }
        let salt = B64.decode(field("s").ok_or_else(malformed)?).map_err(|_| malformed())?;
        let iterations: u32 = field("i").and_then(|i| i.parse().ok()).ok_or_else(malformed)?;
        let iterations = NonZeroU32::new(iterations)
            .filter(|i| (MIN_ITERATIONS..=MAX_ITERATIONS).contains(&i.get()))
            .ok_or(ScramError::Iterations(iterations))?;
        let m = self.mechanism;
        let mut salted = vec![0u8; m.digest.output_len()];
        pbkdf2::derive(m.pbkdf2, iterations, &salt, password.as_bytes(), &mut salted);
        let salted = hmac::Key::new(m.hmac, &salted);
        let client_key = hmac::sign(&salted, b"Client Key");
        let stored_key = digest::digest(m.digest, client_key.as_ref());
        let without_proof = format!("c={},r={nonce}", B64.encode(GS2_HEADER));
        let auth_message = format!("{},{server_first},{without_proof}", self.first_bare);
        let signature = hmac::sign(&hmac::Key::new(m.hmac, stored_key.as_ref()), auth_message.as_bytes());
        let proof: Vec<u8> = client_key.as_ref().iter().zip(signature.as_ref()).map(|(k, s)| k ^ s).collect();
        let server_key = hmac::sign(&salted, b"Server Key");
        let server_signature = hmac::sign(&hmac::Key::new(m.hmac, server_key.as_ref()), auth_message.as_bytes());
        Ok(Final {
            message: format!("{without_proof},p={}", B64.encode(proof)),
            server_signature: server_signature.as_ref().to_vec(),
        })
    }
}

impl Final {
    pub fn verify(&self, server_final: &str) -> Result<(), ScramError> {
        if let Some(error) = server_final.strip_prefix("e=") {
            return Err(ScramError::Refused(error.to_owned()));
        }
        let verifier = server_final
            .split(',')
            .find_map(|p| p.strip_prefix("v="))
            .and_then(|v| B64.decode(v).ok())
            .ok_or_else(|| ScramError::Malformed(server_final.to_owned()))?;
        // Not secret: a mismatch only tells the server it failed to prove itself.
        if verifier != self.server_signature {
            return Err(ScramError::ServerSignature);
        }
        Ok(())
    }
}

/// A nonce of 24 random bytes, base64: printable and comma-free.
pub fn nonce() -> Option<String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 24];
    ring::rand::SystemRandom::new().fill(&mut bytes).ok()?;
    Some(B64.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677, section 3: user `user`, password `pencil`.
    #[test]
    fn the_rfc_7677_exchange() {
        let client = Client::new(SHA256, "user", "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(client.first_message(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let last = client.answer("pencil", server_first).unwrap();
        assert_eq!(
            last.message,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        last.verify("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=").unwrap();
        assert_eq!(last.verify("v=AAAA").unwrap_err(), ScramError::ServerSignature);
        assert_eq!(last.verify("e=invalid-proof").unwrap_err(), ScramError::Refused("invalid-proof".into()));
    }

    #[test]
    fn hostile_server_messages_are_refused() {
        let client = Client::new(SHA512, "a=b,c", "abc");
        assert_eq!(client.first_message(), "n,,n=a=3Db=2Cc,r=abc");
        let cases = [
            ("r=xyz1,s=AAAA,i=4096", ScramError::Nonce),
            ("r=abc,s=AAAA,i=4096", ScramError::Nonce),
            ("r=abc1,s=AAAA,i=1", ScramError::Iterations(1)),
            ("r=abc1,s=AAAA,i=4294967295", ScramError::Iterations(u32::MAX)),
            ("r=abc1,i=4096", ScramError::Malformed("r=abc1,i=4096".into())),
            ("r=abc1,s=!!,i=4096", ScramError::Malformed("r=abc1,s=!!,i=4096".into())),
        ];
        for (server_first, want) in cases {
            assert_eq!(client.answer("pw", server_first).err(), Some(want), "{server_first}");
        }
    }
}
