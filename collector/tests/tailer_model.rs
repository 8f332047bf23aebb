//! Model-based test of the tailer: random sequences of writes, rename rotations, copytruncates, partial writes,
//! reads and restarts against a model in which every line written is handed out exactly once, and each log
//! path's lines in the order they were written.
//!
//! The guarantee holds for files the tailer has seen (scanned) at least once before they are rotated away: a
//! running agent scans every second and keeps every file it knows open, and a restarted one finds the files its
//! checkpoint names among their rotated siblings. A file created and rotated away entirely while no agent runs is
//! not read (docs/design/agent.md), so before each rotation the model lets the tailer scan a file it has not seen.

use logpipe_collector::tailer::{LineEnd, Resume, TailEvent, TailHandler, TailedFile, Tailer, TailerOptions};
use proptest::prelude::*;
use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

const PATHS: usize = 3;
const FINGERPRINT_BYTES: usize = 32;

#[derive(Debug, Clone)]
enum Op {
    /// Append `n` lines to a path; with `unterminated`, the last one without its newline for now.
    Write { path: usize, n: usize, unterminated: bool },
    /// kubelet style: rename to `<path>.<k>`, new writes go to a new file.
    Rotate { path: usize },
    /// logrotate copytruncate: copy to `<path>.<k>`, then truncate in place.
    CopyTruncate { path: usize },
    /// One scan and one read round.
    Step,
    /// A read round without a scan: the agent reads far more often than it scans, so a rotation is often met by a
    /// read first.
    Read,
    /// Drop the tailer and start a new one from what it had reported as consumed.
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..PATHS, 1..30usize, any::<bool>()).prop_map(|(path, n, unterminated)| Op::Write { path, n, unterminated }),
        1 => (0..PATHS).prop_map(|path| Op::Rotate { path }),
        1 => (0..PATHS).prop_map(|path| Op::CopyTruncate { path }),
        4 => Just(Op::Step),
        2 => Just(Op::Read),
        1 => Just(Op::Restart),
    ]
}

/// Collects lines as `(path index, sequence number)`, and what a checkpoint would hold.
#[derive(Default)]
struct Collector {
    seen: Vec<(usize, u64)>,
    consumed: HashMap<u64, (TailedFile, u64)>,
}

impl TailHandler for Collector {
    fn line(&mut self, file: &TailedFile, offset: u64, bytes: &[u8], end: LineEnd) {
        assert_eq!(end, LineEnd::Newline, "no line here is long enough to split or left unterminated at release");
        let text = std::str::from_utf8(bytes).unwrap();
        let (path, seq) = text.split_once(':').unwrap();
        self.seen.push((path.parse().unwrap(), seq.trim_end_matches('x').parse().unwrap()));
        self.consumed.insert(file.id, (file.clone(), offset + bytes.len() as u64 + 1));
    }

    fn event(&mut self, event: TailEvent<'_>) {
        match event {
            TailEvent::Opened { file, from } => {
                self.consumed.insert(file.id, (file.clone(), from));
            }
            TailEvent::Released { file, .. } => {
                self.consumed.remove(&file.id);
            }
            TailEvent::Truncated { old, file, continued, .. } => {
                if !continued {
                    self.consumed.remove(&old.id);
                }
                self.consumed.insert(file.id, (file.clone(), 0));
            }
            TailEvent::Vanished { resume } => panic!("nothing is deleted in this model, yet {resume:?} vanished"),
            TailEvent::Overwritten { file, .. } => {
                panic!("no rotated file is truncated in this model, yet {file:?} was")
            }
            TailEvent::Identified { file } => {
                self.consumed.get_mut(&file.id).unwrap().0 = file.clone();
            }
            TailEvent::Rotated { .. } | TailEvent::ReadError { .. } => {}
        }
    }
}

impl Collector {
    /// What a checkpoint holds: oldest file first.
    fn resume_points(&self) -> Vec<Resume> {
        let mut files: Vec<_> = self.consumed.values().collect();
        files.sort_by_key(|(f, _)| f.id);
        files.into_iter().map(|(f, off)| Resume { key: f.key, path: f.path.clone(), offset: *off }).collect()
    }
}

/// Where a container's log file is and how it rotates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// The kubelet's (CRI): the file is at the pods' path and is renamed beside it.
    Kubelet,
    /// A Docker engine's: the pods' path links to the engine's json-file log, which the engine renames beside itself.
    Docker,
}

struct World {
    dir: PathBuf,
    layout: Layout,
    next_seq: [u64; PATHS],
    /// A path's last line is written but its newline is not yet.
    open_line: [bool; PATHS],
    /// The path's current file appeared after the tailer's last scan.
    unseen: [bool; PATHS],
    rotations: usize,
}

impl World {
    fn new(dir: &Path, layout: Layout) -> Self {
        let world = World {
            dir: dir.to_path_buf(),
            layout,
            next_seq: [0; PATHS],
            open_line: [false; PATHS],
            unseen: [true; PATHS],
            rotations: 0,
        };
        for i in 0..PATHS {
            fs::create_dir_all(world.path(i).parent().unwrap()).unwrap();
            if layout == Layout::Docker {
                fs::create_dir_all(world.file(i).parent().unwrap()).unwrap();
                std::os::unix::fs::symlink(world.file(i), world.path(i)).unwrap();
            }
        }
        world
    }

    /// The path the tailer's pattern matches.
    fn path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("ns_pod{i}_uid/c/0.log"))
    }

    /// The file the lines are written to.
    fn file(&self, i: usize) -> PathBuf {
        match self.layout {
            Layout::Kubelet => self.path(i),
            // Deeper than the pattern reaches, as the engine's directory is outside /var/log/pods.
            Layout::Docker => self.dir.join(format!("engine/containers/c{i}/c{i}-json.log")),
        }
    }

    fn append(&self, i: usize, bytes: &[u8]) {
        let mut f = OpenOptions::new().create(true).append(true).open(self.file(i)).unwrap();
        f.write_all(bytes).unwrap();
    }

    fn write(&mut self, i: usize, n: usize, unterminated: bool) {
        // New content the tailer has not scanned: a new file, or one emptied by copytruncate.
        if fs::metadata(self.file(i)).map_or(true, |m| m.len() == 0) {
            self.unseen[i] = true;
        }
        let mut text = String::new();
        if self.open_line[i] {
            text.push('\n');
        }
        for k in 0..n {
            // Varying lengths move line ends across read-buffer boundaries.
            let pad = "x".repeat((self.next_seq[i] as usize * 7) % 50);
            text.push_str(&format!("{i}:{:08}{pad}", self.next_seq[i]));
            self.next_seq[i] += 1;
            if k + 1 < n || !unterminated {
                text.push('\n');
            }
        }
        self.open_line[i] = unterminated;
        self.append(i, text.as_bytes());
    }

    /// After a scan: a file with a complete first line (or a full fingerprint's worth) has been identified.
    fn scanned(&mut self) {
        for i in 0..PATHS {
            let head = fs::read(self.file(i)).unwrap_or_default();
            if head.len() >= FINGERPRINT_BYTES || head.contains(&b'\n') {
                self.unseen[i] = false;
            }
        }
    }

    /// Rotation happens at line boundaries, as runtimes rotate between writes.
    fn finish_line(&mut self, i: usize) {
        if std::mem::take(&mut self.open_line[i]) {
            self.append(i, b"\n");
        }
    }

    fn rotated_name(&mut self, i: usize) -> PathBuf {
        self.rotations += 1;
        PathBuf::from(format!("{}.{:04}", self.file(i).display(), self.rotations))
    }
}

fn options(dir: &Path) -> TailerOptions {
    TailerOptions {
        include: vec![format!("{}/*/*/*.log", dir.display())],
        exclude: vec![],
        start_at_end: false,
        // Small buffers so lines straddle reads.
        read_buffer_bytes: 256,
        max_read_per_file_bytes: 300,
        max_line_bytes: 128,
        fingerprint_bytes: FINGERPRINT_BYTES,
        release_after: Duration::ZERO,
        max_open_files: 64,
        max_deleted_open_bytes: u64::MAX,
    }
}

fn run(ops: Vec<Op>) {
    run_in(Layout::Kubelet, ops);
}

fn run_in(layout: Layout, ops: Vec<Op>) {
    let tmp = tempfile::tempdir().unwrap();
    let mut world = World::new(tmp.path(), layout);
    let mut collector = Collector::default();
    let mut tailer = Tailer::new(options(tmp.path()), vec![]).unwrap();
    let step = |t: &mut Tailer, c: &mut Collector| {
        t.scan(c);
        t.read(c)
    };
    for op in ops {
        match op {
            Op::Write { path, n, unterminated } => world.write(path, n, unterminated),
            Op::Rotate { path } | Op::CopyTruncate { path } => {
                world.finish_line(path);
                // The guarantee covers files the tailer has seen: let it scan one it has not.
                if world.unseen[path] {
                    tailer.scan(&mut collector);
                }
                world.unseen[path] = true;
                let (from, to) = (world.file(path), world.rotated_name(path));
                if !from.exists() {
                    continue;
                }
                // An engine only renames, and opens its next file at once.
                if matches!(op, Op::Rotate { .. }) || layout == Layout::Docker {
                    fs::rename(&from, to).unwrap();
                    if layout == Layout::Docker {
                        fs::File::create(from).unwrap();
                    }
                } else {
                    fs::copy(&from, to).unwrap();
                    OpenOptions::new().write(true).open(from).unwrap().set_len(0).unwrap();
                }
            }
            Op::Step => {
                step(&mut tailer, &mut collector);
                world.scanned();
            }
            Op::Read => {
                tailer.read(&mut collector);
            }
            Op::Restart => {
                let mut resume = tailer.unmatched_resume().to_vec();
                resume.extend(collector.resume_points());
                collector.consumed.clear();
                tailer = Tailer::new(options(tmp.path()), resume).unwrap();
            }
        }
    }
    for i in 0..PATHS {
        world.finish_line(i);
    }
    // Quiesce: scan and read until a round reads nothing and no rotated file is left to drain.
    for _ in 0..10_000 {
        let read = step(&mut tailer, &mut collector);
        if read == 0 && tailer.files().len() <= PATHS {
            step(&mut tailer, &mut collector);
            if tailer.files().len() <= PATHS && step(&mut tailer, &mut collector) == 0 {
                break;
            }
        }
    }
    for i in 0..PATHS {
        let got: Vec<u64> = collector.seen.iter().filter(|(p, _)| *p == i).map(|(_, s)| *s).collect();
        let want: Vec<u64> = (0..world.next_seq[i]).collect();
        assert_eq!(got, want, "path {i}: lines handed out vs written");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn every_line_exactly_once_in_order(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops);
    }

    #[test]
    fn every_line_exactly_once_in_order_from_docker_json_logs(ops in proptest::collection::vec(op(), 1..60)) {
        run_in(Layout::Docker, ops);
    }
}

/// Seen on a real node: the agent restarted while the engine rotated a log it had half read. The rest of that file
/// is beside the link's target, not the link.
#[test]
fn docker_rotation_while_stopped_resumes_beside_the_link_target() {
    use Op::*;
    run_in(
        Layout::Docker,
        vec![
            Write { path: 0, n: 5, unterminated: false },
            Step,
            Write { path: 0, n: 5, unterminated: false },
            Restart,
            Rotate { path: 0 },
            Write { path: 0, n: 3, unterminated: false },
        ],
    );
}

#[test]
fn copytruncate_while_stopped_resumes_in_the_copy() {
    use Op::*;
    run(vec![
        Write { path: 0, n: 5, unterminated: false },
        Step,
        Write { path: 0, n: 5, unterminated: false },
        Restart,
        CopyTruncate { path: 0 },
        Write { path: 0, n: 3, unterminated: false },
    ]);
}

#[test]
fn copytruncate_of_a_file_seen_but_never_read() {
    use Op::*;
    run(vec![
        Step,
        Write { path: 0, n: 1, unterminated: false },
        Write { path: 2, n: 1, unterminated: false },
        CopyTruncate { path: 2 },
    ]);
}

#[test]
fn copytruncate_again_after_a_restart() {
    use Op::*;
    run(vec![
        Write { path: 1, n: 1, unterminated: false },
        Step,
        Restart,
        CopyTruncate { path: 1 },
        Step,
        Write { path: 1, n: 1, unterminated: false },
        CopyTruncate { path: 1 },
    ]);
}

/// Emptied and written again past the old read position before any scan: the first read meets the new content.
#[test]
fn copytruncate_rewritten_before_the_next_scan() {
    use Op::*;
    run(vec![
        Write { path: 0, n: 2, unterminated: false },
        Step,
        Restart,
        Step,
        Write { path: 0, n: 1, unterminated: false },
        CopyTruncate { path: 0 },
        Write { path: 0, n: 6, unterminated: false },
        Read,
    ]);
}

/// `start_at_end` skips what was there at the first scan, never what appears later.
#[test]
fn start_at_end_applies_to_the_first_scan_only() {
    let tmp = tempfile::tempdir().unwrap();
    let mut world = World::new(tmp.path(), Layout::Kubelet);
    world.write(0, 5, false);
    let mut collector = Collector::default();
    let mut tailer = Tailer::new(TailerOptions { start_at_end: true, ..options(tmp.path()) }, vec![]).unwrap();
    tailer.scan(&mut collector);
    world.write(0, 2, false);
    world.write(1, 3, false);
    for _ in 0..3 {
        tailer.scan(&mut collector);
        tailer.read(&mut collector);
    }
    collector.seen.sort();
    assert_eq!(collector.seen, vec![(0, 5), (0, 6), (1, 0), (1, 1), (1, 2)]);
}

/// At `max_open_files`, a new file waits: it is opened, and read from its first line, once a rotated file is read
/// to its end and released.
#[test]
fn a_file_beyond_the_open_file_bound_waits_and_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let mut world = World::new(tmp.path(), Layout::Kubelet);
    world.write(0, 3, false);
    world.write(1, 3, false);
    let mut collector = Collector::default();
    let mut tailer = Tailer::new(TailerOptions { max_open_files: 2, ..options(tmp.path()) }, vec![]).unwrap();
    tailer.scan(&mut collector);
    world.write(2, 4, false);
    tailer.scan(&mut collector);
    tailer.read(&mut collector);
    assert_eq!((tailer.held().open_files, tailer.held().waiting_files), (2, 1));
    let rotated = world.rotated_name(0);
    fs::rename(world.path(0), rotated).unwrap();
    for _ in 0..4 {
        tailer.scan(&mut collector);
        tailer.read(&mut collector);
    }
    assert_eq!(tailer.held().waiting_files, 0);
    collector.seen.sort();
    let want: Vec<(usize, u64)> =
        [(0, 3), (1, 3), (2, 4)].iter().flat_map(|&(p, n)| (0..n).map(move |s| (p, s))).collect();
    assert_eq!(collector.seen, want);
}

/// While a reader says it is paused, a read round hands out nothing, and the file whose turn it was reads first.
#[test]
fn a_paused_handler_stops_the_round() {
    struct Paused(Collector, bool);
    impl TailHandler for Paused {
        fn line(&mut self, file: &TailedFile, offset: u64, bytes: &[u8], end: LineEnd) {
            self.0.line(file, offset, bytes, end)
        }
        fn event(&mut self, event: TailEvent<'_>) {
            self.0.event(event)
        }
        fn paused(&self) -> bool {
            self.1
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut world = World::new(tmp.path(), Layout::Kubelet);
    world.write(0, 3, false);
    world.write(1, 3, false);
    let mut handler = Paused(Collector::default(), true);
    let mut tailer = Tailer::new(options(tmp.path()), vec![]).unwrap();
    tailer.scan(&mut handler);
    assert_eq!(tailer.read(&mut handler), 0);
    assert!(handler.0.seen.is_empty());
    handler.1 = false;
    tailer.read(&mut handler);
    assert_eq!(handler.0.seen.len(), 6);
}
