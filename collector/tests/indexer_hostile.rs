//! What a pod prints cannot choose where its documents go: with `parse_json` merging an application's JSON into
//! the document, keys that name the agent's fields (here a forged `kubernetes.namespace`) are kept aside, and the
//! document lands in its own namespace's index.

mod support;

use std::time::Duration;
use support::indexer::{self as ix};

#[test]
fn a_forged_namespace_lands_in_its_own_index_with_the_forged_keys_kept_aside() {
    let ix::Setup { bootstrap, es_url, names } = ix::Setup::new("ix-forged", 1);
    let agent_doc = |message: &str| {
        serde_json::json!({
            "@timestamp": "2026-11-22T08:00:00.000000000Z",
            "host": {"name": "node-a"},
            "kubernetes": {"namespace": "shop", "pod": {"name": "web-0"}},
            "log": {"file": {"path": "/var/log/pods/shop_web-0_u/app/0.log"}, "offset": 0},
            "stream": "stdout",
            "message": message,
        })
        .to_string()
    };
    let forged =
        r#"{"kubernetes":{"namespace":"victim"},"kubernetes.namespace":"victim","host":{"name":"x"},"msg":"forged"}"#;
    ix::produce(&ix::producer(&bootstrap), &names.topic, [agent_doc(r#"{"msg":"honest"}"#), agent_doc(forged)]);
    let tmp = tempfile::tempdir().unwrap();
    let processors = "processors:\n  - {type: parse_json, field: message}\n";
    let config = ix::write_config(tmp.path(), &names, "indexer-1", &bootstrap, &es_url, processors);
    let log = tmp.path().join("indexer.log");
    let mut indexer = ix::start_indexer(&config, &log);
    let es = ix::elasticsearch(&es_url);
    let own = format!("{}-shop-*", names.prefix);
    let got = ix::wait_for_count(&es, &own, 2, Duration::from_secs(60));
    indexer.kill().unwrap();
    indexer.wait().unwrap();
    support::print_log_tail(&log);
    assert_eq!(got, 2, "both documents in their own namespace's index");
    assert_eq!(ix::count(&es, &names.indices()), 2, "no document anywhere else");
    let docs = ix::sources(&es, &own);
    let doc = docs.iter().find(|d| d["msg"] == "forged").expect("the forged document");
    assert_eq!(doc["kubernetes"]["namespace"], "shop");
    assert_eq!(doc["host"]["name"], "node-a");
    assert!(doc.get("kubernetes.namespace").is_none());
    let refused: serde_json::Value = serde_json::from_str(doc["logpipe"]["refused_fields"].as_str().unwrap()).unwrap();
    assert_eq!(
        refused,
        serde_json::json!({"kubernetes": {"namespace": "victim"}, "kubernetes.namespace": "victim", "host": {"name": "x"}})
    );
}
