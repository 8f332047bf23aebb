//! The decision on one admission request: the spec goes through the reconciler's own [`validate`], with the same
//! policy, so `kubectl apply` refuses exactly what the operator would refuse, with the same message.

use crate::crd::LogPipeline;
use crate::validate::{self, Defaults, Invalid};
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};
use kube::core::DynamicObject;

/// What the webhook says, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    /// Not this operator's: a namespace it does not watch.
    NotWatched,
    /// Metadata or finalizers changed, not the spec: a pipeline that a narrower policy now refuses can still be
    /// labelled, and deleted through its finalizer.
    SpecUnchanged,
    Deleting,
    Refused(Invalid),
}

impl Verdict {
    /// The metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::NotWatched => "not_watched",
            Verdict::SpecUnchanged => "spec_unchanged",
            Verdict::Deleting => "deleting",
            Verdict::Refused(_) => "refused",
        }
    }
}

/// Decides a LogPipeline request. `scope` is the namespace the operator watches, if only one.
pub fn verdict(request: &AdmissionRequest<DynamicObject>, defaults: &Defaults, scope: Option<&str>) -> Verdict {
    let namespace = request.namespace.as_deref().unwrap_or_default();
    if scope.is_some_and(|watched| watched != namespace) {
        return Verdict::NotWatched;
    }
    let Some(object) = &request.object else {
        return Verdict::Deleting;
    };
    if object.metadata.deletion_timestamp.is_some() {
        return Verdict::Deleting;
    }
    if request.operation == Operation::Update {
        let old_spec = request.old_object.as_ref().map(|old| &old.data["spec"]);
        if old_spec == Some(&object.data["spec"]) {
            return Verdict::SpecUnchanged;
        }
    }
    let mut value = match serde_json::to_value(object) {
        Ok(value) => value,
        Err(e) => return Verdict::Refused(Invalid::new("spec", e.to_string())),
    };
    // A new object may come without its namespace; the request names it.
    value["metadata"]["namespace"] = namespace.into();
    match serde_json::from_value::<LogPipeline>(value) {
        Ok(lp) => validate::validate(&lp, defaults).map_or_else(Verdict::Refused, |_| Verdict::Valid),
        Err(e) => Verdict::Refused(Invalid::new("spec", e.to_string())),
    }
}

/// The answer to the API server.
pub fn respond(request: &AdmissionRequest<DynamicObject>, verdict: &Verdict) -> AdmissionResponse {
    let response = AdmissionResponse::from(request);
    match verdict {
        Verdict::Refused(invalid) => response.deny(invalid),
        _ => response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::Policy;
    use serde_json::{json, Value};

    fn pipeline(paths: Value) -> Value {
        json!({
            "apiVersion": "logpipe.dev/v1alpha1",
            "kind": "LogPipeline",
            "metadata": {"name": "web", "uid": "0b9c6f1e-1111-2222-3333-444455556666"},
            "spec": {
                "kafka": {"external": {"bootstrapServers": "kafka:9092"}},
                "indexer": {"elasticsearch": {"url": "https://es:9200"}},
                "collector": {"paths": paths}
            }
        })
    }

    fn request(
        operation: &str,
        namespace: &str,
        object: Option<Value>,
        old: Option<Value>,
    ) -> AdmissionRequest<DynamicObject> {
        serde_json::from_value(json!({
            "uid": "req-1",
            "kind": {"group": "logpipe.dev", "version": "v1alpha1", "kind": "LogPipeline"},
            "resource": {"group": "logpipe.dev", "version": "v1alpha1", "resource": "logpipelines"},
            "name": "web",
            "namespace": namespace,
            "operation": operation,
            "userInfo": {"username": "owner"},
            "object": object,
            "oldObject": old
        }))
        .unwrap()
    }

    #[test]
    fn requests_get_the_operators_verdict() {
        let defaults = Defaults::new("logpipe/collector:1");
        let good = || pipeline(json!(["/var/log/pods/*/*/*.log"]));
        let etc = || pipeline(json!(["/etc/kubernetes/pki/*.key"]));
        let mut deleting = etc();
        deleting["metadata"]["deletionTimestamp"] = json!("2026-12-05T10:00:00Z");
        let mut relabelled = etc();
        relabelled["metadata"]["labels"] = json!({"team": "web"});
        let cases: Vec<(&str, AdmissionRequest<DynamicObject>, Option<&str>, &str)> = vec![
            ("a valid pipeline", request("CREATE", "logging", Some(good()), None), None, "Valid"),
            ("/etc on create", request("CREATE", "logging", Some(etc()), None), None, "Refused"),
            ("/etc on update", request("UPDATE", "logging", Some(etc()), Some(good())), None, "Refused"),
            (
                "labels of a refused spec",
                request("UPDATE", "logging", Some(relabelled), Some(etc())),
                None,
                "SpecUnchanged",
            ),
            ("finalizer removal", request("UPDATE", "logging", Some(deleting), Some(etc())), None, "Deleting"),
            ("another namespace", request("CREATE", "other", Some(etc()), None), Some("logging"), "NotWatched"),
            ("the watched namespace", request("CREATE", "logging", Some(etc()), None), Some("logging"), "Refused"),
        ];
        for (what, request, scope, want) in cases {
            let got = verdict(&request, &defaults, scope);
            assert!(format!("{got:?}").starts_with(want), "{what}: {got:?}");
        }
    }

    #[test]
    fn a_refusal_carries_the_field_and_the_policy() {
        let defaults = Defaults::new("logpipe/collector:1");
        let request = request("CREATE", "logging", Some(pipeline(json!(["/etc/*.conf"]))), None);
        let response = respond(&request, &verdict(&request, &defaults, None));
        assert!(!response.allowed);
        assert_eq!(response.uid, "req-1");
        assert!(response.result.message.starts_with("spec.collector.paths: "), "{}", response.result.message);
        assert!(response.result.message.contains("allowedHostPaths"), "{}", response.result.message);
    }

    #[test]
    fn the_namespace_policy_applies_to_the_request_namespace() {
        let policy = Policy {
            pipeline_namespaces: crate::validate::Namespaces::parse(&["logging".to_owned()]),
            ..Policy::default()
        };
        let defaults = Defaults { policy, ..Defaults::new("logpipe/collector:1") };
        let good = pipeline(json!(["/var/log/pods/*/*/*.log"]));
        assert_eq!(verdict(&request("CREATE", "logging", Some(good.clone()), None), &defaults, None), Verdict::Valid);
        let elsewhere = verdict(&request("CREATE", "team-a", Some(good), None), &defaults, None);
        assert!(matches!(&elsewhere, Verdict::Refused(i) if i.field == "metadata.namespace"), "{elsewhere:?}");
    }
}
