//! Leader election against the real kube-apiserver: one holder at a time, hand-over on release and on expiry.

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, PostParams};
use kube::Api;
use logpipe_operator::leader::{Elector, LeaseConfig};
use std::time::Duration;

/// Long enough that a holder renewing every third of it survives a loaded machine's stalls (a 2 s lease lost
/// renewals to a busy apiserver while the rest of the suite ran).
const LEASE: Duration = Duration::from_secs(5);

fn config(namespace: &str, identity: &str) -> LeaseConfig {
    LeaseConfig {
        namespace: namespace.into(),
        name: "logpipe-operator".into(),
        identity: identity.into(),
        duration: LEASE,
    }
}

#[tokio::test]
async fn one_holder_at_a_time() {
    let client = logpipe_tests::kube_client().await;
    let ns = logpipe_tests::unique_name("lease");
    let namespace: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).unwrap();
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &namespace).await.unwrap();
    let a = Elector::new(client.clone(), config(&ns, "a"));
    let b = Elector::new(client.clone(), config(&ns, "b"));
    a.acquire().await.unwrap();

    // While a renews, b cannot take the lease: a holds it for as long as b tries (several lease durations).
    let contest = tokio::select! {
        _ = b.acquire() => "b acquired a held lease",
        lost = a.hold() => if matches!(lost, logpipe_operator::leader::LeaderError::Lost(_)) { "a lost its lease" } else { "a failed" },
        _ = tokio::time::sleep(LEASE * 2) => "held",
    };
    assert_eq!(contest, "held");

    // Released, it passes to b at once: within b's next attempt, well before the lease could have expired.
    a.release().await;
    tokio::time::timeout(LEASE * 3 / 4, b.acquire()).await.expect("b takes a released lease").unwrap();

    // b stops renewing (a crash): a takes over once the lease expires, and b learns it lost on its next renewal.
    tokio::time::timeout(LEASE * 3, a.acquire()).await.expect("a takes an expired lease").unwrap();
    let lost = tokio::time::timeout(LEASE * 3, b.hold()).await.expect("b notices");
    assert!(matches!(lost, logpipe_operator::leader::LeaderError::Lost(_)), "{lost}");
    Api::<Namespace>::all(client).delete(&ns, &DeleteParams::default()).await.unwrap();
}
