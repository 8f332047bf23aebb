//! inotify (where the platform has it): a file or directory created, removed or renamed under the globs' base
//! directories asks for a scan now instead of at the next interval. Polling stays the ground truth; a watcher that
//! cannot start (inotify limits) only costs latency.

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};
use logpipe_config::glob_base_dir as base_dir;
use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Only names coming and going: a watch that also asked for writes (as a general-purpose watcher does) would wake for
/// every line a container prints, and at tens of thousands of lines a second that was most of the agent's CPU.
const MASK: WatchMask = WatchMask::CREATE
    .union(WatchMask::DELETE)
    .union(WatchMask::MOVED_FROM)
    .union(WatchMask::MOVED_TO)
    .union(WatchMask::DELETE_SELF)
    .union(WatchMask::MOVE_SELF)
    .union(WatchMask::ONLYDIR);
/// How often the watching thread looks whether its owner is gone.
const OWNER_CHECK_MS: i32 = 1000;

pub struct Changes {
    /// Events seen by the watching thread, and how many of them `take` has reported.
    events: Arc<AtomicU64>,
    taken: AtomicU64,
}

impl Changes {
    pub fn watch(include: &[String]) -> Self {
        let events = Arc::new(AtomicU64::new(0));
        match Watch::start(&base_dirs(include)) {
            Ok(watch) => {
                let seen = Arc::clone(&events);
                let spawned = std::thread::Builder::new().name("inotify".into()).spawn(move || watch.run(&seen));
                if let Err(error) = spawned {
                    tracing::warn!(%error, "no inotify thread; new files are found by polling");
                }
            }
            Err(error) => tracing::warn!(%error, "no inotify; new files are found by polling"),
        }
        Self { events, taken: AtomicU64::new(0) }
    }

    /// Whether something changed since the last call.
    pub fn take(&self) -> bool {
        let seen = self.events.load(Ordering::Relaxed);
        self.taken.swap(seen, Ordering::Relaxed) != seen
    }
}

/// The directories under the globs' bases, each watched, and new ones watched as they appear.
struct Watch {
    inotify: Inotify,
    dirs: HashMap<WatchDescriptor, PathBuf>,
}

impl Watch {
    fn start(bases: &[PathBuf]) -> std::io::Result<Self> {
        let mut watch = Self { inotify: Inotify::init()?, dirs: HashMap::new() };
        for base in bases {
            watch.add_tree(base);
        }
        Ok(watch)
    }

    /// Watches `dir` and every directory below it. One that cannot be watched (inotify's limits) is logged; its
    /// files are still found by polling.
    fn add_tree(&mut self, dir: &Path) {
        match self.inotify.watches().add(dir, MASK) {
            Ok(wd) => {
                self.dirs.insert(wd, dir.to_path_buf());
            }
            Err(error) => {
                return tracing::warn!(dir = %dir.display(), %error, "no inotify watch; new files are found by polling")
            }
        }
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                self.add_tree(&entry.path());
            }
        }
    }

    /// Counts in `seen` every name created, removed or renamed, until `seen` has no other owner.
    fn run(mut self, seen: &Arc<AtomicU64>) {
        let mut buffer = vec![0u8; 64 << 10];
        while Arc::strong_count(seen) > 1 {
            let mut poll = libc::pollfd { fd: self.inotify.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd, for the duration of the call.
            if unsafe { libc::poll(&mut poll, 1, OWNER_CHECK_MS) } <= 0 {
                continue;
            }
            match self.read(&mut buffer) {
                Ok(count) => seen.fetch_add(count, Ordering::Relaxed),
                Err(error) => return tracing::warn!(%error, "inotify failed; new files are found by polling"),
            };
        }
    }

    /// Reads the events queued now, watches the directories they name as new, and returns how many there were.
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<u64> {
        let (mut new_dirs, mut count) = (Vec::new(), 0);
        let events = match self.inotify.read_events(buffer) {
            Ok(events) => events,
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => return Ok(0),
            Err(error) => return Err(error),
        };
        for e in events {
            count += 1;
            if e.mask.contains(EventMask::IGNORED) {
                // The directory is gone and the kernel dropped its watch.
                self.dirs.remove(&e.wd);
            } else if e.mask.contains(EventMask::ISDIR) && e.mask.intersects(EventMask::CREATE | EventMask::MOVED_TO) {
                new_dirs.extend(self.dirs.get(&e.wd).zip(e.name).map(|(dir, name)| dir.join(name)));
            }
        }
        for dir in new_dirs {
            self.add_tree(&dir);
        }
        Ok(count)
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

    fn wait_for(changes: &Changes, what: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !changes.take() {
            assert!(std::time::Instant::now() < deadline, "no inotify event for {what}");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    #[test]
    fn new_files_directories_renames_and_removals_are_noticed() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("pod")).unwrap();
        let changes = Changes::watch(&[format!("{}/*/*/*.log", tmp.path().display())]);
        assert!(!changes.take());
        std::fs::write(tmp.path().join("pod/0.log"), "x\n").unwrap();
        wait_for(&changes, "a new file");
        // A pod directory and its container directory made after the watch started: the file below them too.
        std::fs::create_dir_all(tmp.path().join("pod-2/app")).unwrap();
        wait_for(&changes, "a new directory");
        std::fs::write(tmp.path().join("pod-2/app/0.log"), "x\n").unwrap();
        wait_for(&changes, "a new file in a new directory");
        std::fs::rename(tmp.path().join("pod-2/app/0.log"), tmp.path().join("pod-2/app/0.log.1")).unwrap();
        wait_for(&changes, "a rename");
        std::fs::remove_file(tmp.path().join("pod-2/app/0.log.1")).unwrap();
        wait_for(&changes, "a removal");
    }

    /// Lines written to a file are the tailer's business, not a reason to scan. The kernel queues an event during
    /// the call that causes it, so once the writes and a marker's creation returned, everything they caused is
    /// queued: exactly one event (the marker's) may be there.
    #[test]
    fn writes_to_a_file_are_not_events() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("0.log");
        std::fs::write(&log, "").unwrap();
        let mut watch = Watch::start(&[tmp.path().to_path_buf()]).unwrap();
        let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        for _ in 0..1000 {
            std::io::Write::write_all(&mut file, b"line\n").unwrap();
        }
        std::fs::write(tmp.path().join("marker"), "").unwrap();
        let mut buffer = vec![0u8; 64 << 10];
        let mut events = 0;
        loop {
            match watch.read(&mut buffer).unwrap() {
                0 => break,
                n => events += n,
            }
        }
        assert_eq!(events, 1, "only the marker's creation");
    }
}
