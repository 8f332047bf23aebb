//! CRI log lines: `<RFC3339Nano time> <stdout|stderr> <P|F> <message>`.

use super::{looks_like_rfc3339, Chunk, ParseError, Parsed, Stream};
use std::borrow::Cow;

pub fn parse(line: &[u8]) -> Result<Parsed<'_>, ParseError> {
    let (time, rest) = split_space(line).ok_or(ParseError::CriShape)?;
    let (stream, rest) = split_space(rest).ok_or(ParseError::CriShape)?;
    let stream = match stream {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return Err(ParseError::CriShape),
    };
    // The tag field may carry more than P/F in future runtimes (`F:x`); only its first letter matters.
    let (tag, message) = match split_space(rest) {
        Some((tag, message)) => (tag, message),
        None => (rest, &b""[..]),
    };
    let chunk = match tag.first() {
        Some(b'P') => Chunk::Partial,
        Some(b'F') => Chunk::Full,
        _ => return Err(ParseError::CriShape),
    };
    if !looks_like_rfc3339(time) {
        return Err(ParseError::CriTime);
    }
    let time = std::str::from_utf8(time).map_err(|_| ParseError::CriTime)?;
    Ok(Parsed { time, stream, chunk, message: Cow::Borrowed(message) })
}

fn split_space(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = memchr::memchr(b' ', s)?;
    Some((&s[..i], &s[i + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let ok = |line: &str, stream, chunk, msg: &str| {
            let p = parse(line.as_bytes()).unwrap();
            assert_eq!((p.stream, p.chunk, &*p.message), (stream, chunk, msg.as_bytes()), "{line}");
        };
        ok("2024-01-02T03:04:05.123456789Z stdout F hello world", Stream::Stdout, Chunk::Full, "hello world");
        ok("2024-01-02T03:04:05.1+02:00 stderr P part", Stream::Stderr, Chunk::Partial, "part");
        ok("2024-01-02T03:04:05Z stdout F ", Stream::Stdout, Chunk::Full, "");
        ok("2024-01-02T03:04:05Z stdout F", Stream::Stdout, Chunk::Full, "");
        ok("2024-01-02T03:04:05Z stdout F  two  spaces ", Stream::Stdout, Chunk::Full, " two  spaces ");

        let bad = |line: &str, err| assert_eq!(parse(line.as_bytes()), Err(err), "{line}");
        bad("", ParseError::CriShape);
        bad("hello world", ParseError::CriShape);
        bad("2024-01-02T03:04:05Z stdin F x", ParseError::CriShape);
        bad("2024-01-02T03:04:05Z stdout X x", ParseError::CriShape);
        bad("yesterday stdout F x", ParseError::CriTime);
        bad("2024-01-02T03:04:05\",\"x\":\"1Z stdout F x", ParseError::CriTime);
        bad("2024-01-02T03:04:05.1\\Z stdout F x", ParseError::CriTime);
    }
}
