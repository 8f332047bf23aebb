//! The Kafka-protocol admin client against the Kafka-protocol broker of the test environment. That broker (noida,
//! one node) answers Metadata, DescribeCluster, DescribeConfigs and CreateTopics; it does not implement the
//! partition-reassignment APIs, and these tests assert that it says so rather than skip them.

use logpipe_operator::kafka::managed::admin::{Access, Admin, AdminError, Created};
use logpipe_operator::kafka::managed::scaling::Move;
use logpipe_tests::{kafka_bootstrap, unique_name};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn creates_a_topic_and_reads_back_replicas_isr_and_min_isr() {
    let mut admin = Admin::connect(&kafka_bootstrap(), TIMEOUT, &Access::Plaintext).await.unwrap();
    let cluster = admin.cluster().await.unwrap();
    assert!(cluster.brokers.contains(&cluster.controller), "{cluster:?}");

    let topic = unique_name("admin");
    let configs = [("min.insync.replicas", "1".to_owned()), ("retention.ms", "3600000".to_owned())];
    assert_eq!(admin.create_topic(&topic, 3, 1, &configs).await.unwrap(), Created::New);
    assert_eq!(admin.create_topic(&topic, 3, 1, &configs).await.unwrap(), Created::Existed);

    let partitions: Vec<_> = admin.replicas().await.unwrap().into_iter().filter(|p| p.topic == topic).collect();
    let mut indexes: Vec<i32> = partitions.iter().map(|p| p.index).collect();
    indexes.sort_unstable();
    assert_eq!(indexes, vec![0, 1, 2]);
    for p in &partitions {
        assert_eq!(p.replicas.len(), 1, "{p:?}");
        assert!(cluster.brokers.contains(&p.replicas[0]), "{p:?}");
        assert!(p.fully_in_sync(), "{p:?}");
        assert_eq!(p.min_isr, 1);
        assert_eq!(p.reassignment, None);
    }
}

/// Without the reassignment APIs the client reports them unsupported, by name: scaling stops with a clear
/// error instead of acting on a view that lacks the reassignments in flight.
#[tokio::test]
async fn reassignment_apis_missing_on_the_broker_are_named() {
    let mut admin = Admin::connect(&kafka_bootstrap(), TIMEOUT, &Access::Plaintext).await.unwrap();
    let topic = unique_name("admin-move");
    admin.create_topic(&topic, 1, 1, &[]).await.unwrap();
    let moves = [Move { topic: topic.clone(), partition: 0, replicas: vec![0] }];
    let unsupported = |r: Result<(), AdminError>| match r {
        Err(AdminError::Unsupported { api }) => api,
        other => panic!("expected the broker to lack the API, got {other:?}"),
    };
    assert_eq!(unsupported(admin.reassign(&moves).await), "AlterPartitionReassignments");
    assert_eq!(unsupported(admin.partitions().await.map(drop)), "ListPartitionReassignments");
}

#[tokio::test]
async fn an_unreachable_bootstrap_list_names_what_it_tried() {
    let err =
        Admin::connect("127.0.0.1:1,127.0.0.1:2", Duration::from_secs(2), &Access::Plaintext).await.err().unwrap();
    assert!(err.to_string().contains("127.0.0.1:1,127.0.0.1:2"), "{err}");
}
