//! The Elasticsearch-API server works with the elasticsearch crate: bulk `create` with ids, per-item results, count.

use elasticsearch::http::transport::Transport;
use elasticsearch::params::Refresh;
use elasticsearch::{BulkOperation, BulkParts, CountParts, Elasticsearch};
use logpipe_tests::{elasticsearch_url, unique_name};
use serde_json::{json, Value};

#[tokio::test]
async fn bulk_create_then_count() {
    let client = Elasticsearch::new(Transport::single_node(&elasticsearch_url()).unwrap());
    let index = unique_name("smoke");
    let ops: Vec<BulkOperation<Value>> = (0..5)
        .map(|i| BulkOperation::create(json!({"message": format!("line {i}")})).id(format!("id-{i}")).into())
        .collect();
    let response = client.bulk(BulkParts::Index(&index)).refresh(Refresh::True).body(ops).send().await.unwrap();
    assert!(response.status_code().is_success());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errors"], json!(false), "{body}");
    assert_eq!(body["items"].as_array().unwrap().len(), 5);

    // A second create of an existing id is a per-item 409, which the indexer will treat as "already indexed".
    let again: Vec<BulkOperation<Value>> = vec![BulkOperation::create(json!({"message": "dup"})).id("id-0").into()];
    let response = client.bulk(BulkParts::Index(&index)).refresh(Refresh::True).body(again).send().await.unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["items"][0]["create"]["status"], json!(409), "{body}");

    let count: Value = client.count(CountParts::Index(&[&index])).send().await.unwrap().json().await.unwrap();
    assert_eq!(count["count"], json!(5), "{count}");
}
