//! What the indexer reports on `/metrics`, and its health.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

type PartitionLabels = Vec<(String, String)>;

pub struct IndexerMetrics {
    pub registry: Registry,
    pub consumed: Counter,
    pub indexed: Counter,
    pub already_indexed: Counter,
    pub retried: Counter,
    pub dead_lettered: Counter,
    pub dropped: Counter,
    pub bulk_requests: Counter,
    pub bulk_seconds: Histogram,
    uncommitted: Family<PartitionLabels, Gauge>,
    ready: AtomicBool,
    heartbeat_ms: AtomicI64,
}

impl Default for IndexerMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("logpipe_indexer");
        let m = Self {
            registry: Registry::default(),
            consumed: Counter::default(),
            indexed: Counter::default(),
            already_indexed: Counter::default(),
            retried: Counter::default(),
            dead_lettered: Counter::default(),
            dropped: Counter::default(),
            bulk_requests: Counter::default(),
            bulk_seconds: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            uncommitted: Family::default(),
            ready: AtomicBool::new(false),
            heartbeat_ms: AtomicI64::new(now_ms()),
        };
        let counters = [
            ("consumed", "Records read from Kafka", &m.consumed),
            ("indexed", "Documents Elasticsearch accepted", &m.indexed),
            ("already_indexed", "Documents found indexed already (409 on create: a replay)", &m.already_indexed),
            ("retried", "Documents sent again after 429/5xx", &m.retried),
            ("dead_lettered", "Records sent to the dead-letter topic", &m.dead_lettered),
            ("dropped", "Records dropped by a drop processor", &m.dropped),
            ("bulk_requests", "Bulk requests sent", &m.bulk_requests),
        ];
        for (name, help, counter) in counters {
            registry.register(name, help, counter.clone());
        }
        registry.register("bulk_seconds", "Bulk request latency", m.bulk_seconds.clone());
        registry.register(
            "uncommitted_records",
            "Records consumed whose offsets are not committed yet, per partition",
            m.uncommitted.clone(),
        );
        Self { registry, ..m }
    }
}

impl IndexerMetrics {
    pub fn set_uncommitted(&self, partition: i32, records: i64) {
        self.uncommitted.get_or_create(&vec![("partition".to_owned(), partition.to_string())]).set(records);
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    pub fn beat(&self) {
        self.heartbeat_ms.store(now_ms(), Ordering::Relaxed);
    }
}

impl crate::http::Health for IndexerMetrics {
    fn registry(&self) -> &Registry {
        &self.registry
    }

    fn alive(&self) -> bool {
        !self.ready.load(Ordering::Relaxed)
            || now_ms() - self.heartbeat_ms.load(Ordering::Relaxed) < crate::http::STALL_MS
    }

    fn ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
