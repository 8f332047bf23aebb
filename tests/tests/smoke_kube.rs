//! The test kube-apiserver works with our kube crates: list, server-side apply of a CRD, wait until established,
//! then create and read back a custom resource (the path that crashed with the vendored reflect2).

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{CustomResource, CustomResourceExt};
use logpipe_tests::{kube_client, unique_name};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[kube(group = "smoke.logpipe.dev", version = "v1", kind = "Smoke", namespaced)]
struct SmokeSpec {
    greeting: String,
}

#[tokio::test]
async fn lists_namespaces() {
    let client = kube_client().await;
    let namespaces = Api::<Namespace>::all(client).list(&ListParams::default()).await.unwrap();
    let names: Vec<_> = namespaces.items.iter().filter_map(|n| n.metadata.name.clone()).collect();
    assert!(names.iter().any(|n| n == "default"), "namespaces: {names:?}");
}

#[tokio::test]
async fn applies_a_crd_server_side_and_serves_it() {
    let client = kube_client().await;
    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    let crd = Smoke::crd();
    let name = crd.metadata.name.clone().unwrap();
    let params = PatchParams::apply("logpipe-smoke").force();
    crds.patch(&name, &params, &Patch::Apply(&crd)).await.unwrap();
    let established = await_condition(crds.clone(), &name, conditions::is_crd_established());
    tokio::time::timeout(Duration::from_secs(30), established).await.unwrap().unwrap();

    let namespace = unique_name("smoke");
    let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": namespace}})).unwrap();
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await.unwrap();

    // Discovery lags behind Established, so the first writes may 404 for a moment.
    let smokes = Api::<Smoke>::namespaced(client.clone(), &namespace);
    let obj = Smoke::new("hello", SmokeSpec { greeting: "hi".into() });
    let created = logpipe_tests::wait_for("the Smoke resource to be served", Duration::from_secs(30), || {
        let (smokes, obj) = (smokes.clone(), obj.clone());
        async move { smokes.create(&PostParams::default(), &obj).await.ok() }
    })
    .await;
    assert_eq!(created.spec.greeting, "hi");
    assert_eq!(smokes.get("hello").await.unwrap().spec.greeting, "hi");

    Api::<Namespace>::all(client).delete(&namespace, &DeleteParams::default()).await.unwrap();
}
