//! The operator applies only over objects that are its pipeline's: a namespaced child must carry the pipeline's
//! owner reference, a cluster-scoped one its namespace and name labels. Anything else under a child's name is
//! someone else's, and taking it over (a forced apply would) could break whatever uses it.

use super::Invalid;
use crate::build::{Child, Desired, PIPELINE_NAMESPACE_LABEL, PIPELINE_NAME_LABEL};
use crate::names::PipelineName;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// `existing[i]` is what holds the name of `d.children[i]`, if anything; `owner_uid` the pipeline's uid.
pub fn ownership(
    d: &Desired,
    existing: &[Option<ObjectMeta>],
    name: &PipelineName,
    owner_uid: &str,
) -> Result<(), Invalid> {
    for (child, found) in d.children.iter().zip(existing) {
        let Some(meta) = found else { continue };
        let why = match child {
            Child::ClusterRole(_) | Child::ClusterRoleBinding(_) => {
                let label = |key: &str| meta.labels.as_ref().and_then(|l| l.get(key)).map(String::as_str);
                let ours = label(PIPELINE_NAMESPACE_LABEL) == Some(name.namespace())
                    && label(PIPELINE_NAME_LABEL) == Some(name.name());
                (!ours).then(|| format!("its labels do not name pipeline {name}"))
            }
            _ => {
                let owners = meta.owner_references.as_deref().unwrap_or_default();
                match owners.iter().find(|o| o.controller == Some(true)).or(owners.first()) {
                    _ if owners.iter().any(|o| o.uid == owner_uid) => None,
                    Some(other) => Some(format!("it belongs to {} {} (uid {})", other.kind, other.name, other.uid)),
                    None => Some("it has no owner".to_owned()),
                }
            }
        };
        if let Some(why) = why {
            let reason = format!(
                "{} {} already exists and is not this pipeline's: {why}. The operator does not take over objects it \
                 did not create; remove or rename that object, or give the pipeline another name",
                child.kind(),
                child.name()
            );
            return Err(Invalid::new("metadata.name", reason));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::api::rbac::v1::ClusterRole;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
    use std::collections::BTreeMap;

    fn owned_by(uid: &str) -> ObjectMeta {
        let owner =
            OwnerReference { kind: "LogPipeline".into(), name: "web".into(), uid: uid.into(), ..Default::default() };
        ObjectMeta { owner_references: Some(vec![owner]), ..Default::default() }
    }

    fn labelled(ns: &str, name: &str) -> ObjectMeta {
        let labels = BTreeMap::from([
            (PIPELINE_NAMESPACE_LABEL.to_owned(), ns.to_owned()),
            (PIPELINE_NAME_LABEL.to_owned(), name.to_owned()),
        ]);
        ObjectMeta { labels: Some(labels), ..Default::default() }
    }

    #[test]
    fn only_the_pipelines_own_objects_are_applied_over() {
        let name = PipelineName::new("logging", "web").unwrap();
        let meta = |n: &str| ObjectMeta { name: Some(n.into()), ..Default::default() };
        let d = Desired {
            children: vec![
                Child::ConfigMap(ConfigMap { metadata: meta("web-collector"), ..Default::default() }),
                Child::ClusterRole(ClusterRole {
                    metadata: meta("logpipe-logging-web-x-collector"),
                    ..Default::default()
                }),
            ],
            config_hash: String::new(),
        };
        let cases = [
            ("nothing there yet", [None, None], None),
            ("ours", [Some(owned_by("uid-1")), Some(labelled("logging", "web"))], None),
            ("a ConfigMap without owner", [Some(ObjectMeta::default()), None], Some("ConfigMap web-collector")),
            ("another owner", [Some(owned_by("uid-2")), None], Some("uid uid-2")),
            ("another pipeline's role", [None, Some(labelled("logging-web", "x"))], Some("ClusterRole")),
            ("an unlabelled role", [None, Some(ObjectMeta::default())], Some("do not name pipeline logging/web")),
        ];
        for (what, existing, refused) in cases {
            let got = ownership(&d, &existing, &name, "uid-1");
            match refused {
                None => assert_eq!(got, Ok(()), "{what}"),
                Some(text) => {
                    let e = got.expect_err(what);
                    assert!(e.field == "metadata.name" && e.reason.contains(text), "{what}: {e}");
                }
            }
        }
    }
}
