//! `spec.kafka.managed` into a [`ManagedCluster`]: defaults resolved, counts and sizes checked, and the
//! server.properties keys the operator owns kept out of the spec.

use super::Invalid;
use crate::build::kafka::properties::{cluster_id, OPERATOR_KEYS, OPERATOR_PREFIXES};
use crate::crd::{ListenerSecurity, ManagedKafka};
use crate::model::{BrokerStorage, ManagedCluster, OperatorPods};

pub const DEFAULT_KAFKA_IMAGE: &str = "apache/kafka:4.1.0";
const DEFAULT_BROKERS: i32 = 3;
const DEFAULT_CONTROLLERS: i32 = 3;
const DEFAULT_STORAGE: &str = "10Gi";
const DEFAULT_THROTTLE: i64 = 50 * 1024 * 1024;
const DEFAULT_REASSIGNMENT_TIMEOUT_S: i64 = 6 * 3600;

/// `uid` is the LogPipeline's: the KRaft cluster id is derived from it. `recorded` is the listener security the
/// operator made the cluster with, when it has made it.
pub(super) fn cluster(
    spec: &ManagedKafka,
    uid: &str,
    operator: &OperatorPods,
    recorded: Option<ListenerSecurity>,
) -> Result<ManagedCluster, Invalid> {
    let brokers = spec.brokers.unwrap_or(DEFAULT_BROKERS);
    if brokers < 1 {
        return Err(Invalid::new("spec.kafka.managed.brokers", format!("{brokers} is not a broker count")));
    }
    let controllers = spec.controllers.unwrap_or(DEFAULT_CONTROLLERS);
    if controllers < 1 || controllers % 2 == 0 {
        let reason = format!("{controllers}: a KRaft quorum needs an odd number of controllers (1, 3, 5)");
        return Err(Invalid::new("spec.kafka.managed.controllers", reason));
    }
    let size = spec.storage.size.clone().unwrap_or_else(|| DEFAULT_STORAGE.into());
    if !is_quantity(&size) {
        return Err(Invalid::new("spec.kafka.managed.storage.size", format!("{size:?} is not a size such as 100Gi")));
    }
    let throttle = spec.reassignment_throttle_bytes_per_second.unwrap_or(DEFAULT_THROTTLE);
    let Ok(reassignment_throttle @ 1..) = u64::try_from(throttle) else {
        let field = "spec.kafka.managed.reassignmentThrottleBytesPerSecond";
        return Err(Invalid::new(field, format!("{throttle} is not a rate in bytes per second")));
    };
    let timeout = spec.reassignment_timeout_seconds.unwrap_or(DEFAULT_REASSIGNMENT_TIMEOUT_S);
    let Ok(timeout_s @ 1..) = u64::try_from(timeout) else {
        let field = "spec.kafka.managed.reassignmentTimeoutSeconds";
        return Err(Invalid::new(field, format!("{timeout} is not a number of seconds")));
    };
    if let Some(key) = spec.config.keys().find(|k| is_operator_key(k)) {
        return Err(Invalid::new(format!("spec.kafka.managed.config.{key}"), "is set by the operator"));
    }
    let security = listener_security(spec.listener_security, recorded)?;
    Ok(ManagedCluster {
        brokers: brokers as u32,
        controllers: controllers as u32,
        image: spec.image.clone().unwrap_or_else(|| DEFAULT_KAFKA_IMAGE.into()),
        storage: BrokerStorage {
            size,
            class: spec.storage.storage_class_name.clone(),
            delete_claim_on_scale_down: spec.storage.delete_claim_on_scale_down,
        },
        resources: spec.resources.clone().unwrap_or_default(),
        broker_config: spec.config.clone(),
        security,
        certificate: None,
        cluster_id: cluster_id(uid),
        reassignment_throttle,
        reassignment_timeout: std::time::Duration::from_secs(timeout_s),
        operator: operator.clone(),
    })
}

/// A storage size: digits, an optional fraction, an optional binary or decimal suffix.
fn is_quantity(s: &str) -> bool {
    let digits_end = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
    let (number, suffix) = s.split_at(digits_end);
    let valid_number = !number.is_empty() && number.parse::<f64>().is_ok_and(|n| n > 0.0);
    valid_number && ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "k", "M", "G", "T", "P", "E"].contains(&suffix)
}

fn is_operator_key(key: &str) -> bool {
    OPERATOR_KEYS.contains(&key) || OPERATOR_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// A new cluster gets what the spec asks, `SASL_SSL` unless told otherwise; a running one keeps what it was made
/// with. Changing it in place would roll the brokers onto listeners their peers cannot replicate from.
fn listener_security(
    asked: Option<ListenerSecurity>,
    recorded: Option<ListenerSecurity>,
) -> Result<ListenerSecurity, Invalid> {
    match (asked, recorded) {
        (None, None) => Ok(ListenerSecurity::SaslSsl),
        (Some(s), None) | (None, Some(s)) => Ok(s),
        (Some(asked), Some(running)) if asked == running => Ok(asked),
        (Some(asked), Some(running)) => {
            let reason = format!(
                "the managed Kafka was made with {} and keeps it: brokers rolled onto {} one at a time could not \
                 replicate from the rest. Set {} (or remove the field), or move the pipeline to another managed \
                 Kafka",
                running.as_str(),
                asked.as_str(),
                running.as_str()
            );
            Err(Invalid::new("spec.kafka.managed.listenerSecurity", reason))
        }
    }
}
