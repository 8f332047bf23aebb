//! Shared helpers for logpipe's cross-crate tests.
//!
//! Every test here runs against the real servers started by `scripts/testenv.sh up`. The environment is read from the
//! variables that script prints; a missing variable is a loud failure, never a skip.

pub mod kafka_sim;
pub mod node;
pub mod stack;

use std::future::Future;
use std::time::Duration;

/// The variables `scripts/testenv.sh env` prints.
pub const KAFKA_ENV: &str = "LOGPIPE_TEST_KAFKA";
pub const ELASTICSEARCH_ENV: &str = "LOGPIPE_TEST_ELASTICSEARCH";
pub const NOIDA_BIN_ENV: &str = "LOGPIPE_NOIDA_BIN";
pub const HELM_PYTHON_ENV: &str = "LOGPIPE_HELM_PYTHON";

fn required_env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{name} is not set: this test needs the servers of the test environment. \
             Run `scripts/test.sh`, or `eval \"$(scripts/testenv.sh up)\"` before `cargo test`."
        ),
    }
}

/// Bootstrap address of the Kafka-protocol broker on loopback.
pub fn kafka_bootstrap() -> String {
    required_env(KAFKA_ENV)
}

/// Base URL of the Elasticsearch-API server on loopback.
pub fn elasticsearch_url() -> String {
    required_env(ELASTICSEARCH_ENV)
}

/// Path of the noida-db binary, for tests that run a broker of their own (to stop and restart it).
pub fn noida_bin() -> String {
    required_env(NOIDA_BIN_ENV)
}

/// The Python interpreter that has Helm's engine (helm-python-sdk), for `scripts/chart.py`.
pub fn helm_python() -> String {
    required_env(HELM_PYTHON_ENV)
}

/// A client for the test kube-apiserver, from `KUBECONFIG`.
pub async fn kube_client() -> kube::Client {
    required_env("KUBECONFIG");
    kube::Client::try_default().await.expect("a kube client from KUBECONFIG (is the test apiserver up?)")
}

/// A name no other test run uses: tests share one set of servers, so every topic, index and namespace is unique.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{nanos:x}-{n}", std::process::id())
}

/// Polls `check` until it yields `Some`, failing the test with `what` after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    match stack::poll(what, timeout, check).await {
        Ok(v) => v,
        Err(e) => panic!("{e} (after {timeout:?})"),
    }
}

/// A copy of the test environment's kubeconfig, written into `dir`, that acts as the ServiceAccount
/// `namespace/account` (impersonation), so a process run with it has exactly that account's rights.
pub fn impersonating_kubeconfig(namespace: &str, account: &str, dir: &std::path::Path) -> std::path::PathBuf {
    let admin = std::fs::read_to_string(required_env("KUBECONFIG")).expect("reading KUBECONFIG");
    let mut config: serde_yaml::Value = serde_yaml::from_str(&admin).expect("KUBECONFIG is YAML");
    for user in config["users"].as_sequence_mut().expect("KUBECONFIG has users") {
        let user = user["user"].as_mapping_mut().expect("a user entry");
        user.insert("as".into(), format!("system:serviceaccount:{namespace}:{account}").into());
        let groups: Vec<serde_yaml::Value> = service_account_groups(namespace).into_iter().map(Into::into).collect();
        user.insert("as-groups".into(), groups.into());
    }
    let path = dir.join("kubeconfig");
    std::fs::write(&path, serde_yaml::to_string(&config).expect("YAML")).expect("writing the kubeconfig");
    path
}

/// The groups the API server gives every ServiceAccount of `namespace`.
pub fn service_account_groups(namespace: &str) -> Vec<String> {
    ["system:serviceaccounts".to_owned(), format!("system:serviceaccounts:{namespace}"), "system:authenticated".into()]
        .to_vec()
}
