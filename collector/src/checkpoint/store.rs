//! The checkpoint file: written to a temporary file, fsynced, renamed over the old one, and the directory fsynced,
//! so a crash at any moment leaves either the old or the new checkpoint, never a torn one.
//!
//! The file says which format it is in (`"version"`). A file without one was written before the field existed, in
//! what is now version 1. A version newer than this agent knows (after a downgrade) stops the agent with a clear
//! error: guessing at a format it does not know could skip lines or send them twice.

use super::Checkpoint;
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

const FILE_NAME: &str = "checkpoints.json";
/// The format this agent writes and the newest it reads.
pub const VERSION: u32 = 1;

/// The file as written: the version beside the checkpoint's own fields.
#[derive(Serialize)]
struct Versioned<'a> {
    version: u32,
    #[serde(flatten)]
    checkpoint: &'a Checkpoint,
}

#[derive(Deserialize)]
struct Version {
    #[serde(default = "unversioned")]
    version: u32,
}

fn unversioned() -> u32 {
    1
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create state directory {path}: {source}")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("cannot read checkpoint {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("checkpoint {path} is not valid ({source}); refusing to guess where to resume")]
    Corrupt { path: PathBuf, source: serde_json::Error },
    #[error("cannot write checkpoint {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot move the unreadable checkpoint {path} aside: {source}")]
    SetAside { path: PathBuf, source: io::Error },
    #[error(
        "checkpoint {path} is in format version {found}, newer than the {VERSION} this agent reads (was the agent \
         downgraded?); run the release that wrote it, or move the file aside to read every file again"
    )]
    Newer { path: PathBuf, found: u32 },
}

/// What a start finds in the state directory.
#[derive(Debug, PartialEq, Eq)]
pub enum Loaded {
    /// No checkpoint: the agent's first start on this node.
    First,
    Restored(Checkpoint),
    /// The checkpoint could not be read and was moved to `moved_to`; every file is read from its start.
    SetAside {
        moved_to: PathBuf,
        reason: String,
    },
}

/// What carrying a checkpoint over from an earlier state directory found.
#[derive(Debug, PartialEq, Eq)]
pub enum Carried {
    /// This directory has a checkpoint already, or the earlier one has none: nothing to carry.
    Nothing,
    /// The earlier checkpoint, at this path, is now this directory's.
    Copied(PathBuf),
    /// The earlier checkpoint could not be read; it is left where it is.
    Unreadable { path: PathBuf, reason: String },
}

pub struct CheckpointStore {
    dir: PathBuf,
}

impl CheckpointStore {
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir { path: dir.into(), source })?;
        Ok(Self { dir: dir.into() })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// The last checkpoint written, or `None` on a first start.
    pub fn load(&self) -> Result<Option<Checkpoint>, StoreError> {
        let path = self.path();
        match fs::read(&path) {
            Ok(bytes) => {
                let corrupt = |source| StoreError::Corrupt { path: path.clone(), source };
                let Version { version } = serde_json::from_slice(&bytes).map_err(corrupt)?;
                if version > VERSION {
                    return Err(StoreError::Newer { path, found: version });
                }
                serde_json::from_slice(&bytes).map(Some).map_err(corrupt)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Read { path, source }),
        }
    }

    /// Like `load`, but an unreadable checkpoint is moved aside instead of stopping the agent for good: reading
    /// every file again from its start duplicates lines, which can be cleaned up; an agent that never starts
    /// loses all of them.
    pub fn load_or_set_aside(&self) -> Result<Loaded, StoreError> {
        match self.load() {
            Ok(Some(checkpoint)) => Ok(Loaded::Restored(checkpoint)),
            Ok(None) => Ok(Loaded::First),
            Err(StoreError::Corrupt { path, source }) => {
                let stamp =
                    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
                let moved_to = self.dir.join(format!("{FILE_NAME}.corrupt-{stamp}"));
                fs::rename(&path, &moved_to).map_err(|source| StoreError::SetAside { path, source })?;
                Ok(Loaded::SetAside { moved_to, reason: source.to_string() })
            }
            Err(e) => Err(e),
        }
    }

    /// Makes the checkpoint of `earlier` (a state directory an earlier release used) this directory's, when this
    /// one has none. `save` is atomic, so a crash leaves either no checkpoint here (and the carry is done again)
    /// or the whole one. `earlier` is only read: it may be a read-only mount.
    pub fn carry_over(&self, earlier: &Path) -> Result<Carried, StoreError> {
        let own = self.path();
        if own.try_exists().map_err(|source| StoreError::Read { path: own, source })? {
            return Ok(Carried::Nothing); // its own, even if unreadable: load_or_set_aside decides
        }
        let earlier = CheckpointStore { dir: earlier.into() };
        match earlier.load() {
            Ok(Some(checkpoint)) => {
                self.save(&checkpoint)?;
                Ok(Carried::Copied(earlier.path()))
            }
            Ok(None) => Ok(Carried::Nothing),
            Err(StoreError::Corrupt { path, source }) => Ok(Carried::Unreadable { path, reason: source.to_string() }),
            Err(e) => Err(e),
        }
    }

    pub fn save(&self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        let path = self.path();
        let write = || -> io::Result<()> {
            let tmp = self.dir.join(format!("{FILE_NAME}.tmp"));
            let mut f = File::create(&tmp)?;
            let versioned = Versioned { version: VERSION, checkpoint };
            f.write_all(&serde_json::to_vec(&versioned).map_err(io::Error::other)?)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            File::open(&self.dir)?.sync_all()
        };
        write().map_err(|source| StoreError::Write { path: path.clone(), source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{Delivered, FileCheckpoint};
    use crate::tailer::FileKey;

    #[test]
    fn saves_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::open(&dir.path().join("state")).unwrap();
        assert_eq!(store.load().unwrap(), None);
        let cp = Checkpoint {
            files: vec![FileCheckpoint {
                key: FileKey { dev: 1, ino: 2, fingerprint: 3 },
                path: "/x.log".into(),
                offset: 10,
                acked_beyond: vec![(12, 20)],
                released_at: None,
            }],
            kafka_scan_from: [(0, 5)].into(),
            delivered: vec![Delivered {
                key: FileKey { dev: 1, ino: 9, fingerprint: 9 },
                records: vec![(0, 7), (7, 9)],
            }],
        };
        store.save(&cp).unwrap();
        store.save(&cp).unwrap();
        assert_eq!(store.load().unwrap(), Some(cp));
    }

    #[test]
    fn versions() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::open(dir.path()).unwrap();
        store.save(&Checkpoint::default()).unwrap();
        let written: serde_json::Value = serde_json::from_slice(&fs::read(store.path()).unwrap()).unwrap();
        assert_eq!(written["version"], VERSION);
        let legacy = br#"{"files":[{"key":{"dev":1,"ino":2,"fingerprint":3},"path":"/x.log","offset":10}],"kafka_scan_from":{"0":5}}"#;
        fs::write(store.path(), legacy).unwrap();
        let loaded = store.load().unwrap().unwrap();
        assert_eq!((loaded.files[0].offset, loaded.kafka_scan_from[&0]), (10, 5), "a file without a version is v1");
        fs::write(store.path(), br#"{"version":2,"files":[]}"#).unwrap();
        assert!(matches!(store.load(), Err(StoreError::Newer { found: 2, .. })));
        assert!(matches!(store.load_or_set_aside(), Err(StoreError::Newer { .. })), "not set aside: not corrupt");
        assert!(store.path().exists());
    }

    #[test]
    fn a_corrupt_checkpoint_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::open(dir.path()).unwrap();
        fs::write(store.path(), b"{not json").unwrap();
        assert!(matches!(store.load(), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn an_earlier_checkpoint_is_carried_over_once_and_left_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let (earlier, now) = (dir.path().join("earlier"), dir.path().join("now"));
        let old = CheckpointStore::open(&earlier).unwrap();
        let store = CheckpointStore::open(&now).unwrap();
        assert_eq!(store.carry_over(&dir.path().join("missing")).unwrap(), Carried::Nothing);
        assert_eq!(store.carry_over(&earlier).unwrap(), Carried::Nothing, "the earlier directory is empty");
        let cp = Checkpoint { kafka_scan_from: [(0, 42)].into(), ..Checkpoint::default() };
        old.save(&cp).unwrap();
        assert_eq!(store.carry_over(&earlier).unwrap(), Carried::Copied(old.path()));
        assert_eq!(store.load().unwrap(), Some(cp.clone()));
        assert_eq!(old.load().unwrap(), Some(cp), "left where it was");

        // Once this directory has its own, the earlier one is never read again, even when it changes.
        let newer = Checkpoint { kafka_scan_from: [(0, 99)].into(), ..Checkpoint::default() };
        store.save(&newer).unwrap();
        old.save(&Checkpoint::default()).unwrap();
        assert_eq!(store.carry_over(&earlier).unwrap(), Carried::Nothing);
        assert_eq!(store.load().unwrap(), Some(newer));
    }

    #[test]
    fn an_unreadable_earlier_checkpoint_is_reported_not_carried() {
        let dir = tempfile::tempdir().unwrap();
        let earlier = CheckpointStore::open(&dir.path().join("earlier")).unwrap();
        fs::write(earlier.path(), b"{not json").unwrap();
        let store = CheckpointStore::open(&dir.path().join("now")).unwrap();
        let carried = store.carry_over(&dir.path().join("earlier")).unwrap();
        assert!(matches!(carried, Carried::Unreadable { ref path, .. } if *path == earlier.path()), "{carried:?}");
        assert_eq!(store.load().unwrap(), None);
        fs::write(earlier.path(), br#"{"version":9}"#).unwrap();
        assert!(matches!(store.carry_over(&dir.path().join("earlier")), Err(StoreError::Newer { .. })));
    }

    #[test]
    fn a_corrupt_checkpoint_is_set_aside_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::open(dir.path()).unwrap();
        fs::write(store.path(), b"{not json").unwrap();
        let Loaded::SetAside { moved_to, .. } = store.load_or_set_aside().unwrap() else { panic!("not set aside") };
        assert_eq!(fs::read(&moved_to).unwrap(), b"{not json");
        assert!(!store.path().exists());
        assert_eq!(store.load_or_set_aside().unwrap(), Loaded::First);
    }
}
