//! Replication throttles while replicas move: a rate on every broker, and every replica of the moving topics
//! throttled. Kafka never throttles a replica that is in sync, so "*" slows only the copies being built.

use super::{Admin, AdminError, TOPIC_RESOURCE};
use crate::kafka::managed::scaling::BrokerId;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::{DescribeConfigsRequest, IncrementalAlterConfigsRequest};
use kafka_protocol::protocol::StrBytes;

const BROKER_RESOURCE: i8 = 4;
const SET: i8 = 0;
const DELETE: i8 = 1;
/// DescribeConfigs' source of a config set at run time for one broker.
const DYNAMIC_BROKER_CONFIG: i8 = 1;
pub const RATES: [&str; 2] = ["leader.replication.throttled.rate", "follower.replication.throttled.rate"];
pub const REPLICAS: [&str; 2] = ["leader.replication.throttled.replicas", "follower.replication.throttled.replicas"];

/// What to do with the throttles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttle {
    /// Bytes per second, per broker, for each direction of replication traffic that is catching up.
    Set(u64),
    Clear,
}

fn resource(kind: i8, name: String, keys: &[&str], op: Throttle) -> AlterConfigsResource {
    let mut r = AlterConfigsResource::default();
    r.resource_type = kind;
    r.resource_name = StrBytes::from_string(name);
    r.configs = keys
        .iter()
        .map(|key| {
            let mut c = AlterableConfig::default();
            c.name = StrBytes::from_string((*key).to_owned());
            let (operation, value) = match (op, kind) {
                (Throttle::Set(rate), BROKER_RESOURCE) => (SET, Some(rate.to_string())),
                (Throttle::Set(_), _) => (SET, Some("*".to_owned())),
                (Throttle::Clear, _) => (DELETE, None),
            };
            c.config_operation = operation;
            c.value = value.map(StrBytes::from_string);
            c
        })
        .collect();
    r
}

impl Admin {
    /// Sets or clears the throttle rate of `brokers` and the throttled replicas of `topics`.
    pub async fn throttle<'a>(
        &mut self,
        brokers: impl IntoIterator<Item = BrokerId>,
        topics: impl IntoIterator<Item = &'a str>,
        op: Throttle,
    ) -> Result<(), AdminError> {
        let mut request = IncrementalAlterConfigsRequest::default();
        request.resources.extend(brokers.into_iter().map(|b| resource(BROKER_RESOURCE, b.to_string(), &RATES, op)));
        request.resources.extend(topics.into_iter().map(|t| resource(TOPIC_RESOURCE, t.to_owned(), &REPLICAS, op)));
        if request.resources.is_empty() {
            return Ok(());
        }
        let response = self.conn.call(&request).await?;
        for r in &response.responses {
            self.check("IncrementalAlterConfigs", r.error_code, r.error_message.as_ref())?;
        }
        Ok(())
    }

    /// Whether any of `brokers` has a replication throttle rate set at run time.
    pub async fn throttled(&mut self, brokers: impl IntoIterator<Item = BrokerId>) -> Result<bool, AdminError> {
        let mut request = DescribeConfigsRequest::default();
        for b in brokers {
            let mut r = DescribeConfigsResource::default();
            r.resource_type = BROKER_RESOURCE;
            r.resource_name = StrBytes::from_string(b.to_string());
            r.configuration_keys = Some(RATES.iter().map(|k| StrBytes::from_static_str(k)).collect());
            request.resources.push(r);
        }
        if request.resources.is_empty() {
            return Ok(false);
        }
        let response = self.conn.call(&request).await?;
        let mut set = false;
        for result in &response.results {
            self.check("DescribeConfigs", result.error_code, result.error_message.as_ref())?;
            set |= result.configs.iter().any(|c| c.config_source == DYNAMIC_BROKER_CONFIG && c.value.is_some());
        }
        Ok(set)
    }
}
