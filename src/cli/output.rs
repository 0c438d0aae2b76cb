//! Output files of the command line: nothing lost, nothing clobbered, nothing left behind.
//!
//! - [`check_output`] runs before any computation: the extension matches what is written, the
//!   output is not one of the inputs, its directory exists and is writable (a temporary is
//!   created and removed there), and stale temporaries of dead repsim processes are removed.
//! - [`write_via_temporary`] writes `DIR/.NAME.repsim-tmp-PID`, flushes and fsyncs it, gives
//!   it the mode of the file it replaces (else the umask default), renames it over `NAME` and
//!   fsyncs the directory; any error removes the temporary and names the output, not the
//!   temporary. Ctrl-C and SIGTERM remove the temporaries in flight before exiting; a SIGKILL
//!   leaves one, which the next run in that directory removes.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::CliError;

/// The infix of repsim's temporary files: `.NAME.repsim-tmp-PID`.
const TEMPORARY_TAG: &str = ".repsim-tmp-";

/// Temporaries being written by this process, removed by the signal handler.
static IN_FLIGHT: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Removes the temporaries in flight and exits on Ctrl-C or SIGTERM (installed once).
fn install_signal_cleanup() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        // If another handler is already installed (an embedding program), keep it.
        let _ = ctrlc::set_handler(|| {
            let paths = IN_FLIGHT.lock().map(|p| p.clone()).unwrap_or_default();
            for path in paths {
                let _ = std::fs::remove_file(path);
            }
            eprintln!("interrupted: no output was written");
            std::process::exit(130);
        });
    });
}

fn register(path: &Path) {
    install_signal_cleanup();
    if let Ok(mut paths) = IN_FLIGHT.lock() {
        paths.push(path.to_path_buf());
    }
}

fn unregister(path: &Path) {
    if let Ok(mut paths) = IN_FLIGHT.lock() {
        paths.retain(|p| p != path);
    }
}

/// The directory `path` is written in.
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
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

/// This process's temporary for `path`.
fn temporary_for(path: &Path) -> PathBuf {
    parent_dir(path).join(format!(
        ".{}{TEMPORARY_TAG}{}",
        file_name(path),
        std::process::id()
    ))
}

/// Whether a process with this id runs (Linux: `/proc/PID`; elsewhere assumed alive, so
/// nothing of a running process is ever removed).
fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

/// Removes `.NAME.repsim-tmp-PID` files beside `path` whose process is gone.
fn remove_stale_temporaries(path: &Path) {
    let prefix = format!(".{}{TEMPORARY_TAG}", file_name(path));
    let Ok(entries) = std::fs::read_dir(parent_dir(path)) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(&prefix)
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !process_alive(pid) {
            if std::fs::remove_file(entry.path()).is_ok() {
                eprintln!(
                    "removed {}, left by an interrupted run",
                    entry.path().display()
                );
            }
        }
    }
}

/// Whether two paths name the same file (same device and inode where both exist).
fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(ma), Ok(mb)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return ma.dev() == mb.dev() && ma.ino() == mb.ino();
        }
    }
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Checks an output path before any work: `flag` names it in messages (`--json`), its
/// extension must be one of `extensions` (lower case, without the dot; empty: any), it must
/// not be any of `inputs`, and its directory must exist and be writable.
pub(crate) fn check_output(
    path: &Path,
    flag: &str,
    extensions: &[&str],
    inputs: &[&Path],
) -> Result<(), CliError> {
    if !extensions.is_empty() {
        let extension = path
            .extension()
            .map(|e| e.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        if !extensions.contains(&extension.as_str()) {
            return Err(CliError::Input(format!(
                "{flag} {}: the file must end in .{} (it is written in that format)",
                path.display(),
                extensions.join(" or .")
            )));
        }
    }
    for input in inputs {
        if same_file(path, input) {
            return Err(CliError::Input(format!(
                "{flag} {}: that is an input of this command; refusing to overwrite it",
                path.display()
            )));
        }
    }
    let dir = parent_dir(path);
    if !dir.is_dir() {
        return Err(CliError::Input(format!(
            "{flag} {}: the directory {} does not exist",
            path.display(),
            dir.display()
        )));
    }
    if path.is_dir() {
        return Err(CliError::Input(format!(
            "{flag} {}: is a directory",
            path.display()
        )));
    }
    remove_stale_temporaries(path);
    // Writable? Create this run's temporary now (and remove it): a read-only directory is
    // found before the computation, not after.
    let temporary = temporary_for(path);
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temporary)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&temporary);
            Ok(())
        }
        Err(e) => Err(CliError::Input(format!(
            "{flag} {}: cannot write in {}: {e}",
            path.display(),
            dir.display()
        ))),
    }
}

/// Runs `write` on a temporary beside `path`, makes it durable and renames it into place; on
/// failure the temporary is removed and the previous `path`, if any, is untouched.
pub(crate) fn write_via_temporary(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let fail = |e: &dyn std::fmt::Display| {
        CliError::Failure(format!("{}: cannot write: {e}", path.display()))
    };
    let temporary = temporary_for(path);
    register(&temporary);
    let result = (|| {
        // Created here (not by `write`) so that it exists and is ours: `create_new` refuses a
        // leftover of a process that reused this id.
        let _ = std::fs::remove_file(&temporary);
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temporary)
            .map_err(|e| fail(&e))?;
        write(&temporary)?;
        let file = File::open(&temporary).map_err(|e| fail(&e))?;
        file.sync_all().map_err(|e| fail(&e))?;
        if let Ok(previous) = std::fs::metadata(path) {
            std::fs::set_permissions(&temporary, previous.permissions()).map_err(|e| fail(&e))?;
        }
        std::fs::rename(&temporary, path).map_err(|e| fail(&e))?;
        if let Ok(dir) = File::open(parent_dir(path)) {
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    unregister(&temporary);
    result
}

/// Writes `document` as pretty JSON through [`write_via_temporary`]; every write error,
/// including the final flush (a full disk), fails the command.
pub(crate) fn write_json(path: &Path, document: &serde_json::Value) -> Result<(), CliError> {
    write_via_temporary(path, |temporary| {
        OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(temporary)
            .and_then(|file| json_into(file, document))
            .map_err(|e| CliError::Failure(format!("{}: cannot write: {e}", path.display())))
    })
}

/// Pretty JSON into `file`, flushed (the buffered tail is where a full disk shows) and synced.
fn json_into(file: File, document: &serde_json::Value) -> std::io::Result<()> {
    let mut writer = BufWriter::new(file);
    serde_json::to_writer_pretty(&mut writer, document)?;
    writer.write_all(b"\n")?;
    let file = writer.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_an_input_as_output_and_a_wrong_extension() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("a.npy");
        std::fs::write(&input, b"x").unwrap();
        let err = check_output(&input, "--json", &[], &[&input]).unwrap_err();
        assert!(matches!(err, CliError::Input(ref m) if m.contains("input")));
        let err = check_output(&dir.path().join("x.npy"), "--json", &["json"], &[]).unwrap_err();
        assert!(matches!(err, CliError::Input(ref m) if m.contains(".json")));
        check_output(&dir.path().join("x.json"), "--json", &["json"], &[&input]).unwrap();
    }

    #[test]
    fn keeps_the_mode_of_the_replaced_file_and_leaves_no_temporary() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        std::fs::write(&path, b"{}").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_json(&path, &serde_json::json!({"a": 1})).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn a_failed_write_keeps_the_previous_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        std::fs::write(&path, b"previous").unwrap();
        let err = write_via_temporary(&path, |_| Err(CliError::Failure("disk full".into())));
        assert!(err.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"previous");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn stale_temporaries_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acts.npz");
        // PID 4194304 is above Linux's pid_max: no such process.
        let stale = dir.path().join(".acts.npz.repsim-tmp-4194304");
        std::fs::write(&stale, b"half").unwrap();
        check_output(&path, "--out", &["npz"], &[]).unwrap();
        assert!(!stale.exists());
    }

    #[test]
    fn a_full_disk_fails_the_write_even_when_everything_fits_the_buffer() {
        // /dev/full accepts the open and fails every write with ENOSPC: a small document sits
        // in the BufWriter until the flush, where the error must not be dropped.
        if !Path::new("/dev/full").exists() {
            return;
        }
        let file = OpenOptions::new().write(true).open("/dev/full").unwrap();
        let err = json_into(file, &serde_json::json!({"a": 1})).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(28), "{err}"); // ENOSPC
    }
}
