//! `--jobs N`: an experiment's training cells as processes of their own on this machine, `N` at
//! a time, each with its share of the CPU cores as its thread pool (`RAYON_NUM_THREADS`); the
//! analysis and the report then run in this process
//! ([`crate::experiments::run_after_training_named`]).
//!
//! Why: at the experiments' scale (16 px images, batch 64, narrow ResNets) one training keeps
//! two cores only about three quarters busy, its matrix products being too small to split well
//! (the book's *Benchmarks*), while two trainings with one thread each keep both busy and do
//! not wait on each other. The numbers do not change: a training gives the same weights on any
//! number of threads (the kernels sum in fixed groups; a test runs an experiment both ways and
//! compares its results).
//!
//! Each cell's output goes to `OUT/logs/ID.log`, as under Slurm. The cells are started longest
//! first (by the plan's estimate of their work, [`Cell::work`]); a failed one stops new starts, the running ones are waited for, and the error
//! names the cell, its exit status, its log and the log's last lines.

use std::collections::VecDeque;
use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::Error as CliError;
use crate::experiments::{Cell, CellKind, Plan};

/// How many training cells run at once, and with how many threads each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Jobs {
    /// Processes at once.
    pub processes: usize,
    /// Threads of each (its `RAYON_NUM_THREADS`).
    pub threads: usize,
}

impl Jobs {
    /// `--jobs` (`asked`) for a plan of `trainings` training cells on `cores` cores, training
    /// on a CPU (`on_cpu`) or a GPU. Unset: one process per core on a CPU, up to the number of
    /// trainings, and one on a GPU (processes would queue on it). Each process gets an equal
    /// share of the cores, at least one thread.
    pub fn resolve(asked: Option<usize>, trainings: usize, cores: usize, on_cpu: bool) -> Jobs {
        let processes = match asked {
            Some(n) => n.max(1),
            None if on_cpu => cores.min(trainings).max(1),
            None => 1,
        };
        Jobs {
            processes,
            threads: (cores / processes).max(1),
        }
    }
}

/// Runs the training cells of `plan` as processes, `jobs.processes` at a time: each is
/// `base --cell ID`, with its output in its log. Returns once every one has ended; an error if
/// any failed (after the running ones ended), naming each failed cell and its log: bad input
/// (exit 2) when every failed cell exited so, a failure (exit 1) otherwise.
pub fn run_training_cells(plan: &Plan, base: &[String], jobs: Jobs) -> Result<(), CliError> {
    let (program, flags) = base
        .split_first()
        .ok_or_else(|| CliError::Failure("no program to run the cells with".into()))?;
    // The longest first, so that the last to end is a short one (ties in the plan's order).
    let mut trainings: Vec<&Cell> = plan.of_kind(CellKind::Train).collect();
    trainings.sort_by_key(|cell| std::cmp::Reverse(cell.work));
    let mut waiting: VecDeque<&Cell> = trainings.into();
    let total = waiting.len();
    let logs = plan.out.join("logs");
    std::fs::create_dir_all(&logs)
        .map_err(|e| CliError::Input(format!("{}: cannot create: {e}", logs.display())))?;
    let mut running: Vec<(&Cell, Child, Instant)> = Vec::new();
    let mut failed: Vec<String> = Vec::new();
    // Exit status 2 is bad input (the one rule of `crate::error`); the stage fails the same way
    // when every failed cell says so.
    let mut all_bad_input = true;
    let mut finished = 0;
    loop {
        while failed.is_empty() && running.len() < jobs.processes {
            let Some(cell) = waiting.pop_front() else {
                break;
            };
            let log_path = plan.log_path(&cell.id);
            match start(program, flags, cell, &log_path, jobs.threads) {
                Ok(child) => {
                    log::info!("cell {}: started (log: {})", cell.id, log_path.display());
                    running.push((cell, child, Instant::now()));
                }
                Err(why) => {
                    // Nothing more starts; the running cells are still waited for.
                    all_bad_input = false;
                    failed.push(format!("cell {}: {why}", cell.id));
                }
            }
        }
        if running.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        let mut index = 0;
        while index < running.len() {
            let status = running[index]
                .1
                .try_wait()
                .map_err(|e| CliError::Failure(format!("waiting for a cell: {e}")))?;
            let Some(status) = status else {
                index += 1;
                continue;
            };
            let (cell, _, started) = running.swap_remove(index);
            finished += 1;
            let log_path = plan.log_path(&cell.id);
            if status.success() {
                log::info!(
                    "cell {}: ended in {:.1} s ({finished} of {total} trainings)",
                    cell.id,
                    started.elapsed().as_secs_f64()
                );
            } else {
                all_bad_input &= status.code() == Some(2);
                failed.push(format!(
                    "cell {} failed ({status}); its log: {}{}",
                    cell.id,
                    log_path.display(),
                    last_lines(&log_path, 5)
                ));
            }
        }
    }
    match (failed.is_empty(), all_bad_input) {
        (true, _) => Ok(()),
        (false, true) => Err(CliError::Input(failed.join("\n"))),
        (false, false) => Err(CliError::Failure(failed.join("\n"))),
    }
}

/// Starts `program flags --cell ID` for `cell` with `threads` threads, its output in a new log
/// at `log_path`; why not, as a sentence.
fn start(
    program: &str,
    flags: &[String],
    cell: &Cell,
    log_path: &Path,
    threads: usize,
) -> Result<Child, String> {
    let log = File::create(log_path)
        .map_err(|e| format!("{}: cannot create: {e}", log_path.display()))?;
    let errors = log
        .try_clone()
        .map_err(|e| format!("{}: cannot share: {e}", log_path.display()))?;
    let mut command = Command::new(program);
    ends_with_this_process(&mut command);
    command
        .args(flags)
        .args(["--cell", &cell.id])
        .env("RAYON_NUM_THREADS", threads.to_string())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(errors)
        .spawn()
        .map_err(|e| format!("cannot start {program}: {e}"))
}

/// On Linux, the child is sent SIGTERM when this process ends, however it ends (a `kill`, a
/// crash), so no training goes on without the run that started it; Ctrl-C in a terminal reaches
/// every process of the group anyway. Elsewhere the children finish their cell on their own.
#[cfg(target_os = "linux")]
fn ends_with_this_process(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: between fork and exec the closure calls only prctl and getppid, which are
    // async-signal-safe, and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have ended before the request took effect.
            if libc::getppid() != parent {
                return Err(std::io::Error::other("the run that started it has ended"));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn ends_with_this_process(_command: &mut Command) {}

/// The last `count` lines of the log at `path`, indented on lines of their own after a colon
/// (nothing when it cannot be read or is empty).
fn last_lines(path: &Path, count: usize) -> String {
    let Ok(text) = std::fs::read_to_string(path) else {
        return String::new();
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    let tail = &lines[lines.len().saturating_sub(count)..];
    format!(
        ", ending:\n{}",
        tail.iter()
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_process_per_core_on_a_cpu_one_on_a_gpu() {
        let jobs = |asked, trainings, cores, cpu| {
            let j = Jobs::resolve(asked, trainings, cores, cpu);
            (j.processes, j.threads)
        };
        assert_eq!(jobs(None, 13, 2, true), (2, 1));
        assert_eq!(jobs(None, 13, 16, true), (13, 1));
        assert_eq!(jobs(None, 1, 2, true), (1, 2));
        assert_eq!(jobs(None, 13, 2, false), (1, 2));
        assert_eq!(jobs(Some(1), 13, 8, true), (1, 8));
        assert_eq!(jobs(Some(3), 13, 8, true), (3, 2));
        assert_eq!(jobs(Some(4), 13, 2, true), (4, 1));
        assert_eq!(jobs(Some(0), 13, 2, true), (1, 2));
    }

    #[test]
    fn a_log_ends_with_its_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cell.log");
        std::fs::write(&path, "one\ntwo\n\nthree\nfour\n").unwrap();
        assert_eq!(last_lines(&path, 2), ", ending:\n    three\n    four");
        assert_eq!(last_lines(&dir.path().join("none.log"), 2), "");
    }
}
