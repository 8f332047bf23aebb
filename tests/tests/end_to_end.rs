//! The whole path, as `scripts/demo.sh` shows it, with assertions: pod log files -> agent -> Kafka -> indexer ->
//! Elasticsearch, with the operator rendering the configs from `examples/local-pipeline.yaml`. The agent and the
//! indexer are each killed (SIGKILL) in the middle of the stream and restarted; every line must still be in Kafka
//! once and in the index once, with its pod's metadata.

use logpipe_tests::stack::logs::{self, MALFORMED_EVERY};
use logpipe_tests::stack::{data, Binaries, Stack, StackOptions};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

const BATCH: u64 = 50;
const INDEXED: Duration = Duration::from_secs(180);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_line_is_searchable_once_through_agent_and_indexer_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let _logs = ShowLogsOnFailure(dir.path());
    let mut stack = Stack::start(options(dir.path())).await.unwrap();

    // The agent dies once it is shipping, with lines just appended and not yet read.
    write_batches(&mut stack, 10);
    let (bootstrap, topic) = (stack.bootstrap.clone(), stack.topic.clone());
    logpipe_tests::wait_for("the agent to be under way", INDEXED, || async {
        (!data::topic_lines(&bootstrap, &topic).await.ok()?.is_empty()).then_some(())
    })
    .await;
    write_batches(&mut stack, 10);
    stack.kill_agent().unwrap();
    write_batches(&mut stack, 10);
    stack.start_agent().unwrap();
    // The indexer dies once it is indexing, with bulks in flight and offsets not yet committed.
    let indices = stack.indices();
    logpipe_tests::wait_for("the indexer to be under way", INDEXED, || async {
        (data::count(&stack.es, &indices).await.ok()? > 0).then_some(())
    })
    .await;
    stack.kill_indexer().unwrap();
    write_batches(&mut stack, 10);
    stack.start_indexer().unwrap();

    let documents = stack.wait_indexed(INDEXED).await.unwrap();
    let written = stack.writer.written();
    assert_eq!(written, 3 * 40 * BATCH);
    let lines = data::topic_lines(&stack.bootstrap, &stack.topic).await.unwrap();
    let duplicated: Vec<_> = lines.iter().filter(|(_, &n)| n > 1).collect();
    assert!(duplicated.is_empty(), "lines in Kafka more than once: {duplicated:?}");
    for (pod, n) in stack.writer.per_pod() {
        let missing: Vec<u64> = (0..n).filter(|&seq| !lines.contains_key(&logs::line(pod, seq))).collect();
        assert!(missing.is_empty(), "{}: lines not in Kafka: {missing:?}", pod.name);
    }
    assert_eq!(lines.len() as u64, written);
    assert_eq!(documents, written, "documents in {indices}");

    a_document_carries_its_line_and_its_pod(&stack).await;
    stack.shut_down().await.unwrap();
}

/// One JSON line and one plain line of the payments pod, as documents.
async fn a_document_carries_its_line_and_its_pod(stack: &Stack) {
    let pod = stack.pods().iter().find(|p| p.namespace.ends_with("-payments")).unwrap();
    let terms = [("kubernetes.pod.name", json!(pod.name)), ("seq", json!(7))];
    let (total, hits) = data::search(&stack.es, &stack.indices(), &terms, 10).await.unwrap();
    assert_eq!(total, 1, "{hits:?}");
    let doc = &hits[0];
    let source: Value = serde_json::from_str(&logs::line(pod, 7)).unwrap();
    assert_eq!((&doc["msg"], &doc["log"]["level"]), (&source["msg"], &source["level"]), "{doc}");
    let k8s = &doc["kubernetes"];
    assert_eq!(k8s["namespace"], json!(pod.namespace), "{doc}");
    assert_eq!(k8s["pod"]["name"], json!(pod.name), "{doc}");
    assert_eq!(k8s["labels"], pod.labels, "{doc}");
    assert_eq!(k8s["container"]["name"], json!(pod.container), "{doc}");
    assert_eq!(k8s["container"]["image"], json!(pod.image), "{doc}");
    assert_eq!(k8s["node"]["name"], json!(stack.node), "{doc}");

    let (_, docs) =
        data::search(&stack.es, &stack.indices(), &[("kubernetes.pod.name", json!(pod.name))], 10_000).await.unwrap();
    let plain = logs::line(pod, MALFORMED_EVERY - 1);
    let doc = docs.iter().find(|d| d["message"] == json!(plain)).expect("the plain-text line is indexed");
    assert!(doc["logpipe"]["processor_error"].as_str().is_some_and(|e| e.contains("parse_json")), "{doc}");
}

/// A failed run prints the end of each process's log: the temporary directory goes with the test.
struct ShowLogsOnFailure<'a>(&'a Path);

impl Drop for ShowLogsOnFailure<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for name in ["operator", "agent", "indexer"] {
            let log = std::fs::read_to_string(self.0.join(format!("{name}.log"))).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!("--- the last lines of {name}.log ---");
            tail.iter().rev().for_each(|line| eprintln!("{line}"));
        }
    }
}

fn write_batches(stack: &mut Stack, batches: u64) {
    for _ in 0..batches {
        stack.writer.write(BATCH).unwrap();
    }
}

fn options(dir: &Path) -> StackOptions {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // cargo puts this test in target/<profile>/deps and the workspace's binaries in target/<profile>.
    let exe = std::env::current_exe().unwrap();
    let bin_dir = exe.parent().and_then(Path::parent).unwrap();
    StackOptions {
        run: logpipe_tests::unique_name("e2e"),
        dir: dir.to_path_buf(),
        binaries: Binaries::in_dir(bin_dir, &workspace).unwrap(),
        pipeline: std::fs::read_to_string(workspace.join("examples/local-pipeline.yaml")).unwrap(),
        kafka: logpipe_tests::kafka_bootstrap(),
        elasticsearch: logpipe_tests::elasticsearch_url(),
    }
}
