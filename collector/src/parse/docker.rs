//! Docker json-file lines: `{"log":"...\n","stream":"stdout","time":"..."}`. A `log` without a trailing newline is
//! a chunk of a longer line (docker splits at 16 KiB).

use super::{Chunk, ParseError, Parsed, Stream};
use serde::Deserialize;
use std::borrow::Cow;

#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    log: Cow<'a, str>,
    #[serde(borrow)]
    stream: Cow<'a, str>,
    time: &'a str,
}

pub fn parse(line: &[u8]) -> Result<Parsed<'_>, ParseError> {
    if line.first() != Some(&b'{') {
        return Err(ParseError::DockerJson);
    }
    let parsed: Line<'_> = serde_json::from_slice(line).map_err(|_| ParseError::DockerJson)?;
    let stream = match &*parsed.stream {
        "stdout" => Stream::Stdout,
        "stderr" => Stream::Stderr,
        _ => return Err(ParseError::DockerStream),
    };
    let (chunk, message) = match parsed.log {
        Cow::Borrowed(s) => match s.strip_suffix('\n') {
            Some(m) => (Chunk::Full, Cow::Borrowed(m.as_bytes())),
            None => (Chunk::Partial, Cow::Borrowed(s.as_bytes())),
        },
        Cow::Owned(mut s) => {
            let chunk = if s.ends_with('\n') {
                s.pop();
                Chunk::Full
            } else {
                Chunk::Partial
            };
            (chunk, Cow::Owned(s.into_bytes()))
        }
    };
    Ok(Parsed { time: parsed.time, stream, chunk, message })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let p = parse(br#"{"log":"hello\n","stream":"stdout","time":"2024-01-02T03:04:05.1Z"}"#).unwrap();
        assert_eq!(
            (p.stream, p.chunk, &*p.message, p.time),
            (Stream::Stdout, Chunk::Full, &b"hello"[..], "2024-01-02T03:04:05.1Z")
        );
        let p = parse(br#"{"log":"a \"q\"\tb","stream":"stderr","time":"t"}"#).unwrap();
        assert_eq!((p.stream, p.chunk, &*p.message), (Stream::Stderr, Chunk::Partial, &b"a \"q\"\tb"[..]));
        assert_eq!(parse(b"not json"), Err(ParseError::DockerJson));
        assert_eq!(parse(br#"{"log":"x"}"#), Err(ParseError::DockerJson));
        assert_eq!(parse(br#"{"log":"x\n","stream":"other","time":"t"}"#), Err(ParseError::DockerStream));
    }
}
