//! Pieces both pod templates share: the config volume, Secret volumes, probes, security settings.

use crate::model::paths;
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, ContainerPort, HTTPGetAction, KeyToPath, Probe, SeccompProfile,
    SecretVolumeSource, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// A volume and where the container mounts it.
pub(super) struct Mount {
    pub volume: Volume,
    pub mount: VolumeMount,
}

pub(super) fn split(mounts: Vec<Mount>) -> (Vec<Volume>, Vec<VolumeMount>) {
    mounts.into_iter().map(|m| (m.volume, m.mount)).unzip()
}

pub(super) fn read_only(volume: Volume, path: &str) -> Mount {
    let mount =
        VolumeMount { name: volume.name.clone(), mount_path: path.into(), read_only: Some(true), ..Default::default() };
    Mount { volume, mount }
}

pub(super) fn config(config_map: String) -> Mount {
    let volume = Volume {
        name: "config".into(),
        config_map: Some(ConfigMapVolumeSource { name: config_map, ..Default::default() }),
        ..Default::default()
    };
    read_only(volume, paths::CONFIG_DIR)
}

/// Mounts `items` (secret key -> file name) of a Secret read-only at `path`.
pub(super) fn secret(volume: &str, secret: &str, items: &[(&str, &str)], path: &str) -> Mount {
    let items = items.iter().map(|(key, file)| KeyToPath { key: (*key).into(), path: (*file).into(), mode: None });
    let volume = Volume {
        name: volume.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret.into()),
            items: Some(items.collect()),
            default_mode: Some(0o440),
            ..Default::default()
        }),
        ..Default::default()
    };
    read_only(volume, path)
}

pub(super) fn metrics_port() -> ContainerPort {
    ContainerPort {
        name: Some("http".into()),
        container_port: paths::METRICS_PORT,
        protocol: Some("TCP".into()),
        ..Default::default()
    }
}

pub(super) fn probe(path: &str, period_seconds: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("http".into()),
            ..Default::default()
        }),
        period_seconds: Some(period_seconds),
        failure_threshold: Some(3),
        ..Default::default()
    }
}

/// The user of the project's image; collectors and indexers run as it.
pub(super) const NON_ROOT_USER: i64 = 65532;

/// Nothing the processes do needs a capability, a writable root filesystem or root.
pub(super) fn security_context() -> SecurityContext {
    SecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(NON_ROOT_USER),
        run_as_group: Some(NON_ROOT_USER),
        ..root_context(&[])
    }
}

/// A container that must act as root on a node directory, with only the capabilities named.
pub(super) fn root_context(capabilities: &[&str]) -> SecurityContext {
    let add = (!capabilities.is_empty()).then(|| capabilities.iter().map(|c| c.to_string()).collect());
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), add }),
        run_as_non_root: Some(false),
        run_as_user: Some(0),
        seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), localhost_profile: None }),
        ..Default::default()
    }
}

/// The Kafka CA and SASL credentials, where the rendered configs expect them.
pub(super) fn kafka_secrets(secrets: &crate::model::SecretMounts, client: crate::model::KafkaClient) -> Vec<Mount> {
    let mut mounts = Vec::new();
    if let Some(ca) = &secrets.kafka_ca {
        mounts.push(secret("kafka-ca", &ca.name, &[(&ca.key, paths::CA_FILE)], paths::KAFKA_CA_DIR));
    }
    if let Some(sasl) = secrets.kafka_sasl.of(client) {
        let items = [(sasl.username_key.as_str(), "username"), (sasl.password_key.as_str(), "password")];
        mounts.push(secret("kafka-sasl", &sasl.secret_name, &items, paths::KAFKA_SASL_DIR));
    }
    mounts
}

/// The pod template's metadata: the component's labels and the hash that rolls its pods on a config change.
pub(super) fn template_meta(
    labels: std::collections::BTreeMap<String, String>,
    config_hash: &str,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        labels: Some(labels),
        annotations: Some([(super::CONFIG_HASH_ANNOTATION.to_owned(), config_hash.to_owned())].into()),
        ..Default::default()
    }
}
