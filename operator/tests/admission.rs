//! The admission webhook's certificates against the real kube-apiserver: replicas starting together share one
//! Secret, a renewal keeps the CA, the CA reaches every webhook of the configuration, and a renewed certificate is
//! served without a restart. (That the API server calls the webhook and refuses what it refuses is in chart.rs.)

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use logpipe_operator::admission::{self, Certificate, Judge, Settings};
use logpipe_operator::validate::Defaults;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;
use std::sync::Arc;

fn settings(namespace: &str, hosts: &[&str], configuration: Option<String>) -> Settings {
    Settings {
        namespace: namespace.to_owned(),
        secret: "webhook-tls".to_owned(),
        configuration,
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
    }
}

async fn namespace(client: &Client) -> String {
    let name = logpipe_tests::unique_name("admission");
    let object: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &object).await.unwrap();
    name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_one_secret_and_a_renewal_keeps_the_ca() {
    let client = logpipe_tests::kube_client().await;
    let ns = namespace(&client).await;
    let first = settings(&ns, &["hook.example.svc"], None);
    let now = chrono::Utc::now();
    let (a, b, c) = tokio::join!(
        admission::ensure(&client, &first, now),
        admission::ensure(&client, &first, now),
        admission::ensure(&client, &first, now),
    );
    let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
    // Whichever order the API server takes the three in, the later ones read what the first wrote.
    assert!(a == b && b == c, "three replicas starting together serve one certificate");
    let stored = Api::<Secret>::namespaced(client.clone(), &ns).get("webhook-tls").await.unwrap();
    assert_eq!(stored.data.unwrap()["tls.crt"].0, a.cert.as_bytes());

    let moved = settings(&ns, &["hook.example.svc", "127.0.0.1"], None);
    let renewed = admission::ensure(&client, &moved, now).await.unwrap();
    assert_eq!((&renewed.ca_cert, &renewed.ca_key), (&a.ca_cert, &a.ca_key), "the CA the API server trusts stays");
    assert_ne!(renewed.cert, a.cert);
    assert_eq!(renewed.hosts, moved.hosts);
    assert_eq!(admission::ensure(&client, &moved, now).await.unwrap(), renewed, "nothing more to renew");
    let a_year_on = now + chrono::Duration::days(350);
    let expiring = admission::ensure(&client, &moved, a_year_on).await.unwrap();
    assert!(expiring.not_after > renewed.not_after && expiring.ca_cert == a.ca_cert, "renewed before its end");
    let _ = Api::<Namespace>::all(client).delete(&ns, &DeleteParams::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ca_reaches_every_webhook_of_the_configuration() {
    let client = logpipe_tests::kube_client().await;
    let name = logpipe_tests::unique_name("admission");
    // Rules for a resource nobody has: the configuration never stands in the way of other tests.
    let webhook = |n: &str| {
        json!({
            "name": format!("{n}.example.invalid"),
            "clientConfig": {"url": "https://127.0.0.1:1/validate"},
            "rules": [{"apiGroups": ["example.invalid"], "apiVersions": ["*"], "operations": ["CREATE"], "resources": ["nothing"]}],
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None"
        })
    };
    let configuration: ValidatingWebhookConfiguration =
        serde_json::from_value(json!({"metadata": {"name": name}, "webhooks": [webhook("one"), webhook("two")]}))
            .unwrap();
    let api = Api::<ValidatingWebhookConfiguration>::all(client.clone());
    api.create(&PostParams::default(), &configuration).await.unwrap();

    assert!(admission::publish_ca(&client, &name, "CA ONE\n").await.unwrap());
    assert!(!admission::publish_ca(&client, &name, "CA ONE\n").await.unwrap(), "already published");
    assert!(admission::publish_ca(&client, &name, "CA TWO\n").await.unwrap());
    let webhooks = api.get(&name).await.unwrap().webhooks.unwrap();
    assert_eq!(webhooks.len(), 2, "the strategic merge keeps every webhook");
    for w in &webhooks {
        assert_eq!(w.client_config.ca_bundle.as_ref().unwrap().0, b"CA TWO\n", "{}", w.name);
        assert_eq!(w.client_config.url.as_deref(), Some("https://127.0.0.1:1/validate"), "the rest is untouched");
    }
    api.delete(&name, &DeleteParams::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_is_served_without_a_restart() {
    let now = chrono::Utc::now();
    let hosts = vec!["127.0.0.1".to_owned()];
    let first = admission::Material::generate(admission::PROFILE, &hosts, now).unwrap();
    let certificate = Arc::new(Certificate::new(&first.cert, &first.key).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let metrics = Arc::new(logpipe_operator::metrics::Metrics::default());
    let judge = Judge { defaults: Defaults::new("logpipe/collector:1"), scope: None, metrics };
    tokio::spawn(admission::serve(listener, Arc::clone(&certificate), Arc::new(judge)));

    assert_eq!(served(address, &first.ca_cert).await, pem_der(&first.cert));
    let renewed = first.renew(admission::PROFILE, &hosts, now).unwrap();
    certificate.replace(&renewed.cert, &renewed.key).unwrap();
    assert_eq!(served(address, &first.ca_cert).await, pem_der(&renewed.cert), "the next handshake gets the new one");
}

fn pem_der(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap().to_vec()
}

/// The certificate the server presents, verified against `ca` for 127.0.0.1.
async fn served(address: std::net::SocketAddr, ca: &str) -> Vec<u8> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let server = ServerName::try_from("127.0.0.1").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(server, stream).await.unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}
