//! A Kafka cluster simulated behind the Kafka protocol on loopback, for what no multi-broker Kafka can show on
//! these machines: several brokers, replicas and ISR, partition reassignments that complete over time, brokers
//! that join, leave and fall behind on demand. It answers ApiVersions, Metadata, DescribeCluster, DescribeConfigs,
//! IncrementalAlterConfigs, CreateTopics, AlterPartitionReassignments and ListPartitionReassignments; everything
//! else is refused. [`KafkaSim::secure`] turns on TLS and SCRAM for the connections that follow ([`secure`]).

mod secure;

use secure::Auth;
pub use secure::Secure;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::describe_configs_response::{DescribeConfigsResourceResult, DescribeConfigsResult};
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{decode_request_header_from_buffer, Encodable, HeaderVersion, Request, StrBytes};
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

const SERVED: [ApiKey; 10] = [
    ApiKey::ApiVersions,
    ApiKey::Metadata,
    ApiKey::DescribeCluster,
    ApiKey::DescribeConfigs,
    ApiKey::CreateTopics,
    ApiKey::AlterPartitionReassignments,
    ApiKey::ListPartitionReassignments,
    ApiKey::IncrementalAlterConfigs,
    ApiKey::SaslHandshake,
    ApiKey::SaslAuthenticate,
];
const MAX_FRAME: usize = 16 << 20;
const TOPIC_RESOURCE: i8 = 2;
const BROKER_RESOURCE: i8 = 4;
const SET: i8 = 0;
const DELETE: i8 = 1;
/// DescribeConfigs' source of a config set at run time for one broker or topic.
const DYNAMIC_SOURCE: i8 = 1;
const INVALID_REQUEST: i16 = 42;
const TOPIC_ALREADY_EXISTS: i16 = 36;
const INVALID_REPLICATION_FACTOR: i16 = 38;
const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimPartition {
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// A reassignment in flight: the target replicas and when it may complete.
    pub moving: Option<(Vec<i32>, Instant)>,
}

#[derive(Debug, Default)]
pub struct SimState {
    /// Registered brokers; a lagging one is registered but out of every ISR.
    pub brokers: BTreeSet<i32>,
    pub lagging: BTreeSet<i32>,
    pub topics: BTreeMap<String, (usize, Vec<SimPartition>)>,
    /// How long a reassignment takes once its new replicas are registered.
    pub reassign_time: Duration,
    /// Every reassignment started is counted here, for tests that bound the work done.
    pub reassignments_started: usize,
    /// This many of the next reassignments to come due fail instead: the partition keeps its old replicas.
    pub fail_reassignments: usize,
    /// Configs set at run time (IncrementalAlterConfigs), by resource type and name: broker ids and topics.
    pub configs: BTreeMap<(i8, String), BTreeMap<String, String>>,
    /// The user of every connection that authenticated, in order (a secured simulator).
    pub authenticated: Vec<String>,
}

impl SimState {
    /// The run-time configs of broker `b`.
    pub fn broker_configs(&self, b: i32) -> BTreeMap<String, String> {
        self.configs.get(&(BROKER_RESOURCE, b.to_string())).cloned().unwrap_or_default()
    }

    /// The run-time configs of a topic.
    pub fn topic_configs(&self, topic: &str) -> BTreeMap<String, String> {
        self.configs.get(&(TOPIC_RESOURCE, topic.to_owned())).cloned().unwrap_or_default()
    }
}

impl SimState {
    /// Completes reassignments whose time has come and whose new replicas are registered; puts every registered,
    /// caught-up replica back into its ISR.
    fn advance(&mut self, now: Instant) {
        let up: BTreeSet<i32> = self.brokers.difference(&self.lagging).copied().collect();
        for (_, partitions) in self.topics.values_mut() {
            for p in partitions {
                if let Some((target, at)) = &p.moving {
                    if *at <= now && target.iter().all(|b| up.contains(b)) {
                        if self.fail_reassignments > 0 {
                            self.fail_reassignments -= 1;
                        } else {
                            p.replicas = target.clone();
                        }
                        p.moving = None;
                    }
                }
                p.isr.retain(|b| up.contains(b) && p.replicas.contains(b));
                for r in &p.replicas {
                    if up.contains(r) && !p.isr.contains(r) {
                        p.isr.push(*r);
                    }
                }
            }
        }
    }
}

pub struct KafkaSim {
    address: String,
    state: Arc<Mutex<SimState>>,
    secure: Arc<Mutex<Option<Arc<Secure>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl KafkaSim {
    /// Starts on a free loopback port with these brokers registered.
    pub async fn start(brokers: impl IntoIterator<Item = i32>, reassign_time: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let address = listener.local_addr().expect("bound").to_string();
        let state = SimState { brokers: brokers.into_iter().collect(), reassign_time, ..SimState::default() };
        let state = Arc::new(Mutex::new(state));
        let secure: Arc<Mutex<Option<Arc<Secure>>>> = Arc::default();
        let (shared, secured) = (state.clone(), secure.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let current = secured.lock().expect("simulator security").clone();
                let state = shared.clone();
                tokio::spawn(async move {
                    match current {
                        None => serve(stream, state, None).await,
                        Some(secure) => {
                            if let Ok(tls) = secure.acceptor.accept(stream).await {
                                serve(tls, state, Some(secure)).await;
                            }
                        }
                    }
                });
            }
        });
        Self { address, state, secure, task }
    }

    /// Connections from now on must speak TLS (this certificate and key) and authenticate by SCRAM-SHA-512 as
    /// one of `users` (name to password), as a managed Kafka's brokers started with the operator's Secrets do.
    pub fn secure(&self, cert_pem: &str, key_pem: &str, users: BTreeMap<String, String>) {
        *self.secure.lock().expect("simulator security") = Some(Secure::new(cert_pem, key_pem, users));
    }

    pub fn bootstrap(&self) -> String {
        self.address.clone()
    }

    /// The state, brought up to date, to inspect or change (add brokers, make one lag, ...).
    pub fn state(&self) -> MutexGuard<'_, SimState> {
        let mut state = self.state.lock().expect("simulator state");
        state.advance(Instant::now());
        state
    }
}

impl Drop for KafkaSim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    state: Arc<Mutex<SimState>>,
    secure: Option<Arc<Secure>>,
) {
    let mut auth = if secure.is_some() { Auth::Start } else { Auth::Open };
    loop {
        let Ok(len) = stream.read_i32().await else { return };
        // A TLS hello read as a frame length asks for hundreds of MiB: not a Kafka request.
        let Some(len) = usize::try_from(len).ok().filter(|&l| l <= MAX_FRAME) else { return };
        let mut frame = vec![0u8; len];
        if stream.read_exact(&mut frame).await.is_err() {
            return;
        }
        let response = match &secure {
            Some(secure) if !auth.allows_requests() => authenticate(Bytes::from(frame), &mut auth, secure, &state),
            _ => respond(Bytes::from(frame), &state),
        };
        let Some(response) = response else { return };
        let mut out = BytesMut::with_capacity(response.len() + 4);
        out.put_i32(response.len() as i32);
        out.extend_from_slice(&response);
        if stream.write_all(&out).await.is_err() {
            return;
        }
    }
}

/// Before authentication: ApiVersions, SaslHandshake and SaslAuthenticate only; anything else closes.
fn authenticate(mut frame: Bytes, auth: &mut Auth, secure: &Secure, state: &Mutex<SimState>) -> Option<Bytes> {
    let header = decode_request_header_from_buffer(&mut frame).ok()?;
    let response = match ApiKey::try_from(header.request_api_key).ok()? {
        ApiKey::ApiVersions => reply::<ApiVersionsRequest>(&header, frame, |_| api_versions()),
        ApiKey::SaslHandshake => reply::<SaslHandshakeRequest>(&header, frame, |r| auth.handshake(r)),
        ApiKey::SaslAuthenticate => reply::<SaslAuthenticateRequest>(&header, frame, |r| auth.authenticate(r, secure)),
        _ => None,
    };
    if let Auth::Done(user) = auth {
        state.lock().ok()?.authenticated.push(user.clone());
    }
    response
}

/// The response frame for one request frame; `None` closes the connection (an API this simulator does not serve).
fn respond(mut frame: Bytes, state: &Mutex<SimState>) -> Option<Bytes> {
    let header = decode_request_header_from_buffer(&mut frame).ok()?;
    let mut state = state.lock().ok()?;
    state.advance(Instant::now());
    let key = ApiKey::try_from(header.request_api_key).ok()?;
    match key {
        ApiKey::ApiVersions => reply::<ApiVersionsRequest>(&header, frame, |_| api_versions()),
        ApiKey::Metadata => reply::<MetadataRequest>(&header, frame, |_| metadata(&state)),
        ApiKey::DescribeCluster => reply::<DescribeClusterRequest>(&header, frame, |_| describe_cluster(&state)),
        ApiKey::DescribeConfigs => reply::<DescribeConfigsRequest>(&header, frame, |r| describe_configs(&state, r)),
        ApiKey::CreateTopics => reply::<CreateTopicsRequest>(&header, frame, |r| create_topics(&mut state, r)),
        ApiKey::AlterPartitionReassignments => {
            reply::<AlterPartitionReassignmentsRequest>(&header, frame, |r| alter_reassignments(&mut state, r))
        }
        ApiKey::ListPartitionReassignments => {
            reply::<ListPartitionReassignmentsRequest>(&header, frame, |_| list_reassignments(&state))
        }
        ApiKey::IncrementalAlterConfigs => {
            reply::<IncrementalAlterConfigsRequest>(&header, frame, |r| alter_configs(&mut state, r))
        }
        _ => None,
    }
}

fn reply<R: Request>(header: &RequestHeader, mut body: Bytes, handle: impl FnOnce(R) -> R::Response) -> Option<Bytes> {
    let version = header.request_api_version;
    let request = R::decode(&mut body, version).ok()?;
    let response = handle(request);
    let mut out = BytesMut::new();
    let mut response_header = ResponseHeader::default();
    response_header.correlation_id = header.correlation_id;
    response_header.encode(&mut out, R::Response::header_version(version)).ok()?;
    response.encode(&mut out, version).ok()?;
    Some(out.freeze())
}

fn api_versions() -> ApiVersionsResponse {
    let mut response = ApiVersionsResponse::default();
    for key in SERVED {
        let range = key.valid_versions();
        let mut v = ApiVersion::default();
        v.api_key = key as i16;
        v.min_version = range.min;
        v.max_version = range.max;
        response.api_keys.push(v);
    }
    response
}

fn controller(state: &SimState) -> i32 {
    state.brokers.iter().next().copied().unwrap_or(-1)
}

fn metadata(state: &SimState) -> MetadataResponse {
    let mut response = MetadataResponse::default();
    for &b in &state.brokers {
        let mut broker = MetadataResponseBroker::default();
        broker.node_id = BrokerId(b);
        broker.host = StrBytes::from_static_str("127.0.0.1");
        broker.port = 9092;
        response.brokers.push(broker);
    }
    response.controller_id = BrokerId(controller(state));
    for (name, (_, partitions)) in &state.topics {
        let mut topic = MetadataResponseTopic::default();
        topic.name = Some(TopicName(StrBytes::from_string(name.clone())));
        for (i, p) in partitions.iter().enumerate() {
            let mut mp = MetadataResponsePartition::default();
            mp.partition_index = i as i32;
            mp.leader_id = BrokerId(p.isr.first().copied().unwrap_or(-1));
            // During a reassignment Kafka reports old and new replicas together.
            let mut replicas = p.replicas.clone();
            for b in p.moving.iter().flat_map(|(t, _)| t) {
                if !replicas.contains(b) {
                    replicas.push(*b);
                }
            }
            mp.replica_nodes = replicas.into_iter().map(BrokerId).collect();
            mp.isr_nodes = p.isr.iter().copied().map(BrokerId).collect();
            topic.partitions.push(mp);
        }
        response.topics.push(topic);
    }
    response
}

fn describe_cluster(state: &SimState) -> DescribeClusterResponse {
    let mut response = DescribeClusterResponse::default();
    response.controller_id = BrokerId(controller(state));
    response.cluster_id = StrBytes::from_static_str("logpipe-sim");
    for &b in &state.brokers {
        let mut broker = DescribeClusterBroker::default();
        broker.broker_id = BrokerId(b);
        broker.host = StrBytes::from_static_str("127.0.0.1");
        broker.port = 9092;
        response.brokers.push(broker);
    }
    response
}

/// A topic's min ISR and run-time configs; a broker's run-time configs. Only the keys asked for, when asked.
fn describe_configs(state: &SimState, request: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let mut response = DescribeConfigsResponse::default();
    for resource in request.resources {
        let mut result = DescribeConfigsResult::default();
        result.resource_type = resource.resource_type;
        let name = resource.resource_name.to_string();
        let mut found: BTreeMap<String, String> =
            state.configs.get(&(resource.resource_type, name.clone())).cloned().unwrap_or_default();
        match (resource.resource_type, state.topics.get(&name)) {
            (TOPIC_RESOURCE, Some((min_isr, _))) => {
                found.insert("min.insync.replicas".into(), min_isr.to_string());
            }
            (TOPIC_RESOURCE, None) => result.error_code = UNKNOWN_TOPIC_OR_PARTITION,
            _ => {}
        }
        let wanted =
            resource.configuration_keys.map(|keys| keys.iter().map(|k| k.to_string()).collect::<BTreeSet<_>>());
        for (key, value) in found.into_iter().filter(|(k, _)| wanted.as_ref().is_none_or(|w| w.contains(k))) {
            let mut config = DescribeConfigsResourceResult::default();
            config.name = StrBytes::from_string(key);
            config.value = Some(StrBytes::from_string(value));
            config.config_source = DYNAMIC_SOURCE;
            result.configs.push(config);
        }
        result.resource_name = resource.resource_name;
        response.results.push(result);
    }
    response
}

/// Sets and deletes run-time configs of topics (which must exist) and brokers.
fn alter_configs(state: &mut SimState, request: IncrementalAlterConfigsRequest) -> IncrementalAlterConfigsResponse {
    let mut response = IncrementalAlterConfigsResponse::default();
    for resource in request.resources {
        let name = resource.resource_name.to_string();
        let mut result = AlterConfigsResourceResponse::default();
        result.resource_type = resource.resource_type;
        result.resource_name = resource.resource_name.clone();
        let known = match resource.resource_type {
            TOPIC_RESOURCE => state.topics.contains_key(&name),
            BROKER_RESOURCE => name.parse::<i32>().is_ok(),
            _ => false,
        };
        if !known {
            result.error_code =
                if resource.resource_type == TOPIC_RESOURCE { UNKNOWN_TOPIC_OR_PARTITION } else { INVALID_REQUEST };
        } else if !request.validate_only {
            let configs = state.configs.entry((resource.resource_type, name)).or_default();
            for c in &resource.configs {
                match (c.config_operation, &c.value) {
                    (SET, Some(v)) => {
                        configs.insert(c.name.to_string(), v.to_string());
                    }
                    (DELETE, _) => {
                        configs.remove(c.name.as_str());
                    }
                    _ => result.error_code = INVALID_REQUEST,
                }
            }
        }
        response.responses.push(result);
    }
    response
}

fn create_topics(state: &mut SimState, request: CreateTopicsRequest) -> CreateTopicsResponse {
    let mut response = CreateTopicsResponse::default();
    for topic in request.topics {
        let mut result = CreatableTopicResult::default();
        result.error_code = create_topic(state, &topic);
        result.name = topic.name;
        response.topics.push(result);
    }
    response
}

/// Places replicas round robin over the registered brokers; returns the error code.
fn create_topic(state: &mut SimState, topic: &CreatableTopic) -> i16 {
    let brokers: Vec<i32> = state.brokers.iter().copied().collect();
    let rf = topic.replication_factor.max(1) as usize;
    let min_isr = topic
        .configs
        .iter()
        .find(|c| c.name.as_str() == "min.insync.replicas")
        .and_then(|c| c.value.as_ref()?.parse().ok())
        .unwrap_or(1);
    match state.topics.entry(topic.name.0.to_string()) {
        Entry::Occupied(_) => TOPIC_ALREADY_EXISTS,
        Entry::Vacant(_) if rf > brokers.len() => INVALID_REPLICATION_FACTOR,
        Entry::Vacant(slot) => {
            let partitions = (0..topic.num_partitions.max(1) as usize)
                .map(|i| {
                    let replicas: Vec<i32> = (0..rf).map(|k| brokers[(i + k) % brokers.len()]).collect();
                    SimPartition { isr: replicas.clone(), replicas, moving: None }
                })
                .collect();
            slot.insert((min_isr, partitions));
            0
        }
    }
}

fn alter_reassignments(
    state: &mut SimState,
    request: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    let mut response = AlterPartitionReassignmentsResponse::default();
    let done_at = Instant::now() + state.reassign_time;
    for topic in request.topics {
        let mut topic_response = ReassignableTopicResponse::default();
        for p in topic.partitions {
            let mut pr = ReassignablePartitionResponse::default();
            pr.partition_index = p.partition_index;
            let brokers = state.brokers.clone();
            let target: Option<Vec<i32>> = p.replicas.map(|r| r.into_iter().map(|b| b.0).collect());
            let partition =
                state.topics.get_mut(topic.name.0.as_str()).and_then(|(_, ps)| ps.get_mut(p.partition_index as usize));
            pr.error_code = match (partition, target) {
                (None, _) => UNKNOWN_TOPIC_OR_PARTITION,
                (Some(sp), None) => {
                    sp.moving = None;
                    0
                }
                (Some(_), Some(t)) if t.is_empty() || t.iter().any(|b| !brokers.contains(b)) => {
                    INVALID_REPLICA_ASSIGNMENT
                }
                (Some(sp), Some(t)) => {
                    sp.moving = Some((t, done_at));
                    state.reassignments_started += 1;
                    0
                }
            };
            topic_response.partitions.push(pr);
        }
        topic_response.name = topic.name;
        response.responses.push(topic_response);
    }
    response
}

fn list_reassignments(state: &SimState) -> ListPartitionReassignmentsResponse {
    let mut response = ListPartitionReassignmentsResponse::default();
    for (name, (_, partitions)) in &state.topics {
        let mut topic = OngoingTopicReassignment::default();
        for (i, p) in partitions.iter().enumerate() {
            let Some((target, _)) = &p.moving else { continue };
            let mut ongoing = OngoingPartitionReassignment::default();
            ongoing.partition_index = i as i32;
            ongoing.adding_replicas =
                target.iter().filter(|b| !p.replicas.contains(b)).copied().map(BrokerId).collect();
            ongoing.removing_replicas =
                p.replicas.iter().filter(|b| !target.contains(b)).copied().map(BrokerId).collect();
            let mut all = p.replicas.clone();
            all.extend(target.iter().filter(|b| !p.replicas.contains(b)));
            ongoing.replicas = all.into_iter().map(BrokerId).collect();
            topic.partitions.push(ongoing);
        }
        if !topic.partitions.is_empty() {
            topic.name = TopicName(StrBytes::from_string(name.clone()));
            response.topics.push(topic);
        }
    }
    response
}
