//! Which pod log files are read, and what their documents say of the pod: the filter plus, when the pod watch
//! runs, the metadata index it feeds.

use crate::encode::{file_prefix, MetaFields, PathMeta, PodContext};
use crate::metadata::{Decision, Filter, MetaIndex, Update};
use crate::tailer::Admit;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

/// The pod watch as the agent sees it.
pub struct PodWatch {
    pub index: MetaIndex,
    pub updates: Receiver<Update>,
    /// How long a new file waits for its pod to appear in the index.
    pub wait: Duration,
    pub fields: MetaFields,
}

pub struct Enricher {
    filter: Filter,
    watch: Option<PodWatch>,
    /// Files found whose pod is not in the index yet, since when.
    waiting: HashMap<PathBuf, Instant>,
    /// Files skipped by the last scan and by this one: a decision is logged when it is new, not every scan.
    skipped_before: HashSet<PathBuf>,
    skipped_now: HashSet<PathBuf>,
}

impl Enricher {
    pub fn new(filter: Filter, watch: Option<PodWatch>) -> Self {
        Self { filter, watch, waiting: HashMap::new(), skipped_before: HashSet::new(), skipped_now: HashSet::new() }
    }

    /// Applies what the watches sent since the last call; returns whether documents of open files are stale.
    pub fn refresh(&mut self, rendered: u64) -> bool {
        let Some(w) = &mut self.watch else {
            return false;
        };
        let now = Instant::now();
        loop {
            match w.updates.try_recv() {
                Ok(update) => w.index.apply(update, now),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    tracing::error!("the pod watch stopped; records carry what was known until now");
                    break;
                }
            }
        }
        w.index.expire(now);
        w.index.version() != rendered
    }

    /// The index version documents rendered now reflect.
    pub fn version(&self) -> u64 {
        self.watch.as_ref().map_or(0, |w| w.index.version())
    }

    /// Waits (up to the configured wait) until both watches have listed everything once, so the first scan knows
    /// every pod already running.
    pub fn wait_synced(&mut self) {
        let Some(w) = &mut self.watch else {
            return;
        };
        let deadline = Instant::now() + w.wait;
        while !w.index.synced() {
            let left = deadline.saturating_duration_since(Instant::now());
            match w.updates.recv_timeout(left) {
                Ok(update) => w.index.apply(update, Instant::now()),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    tracing::warn!("pod metadata not listed in time; starting with what is known");
                    return;
                }
            }
        }
    }

    /// Called after each scan.
    pub fn scanned(&mut self) {
        self.skipped_before = std::mem::take(&mut self.skipped_now);
    }

    pub fn admit(&mut self, path: &Path) -> Admit {
        let decision = match PathMeta::from_path(path) {
            None => self.filter.without_pod(),
            Some(pm) => match self.filter.by_path(&pm.namespace, &pm.container) {
                Decision::Collect => match self.by_metadata(path, &pm) {
                    Some(d) => d,
                    None => return Admit::NotNow,
                },
                skip => skip,
            },
        };
        self.waiting.remove(path);
        match decision {
            Decision::Collect => Admit::Read,
            Decision::Skip(reason) => {
                if !self.skipped_before.contains(path) {
                    tracing::info!(path = %path.display(), reason, "not collecting this file");
                }
                self.skipped_now.insert(path.to_path_buf());
                Admit::NotNow
            }
        }
    }

    /// `None` while the file waits for its pod's metadata.
    fn by_metadata(&mut self, path: &Path, pm: &PathMeta) -> Option<Decision> {
        let Some(w) = &self.watch else {
            return Some(Decision::Collect);
        };
        if let Some(pod) = w.index.pod(pm.uid.as_deref(), &pm.namespace, &pm.pod) {
            let ns = w.index.namespace_labels(&pm.namespace);
            return Some(self.filter.by_metadata(pod, ns.map(|l| &**l)));
        }
        let since = *self.waiting.entry(path.to_path_buf()).or_insert_with(Instant::now);
        if since.elapsed() >= w.wait {
            // Losing lines is worse than shipping them without labels or past a selector.
            tracing::warn!(path = %path.display(), "no metadata for this pod; collecting it with path metadata only");
            return Some(Decision::Collect);
        }
        None
    }

    /// The per-file document prefix, with the pod's metadata when known.
    pub fn prefix(&self, host: &str, path: &Path) -> Vec<u8> {
        let pm = PathMeta::from_path(path);
        let pod = self.watch.as_ref().zip(pm.as_ref()).and_then(|(w, pm)| {
            let pod = w.index.pod(pm.uid.as_deref(), &pm.namespace, &pm.pod)?;
            let namespace_labels = w.index.namespace_labels(&pm.namespace).map(|l| &**l);
            Some(PodContext { pod, namespace_labels, fields: w.fields })
        });
        file_prefix(host, path, pm.as_ref(), pod.as_ref())
    }
}
