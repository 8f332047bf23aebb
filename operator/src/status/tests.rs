use super::*;
use k8s_openapi::api::apps::v1::{DaemonSetStatus, DeploymentSpec, DeploymentStatus};
use k8s_openapi::jiff::Timestamp;

fn ds(generation: i64, observed: i64, desired: i32, updated: i32, available: i32) -> DaemonSet {
    let mut ds = DaemonSet::default();
    ds.metadata.generation = Some(generation);
    ds.status = Some(DaemonSetStatus {
        observed_generation: Some(observed),
        desired_number_scheduled: desired,
        updated_number_scheduled: Some(updated),
        number_available: Some(available),
        number_ready: available,
        ..Default::default()
    });
    ds
}

fn deploy(replicas: i32, updated: i32, available: i32) -> Deployment {
    let mut d = Deployment::default();
    d.metadata.generation = Some(1);
    d.spec = Some(DeploymentSpec { replicas: Some(replicas), ..Default::default() });
    d.status = Some(DeploymentStatus {
        observed_generation: Some(1),
        updated_replicas: Some(updated),
        available_replicas: Some(available),
        ready_replicas: Some(available),
        ..Default::default()
    });
    d
}

fn kafka_ready() -> KafkaState {
    KafkaState::Ready { brokers: 3, partitions: 6 }
}

fn at(seconds: i64) -> Time {
    Time(Timestamp::from_second(1_700_000_000 + seconds).unwrap())
}

fn condition<'a>(s: &'a LogPipelineStatus, kind: &str) -> &'a Condition {
    s.conditions.iter().find(|c| c.type_ == kind).unwrap()
}

fn applied<'a>(kafka: KafkaState, ds: &'a DaemonSet, d: &'a Deployment) -> Observation<'a> {
    Observation::Applied {
        config_hash: "h1",
        topic: "logs",
        kafka,
        daemon_set: ds,
        deployment: d,
        scaling: None,
        listeners: None,
    }
}

#[test]
fn readiness_table() {
    let cases = [
        ("all ready", kafka_ready(), ds(2, 2, 3, 3, 3), deploy(2, 2, 2), "True", "PipelineReady"),
        ("ds not observed", kafka_ready(), ds(2, 1, 3, 3, 3), deploy(2, 2, 2), "False", "CollectorNotReady"),
        ("no nodes", kafka_ready(), ds(1, 1, 0, 0, 0), deploy(2, 2, 2), "False", "CollectorNotReady"),
        ("collectors rolling", kafka_ready(), ds(1, 1, 3, 1, 3), deploy(2, 2, 2), "False", "CollectorNotReady"),
        ("indexer unavailable", kafka_ready(), ds(1, 1, 3, 3, 3), deploy(2, 2, 1), "False", "IndexerNotReady"),
        ("indexer at zero", kafka_ready(), ds(1, 1, 3, 3, 3), deploy(0, 0, 0), "False", "IndexerNotReady"),
        (
            "kafka down",
            KafkaState::NotReady { reason: "KafkaUnreachable", message: "no".into() },
            ds(1, 1, 3, 3, 3),
            deploy(2, 2, 2),
            "False",
            "KafkaNotReady",
        ),
    ];
    for (what, kafka, ds, d, ready, reason) in cases {
        let s = next(&LogPipelineStatus::default(), Some(2), &applied(kafka, &ds, &d), &at(0));
        let c = condition(&s, "Ready");
        assert_eq!((c.status.as_str(), c.reason.as_str()), (ready, reason), "{what}");
        assert_eq!(condition(&s, "ConfigValid").status, "True", "{what}");
        assert_eq!(s.observed_generation, Some(2));
    }
}

#[test]
fn counts_are_reported() {
    let (ds, d) = (ds(1, 1, 3, 3, 2), deploy(2, 2, 1));
    let s = next(&LogPipelineStatus::default(), Some(1), &applied(kafka_ready(), &ds, &d), &at(0));
    assert_eq!(s.collector, Some(ComponentStatus::new(3, 2)));
    assert_eq!(s.indexer.as_ref().unwrap().summary, "1/2");
    assert_eq!(s.config_hash.as_deref(), Some("h1"));
    assert_eq!(s.kafka, Some(ComponentStatus::new(3, 3)));
    let down = KafkaState::NotReady { reason: "KafkaUnreachable", message: "no".into() };
    let s = next(&s, Some(1), &applied(down, &ds, &d), &at(1));
    assert_eq!(s.kafka, Some(ComponentStatus::new(3, 0)), "the last broker count seen, none ready");
}

#[test]
fn transition_time_moves_only_when_the_status_flips() {
    let (ready_ds, d) = (ds(1, 1, 1, 1, 1), deploy(1, 1, 1));
    let rolling_ds = ds(1, 1, 2, 1, 1);
    let s1 = next(&LogPipelineStatus::default(), Some(1), &applied(kafka_ready(), &rolling_ds, &d), &at(0));
    let s2 = next(&s1, Some(1), &applied(kafka_ready(), &ds(1, 1, 2, 1, 0), &d), &at(10));
    assert_eq!(condition(&s2, "Ready").last_transition_time, at(0), "still False: no transition");
    let s3 = next(&s2, Some(1), &applied(kafka_ready(), &ready_ds, &d), &at(20));
    assert_eq!(condition(&s3, "Ready").last_transition_time, at(20));
    assert_eq!(condition(&s3, "KafkaReady").last_transition_time, at(0));
}

#[test]
fn an_invalid_spec_keeps_the_component_conditions() {
    let (ds, d) = (ds(1, 1, 1, 1, 1), deploy(1, 1, 1));
    let ok = next(&LogPipelineStatus::default(), Some(1), &applied(kafka_ready(), &ds, &d), &at(0));
    let invalid = Invalid::new("spec.indexer.processors[0]", "unknown variant `explode`");
    let s = next(&ok, Some(2), &Observation::Invalid(&invalid), &at(5));
    let c = condition(&s, "ConfigValid");
    assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "InvalidSpec"));
    assert!(c.message.contains("processors[0]"));
    assert_eq!(condition(&s, "Ready").status, "False");
    assert_eq!(condition(&s, "CollectorReady"), condition(&ok, "CollectorReady"));
    assert_eq!(s.config_hash, ok.config_hash);
    assert_eq!(s.observed_generation, Some(2));
}

/// A managed Kafka's scaling step becomes KafkaSettled and the operation to resume from; an external Kafka has
/// neither.
#[test]
fn scaling_is_reported_for_a_managed_kafka_only() {
    let (ds, d) = (ds(1, 1, 1, 1, 1), deploy(1, 1, 1));
    let external = next(&LogPipelineStatus::default(), Some(1), &applied(kafka_ready(), &ds, &d), &at(0));
    assert!(external.conditions.iter().all(|c| c.type_ != "KafkaSettled"));
    assert_eq!(external.kafka_operation, None);

    let cases = [
        (Operation::Draining { to: 3 }, false, "Reassigning", "False"),
        (Operation::ScalingUp, false, "BrokersStarting", "False"),
        (Operation::Idle, false, "Refused", "False"),
        (Operation::Idle, true, "Settled", "True"),
    ];
    for (operation, settled, reason, want) in cases {
        let since = (!settled).then(|| at(0));
        let scaling =
            Some(Scaling { operation, settled, reason, message: "m".into(), reassigning_since: since.clone() });
        let obs = Observation::Applied {
            config_hash: "h1",
            topic: "logs",
            kafka: kafka_ready(),
            daemon_set: &ds,
            deployment: &d,
            scaling,
            listeners: Some(ListenerSecurity::SaslSsl),
        };
        let s = next(&external, Some(1), &obs, &at(1));
        assert_eq!(s.kafka_listeners, Some(ListenerSecurity::SaslSsl));
        let c = condition(&s, "KafkaSettled");
        assert_eq!((c.status.as_str(), c.reason.as_str()), (want, reason), "{operation:?}");
        assert_eq!(s.kafka_operation.map(Operation::from), Some(operation));
        assert_eq!(s.reassigning_since, since, "the clock is kept, and cleared when settled");
        assert_eq!(condition(&s, "Ready").status, "True", "scaling alone does not make the pipeline unready");
    }
}
