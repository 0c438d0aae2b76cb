//! Durable files of a run. Every file is written by repsim's one atomic writer
//! ([`repsim_durable`]: a temporary beside the target, fsynced and renamed into place, the
//! directory fsynced), re-exported here; this module adds what checkpoints need on top:
//! [`content_hash`], which lets a reader check that a file is the one a manifest names, and
//! [`read_json`].

use std::fs::File;
use std::io::Read;
use std::path::Path;

pub use repsim_durable::{remove_stale_temporaries, write_bytes, write_json, write_via};

use crate::error::{Result, TrainError};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
