//! The objects of a managed Kafka: a KRaft controller quorum and the brokers, each a StatefulSet behind a
//! headless Service, a bootstrap Service for clients, a PodDisruptionBudget per set, and one ConfigMap with
//! both roles' server.properties and the start script. Both StatefulSets use `OnDelete`: the operator decides
//! every restart (see `crate::kafka::managed::scaling`). Volume claims are left to the StatefulSet's default (kept); a removed
//! broker's claim is deleted by the operator itself when the spec asks, once it has verified the broker empty,
//! rather than by the StatefulSet controller on any scale-down (and `persistentVolumeClaimRetentionPolicy` is
//! beta only from Kubernetes 1.27).

mod network;
pub mod properties;

#[cfg(test)]
mod tests;

use super::config_maps::digest;
use super::{labels, meta, selector_labels, Child, Component, CONFIG_HASH_ANNOTATION};
use crate::crd::ListenerSecurity;
use crate::model::ManagedCluster;
use crate::names::PipelineName;
use crate::validate::ManagedUser;
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec, StatefulSetUpdateStrategy};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, KeyToPath,
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    SeccompProfile, SecretVolumeSource, SecurityContext, Service, ServicePort, ServiceSpec, TCPSocketAction, Volume,
    VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use properties::{BROKER_PORT, CONTROLLER_ID_BASE, CONTROLLER_PORT, RUN_DIR, TLS_DIR, USERS_DIR};
use std::collections::BTreeMap;

/// The user of the Kafka image (apache/kafka runs as uid 1000); the volume is made writable for its group.
const KAFKA_USER: i64 = 1000;
/// Controllers keep only the metadata log.
const CONTROLLER_STORAGE: &str = "1Gi";

#[derive(Debug, Clone, PartialEq)]
pub struct KafkaObjects {
    pub config_map: ConfigMap,
    /// Headless Services of both sets, then the bootstrap Service.
    pub services: Vec<Service>,
    pub controllers: StatefulSet,
    pub brokers: StatefulSet,
    pub disruption_budgets: Vec<PodDisruptionBudget>,
    /// Admits the pipeline's pods and the operator, nothing else.
    pub network_policy: NetworkPolicy,
}

/// One of the two StatefulSets.
struct Role {
    component: Component,
    set: String,
    /// The file name in the ConfigMap and the start script's `ROLE`.
    file: &'static str,
    /// The file's text: its digest on the pod template makes a change a new revision, which the operator rolls.
    properties: String,
    port: i32,
    replicas: u32,
    node_id_base: u32,
    storage: String,
    class: Option<String>,
    /// The SCRAM users whose passwords the nodes mount: every user on the controllers, which write them all into
    /// the metadata when they format; the brokers' own on the brokers.
    users: &'static [ManagedUser],
}

impl KafkaObjects {
    /// Controllers first: brokers cannot register without a quorum.
    pub fn stateful_sets(&self) -> [&StatefulSet; 2] {
        [&self.controllers, &self.brokers]
    }

    /// In apply order: the NetworkPolicy before any pod listens, the config and Services before the sets that use
    /// them, controllers before brokers.
    pub fn into_children(self) -> Vec<Child> {
        let mut children = vec![Child::NetworkPolicy(self.network_policy), Child::ConfigMap(self.config_map)];
        children.extend(self.services.into_iter().map(Child::Service));
        children.extend(self.disruption_budgets.into_iter().map(Child::PodDisruptionBudget));
        children.push(Child::StatefulSet(self.controllers));
        children.push(Child::StatefulSet(self.brokers));
        children
    }
}

pub fn build(name: &PipelineName, k: &ManagedCluster, owner: Option<&OwnerReference>) -> KafkaObjects {
    let [controllers, brokers] = [
        Role {
            component: Component::KafkaController,
            set: name.kafka_controllers(),
            file: "controller",
            properties: properties::controller(name, k),
            port: CONTROLLER_PORT,
            replicas: k.controllers,
            node_id_base: CONTROLLER_ID_BASE,
            storage: CONTROLLER_STORAGE.into(),
            class: k.storage.class.clone(),
            users: &ManagedUser::ALL,
        },
        Role {
            component: Component::KafkaBroker,
            set: name.kafka_brokers(),
            file: "broker",
            properties: properties::broker(name, k),
            port: BROKER_PORT,
            replicas: k.brokers,
            node_id_base: 0,
            storage: k.storage.size.clone(),
            class: k.storage.class.clone(),
            users: &[ManagedUser::Broker],
        },
    ];
    let roles = [&controllers, &brokers];
    let mut services: Vec<Service> = roles.iter().map(|r| headless(name, r, owner)).collect();
    services.push(bootstrap(name, owner));
    KafkaObjects {
        config_map: config_map(name, &controllers, &brokers, owner),
        services,
        disruption_budgets: roles.iter().map(|r| disruption_budget(name, r, owner)).collect(),
        network_policy: network::network_policy(name, k, owner),
        controllers: stateful_set(name, k, &controllers, owner),
        brokers: stateful_set(name, k, &brokers, owner),
    }
}

fn config_map_name(name: &PipelineName) -> String {
    format!("{}-config", name.kafka_brokers())
}

fn config_map(name: &PipelineName, controllers: &Role, brokers: &Role, owner: Option<&OwnerReference>) -> ConfigMap {
    ConfigMap {
        metadata: meta(name, config_map_name(name), Component::KafkaBroker, owner),
        data: Some(BTreeMap::from([
            ("controller.properties".into(), controllers.properties.clone()),
            ("broker.properties".into(), brokers.properties.clone()),
            ("start.sh".into(), properties::START_SCRIPT.into()),
        ])),
        ..Default::default()
    }
}

/// Server-side apply merges ports by port and protocol: the protocol must be set.
fn port(name: &str, port: i32) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        port,
        protocol: Some("TCP".into()),
        target_port: Some(IntOrString::Int(port)),
        ..Default::default()
    }
}

/// Stable DNS names for the nodes; not-ready ones included, since controllers must find each other to become
/// ready at all.
fn headless(name: &PipelineName, r: &Role, owner: Option<&OwnerReference>) -> Service {
    Service {
        metadata: meta(name, r.set.clone(), r.component, owner),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            publish_not_ready_addresses: Some(true),
            selector: Some(selector_labels(name, r.component)),
            ports: Some(vec![port(r.file, r.port)]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn bootstrap(name: &PipelineName, owner: Option<&OwnerReference>) -> Service {
    Service {
        metadata: meta(name, name.kafka_bootstrap(), Component::KafkaBroker, owner),
        spec: Some(ServiceSpec {
            selector: Some(selector_labels(name, Component::KafkaBroker)),
            ports: Some(vec![port("kafka", BROKER_PORT)]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn disruption_budget(name: &PipelineName, r: &Role, owner: Option<&OwnerReference>) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: meta(name, r.set.clone(), r.component, owner),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(selector_labels(name, r.component)),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn stateful_set(name: &PipelineName, k: &ManagedCluster, r: &Role, owner: Option<&OwnerReference>) -> StatefulSet {
    StatefulSet {
        metadata: meta(name, r.set.clone(), r.component, owner),
        spec: Some(StatefulSetSpec {
            service_name: Some(r.set.clone()),
            replicas: Some(r.replicas as i32),
            // Order is the operator's business; the StatefulSet controller only creates and deletes.
            pod_management_policy: Some("Parallel".into()),
            update_strategy: Some(StatefulSetUpdateStrategy { type_: Some("OnDelete".into()), ..Default::default() }),
            selector: LabelSelector { match_labels: Some(selector_labels(name, r.component)), ..Default::default() },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(name, r.component)),
                    annotations: Some(BTreeMap::from([(
                        CONFIG_HASH_ANNOTATION.to_owned(),
                        // A renewed certificate is read only at start: it rolls the nodes like a new config.
                        digest([
                            r.properties.as_str(),
                            properties::START_SCRIPT,
                            k.certificate.as_deref().unwrap_or_default(),
                        ]),
                    )])),
                    ..Default::default()
                }),
                spec: Some(pod_spec(name, k, r)),
            },
            volume_claim_templates: Some(vec![claim(r)]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn claim(r: &Role) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta { name: Some("data".into()), ..Default::default() },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: r.class.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".into(), Quantity(r.storage.clone()))])),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn env(name: &str, value: String) -> EnvVar {
    EnvVar { name: name.into(), value: Some(value), ..Default::default() }
}

/// Each volume with where it is mounted; `data` is the claim template's, listed for its mount only.
fn volumes(name: &PipelineName, k: &ManagedCluster, r: &Role) -> Vec<(Volume, &'static str)> {
    let named = |name: &str| Volume { name: name.into(), ..Default::default() };
    let mut volumes = vec![
        (named("data"), "/var/lib/kafka"),
        (
            Volume {
                config_map: Some(ConfigMapVolumeSource { name: config_map_name(name), ..Default::default() }),
                ..named("config")
            },
            "/etc/kafka-config",
        ),
        (
            Volume {
                empty_dir: Some(EmptyDirVolumeSource { medium: Some("Memory".into()), ..Default::default() }),
                ..named("run")
            },
            RUN_DIR,
        ),
    ];
    if k.security == ListenerSecurity::SaslSsl {
        let certs = [crate::certs::CA_CERT, crate::certs::CERT, crate::certs::KEY].map(String::from);
        let passwords: Vec<String> = r.users.iter().map(|u| u.password_key()).collect();
        volumes.push((secret_volume("tls", name.kafka_tls(), &certs), TLS_DIR));
        volumes.push((secret_volume("users", name.kafka_users(), &passwords), USERS_DIR));
    }
    volumes
}

fn secret_volume(volume: &str, secret: String, keys: &[String]) -> Volume {
    let items = keys.iter().map(|k| KeyToPath { key: k.clone(), path: k.clone(), mode: None }).collect();
    Volume {
        name: volume.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret),
            items: Some(items),
            // Read by the Kafka user through the pod's fsGroup, by no one else.
            default_mode: Some(0o440),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn mount_of(volume: &Volume, path: &str) -> VolumeMount {
    let writable = matches!(volume.name.as_str(), "data" | "run");
    VolumeMount {
        name: volume.name.clone(),
        mount_path: path.into(),
        read_only: (!writable).then_some(true),
        ..Default::default()
    }
}

fn pod_spec(name: &PipelineName, k: &ManagedCluster, r: &Role) -> PodSpec {
    let volumes = volumes(name, k, r);
    let container = Container {
        name: "kafka".into(),
        image: Some(k.image.clone()),
        command: Some(vec!["sh".into(), "/etc/kafka-config/start.sh".into()]),
        env: Some(vec![
            env("ROLE", r.file.into()),
            env("NODE_ID_BASE", r.node_id_base.to_string()),
            env("HEADLESS_DOMAIN", format!("{}.{}.svc", r.set, name.namespace())),
            env("CLUSTER_ID", k.cluster_id.clone()),
        ]),
        ports: Some(vec![ContainerPort {
            name: Some(r.file.into()),
            container_port: r.port,
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
        readiness_probe: Some(Probe {
            tcp_socket: Some(TCPSocketAction { port: IntOrString::Int(r.port), ..Default::default() }),
            period_seconds: Some(10),
            ..Default::default()
        }),
        resources: (r.component == Component::KafkaBroker).then(|| k.resources.clone()),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), add: None }),
            ..Default::default()
        }),
        volume_mounts: Some(volumes.iter().map(|(volume, mount)| mount_of(volume, mount)).collect()),
        ..Default::default()
    };
    PodSpec {
        containers: vec![container],
        volumes: Some(volumes.into_iter().filter(|(v, _)| v.name != "data").map(|(v, _)| v).collect()),
        // The restricted Pod Security Standard; Kafka never talks to the Kubernetes API, so it gets no token.
        security_context: Some(PodSecurityContext {
            run_as_user: Some(KAFKA_USER),
            run_as_non_root: Some(true),
            fs_group: Some(KAFKA_USER),
            seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), localhost_profile: None }),
            ..Default::default()
        }),
        automount_service_account_token: Some(false),
        // A broker flushes and hands over leadership on SIGTERM; give it time.
        termination_grace_period_seconds: Some(120),
        ..Default::default()
    }
}
