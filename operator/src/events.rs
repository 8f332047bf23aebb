//! Kubernetes Events about one LogPipeline. Publishing is best effort: a failure is logged, never fails a reconcile.

use crate::crd::LogPipeline;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::Resource;

pub struct Events<'a> {
    recorder: &'a Recorder,
    reference: ObjectReference,
}

impl<'a> Events<'a> {
    pub fn new(recorder: &'a Recorder, lp: &LogPipeline) -> Self {
        Self { recorder, reference: lp.object_ref(&()) }
    }

    pub async fn normal(&self, reason: &str, note: String) {
        self.publish(EventType::Normal, reason, note).await;
    }

    pub async fn warning(&self, reason: &str, note: String) {
        self.publish(EventType::Warning, reason, note).await;
    }

    async fn publish(&self, type_: EventType, reason: &str, note: String) {
        let event =
            Event { type_, reason: reason.into(), note: Some(note), action: "Reconcile".into(), secondary: None };
        if let Err(error) = self.recorder.publish(&event, &self.reference).await {
            tracing::warn!(%error, reason, "cannot publish an Event");
        }
    }
}
