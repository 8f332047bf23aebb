//! logpipe's operator. A reconcile is fetch -> validate -> build -> apply -> status, each a module:
//! [`fetch`] reads what the cluster and Kafka hold, [`validate`] checks a spec (pure), [`build`] turns a valid spec
//! into the desired objects (pure), [`apply`] server-side applies them, [`status`] derives the conditions.
//! [`reconcile`] wires them into a kube-runtime controller.

pub mod apply;
pub mod build;
pub mod crd;
pub mod fetch;
pub mod kafka;
pub mod kafka_admin;
pub mod leader;
pub mod metrics;
pub mod model;
pub mod names;
pub mod reconcile;
pub mod render;
pub mod scaling;
pub mod status;
pub mod validate;
