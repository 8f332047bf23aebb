//! The operator's admin client against a secured managed Kafka, played by the cluster simulator on loopback with
//! TLS and SCRAM-SHA-512 on (its server side written from RFC 5802, apart from the client): it connects only with
//! the cluster's CA, for the bootstrap Service's name, as a user whose password it knows, and never falls back to
//! plaintext.

use logpipe_operator::certs::{Material, Profile};
use logpipe_operator::kafka::managed::admin::{Access, Admin, AdminError};
use logpipe_tests::kafka_sim::KafkaSim;
use std::collections::BTreeMap;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(5);
const SERVICE: &str = "logs-kafka-bootstrap.team-a.svc";
const PROFILE: Profile = Profile { ca_name: "test Kafka CA", client_auth: true };

fn access(ca: &Material, server_name: &str, password: &str) -> Access {
    Access::SaslSsl {
        ca_pem: ca.ca_cert.clone(),
        server_name: server_name.into(),
        username: "operator".into(),
        password: password.into(),
    }
}

async fn secured_sim() -> (KafkaSim, Material) {
    let sim = KafkaSim::start([0, 1, 2], Duration::from_millis(100)).await;
    let hosts = vec![SERVICE.to_owned(), "*.logs-kafka.team-a.svc".to_owned()];
    let material = Material::generate(PROFILE, &hosts, chrono::Utc::now()).unwrap();
    let users =
        BTreeMap::from([("operator".to_owned(), "s3cret".to_owned()), ("collector".to_owned(), "c".to_owned())]);
    sim.secure(&material.cert, &material.key, users);
    (sim, material)
}

#[tokio::test]
async fn the_admin_client_reaches_a_secured_cluster_with_tls_and_scram() {
    let (sim, material) = secured_sim().await;
    let mut admin = Admin::connect(&sim.bootstrap(), TIMEOUT, &access(&material, SERVICE, "s3cret")).await.unwrap();
    assert_eq!(admin.cluster().await.unwrap().brokers.len(), 3, "requests flow once authenticated");
    admin.create_topic("logs", 3, 3, &[]).await.unwrap();
    assert_eq!(sim.state().authenticated, ["operator"]);
}

#[tokio::test]
async fn a_wrong_password_ca_or_name_and_plaintext_are_each_refused() {
    let (sim, material) = secured_sim().await;
    let other_ca = Material::generate(PROFILE, &[SERVICE.to_owned()], chrono::Utc::now()).unwrap();
    let cases = [
        ("a wrong password", access(&material, SERVICE, "guess")),
        ("another CA", access(&other_ca, SERVICE, "s3cret")),
        ("another name", access(&material, "evil.team-b.svc", "s3cret")),
        ("plaintext", Access::Plaintext),
    ];
    for (what, access) in cases {
        let error = Admin::connect(&sim.bootstrap(), TIMEOUT, &access).await.err();
        let Some(AdminError::Unreachable { last, .. }) = error else { panic!("{what}: connected") };
        let refused = match (what, *last) {
            ("a wrong password", AdminError::Broker { api, code, .. }) => api == "SaslAuthenticate" && code == 58,
            ("another CA" | "another name", AdminError::Io { source, .. }) => {
                source.to_string().contains("certificate") || source.to_string().contains("Certificate")
            }
            ("plaintext", AdminError::Io { .. } | AdminError::Decode { .. }) => true,
            (_, other) => panic!("{what}: {other}"),
        };
        assert!(refused, "{what}");
    }
    assert_eq!(sim.state().authenticated, Vec::<String>::new(), "no one got in");
}
