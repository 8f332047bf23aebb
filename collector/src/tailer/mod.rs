//! The tailer: finds log files, reads them line by line from where the last run stopped, follows rotation and
//! truncation, and tells its handler what happened. It knows nothing of parsing, sinks or metrics.
//!
//! Guarantees, for a handler that checkpoints only what it has finished with:
//! - a file is identified by device, inode and a fingerprint of its first line, so a reused inode is a new file;
//! - a renamed (rotated) or deleted file stays open and is read to its end before it is released, and the new file
//!   at the same path waits until then, so one container's lines stay in order;
//! - a file truncated in place is read again from offset 0, and no byte of its new content is handed out under its
//!   old identity: every read is checked against the file's first line before its lines go out;
//! - a checkpointed file whose path moved away while the agent was down is found among its rotated siblings;
//!   one that is gone is reported as lost, never silently.

mod changes;
mod discover;
mod file;
mod fingerprint;

pub use fingerprint::{file_key, FileKey, UNKNOWN_FINGERPRINT};
pub use logpipe_config::glob_base_dir;

use changes::Changes;
use discover::{rotated_siblings, Globs};
use file::{Identity, Phase, Stopped, Watched};
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A file the tailer reads. `id` is unique for the life of the tailer and is what handlers key their state by.
/// `path` is where its lines were written: a rotated file keeps the path it had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailedFile {
    pub id: u64,
    pub key: FileKey,
    pub path: PathBuf,
}

/// How a handed-out line ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEnd {
    /// At a newline (not included in the bytes).
    Newline,
    /// Cut at the maximum line length; the line goes on in the next piece.
    Split,
    /// The last bytes of a file that was rotated away or deleted without a final newline.
    Eof,
}

/// Where to resume a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    pub key: FileKey,
    pub path: PathBuf,
    pub offset: u64,
}

#[derive(Debug)]
pub enum TailEvent<'a> {
    /// Reading starts (or resumes) at `from`.
    Opened { file: &'a TailedFile, from: u64 },
    /// The path no longer names this file; it is read to its end before release.
    Rotated { file: &'a TailedFile },
    /// The file shrank below what was read, or its first line changed (copytruncate); `file` is its new life, read
    /// from 0. With `continued`, a copy holding the old content was found and `old` goes on being read from it, from
    /// `consumed`; otherwise `old` ends at `consumed`.
    Truncated { old: &'a TailedFile, file: &'a TailedFile, consumed: u64, continued: bool },
    /// A file truncated to empty has its first line now, and so its real key (it had `UNKNOWN_FINGERPRINT`).
    Identified { file: &'a TailedFile },
    /// Read to its end after rotation or deletion; no more lines will come from it.
    Released { file: &'a TailedFile, end: u64 },
    /// A file to resume could not be found anywhere: whatever followed `offset` in it is lost.
    Vanished { resume: &'a Resume },
    /// A rotated file was emptied or overwritten in place before it was read to its end: whatever followed
    /// `lost_from` in it is lost. It is released next.
    Overwritten { file: &'a TailedFile, lost_from: u64 },
    /// An I/O error on one file; the tailer goes on with the others and retries.
    ReadError { path: &'a Path, error: &'a io::Error },
}

/// Whether a newly found file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Read,
    /// Not now; the next scan asks again.
    NotNow,
}

pub trait TailHandler {
    fn line(&mut self, file: &TailedFile, offset: u64, bytes: &[u8], end: LineEnd);
    fn event(&mut self, event: TailEvent<'_>);
    /// Asked of each file the globs find that is not read yet, unless the previous run was reading it.
    fn admit(&mut self, _path: &Path) -> Admit {
        Admit::Read
    }
    /// Asked before each file's turn in a read round: while it says so, the round ends (backpressure).
    fn paused(&self) -> bool {
        false
    }
}

#[derive(Debug, Clone)]
pub struct TailerOptions {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    /// Files found by the first scan start at their end (a first installation that should not ship old logs).
    /// Files that appear later are new and are always read from their start.
    pub start_at_end: bool,
    pub read_buffer_bytes: usize,
    pub max_read_per_file_bytes: usize,
    pub max_line_bytes: usize,
    pub fingerprint_bytes: usize,
    /// How long a rotated or deleted file is kept open at its end for late writes before release.
    pub release_after: Duration,
    /// Most files open at once; a new file beyond it waits for a later scan.
    pub max_open_files: usize,
    /// While files deleted but still open (being drained) hold more bytes than this, no new file is opened: the
    /// space they hold on the node is freed as they are read to their end.
    pub max_deleted_open_bytes: u64,
}

/// What the open files hold of the node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Held {
    pub open_files: usize,
    /// Bytes of files that are deleted but still open.
    pub deleted_open_bytes: u64,
    /// Files found that wait for a bound before they are opened, at the last scan.
    pub waiting_files: usize,
}

enum Probe {
    Open(Probed),
    /// Found, but a bound says not yet.
    Wait,
    Skip,
}

/// A file found by the globs, opened and identified.
struct Probed {
    file: File,
    key: FileKey,
    path: PathBuf,
    len: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum TailerError {
    #[error("invalid glob pattern: {0}")]
    Pattern(#[from] glob::PatternError),
}

pub struct Tailer {
    options: TailerOptions,
    globs: Globs,
    files: Vec<Watched>,
    /// Resume points not yet matched to a file (from the checkpoint of the previous run), oldest file first.
    pending_resume: Vec<Resume>,
    scratch: Vec<u8>,
    next_id: u64,
    next_turn: usize,
    changes: Changes,
    waiting_files: usize,
}

impl Tailer {
    /// `resume` lists where the previous run stopped, in the order it opened the files (see `files`): several
    /// rotated files of one path are drained oldest first.
    pub fn new(options: TailerOptions, resume: Vec<Resume>) -> Result<Self, TailerError> {
        let globs = Globs::new(&options.include, &options.exclude)?;
        let scratch = vec![0; options.read_buffer_bytes.max(options.max_line_bytes + 1)];
        let changes = Changes::watch(&options.include);
        Ok(Self {
            options,
            globs,
            files: Vec::new(),
            pending_resume: resume,
            scratch,
            next_id: 1,
            next_turn: 0,
            changes,
            waiting_files: 0,
        })
    }

    /// The files being read and how far, oldest first (by id): the order a checkpoint should keep.
    pub fn files(&self) -> Vec<(&TailedFile, u64)> {
        let mut files: Vec<_> = self.files.iter().map(|w| (&w.info, w.consumed())).collect();
        files.sort_by_key(|(f, _)| f.id);
        files
    }

    /// Per file (by the path its lines were written to), the bytes written but not yet read.
    pub fn lag(&self) -> Vec<(String, u64)> {
        let size = |w: &Watched| w.file.metadata().map_or(w.read_pos, |m| m.len());
        self.files.iter().map(|w| (w.info.path.display().to_string(), size(w).saturating_sub(w.consumed()))).collect()
    }

    /// The open files, the bytes of those deleted but still open, and the files waiting to be opened.
    pub fn held(&self) -> Held {
        Held {
            open_files: self.files.len(),
            deleted_open_bytes: self.deleted_open_bytes(),
            waiting_files: self.waiting_files,
        }
    }

    fn deleted_open_bytes(&self) -> u64 {
        let deleted = |w: &Watched| w.file.metadata().ok().filter(|m| m.nlink() == 0).map_or(0, |m| m.len());
        self.files.iter().filter(|w| matches!(w.phase, Phase::Detached { .. })).map(deleted).sum()
    }

    /// Resume points of the previous run not matched to a file yet (until the first scan): a checkpoint written
    /// before then must keep them.
    pub fn unmatched_resume(&self) -> &[Resume] {
        &self.pending_resume
    }

    /// Whether files were created, removed or renamed under the globs since the last call (inotify): a reason to
    /// scan before the next interval.
    pub fn files_changed(&self) -> bool {
        self.changes.take()
    }

    /// Looks for new, rotated, truncated and deleted files. The first scan also places the resume points.
    pub fn scan(&mut self, handler: &mut dyn TailHandler) {
        for idx in 0..self.files.len() {
            self.check(idx, handler);
        }
        let mut room = if self.deleted_open_bytes() >= self.options.max_deleted_open_bytes {
            0
        } else {
            self.options.max_open_files.saturating_sub(self.files.len())
        };
        self.waiting_files = 0;
        let mut fresh = Vec::new();
        for path in self.globs.matching() {
            match self.probe(&path, &mut room, handler) {
                Probe::Open(p) => fresh.push(p),
                Probe::Wait => self.waiting_files += 1,
                Probe::Skip => {}
            }
        }
        // Resume points no file at its path matches: renamed while the agent was down. Opened before the files
        // now at those paths, so they are drained first.
        let (at_path, moved): (Vec<Resume>, Vec<Resume>) =
            std::mem::take(&mut self.pending_resume).into_iter().partition(|r| fresh.iter().any(|f| f.key == r.key));
        for resume in moved {
            self.resume_from_sibling(resume, handler);
        }
        for f in fresh {
            let from = match at_path.iter().find(|r| r.key == f.key) {
                Some(resume) => resume.offset,
                None if self.options.start_at_end => f.len,
                None => 0,
            };
            self.open(f.file, f.key, f.path, from, Phase::Active, handler);
        }
        self.release_finished(handler);
        self.options.start_at_end = false;
    }

    /// Whether the file at `idx` was rotated, truncated or identified since the last look.
    fn check(&mut self, idx: usize, handler: &mut dyn TailHandler) {
        match check_path(&mut self.files[idx], self.options.fingerprint_bytes) {
            Change::None => {}
            Change::Rotated => {
                let w = &mut self.files[idx];
                w.phase = Phase::Detached { since: Instant::now() };
                w.at_eof = false;
                handler.event(TailEvent::Rotated { file: &w.info });
            }
            Change::Truncated { key } => self.truncated(idx, key, handler),
            Change::Identified => handler.event(TailEvent::Identified { file: &self.files[idx].info }),
        }
    }

    /// One round over the files, each reading up to its share; returns the bytes read.
    pub fn read(&mut self, handler: &mut dyn TailHandler) -> usize {
        let n = self.files.len();
        let mut total = 0;
        // Rotated files still being drained are few; files at their paths with a higher id wait for them.
        let draining: Vec<(u64, PathBuf)> = self
            .files
            .iter()
            .filter(|w| matches!(w.phase, Phase::Detached { .. }))
            .map(|w| (w.info.id, w.info.path.clone()))
            .collect();
        for i in 0..n {
            if handler.paused() {
                // The file whose turn it was goes first in the next round.
                self.next_turn = self.next_turn.wrapping_add(i);
                return total;
            }
            let idx = (self.next_turn + i) % n;
            let info = &self.files[idx].info;
            let waits = draining.iter().any(|(id, path)| *id < info.id && *path == info.path);
            if waits || self.files[idx].phase == Phase::Overwritten || !self.identify(idx, handler) {
                continue;
            }
            let w = &mut self.files[idx];
            let out = w.read(&mut self.scratch, &self.options, handler);
            total += out.bytes;
            match out.stopped {
                Stopped::Share | Stopped::EndOfFile => {}
                Stopped::Error(error) => handler.event(TailEvent::ReadError { path: &w.info.path, error: &error }),
                Stopped::Replaced => self.replaced(idx, handler),
            }
        }
        self.next_turn = self.next_turn.wrapping_add(1);
        total
    }

    /// A read found the file's first line changed: a file at its path is truncated now, before its new content is
    /// read under its old identity; a rotated one has nothing more to give.
    fn replaced(&mut self, idx: usize, handler: &mut dyn TailHandler) {
        let w = &mut self.files[idx];
        match w.phase {
            Phase::Active => self.check(idx, handler),
            Phase::Detached { .. } => {
                w.phase = Phase::Overwritten;
                handler.event(TailEvent::Overwritten { file: &w.info, lost_from: w.consumed() });
            }
            Phase::Overwritten => {}
        }
    }

    /// Whether the file's key is known, trying to learn it if not. A file emptied in place is not read before its
    /// first line gives it a key: records carry their file's key to Kafka, and a restart finds them by it.
    fn identify(&mut self, idx: usize, handler: &mut dyn TailHandler) -> bool {
        let w = &mut self.files[idx];
        if w.identity == Identity::Known {
            return true;
        }
        match file_key(&w.file, self.options.fingerprint_bytes) {
            Ok(Some(key)) => {
                w.info.key = key;
                w.identity = Identity::Known;
                handler.event(TailEvent::Identified { file: &w.info });
                true
            }
            // Renamed away before it had a first line: nothing will give it one; read what it holds and release it.
            _ => matches!(w.phase, Phase::Detached { .. }),
        }
    }

    /// A file at `path` not yet watched, with its key; `None` if it is watched, not admitted, unreadable or has no
    /// first line.
    /// Whether to open a file the globs found: not if watched, not admitted, unreadable or without a first line;
    /// later if no `room` is left (a file the previous run was reading is opened regardless: it is open already
    /// in the checkpoint's count).
    fn probe(&self, path: &Path, room: &mut usize, handler: &mut dyn TailHandler) -> Probe {
        let Ok(meta) = std::fs::metadata(path) else { return Probe::Skip };
        let watched = self.files.iter().any(|w| w.inode == (meta.dev(), meta.ino()));
        if !meta.is_file() || watched {
            return Probe::Skip;
        }
        let resuming = self.pending_resume.iter().any(|r| r.path == path);
        if !resuming && handler.admit(path) == Admit::NotNow {
            return Probe::Skip;
        }
        if !resuming {
            let Some(left) = room.checked_sub(1) else { return Probe::Wait };
            *room = left;
        }
        let Ok(file) = File::open(path) else { return Probe::Skip };
        match file_key(&file, self.options.fingerprint_bytes) {
            Ok(Some(key)) => Probe::Open(Probed { file, key, path: path.to_path_buf(), len: meta.len() }),
            _ => Probe::Skip,
        }
    }

    fn open(&mut self, file: File, key: FileKey, path: PathBuf, from: u64, phase: Phase, h: &mut dyn TailHandler) {
        let info = TailedFile { id: self.next_id, key, path };
        self.next_id += 1;
        let mut w = Watched::new(info, file, from);
        w.phase = phase;
        h.event(TailEvent::Opened { file: &w.info, from });
        self.files.push(w);
    }

    /// Finds a file renamed away from its checkpointed path among that path's rotated siblings, or reports it lost.
    fn resume_from_sibling(&mut self, resume: Resume, handler: &mut dyn TailHandler) {
        if resume.key.fingerprint == UNKNOWN_FINGERPRINT {
            // Emptied in place and never given a complete first line: nothing of it was read, nothing to resume.
            return;
        }
        // Renamed: same inode and fingerprint. Copied, then truncated: same fingerprint in a new inode.
        let found = rotated_siblings(&resume.path).into_iter().find_map(|p| {
            let file = File::open(&p).ok()?;
            let key = file_key(&file, self.options.fingerprint_bytes).ok()??;
            (key.fingerprint == resume.key.fingerprint).then_some(file)
        });
        match found {
            Some(file) => {
                // Reported under the path its lines were written to, like any rotated file.
                let detached = Phase::Detached { since: Instant::now() };
                self.open(file, resume.key, resume.path.clone(), resume.offset, detached, handler);
            }
            None => handler.event(TailEvent::Vanished { resume: &resume }),
        }
    }

    /// Copytruncate: the file was copied to a sibling and emptied. The tail we had not read yet is in the copy
    /// (same first line, so same fingerprint); read it from there, then restart the file itself at 0 under a new id.
    fn truncated(&mut self, idx: usize, key: Option<FileKey>, handler: &mut dyn TailHandler) {
        let old = self.files[idx].info.clone();
        let consumed = self.files[idx].consumed();
        let copy = rotated_siblings(&old.path).into_iter().find_map(|p| {
            let file = File::open(&p).ok()?;
            let k = file_key(&file, self.options.fingerprint_bytes).ok()??;
            (k.fingerprint == old.key.fingerprint && k.ino != old.key.ino).then_some((file, p))
        });
        let continued = copy.is_some();
        if let Some((file, _)) = copy {
            // The copy continues the old file: same id, key and path, from where reading stopped, so its records keep
            // the identity they were sent under; its lower id drains it before the file's new life.
            let mut w = Watched::new(old.clone(), file, consumed);
            w.phase = Phase::Detached { since: Instant::now() };
            self.files.push(w);
        }
        let unknown = FileKey { fingerprint: UNKNOWN_FINGERPRINT, ..old.key };
        let new_info = TailedFile { id: self.next_id, key: key.unwrap_or(unknown), path: old.path.clone() };
        self.next_id += 1;
        let w = &mut self.files[idx];
        w.rewind(new_info, key.map_or(Identity::AwaitingFirstLine, |_| Identity::Known));
        handler.event(TailEvent::Truncated { old: &old, file: &w.info, consumed, continued });
    }

    fn release_finished(&mut self, handler: &mut dyn TailHandler) {
        let release_after = self.options.release_after;
        self.files.retain(|w| {
            let done = match w.phase {
                Phase::Active => false,
                Phase::Detached { since } => since.elapsed() >= release_after && w.at_eof,
                Phase::Overwritten => true,
            };
            if done {
                if !w.carry.is_empty() {
                    handler.line(&w.info, w.consumed(), &w.carry, LineEnd::Eof);
                }
                handler.event(TailEvent::Released { file: &w.info, end: w.read_pos });
            }
            !done
        });
    }
}

/// What changed about a watched file since the last look.
enum Change {
    None,
    Rotated,
    Identified,
    /// Truncated in place; `key` is the new content's key, if its first line is complete.
    Truncated {
        key: Option<FileKey>,
    },
}

fn check_path(w: &mut Watched, fingerprint_bytes: usize) -> Change {
    if w.phase != Phase::Active {
        return Change::None;
    }
    let same = std::fs::metadata(&w.info.path).is_ok_and(|m| (m.dev(), m.ino()) == w.inode);
    if !same {
        return Change::Rotated;
    }
    let Ok(meta) = w.file.metadata() else {
        return Change::None;
    };
    let current = file_key(&w.file, fingerprint_bytes).ok().flatten();
    let shrank = meta.len() < w.read_pos;
    match (w.identity, current) {
        (Identity::AwaitingFirstLine, Some(key)) if !shrank => {
            w.info.key = key;
            w.identity = Identity::Known;
            Change::Identified
        }
        (Identity::AwaitingFirstLine, _) if !shrank => Change::None,
        // A known file had a complete first line; without one now, it was emptied, however little was read.
        (Identity::Known, None) => Change::Truncated { key: None },
        (_, key) if shrank || key.is_some_and(|k| k != w.key()) => Change::Truncated { key },
        _ => Change::None,
    }
}
