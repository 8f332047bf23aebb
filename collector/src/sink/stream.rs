//! Sinks that write newline-delimited JSON to a stream (stdout or a file), and one that discards.

use super::{Ack, Outgoing, Sink, SinkError, Token};
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::Duration;

/// Writes records as lines and acknowledges them once flushed (and, for a file, fsynced).
pub struct WriterSink<W: Write + Send> {
    out: BufWriter<W>,
    what: String,
    sync: fn(&mut W) -> io::Result<()>,
    unacked: Vec<Token>,
}

impl WriterSink<io::Stdout> {
    pub fn stdout() -> Self {
        Self {
            out: BufWriter::with_capacity(1 << 16, io::stdout()),
            what: "stdout".into(),
            sync: |_| Ok(()),
            unacked: Vec::new(),
        }
    }
}

impl WriterSink<File> {
    pub fn file(path: &Path) -> Result<Self, SinkError> {
        let what = path.display().to_string();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| SinkError::Write { what: what.clone(), source })?;
        Ok(Self { out: BufWriter::with_capacity(1 << 16, file), what, sync: |f| f.sync_data(), unacked: Vec::new() })
    }
}

impl<W: Write + Send> Sink for WriterSink<W> {
    fn send(&mut self, record: Outgoing<'_>) -> Result<(), SinkError> {
        let write = |out: &mut BufWriter<W>| {
            out.write_all(record.payload)?;
            out.write_all(b"\n")
        };
        write(&mut self.out).map_err(|source| SinkError::Write { what: self.what.clone(), source })?;
        self.unacked.push(record.token);
        Ok(())
    }

    fn poll(&mut self, wait: Duration, acks: &mut Vec<Ack>) -> Result<(), SinkError> {
        if self.unacked.is_empty() {
            std::thread::sleep(wait);
            return Ok(());
        }
        let flush = |out: &mut BufWriter<W>, sync: fn(&mut W) -> io::Result<()>| {
            out.flush()?;
            sync(out.get_mut())
        };
        flush(&mut self.out, self.sync).map_err(|source| SinkError::Write { what: self.what.clone(), source })?;
        acks.extend(self.unacked.drain(..).map(|token| Ack { token, position: None }));
        Ok(())
    }
}

/// Acknowledges every record at once; measures the agent without a destination.
#[derive(Default)]
pub struct NullSink {
    unacked: Vec<Token>,
}

impl Sink for NullSink {
    fn send(&mut self, record: Outgoing<'_>) -> Result<(), SinkError> {
        self.unacked.push(record.token);
        Ok(())
    }

    fn poll(&mut self, wait: Duration, acks: &mut Vec<Ack>) -> Result<(), SinkError> {
        if self.unacked.is_empty() {
            std::thread::sleep(wait);
        }
        acks.extend(self.unacked.drain(..).map(|token| Ack { token, position: None }));
        Ok(())
    }
}
