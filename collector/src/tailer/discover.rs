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
/// rename-rotated or copytruncated file's bytes are. When `path` is a symbolic link, the same next to its target too:
/// the kubelet links `/var/log/pods/.../0.log` to a Docker engine's json-file log, and the engine rotates that file
/// beside itself (`<id>-json.log` -> `<id>-json.log.1`), where no path pattern of the pods' layout finds it.
pub fn rotated_siblings(path: &Path) -> Vec<PathBuf> {
    let mut found = siblings(path);
    if let Ok(target) = std::fs::read_link(path) {
        // A relative target is relative to the link's directory; join keeps an absolute one as it is.
        let target = path.parent().map_or_else(|| target.clone(), |dir| dir.join(&target));
        found.extend(siblings(&target));
    }
    found
}

fn siblings(path: &Path) -> Vec<PathBuf> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn names(paths: &[PathBuf]) -> Vec<String> {
        paths.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn rotated_siblings_are_found_beside_the_path_and_beside_a_link_target() {
        let dir = tempfile::tempdir().unwrap();
        let pods = dir.path().join("pods");
        let engine = dir.path().join("containers/abc");
        std::fs::create_dir_all(&pods).unwrap();
        std::fs::create_dir_all(&engine).unwrap();
        for name in ["abc-json.log", "abc-json.log.1", "abc-json.log.2", "abc-json.log.3.gz", "other.log.1"] {
            std::fs::write(engine.join(name), "x\n").unwrap();
        }
        std::os::unix::fs::symlink(engine.join("abc-json.log"), pods.join("0.log")).unwrap();
        std::fs::write(pods.join("0.log.20240101-120000"), "y\n").unwrap();
        let found = rotated_siblings(&pods.join("0.log"));
        assert_eq!(names(&found), ["0.log.20240101-120000", "abc-json.log.1", "abc-json.log.2"]);

        // A relative link, and one whose target is gone: the engine's rotated files are still found.
        let relative = pods.join("1.log");
        std::os::unix::fs::symlink("../containers/abc/abc-json.log", &relative).unwrap();
        assert_eq!(names(&rotated_siblings(&relative)), ["abc-json.log.1", "abc-json.log.2"]);
        std::fs::remove_file(engine.join("abc-json.log")).unwrap();
        assert_eq!(names(&rotated_siblings(&pods.join("0.log")))[1..], ["abc-json.log.1", "abc-json.log.2"]);
    }
}
