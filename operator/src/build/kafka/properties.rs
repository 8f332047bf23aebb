//! server.properties of the KRaft controllers and the brokers. A pod learns its node id and host name only at
//! start, so the rendered files hold `@NODE_ID@` and `@HOST@`, which the start script fills in.

use crate::model::ManagedCluster;
use crate::names::PipelineName;
use std::collections::BTreeMap;

/// Node ids of controllers start here, so they never collide with broker ids (the brokers' ordinals).
pub const CONTROLLER_ID_BASE: u32 = 1000;
pub const BROKER_PORT: i32 = 9092;
pub const CONTROLLER_PORT: i32 = 9093;
pub const DATA_DIR: &str = "/var/lib/kafka/data";
pub const NODE_ID: &str = "@NODE_ID@";
pub const HOST: &str = "@HOST@";

/// Keys the operator owns: a spec that sets them is invalid (the cluster would not form, or data would go to
/// the wrong place).
pub const OPERATOR_KEYS: [&str; 9] = [
    "process.roles",
    "node.id",
    "controller.quorum.voters",
    "controller.quorum.bootstrap.servers",
    "controller.listener.names",
    "listeners",
    "advertised.listeners",
    "listener.security.protocol.map",
    "log.dirs",
];

/// DNS name of a node of a StatefulSet behind its headless Service of the same name.
pub fn host(name: &PipelineName, set: &str, ordinal: u32) -> String {
    format!("{set}-{ordinal}.{set}.{}.svc", name.namespace())
}

/// `id@host:port` of every controller.
pub fn quorum_voters(name: &PipelineName, k: &ManagedCluster) -> String {
    let set = name.kafka_controllers();
    (0..k.controllers)
        .map(|i| format!("{}@{}:{CONTROLLER_PORT}", CONTROLLER_ID_BASE + i, host(name, &set, i)))
        .collect::<Vec<_>>()
        .join(",")
}

pub fn controller(name: &PipelineName, k: &ManagedCluster) -> String {
    render(&BTreeMap::from([
        ("process.roles".into(), "controller".into()),
        ("node.id".into(), NODE_ID.into()),
        ("controller.quorum.voters".into(), quorum_voters(name, k)),
        ("controller.listener.names".into(), "CONTROLLER".into()),
        ("listeners".into(), format!("CONTROLLER://:{CONTROLLER_PORT}")),
        ("listener.security.protocol.map".into(), "CONTROLLER:PLAINTEXT".into()),
        ("log.dirs".into(), DATA_DIR.into()),
    ]))
}

/// The brokers' file: safe defaults (from the field's lessons: replication 3 where there are 3 brokers,
/// min ISR one below it, no unclean leader election, no topic auto-creation), then the spec's keys.
pub fn broker(name: &PipelineName, k: &ManagedCluster) -> String {
    let rf = k.brokers.clamp(1, 3);
    let min_isr = rf.saturating_sub(1).max(1);
    let mut props: BTreeMap<String, String> = BTreeMap::from([
        ("default.replication.factor".into(), rf.to_string()),
        ("min.insync.replicas".into(), min_isr.to_string()),
        ("offsets.topic.replication.factor".into(), rf.to_string()),
        ("transaction.state.log.replication.factor".into(), rf.to_string()),
        ("transaction.state.log.min.isr".into(), min_isr.to_string()),
        ("unclean.leader.election.enable".into(), "false".into()),
        ("auto.create.topics.enable".into(), "false".into()),
    ]);
    props.extend(k.broker_config.iter().map(|(key, v)| (key.clone(), v.clone())));
    props.extend([
        ("process.roles".into(), "broker".into()),
        ("node.id".into(), NODE_ID.into()),
        ("controller.quorum.voters".into(), quorum_voters(name, k)),
        ("controller.listener.names".into(), "CONTROLLER".into()),
        ("listeners".into(), format!("INTERNAL://:{BROKER_PORT}")),
        ("advertised.listeners".into(), format!("INTERNAL://{HOST}:{BROKER_PORT}")),
        ("inter.broker.listener.name".into(), "INTERNAL".into()),
        ("listener.security.protocol.map".into(), "INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT".into()),
        ("log.dirs".into(), DATA_DIR.into()),
    ]);
    render(&props)
}

fn render(props: &BTreeMap<String, String>) -> String {
    props.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
}

/// The start script: node id from the pod's ordinal, storage formatted once, then Kafka in the foreground.
pub const START_SCRIPT: &str = r#"set -eu
ordinal="${HOSTNAME##*-}"
node_id=$((ordinal + NODE_ID_BASE))
sed -e "s/@NODE_ID@/${node_id}/" -e "s/@HOST@/${HOSTNAME}.${HEADLESS_DOMAIN}/" \
  "/etc/kafka-config/${ROLE}.properties" > /var/lib/kafka/server.properties
/opt/kafka/bin/kafka-storage.sh format --ignore-formatted --cluster-id "${CLUSTER_ID}" \
  --config /var/lib/kafka/server.properties
exec /opt/kafka/bin/kafka-server-start.sh /var/lib/kafka/server.properties
"#;

/// A KRaft cluster id (16 bytes, base64url without padding) derived from the LogPipeline's uid: the same for
/// every reconcile, different for a LogPipeline deleted and created again.
pub fn cluster_id(uid: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(uid.as_bytes());
    base64url(&digest[..16])
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}
