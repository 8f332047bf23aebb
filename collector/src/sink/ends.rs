//! A thread that reads the topic's partition ends now and then, so the agent can advance the offsets a restart's
//! read-back starts from, also for partitions this node never writes to (other nodes' records there would
//! otherwise be scanned again at every start, without bound).

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::Duration;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub struct PartitionEnds {
    ends: Receiver<BTreeMap<i32, i64>>,
    /// Dropped to stop the thread.
    stop: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl PartitionEnds {
    /// Reads `topic`'s ends every `every`, with a consumer of its own on `connection`.
    pub fn start(connection: &ClientConfig, topic: &str, every: Duration) -> Result<Self, rdkafka::error::KafkaError> {
        let consumer: BaseConsumer = crate::librdkafka::reader(connection, "logpipe-agent-ends").create()?;
        let (ends_tx, ends) = mpsc::sync_channel(1);
        let (stop, stop_rx) = mpsc::sync_channel::<()>(0);
        let topic = topic.to_owned();
        let thread = std::thread::Builder::new()
            .name("partition-ends".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stop_rx.recv_timeout(every) {
                    match read_ends(&consumer, &topic) {
                        // A full channel holds ends the agent has not taken yet; newer ones wait for the next turn.
                        Ok(read) => drop(ends_tx.try_send(read)),
                        Err(error) => tracing::debug!(%error, "cannot read partition ends; trying again later"),
                    }
                }
            })
            .map_err(|e| rdkafka::error::KafkaError::ClientCreation(e.to_string()))?;
        Ok(Self { ends, stop: Some(stop), thread: Some(thread) })
    }

    /// The ends read since the last call, if any.
    pub fn take(&mut self) -> Option<BTreeMap<i32, i64>> {
        self.ends.try_recv().ok()
    }
}

impl Drop for PartitionEnds {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn read_ends(consumer: &BaseConsumer, topic: &str) -> Result<BTreeMap<i32, i64>, rdkafka::error::KafkaError> {
    let metadata = consumer.fetch_metadata(Some(topic), REQUEST_TIMEOUT)?;
    let mut ends = BTreeMap::new();
    for p in metadata.topics().iter().flat_map(|t| t.partitions()) {
        let (_, high) = consumer.fetch_watermarks(topic, p.id(), REQUEST_TIMEOUT)?;
        ends.insert(p.id(), high);
    }
    Ok(ends)
}
