use super::{meta, Component};
use crate::model::{paths, Pipeline};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

pub(super) struct Maps {
    pub collector: ConfigMap,
    pub indexer: ConfigMap,
}

pub(super) fn build(p: &Pipeline, owner: Option<&OwnerReference>) -> Maps {
    Maps {
        collector: config_map(
            p,
            (Component::Collector, p.name.collector()),
            (paths::AGENT_CONFIG, yaml(&p.agent_config)),
            owner,
        ),
        indexer: config_map(
            p,
            (Component::Indexer, p.name.indexer()),
            (paths::INDEXER_CONFIG, yaml(&p.indexer_config)),
            owner,
        ),
    }
}

fn yaml<T: serde::Serialize>(config: &T) -> String {
    // The config types serialize plain structs, strings, numbers and maps: serde_yaml cannot fail on them.
    serde_yaml::to_string(config).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
}

/// `object` is the component and the ConfigMap's name; `file` the config's file name and text.
fn config_map(
    p: &Pipeline,
    (c, name): (Component, String),
    file: (&str, String),
    owner: Option<&OwnerReference>,
) -> ConfigMap {
    ConfigMap {
        metadata: meta(&p.name, name, c, owner),
        data: Some(BTreeMap::from([(file.0.to_owned(), file.1)])),
        ..Default::default()
    }
}

/// The config text: a change to it changes nothing in the pod template but this hash, which rolls the pods.
pub(super) fn hash(map: &ConfigMap) -> String {
    digest(map.data.iter().flatten().flat_map(|(key, value)| [key.as_str(), value.as_str()]))
}

/// A short hex digest of texts, each ended by a NUL so that no two lists of texts run together alike.
pub(crate) fn digest<'a>(texts: impl IntoIterator<Item = &'a str>) -> String {
    let mut h = Sha256::new();
    for text in texts {
        h.update(text.as_bytes());
        h.update([0]);
    }
    h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}
