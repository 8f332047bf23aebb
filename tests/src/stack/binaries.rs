//! The operator and collector binaries a stack runs, as cargo built them: found next to the running executable,
//! and refused when older than their sources, so a test never exercises yesterday's build.

use super::StackError;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub struct Binaries {
    pub operator: PathBuf,
    pub collector: PathBuf,
}

impl Binaries {
    /// The binaries in `dir` (cargo's `target/<profile>`), checked against the sources under `workspace`.
    pub fn in_dir(dir: &Path, workspace: &Path) -> Result<Binaries, StackError> {
        Ok(Binaries {
            operator: fresh(&dir.join("logpipe-operator"), &workspace.join("operator/src"))?,
            collector: fresh(&dir.join("logpipe-collector"), &workspace.join("collector/src"))?,
        })
    }
}

fn fresh(binary: &Path, sources: &Path) -> Result<PathBuf, StackError> {
    let hint = "build it: cargo build -p logpipe-operator -p logpipe-collector (cargo test --workspace does)";
    let built =
        modified(binary).map_err(|e| StackError::Binary { path: binary.into(), reason: format!("{e}; {hint}") })?;
    let newest = newest_source(sources)?;
    if built < newest {
        let reason = format!("older than the sources in {}; {hint}", sources.display());
        return Err(StackError::Binary { path: binary.into(), reason });
    }
    Ok(binary.to_path_buf())
}

fn modified(path: &Path) -> std::io::Result<SystemTime> {
    std::fs::metadata(path)?.modified()
}

fn newest_source(dir: &Path) -> Result<SystemTime, StackError> {
    let mut newest = SystemTime::UNIX_EPOCH;
    let entries = std::fs::read_dir(dir).map_err(|e| StackError::io(dir, e))?;
    for entry in entries {
        let path = entry.map_err(|e| StackError::io(dir, e))?.path();
        let time = if path.is_dir() {
            newest_source(&path)?
        } else {
            modified(&path).map_err(|e| StackError::io(&path, e))?
        };
        newest = newest.max(time);
    }
    Ok(newest)
}
