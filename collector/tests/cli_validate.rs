//! `logpipe-collector validate`: agent and indexer configs are told apart and checked, with errors naming the field.

use std::process::Command;

fn validate(path: &std::path::Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_logpipe-collector"))
        .args(["validate", "--config"])
        .arg(path)
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

#[test]
fn examples_are_valid_and_mistakes_are_named() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let (ok, out) = validate(&root.join("examples/local.yaml"));
    assert!(ok && out.contains("valid agent config"), "{out}");
    let (ok, out) = validate(&root.join("examples/indexer.yaml"));
    assert!(ok && out.contains("valid indexer config"), "{out}");

    let tmp = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(root.join("examples/indexer.yaml")).unwrap();
    let cases = [
        (example.replace("%Y.%m.%d", "%H"), "index.name"),
        (
            example.replace("type: parse_json, field: message, target: app", "type: rename, from: \"\", to: x"),
            "processors",
        ),
        (example.clone() + "bulk:\n  concurrency: 0\n", "bulk.concurrency"),
        (example.replace("dead_letter_topic: logs-dead-letters", "dead_letter_topic: logs"), "dead_letter_topic"),
        (example.clone() + "bulk:\n  max_bytes: 5000000000\n", "bulk.max_bytes"),
        (example.replace("{kubernetes.namespace}", "{app.tenant}"), "index.name"),
        (
            example.replace(
                "type: parse_json, field: message, target: app",
                "type: parse_json, field: message, target: host",
            ),
            "processors",
        ),
        (
            std::fs::read_to_string(root.join("examples/local.yaml")).unwrap() + "max_in_flight_bytes: 99999999999\n",
            "max_in_flight_bytes",
        ),
    ];
    for (i, (text, field)) in cases.iter().enumerate() {
        let path = tmp.path().join(format!("bad-{i}.yaml"));
        std::fs::write(&path, text).unwrap();
        let (ok, out) = validate(&path);
        assert!(!ok && out.contains(field), "{field}: {out}");
    }
}
