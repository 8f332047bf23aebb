//! A file's identity: device, inode and a hash of its first line (at most `len` bytes). Inode numbers alone are
//! reused after deletion, which makes other shippers skip or re-read files; the first bytes of a log file carry a
//! timestamp and do not repeat.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct FileKey {
    pub dev: u64,
    pub ino: u64,
    pub fingerprint: u64,
}

impl std::fmt::Display for FileKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:x}-{:x}-{:016x}", self.dev, self.ino, self.fingerprint)
    }
}

impl std::str::FromStr for FileKey {
    type Err = ();

    /// Reads the `Display` form back.
    fn from_str(s: &str) -> Result<Self, ()> {
        let mut parts = s.splitn(3, '-').map(|p| u64::from_str_radix(p, 16).map_err(|_| ()));
        let (dev, ino, fingerprint) = (parts.next().ok_or(())??, parts.next().ok_or(())??, parts.next().ok_or(())??);
        Ok(Self { dev, ino, fingerprint })
    }
}

/// The key of an open file, or `None` while its first line is still shorter than `len` and unterminated (the
/// fingerprint would change as it grows; such a file holds no complete line to read yet).
pub fn file_key(file: &File, len: usize) -> io::Result<Option<FileKey>> {
    let meta = file.metadata()?;
    Ok(fingerprint(file, len)?.map(|fingerprint| FileKey { dev: meta.dev(), ino: meta.ino(), fingerprint }))
}

/// The hash of the file's first line (at most `len` bytes), or `None` while that line is incomplete.
pub fn fingerprint(file: &File, len: usize) -> io::Result<Option<u64>> {
    let mut head = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        match file.read_at(&mut head[filled..], filled as u64)? {
            0 => break,
            n => filled += n,
        }
    }
    let head = &head[..filled];
    let stable = match memchr::memchr(b'\n', head) {
        Some(nl) => &head[..=nl],
        None if filled == len => head,
        None => return Ok(None),
    };
    Ok(Some(fnv1a(stable)))
}

/// The fingerprint of a file emptied in place whose first line is not complete yet: the hash of no bytes, which
/// no content hashes to, so it never matches a rotated copy or a checkpoint of real content.
pub const UNKNOWN_FINGERPRINT: u64 = fnv1a(b"");

const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut i = 0;
    while i < bytes.len() {
        h = (h ^ bytes[i] as u64).wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn key_of(content: &[u8], len: usize) -> Option<FileKey> {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(content).unwrap();
        file_key(&f, len).unwrap()
    }

    #[test]
    fn display_round_trips() {
        let k = FileKey { dev: 0x803, ino: 77, fingerprint: u64::MAX };
        assert_eq!(k.to_string().parse::<FileKey>(), Ok(k));
        assert_eq!("zz".parse::<FileKey>(), Err(()));
    }

    #[test]
    fn waits_for_a_complete_first_line() {
        assert_eq!(key_of(b"", 16), None);
        assert_eq!(key_of(b"short", 16), None);
        assert!(key_of(b"short\n", 16).is_some());
        assert!(key_of(b"0123456789abcdefXYZ", 16).is_some());
    }

    #[test]
    fn stable_as_the_file_grows_and_different_for_other_content() {
        let a = key_of(b"first line\n", 64).unwrap().fingerprint;
        let b = key_of(b"first line\nsecond line\n", 64).unwrap().fingerprint;
        let c = key_of(b"other line\n", 64).unwrap().fingerprint;
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
