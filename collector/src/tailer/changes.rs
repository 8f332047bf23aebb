//! inotify (where the platform has it): a file or directory created, removed or renamed under the globs' base
//! directories asks for a scan now instead of at the next interval. Polling stays the ground truth; a watcher that
//! cannot start (inotify limits) only costs latency.

use logpipe_config::glob_base_dir as base_dir;
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub struct Changes {
    flag: Arc<AtomicBool>,
    /// Kept alive: dropping it stops the watches.
    _watcher: Option<RecommendedWatcher>,
}

impl Changes {
    pub fn watch(include: &[String]) -> Self {
        let flag = Arc::new(AtomicBool::new(false));
        let set = Arc::clone(&flag);
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.is_ok_and(|e| {
                matches!(
                    e.kind,
                    EventKind::Create(_) | EventKind::Remove(_) | EventKind::Modify(notify::event::ModifyKind::Name(_))
                )
            }) {
                set.store(true, Ordering::Relaxed);
            }
        });
        let watcher = match watcher {
            Ok(mut w) => {
                for dir in base_dirs(include) {
                    if let Err(error) = w.watch(&dir, RecursiveMode::Recursive) {
                        tracing::warn!(dir = %dir.display(), %error, "no inotify watch; new files are found by polling");
                    }
                }
                Some(w)
            }
            Err(error) => {
                tracing::warn!(%error, "no inotify; new files are found by polling");
                None
            }
        };
        Self { flag, _watcher: watcher }
    }

    /// Whether something changed since the last call.
    pub fn take(&self) -> bool {
        self.flag.swap(false, Ordering::Relaxed)
    }
}

/// The directories the globs can match under: each pattern's leading components without glob syntax, deduplicated,
/// those that exist.
fn base_dirs(include: &[String]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = include.iter().map(|p| base_dir(Path::new(p))).filter(|d| d.is_dir()).collect();
    dirs.sort();
    dirs.dedup();
    // A directory under another is watched by the other's recursive watch.
    let all = dirs.clone();
    dirs.retain(|d| !all.iter().any(|o| o != d && d.starts_with(o)));
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_file_is_noticed() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("pod")).unwrap();
        let changes = Changes::watch(&[format!("{}/*/*.log", tmp.path().display())]);
        assert!(!changes.take());
        std::fs::write(tmp.path().join("pod/0.log"), "x\n").unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !changes.take() {
            assert!(std::time::Instant::now() < deadline, "no inotify event for a new file");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}
