//! Finding files: include globs minus exclude globs, and rotated siblings of a file that was being read.

use std::path::{Path, PathBuf};

pub struct Globs {
    include: Vec<String>,
    exclude: Vec<glob::Pattern>,
}

impl Globs {
    pub fn new(include: &[String], exclude: &[String]) -> Result<Self, glob::PatternError> {
        let exclude = exclude.iter().map(|p| glob::Pattern::new(p)).collect::<Result<_, _>>()?;
        Ok(Self { include: include.to_vec(), exclude })
    }

    /// Paths matching now, sorted and without duplicates. Compressed files are never candidates: kubelet gzips a
    /// rotated file only after it has been renamed, and its uncompressed bytes were already read.
    pub fn matching(&self) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = self
            .include
            .iter()
            .filter_map(|p| glob::glob(p).ok())
            .flat_map(|paths| paths.filter_map(Result::ok))
            .filter(|p| !is_compressed(p) && !self.exclude.iter().any(|x| x.matches_path(p)))
            .collect();
        paths.sort();
        paths.dedup();
        paths
    }
}

pub fn is_compressed(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz" || e == "zst" || e == "bz2" || e == "xz")
}

/// Files next to `path` whose name extends it (`0.log` -> `0.log.20240101-120000`), uncompressed: where a
/// rename-rotated or copytruncated file's bytes are.
pub fn rotated_siblings(path: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let prefix = format!("{name}.");
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(&prefix)))
        .filter(|p| !is_compressed(p))
        .collect();
    found.sort();
    found
}
