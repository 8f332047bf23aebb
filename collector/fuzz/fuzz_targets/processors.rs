//! The indexer's processors on arbitrary input: as the message an application printed (the first byte even), or
//! as a whole document (odd). No panic, no stack overflow, the result is valid JSON, and what an application
//! printed never changes a field the agent set.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logpipe_collector::indexer::processors::{apply, ProcessorConfig};
use serde_json::{json, Value};

fn agent_document(message: &str) -> Value {
    json!({
        "@timestamp": "2026-11-22T08:00:00.000000000Z",
        "host": {"name": "node-a"},
        "kubernetes": {"namespace": "shop", "pod": {"name": "web-0"}, "labels": {"app": "web"}},
        "log": {"file": {"path": "/var/log/pods/shop_web-0_u/app/0.log"}, "offset": 7},
        "stream": "stdout",
        "message": message,
    })
}

fn processors() -> Vec<ProcessorConfig> {
    let list = json!([
        {"type": "parse_json", "field": "message"},
        {"type": "parse_json", "field": "nested", "target": "app"},
        {"type": "level", "field": "level"},
        {"type": "rename", "from": "msg", "to": "text"},
        {"type": "add", "field": "env.name", "value": "prod"},
        {"type": "remove", "fields": ["secret", "app.token"]},
        {"type": "drop", "field": "level", "values": ["trace"]},
    ]);
    serde_json::from_value(list).expect("the list is valid")
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, input)) = data.split_first() else { return };
    let mut doc = if pick % 2 == 0 {
        agent_document(&String::from_utf8_lossy(input))
    } else {
        match serde_json::from_slice::<Value>(input) {
            Ok(doc) => doc,
            Err(_) => return,
        }
    };
    let before = doc.clone();
    apply(&processors(), &mut doc);
    let text = serde_json::to_string(&doc).expect("serializable");
    let _: Value = serde_json::from_str(&text).expect("valid JSON");
    if pick % 2 == 0 {
        for field in ["kubernetes", "host", "stream", "@timestamp"] {
            assert_eq!(doc[field], before[field], "{field} changed");
        }
        assert_eq!(doc["log"]["file"], before["log"]["file"]);
        assert_eq!(doc["log"]["offset"], before["log"]["offset"]);
    }
});
