//! Per-file state of the agent and the tail handler: every line goes parse -> join partials -> encode -> sink, and
//! every record sent is tracked until acknowledged.

use super::enrich::Enricher;
use crate::checkpoint::FileTracker;
use crate::checkpoint::Span;
use crate::config::ParseConfig;
use crate::encode::{encode, file_prefix, Marks, PathMeta, PieceLimit};
use crate::parse::{self, Assembler, Format, FormatChoice, Multiline, Record, Stream};
use crate::sink::{Outgoing, Sink, SinkError, Token};
use crate::tailer::{Admit, FileKey, LineEnd, TailEvent, TailHandler, TailedFile};
use regex::bytes::Regex;
use rustc_hash::FxHashMap;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Why a file's records are still tracked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// The tailer reads it.
    Reading,
    /// Read to the end (rotated away, deleted or truncated); kept until every record is acknowledged.
    Finished { end: u64 },
}

/// What emitting a record needs of its file.
pub struct Outbox {
    pub tracker: FileTracker,
    /// Records a previous run delivered, start -> end: found again while reading, they are not sent.
    pub skip: HashMap<u64, u64>,
    prefix: Vec<u8>,
    /// The prefix with the path's metadata only, for a piece too large to carry the pod's.
    bare_prefix: Vec<u8>,
    kafka_key: Vec<u8>,
    source: String,
}

pub struct FileState {
    pub key: FileKey,
    pub path: PathBuf,
    pub lifecycle: Lifecycle,
    pub assembler: Assembler,
    multiline: Option<Multiline>,
    pub out: Outbox,
    format: Option<Format>,
    /// Set while the pieces of an over-long line are coming: the stream of its first piece.
    split: Option<Stream>,
}

/// Counters the agent reports.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    pub files_opened: u64,
    pub lines: u64,
    pub bytes: u64,
    pub parse_errors: u64,
    pub rotations: u64,
    pub truncations: u64,
    pub files_lost: u64,
}

/// Turns records into documents and hands them to the sink.
pub struct Emitter {
    pub sink: Box<dyn Sink>,
    pub in_flight_bytes: usize,
    /// RFC 3339 time of the current read round, for records whose line carried none.
    pub now: String,
    pub error: Option<SinkError>,
    pub records_sent: u64,
    /// Set when the sink's messages have a size limit: records above it are cut into pieces.
    limit: Option<PieceLimit>,
    buf: Vec<u8>,
}

pub struct Handler {
    /// Looked up for every line and every acknowledgement: a fast hash for the agent's own sequential ids.
    pub files: FxHashMap<u64, FileState>,
    pub emitter: Emitter,
    pub counters: Counters,
    /// Records delivered by a previous run, per file, until the file is opened again.
    pub unclaimed: HashMap<FileKey, HashMap<u64, u64>>,
    /// A file was opened or got its key since the last checkpoint. A restart finds a file rotated away only by the
    /// key its checkpoint entry holds, so such a change is checkpointed at once, not at the next interval.
    pub files_changed: bool,
    pub enricher: Enricher,
    /// The metadata version the prefixes of files being read were rendered from.
    rendered: u64,
    host: String,
    format: FormatChoice,
    max_joined: usize,
    multiline: Option<(Regex, Duration)>,
    /// Reading pauses while more encoded bytes than this are sent and not acknowledged.
    max_in_flight: usize,
}

impl FileState {
    /// The lowest offset of a record still being joined: a checkpoint must not pass it.
    pub fn open_start(&self) -> Option<u64> {
        let multiline = self.multiline.as_ref().and_then(Multiline::lowest_open_start);
        [self.assembler.lowest_open_start(), multiline].into_iter().flatten().min()
    }
}

impl Handler {
    /// `parse` was validated: its multiline pattern compiles.
    pub fn new(
        sink: Box<dyn Sink>,
        enricher: Enricher,
        host: String,
        parse: &ParseConfig,
        max_in_flight: usize,
    ) -> Self {
        let limit = sink.max_message_bytes().and_then(PieceLimit::new);
        let multiline = parse
            .multiline
            .as_ref()
            .and_then(|m| Some((Regex::new(&m.start).ok()?, Duration::from_millis(m.timeout_ms))));
        let emitter = Emitter {
            sink,
            in_flight_bytes: 0,
            now: String::new(),
            error: None,
            records_sent: 0,
            limit,
            buf: Vec::with_capacity(4096),
        };
        Self {
            files: FxHashMap::default(),
            emitter,
            counters: Counters::default(),
            unclaimed: HashMap::new(),
            files_changed: false,
            enricher,
            rendered: 0,
            host,
            format: parse.format,
            max_joined: parse.max_joined_bytes,
            multiline,
            max_in_flight,
        }
    }

    /// At the in-flight bound: read nothing more until acknowledgements come.
    pub fn paused(&self) -> bool {
        self.emitter.in_flight_bytes >= self.max_in_flight
    }

    pub fn source_id(host: &str, key: &FileKey) -> String {
        format!("{host}/{key}")
    }

    /// Applies metadata updates; files being read get documents rendered from the new metadata.
    pub fn refresh_metadata(&mut self) {
        if !self.enricher.refresh(self.rendered) {
            return;
        }
        for st in self.files.values_mut().filter(|st| st.lifecycle == Lifecycle::Reading) {
            st.out.prefix = self.enricher.prefix(&self.host, &st.path);
        }
        self.rendered = self.enricher.version();
    }

    /// Completes multiline records no line continued for the rule's timeout.
    pub fn flush_stale_multiline(&mut self) {
        if self.multiline.is_none() {
            return;
        }
        let now = Instant::now();
        for (&id, st) in self.files.iter_mut() {
            let FileState { multiline, out, .. } = st;
            if let Some(m) = multiline {
                m.flush_stale(now, &mut |rec| self.emitter.emit(id, out, rec, Marks::default()));
            }
        }
    }

    fn opened(&mut self, file: &TailedFile, from: u64) {
        self.counters.files_opened += 1;
        self.files_changed = true;
        let meta = PathMeta::from_path(&file.path);
        let kafka_key = match &meta {
            Some(m) => format!("{}/{}/{}", m.namespace, m.pod, m.container),
            None => file.path.display().to_string(),
        };
        let out = Outbox {
            tracker: FileTracker::new(from),
            skip: self.unclaimed.remove(&file.key).unwrap_or_default(),
            prefix: self.enricher.prefix(&self.host, &file.path),
            bare_prefix: file_prefix(&self.host, &file.path, meta.as_ref(), None),
            kafka_key: kafka_key.into_bytes(),
            source: Self::source_id(&self.host, &file.key),
        };
        let state = FileState {
            key: file.key,
            path: file.path.clone(),
            lifecycle: Lifecycle::Reading,
            assembler: Assembler::new(self.max_joined),
            multiline: self.multiline.as_ref().map(|(re, t)| Multiline::new(re.clone(), *t, self.max_joined)),
            out,
            format: None,
            split: None,
        };
        self.files.insert(file.id, state);
    }

    /// No more lines will come from `id`: emit what partial chunks it still holds and keep it until acknowledged.
    fn finished(&mut self, id: u64, end: u64) {
        let Some(st) = self.files.get_mut(&id) else {
            return;
        };
        let FileState { assembler, multiline, out, .. } = st;
        assembler.flush(end, &mut |rec| self.emitter.route(id, out, multiline, rec, Marks::default()));
        if let Some(m) = multiline {
            m.flush(&mut |rec| self.emitter.emit(id, out, rec, Marks::default()));
        }
        st.lifecycle = Lifecycle::Finished { end };
    }
}

impl TailHandler for Handler {
    fn line(&mut self, file: &TailedFile, offset: u64, bytes: &[u8], end: LineEnd) {
        if self.emitter.error.is_some() {
            return;
        }
        let Some(st) = self.files.get_mut(&file.id) else {
            return;
        };
        let line_end = offset + bytes.len() as u64 + u64::from(end == LineEnd::Newline);
        self.counters.lines += 1;
        self.counters.bytes += line_end - offset;
        let truncated = end == LineEnd::Split;
        let FileState { assembler, multiline, out, format, split, .. } = st;
        if let Some(stream) = split.take() {
            // A later piece of an over-long line: not a line of the format, shipped as it is.
            let rec =
                Record { start: offset, end: line_end, time: "".into(), stream, message: bytes.into(), capped: false };
            self.emitter.emit(file.id, out, rec, Marks { truncated: true, ..Marks::default() });
            *split = truncated.then_some(stream);
        } else {
            let format = *format.get_or_insert_with(|| parse::resolve(self.format, bytes));
            match parse::parse(format, bytes) {
                Ok(parsed) => {
                    let stream = parsed.stream;
                    let marks = Marks { truncated, ..Marks::default() };
                    let emitter = &mut self.emitter;
                    assembler
                        .push(offset, line_end, parsed, &mut |rec| emitter.route(file.id, out, multiline, rec, marks));
                    *split = truncated.then_some(stream);
                }
                Err(e) => {
                    self.counters.parse_errors += 1;
                    let rec = Record {
                        start: offset,
                        end: line_end,
                        time: "".into(),
                        stream: Stream::Stdout,
                        message: bytes.into(),
                        capped: false,
                    };
                    self.emitter.emit(
                        file.id,
                        out,
                        rec,
                        Marks { parse_error: Some(e.reason()), truncated, ..Marks::default() },
                    );
                    *split = truncated.then_some(Stream::Stdout);
                }
            }
        }
        out.tracker.consumed(line_end);
    }

    fn admit(&mut self, path: &Path) -> Admit {
        self.enricher.admit(path)
    }

    fn paused(&self) -> bool {
        Handler::paused(self)
    }

    fn event(&mut self, event: TailEvent<'_>) {
        match event {
            TailEvent::Opened { file, from } => {
                tracing::info!(path = %file.path.display(), key = %file.key, from, "reading file");
                self.opened(file, from);
            }
            TailEvent::Rotated { file } => {
                self.counters.rotations += 1;
                tracing::info!(path = %file.path.display(), "file rotated or deleted; reading it to its end");
            }
            TailEvent::Truncated { old, file, consumed, continued } => {
                self.counters.truncations += 1;
                tracing::warn!(path = %file.path.display(), consumed, continued, "file truncated in place; reading it again from 0");
                if !continued {
                    self.finished(old.id, consumed);
                }
                self.opened(file, 0);
            }
            TailEvent::Released { file, end } => self.finished(file.id, end),
            TailEvent::Identified { file } => {
                self.files_changed = true;
                if let Some(st) = self.files.get_mut(&file.id) {
                    st.key = file.key;
                    st.out.source = Self::source_id(&self.host, &file.key);
                }
            }
            TailEvent::Vanished { resume } => {
                self.counters.files_lost += 1;
                tracing::error!(path = %resume.path.display(), offset = resume.offset,
                    "a file was deleted before it was read to its end; the rest of it is lost");
            }
            TailEvent::Overwritten { file, lost_from } => {
                self.counters.files_lost += 1;
                tracing::error!(path = %file.path.display(), offset = lost_from,
                    "a rotated file was emptied or overwritten before it was read to its end; the rest of it is lost");
            }
            TailEvent::ReadError { path, error } => {
                tracing::warn!(path = %path.display(), %error, "read error; retrying")
            }
        }
    }
}

impl Emitter {
    /// A record goes through the multiline rule when there is one.
    fn route(&mut self, file: u64, out: &mut Outbox, multiline: &mut Option<Multiline>, rec: Record<'_>, marks: Marks) {
        let Some(m) = multiline else {
            return self.emit(file, out, rec, marks);
        };
        if let Some(done) = m.push(rec, |start| out.skip.get(&start).copied(), Instant::now()) {
            self.emit(file, out, done, Marks::default());
        }
    }

    /// Sends a record, in pieces when it is larger than the sink's messages. Piece `n` of a record at `start` is
    /// known by the span `(start + n, end)`: each piece has an identity for the checkpoint and the read-back after
    /// a crash, and every piece resumes at `start`, so a checkpoint never lands inside the record.
    fn emit(&mut self, file: u64, out: &mut Outbox, rec: Record<'_>, mut marks: Marks) {
        marks.capped |= rec.capped;
        match self.limit.and_then(|l| l.split(&rec.message)) {
            None => self.emit_piece(file, out, &rec, (rec.start, rec.end), &rec.message, marks),
            Some(pieces) => {
                for (n, range) in pieces.into_iter().enumerate() {
                    let marks = Marks { truncated: true, piece: Some(n as u32), ..marks };
                    let span = (rec.start + n as u64, rec.end);
                    self.emit_piece(file, out, &rec, span, &rec.message[range], marks);
                }
            }
        }
    }

    fn emit_piece(&mut self, file: u64, out: &mut Outbox, rec: &Record<'_>, span: Span, message: &[u8], marks: Marks) {
        // Empty but for the first records after a restart; checked first, as hashing costs more than the check.
        if let Some(end) = (!out.skip.is_empty()).then(|| out.skip.remove(&span.0)).flatten() {
            out.tracker.already_delivered((span.0, end), rec.start);
            return;
        }
        let time = if rec.time.is_empty() { self.now.as_str() } else { &rec.time };
        self.buf.clear();
        encode(&out.prefix, rec.start, time, rec.stream.as_str(), message, marks, &mut self.buf);
        if self.limit.is_some_and(|l| self.buf.len() > l.max_document(out.kafka_key.len(), out.source.len())) {
            self.buf.clear();
            let marks = Marks { metadata_omitted: true, ..marks };
            encode(&out.bare_prefix, rec.start, time, rec.stream.as_str(), message, marks, &mut self.buf);
        }
        let seq = out.tracker.sent_piece(span, rec.start);
        let token = Token { file, seq, bytes: self.buf.len() as u32 };
        self.in_flight_bytes += self.buf.len();
        self.records_sent += 1;
        let record = Outgoing { key: &out.kafka_key, payload: &self.buf, source: &out.source, span, token };
        if let Err(e) = self.sink.send(record) {
            self.error.get_or_insert(e);
        }
    }
}
