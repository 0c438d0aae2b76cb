//! An exclusive lock on a file path that holds across processes, PID namespaces and machines
//! sharing a file system: a training run's directory has one writer at a time.
//!
//! Two ways, chosen per lock:
//! - **advisory locks** (`flock`, by default): the kernel, or the network file system's lock
//!   manager (NFSv3's NLM, NFSv4's own leases; Lustre mounted with `-o flock`), knows whether the
//!   holder lives, in any PID namespace and on any client, and drops a dead holder's lock. The
//!   lock file names its holder (host, PID, scope, start) for the refusal message only;
//! - **a lease**, where the file system has no advisory locks (`flock` answers `ENOLCK`,
//!   `EOPNOTSUPP` or `ENOSYS`: Lustre mounted without `flock`, some FUSE file systems), or with
//!   `REPSIM_LOCK=lease`: the lock file is created exclusively and names its holder, and a thread
//!   renews its modification time every quarter of a [`lease`]. Another process takes it over
//!   only when the holder is surely gone: in the holder's own scope (host, boot, PID namespace)
//!   its PID no longer runs; anywhere else the lease ran out (the file unchanged for a lease).
//!   Two processes taking over one expired lock at the same instant can both succeed: the lease
//!   is for crashed holders, not a consensus protocol.
//!
//! The lock file is removed when the [`DirLock`] drops (under the advisory lock, so a process
//! that was waiting on the removed file notices and tries again).

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::scope::{host_name, lease, process_scope};

/// Who holds a lock, as its lock file says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    /// The holder's host name.
    pub host: String,
    /// The holder's process id, in its own PID namespace.
    pub pid: u32,
    /// The holder's [`process_scope`] (host, boot, PID namespace).
    pub scope: String,
    /// When it took the lock, seconds since the Unix epoch.
    pub since_unix: u64,
}

impl LockHolder {
    fn this_process() -> Self {
        LockHolder {
            host: host_name(),
            pid: std::process::id(),
            scope: process_scope(),
            since_unix: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let here = self.scope == process_scope();
        write!(
            f,
            "PID {} on {}{}",
            self.pid,
            self.host,
            if here {
                ""
            } else {
                " (another machine or PID namespace)"
            }
        )
    }
}

/// A lock could not be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockError {
    /// Another live process holds it (`holder`: what its lock file says, when readable).
    Held {
        /// The lock file.
        path: PathBuf,
        /// Its holder.
        holder: Option<LockHolder>,
    },
    /// The lock file could not be created, read or locked.
    Io {
        /// The lock file.
        path: PathBuf,
        /// What failed, with the operating system's words.
        message: String,
    },
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::Held { path, holder } => write!(
                f,
                "held by {} ({})",
                holder
                    .as_ref()
                    .map_or("another process".to_string(), |h| h.to_string()),
                path.display()
            ),
            LockError::Io { path, message } => write!(f, "{}: {message}", path.display()),
        }
    }
}

impl std::error::Error for LockError {}

/// An exclusive lock on a path, released (and its file removed) when dropped.
#[derive(Debug)]
pub struct DirLock {
    path: PathBuf,
    /// The advisory-locked file (advisory mode); `None` in lease mode.
    file: Option<File>,
    /// The lease's renewal thread and its stop flag (lease mode).
    heartbeat: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

/// `flock` errors that mean "this file system has no advisory locks".
fn advisory_locks_unsupported(e: &std::io::Error) -> bool {
    // ENOLCK, ENOSYS, EOPNOTSUPP (Linux numbers).
    matches!(e.raw_os_error(), Some(37 | 38 | 95)) || e.kind() == std::io::ErrorKind::Unsupported
}

fn io_error(path: &Path, what: &str, e: impl fmt::Display) -> LockError {
    LockError::Io {
        path: path.to_path_buf(),
        message: format!("{what}: {e}"),
    }
}

fn read_holder(path: &Path) -> Option<LockHolder> {
    let mut text = String::new();
    File::open(path).ok()?.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

fn holder_json() -> Vec<u8> {
    serde_json::to_vec(&LockHolder::this_process()).unwrap_or_default()
}

impl DirLock {
    /// Takes the lock `path` (created if missing), or says who holds it.
    pub fn acquire(path: &Path) -> Result<DirLock, LockError> {
        let lease_only = std::env::var("REPSIM_LOCK").is_ok_and(|v| v.trim() == "lease");
        if lease_only {
            return Self::acquire_lease(path);
        }
        for _ in 0..8 {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
                .map_err(|e| io_error(path, "cannot create the lock", e))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(LockError::Held {
                        path: path.to_path_buf(),
                        holder: read_holder(path),
                    })
                }
                Err(std::fs::TryLockError::Error(e)) if advisory_locks_unsupported(&e) => {
                    drop(file);
                    return Self::acquire_lease(path);
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(io_error(path, "cannot lock", e))
                }
            }
            // The holder before us removes the file under its lock: a lock on a removed (or
            // replaced) file locks nothing, so go again.
            let same_file = match (std::fs::metadata(path), file.metadata()) {
                (Ok(named), Ok(open)) => named.dev() == open.dev() && named.ino() == open.ino(),
                _ => false,
            };
            if !same_file {
                continue;
            }
            let mut file = file;
            file.set_len(0)
                .and_then(|_| file.seek(SeekFrom::Start(0)))
                .and_then(|_| file.write_all(&holder_json()))
                .map_err(|e| io_error(path, "cannot write the lock", e))?;
            return Ok(DirLock {
                path: path.to_path_buf(),
                file: Some(file),
                heartbeat: None,
            });
        }
        Err(io_error(
            path,
            "cannot lock",
            "the lock file kept being replaced",
        ))
    }

    /// The lease mode (see the module doc).
    fn acquire_lease(path: &Path) -> Result<DirLock, LockError> {
        for _ in 0..2 {
            match OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(mut file) => {
                    file.write_all(&holder_json())
                        .and_then(|_| file.sync_all())
                        .map_err(|e| io_error(path, "cannot write the lock", e))?;
                    return Ok(DirLock {
                        path: path.to_path_buf(),
                        file: None,
                        heartbeat: Some(start_heartbeat(path)),
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = read_holder(path);
                    let unchanged_for = std::fs::metadata(path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .unwrap_or_default();
                    let gone = match &holder {
                        Some(h) if h.scope == process_scope() => !crate::process_alive(h.pid),
                        _ => unchanged_for > lease(),
                    };
                    if !gone {
                        return Err(LockError::Held {
                            path: path.to_path_buf(),
                            holder,
                        });
                    }
                    // Left by a holder that is gone: take it over.
                    let _ = std::fs::remove_file(path);
                }
                Err(e) => return Err(io_error(path, "cannot create the lock", e)),
            }
        }
        Err(io_error(
            path,
            "cannot take the lock",
            "taken over meanwhile",
        ))
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this lock is a lease (the file system has no advisory locks, or
    /// `REPSIM_LOCK=lease`).
    pub fn is_lease(&self) -> bool {
        self.file.is_none()
    }
}

/// Renews the lease of `path` (its modification time) every quarter of a lease until stopped.
fn start_heartbeat(path: &Path) -> (Arc<AtomicBool>, JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let path = path.to_path_buf();
    let every = lease() / 4;
    let handle = std::thread::spawn(move || {
        let mut last = Instant::now();
        while !flag.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100).min(every));
            if last.elapsed() >= every {
                if let Ok(file) = OpenOptions::new().write(true).open(&path) {
                    let _ = file.set_modified(SystemTime::now());
                }
                last = Instant::now();
            }
        }
    });
    (stop, handle)
}

impl Drop for DirLock {
    fn drop(&mut self) {
        if let Some((stop, handle)) = self.heartbeat.take() {
            stop.store(true, Ordering::Relaxed);
            let _ = handle.join();
        }
        // Removed while still locked; the advisory lock goes with the file handle after.
        let _ = std::fs::remove_file(&self.path);
        drop(self.file.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_and_free_after_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".run.lock");
        let first = DirLock::acquire(&path).unwrap();
        assert!(!first.is_lease());
        match DirLock::acquire(&path).unwrap_err() {
            LockError::Held { holder, .. } => {
                let holder = holder.expect("the holder is named");
                assert_eq!(holder.pid, std::process::id());
                assert_eq!(holder.scope, process_scope());
            }
            other => panic!("{other}"),
        }
        drop(first);
        assert!(!path.exists());
        let again = DirLock::acquire(&path).unwrap();
        drop(again);
    }

    #[test]
    fn a_stale_lock_file_without_a_holder_is_taken() {
        // What a killed holder leaves in advisory mode: the file, with no lock on it.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".run.lock");
        std::fs::write(
            &path,
            b"{\"host\":\"x\",\"pid\":1,\"scope\":\"0\",\"since_unix\":0}",
        )
        .unwrap();
        let lock = DirLock::acquire(&path).unwrap();
        assert_eq!(read_holder(&path).unwrap().pid, std::process::id());
        drop(lock);
    }

    #[test]
    fn a_lease_of_another_scope_holds_until_it_runs_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".run.lock");
        let elsewhere = LockHolder {
            host: "elsewhere".into(),
            pid: 4_194_304,
            scope: "ffffffffffffffff".into(),
            since_unix: 0,
        };
        std::fs::write(&path, serde_json::to_vec(&elsewhere).unwrap()).unwrap();
        // Fresh: refused, though no process here has that PID.
        match DirLock::acquire_lease(&path).unwrap_err() {
            LockError::Held { holder, .. } => assert_eq!(holder, Some(elsewhere)),
            other => panic!("{other}"),
        }
        // Unchanged for longer than the lease: taken over.
        let old = SystemTime::now() - lease() - Duration::from_secs(5);
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let lock = DirLock::acquire_lease(&path).unwrap();
        assert!(lock.is_lease());
        assert_eq!(read_holder(&path).unwrap().pid, std::process::id());
        drop(lock);
        assert!(!path.exists());
    }

    #[test]
    fn a_lease_of_a_dead_process_here_is_taken_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".run.lock");
        let dead = LockHolder {
            host: host_name(),
            pid: 4_194_304,
            scope: process_scope(),
            since_unix: 0,
        };
        std::fs::write(&path, serde_json::to_vec(&dead).unwrap()).unwrap();
        drop(DirLock::acquire_lease(&path).unwrap());
    }
}
