//! One file being read: its position, the bytes of an incomplete last line, and line splitting.

use super::fingerprint::fingerprint;
use super::{FileKey, LineEnd, TailHandler, TailedFile, TailerOptions};
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// The path still names this file.
    Active,
    /// Renamed or deleted: read to the end, then released once no writer can still be appending.
    Detached { since: Instant },
    /// Detached, then emptied or overwritten in place before it was read to its end: nothing more can be read.
    Overwritten,
}

/// Whether the key's fingerprint is the file's: after truncation to empty, it is not known until the first line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Identity {
    Known,
    AwaitingFirstLine,
}

pub(super) struct Watched {
    pub info: TailedFile,
    pub file: File,
    /// Device and inode of `file` itself. The key may name another inode: a copy made by copytruncate is read
    /// under the key of the file it was copied from.
    pub inode: (u64, u64),
    /// Next byte to read from the file.
    pub read_pos: u64,
    /// An incomplete last line: the bytes before `read_pos` not yet handed out.
    pub carry: Vec<u8>,
    pub phase: Phase,
    pub identity: Identity,
    pub at_eof: bool,
}

/// Why a read of one file stopped.
pub(super) enum Stopped {
    /// It read its share; there may be more.
    Share,
    EndOfFile,
    /// The file no longer starts with the first line it is read under: it was truncated (and maybe written again)
    /// since the last look. The bytes just read belong to its new content and were not handed out.
    Replaced,
    Error(io::Error),
}

/// What a read of one file produced.
pub(super) struct ReadOutcome {
    pub bytes: usize,
    pub stopped: Stopped,
}

impl Watched {
    pub fn new(info: TailedFile, file: File, from: u64) -> Self {
        let inode = file.metadata().map(|m| (m.dev(), m.ino())).unwrap_or((info.key.dev, info.key.ino));
        Self {
            info,
            file,
            inode,
            read_pos: from,
            carry: Vec::new(),
            phase: Phase::Active,
            identity: Identity::Known,
            at_eof: false,
        }
    }

    /// Offset of the first byte not yet handed out as (part of) a line.
    pub fn consumed(&self) -> u64 {
        self.read_pos - self.carry.len() as u64
    }

    pub fn key(&self) -> FileKey {
        self.info.key
    }

    /// Restarts at offset 0, as a new file, after the file was truncated in place.
    pub fn rewind(&mut self, info: TailedFile, identity: Identity) {
        self.read_pos = 0;
        self.carry.clear();
        self.info = info;
        self.identity = identity;
        self.at_eof = false;
    }

    /// Reads at most the per-file share using `scratch`, handing complete lines to `emit`. Lines longer than the
    /// maximum are handed out in pieces marked `LineEnd::Split`.
    pub fn read(&mut self, scratch: &mut [u8], options: &TailerOptions, emit: &mut dyn TailHandler) -> ReadOutcome {
        let limit = options.max_read_per_file_bytes;
        let mut total = 0;
        while total < limit {
            let carried = self.carry.len();
            scratch[..carried].copy_from_slice(&self.carry);
            let room = (scratch.len() - carried).min(limit - total).max(1);
            let n = match self.file.read_at(&mut scratch[carried..carried + room], self.read_pos) {
                Ok(0) => {
                    self.at_eof = true;
                    return ReadOutcome { bytes: total, stopped: Stopped::EndOfFile };
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return ReadOutcome { bytes: total, stopped: Stopped::Error(e) },
            };
            // Checked after the read: if the first line is still ours now, no truncation came before the read.
            match self.still_ours(options.fingerprint_bytes) {
                Ok(true) => {}
                Ok(false) => return ReadOutcome { bytes: total, stopped: Stopped::Replaced },
                Err(e) => return ReadOutcome { bytes: total, stopped: Stopped::Error(e) },
            }
            self.at_eof = false;
            let base = self.read_pos - carried as u64;
            self.read_pos += n as u64;
            total += n;
            let rest = split_lines(&scratch[..carried + n], base, options.max_line_bytes, &self.info, emit);
            self.carry.clear();
            self.carry.extend_from_slice(&scratch[carried + n - rest..carried + n]);
        }
        ReadOutcome { bytes: total, stopped: Stopped::Share }
    }

    /// Whether the file still starts with the line its key was taken from. A file renamed away before it had a
    /// first line has no fingerprint to compare; nothing can be checked for it.
    fn still_ours(&self, fingerprint_bytes: usize) -> io::Result<bool> {
        if self.identity != Identity::Known {
            return Ok(true);
        }
        Ok(fingerprint(&self.file, fingerprint_bytes)? == Some(self.info.key.fingerprint))
    }
}

/// Hands out every complete line of `data` (which starts at file offset `base`) and pieces of over-long lines;
/// returns the length of the incomplete tail left over.
fn split_lines(data: &[u8], base: u64, max_line: usize, info: &TailedFile, emit: &mut dyn TailHandler) -> usize {
    let mut start = 0;
    for nl in memchr::memchr_iter(b'\n', data) {
        start = emit_long(data, start, nl, base, max_line, info, emit);
        emit.line(info, base + start as u64, &data[start..nl], LineEnd::Newline);
        start = nl + 1;
    }
    let tail_start = if data.len() - start >= max_line {
        // Only whole pieces go out; the remainder waits for more bytes or its newline.
        let whole = (data.len() - start) / max_line * max_line;
        emit_long(data, start, start + whole, base, max_line, info, emit)
    } else {
        start
    };
    data.len() - tail_start
}

/// Emits `max_line` pieces from `data[start..end]` while more than `max_line` bytes remain (or exactly the whole
/// range when `end` is not a newline); returns where the unemitted rest starts.
fn emit_long(
    data: &[u8],
    mut start: usize,
    end: usize,
    base: u64,
    max_line: usize,
    info: &TailedFile,
    emit: &mut dyn TailHandler,
) -> usize {
    let ends_in_newline = data.get(end) == Some(&b'\n');
    while end - start > max_line || (!ends_in_newline && end - start == max_line) {
        emit.line(info, base + start as u64, &data[start..start + max_line], LineEnd::Split);
        start += max_line;
    }
    start
}
