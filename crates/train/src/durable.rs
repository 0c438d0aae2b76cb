//! Durable files: everything the training crate writes goes to a temporary file beside its
//! target (`.NAME.repsim-tmp-PID`), is flushed and fsynced, then renamed into place, and the
//! directory is fsynced; so a process killed at any moment leaves either the old file or the new
//! one, never half of one. [`content_hash`] lets a reader check that a file is the one a
//! manifest names.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Result, TrainError};

/// The temporary name used while `path` is written.
pub fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.repsim-tmp-{}", std::process::id()))
}

/// fsyncs a directory, so that a rename inside it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| TrainError::file(dir, format!("cannot sync the directory: {e}")))
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Writes `path` through `write_temporary`, which must create the file it is given; then
/// fsyncs it, renames it over `path` and fsyncs the directory. On any error the temporary is
/// removed and `path` is untouched.
pub fn write_via(path: &Path, write_temporary: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let temporary = temporary_path(path);
    let outcome = write_temporary(&temporary)
        .and_then(|_| {
            File::open(&temporary)
                .and_then(|f| f.sync_all())
                .map_err(|e| TrainError::file(path, format!("cannot sync: {e}")))
        })
        .and_then(|_| match std::fs::metadata(path) {
            // A replaced file keeps its mode (the temporary has the umask default).
            Ok(previous) => std::fs::set_permissions(&temporary, previous.permissions())
                .map_err(|e| TrainError::file(path, format!("cannot set the mode: {e}"))),
            Err(_) => Ok(()),
        })
        .and_then(|_| {
            std::fs::rename(&temporary, path)
                .map_err(|e| TrainError::file(path, format!("cannot move into place: {e}")))
        })
        .and_then(|_| sync_dir(&parent_of(path)));
    if outcome.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    outcome
}

/// Writes `bytes` to `path` atomically (see [`write_via`]).
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    write_via(path, |temporary| {
        let mut file = File::create(temporary)
            .map_err(|e| TrainError::file(path, format!("cannot create: {e}")))?;
        file.write_all(bytes)
            .and_then(|_| file.flush())
            .map_err(|e| TrainError::file(path, format!("cannot write: {e}")))
    })
}

/// Writes `value` as pretty JSON to `path` atomically.
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| TrainError::file(path, format!("cannot serialise: {e}")))?;
    text.push('\n');
    write_bytes(path, text.as_bytes())
}

/// Reads JSON from `path`.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| TrainError::file(path, e))?;
    serde_json::from_str(&text).map_err(|e| TrainError::file(path, format!("not valid: {e}")))
}

/// FNV-1a (64 bit) of a file's bytes, with its length: enough to tell a complete file from a
/// truncated or overwritten one (not a defence against tampering).
pub fn content_hash(path: &Path) -> Result<(u64, u64)> {
    let mut file = File::open(path).map_err(|e| TrainError::file(path, e))?;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut len: u64 = 0;
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let read = file
            .read(&mut buffer)
            .map_err(|e| TrainError::file(path, e))?;
        if read == 0 {
            break;
        }
        for byte in &buffer[..read] {
            hash ^= *byte as u64;
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        len += read as u64;
    }
    Ok((hash, len))
}

/// Removes temporaries (`.*.repsim-tmp-PID`) that processes which no longer run left in `dir`.
pub fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((_, pid)) = name.rsplit_once(".repsim-tmp-") else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        let alive = pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists();
        if !alive {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write_json(&path, &vec![1, 2]).unwrap();
        let failed = write_via(&path, |_| Err(TrainError::Failed("disk full".into())));
        assert!(failed.is_err());
        assert_eq!(read_json::<Vec<i32>>(&path).unwrap(), vec![1, 2]);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn hashes_tell_truncated_files_apart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b");
        write_bytes(&path, b"hello world").unwrap();
        let full = content_hash(&path).unwrap();
        std::fs::write(&path, b"hello").unwrap();
        assert_ne!(content_hash(&path).unwrap(), full);
        assert_eq!(full.1, 11);
    }

    #[test]
    fn stale_temporaries_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        // PID 4194304 is above Linux's pid_max limit, so no process has it.
        let stale = dir.path().join(".x.bpk.repsim-tmp-4194304");
        let mine = temporary_path(&dir.path().join("y.bpk"));
        std::fs::write(&stale, b"x").unwrap();
        std::fs::write(&mine, b"y").unwrap();
        remove_stale_temporaries(dir.path());
        assert!(!stale.exists());
        assert!(mine.exists());
    }
}
