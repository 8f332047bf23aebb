//! logpipe's operator. A reconcile is validate -> fetch -> build -> apply -> status, each a module: [`validate`]
//! checks a spec (pure), [`fetch`] reads what the cluster holds and makes the pipeline's [`kafka::Kafka`], [`build`]
//! turns a valid spec into the ordered desired children (pure), [`apply`] server-side applies them and prunes the
//! unwanted, [`status`] derives the conditions. [`kafka`] is the one seam to Kafka, external or managed.
//! [`reconcile`] wires them into a kube-runtime controller; [`admission`] applies [`validate`] at `kubectl apply`.

pub mod admission;
pub mod apply;
pub mod build;
pub mod certs;
pub mod crd;
pub mod events;
pub mod fetch;
pub mod kafka;
pub mod leader;
pub mod metrics;
pub mod model;
pub mod names;
pub mod reconcile;
pub mod render;
pub mod status;
pub mod validate;
