use super::*;
use crate::crd::ListenerSecurity;
use serde_json::{json, Value};

/// A policy that allows what these tests ask of other rules; the policy's own rules are tested below.
fn defaults() -> Defaults {
    let policy = Policy {
        host_paths: vec!["/var/log".into(), "/var/lib/docker/containers".into()],
        image_overrides: true,
        cluster_wide: Namespaces::Any,
        ..Policy::default()
    };
    Defaults { policy, ..Defaults::new("logpipe/collector:1") }
}

fn base() -> Value {
    json!({
        "apiVersion": "logpipe.dev/v1alpha1",
        "kind": "LogPipeline",
        "metadata": {"name": "web", "namespace": "logging"},
        "spec": {
            "kafka": {"external": {"bootstrapServers": "kafka-0.kafka:9092,kafka-1.kafka:9092"}},
            "indexer": {"elasticsearch": {"url": "https://es.logging:9200"}}
        }
    })
}

fn with(path: &[&str], value: Value) -> LogPipeline {
    let mut v = base();
    let mut target = &mut v;
    for key in &path[..path.len() - 1] {
        target = &mut target[*key];
    }
    target[path[path.len() - 1]] = value;
    serde_json::from_value(v).unwrap()
}

#[test]
fn defaults_are_resolved() {
    let p = validate(&serde_json::from_value(base()).unwrap(), &defaults()).unwrap();
    assert_eq!(p.topic.name, "logpipe.logging.web");
    assert_eq!(p.topic.dead_letter, "logpipe.logging.web.dead-letter");
    assert_eq!((p.topic.partitions, p.topic.replication_factor), (6, 3));
    assert_eq!(p.topic.retention_ms, 72 * 3_600_000);
    assert_eq!(p.indexer.replicas, 2);
    assert_eq!(p.collector.image, "logpipe/collector:1");
    assert_eq!(p.host_paths, ["/var/log/pods"]);
    assert_eq!(p.state_dir, "/var/lib/logpipe/logging-web", "no uid, no suffix");
    let mut with_uid = base();
    with_uid["metadata"]["uid"] = json!("0b9c6f1e-1111-2222-3333-444455556666");
    let p = validate(&serde_json::from_value(with_uid).unwrap(), &defaults()).unwrap();
    assert_eq!(p.state_dir, "/var/lib/logpipe/logging-web-0b9c6f1e", "one directory per pipeline object");
    assert_eq!((p.earlier_state_dir, p.agent_config.earlier_state_dir), (None, None));
    assert_eq!(p.collector.tolerations.len(), 1, "tolerates every taint");
    assert_eq!(p.indexer_config.kafka.group_id, "logpipe.logging.web");
    assert!(p.kafka.properties.is_empty());
}

#[test]
fn invalid_specs_name_the_field() {
    let cases: &[(&str, &[&str], Value, &str)] = &[
        ("no kafka", &["spec", "kafka"], json!({}), "spec.kafka"),
        ("both kafkas", &["spec", "kafka", "managed"], json!({"brokers": 3}), "spec.kafka"),
        ("bad bootstrap", &["spec", "kafka", "external", "bootstrapServers"], json!("kafka"), "bootstrapServers"),
        ("zero partitions", &["spec", "kafka", "topic"], json!({"partitions": 0}), "partitions"),
        ("bad topic name", &["spec", "kafka", "topic"], json!({"name": "logs/web"}), "spec.kafka.topic.name"),
        ("bad url", &["spec", "indexer", "elasticsearch", "url"], json!("not a url"), "elasticsearch.url"),
        ("ftp url", &["spec", "indexer", "elasticsearch", "url"], json!("ftp://es:21"), "elasticsearch.url"),
        ("unknown processor", &["spec", "indexer", "processors"], json!([{"type": "explode"}]), "processors[0]"),
        (
            "processor without its field",
            &["spec", "indexer", "processors"],
            json!([{"type": "level", "field": "lvl"}, {"type": "rename", "from": "a"}]),
            "processors[1]",
        ),
        (
            "bad selector operator",
            &["spec", "collector", "filter"],
            json!({"podSelector": {"matchExpressions": [{"key": "app", "operator": "Sometimes", "values": ["a"]}]}}),
            "pod_selector",
        ),
        ("bad multiline regex", &["spec", "collector", "multiline"], json!({"start": "(unclosed"}), "multiline"),
        ("relative path", &["spec", "collector", "paths"], json!(["logs/*.log"]), "spec.collector.paths"),
        ("root path", &["spec", "collector", "paths"], json!(["/*.log"]), "spec.collector.paths"),
        ("bad index template", &["spec", "indexer", "index"], json!({"nameTemplate": "logs-{unclosed"}), "index.name"),
        ("negative replicas", &["spec", "indexer", "replicas"], json!(-1), "spec.indexer.replicas"),
        ("image with spaces", &["spec", "collector", "image"], json!("my image"), "spec.collector.image"),
        (
            "empty secret name",
            &["spec", "indexer", "elasticsearch", "caSecret"],
            json!({"name": "", "key": "ca"}),
            "caSecret",
        ),
        ("long name", &["metadata", "name"], json!("a".repeat(41)), "metadata.name"),
    ];
    for (what, path, value, field) in cases {
        let lp = with(path, value.clone());
        // "both kafkas" keeps external and adds managed.
        match validate(&lp, &defaults()) {
            Ok(_) => panic!("{what}: accepted"),
            Err(e) => assert!(e.to_string().contains(field), "{what}: {e} does not name {field}"),
        }
    }
}

#[test]
fn managed_kafka_points_the_pipeline_at_its_bootstrap_service() {
    let lp = with(&["spec", "kafka"], json!({"managed": {"brokers": 3, "listenerSecurity": "PLAINTEXT"}}));
    let p = validate(&lp, &defaults()).unwrap();
    let ns = lp.metadata.namespace.clone().unwrap_or_else(|| "default".into());
    assert_eq!(p.kafka.bootstrap_servers, format!("{}.{ns}.svc:9092", p.name.kafka_bootstrap()));
    assert!(p.kafka.properties.is_empty());
    assert_eq!(p.secrets, crate::model::SecretMounts::default());
    assert_eq!(p.managed.as_ref().map(|m| m.brokers), Some(3));
    let logpipe_config::SinkConfig::Kafka(sink) = &p.agent_config.sink else { panic!("not Kafka") };
    assert_eq!(sink.bootstrap_servers, p.kafka.bootstrap_servers);
}

/// A secured managed Kafka: TLS under the operator's CA, and the collectors and indexers each their own user, with
/// the same properties the external path renders for SCRAM.
#[test]
fn managed_kafka_clients_use_tls_and_a_user_each() {
    let lp = with(&["spec", "kafka"], json!({"managed": {"brokers": 3}}));
    let p = validate(&lp, &defaults()).unwrap();
    let props = &p.kafka.properties;
    assert_eq!(props["security.protocol"], "SASL_SSL");
    assert_eq!(props["sasl.mechanism"], "SCRAM-SHA-512");
    assert_eq!(props["ssl.ca.location"], "/etc/logpipe/kafka-ca/ca.crt");
    assert_eq!(props["sasl.username"], "${file:/etc/logpipe/kafka-sasl/username}");
    let ca = p.secrets.kafka_ca.as_ref().unwrap();
    assert_eq!((ca.name.as_str(), ca.key.as_str()), ("web-kafka-tls", "ca.crt"));
    let user =
        |c| p.secrets.kafka_sasl.of(c).map(|s| (s.secret_name.clone(), s.username_key.clone(), s.password_key.clone()));
    assert_eq!(
        user(crate::model::KafkaClient::Collector),
        Some(("web-kafka-users".into(), "collector.username".into(), "collector.password".into()))
    );
    assert_eq!(
        user(crate::model::KafkaClient::Indexer),
        Some(("web-kafka-users".into(), "indexer.username".into(), "indexer.password".into()))
    );
    let logpipe_config::SinkConfig::Kafka(sink) = &p.agent_config.sink else { panic!("not Kafka") };
    assert_eq!(sink.properties.get("security.protocol").map(String::as_str), Some("SASL_SSL"));
}

/// The listener security of a cluster the operator made stays; a cluster made before the field existed (a
/// scaling operation in the status, no listeners) runs PLAINTEXT.
#[test]
fn a_running_clusters_listener_security_is_kept() {
    use crate::crd::{KafkaOperation, KafkaPhase};
    let operation = || Some(KafkaOperation { phase: KafkaPhase::Idle, drain_to: None });
    let cases = [
        (None, None, None, Ok(ListenerSecurity::SaslSsl)),
        (Some("PLAINTEXT"), None, None, Ok(ListenerSecurity::Plaintext)),
        (None, Some(ListenerSecurity::Plaintext), None, Ok(ListenerSecurity::Plaintext)),
        (None, None, operation(), Ok(ListenerSecurity::Plaintext)),
        (Some("SASL_SSL"), Some(ListenerSecurity::SaslSsl), operation(), Ok(ListenerSecurity::SaslSsl)),
        (Some("SASL_SSL"), None, operation(), Err("spec.kafka.managed.listenerSecurity")),
        (Some("PLAINTEXT"), Some(ListenerSecurity::SaslSsl), None, Err("spec.kafka.managed.listenerSecurity")),
    ];
    for (asked, listeners, kafka_operation, want) in cases {
        let mut managed = json!({"brokers": 3});
        if let Some(asked) = asked {
            managed["listenerSecurity"] = json!(asked);
        }
        let mut lp = with(&["spec", "kafka"], json!({ "managed": managed }));
        lp.status =
            Some(crate::crd::LogPipelineStatus { kafka_listeners: listeners, kafka_operation, ..Default::default() });
        let got = validate(&lp, &defaults()).map(|p| p.managed.unwrap().security).map_err(|e| e.field);
        assert_eq!(got, want.map_err(String::from), "{asked:?} over {listeners:?}");
    }
}

#[test]
fn managed_kafka_security_settings_are_the_operators() {
    for key in ["ssl.client.auth", "sasl.enabled.mechanisms", "listener.name.internal.ssl.keystore.location"] {
        let lp = with(&["spec", "kafka"], json!({"managed": {"config": {key: "x"}}}));
        let field = validate(&lp, &defaults()).unwrap_err().field;
        assert_eq!(field, format!("spec.kafka.managed.config.{key}"));
    }
}

/// A managed spec is checked in full; an invalid one names its field, a valid one is accepted.
#[test]
fn managed_kafka_specs_are_checked() {
    let cases = [
        (json!({"brokers": 0}), Some("spec.kafka.managed.brokers")),
        (json!({"controllers": 2}), Some("spec.kafka.managed.controllers")),
        (json!({"controllers": 0}), Some("spec.kafka.managed.controllers")),
        (json!({"storage": {"size": "lots"}}), Some("spec.kafka.managed.storage.size")),
        (json!({"storage": {"size": "0Gi"}}), Some("spec.kafka.managed.storage.size")),
        (json!({"config": {"listeners": "PLAINTEXT://:9092"}}), Some("spec.kafka.managed.config.listeners")),
        (json!({"config": {"node.id": "7"}}), Some("spec.kafka.managed.config.node.id")),
        // The topic's default replication factor is 3: two brokers cannot hold it.
        (json!({"brokers": 2}), Some("spec.kafka.topic.replicationFactor")),
        (
            json!({"reassignmentThrottleBytesPerSecond": 0}),
            Some("spec.kafka.managed.reassignmentThrottleBytesPerSecond"),
        ),
        (json!({"reassignmentThrottleBytesPerSecond": 10485760}), None),
        (json!({"reassignmentTimeoutSeconds": -1}), Some("spec.kafka.managed.reassignmentTimeoutSeconds")),
        (json!({"reassignmentTimeoutSeconds": 600}), None),
        (json!({"brokers": 5, "controllers": 5, "storage": {"size": "1.5Ti"}}), None),
        (json!({"config": {"log.retention.hours": "24"}}), None),
    ];
    for (managed, field) in cases {
        let lp = with(&["spec", "kafka"], json!({ "managed": managed }));
        assert_eq!(validate(&lp, &defaults()).err().map(|e| e.field), field.map(String::from), "{managed}");
    }
}

#[test]
fn tls_and_sasl_become_file_references_never_values() {
    let lp = with(
        &["spec", "kafka", "external"],
        json!({
            "bootstrapServers": "k:9093",
            "tls": {"caSecret": {"name": "kafka-ca", "key": "ca.pem"}},
            "sasl": {"mechanism": "SCRAM-SHA-512", "secretName": "kafka-user", "passwordKey": "pw"}
        }),
    );
    let p = validate(&lp, &defaults()).unwrap();
    let props = &p.kafka.properties;
    assert_eq!(props["security.protocol"], "SASL_SSL");
    assert_eq!(props["sasl.mechanism"], "SCRAM-SHA-512");
    assert_eq!(props["sasl.password"], "${file:/etc/logpipe/kafka-sasl/password}");
    assert_eq!(props["ssl.ca.location"], "/etc/logpipe/kafka-ca/ca.crt");
    let sasl = p.secrets.kafka_sasl.of(crate::model::KafkaClient::Indexer).unwrap();
    assert_eq!(p.secrets.kafka_sasl.of(crate::model::KafkaClient::Collector), Some(sasl), "one user for both");
    assert_eq!((sasl.username_key.as_str(), sasl.password_key.as_str()), ("username", "pw"));
    assert_eq!(p.secrets.kafka_ca.unwrap().key, "ca.pem");
}

#[test]
fn security_protocol_follows_tls_and_sasl() {
    let cases = [
        (json!({}), None),
        (json!({"tls": {}}), Some("SSL")),
        (json!({"sasl": {"mechanism": "PLAIN", "secretName": "s"}}), Some("SASL_PLAINTEXT")),
    ];
    for (extra, protocol) in cases {
        let mut external = json!({"bootstrapServers": "k:9092"});
        external.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let p = validate(&with(&["spec", "kafka", "external"], external), &defaults()).unwrap();
        assert_eq!(p.kafka.properties.get("security.protocol").map(String::as_str), protocol);
    }
}

/// What a pipeline owner may ask for is bounded by the administrator's policy; the same specs pass a policy that
/// allows them.
#[test]
fn the_policy_refuses_what_it_does_not_allow() {
    let cases: [(&str, &[&str], Value, &str); 7] = [
        (
            "other namespaces",
            &["spec", "collector", "filter"],
            json!({"includeNamespaces": ["logging", "payments"]}),
            "spec.collector.filter.includeNamespaces",
        ),
        ("node secrets", &["spec", "collector", "paths"], json!(["/etc/kubernetes/pki/*.key"]), "spec.collector.paths"),
        (
            "another directory",
            &["spec", "collector", "extraHostPaths"],
            json!(["/var/lib/kubelet/pods"]),
            "spec.collector.extraHostPaths",
        ),
        ("collector image", &["spec", "collector", "image"], json!("evil/collector:1"), "spec.collector.image"),
        ("indexer image", &["spec", "indexer", "image"], json!("evil/indexer:1"), "spec.indexer.image"),
        ("kafka image", &["spec", "kafka"], json!({"managed": {"image": "evil/kafka:1"}}), "spec.kafka.managed.image"),
        ("state dir", &["spec", "collector", "stateDir"], json!("/var/lib/logpipe/other"), "spec.collector.stateDir"),
    ];
    let strict = Defaults::new("logpipe/collector:1");
    let allowing = Defaults {
        policy: Policy {
            host_paths: vec!["/".into()],
            image_overrides: true,
            cluster_wide: Namespaces::Any,
            ..Policy::default()
        },
        ..strict.clone()
    };
    for (what, path, value, field) in cases {
        let lp = with(path, value);
        let refused = validate(&lp, &strict).expect_err(what);
        assert_eq!(refused.field, field, "{what}: {refused}");
        if field != "spec.collector.stateDir" {
            assert!(refused.reason.contains("policy"), "{what}: {refused}");
            assert!(validate(&lp, &allowing).is_ok(), "{what} is allowed by a policy that allows it");
        }
    }
    let p = validate(&serde_json::from_value(base()).unwrap(), &strict).expect("the defaults pass the default policy");
    assert_eq!(p.agent_config.filter.include_namespaces, ["logging"], "confined to its own namespace");
    let p = validate(&serde_json::from_value(base()).unwrap(), &allowing).unwrap();
    assert!(p.agent_config.filter.include_namespaces.is_empty(), "a cluster-wide pipeline collects every namespace");
}

#[test]
fn host_paths_are_the_glob_bases_and_extras_without_nesting() {
    let mut v = base();
    v["spec"]["collector"] = json!({
        "paths": ["/var/log/pods/*/*/*.log", "/var/log/pods/kube-system_*/*/*.log", "/var/log/containers/*.log"],
        "extraHostPaths": ["/var/lib/docker/containers", "/var/log/containers"]
    });
    let p = validate(&serde_json::from_value(v).unwrap(), &defaults()).unwrap();
    assert_eq!(p.host_paths, ["/var/lib/docker/containers", "/var/log/containers", "/var/log/pods"]);
}

#[test]
fn replication_factor_is_checked_against_the_brokers() {
    let p = validate(&serde_json::from_value(base()).unwrap(), &defaults()).unwrap();
    assert!(against_cluster(&p.topic, &Facts { broker_count: 3 }).is_ok());
    let e = against_cluster(&p.topic, &Facts { broker_count: 1 }).unwrap_err();
    assert_eq!(e.field, "spec.kafka.topic.replicationFactor");
}

#[test]
fn processors_are_parsed_with_the_indexers_definition() {
    let lp = with(
        &["spec", "indexer", "processors"],
        json!([{"type": "parse_json", "field": "message"}, {"type": "drop", "field": "log.level", "values": ["debug"]}]),
    );
    let p = validate(&lp, &defaults()).unwrap();
    assert_eq!(p.indexer_config.processors.len(), 2);
}

#[test]
fn managed_kafka_defaults() {
    let spec: crate::crd::ManagedKafka = serde_json::from_value(json!({})).unwrap();
    let k = super::managed::cluster(&spec, "uid-1", &Default::default(), None).unwrap();
    assert_eq!(k.security, ListenerSecurity::SaslSsl, "a new cluster is secured");
    assert_eq!((k.brokers, k.controllers), (3, 3));
    assert_eq!((k.storage.size.as_str(), k.storage.delete_claim_on_scale_down), ("10Gi", false));
    assert_eq!(k.image, super::managed::DEFAULT_KAFKA_IMAGE);
    assert_eq!(k.cluster_id, crate::build::kafka::properties::cluster_id("uid-1"));
    assert_eq!(k.reassignment_throttle, 50 * 1024 * 1024, "50 MiB/s");
    assert_eq!(k.reassignment_timeout, std::time::Duration::from_secs(6 * 3600));
}

#[test]
fn the_in_flight_bound_reaches_the_agent() {
    let p = validate(&serde_json::from_value(base()).unwrap(), &defaults()).unwrap();
    assert_eq!(p.agent_config.max_in_flight_bytes, 16 << 20, "the agent's default");
    let lp = with(&["spec", "collector", "maxInFlightBytes"], json!(4 << 20));
    assert_eq!(validate(&lp, &defaults()).unwrap().agent_config.max_in_flight_bytes, 4 << 20);
    for bad in [json!(0), json!(-1), json!(8_i64 << 30)] {
        let lp = with(&["spec", "collector", "maxInFlightBytes"], bad.clone());
        let e = validate(&lp, &defaults()).unwrap_err();
        assert!(e.field.starts_with("spec.collector"), "{bad}: {e}");
    }
}
