//! The indexer through faults: Elasticsearch answering 429, 500 and 413 for requests and 429/503 for single
//! documents, and 400 for a request holding a document it cannot read; mapping errors, records that are not JSON
//! and JSON spread over lines; two indexers in one group through rebalances. In every case each record is either
//! searchable exactly once or in the dead-letter topic, and the commits reach the end.

mod support;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};
use support::fault_proxy::{FaultProxy, Faults};
use support::indexer::{self as ix, Names};

fn stop(mut indexer: Child, log: &Path) {
    unsafe { libc::kill(indexer.id() as i32, libc::SIGTERM) };
    let status = indexer.wait().unwrap();
    support::print_log_tail(log);
    assert!(status.success(), "indexer exited with {status}");
}

fn wait_committed(bootstrap: &str, names: &Names, partitions: i32) {
    let ends = ix::ends(bootstrap, &names.topic, partitions);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let committed = ix::committed(bootstrap, &names.group, &names.topic, partitions);
        if committed == ends {
            return;
        }
        assert!(Instant::now() < deadline, "committed {committed:?}, ends {ends:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn injected_429_500_413_and_document_faults_lose_and_duplicate_nothing() {
    let ix::Setup { bootstrap, es_url, names } = ix::Setup::new("ix-faults", 2);
    let faults =
        Faults { request_500: 0.1, request_429: 0.1, too_large_over: 200, document: 0.15, ..Faults::default() };
    let proxy = FaultProxy::start(&es_url, faults, 7);
    let tmp = tempfile::tempdir().unwrap();
    let config = ix::write_config(tmp.path(), &names, "indexer-1", &bootstrap, &proxy.url, "");
    let log = tmp.path().join("indexer.log");
    const TOTAL: u64 = 10_000;
    ix::produce(&ix::producer(&bootstrap), &names.topic, (0..TOTAL).map(ix::document));
    let indexer = ix::start_indexer(&config, &log);
    let es = ix::elasticsearch(&es_url);
    let got = ix::wait_for_count(&es, &names.indices(), TOTAL, Duration::from_secs(120));
    wait_committed(&bootstrap, &names, 2);
    stop(indexer, &log);
    let s = &proxy.stats;
    let injected = [&s.whole_500, &s.whole_429, &s.too_large, &s.document_faults]
        .map(|c| c.load(std::sync::atomic::Ordering::Relaxed));
    eprintln!("injected: 500 {} / 429 {} / 413 {} / document {}", injected[0], injected[1], injected[2], injected[3]);
    assert!(injected.iter().all(|&n| n > 0), "every kind of fault was injected: {injected:?}");
    assert_eq!(got, TOTAL);
    assert_eq!(ix::count(&es, &names.indices()), TOTAL);
    assert_eq!(ix::ends(&bootstrap, &names.dead_letters, 1), vec![0], "faults are retried, not dead-lettered");
}

#[test]
fn mapping_errors_and_non_json_records_go_to_the_dead_letter_topic() {
    bad_documents_go_to_the_dead_letter_topic("ix-dlq", 1);
}

/// The same, with records as the agent sends them (format 2, 25 documents each): a bad document is dead-lettered
/// alone, named by its record and place, and the good ones beside it are indexed.
#[test]
fn a_bad_document_of_a_framed_record_goes_to_the_dead_letter_topic_alone() {
    bad_documents_go_to_the_dead_letter_topic("ix-dlq-framed", 25);
}

fn bad_documents_go_to_the_dead_letter_topic(what: &str, per_record: usize) {
    let ix::Setup { bootstrap, es_url, names } = ix::Setup::new(what, 2);
    let tmp = tempfile::tempdir().unwrap();
    let config = ix::write_config(tmp.path(), &names, "indexer-1", &bootstrap, &es_url, "");
    let log = tmp.path().join("indexer.log");
    // Every 20th record has a text where the template maps a long; every 50th is not JSON at all. Every 30th is
    // good JSON spread over lines (format 1 only: in format 2 a line is a document), which a bulk body (one line
    // per document) cannot carry as it is.
    let payload = |n: u64| match n {
        n if n % 50 == 7 => format!("plain text {n}"),
        n if n % 20 == 3 => ix::document(n).replace(&format!("\"offset\":{n}"), "\"offset\":\"not a number\""),
        n if n % 30 == 11 && per_record == 1 => {
            serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&ix::document(n)).unwrap()).unwrap()
        }
        n => ix::document(n),
    };
    const TOTAL: u64 = 2000;
    let bad = (0..TOTAL).filter(|n| n % 50 == 7 || n % 20 == 3).count() as u64;
    let producer = ix::producer(&bootstrap);
    if per_record == 1 {
        ix::produce(&producer, &names.topic, (0..TOTAL).map(payload));
    } else {
        let payloads: Vec<String> = (0..TOTAL).map(payload).collect();
        ix::produce_framed(&producer, &names.topic, payloads.chunks(per_record).map(<[String]>::to_vec));
    }
    index_to_the_end(&bootstrap, &es_url, &names, &config, &log, TOTAL - bad);

    let (mut mapping, mut not_json) = (0, 0);
    for (error, source, payload) in dead_letters(&bootstrap, &names.dead_letters, bad) {
        if payload.starts_with("plain text") {
            assert!(error.contains("not a JSON document"), "{error}");
            not_json += 1;
        } else {
            assert!(error.contains("HTTP 400") && payload.contains("not a number"), "{error}: {payload}");
            mapping += 1;
        }
        // `<topic>/<partition>/<offset>`, and `/<place>` in a format 2 record.
        let parts = source.strip_prefix(&format!("{}/", names.topic)).unwrap().split('/').count();
        assert_eq!(parts, if per_record == 1 { 2 } else { 3 }, "{source}");
    }
    assert_eq!((mapping + not_json, ix::ends(&bootstrap, &names.dead_letters, 1)), (bad, vec![bad as i64]));
}

#[test]
fn a_document_whose_request_is_refused_whole_is_singled_out_and_dead_lettered() {
    let ix::Setup { bootstrap, es_url, names } = ix::Setup::new("ix-poison", 2);
    let proxy = FaultProxy::start(&es_url, Faults { poison: Some("poison-pill"), ..Faults::default() }, 11);
    let tmp = tempfile::tempdir().unwrap();
    let config = ix::write_config(tmp.path(), &names, "indexer-1", &bootstrap, &proxy.url, "");
    let log = tmp.path().join("indexer.log");
    let payload = |n: u64| match n {
        n if n % 200 == 17 => ix::document(n).replace("\"record ", "\"poison-pill record "),
        n => ix::document(n),
    };
    const TOTAL: u64 = 2000;
    let bad = (0..TOTAL).filter(|n| n % 200 == 17).count() as u64;
    ix::produce(&ix::producer(&bootstrap), &names.topic, (0..TOTAL).map(payload));
    index_to_the_end(&bootstrap, &es_url, &names, &config, &log, TOTAL - bad);
    for (error, _, payload) in dead_letters(&bootstrap, &names.dead_letters, bad) {
        assert!(error.contains("HTTP 400") && payload.contains("poison-pill"), "{error}: {payload}");
    }
    assert_eq!(ix::ends(&bootstrap, &names.dead_letters, 1), vec![bad as i64]);
    assert!(proxy.stats.poisoned.load(std::sync::atomic::Ordering::Relaxed) >= bad);
}

/// Runs one indexer until it has committed the end of both partitions, then checks that `indexed` documents are
/// searchable.
fn index_to_the_end(bootstrap: &str, es_url: &str, names: &Names, config: &Path, log: &Path, indexed: u64) {
    let indexer = ix::start_indexer(config, log);
    wait_committed(bootstrap, names, 2);
    stop(indexer, log);
    let es = ix::elasticsearch(es_url);
    assert_eq!(ix::wait_for_count(&es, &names.indices(), indexed, Duration::from_secs(10)), indexed);
}

/// The first `n` records of the dead-letter topic: each one's error and source headers and payload.
fn dead_letters(bootstrap: &str, topic: &str, n: u64) -> Vec<(String, String, String)> {
    let consumer: BaseConsumer = rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "dlq-reader")
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, rdkafka::Offset::Beginning).unwrap();
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while (out.len() as u64) < n {
        assert!(Instant::now() < deadline, "{} of {n} dead letters: {out:?}", out.len());
        let Some(msg) = consumer.poll(Duration::from_millis(200)) else { continue };
        let msg = msg.unwrap();
        let header = |key: &str| {
            let value = msg.headers().unwrap().iter().find(|h| h.key == key).and_then(|h| h.value).unwrap();
            String::from_utf8_lossy(value).into_owned()
        };
        let payload = String::from_utf8_lossy(msg.payload().unwrap()).into_owned();
        out.push((header("logpipe.error"), header("logpipe.source"), payload));
    }
    out
}

#[test]
fn two_indexers_in_one_group_through_rebalances_lose_nothing() {
    let ix::Setup { bootstrap, es_url, names } = ix::Setup::new("ix-group", 4);
    let slow = FaultProxy::start(&es_url, Faults { latency: Duration::from_millis(100), ..Faults::default() }, 3);
    let tmp = tempfile::tempdir().unwrap();
    let config_a = ix::write_config(tmp.path(), &names, "indexer-a", &bootstrap, &slow.url, "");
    let config_b = ix::write_config(tmp.path(), &names, "indexer-b", &bootstrap, &slow.url, "");
    let (log_a, log_b) = (tmp.path().join("a.log"), tmp.path().join("b.log"));
    let producer = ix::producer(&bootstrap);
    let mut a = ix::start_indexer(&config_a, &log_a);
    let mut b = None;
    const ROUNDS: u64 = 20;
    for round in 0..ROUNDS {
        ix::produce(&producer, &names.topic, (round * 1000..(round + 1) * 1000).map(ix::document));
        std::thread::sleep(Duration::from_millis(300));
        match round {
            // B joins: the partitions are split between A and B while both have bulks in flight.
            5 => b = Some(ix::start_indexer(&config_b, &log_b)),
            // A crashes and comes back: its partitions move, then return.
            12 => {
                a.kill().unwrap();
                a.wait().unwrap();
                a = ix::start_indexer(&config_a, &log_a);
            }
            _ => {}
        }
    }
    let es = ix::elasticsearch(&es_url);
    let got = ix::wait_for_count(&es, &names.indices(), ROUNDS * 1000, Duration::from_secs(120));
    wait_committed(&bootstrap, &names, 4);
    stop(a, &log_a);
    stop(b.unwrap(), &log_b);
    assert_eq!(got, ROUNDS * 1000);
    assert_eq!(ix::count(&es, &names.indices()), ROUNDS * 1000);
}
