//! Scheduled backups into a folder, keeping the newest N: names sort by time (`komek-20261129T031500Z…`),
//! and only files named that way are ever removed.

use std::path::{Path, PathBuf};

use super::{BackupError, io_error};

const PREFIX: &str = "komek-";

/// A new backup's path in `dir`: `komek-<UTC time>.<extension>`.
pub fn backup_name(dir: &Path, extension: &str, now: chrono::DateTime<chrono::Utc>) -> PathBuf {
    dir.join(format!("{PREFIX}{}.{extension}", now.format("%Y%m%dT%H%M%SZ")))
}

fn is_backup_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(PREFIX) else {
        return false;
    };
    let stamp: String = rest.chars().take(16).collect();
    stamp.len() == 16
        && stamp.char_indices().all(|(i, c)| match i {
            8 => c == 'T',
            15 => c == 'Z',
            _ => c.is_ascii_digit(),
        })
        && [".sqlite", ".pgdump", ".sqlite.age", ".pgdump.age"].contains(&&rest[16..])
}

/// Removes the oldest backups in `dir` beyond the newest `keep`; returns what it removed.
pub fn prune(dir: &Path, keep: usize) -> Result<Vec<PathBuf>, BackupError> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(io_error(format!("cannot list {}", dir.display())))?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| is_backup_name(n))
        .collect();
    names.sort();
    let excess = names.len().saturating_sub(keep);
    let mut removed = Vec::new();
    for name in names.into_iter().take(excess) {
        let path = dir.join(name);
        std::fs::remove_file(&path).map_err(io_error(format!("cannot remove {}", path.display())))?;
        removed.push(path);
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_and_leaves_other_files_alone() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        for name in [
            "komek-20260101T000000Z.sqlite.age",
            "komek-20260102T000000Z.sqlite.age",
            "komek-20260103T000000Z.sqlite",
            "komek-20260104T000000Z.pgdump.age",
            "keys.toml",
            "komek-notes.txt",
        ] {
            std::fs::write(dir.path().join(name), b"x")?;
        }
        let removed = prune(dir.path(), 2)?;
        assert_eq!(removed.len(), 2);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "keys.toml",
                "komek-20260103T000000Z.sqlite",
                "komek-20260104T000000Z.pgdump.age",
                "komek-notes.txt"
            ]
        );
        let now = chrono::DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default();
        let name = backup_name(dir.path(), "sqlite.age", now);
        assert!(is_backup_name(
            &name
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
        Ok(())
    }
}
