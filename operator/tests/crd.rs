//! The checked-in CRD, its copy in the chart and the example manifests must match the code.

use kube::CustomResourceExt;
use logpipe_operator::crd::LogPipeline;

#[test]
fn crds_directory_is_up_to_date() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds/logpipeline.yaml");
    let checked_in = std::fs::read_to_string(path).unwrap();
    let generated = serde_yaml::to_string(&LogPipeline::crd()).unwrap();
    assert!(
        checked_in == generated,
        "crds/logpipeline.yaml is stale: run `cargo run -p logpipe-operator --bin crdgen > crds/logpipeline.yaml`"
    );
}

#[test]
fn the_charts_crds_are_the_generated_ones() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let top = std::fs::read_to_string(format!("{root}/crds/logpipeline.yaml")).unwrap();
    let chart = std::fs::read_to_string(format!("{root}/charts/logpipe/crds/logpipeline.yaml")).unwrap();
    assert!(top == chart, "charts/logpipe/crds is stale: run `cp crds/logpipeline.yaml charts/logpipe/crds/`");
}

#[test]
fn the_example_pipelines_are_valid() {
    let defaults = logpipe_operator::validate::Defaults::new("img:1");
    let example = |name: &str| {
        let path = format!("{}/../examples/{name}", env!("CARGO_MANIFEST_DIR"));
        logpipe_operator::render::render(&std::fs::read_to_string(path).unwrap(), &defaults)
    };
    for ok in ["minimal-pipeline.yaml", "local-pipeline.yaml", "full-pipeline.yaml"] {
        if let Err(e) = example(ok) {
            panic!("examples/{ok}: {e}");
        }
    }
    let full = example("full-pipeline.yaml").unwrap();
    assert!(full.contains("kind: StatefulSet") && full.contains("OnDelete"), "the managed Kafka is rendered");
}

#[test]
fn render_prints_every_object_of_a_pipeline() {
    let text = r#"
apiVersion: logpipe.dev/v1alpha1
kind: LogPipeline
metadata: {name: web, namespace: logging}
spec:
  kafka: {external: {bootstrapServers: "kafka:9092"}}
  indexer: {elasticsearch: {url: "http://es:9200"}}
"#;
    let defaults = logpipe_operator::validate::Defaults::new("img:1");
    let out = logpipe_operator::render::render(text, &defaults).unwrap();
    let kinds: Vec<String> = serde_yaml::Deserializer::from_str(&out)
        .map(|doc| {
            let v = <serde_yaml::Value as serde::Deserialize>::deserialize(doc).unwrap();
            v["kind"].as_str().unwrap().to_owned()
        })
        .collect();
    let expected = [
        "ServiceAccount",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        // No administrator's policy names the pipeline's namespace: its collectors read pods there only.
        "Role",
        "RoleBinding",
        "ConfigMap",
        "ConfigMap",
        "DaemonSet",
        "Deployment",
    ];
    assert_eq!(kinds, expected);
    let bad = text.replace("http://es:9200", "es:9200");
    let e = logpipe_operator::render::render(&bad, &defaults).unwrap_err();
    assert!(e.to_string().contains("elasticsearch.url"), "{e}");
}
