//! Paths the configuration names.

use std::path::{Component, Path, PathBuf};

/// The leading components of a glob pattern that hold no glob syntax: the directory every match lies under.
pub fn glob_base_dir(pattern: &Path) -> PathBuf {
    let mut base = PathBuf::new();
    for c in pattern.components() {
        let literal = match c {
            Component::Normal(s) => !s.to_string_lossy().contains(['*', '?', '[', '{']),
            _ => true,
        };
        if !literal {
            return base;
        }
        base.push(c);
    }
    base.parent().map(Path::to_path_buf).unwrap_or(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_dir_table() {
        for (pattern, base) in [
            ("/var/log/pods/*/*/*.log", "/var/log/pods"),
            ("/var/log/containers/*.log", "/var/log/containers"),
            ("/var/log/app.log", "/var/log"),
            ("logs/[ab]/x.log", "logs"),
        ] {
            assert_eq!(glob_base_dir(Path::new(pattern)), Path::new(base), "{pattern}");
        }
    }
}
