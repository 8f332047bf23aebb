//! JSON string escaping of log bytes. Log lines are mostly printable ASCII, so the fast path copies runs of bytes
//! that need no escape; bytes that are not valid UTF-8 become U+FFFD, as JSON needs text.

const fn needs_escape_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
}

static NEEDS_ESCAPE: [bool; 256] = needs_escape_table();

/// Appends `bytes` to `out` as a quoted JSON string.
pub fn escape_json_str(bytes: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    if bytes.is_ascii() || std::str::from_utf8(bytes).is_ok() {
        escape_valid(bytes, out);
    } else {
        escape_valid(String::from_utf8_lossy(bytes).as_bytes(), out);
    }
    out.push(b'"');
}

/// Appends the concatenation of `parts` to `out` as one quoted JSON string, without joining them first.
pub fn escape_json_str_parts(parts: &[&str], out: &mut Vec<u8>) {
    out.push(b'"');
    for part in parts {
        escape_valid(part.as_bytes(), out);
    }
    out.push(b'"');
}

fn escape_valid(bytes: &[u8], out: &mut Vec<u8>) {
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !NEEDS_ESCAPE[b as usize] {
            continue;
        }
        out.extend_from_slice(&bytes[run..i]);
        run = i + 1;
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 0xf) as usize]]);
            }
        }
    }
    out.extend_from_slice(&bytes[run..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the bytes, the output is a JSON string that decodes to their lossy UTF-8 reading.
        #[test]
        fn round_trips_through_a_json_parser(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut out = Vec::new();
            escape_json_str(&bytes, &mut out);
            let decoded: String = serde_json::from_slice(&out).unwrap();
            prop_assert_eq!(decoded, String::from_utf8_lossy(&bytes).into_owned());
        }
    }
}
