use super::*;
use crate::crd::LogPipeline;
use crate::model::paths;
use crate::validate::{validate, Defaults};
use logpipe_config::{AgentConfig, IndexerConfig};
use serde_json::{json, Value};

fn pipeline(spec_patch: impl FnOnce(&mut Value)) -> Pipeline {
    let mut v = json!({
        "apiVersion": "logpipe.dev/v1alpha1",
        "kind": "LogPipeline",
        "metadata": {"name": "web", "namespace": "logging"},
        "spec": {
            "kafka": {"external": {"bootstrapServers": "kafka:9092", "sasl": {"mechanism": "PLAIN", "secretName": "ku"}}},
            "indexer": {"elasticsearch": {"url": "https://es:9200", "credentials": {"type": "apiKey", "secretName": "esk"},
                        "caSecret": {"name": "es-ca", "key": "tls.crt"}}}
        }
    });
    spec_patch(&mut v["spec"]);
    let lp: LogPipeline = serde_json::from_value(v).unwrap();
    let policy = crate::validate::Policy {
        host_paths: vec!["/var".into()],
        cluster_wide: crate::validate::Namespaces::Any,
        ..Default::default()
    };
    validate(&lp, &Defaults { policy, ..Defaults::new("img:1") }).unwrap()
}

fn owner() -> OwnerReference {
    OwnerReference {
        api_version: "logpipe.dev/v1alpha1".into(),
        kind: "LogPipeline".into(),
        name: "web".into(),
        uid: "uid-1".into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn hashes(d: &Desired) -> (String, String) {
    let hash =
        |m: &Option<ObjectMeta>| m.as_ref().unwrap().annotations.as_ref().unwrap()[CONFIG_HASH_ANNOTATION].clone();
    (
        hash(&d.daemon_set().unwrap().spec.as_ref().unwrap().template.metadata),
        hash(&d.deployment().unwrap().spec.as_ref().unwrap().template.metadata),
    )
}

#[test]
fn namespaced_children_are_owned_and_cluster_ones_are_labelled() {
    let d = build(&pipeline(|_| {}), Some(&owner()), None);
    let (cluster, namespaced): (Vec<_>, Vec<_>) =
        d.children.iter().partition(|c| matches!(c, Child::ClusterRole(_) | Child::ClusterRoleBinding(_)));
    for meta in namespaced.iter().map(|c| c.metadata()) {
        assert_eq!(meta.owner_references.as_deref(), Some(&[owner()][..]), "{:?}", meta.name);
        assert_eq!(meta.namespace.as_deref(), Some("logging"));
    }
    assert_eq!(cluster.len(), 2);
    for meta in cluster.iter().map(|c| c.metadata()) {
        assert!(meta.owner_references.is_none());
        assert_eq!(meta.name, Some(PipelineName::new("logging", "web").unwrap().collector_cluster_role()));
        assert_eq!(meta.labels.as_ref().unwrap()[PIPELINE_NAMESPACE_LABEL], "logging");
    }
}

#[test]
fn the_config_maps_hold_configs_the_collector_parses_back() {
    let p = pipeline(|_| {});
    let d = build(&p, None, None);
    let maps: Vec<&ConfigMap> = d
        .children
        .iter()
        .filter_map(|c| match c {
            Child::ConfigMap(m) => Some(m),
            _ => None,
        })
        .collect();
    let agent: AgentConfig = serde_yaml::from_str(&maps[0].data.as_ref().unwrap()["agent.yaml"]).unwrap();
    assert_eq!(agent, p.agent_config);
    let indexer: IndexerConfig = serde_yaml::from_str(&maps[1].data.as_ref().unwrap()["indexer.yaml"]).unwrap();
    assert_eq!(indexer, p.indexer_config);
    // Secrets are mounted, never copied: the configs hold file references only.
    let text = format!("{maps:?}");
    assert!(text.contains("${file:/etc/logpipe/kafka-sasl/password}"));
    assert!(text.contains("${file:/etc/logpipe/es-credentials/api_key}"));
}

#[test]
fn config_hashes_change_with_their_own_config_only() {
    let base = hashes(&build(&pipeline(|_| {}), None, None));
    type Case = (&'static str, fn(&mut Value), bool, bool);
    let cases: [Case; 4] = [
        ("multiline", |s| s["collector"]["multiline"] = json!({"start": "^\\S"}), true, false),
        ("bulk size", |s| s["indexer"]["bulk"] = json!({"maxDocuments": 100}), false, true),
        ("topic", |s| s["kafka"]["topic"] = json!({"name": "other"}), true, true),
        ("indexer replicas", |s| s["indexer"]["replicas"] = json!(5), false, false),
    ];
    for (what, patch, collector_changes, indexer_changes) in cases {
        let h = hashes(&build(&pipeline(patch), None, None));
        assert_eq!(h.0 != base.0, collector_changes, "{what}: collector hash");
        assert_eq!(h.1 != base.1, indexer_changes, "{what}: indexer hash");
    }
    assert_eq!(hashes(&build(&pipeline(|_| {}), None, None)), base, "same spec, same hash");
}

#[test]
fn collector_pods_mount_logs_read_only_and_checkpoints_from_the_node() {
    let d = build(&pipeline(|s| s["collector"]["extraHostPaths"] = json!(["/var/lib/docker/containers"])), None, None);
    let pod = d.daemon_set().unwrap().clone().spec.unwrap().template.spec.unwrap();
    let volumes = pod.volumes.unwrap();
    let host = |name: &str| volumes.iter().find(|v| v.name == name).unwrap().host_path.clone().unwrap();
    assert_eq!(host("logs-0").path, "/var/lib/docker/containers");
    assert_eq!(host("logs-1").path, "/var/log/pods");
    assert_eq!(host("state").path, "/var/lib/logpipe/logging-web");
    let c = &pod.containers[0];
    let mounts = c.volume_mounts.as_ref().unwrap();
    for m in mounts {
        assert_eq!(m.read_only == Some(true), m.name != "state", "{}", m.name);
    }
    let env: Vec<(&str, Option<&str>)> =
        c.env.as_ref().unwrap().iter().map(|e| (e.name.as_str(), e.value.as_deref())).collect();
    assert_eq!(
        env,
        [("NODE_NAME", None), ("MIMALLOC_ARENA_EAGER_COMMIT", Some("0")), ("MIMALLOC_PURGE_DELAY", Some("0"))]
    );
    assert_eq!(pod.tolerations.unwrap()[0].operator.as_deref(), Some("Exists"));
    assert_eq!(pod.service_account_name.as_deref(), Some("web-collector"));
    let security = c.security_context.as_ref().unwrap();
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.capabilities.as_ref().unwrap().drop.as_deref(), Some(&["ALL".to_owned()][..]));
    assert_eq!((security.run_as_non_root, security.run_as_user), (Some(true), Some(65532)), "not root");
    assert_eq!(pod.security_context.unwrap().supplemental_groups, Some(vec![0]), "the log files' group");

    // Only the state directory's owner is root, with the one capability chown needs, on that one mount.
    let init = &pod.init_containers.as_ref().unwrap()[0];
    assert_eq!(init.command.as_ref().unwrap(), &["chown", "65532:65532", "/var/lib/logpipe"]);
    let security = init.security_context.as_ref().unwrap();
    assert_eq!(security.capabilities.as_ref().unwrap().add.as_deref(), Some(&["CHOWN".to_owned()][..]));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    let mounts: Vec<&str> = init.volume_mounts.iter().flatten().map(|m| m.name.as_str()).collect();
    assert_eq!(mounts, ["state"]);
}

/// The checkpoints of an earlier state directory are carried over: mounted read-only where the agent's config
/// says, and the choice kept on the DaemonSet for the nodes the rollout has not reached.
#[test]
fn collectors_carry_checkpoints_over_from_an_earlier_directory() {
    let plain = build(&pipeline(|_| {}), None, None);
    let mut p = pipeline(|_| {});
    p.carry_state_from("/var/lib/logpipe/logging-web".into());
    let d = build(&p, None, None);
    let ds = d.daemon_set().unwrap().clone();
    let annotations = ds.metadata.annotations.unwrap();
    assert_eq!(annotations[crate::validate::CARRIED_FROM_ANNOTATION], "/var/lib/logpipe/logging-web");
    let pod = ds.spec.unwrap().template.spec.unwrap();
    let volume = pod.volumes.unwrap().into_iter().find(|v| v.name == "earlier-state").unwrap();
    assert_eq!(volume.host_path.unwrap().path, "/var/lib/logpipe/logging-web");
    let mount = pod.containers[0].volume_mounts.clone().unwrap().into_iter().find(|m| m.name == "earlier-state");
    let mount = mount.unwrap();
    assert_eq!((mount.mount_path.as_str(), mount.read_only), (paths::EARLIER_STATE_DIR, Some(true)));
    let agent: AgentConfig =
        serde_yaml::from_str(&config_maps::build(&p, None).collector.data.unwrap()["agent.yaml"]).unwrap();
    assert_eq!(agent.earlier_state_dir.as_deref(), Some(std::path::Path::new(paths::EARLIER_STATE_DIR)));
    assert_ne!(hashes(&d).0, hashes(&plain).0, "the collectors roll to carry over");
    assert!(plain.daemon_set().unwrap().metadata.annotations.is_none());
}

/// A cluster-wide pipeline's collectors read every namespace's pods; a confined one's only its own namespace's.
#[test]
fn collectors_read_the_pods_they_may_collect() {
    let cluster_wide = build(&pipeline(|_| {}), None, None);
    let mut confined = pipeline(|_| {});
    confined.collection = crate::validate::Collection::Confined("logging".into());
    let confined = build(&confined, None, None);
    let resources = |d: &Desired| -> (Vec<String>, Option<Vec<String>>) {
        let cluster = d.children.iter().find_map(|c| match c {
            Child::ClusterRole(r) => r.rules.clone()?[0].resources.clone(),
            _ => None,
        });
        let namespaced = d.children.iter().find_map(|c| match c {
            Child::Role(r) => r.rules.clone()?[0].resources.clone(),
            _ => None,
        });
        (cluster.unwrap(), namespaced)
    };
    assert_eq!(resources(&cluster_wide), (vec!["pods".into(), "namespaces".into()], None));
    assert_eq!(resources(&confined), (vec!["namespaces".into()], Some(vec!["pods".into()])));
    let binding = confined.children.iter().find_map(|c| match c {
        Child::RoleBinding(b) => Some(b.clone()),
        _ => None,
    });
    let binding = binding.unwrap();
    assert_eq!((binding.role_ref.kind.as_str(), binding.role_ref.name.as_str()), ("Role", "web-collector"));
    assert_eq!(binding.metadata.namespace.as_deref(), Some("logging"));
}

#[test]
fn indexer_pods_run_unprivileged_without_an_api_token() {
    let d = build(&pipeline(|s| s["indexer"]["replicas"] = json!(3)), None, None);
    let spec = d.deployment().unwrap().clone().spec.unwrap();
    assert_eq!(spec.replicas, Some(3));
    let pod = spec.template.spec.unwrap();
    assert_eq!(pod.automount_service_account_token, Some(false));
    let security = pod.containers[0].security_context.as_ref().unwrap();
    assert_eq!((security.run_as_non_root, security.run_as_user), (Some(true), Some(65532)));
    let volumes: Vec<_> = pod.volumes.unwrap().into_iter().map(|v| v.name).collect();
    assert_eq!(volumes, ["config", "kafka-sasl", "es-credentials", "es-ca"]);
}

#[test]
fn children_come_in_dependency_order() {
    let p = pipeline(|s| s["kafka"] = json!({"managed": {"brokers": 3}}));
    let d = build(&p, Some(&owner()), p.managed.as_ref());
    let order: Vec<String> = d.children.iter().map(|c| format!("{}/{}", c.kind(), c.name())).collect();
    let position = |want: &str| order.iter().position(|o| o == want).unwrap_or_else(|| panic!("{want} in {order:?}"));
    let binding = format!("ClusterRoleBinding/{}", p.name.collector_cluster_role());
    let before = [
        ("ConfigMap/web-kafka-config", "StatefulSet/web-kraft"),
        ("Service/web-kafka", "StatefulSet/web-kafka"),
        ("StatefulSet/web-kraft", "StatefulSet/web-kafka"),
        ("StatefulSet/web-kafka", "ServiceAccount/web-collector"),
        ("ServiceAccount/web-collector", "DaemonSet/web-collector"),
        (binding.as_str(), "DaemonSet/web-collector"),
        ("ConfigMap/web-collector", "DaemonSet/web-collector"),
        ("ServiceAccount/web-indexer", "Deployment/web-indexer"),
        ("ConfigMap/web-indexer", "Deployment/web-indexer"),
    ];
    for (first, then) in before {
        assert!(position(first) < position(then), "{first} before {then}: {order:?}");
    }
    let unique: std::collections::BTreeSet<&String> = order.iter().collect();
    assert_eq!(unique.len(), order.len(), "every child once: {order:?}");
    let external = build(&pipeline(|_| {}), Some(&owner()), None);
    assert!(external.children.iter().all(|c| !matches!(c, Child::StatefulSet(_) | Child::Service(_))));
}
