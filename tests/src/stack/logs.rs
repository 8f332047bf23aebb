//! Generated pod logs in the kubelet's layout (`<root>/<namespace>_<pod>_<uid>/<container>/0.log`, CRI lines):
//! JSON application records with a sequence number per pod, and now and then a line that is not JSON.

use super::StackError;
use serde_json::{json, Value};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A pod of the stack and its one container.
#[derive(Debug, Clone)]
pub struct PodSpec {
    pub namespace: String,
    pub name: String,
    pub labels: Value,
    pub container: String,
    pub image: String,
}

/// The pods the demo and the end-to-end test run: two teams' namespaces, three workloads.
pub fn pods(run: &str) -> Vec<PodSpec> {
    let pod = |ns: &str, name: &str, app: &str| PodSpec {
        namespace: format!("{run}-{ns}"),
        name: name.to_owned(),
        labels: json!({"app": app}),
        container: app.to_owned(),
        image: format!("example.com/{app}:1.4"),
    };
    vec![pod("shop", "web-7d4f9", "web"), pod("shop", "cart-5c2a1", "cart"), pod("payments", "api-0", "api")]
}

/// Every `MALFORMED_EVERY`th line is plain text: it must arrive raw, marked by the JSON processor, not dropped.
pub const MALFORMED_EVERY: u64 = 50;
const LEVELS: [&str; 4] = ["info", "info", "warn", "error"];

/// The line with sequence number `seq` of `pod`: what the application printed.
pub fn line(pod: &PodSpec, seq: u64) -> String {
    if seq % MALFORMED_EVERY == MALFORMED_EVERY - 1 {
        return format!("{} plain text line seq={seq}", pod.name);
    }
    let level = LEVELS[(seq % LEVELS.len() as u64) as usize];
    json!({"level": level, "msg": format!("{} handled request {seq}", pod.name), "seq": seq, "pod": pod.name})
        .to_string()
}

/// Appends lines to each pod's log file and counts what it wrote.
pub struct LogWriter {
    files: Vec<(PodSpec, File)>,
    next: Vec<u64>,
}

impl LogWriter {
    /// Creates each pod's log directory under `root`; `uids` are the pods' uids, in the order of `pods`.
    pub fn new(root: &Path, pods: &[PodSpec], uids: &[String]) -> Result<LogWriter, StackError> {
        let mut files = Vec::new();
        for (pod, uid) in pods.iter().zip(uids) {
            let dir = root.join(format!("{}_{}_{uid}", pod.namespace, pod.name)).join(&pod.container);
            std::fs::create_dir_all(&dir).map_err(|e| StackError::io(&dir, e))?;
            let path = dir.join("0.log");
            let file = File::options().create(true).append(true).open(&path).map_err(|e| StackError::io(&path, e))?;
            files.push((pod.clone(), file));
        }
        let next = vec![0; files.len()];
        Ok(LogWriter { files, next })
    }

    /// The glob the agent's `tail.include` needs for `root`.
    pub fn glob(root: &Path) -> PathBuf {
        root.join("*/*/*.log")
    }

    /// Appends `n` lines to every pod's file, in one write per pod, as a busy container would.
    pub fn write(&mut self, n: u64) -> Result<(), StackError> {
        for ((pod, file), next) in self.files.iter_mut().zip(self.next.iter_mut()) {
            let mut text = String::new();
            for seq in *next..*next + n {
                let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
                text.push_str(&format!("{now} stdout F {}\n", line(pod, seq)));
            }
            file.write_all(text.as_bytes()).map_err(|e| StackError::io(Path::new(&pod.name), e))?;
            *next += n;
        }
        Ok(())
    }

    /// Lines written so far, over all pods.
    pub fn written(&self) -> u64 {
        self.next.iter().sum()
    }

    /// `(pod, lines written)` for each pod.
    pub fn per_pod(&self) -> impl Iterator<Item = (&PodSpec, u64)> {
        self.files.iter().map(|(pod, _)| pod).zip(self.next.iter().copied())
    }
}
