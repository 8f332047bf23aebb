//! Carrying out one scaling decision: the StatefulSet's replicas, partition reassignments, a pod deleted for a
//! restart; and what the status and the Events say about it.

use super::admin::{Admin, AdminError, Throttle};
use super::scaling::{Action, BrokerId, ClusterView, Decision, Move, Operation, Waiting};
use super::{pods, Cluster, ManagedError};
use crate::apply;
use crate::build;
use crate::events::Events;
use crate::model::ManagedCluster;
use crate::status::Scaling;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::DeleteParams;
use kube::Api;
use std::collections::BTreeSet;

/// The reason of a refused scaling step.
pub(super) const REFUSED: &str = "Refused";

/// The claim template's name in the broker StatefulSet; a broker's claim is `data-<set>-<ordinal>`.
const CLAIM: &str = "data";

pub(super) struct Step<'a> {
    pub cluster: &'a Cluster,
    /// The cluster as the StatefulSets have it now.
    pub running: &'a ManagedCluster,
    /// What the decision was taken from.
    pub view: &'a ClusterView,
    pub client: &'a kube::Client,
    pub events: &'a Events<'a>,
}

impl Step<'_> {
    pub async fn take(&self, d: Decision, admin: &mut Admin) -> Result<Scaling, ManagedError> {
        let operation = d.operation;
        let scaling =
            |settled, reason, message| Scaling { operation, settled, reason, message, reassigning_since: None };
        Ok(match d.action {
            Action::Settled => scaling(true, "Settled", format!("{} broker(s), all current", self.running.brokers)),
            Action::Wait(w) => {
                let (reason, message) = waiting(&w);
                scaling(false, reason, message)
            }
            Action::SetReplicas(n) => {
                self.set_replicas(n).await?;
                scaling(false, "Scaling", format!("broker StatefulSet set to {n} replica(s)"))
            }
            Action::Reassign(moves) => match self.reassign(&moves, admin).await {
                Ok(()) => {
                    let message = format!("moving the replicas of {} partition(s)", moves.len());
                    self.events.normal("Reassigning", message.clone()).await;
                    scaling(false, "Reassigning", message)
                }
                Err(e) => {
                    // Never taken as done: the next reconcile observes the replicas where they are and plans again.
                    let message = format!("starting a reassignment failed, retrying: {e}");
                    self.events.warning("ReassignmentFailed", message.clone()).await;
                    scaling(false, "ReassignmentFailed", message)
                }
            },
            Action::Restart(b) => {
                let set = self.cluster.name.kafka_brokers();
                self.delete_pod(&format!("{set}-{b}")).await?;
                scaling(false, "RollingRestart", format!("restarting broker {b} onto the current configuration"))
            }
            Action::Refuse(r) => {
                self.events.warning("ScaleDownRefused", r.to_string()).await;
                scaling(false, REFUSED, r.to_string())
            }
        })
    }

    /// Moves that ran past the timeout are cancelled: each partition keeps the replicas it had, and the next
    /// look plans again from there. Never taken as done, so no broker is removed on their account.
    pub async fn cancel(&self, operation: Operation, admin: &mut Admin) -> Scaling {
        let stuck: Vec<(&str, i32)> =
            self.view.partitions.iter().filter(|p| p.reassigning()).map(|p| (p.topic.as_str(), p.index)).collect();
        let timeout = self.cluster.spec.reassignment_timeout.as_secs();
        let message = match admin.cancel(&stuck).await {
            Ok(()) => format!(
                "the reassignment of {} partition(s) did not finish within {timeout}s; cancelled, to be planned again",
                stuck.len()
            ),
            Err(e) => {
                format!("the reassignment of {} partition(s) ran past {timeout}s; cancelling failed: {e}", stuck.len())
            }
        };
        self.events.warning("ReassignmentTimedOut", message.clone()).await;
        Scaling { operation, settled: false, reason: "ReassignmentTimedOut", message, reassigning_since: None }
    }

    /// Throttled first: a reassignment never starts without the throttle.
    async fn reassign(&self, moves: &[Move], admin: &mut Admin) -> Result<(), AdminError> {
        let topics: BTreeSet<&str> = moves.iter().map(|m| m.topic.as_str()).collect();
        let rate = Throttle::Set(self.cluster.spec.reassignment_throttle);
        admin.throttle(self.view.registered.iter().copied(), topics, rate).await?;
        admin.reassign(moves).await
    }

    /// With nothing moving, the throttles of earlier moves are removed, so they never slow a broker that has to
    /// catch up after a restart. Best effort: a failure is a Warning Event, and it is tried again next time.
    pub async fn unthrottle(&self, admin: &mut Admin) {
        if self.view.partitions.iter().any(|p| p.reassigning()) {
            return;
        }
        let brokers = self.view.registered.iter().copied();
        let cleared = match admin.throttled(brokers.clone()).await {
            Ok(false) => return,
            Ok(true) => {
                let topics: BTreeSet<&str> = self.view.partitions.iter().map(|p| p.topic.as_str()).collect();
                admin.throttle(brokers, topics, Throttle::Clear).await
            }
            Err(e) => Err(e),
        };
        match cleared {
            Ok(()) => self.events.normal("ThrottleRemoved", "replication throttles removed".into()).await,
            Err(e) => self.events.warning("ThrottleNotRemoved", format!("removing replication throttles: {e}")).await,
        }
    }

    /// Scale-up adds every new broker at once; scale-down removes the highest one, already verified empty, and
    /// its claim when the spec asks.
    async fn set_replicas(&self, n: u32) -> Result<(), ManagedError> {
        let name = &self.cluster.name;
        let next = ManagedCluster { brokers: n, ..self.running.clone() };
        let set = build::kafka::build(name, &next, Some(&self.cluster.owner)).brokers;
        apply::stateful_set(self.client, name.namespace(), &set).await?;
        let from = self.running.brokers;
        if n > from {
            self.events.normal("BrokersAdded", format!("scaling the brokers from {from} to {n}")).await;
            return Ok(());
        }
        let removed: BrokerId = n as BrokerId;
        self.events.normal("BrokerRemoved", format!("broker {removed} held no replica and was removed")).await;
        if self.cluster.spec.storage.delete_claim_on_scale_down {
            let claim = format!("{CLAIM}-{}-{removed}", name.kafka_brokers());
            let claims: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), name.namespace());
            delete(&claims, &claim).await?;
        }
        Ok(())
    }

    async fn delete_pod(&self, pod: &str) -> Result<(), ManagedError> {
        let name = &self.cluster.name;
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), name.namespace());
        delete(&pods, pod).await?;
        self.events.normal("Restarted", format!("deleted pod {pod} to restart it on the current configuration")).await;
        Ok(())
    }

    /// Once the brokers are settled: the controller quorum, restarted one at a time onto the current configuration
    /// while every controller is up, and never resized. `None` when there is nothing to say.
    pub async fn controllers(&self, set: Option<&StatefulSet>, pods: &[Pod]) -> Result<Option<Scaling>, ManagedError> {
        let operation = self.cluster.operation;
        let scaling =
            |reason, message| Some(Scaling { operation, settled: false, reason, message, reassigning_since: None });
        let pods = match pods::broker_pods(set, pods) {
            Ok(pods) => pods,
            Err(pods::NotObserved(message)) => return Ok(scaling("RolloutPending", message)),
        };
        let wanted = self.running.controllers;
        if let Some(down) = (0..wanted as BrokerId).find(|c| !pods.get(c).is_some_and(|p| p.ready)) {
            return Ok(scaling("ControllersStarting", format!("controller {down} is not ready")));
        }
        if let Some((&c, _)) = pods.iter().rev().find(|(_, p)| !p.current) {
            let pod = format!("{}-{c}", self.cluster.name.kafka_controllers());
            self.delete_pod(&pod).await?;
            return Ok(scaling("RollingRestart", format!("restarting controller {c} onto the current configuration")));
        }
        let asked = self.cluster.spec.controllers;
        Ok((asked != wanted).then(|| Scaling {
            operation,
            settled: false,
            reassigning_since: None,
            reason: "QuorumResizeRefused",
            message: format!(
                "the controller quorum keeps its {wanted} controllers: resizing a KRaft quorum (to {asked}) is not \
                 supported by this operator"
            ),
        }))
    }
}

/// A wait as the condition's reason and message.
fn waiting(w: &Waiting) -> (&'static str, String) {
    match w {
        Waiting::BrokersStarting { missing } => {
            ("BrokersStarting", format!("waiting for broker(s) {missing:?} to be ready and registered"))
        }
        Waiting::Reassigning { partitions } => {
            ("Reassigning", format!("waiting for the reassignment of {partitions} partition(s)"))
        }
        Waiting::UnderReplicated { partitions } => {
            ("UnderReplicated", format!("waiting for {partitions} partition(s) to have every replica in sync"))
        }
        Waiting::NotEmpty { broker } => ("Draining", format!("broker {broker} still holds replicas")),
    }
}

async fn delete<K>(api: &Api<K>, name: &str) -> Result<(), ManagedError>
where
    K: kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(source) => Err(ManagedError::Kube { what: format!("deleting {} {name}", K::kind(&())), source }),
    }
}
