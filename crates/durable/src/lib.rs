//! repsim's one way to write a file, used by every repsim crate (weights, checkpoints, the
//! Tracker's observations, activation files, figures, results and summaries), and its one way to
//! lock a directory against a second writer.
//!
//! [`write_via`] writes `DIR/.NAME.repsim-tmp-SCOPE-PID-K` (created new, so it is this process's
//! own), flushes and fsyncs it, gives it the mode of the file it replaces (else the umask
//! default), renames it over `NAME` and fsyncs the directory. A process killed at any moment
//! leaves the old file or the new one, never half of one; an error removes the temporary and
//! leaves the old file. What a killed process leaves is a temporary, which
//! [`remove_stale_temporaries`] removes once it is sure the writer is gone: `SCOPE`
//! ([`process_scope`]) names the host, its boot and its PID namespace, so a PID is judged only
//! where it means something; a temporary of another machine or namespace is removed only when it
//! has not changed for a lease ([`lease`]). [`remove_in_flight`] removes this process's
//! temporaries, for a Ctrl-C or SIGTERM handler.
//!
//! [`DirLock`] (the `lock` module) is an exclusive lock that holds across processes, PID
//! namespaces and machines sharing a file system.
//!
//! This crate depends on no other repsim crate (std and serde only), so every crate may use it.
//!
//! ```
//! let dir = std::env::temp_dir().join(format!("repsim-durable-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let path = dir.join("summary.md");
//! repsim_durable::write_bytes(&path, b"# results\n")?; // the old file, or this one: never half
//! assert_eq!(std::fs::read_to_string(&path)?, "# results\n");
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod lock;
mod scope;

pub use lock::{DirLock, LockError, LockHolder};
pub use scope::{fnv1a64, host_name, lease, process_scope, TemporaryOwner};

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The infix of repsim's temporary files: `.NAME.repsim-tmp-PID-K`.
pub const TEMPORARY_TAG: &str = ".repsim-tmp-";

/// A file could not be written (or synced, or moved into place): the path is the target, never
/// the temporary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurableError {
    /// The file that was being written.
    pub path: PathBuf,
    /// What failed, with the operating system's words.
    pub message: String,
}

impl DurableError {
    /// An error writing `path`.
    pub fn new(path: &Path, message: impl fmt::Display) -> Self {
        DurableError {
            path: path.to_path_buf(),
            message: message.to_string(),
        }
    }
}

impl fmt::Display for DurableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

impl std::error::Error for DurableError {}

/// The directory `path` lives in (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into())
}

/// A fresh temporary name for `path`, unique within this process and across machines:
/// `DIR/.NAME.repsim-tmp-SCOPE-PID-K` (see [`process_scope`]).
pub fn temporary_path(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let k = NEXT.fetch_add(1, Ordering::Relaxed);
    parent_dir(path).join(format!(
        ".{}{TEMPORARY_TAG}{}-{}-{k}",
        file_name(path),
        process_scope(),
        std::process::id()
    ))
}

/// The writer of a temporary, from the name repsim gave it (`.NAME.repsim-tmp-SCOPE-PID-K`, or
/// the forms of earlier versions without a scope: `.NAME.repsim-tmp-PID-K`,
/// `.NAME.repsim-tmp-PID`, `.NAME.PID.partial`), if it is one.
pub fn temporary_owner(name: &str) -> Option<TemporaryOwner> {
    if !name.starts_with('.') {
        return None;
    }
    if let Some((_, tail)) = name.rsplit_once(TEMPORARY_TAG) {
        let parts: Vec<&str> = tail.split('-').collect();
        let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
        return match parts.as_slice() {
            [scope, pid, k] if scope.len() == 16 && digits(k) => Some(TemporaryOwner {
                scope: Some((*scope).to_string()),
                pid: pid.parse().ok()?,
            }),
            [pid, k] if digits(k) => Some(TemporaryOwner {
                scope: None,
                pid: pid.parse().ok()?,
            }),
            [pid] => Some(TemporaryOwner {
                scope: None,
                pid: pid.parse().ok()?,
            }),
            _ => None,
        };
    }
    let stem = name.strip_suffix(".partial")?;
    let (_, pid) = stem.rsplit_once('.')?;
    Some(TemporaryOwner {
        scope: None,
        pid: pid.parse().ok()?,
    })
}

/// Whether a process with this id runs in this process's PID namespace (Linux: `/proc/PID`;
/// elsewhere assumed alive, so nothing of a running process is ever removed).
pub fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

/// How long ago `path` last changed (zero when unknown or in the future).
fn age(path: &Path) -> std::time::Duration {
    std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .unwrap_or_default()
}

/// Whether the writer of the temporary `path` (named for `owner`) is surely gone:
/// - written here (same host, boot and PID namespace): its PID no longer runs;
/// - written by an earlier repsim (no scope in the name): its PID no longer runs here and the
///   temporary has not changed for a lease;
/// - written on another machine or in another PID namespace (sharing `OUT` on a network file
///   system, a container): the PID says nothing here, so only a temporary that has not changed
///   for a lease ([`lease`]) counts as left behind.
pub fn temporary_is_stale(path: &Path, owner: &TemporaryOwner) -> bool {
    match &owner.scope {
        Some(scope) if *scope == process_scope() => !process_alive(owner.pid),
        Some(_) => age(path) > lease(),
        None => !process_alive(owner.pid) && age(path) > lease(),
    }
}

/// Removes the temporaries in `dir` whose writer is surely gone ([`temporary_is_stale`]: what
/// a `kill -9` left), and returns their paths. Temporaries of live processes, this one's and
/// those of other machines sharing the directory included, are kept.
pub fn remove_stale_temporaries(dir: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return removed;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(owner) = temporary_owner(&name) else {
            continue;
        };
        let path = entry.path();
        if !temporary_is_stale(&path, &owner) {
            continue;
        }
        let gone = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        if gone.is_ok() {
            removed.push(path);
        }
    }
    removed
}

/// Temporaries this process is writing now.
static IN_FLIGHT: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn register(path: &Path) {
    if let Ok(mut paths) = IN_FLIGHT.lock() {
        paths.push(path.to_path_buf());
    }
}

fn unregister(path: &Path) {
    if let Ok(mut paths) = IN_FLIGHT.lock() {
        paths.retain(|p| p != path);
    }
}

/// Removes the temporaries this process is writing now; for a signal handler that is about to
/// exit (Ctrl-C, SIGTERM). Returns how many it removed.
pub fn remove_in_flight() -> usize {
    let paths = IN_FLIGHT.lock().map(|p| p.clone()).unwrap_or_default();
    paths
        .iter()
        .filter(|p| std::fs::remove_file(p).is_ok())
        .count()
}

/// fsyncs a directory, so that a rename inside it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<(), DurableError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| DurableError::new(dir, format!("cannot sync the directory: {e}")))
}

/// Writes `path` through `write_temporary`, which is given the temporary (already created,
/// empty) and may replace or fill it; then fsyncs it, gives it the mode of the file it replaces,
/// renames it over `path` and fsyncs the directory. On any error the temporary is removed and
/// `path` is untouched.
pub fn write_via<E: From<DurableError>>(
    path: &Path,
    write_temporary: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), E> {
    let target = replaceable_target(path).map_err(E::from)?;
    let path = target.as_path();
    let temporary = temporary_path(path);
    register(&temporary);
    let fail = |what: &str, e: std::io::Error| DurableError::new(path, format!("{what}: {e}"));
    let outcome = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temporary)
        .map_err(|e| E::from(fail("cannot create", e)))
        .and_then(|_| write_temporary(&temporary))
        .and_then(|_| {
            File::open(&temporary)
                .and_then(|f| f.sync_all())
                .map_err(|e| E::from(fail("cannot sync", e)))
        })
        .and_then(|_| match std::fs::metadata(path) {
            // A replaced file keeps its mode (the temporary has the umask default).
            Ok(previous) => std::fs::set_permissions(&temporary, previous.permissions())
                .map_err(|e| E::from(fail("cannot set the mode", e))),
            Err(_) => Ok(()),
        })
        .and_then(|_| {
            std::fs::rename(&temporary, path)
                .map_err(|e| E::from(fail("cannot move into place", e)))
        })
        .and_then(|_| sync_dir(&parent_dir(path)).map_err(E::from));
    if outcome.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    unregister(&temporary);
    outcome
}

/// The file a write of `path` replaces: `path` itself, or for a symbolic link the file it
/// points to (the link stays a link). Anything but a regular file or nothing (a device, a
/// FIFO, a socket, a directory) is refused: renaming over it would replace the node itself.
fn replaceable_target(path: &Path) -> Result<PathBuf, DurableError> {
    let target = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => path.canonicalize().unwrap_or_else(|_| {
            // A dangling link: write where it points.
            let link = std::fs::read_link(path).unwrap_or_else(|_| path.to_path_buf());
            parent_dir(path).join(link)
        }),
        _ => path.to_path_buf(),
    };
    match std::fs::metadata(&target) {
        Ok(m) if !m.is_file() => Err(DurableError::new(
            path,
            "is not a regular file (a directory, device, FIFO or socket); refusing to replace it",
        )),
        _ => Ok(target),
    }
}

/// Writes through a buffered writer on the temporary: every write error, the final flush's
/// included (where a full disk shows), fails the write.
pub fn write_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), DurableError> {
    write_via(path, |temporary| {
        let file = OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(temporary)
            .map_err(|e| DurableError::new(path, format!("cannot open: {e}")))?;
        let mut writer = BufWriter::new(file);
        write(&mut writer)
            .and_then(|_| writer.flush())
            .map_err(|e| DurableError::new(path, format!("cannot write: {e}")))
    })
}

/// Writes `bytes` to `path` atomically (see [`write_via`]).
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), DurableError> {
    write_with(path, |w| w.write_all(bytes))
}

/// Writes `value` as pretty JSON (and a final newline) to `path` atomically. Floats are written
/// by serde_json with their shortest round-trip form, so a value read back is the same `f64`.
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), DurableError> {
    let mut text = serde_json::to_vec_pretty(value)
        .map_err(|e| DurableError::new(path, format!("cannot serialise: {e}")))?;
    text.push(b'\n');
    write_bytes(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_write_replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write_json(&path, &vec![1, 2]).unwrap();
        write_json(&path, &vec![3]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "[\n  3\n]\n");
        assert_eq!(names(dir.path()), vec!["a.json"]);
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write_json(&path, &vec![1, 2]).unwrap();
        let failed: Result<(), DurableError> =
            write_via(&path, |_| Err(DurableError::new(&path, "disk full")));
        assert_eq!(failed.unwrap_err().message, "disk full");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "[\n  1,\n  2\n]\n");
        assert_eq!(names(dir.path()), vec!["a.json"]);
    }

    #[test]
    fn a_failing_writer_fails_the_write_and_keeps_the_file() {
        // What a full disk does: the writer's error comes back, naming the target.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        write_bytes(&path, b"old").unwrap();
        let e = write_with(&path, |w| {
            w.write_all(b"new")?;
            Err(std::io::Error::from_raw_os_error(28))
        })
        .unwrap_err();
        assert_eq!(e.path, path);
        assert!(e.message.contains("cannot write"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(names(dir.path()), vec!["r.json"]);
    }

    #[test]
    fn devices_fifos_and_directories_are_never_replaced() {
        // /dev/null stands for every node that is not a regular file: a rename over it would
        // replace the node (as root, /dev is writable).
        if Path::new("/dev/null").exists() {
            let e = write_bytes(Path::new("/dev/null"), b"x").unwrap_err();
            assert!(e.message.contains("not a regular file"), "{e}");
            assert!(!std::fs::metadata("/dev/null").unwrap().is_file());
        }
        let dir = tempfile::tempdir().unwrap();
        let e = write_bytes(dir.path(), b"x").unwrap_err();
        assert!(e.message.contains("not a regular file"), "{e}");
    }

    #[test]
    fn a_symbolic_link_is_written_through_and_stays_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        write_bytes(&real, b"1").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_bytes(&link, b"2").unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read(&real).unwrap(), b"2");
    }

    #[test]
    fn a_replaced_file_keeps_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sh");
        write_bytes(&path, b"1").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o751)).unwrap();
        write_bytes(&path, b"2").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o751);
    }

    fn owner(scope: Option<&str>, pid: u32) -> Option<TemporaryOwner> {
        Some(TemporaryOwner {
            scope: scope.map(str::to_string),
            pid,
        })
    }

    #[test]
    fn temporaries_are_recognised_in_every_form() {
        let t = temporary_path(Path::new("d/x.bpk"));
        let name = t.file_name().unwrap().to_string_lossy().into_owned();
        let scope = process_scope();
        assert_eq!(
            temporary_owner(&name),
            owner(Some(&scope), std::process::id())
        );
        assert_eq!(
            temporary_owner(".x-y.bpk.repsim-tmp-0123456789abcdef-77-3"),
            owner(Some("0123456789abcdef"), 77)
        );
        assert_eq!(temporary_owner(".x.bpk.repsim-tmp-77"), owner(None, 77));
        assert_eq!(temporary_owner(".x.bpk.repsim-tmp-77-3"), owner(None, 77));
        assert_eq!(temporary_owner(".model.bpk.77.partial"), owner(None, 77));
        assert_eq!(temporary_owner("x.bpk.repsim-tmp-77"), None);
        assert_eq!(temporary_owner(".x.bpk.repsim-tmp-77-a"), None);
        assert_eq!(temporary_owner(".x.bpk.repsim-tmp-abc-77-1"), None);
        assert_eq!(temporary_owner(".x.partial"), None);
        assert_eq!(temporary_owner("model.bpk"), None);
    }

    fn make_old(path: &Path) {
        let old = std::time::SystemTime::now() - lease() - std::time::Duration::from_secs(5);
        File::open(path).unwrap().set_modified(old).unwrap();
    }

    #[test]
    fn stale_temporaries_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let here = process_scope();
        // PID 4194304 is above Linux's pid_max limit, so no process has it.
        let dead_here = [
            format!(".x.bpk.repsim-tmp-{here}-4194304-0"),
            format!(".y.bpk.repsim-tmp-{here}-4194304-2"),
        ];
        for stale in &dead_here {
            std::fs::write(dir.path().join(stale), b"x").unwrap();
        }
        std::fs::create_dir(
            dir.path()
                .join(format!(".epoch-0001.repsim-tmp-{here}-4194304-0")),
        )
        .unwrap();
        // Earlier versions' names: the PID is dead here and the file is older than a lease.
        for legacy in [".z.bpk.repsim-tmp-4194304", ".w.png.4194304.partial"] {
            std::fs::write(dir.path().join(legacy), b"x").unwrap();
            make_old(&dir.path().join(legacy));
        }
        let mine = temporary_path(&dir.path().join("y.bpk"));
        std::fs::write(&mine, b"y").unwrap();
        std::fs::write(dir.path().join("keep.json"), b"{}").unwrap();
        let removed = remove_stale_temporaries(dir.path());
        assert_eq!(removed.len(), 5, "{removed:?}");
        let left = names(dir.path());
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(mine.exists());
    }

    #[test]
    fn temporaries_of_other_machines_are_kept_until_their_lease_runs_out() {
        // Another host or PID namespace: its PID means nothing here (this PID may even be free
        // here), so only age counts.
        let dir = tempfile::tempdir().unwrap();
        let live = dir
            .path()
            .join(".a.json.repsim-tmp-ffffffffffffffff-4194304-0");
        let left = dir
            .path()
            .join(".b.json.repsim-tmp-ffffffffffffffff-4194304-1");
        let fresh_legacy = dir.path().join(".c.json.repsim-tmp-4194304-1");
        for path in [&live, &left, &fresh_legacy] {
            std::fs::write(path, b"x").unwrap();
        }
        make_old(&left);
        let removed = remove_stale_temporaries(dir.path());
        assert_eq!(removed, vec![left.clone()]);
        assert!(live.exists() && fresh_legacy.exists());
    }
}
