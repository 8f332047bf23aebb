//! What the indexer trusts and installs at start, against the fault proxy in front of the Elasticsearch-API server:
//! HTTPS with a certificate from a private CA named by `elasticsearch.ca_file` (trusted; a certificate from another
//! CA is not), and the retention policy that `index.retention_days` asks for, referenced by the index template.
//! The test server has no ILM API, so the proxy answers that part as Elasticsearch does and keeps what was put.

mod support;

use elasticsearch::indices::IndicesGetIndexTemplateParts;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::fault_proxy::{FaultProxy, Faults, TestCa};
use support::indexer as ix;

const RECORDS: u64 = 200;

#[test]
fn a_private_ca_named_by_ca_file_is_trusted() {
    let tmp = tempfile::tempdir().unwrap();
    let ix::Setup { bootstrap, es_url, names } = ix::Setup::new("ix-tls", 1);
    let ca = TestCa::new("logpipe test CA");
    let proxy = FaultProxy::start_tls(&es_url, Faults::default(), 1, &ca);
    let config = with_ca_file(tmp.path(), &names, &bootstrap, &proxy.url, &ca);
    ix::produce(&ix::producer(&bootstrap), &names.topic, (0..RECORDS).map(ix::document));
    let log = tmp.path().join("indexer.log");
    let mut indexer = ix::start_indexer(&config, &log);
    let got = ix::wait_for_count(&ix::elasticsearch(&es_url), &names.indices(), RECORDS, Duration::from_secs(60));
    unsafe { libc::kill(indexer.id() as i32, libc::SIGTERM) };
    let status = indexer.wait().unwrap();
    support::print_log_tail(&log);
    assert!(status.success(), "indexer exited with {status}");
    assert_eq!(got, RECORDS);
    assert_eq!(ix::committed(&bootstrap, &names.group, &names.topic, 1), vec![RECORDS as i64]);
}

#[test]
fn a_certificate_from_another_ca_is_refused_and_nothing_is_consumed() {
    let tmp = tempfile::tempdir().unwrap();
    let ix::Setup { bootstrap, es_url, names } = ix::Setup::new("ix-tls-other", 1);
    let proxy = FaultProxy::start_tls(&es_url, Faults::default(), 1, &TestCa::new("the server's CA"));
    let config = with_ca_file(tmp.path(), &names, &bootstrap, &proxy.url, &TestCa::new("another CA"));
    ix::produce(&ix::producer(&bootstrap), &names.topic, (0..RECORDS).map(ix::document));
    let log = tmp.path().join("indexer.log");
    let mut indexer = ix::start_indexer(&config, &log);
    // Unreachable Elasticsearch is waited out at start, so the indexer keeps trying and says why.
    let deadline = Instant::now() + Duration::from_secs(60);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("Elasticsearch not ready") {
            break text;
        }
        assert!(indexer.try_wait().unwrap().is_none(), "the indexer exited: {text}");
        assert!(Instant::now() < deadline, "no word of the refused certificate: {text}");
        std::thread::sleep(Duration::from_millis(100));
    };
    indexer.kill().unwrap();
    indexer.wait().unwrap();
    assert!(text.to_lowercase().contains("certificate"), "the log names the certificate: {text}");
    assert_eq!(ix::count(&ix::elasticsearch(&es_url), &names.indices()), 0);
    let committed = ix::committed(&bootstrap, &names.group, &names.topic, 1);
    assert!(committed.iter().all(|&offset| offset < 0), "nothing committed: {committed:?}");
}

#[test]
fn retention_days_put_a_delete_policy_that_the_index_template_references() {
    let tmp = tempfile::tempdir().unwrap();
    let ix::Setup { bootstrap, es_url, names } = ix::Setup::new("ix-ilm", 1);
    let proxy = FaultProxy::start(&es_url, Faults { ilm: true, ..Faults::default() }, 1);
    let config = ix::write_config(tmp.path(), &names, "indexer-1", &bootstrap, &proxy.url, "");
    edit(&config, "  replicas: 0\n", "  retention_days: 7\n");
    ix::produce(&ix::producer(&bootstrap), &names.topic, (0..RECORDS).map(ix::document));
    let log = tmp.path().join("indexer.log");
    let mut indexer = ix::start_indexer(&config, &log);
    let es = ix::elasticsearch(&es_url);
    let got = ix::wait_for_count(&es, &names.indices(), RECORDS, Duration::from_secs(60));
    unsafe { libc::kill(indexer.id() as i32, libc::SIGTERM) };
    indexer.wait().unwrap();
    support::print_log_tail(&log);
    assert_eq!(got, RECORDS, "documents indexed under the template that names the policy");

    let object = format!("logpipe-{}", names.prefix);
    let policies = proxy.stats.ilm_policies.lock().unwrap().clone();
    let delete_after_a_week = json!({"policy": {"phases": {
        "hot": {"min_age": "0ms", "actions": {}},
        "delete": {"min_age": "7d", "actions": {"delete": {}}}
    }}});
    assert_eq!(policies, vec![(object.clone(), delete_after_a_week)]);
    let templates: Value = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let response = es.indices().get_index_template(IndicesGetIndexTemplateParts::Name(&object)).send().await;
        response.unwrap().json().await.unwrap()
    });
    let settings = &templates["index_templates"][0]["index_template"]["template"]["settings"];
    let lifecycle = settings.pointer("/index/lifecycle/name").or_else(|| settings.get("index.lifecycle.name"));
    assert_eq!(lifecycle, Some(&json!(object)), "{templates}");
}

/// The shared test config, pointed at an HTTPS `url`, trusting `ca`.
fn with_ca_file(dir: &Path, names: &ix::Names, bootstrap: &str, url: &str, ca: &TestCa) -> PathBuf {
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &ca.ca_pem).unwrap();
    let config = ix::write_config(dir, names, "indexer-1", bootstrap, url, "");
    edit(&config, "elasticsearch:\n", &format!("  ca_file: \"{}\"\n", ca_file.display()));
    config
}

/// Inserts `line` after the first occurrence of `after` in the YAML file at `path`.
fn edit(path: &Path, after: &str, line: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(after), "{after:?} in {text}");
    std::fs::write(path, text.replacen(after, &format!("{after}{line}"), 1)).unwrap();
}
