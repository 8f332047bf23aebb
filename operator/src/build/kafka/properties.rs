//! server.properties of the KRaft controllers and the brokers. A pod learns its node id and host name only at
//! start, so the rendered files hold `@NODE_ID@` and `@HOST@`, which the start script fills in.

use crate::crd::ListenerSecurity;
use crate::model::ManagedCluster;
use crate::names::PipelineName;
use crate::validate::{ManagedUser, MANAGED_MECHANISM};
use std::collections::BTreeMap;

/// Node ids of controllers start here, so they never collide with broker ids (the brokers' ordinals).
pub const CONTROLLER_ID_BASE: u32 = 1000;
pub const BROKER_PORT: i32 = 9092;
pub const CONTROLLER_PORT: i32 = 9093;
pub const DATA_DIR: &str = "/var/lib/kafka/data";
pub const NODE_ID: &str = "@NODE_ID@";
pub const HOST: &str = "@HOST@";
/// The brokers' own SCRAM password, filled in at start from the mounted users Secret.
pub const BROKER_PASSWORD: &str = "@BROKER_PASSWORD@";
/// Where the nodes find the CA, certificate and key, and the users' passwords.
pub const TLS_DIR: &str = "/etc/kafka-tls";
pub const USERS_DIR: &str = "/etc/kafka-users";
/// A memory-backed directory for what holds secrets once assembled: the key store and server.properties.
pub const RUN_DIR: &str = "/var/run/kafka";

/// Keys the operator owns: a spec that sets them is invalid (the cluster would not form, data would go to the
/// wrong place, or the listeners would be less safe than the spec says).
pub const OPERATOR_PREFIXES: [&str; 3] = ["listener.name.", "ssl.", "sasl."];
pub const OPERATOR_KEYS: [&str; 11] = [
    "process.roles",
    "node.id",
    "controller.quorum.voters",
    "controller.quorum.bootstrap.servers",
    "controller.listener.names",
    "listeners",
    "advertised.listeners",
    "listener.security.protocol.map",
    "log.dirs",
    "inter.broker.listener.name",
    "security.inter.broker.protocol",
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

/// With `SASL_SSL` the controllers take only brokers that present a certificate of the cluster's CA (KRaft
/// controllers cannot check SCRAM, whose credentials live in the metadata they serve).
pub fn controller(name: &PipelineName, k: &ManagedCluster) -> String {
    let mut props = BTreeMap::from([
        ("process.roles".into(), "controller".into()),
        ("node.id".into(), NODE_ID.into()),
        ("controller.quorum.voters".into(), quorum_voters(name, k)),
        ("controller.listener.names".into(), "CONTROLLER".into()),
        ("listeners".into(), format!("CONTROLLER://:{CONTROLLER_PORT}")),
        ("listener.security.protocol.map".into(), format!("CONTROLLER:{}", controller_protocol(k))),
        ("log.dirs".into(), DATA_DIR.into()),
    ]);
    if k.security == ListenerSecurity::SaslSsl {
        props.extend(tls());
        props.insert("ssl.client.auth".into(), "required".into());
    }
    render(&props)
}

fn controller_protocol(k: &ManagedCluster) -> &'static str {
    match k.security {
        ListenerSecurity::SaslSsl => "SSL",
        ListenerSecurity::Plaintext => "PLAINTEXT",
    }
}

/// The node's key store (key and certificate, assembled at start) and trust store (the cluster's CA), in PEM.
fn tls() -> [(String, String); 4] {
    [
        ("ssl.keystore.type".into(), "PEM".into()),
        ("ssl.keystore.location".into(), format!("{RUN_DIR}/keystore.pem")),
        ("ssl.truststore.type".into(), "PEM".into()),
        ("ssl.truststore.location".into(), format!("{TLS_DIR}/{}", crate::certs::CA_CERT)),
    ]
}

/// SCRAM on the brokers' listener, for clients and for replication between brokers as the `broker` user.
fn scram() -> [(String, String); 3] {
    let mechanism = MANAGED_MECHANISM.as_str();
    let jaas = format!(
        "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{}\" password=\"{BROKER_PASSWORD}\";",
        ManagedUser::Broker.name()
    );
    [
        ("sasl.enabled.mechanisms".into(), mechanism.into()),
        ("sasl.mechanism.inter.broker.protocol".into(), mechanism.into()),
        (format!("listener.name.internal.{}.sasl.jaas.config", mechanism.to_ascii_lowercase()), jaas),
    ]
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
        ("listener.security.protocol.map".into(), listener_map(k)),
        ("log.dirs".into(), DATA_DIR.into()),
    ]);
    if k.security == ListenerSecurity::SaslSsl {
        props.extend(tls());
        props.extend(scram());
    }
    render(&props)
}

fn listener_map(k: &ManagedCluster) -> String {
    let internal = match k.security {
        ListenerSecurity::SaslSsl => "SASL_SSL",
        ListenerSecurity::Plaintext => "PLAINTEXT",
    };
    format!("INTERNAL:{internal},CONTROLLER:{}", controller_protocol(k))
}

fn render(props: &BTreeMap<String, String>) -> String {
    props.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
}

/// The start script: node id from the pod's ordinal; with TLS mounted, the key store assembled and every mounted
/// user's SCRAM credentials written when the storage is formatted (the first start only: the controllers keep them
/// in the metadata from then on); then Kafka in the foreground. Passwords are hex, safe in sed and arguments.
pub const START_SCRIPT: &str = r#"set -eu
ordinal="${HOSTNAME##*-}"
node_id=$((ordinal + NODE_ID_BASE))
props=/var/run/kafka/server.properties
password=""
set --
if [ -d /etc/kafka-tls ]; then
  cat /etc/kafka-tls/tls.key /etc/kafka-tls/tls.crt > /var/run/kafka/keystore.pem
  for file in /etc/kafka-users/*.password; do
    user="$(basename "$file" .password)"
    set -- "$@" --add-scram "SCRAM-SHA-512=[name=${user},password=$(cat "$file")]"
  done
  password="$(cat /etc/kafka-users/broker.password)"
fi
sed -e "s/@NODE_ID@/${node_id}/" -e "s/@HOST@/${HOSTNAME}.${HEADLESS_DOMAIN}/" \
  -e "s/@BROKER_PASSWORD@/${password}/" "/etc/kafka-config/${ROLE}.properties" > "$props"
/opt/kafka/bin/kafka-storage.sh format --ignore-formatted --cluster-id "${CLUSTER_ID}" --config "$props" "$@"
exec /opt/kafka/bin/kafka-server-start.sh "$props"
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
