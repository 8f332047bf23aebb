//! The Kafka-protocol broker works with rdkafka as we use it: create a topic, produce idempotently with acks=all,
//! consume in a consumer group, commit, and read the committed offset back from a fresh consumer.

use logpipe_tests::{kafka_bootstrap, unique_name};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use std::time::Duration;

fn consumer(group: &str) -> StreamConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", kafka_bootstrap())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap()
}

#[tokio::test]
async fn produce_consume_commit_round_trip() {
    let topic = unique_name("smoke");
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", kafka_bootstrap()).create().unwrap();
    let created = admin
        .create_topics(&[NewTopic::new(&topic, 1, TopicReplication::Fixed(1))], &AdminOptions::new())
        .await
        .unwrap();
    assert!(created.iter().all(|r| r.is_ok()), "{created:?}");

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", kafka_bootstrap())
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("compression.type", "lz4")
        .create()
        .unwrap();
    for i in 0..10 {
        let payload = format!("line {i}");
        let record = FutureRecord::to(&topic).key("c1").payload(&payload);
        producer.send(record, Duration::from_secs(10)).await.map_err(|(e, _)| e).unwrap();
    }

    let group = unique_name("smoke-group");
    let first = consumer(&group);
    first.subscribe(&[&topic]).unwrap();
    let mut seen = Vec::new();
    while seen.len() < 10 {
        let msg = tokio::time::timeout(Duration::from_secs(30), first.recv()).await.unwrap().unwrap();
        seen.push(String::from_utf8(msg.payload().unwrap().to_vec()).unwrap());
        if seen.len() == 10 {
            first.commit_message(&msg, CommitMode::Sync).unwrap();
        }
    }
    assert_eq!(seen, (0..10).map(|i| format!("line {i}")).collect::<Vec<_>>());
    drop(first);

    let second = consumer(&group);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(&topic, 0);
    let committed = second.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    let offset = committed.find_partition(&topic, 0).unwrap().offset();
    assert_eq!(offset, Offset::Offset(10));
}
