//! Output files of the command line: nothing lost, nothing clobbered, nothing left behind.
//!
//! - [`check_output`] runs before any computation: the extension matches what is written, the
//!   output is not one of the inputs nor inside an input directory (a run directory's own
//!   files, an activation directory), its directory exists and is writable (a temporary is
//!   created and removed there), and stale temporaries of dead repsim processes are removed.
//! - [`write_json`] and [`with_signal_cleanup`] write through repsim's one atomic writer ([`repsim_durable`]:
//!   `DIR/.NAME.repsim-tmp-SCOPE-PID-K`, flushed, fsynced, given the replaced file's mode, renamed,
//!   the directory fsynced); any error removes the temporary and names the output, not the
//!   temporary. Ctrl-C and SIGTERM remove the temporaries in flight before exiting; a SIGKILL
//!   leaves one, which the next run in that directory removes.

use std::io::Write;
use std::path::Path;

use repsim_durable::parent_dir;

use crate::error::Error as CliError;

/// Removes the temporaries in flight and exits on Ctrl-C or SIGTERM (installed once).
fn install_signal_cleanup() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        // If another handler is already installed (an embedding program), keep it.
        let _ = ctrlc::set_handler(|| {
            repsim_durable::remove_in_flight();
            eprintln!("interrupted: no output was written");
            std::process::exit(130);
        });
    });
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

/// Whether `path` would be written inside the directory `dir` (symbolic links resolved).
fn inside_dir(path: &Path, dir: &Path) -> bool {
    let (Ok(parent), Ok(dir)) = (parent_dir(path).canonicalize(), dir.canonicalize()) else {
        return false;
    };
    parent.starts_with(dir)
}

/// Checks an output path before any work: `flag` names it in messages (`--json`), its
/// extension must be one of `extensions` (lower case, without the dot; empty: any), it must
/// not be any of `inputs` nor inside an input that is a directory (a run directory, a folder
/// of `.npy` files), and its directory must exist and be writable.
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
        if input.is_dir() && inside_dir(path, input) {
            return Err(CliError::Input(format!(
                "{flag} {}: that is inside the input directory {}; refusing to write there (write it elsewhere)",
                path.display(),
                input.display()
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
    for removed in repsim_durable::remove_stale_temporaries(&dir) {
        status!("removed {}, left by an interrupted run", removed.display());
    }
    // Writable? Create a temporary now (and remove it): a read-only directory is found before
    // the computation, not after.
    let probe = repsim_durable::temporary_path(path);
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(CliError::Input(format!(
            "{flag} {}: cannot write in {}: {e}",
            path.display(),
            dir.display()
        ))),
    }
}

/// Runs `write` (which writes through repsim's atomic writer) with the Ctrl-C and SIGTERM
/// cleanup installed.
pub(crate) fn with_signal_cleanup<T>(write: impl FnOnce() -> T) -> T {
    install_signal_cleanup();
    write()
}

/// Writes `document` as pretty JSON (and a final newline) through the atomic writer; every
/// write error, the final flush's included (a full disk), fails the command.
pub(crate) fn write_json(path: &Path, document: &serde_json::Value) -> Result<(), CliError> {
    install_signal_cleanup();
    repsim_durable::write_with(path, |w| json_into(w, document))?;
    Ok(())
}

/// Pretty JSON and a newline into `writer`.
fn json_into(writer: &mut dyn Write, document: &serde_json::Value) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *writer, document)?;
    writer.write_all(b"\n")
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
    fn refuses_an_output_inside_an_input_directory() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        std::fs::create_dir_all(run.join("track")).unwrap();
        std::fs::write(run.join("config.json"), b"{}").unwrap();
        for inside in [
            run.join("config.json"),
            run.join("new.json"),
            run.join("track/x.json"),
        ] {
            let err = check_output(&inside, "--json", &["json"], &[&run]).unwrap_err();
            assert!(
                matches!(err, CliError::Input(ref m) if m.contains("inside the input directory")),
                "{err:?}"
            );
        }
        // Through a symbolic link to the run, too.
        std::os::unix::fs::symlink(&run, dir.path().join("link")).unwrap();
        let err = check_output(
            &dir.path().join("link/config.json"),
            "--json",
            &["json"],
            &[&run],
        )
        .unwrap_err();
        assert!(matches!(err, CliError::Input(_)));
        check_output(
            &dir.path().join("beside.json"),
            "--json",
            &["json"],
            &[&run],
        )
        .unwrap();
        assert_eq!(std::fs::read(run.join("config.json")).unwrap(), b"{}");
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
    fn stale_temporaries_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acts.npz");
        // PID 4194304 is above Linux's pid_max: no such process.
        let stale = dir.path().join(format!(
            ".acts.npz.repsim-tmp-{}-4194304-0",
            repsim_durable::process_scope()
        ));
        let old_style = dir.path().join(".acts.npz.4194304.partial");
        std::fs::write(&stale, b"half").unwrap();
        std::fs::write(&old_style, b"half").unwrap();
        // An earlier version's temporary counts as left behind once older than a lease.
        let old = std::time::SystemTime::now()
            - repsim_durable::lease()
            - std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&old_style)
            .unwrap()
            .set_modified(old)
            .unwrap();
        check_output(&path, "--out", &["npz"], &[]).unwrap();
        assert!(!stale.exists() && !old_style.exists());
    }

    #[test]
    fn a_full_disk_fails_the_write_even_when_everything_fits_the_buffer() {
        // /dev/full accepts the open and fails every write with ENOSPC: a small document sits
        // in the buffer until the flush, where the error must not be dropped.
        if !Path::new("/dev/full").exists() {
            return;
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let mut writer = std::io::BufWriter::new(file);
        let err = json_into(&mut writer, &serde_json::json!({"a": 1}))
            .and_then(|_| writer.flush())
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(28), "{err}"); // ENOSPC
    }
}
