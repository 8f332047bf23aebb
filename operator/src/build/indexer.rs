use super::collector::non_empty;
use super::pod::{self, Mount};
use super::{labels, meta, selector_labels, Component};
use crate::model::{paths, Pipeline};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{Container, PodSecurityContext, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};

/// The indexer runs unprivileged: it reads only its config and mounted Secrets.
pub(super) fn deployment(p: &Pipeline, owner: Option<&OwnerReference>, config_hash: &str) -> Deployment {
    let (volumes, volume_mounts) = pod::split(mounts(p));
    let container = Container {
        name: "indexer".into(),
        image: Some(p.indexer.image.clone()),
        args: Some(vec![
            "indexer".into(),
            "--config".into(),
            format!("{}/{}", paths::CONFIG_DIR, paths::INDEXER_CONFIG),
        ]),
        ports: Some(vec![pod::metrics_port()]),
        liveness_probe: Some(pod::probe("/healthz", 30)),
        readiness_probe: Some(pod::probe("/readyz", 10)),
        resources: Some(p.indexer.resources.clone()),
        security_context: Some(pod::security_context()),
        volume_mounts: Some(volume_mounts),
        ..Default::default()
    };
    Deployment {
        metadata: meta(&p.name, p.name.indexer(), Component::Indexer, owner),
        spec: Some(DeploymentSpec {
            replicas: Some(p.indexer.replicas),
            selector: LabelSelector {
                match_labels: Some(selector_labels(&p.name, Component::Indexer)),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(pod::template_meta(labels(&p.name, Component::Indexer), config_hash)),
                spec: Some(PodSpec {
                    service_account_name: Some(p.name.indexer()),
                    automount_service_account_token: Some(false),
                    // The mounted Secrets are group-readable: the group makes them readable to the indexer's user.
                    security_context: Some(PodSecurityContext {
                        fs_group: Some(pod::NON_ROOT_USER),
                        ..Default::default()
                    }),
                    containers: vec![container],
                    volumes: Some(volumes),
                    tolerations: non_empty_vec(&p.indexer.tolerations),
                    node_selector: non_empty(&p.indexer.node_selector),
                    // On SIGTERM the indexer sends its open batch and waits up to 30 s for bulks in flight.
                    termination_grace_period_seconds: Some(45),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn mounts(p: &Pipeline) -> Vec<Mount> {
    let mut mounts = vec![pod::config(p.name.indexer())];
    mounts.extend(pod::kafka_secrets(&p.secrets, crate::model::KafkaClient::Indexer));
    if let Some(c) = &p.secrets.es_credentials {
        let items = c.keys().map(|k| (k, k));
        mounts.push(pod::secret("es-credentials", &c.secret_name, &items, paths::ES_CREDENTIALS_DIR));
    }
    if let Some(ca) = &p.secrets.es_ca {
        mounts.push(pod::secret("es-ca", &ca.name, &[(&ca.key, paths::CA_FILE)], paths::ES_CA_DIR));
    }
    mounts
}

fn non_empty_vec<T: Clone>(v: &[T]) -> Option<Vec<T>> {
    (!v.is_empty()).then(|| v.to_vec())
}
