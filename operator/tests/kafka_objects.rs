//! The objects of a managed Kafka, server-side applied as a dry run to the real kube-apiserver of the test
//! environment: the server checks every field against its schema, and the objects it would store keep what the
//! builders meant (OnDelete, the volume claims, the headless Services).

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, Patch, PatchParams};
use logpipe_operator::build::kafka::{build, properties::cluster_id};
use logpipe_operator::crd::ListenerSecurity;
use logpipe_operator::model::{BrokerStorage, ManagedCluster};
use logpipe_operator::names::PipelineName;
use logpipe_tests::kube_client;
use serde::de::DeserializeOwned;
use serde::Serialize;

async fn dry_run<K>(api: &Api<K>, object: &K) -> K
where
    K: kube::Resource + Clone + std::fmt::Debug + Serialize + DeserializeOwned,
{
    let name = object.meta().name.clone().unwrap();
    let params = PatchParams::apply("logpipe-test").dry_run();
    api.patch(&name, &params, &Patch::Apply(object)).await.unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[tokio::test]
async fn the_apiserver_accepts_every_object_of_a_managed_kafka() {
    let client = kube_client().await;
    let name = PipelineName::new("default", "dry").unwrap();
    let cluster = ManagedCluster {
        brokers: 3,
        controllers: 3,
        image: "apache/kafka:4.1.0".into(),
        storage: BrokerStorage { size: "20Gi".into(), class: None, delete_claim_on_scale_down: true },
        resources: Default::default(),
        broker_config: [("log.retention.hours".to_owned(), "24".to_owned())].into(),
        cluster_id: cluster_id("uid"),
        reassignment_throttle: 1 << 20,
        reassignment_timeout: std::time::Duration::from_secs(3600),
        operator: Default::default(),
        security: ListenerSecurity::SaslSsl,
        certificate: Some("0123abcd".into()),
    };
    let objects = build(&name, &cluster, None);

    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    dry_run(&maps, &objects.config_map).await;
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    for s in &objects.services {
        let stored = dry_run(&services, s).await;
        assert_eq!(
            stored.spec.unwrap().publish_not_ready_addresses,
            s.spec.as_ref().unwrap().publish_not_ready_addresses
        );
    }
    let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), "default");
    let stored = dry_run(&policies, &objects.network_policy).await.spec.unwrap();
    assert_eq!(stored.ingress.unwrap()[0].from.as_ref().unwrap().len(), 2, "the pipeline's pods and the operator");
    let sets: Api<StatefulSet> = Api::namespaced(client, "default");
    for s in objects.stateful_sets() {
        let stored = dry_run(&sets, s).await.spec.unwrap();
        let pod = stored.template.spec.as_ref().unwrap();
        assert_eq!(pod.automount_service_account_token, Some(false));
        assert_eq!(stored.update_strategy.unwrap().type_.as_deref(), Some("OnDelete"));
        assert_eq!(stored.volume_claim_templates.unwrap().len(), 1);
        assert_eq!(stored.pod_management_policy.as_deref(), Some("Parallel"));
        let secrets: Vec<_> =
            pod.volumes.iter().flatten().filter_map(|v| v.secret.as_ref()?.secret_name.clone()).collect();
        assert_eq!(secrets, ["dry-kafka-tls", "dry-kafka-users"], "the TLS and users Secrets survive the schema");
    }
    // The PodDisruptionBudgets are policy/v1, which this 1.20 apiserver does not serve; not applied here.
}
