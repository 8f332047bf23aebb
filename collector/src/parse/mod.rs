//! Container runtime log formats. A line parses into a `Parsed` (time, stream, whether it is a partial chunk, the
//! message) or is malformed; a malformed line is never dropped: the caller ships it raw with the reason attached.

mod assemble;
mod cri;
mod docker;
mod multiline;
#[cfg(test)]
mod props;

pub use assemble::{Assembler, Record};
pub use multiline::Multiline;

pub use logpipe_config::FormatChoice;
use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Cri,
    Docker,
    Raw,
}

/// The format of a file whose first line is `first_line`.
pub fn resolve(choice: FormatChoice, first_line: &[u8]) -> Format {
    match choice {
        FormatChoice::Cri => Format::Cri,
        FormatChoice::Docker => Format::Docker,
        FormatChoice::Raw => Format::Raw,
        FormatChoice::Auto if docker::parse(first_line).is_ok() => Format::Docker,
        FormatChoice::Auto if cri::parse(first_line).is_ok() => Format::Cri,
        FormatChoice::Auto => Format::Raw,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }
}

/// Whether a line completes a message or is a chunk of a longer one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk {
    Full,
    Partial,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<'a> {
    /// The runtime's timestamp, as written (RFC 3339).
    pub time: &'a str,
    pub stream: Stream,
    pub chunk: Chunk,
    pub message: Cow<'a, [u8]>,
}

/// Why a line did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.reason())]
pub enum ParseError {
    CriShape,
    CriTime,
    DockerJson,
    DockerStream,
}

impl ParseError {
    /// The reason shipped with the raw line in `logpipe.parse_error`.
    pub fn reason(self) -> &'static str {
        match self {
            ParseError::CriShape => "cri: expected `<time> <stdout|stderr> <P|F> <message>`",
            ParseError::CriTime => "cri: the timestamp is not RFC 3339",
            ParseError::DockerJson => "docker: not a json-file log object",
            ParseError::DockerStream => "docker: stream is neither stdout nor stderr",
        }
    }
}

pub fn parse(format: Format, line: &[u8]) -> Result<Parsed<'_>, ParseError> {
    match format {
        Format::Cri => cri::parse(line),
        Format::Docker => docker::parse(line),
        Format::Raw => {
            Ok(Parsed { time: "", stream: Stream::Stdout, chunk: Chunk::Full, message: Cow::Borrowed(line) })
        }
    }
}

/// A cheap shape check of an RFC 3339 timestamp (`2024-01-02T03:04:05[.frac](Z|±hh:mm)`), enough to tell a
/// timestamp from message text; Elasticsearch parses the value. Every byte must be one a timestamp has: the value
/// is written into the document unescaped, so nothing else (a quote above all) may pass.
fn looks_like_rfc3339(t: &[u8]) -> bool {
    let digits = |r: std::ops::Range<usize>| t.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    let timestamp_byte = |b: &u8| b.is_ascii_digit() || b"TtZz:.+-".contains(b);
    t.len() >= 20
        && t.len() <= 64
        && t.iter().all(timestamp_byte)
        && digits(0..4)
        && t[4] == b'-'
        && digits(5..7)
        && t[7] == b'-'
        && digits(8..10)
        && (t[10] == b'T' || t[10] == b't')
        && digits(11..13)
        && t[13] == b':'
        && digits(14..16)
        && t[16] == b':'
        && digits(17..19)
        && matches!(t.last(), Some(b'Z' | b'z') | Some(b'0'..=b'9'))
}
