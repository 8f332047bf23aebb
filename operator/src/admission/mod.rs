//! The validating admission webhook: a LogPipeline that the operator would refuse is refused at `kubectl apply`,
//! by the same rules and policy ([`review`]). Every replica serves it, leader or not ([`server`]), with a
//! certificate kept in a Secret ([`secret`]) that a CA of the operator's making signed ([`crate::certs`]).

mod review;
mod secret;
mod server;

pub use crate::certs::{Material, Renewal};
pub use review::{respond, verdict, Verdict};
pub use secret::{ensure, publish_ca, Settings};
pub use server::{serve, Certificate, Judge, PATH};

use crate::metrics::Metrics;
use kube::Client;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// How often each replica looks at the Secret: a renewal by another replica reaches every replica within this.
const REFRESH: Duration = Duration::from_secs(300);
/// The webhook's CA; the API server alone trusts it.
pub const PROFILE: crate::certs::Profile =
    crate::certs::Profile { ca_name: "logpipe-operator admission CA", client_auth: false };

#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    #[error(transparent)]
    Certificate(#[from] crate::certs::CertError),
    #[error("reading a PEM certificate or key: {0}")]
    Pem(#[from] rustls::pki_types::pem::Error),
    #[error("loading the serving certificate: {0}")]
    Tls(#[from] rustls::Error),
    #[error("{what}: {source}")]
    Kube {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("{0} changed under every attempt to write it")]
    Contended(String),
}

impl AdmissionError {
    fn kube(what: String, source: kube::Error) -> Self {
        Self::Kube { what, source }
    }
}

/// Makes or reads the certificates, publishes the CA, and serves on `listener`; then keeps the certificate and
/// the CA bundle current in the background. Errors before serving are returned: without its certificate the
/// webhook cannot answer, and the API server would refuse every LogPipeline.
pub async fn start(
    client: Client,
    settings: Settings,
    listener: TcpListener,
    judge: Judge,
) -> Result<(), AdmissionError> {
    let material = refresh(&client, &settings).await?;
    let certificate = Arc::new(Certificate::new(&material.cert, &material.key)?);
    judge.metrics.set_certificate_expiry(material.not_after.timestamp());
    let metrics = Arc::clone(&judge.metrics);
    tokio::spawn(keep_current(client, settings, Arc::clone(&certificate), material, metrics));
    tokio::spawn(async move {
        if let Err(error) = serve(listener, certificate, Arc::new(judge)).await {
            tracing::error!(%error, "the admission webhook stopped serving");
        }
    });
    Ok(())
}

async fn refresh(client: &Client, settings: &Settings) -> Result<Material, AdmissionError> {
    let material = ensure(client, settings, chrono::Utc::now()).await?;
    if let Some(configuration) = &settings.configuration {
        if publish_ca(client, configuration, &material.ca_cert).await? {
            tracing::info!(%configuration, "published the admission CA");
        }
    }
    Ok(material)
}

async fn keep_current(
    client: Client,
    settings: Settings,
    certificate: Arc<Certificate>,
    mut serving: Material,
    metrics: Arc<Metrics>,
) {
    loop {
        tokio::time::sleep(REFRESH).await;
        let outcome = match refresh(&client, &settings).await {
            Ok(material) if material.cert == serving.cert => Ok(()),
            Ok(material) => certificate.replace(&material.cert, &material.key).map(|()| serving = material),
            Err(error) => Err(error),
        };
        metrics.set_certificate_expiry(serving.not_after.timestamp());
        if let Err(error) = outcome {
            tracing::warn!(%error, "keeping the admission webhook's certificate current");
        }
    }
}
