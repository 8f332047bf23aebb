//! Pod metadata from the Kubernetes API, for enriching records and deciding which pods' logs are collected.
//!
//! [`watch`] streams this node's pods and all namespaces into a channel; [`MetaIndex`] (owned by the agent's loop,
//! no locks) applies the updates and keeps a deleted pod for a grace period, since its files are still being read;
//! [`Filter`] decides from path and metadata whether a file is collected.

mod filter;
mod index;
mod pod;
mod watch;

pub use filter::{Decision, Filter, FilterError};
pub use index::MetaIndex;
pub use pod::{dedot, Labels, Owner, PodMeta};
pub use watch::{start, WatchError};

/// One change seen by the watches. A relist (after a watch expired) is bracketed by `*Relist` and `*Listed`: what
/// was not listed in between was deleted while the watch was down.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    PodsRelist,
    Pod(PodMeta),
    PodDeleted { uid: String },
    PodsListed,
    NamespacesRelist,
    Namespace { name: String, labels: Labels },
    NamespaceDeleted { name: String },
    NamespacesListed,
}
