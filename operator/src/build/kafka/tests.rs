use super::properties::{self, cluster_id, OPERATOR_KEYS};
use super::*;
use crate::model::BrokerStorage;
use crate::names::MAX_NAME_LEN;

fn cluster(brokers: u32, config: &[(&str, &str)]) -> ManagedCluster {
    ManagedCluster {
        brokers,
        controllers: 3,
        image: "apache/kafka:4.1.0".into(),
        storage: BrokerStorage { size: "50Gi".into(), class: Some("fast".into()), delete_claim_on_scale_down: false },
        resources: Default::default(),
        broker_config: config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        cluster_id: cluster_id("0b9c6f1e-1111-2222-3333-444455556666"),
        reassignment_throttle: 1 << 20,
        reassignment_timeout: std::time::Duration::from_secs(3600),
        operator: crate::model::OperatorPods::default(),
        security: ListenerSecurity::Plaintext,
        certificate: None,
    }
}

fn secured(certificate: &str) -> ManagedCluster {
    ManagedCluster { security: ListenerSecurity::SaslSsl, certificate: Some(certificate.into()), ..cluster(3, &[]) }
}

/// A server.properties key and value.
type Setting<'a> = (&'a str, &'a str);

fn name() -> PipelineName {
    PipelineName::new("logs", "prod").unwrap()
}

fn props(text: &str) -> BTreeMap<&str, &str> {
    text.lines().filter_map(|l| l.split_once('=')).collect()
}

#[test]
fn objects_and_their_order() {
    let o = build(&name(), &cluster(3, &[]), None);
    let sets: Vec<_> = o.stateful_sets().into_iter().map(|s| s.metadata.name.clone().unwrap()).collect();
    assert_eq!(sets, ["prod-kraft", "prod-kafka"], "controllers first");
    let services: Vec<_> = o.services.iter().map(|s| s.metadata.name.clone().unwrap()).collect();
    assert_eq!(services, ["prod-kraft", "prod-kafka", "prod-kafka-bootstrap"]);
    for s in &o.services[..2] {
        let spec = s.spec.as_ref().unwrap();
        assert_eq!((spec.cluster_ip.as_deref(), spec.publish_not_ready_addresses), (Some("None"), Some(true)));
    }
    for pdb in &o.disruption_budgets {
        assert_eq!(pdb.spec.as_ref().unwrap().max_unavailable, Some(IntOrString::Int(1)));
    }
}

/// Who may connect: the pipeline's Kafka nodes, collectors and indexers, and the operator's pods; the policy
/// selects the Kafka pods and is applied before them.
#[test]
fn only_the_pipeline_and_the_operator_reach_the_cluster() {
    let o = build(&name(), &cluster(3, &[]), None);
    let spec = o.network_policy.spec.clone().unwrap();
    let component_values = |s: &LabelSelector| {
        let e = &s.match_expressions.as_ref().unwrap()[0];
        assert_eq!((e.key.as_str(), e.operator.as_str()), ("app.kubernetes.io/component", "In"));
        let instance = s.match_labels.as_ref().unwrap().get("app.kubernetes.io/instance").cloned();
        (instance, e.values.clone().unwrap())
    };
    let (instance, kafka) = component_values(spec.pod_selector.as_ref().unwrap());
    assert_eq!(instance.as_deref(), Some("prod"));
    assert_eq!(kafka, ["kafka-controller", "kafka-broker"]);
    for set in o.stateful_sets() {
        let pod_labels = set.spec.as_ref().unwrap().template.metadata.clone().unwrap().labels.unwrap();
        assert!(kafka.contains(&pod_labels["app.kubernetes.io/component"]), "the policy selects {pod_labels:?}");
    }
    assert_eq!(spec.policy_types.as_deref(), Some(&["Ingress".to_owned()][..]));
    let rules = spec.ingress.unwrap();
    assert_eq!(rules.len(), 1, "one rule, no other way in");
    let from = rules[0].from.clone().unwrap();
    let (_, clients) = component_values(from[0].pod_selector.as_ref().unwrap());
    assert_eq!(clients, ["kafka-controller", "kafka-broker", "collector", "indexer"]);
    assert!(from[0].namespace_selector.is_none(), "the pipeline's pods of its own namespace only");
    let operator = from[1].namespace_selector.as_ref().unwrap().match_labels.clone().unwrap();
    assert_eq!(operator["kubernetes.io/metadata.name"], "logpipe-system");
    let pods = from[1].pod_selector.as_ref().unwrap().match_labels.clone().unwrap();
    assert_eq!(pods["app.kubernetes.io/component"], "operator");
    let kinds: Vec<&str> = o.into_children().iter().map(|c| c.kind()).collect();
    assert_eq!(kinds[0], "NetworkPolicy", "before any broker listens");
}

#[test]
fn kafka_pods_are_restricted_and_get_no_token() {
    let o = build(&name(), &cluster(3, &[]), None);
    for set in o.stateful_sets() {
        let pod = set.spec.clone().unwrap().template.spec.unwrap();
        assert_eq!(pod.automount_service_account_token, Some(false));
        let security = pod.security_context.unwrap();
        assert_eq!((security.run_as_non_root, security.run_as_user), (Some(true), Some(1000)));
        assert_eq!(security.seccomp_profile.unwrap().type_, "RuntimeDefault");
        let container = pod.containers[0].security_context.clone().unwrap();
        assert_eq!(container.allow_privilege_escalation, Some(false));
        assert_eq!(container.capabilities.unwrap().drop, Some(vec!["ALL".to_owned()]));
    }
}

#[test]
fn stateful_sets_leave_every_restart_to_the_operator() {
    let o = build(&name(), &cluster(5, &[]), None);
    let cases = [("prod-kraft", 3, "1000", "1Gi"), ("prod-kafka", 5, "0", "50Gi")];
    for (set, (want_name, replicas, base, size)) in o.stateful_sets().into_iter().zip(cases) {
        let spec = set.spec.as_ref().unwrap();
        assert_eq!(set.metadata.name.as_deref(), Some(want_name));
        assert_eq!(spec.replicas, Some(replicas));
        assert_eq!(spec.update_strategy.as_ref().unwrap().type_.as_deref(), Some("OnDelete"));
        assert_eq!(spec.service_name.as_deref(), Some(want_name));
        let env = spec.template.spec.as_ref().unwrap().containers[0].env.clone().unwrap();
        let base_env = env.iter().find(|e| e.name == "NODE_ID_BASE").unwrap();
        assert_eq!(base_env.value.as_deref(), Some(base), "{want_name}");
        let claim = &spec.volume_claim_templates.as_ref().unwrap()[0];
        let storage = &claim.spec.as_ref().unwrap().resources.as_ref().unwrap().requests.as_ref().unwrap()["storage"];
        assert_eq!(storage.0, size);
    }
}

#[test]
fn volume_claims_are_kept_by_the_stateful_sets() {
    let mut k = cluster(3, &[]);
    k.storage.delete_claim_on_scale_down = true;
    for set in build(&name(), &k, None).stateful_sets() {
        let spec = set.spec.clone().unwrap();
        assert_eq!(
            spec.persistent_volume_claim_retention_policy, None,
            "claims are deleted by the operator, if at all"
        );
        let claim = &spec.volume_claim_templates.unwrap()[0];
        assert_eq!(claim.spec.as_ref().unwrap().storage_class_name.as_deref(), Some("fast"));
    }
}

#[test]
fn broker_properties_defaults_spec_and_operator_keys() {
    // (brokers, spec config, key, expected value)
    let cases: [(u32, &[Setting], &str, &str); 7] = [
        (1, &[], "default.replication.factor", "1"),
        (1, &[], "min.insync.replicas", "1"),
        (5, &[], "default.replication.factor", "3"),
        (5, &[], "min.insync.replicas", "2"),
        (5, &[("min.insync.replicas", "1")], "min.insync.replicas", "1"),
        (3, &[], "unclean.leader.election.enable", "false"),
        (3, &[("log.dirs", "/tmp/elsewhere")], "log.dirs", properties::DATA_DIR),
    ];
    for (brokers, config, key, want) in cases {
        let text = properties::broker(&name(), &cluster(brokers, config));
        assert_eq!(props(&text).get(key).copied(), Some(want), "{brokers} brokers, {config:?}: {key}");
    }
}

#[test]
fn every_node_knows_the_quorum_and_its_own_placeholders() {
    let k = cluster(3, &[]);
    let voters = "1000@prod-kraft-0.prod-kraft.logs.svc:9093,1001@prod-kraft-1.prod-kraft.logs.svc:9093,\
                  1002@prod-kraft-2.prod-kraft.logs.svc:9093";
    for text in [properties::controller(&name(), &k), properties::broker(&name(), &k)] {
        let p = props(&text);
        assert_eq!(p["controller.quorum.voters"], voters);
        assert_eq!(p["node.id"], properties::NODE_ID);
        for key in OPERATOR_KEYS.iter().filter(|k| p.contains_key(**k)) {
            assert!(!p[key].is_empty(), "{key}");
        }
    }
    let broker = properties::broker(&name(), &k);
    assert_eq!(props(&broker)["advertised.listeners"], "INTERNAL://@HOST@:9092");
    for placeholder in [properties::NODE_ID, properties::HOST] {
        assert!(properties::START_SCRIPT.contains(placeholder), "the start script fills in {placeholder}");
    }
}

#[test]
fn cluster_id_is_a_stable_kraft_id() {
    let a = cluster_id("uid-a");
    assert_eq!(a.len(), 22, "16 bytes in base64url without padding");
    assert!(a.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{a}");
    assert_eq!(a, cluster_id("uid-a"));
    assert_ne!(a, cluster_id("uid-b"));
}

#[test]
fn names_fit_kubernetes_limits_for_the_longest_pipeline_name() {
    let long = PipelineName::new("ns", &"x".repeat(MAX_NAME_LEN)).unwrap();
    // controller-revision-hash labels add 11 characters to a StatefulSet's name, within 63.
    assert!(long.kafka_controllers().len() <= 52 && long.kafka_brokers().len() <= 52);
    assert!(long.kafka_bootstrap().len() <= 63);
}

/// The digest of each role's file on its pod template: a configuration change is a new revision of that set alone
/// (which the operator then rolls); adding brokers beyond three changes no file and restarts nothing.
#[test]
fn a_config_change_is_a_new_revision_of_its_set_only() {
    let digests = |k: &ManagedCluster| {
        build(&name(), k, None).stateful_sets().map(|s| {
            let template = s.spec.as_ref().unwrap().template.metadata.as_ref().unwrap();
            template.annotations.as_ref().unwrap()[crate::build::CONFIG_HASH_ANNOTATION].clone()
        })
    };
    let [controllers, brokers] = digests(&cluster(3, &[]));
    let cases = [
        ("more brokers", cluster(5, &[]), true, true),
        ("a broker key", cluster(3, &[("log.retention.hours", "24")]), true, false),
        ("fewer than three brokers: a new replication default", cluster(2, &[]), true, false),
    ];
    for (what, k, same_controllers, same_brokers) in cases {
        let [c, b] = digests(&k);
        assert_eq!((c == controllers, b == brokers), (same_controllers, same_brokers), "{what}");
    }
}

/// `SASL_SSL`: controllers take brokers by certificate alone; brokers take clients and each other by SCRAM over
/// TLS; every node reads its key store from the memory volume the start script fills.
#[test]
fn secured_listeners() {
    let k = secured("c1");
    let controller = properties::controller(&name(), &k);
    let c = props(&controller);
    assert_eq!(c["listener.security.protocol.map"], "CONTROLLER:SSL");
    assert_eq!(c["ssl.client.auth"], "required");
    let broker = properties::broker(&name(), &k);
    let b = props(&broker);
    assert_eq!(b["listener.security.protocol.map"], "INTERNAL:SASL_SSL,CONTROLLER:SSL");
    assert_eq!(b["sasl.enabled.mechanisms"], "SCRAM-SHA-512");
    assert_eq!(b["sasl.mechanism.inter.broker.protocol"], "SCRAM-SHA-512");
    assert!(!b.contains_key("ssl.client.auth"), "clients authenticate by SCRAM, not certificates");
    let jaas = b["listener.name.internal.scram-sha-512.sasl.jaas.config"];
    assert!(jaas.contains(r#"username="broker" password="@BROKER_PASSWORD@";"#), "{jaas}");
    for p in [&c, &b] {
        assert_eq!(p["ssl.keystore.type"], "PEM");
        assert_eq!(p["ssl.keystore.location"], format!("{}/keystore.pem", properties::RUN_DIR));
        assert_eq!(p["ssl.truststore.location"], format!("{}/ca.crt", properties::TLS_DIR));
    }
    let script = properties::START_SCRIPT;
    for needed in
        [properties::BROKER_PASSWORD, properties::TLS_DIR, properties::USERS_DIR, properties::RUN_DIR, "SCRAM-SHA-512"]
    {
        assert!(script.contains(needed), "the start script knows {needed}");
    }
    let plain = properties::broker(&name(), &cluster(3, &[]));
    assert_eq!(props(&plain)["listener.security.protocol.map"], "INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT");
    assert!(!plain.contains("ssl.") && !plain.contains("sasl."), "{plain}");
}

/// Controllers mount every user's password (they write them all when formatting), brokers only their own; the
/// key never reaches a writable or persistent volume; a renewed certificate changes the pod templates.
#[test]
fn secured_nodes_mount_only_what_they_need() {
    let o = build(&name(), &secured("c1"), None);
    let secret_items = |set: &StatefulSet, volume: &str| {
        let spec = set.spec.as_ref().unwrap().template.spec.clone().unwrap();
        let v = spec.volumes.unwrap().into_iter().find(|v| v.name == volume).unwrap();
        let s = v.secret.unwrap();
        (s.secret_name.unwrap(), s.items.unwrap().into_iter().map(|i| i.key).collect::<Vec<_>>())
    };
    let all = ["broker.password", "operator.password", "collector.password", "indexer.password"];
    assert_eq!(secret_items(&o.controllers, "users"), ("prod-kafka-users".into(), all.map(String::from).to_vec()));
    assert_eq!(secret_items(&o.brokers, "users"), ("prod-kafka-users".into(), vec!["broker.password".to_owned()]));
    for set in o.stateful_sets() {
        let (secret, items) = secret_items(set, "tls");
        assert_eq!(
            (secret.as_str(), items),
            ("prod-kafka-tls", vec!["ca.crt".into(), "tls.crt".into(), "tls.key".into()])
        );
        let spec = set.spec.as_ref().unwrap().template.spec.clone().unwrap();
        let mounts = spec.containers[0].volume_mounts.clone().unwrap();
        let writable: Vec<_> =
            mounts.iter().filter(|m| m.read_only != Some(true)).map(|m| m.mount_path.as_str()).collect();
        assert_eq!(writable, ["/var/lib/kafka", properties::RUN_DIR]);
        let run = spec.volumes.unwrap().into_iter().find(|v| v.name == "run").unwrap();
        assert_eq!(run.empty_dir.unwrap().medium.as_deref(), Some("Memory"));
    }
    let hash = |o: &KafkaObjects| {
        o.stateful_sets().map(|s| {
            s.spec.as_ref().unwrap().template.metadata.clone().unwrap().annotations.unwrap()[CONFIG_HASH_ANNOTATION]
                .clone()
        })
    };
    let renewed = build(&name(), &secured("c2"), None);
    let (before, after) = (hash(&o), hash(&renewed));
    assert!(before[0] != after[0] && before[1] != after[1], "a new certificate rolls both sets");
    let plain = build(&name(), &cluster(3, &[]), None);
    let spec = plain.brokers.spec.unwrap().template.spec.unwrap();
    let volumes: Vec<_> = spec.volumes.unwrap().into_iter().map(|v| v.name).collect();
    assert_eq!(volumes, ["config", "run"], "no secrets for a PLAINTEXT cluster");
}
