//! Checkpoints: model, optimiser state and counters, durable as a set.
//!
//! A checkpoint of epoch `e` is the folder `checkpoints/epoch-000e/` (`model.bpk`,
//! `optimizer.bpk`, `state.json`), each file written atomically, and then the manifest
//! `checkpoints/epoch-000e.json`, written last (temporary file, fsync, rename), naming every
//! file with its length and FNV-1a hash. A checkpoint without a manifest, or whose files do not
//! match it, does not exist: [`newest_complete`] skips it with a warning and falls back to the
//! one before. Removing a checkpoint removes its manifest first.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::durable::{content_hash, read_json, remove_stale_temporaries, write_json};
use crate::error::{Result, TrainError};
use crate::metrics::EpochMetrics;

/// The counters saved with a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// The last completed epoch (1-based).
    pub epoch: usize,
    /// Optimiser steps taken so far (the schedule's position).
    pub step: usize,
    /// Every epoch's metrics so far, so `metrics.jsonl` can be rebuilt on resume.
    pub metrics: Vec<EpochMetrics>,
}

/// One file of a checkpoint, as its manifest names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// File name inside the checkpoint folder.
    pub name: String,
    /// Length in bytes.
    pub bytes: u64,
    /// FNV-1a 64 of the bytes, hexadecimal.
    pub fnv1a64: String,
}

/// The manifest that makes a checkpoint exist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The epoch.
    pub epoch: usize,
    /// The files.
    pub files: Vec<ManifestEntry>,
}

/// A complete checkpoint found on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// Its folder.
    pub dir: PathBuf,
    /// Its counters.
    pub state: CheckpointState,
}

impl Checkpoint {
    /// The model weights.
    pub fn model_path(&self) -> PathBuf {
        self.dir.join(MODEL)
    }
    /// The optimiser state.
    pub fn optimizer_path(&self) -> PathBuf {
        self.dir.join(OPTIMIZER)
    }
}

/// File names inside a checkpoint folder.
pub const MODEL: &str = "model.bpk";
/// The optimiser state's file name.
pub const OPTIMIZER: &str = "optimizer.bpk";
/// The counters' file name.
pub const STATE: &str = "state.json";

/// The folder of epoch `epoch`'s checkpoint under `checkpoints`.
pub fn checkpoint_dir(checkpoints: &Path, epoch: usize) -> PathBuf {
    checkpoints.join(format!("epoch-{epoch:04}"))
}

fn manifest_path(checkpoints: &Path, epoch: usize) -> PathBuf {
    checkpoints.join(format!("epoch-{epoch:04}.json"))
}

/// Writes the checkpoint of `state.epoch`: `write_files(dir)` writes the model and optimiser
/// files (each atomically) into `dir`; then the state and, last, the manifest.
pub fn save_checkpoint(
    checkpoints: &Path,
    state: &CheckpointState,
    write_files: impl FnOnce(&Path) -> Result<()>,
) -> Result<Checkpoint> {
    let dir = checkpoint_dir(checkpoints, state.epoch);
    // A folder left by an earlier, interrupted save of this epoch is replaced.
    let manifest = manifest_path(checkpoints, state.epoch);
    if manifest.exists() {
        std::fs::remove_file(&manifest).map_err(|e| TrainError::file(&manifest, e))?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| TrainError::file(&dir, e))?;
    remove_stale_temporaries(&dir);
    write_files(&dir)?;
    write_json(&dir.join(STATE), state)?;
    let mut files = Vec::new();
    for name in [MODEL, OPTIMIZER, STATE] {
        let (hash, bytes) = content_hash(&dir.join(name))?;
        files.push(ManifestEntry {
            name: name.to_string(),
            bytes,
            fnv1a64: format!("{hash:016x}"),
        });
    }
    write_json(
        &manifest,
        &Manifest {
            epoch: state.epoch,
            files,
        },
    )?;
    Ok(Checkpoint {
        dir,
        state: state.clone(),
    })
}

/// Epochs that have a manifest, newest first.
fn manifest_epochs(checkpoints: &Path) -> Vec<usize> {
    let mut epochs: Vec<usize> = std::fs::read_dir(checkpoints)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix("epoch-")?
                .strip_suffix(".json")?
                .parse()
                .ok()
        })
        .collect();
    epochs.sort_unstable_by(|a, b| b.cmp(a));
    epochs
}

/// Checks one checkpoint against its manifest.
fn verify(checkpoints: &Path, epoch: usize) -> Result<Checkpoint> {
    let manifest: Manifest = read_json(&manifest_path(checkpoints, epoch))?;
    let dir = checkpoint_dir(checkpoints, epoch);
    for entry in &manifest.files {
        let path = dir.join(&entry.name);
        let (hash, bytes) = content_hash(&path)?;
        if bytes != entry.bytes || format!("{hash:016x}") != entry.fnv1a64 {
            return Err(TrainError::file(
                &path,
                format!(
                    "does not match its manifest ({} bytes, expected {}): truncated or overwritten",
                    bytes, entry.bytes
                ),
            ));
        }
    }
    let state: CheckpointState = read_json(&dir.join(STATE))?;
    if state.epoch != epoch {
        return Err(TrainError::file(
            dir.join(STATE),
            format!(
                "names epoch {} inside the checkpoint of epoch {epoch}",
                state.epoch
            ),
        ));
    }
    Ok(Checkpoint { dir, state })
}

/// The newest checkpoint whose files match its manifest, and a warning for each newer one that
/// does not (saying which checkpoint is used instead, or that there is none).
pub fn newest_complete(checkpoints: &Path) -> (Option<Checkpoint>, Vec<String>) {
    let mut failures = Vec::new();
    let mut found = None;
    for epoch in manifest_epochs(checkpoints) {
        match verify(checkpoints, epoch) {
            Ok(c) => {
                found = Some(c);
                break;
            }
            Err(e) => failures.push((epoch, e)),
        }
    }
    let fallback = match &found {
        Some(c) => format!("resuming from the checkpoint of epoch {}", c.state.epoch),
        None => "no complete checkpoint is left: training from the start".to_string(),
    };
    let warnings = failures
        .into_iter()
        .map(|(epoch, e)| {
            format!("the checkpoint of epoch {epoch} is incomplete or corrupt ({e}); {fallback}")
        })
        .collect();
    (found, warnings)
}

/// Whether `path` is the same file as `name` of the newest complete checkpoint (its length
/// and hash match that checkpoint's manifest): how a run's final weights are told from a
/// truncated or overwritten file.
pub fn matches_newest(checkpoints: &Path, name: &str, path: &Path) -> bool {
    let Some(epoch) = manifest_epochs(checkpoints).into_iter().next() else {
        return false;
    };
    let Ok(manifest) = read_json::<Manifest>(&manifest_path(checkpoints, epoch)) else {
        return false;
    };
    let Some(entry) = manifest.files.iter().find(|f| f.name == name) else {
        return false;
    };
    content_hash(path)
        .is_ok_and(|(hash, bytes)| bytes == entry.bytes && format!("{hash:016x}") == entry.fnv1a64)
}

/// Checkpoint folders without a manifest (an interrupted save or prune: they do not exist as
/// checkpoints), with their epochs.
fn unfinished(checkpoints: &Path) -> Vec<(usize, PathBuf)> {
    std::fs::read_dir(checkpoints)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let epoch = name.strip_prefix("epoch-")?.parse::<usize>().ok()?;
            (entry.path().is_dir() && !manifest_path(checkpoints, epoch).exists())
                .then(|| (epoch, entry.path()))
        })
        .collect()
}

/// Removes every checkpoint folder without a manifest and returns them. Only for a caller
/// that holds the run's lock (a save in progress has no manifest yet).
pub fn remove_unfinished(checkpoints: &Path) -> Vec<PathBuf> {
    unfinished(checkpoints)
        .into_iter()
        .filter(|(_, dir)| std::fs::remove_dir_all(dir).is_ok())
        .map(|(_, dir)| dir)
        .collect()
}

/// Removes every checkpoint except the newest `keep_last` and the epochs in `keep_epochs`.
/// Each removal deletes the manifest first, so a kill midway leaves no half checkpoint that
/// claims to exist. Folders without a manifest (interrupted saves) older than the newest
/// checkpoint are removed too.
pub fn prune(checkpoints: &Path, keep_last: usize, keep_epochs: &[usize]) -> Result<()> {
    let epochs = manifest_epochs(checkpoints);
    for (rank, epoch) in epochs.iter().enumerate() {
        if rank < keep_last.max(1) || keep_epochs.contains(epoch) {
            continue;
        }
        let manifest = manifest_path(checkpoints, *epoch);
        std::fs::remove_file(&manifest).map_err(|e| TrainError::file(&manifest, e))?;
        let dir = checkpoint_dir(checkpoints, *epoch);
        std::fs::remove_dir_all(&dir).map_err(|e| TrainError::file(&dir, e))?;
    }
    let newest = epochs.first().copied().unwrap_or(0);
    for (epoch, dir) in unfinished(checkpoints) {
        if epoch < newest {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::durable::write_bytes;

    fn save(checkpoints: &Path, epoch: usize) {
        let state = CheckpointState {
            epoch,
            step: epoch * 10,
            metrics: vec![],
        };
        save_checkpoint(checkpoints, &state, |dir| {
            write_bytes(&dir.join(MODEL), format!("model {epoch}").as_bytes())?;
            Ok(write_bytes(&dir.join(OPTIMIZER), b"optimizer")?)
        })
        .unwrap();
    }

    #[test]
    fn a_corrupt_newest_checkpoint_falls_back_to_the_previous_one() {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), 1);
        save(dir.path(), 2);
        let (found, warnings) = newest_complete(dir.path());
        assert_eq!(found.unwrap().state.epoch, 2);
        assert!(warnings.is_empty());
        std::fs::write(checkpoint_dir(dir.path(), 2).join(MODEL), b"model").unwrap();
        let (found, warnings) = newest_complete(dir.path());
        assert_eq!(found.unwrap().state.step, 10);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("epoch 2"), "{warnings:?}");
        // Without its manifest, a folder is not a checkpoint.
        std::fs::remove_file(manifest_path(dir.path(), 1)).unwrap();
        std::fs::remove_file(manifest_path(dir.path(), 2)).unwrap();
        assert!(newest_complete(dir.path()).0.is_none());
    }

    #[test]
    fn pruning_keeps_the_last_k_and_the_asked_epochs() {
        let dir = tempfile::tempdir().unwrap();
        for epoch in 1..=6 {
            save(dir.path(), epoch);
        }
        prune(dir.path(), 2, &[1, 3]).unwrap();
        let mut kept = manifest_epochs(dir.path());
        kept.sort();
        assert_eq!(kept, vec![1, 3, 5, 6]);
        assert!(!checkpoint_dir(dir.path(), 2).exists());
        assert!(checkpoint_dir(dir.path(), 3).join(MODEL).exists());
    }
}
