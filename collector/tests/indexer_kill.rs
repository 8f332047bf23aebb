//! The indexer against the Kafka-protocol broker and the Elasticsearch-API server: every produced record is
//! searchable exactly once after kill -9 at random moments, and the committed offsets reach the end. Bulk requests
//! go through a proxy that slows them down, so every kill lands with requests in flight and records read but not
//! yet indexed: an indexer that committed ahead of Elasticsearch would lose those. Every other round is produced
//! as the agent sends it (record format 2, up to 40 documents per record), so a kill also lands while some of a
//! record's documents are indexed and others are not.

mod support;

use std::time::{Duration, Instant};
use support::fault_proxy::{FaultProxy, Faults};
use support::indexer as ix;

#[test]
fn kill_9_at_random_moments_loses_and_duplicates_nothing() {
    let ix::Setup { bootstrap, es_url, names } = ix::Setup::new("ix-kill", 3);
    let tmp = tempfile::tempdir().unwrap();
    let slow = Faults { latency: Duration::from_millis(300), ..Faults::default() };
    let proxy = FaultProxy::start(&es_url, slow, 1);
    let config = ix::write_config(tmp.path(), &names, "indexer-1", &bootstrap, &proxy.url, "");
    let log = tmp.path().join("indexer.log");
    let es = ix::elasticsearch(&es_url);
    let producer = ix::producer(&bootstrap);

    const TOTAL: u64 = 30_000;
    let mut indexer = ix::start_indexer(&config, &log);
    let mut kills = 0;
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64;
    eprintln!("seed {seed}");
    for round in 0..30u64 {
        let documents = (round * 1000..(round + 1) * 1000).map(ix::document);
        if round % 2 == 0 {
            let sizes = (1..=40).cycle().skip(round as usize);
            ix::produce_framed(&producer, &names.topic, chunks(documents.collect(), sizes));
        } else {
            ix::produce(&producer, &names.topic, documents);
        }
        std::thread::sleep(Duration::from_millis(100));
        if round % 3 == (seed % 3) {
            std::thread::sleep(Duration::from_millis(300 + (seed.wrapping_mul(round + 1) % 900)));
            indexer.kill().unwrap();
            indexer.wait().unwrap();
            kills += 1;
            indexer = ix::start_indexer(&config, &log);
        }
    }
    let got = ix::wait_for_count(&es, &names.indices(), TOTAL, Duration::from_secs(120));
    let deadline = Instant::now() + Duration::from_secs(30);
    let ends = ix::ends(&bootstrap, &names.topic, 3);
    while ix::committed(&bootstrap, &names.group, &names.topic, 3) != ends && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    unsafe { libc::kill(indexer.id() as i32, libc::SIGTERM) };
    let status = indexer.wait().unwrap();
    support::print_log_tail(&log);
    eprintln!("{kills} kills");
    assert!(kills >= 8);
    assert!(status.success(), "indexer exited with {status}");
    assert_eq!(got, TOTAL, "documents in Elasticsearch");
    assert_eq!(ix::count(&es, &names.indices()), TOTAL, "no duplicates after the final commit");
    assert_eq!(ix::committed(&bootstrap, &names.group, &names.topic, 3), ends, "committed to the end");
    assert_eq!(ix::ends(&bootstrap, &names.dead_letters, 1), vec![0], "nothing dead-lettered");
}

/// `items` cut into consecutive groups of the sizes given.
fn chunks(items: Vec<String>, sizes: impl Iterator<Item = usize>) -> Vec<Vec<String>> {
    let mut items = items.into_iter().peekable();
    let mut out = Vec::new();
    for size in sizes {
        if items.peek().is_none() {
            break;
        }
        out.push(items.by_ref().take(size).collect());
    }
    out
}
