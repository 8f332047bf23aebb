use super::pod::{self, Mount};
use super::{labels, meta, selector_labels, Component};
use crate::model::{paths, Pipeline};
use crate::validate::CARRIED_FROM_ANNOTATION;
use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetSpec, DaemonSetUpdateStrategy, RollingUpdateDaemonSet};
use k8s_openapi::api::core::v1::{
    Container, EnvVar, EnvVarSource, HostPathVolumeSource, ObjectFieldSelector, PodSecurityContext, PodSpec,
    PodTemplateSpec, ResourceRequirements, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// The group of the files the kubelet writes.
const ROOT_GROUP: i64 = 0;

/// The agent's node name, and mimalloc settings read at process start: by default mimalloc commits its first
/// arena eagerly and returns freed memory late, which costs the agent about 20 MiB of RSS on every node for no
/// measured CPU (docs/benchmarks.md, "mimalloc's settings").
fn agent_env() -> Vec<EnvVar> {
    let node_name = EnvVar {
        name: "NODE_NAME".into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector { field_path: "spec.nodeName".into(), api_version: None }),
            ..Default::default()
        }),
        value: None,
    };
    let set = |name: &str, value: &str| EnvVar { name: name.into(), value: Some(value.into()), value_from: None };
    vec![node_name, set("MIMALLOC_ARENA_EAGER_COMMIT", "0"), set("MIMALLOC_PURGE_DELAY", "0")]
}

pub(super) fn daemon_set(p: &Pipeline, owner: Option<&OwnerReference>, config_hash: &str) -> DaemonSet {
    let (volumes, volume_mounts) = pod::split(mounts(p));
    let container = Container {
        name: "collector".into(),
        image: Some(p.collector.image.clone()),
        args: Some(vec!["agent".into(), "--config".into(), format!("{}/{}", paths::CONFIG_DIR, paths::AGENT_CONFIG)]),
        env: Some(agent_env()),
        ports: Some(vec![pod::metrics_port()]),
        liveness_probe: Some(pod::probe("/healthz", 30)),
        readiness_probe: Some(pod::probe("/readyz", 10)),
        resources: Some(p.collector.resources.clone()),
        security_context: Some(pod::security_context()),
        volume_mounts: Some(volume_mounts),
        ..Default::default()
    };
    DaemonSet {
        metadata: ObjectMeta {
            annotations: p
                .earlier_state_dir
                .as_ref()
                .map(|dir| BTreeMap::from([(CARRIED_FROM_ANNOTATION.into(), dir.clone())])),
            ..meta(&p.name, p.name.collector(), Component::Collector, owner)
        },
        spec: Some(DaemonSetSpec {
            selector: LabelSelector {
                match_labels: Some(selector_labels(&p.name, Component::Collector)),
                ..Default::default()
            },
            update_strategy: Some(DaemonSetUpdateStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDaemonSet {
                    max_unavailable: Some(IntOrString::Int(1)),
                    ..Default::default()
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(pod::template_meta(labels(&p.name, Component::Collector), config_hash)),
                spec: Some(PodSpec {
                    service_account_name: Some(p.name.collector()),
                    init_containers: Some(vec![own_state_dir(p)]),
                    containers: vec![container],
                    // The kubelet and the container engines write pod logs as root:root, mode 0640, in directories
                    // the root group may enter: the group reads them, without the rights of root's user.
                    security_context: Some(PodSecurityContext {
                        supplemental_groups: Some(vec![ROOT_GROUP]),
                        ..Default::default()
                    }),
                    volumes: Some(volumes),
                    tolerations: Some(p.collector.tolerations.clone()),
                    node_selector: non_empty(&p.collector.node_selector),
                    priority_class_name: p.collector.priority_class_name.clone(),
                    termination_grace_period_seconds: Some(30),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The kubelet creates the state directory as root, mode 0755: this gives it to the collector's user before the
/// collector starts, with the one capability that needs.
fn own_state_dir(p: &Pipeline) -> Container {
    let owner = format!("{}:{}", pod::NON_ROOT_USER, pod::NON_ROOT_USER);
    Container {
        name: "state-owner".into(),
        image: Some(p.collector.image.clone()),
        command: Some(vec!["chown".into(), owner, paths::STATE_DIR.into()]),
        security_context: Some(pod::root_context(&["CHOWN"])),
        resources: Some(ResourceRequirements {
            limits: Some(BTreeMap::from([("memory".into(), Quantity("16Mi".into()))])),
            ..Default::default()
        }),
        volume_mounts: Some(vec![VolumeMount {
            name: paths::STATE_VOLUME.into(),
            mount_path: paths::STATE_DIR.into(),
            ..Default::default()
        }]),
        ..Default::default()
    }
}

fn mounts(p: &Pipeline) -> Vec<Mount> {
    let mut mounts = vec![pod::config(p.name.collector())];
    for (n, dir) in p.host_paths.iter().enumerate() {
        mounts.push(pod::read_only(host_path(&format!("logs-{n}"), dir, None), dir));
    }
    // Checkpoints live on the node so a new pod resumes where the last one's Kafka acknowledgements ended.
    let state = host_path(paths::STATE_VOLUME, &p.state_dir, Some("DirectoryOrCreate"));
    let mount = VolumeMount { name: state.name.clone(), mount_path: paths::STATE_DIR.into(), ..Default::default() };
    mounts.push(Mount { volume: state, mount });
    if let Some(earlier) = &p.earlier_state_dir {
        let volume = host_path("earlier-state", earlier, Some("DirectoryOrCreate"));
        mounts.push(pod::read_only(volume, paths::EARLIER_STATE_DIR));
    }
    mounts.extend(pod::kafka_secrets(&p.secrets, crate::model::KafkaClient::Collector));
    mounts
}

fn host_path(name: &str, path: &str, type_: Option<&str>) -> Volume {
    Volume {
        name: name.into(),
        host_path: Some(HostPathVolumeSource { path: path.into(), type_: type_.map(Into::into) }),
        ..Default::default()
    }
}

pub(super) fn non_empty(
    map: &std::collections::BTreeMap<String, String>,
) -> Option<std::collections::BTreeMap<String, String>> {
    (!map.is_empty()).then(|| map.clone())
}
