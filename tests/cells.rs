//! Experiments as plans of cells (`--plan`, `--cell`, `--slurm`), through the `repsim` binary:
//! the plan is stable and writes nothing; every cell, run in another order, gives the
//! single-process run's numbers and figures; the report refuses while cells are missing; a
//! complete cell returns at once; a cell killed mid-training resumes; and on a real Slurm
//! cluster (`tests/slurm/up.sh`; required where `REPSIM_REQUIRE_SLURM` is set) the submitted
//! plan gives the single-process results.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{ok, repsim, text};
use serde_json::Value;

/// The experiments run one at a time (each uses every core).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// `repsim experiment wide_vs_deep --smoke --out OUT` plus `extra`.
fn smoke(out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "experiment",
        "wide_vs_deep",
        "--smoke",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    repsim(&args)
}

fn plan_lines(out: &Path, stage: &str) -> Vec<String> {
    let output = ok(smoke(
        out,
        &["--plan", "--plan-format", "lines", "--plan-stage", stage],
    ));
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn run_line(line: &str) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(line)
        .env("REPSIM_DEVICE", "flex")
        .output()
        .unwrap()
}

/// `results.json` without its provenance (wall times differ from run to run).
fn results(out: &Path) -> Value {
    let text = std::fs::read_to_string(out.join("results.json")).unwrap();
    let mut value: Value = serde_json::from_str(&text).unwrap();
    value.as_object_mut().unwrap().remove("provenance");
    value
}

fn figures(out: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// `wide_vs_deep`'s smoke configuration with the numbers `changes` set, written to
/// `DIR/config.json` (for `--config`).
fn smoke_config(dir: &Path, changes: &[(&str, u64)]) -> PathBuf {
    let mut config: Value = serde_json::to_value(
        repsim::experiments::wide_vs_deep::WideVsDeepConfig::for_scale(
            repsim::experiments::Scale::Smoke,
        ),
    )
    .unwrap();
    for (key, value) in changes {
        config[*key] = Value::from(*value);
    }
    let path = dir.join("config.json");
    std::fs::write(&path, config.to_string()).unwrap();
    path
}

/// Every cell in order in one process (`--jobs 1`; by default the trainings run side by side as
/// processes on a CPU).
fn single_process(dir: &Path) -> PathBuf {
    let out = dir.join("single");
    ok(smoke(&out, &["--jobs", "1"]));
    out
}

#[test]
fn the_plan_is_stable_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let first = ok(smoke(&out, &["--plan"])).stdout;
    let second = ok(smoke(&out, &["--plan"])).stdout;
    assert_eq!(first, second);
    assert!(!out.exists(), "--plan wrote {}", out.display());
    let plan: Value = serde_json::from_slice(&first).unwrap();
    let cells = plan["cells"].as_array().unwrap();
    let ids: Vec<&str> = cells.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "train-resnet8x1",
            "train-resnet8x2",
            "train-resnet8x1-seed2",
            "analysis-resnet8x1",
            "analysis-resnet8x2",
            "analysis-resnet8x1-seed2",
            "analysis-cross",
            "report"
        ]
    );
    assert_eq!(cells[3]["needs"], serde_json::json!(["train-resnet8x1"]));
    assert_eq!(cells[7]["needs"].as_array().unwrap().len(), 7);
    let command = cells[0]["command"].as_str().unwrap();
    assert!(command.ends_with("--cell train-resnet8x1"), "{command}");
    assert!(
        command.contains(&format!("--out {}", out.display())),
        "{command}"
    );
    // The lines are the same commands.
    let lines = plan_lines(&out, "train");
    assert_eq!(lines[0], command);
    assert_eq!(lines.len(), 3);
    assert!(!out.exists());
}

#[test]
fn cells_in_any_order_give_the_single_process_results() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let single = single_process(dir.path());
    let out = dir.path().join("cells");

    // The report refuses while its cells are missing, listing them, and leaves no OUT.
    let refused = smoke(&out, &["--cell", "report"]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(!out.exists(), "a refused cell left {}", out.display());
    let message = text(&refused);
    assert!(
        message.contains("7 cells") || message.contains("6 cells"),
        "{message}"
    );
    assert!(message.contains("train-resnet8x2"), "{message}");
    assert!(message.contains("analysis-cross"), "{message}");

    // Each stage's cells in reverse order, two at a time.
    for stage in ["train", "analysis"] {
        let lines = plan_lines(&out, stage);
        for pair in lines.rchunks(2) {
            let handles: Vec<_> = pair
                .iter()
                .map(|line| {
                    let line = line.clone();
                    std::thread::spawn(move || run_line(&line))
                })
                .collect();
            for handle in handles {
                ok(handle.join().unwrap());
            }
        }
    }
    let report = plan_lines(&out, "report");
    ok(run_line(&report[0]));
    assert_eq!(results(&out), results(&single));
    assert_eq!(figures(&out), figures(&single));

    // A complete cell returns at once and says so.
    let again = ok(smoke(&out, &["--cell", "analysis-cross"]));
    assert!(
        text(&again).contains("already complete"),
        "{}",
        text(&again)
    );
    let again = ok(smoke(&out, &["--cell", "train-resnet8x1"]));
    assert!(
        text(&again).contains("already complete"),
        "{}",
        text(&again)
    );
    // Running a complete training cell again changes no result: the report stays complete
    // and results.json stays the single process's.
    let again = ok(run_line(&report[0]));
    assert!(
        text(&again).contains("already complete"),
        "{}",
        text(&again)
    );
    assert_eq!(results(&out), results(&single));
    // A damaged results.json is written again, not kept as complete.
    std::fs::write(out.join("results.json"), "{").unwrap();
    let again = ok(run_line(&report[0]));
    assert!(
        !text(&again).contains("already complete"),
        "{}",
        text(&again)
    );
    assert_eq!(results(&out), results(&single));

    // An unknown cell is bad input, naming the cells there are.
    let unknown = smoke(&out, &["--cell", "train-resnet9"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown).contains("train-resnet8x1-seed2"));

    // An analysis cell refuses when a training it needs is gone, naming it.
    std::fs::remove_file(out.join("runs/resnet8x2/model.bpk")).unwrap();
    let refused = smoke(&out, &["--cell", "analysis-resnet8x2"]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("train-resnet8x2"),
        "{}",
        text(&refused)
    );
}

#[test]
fn trainings_as_local_processes_give_the_single_process_results() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let single = single_process(dir.path());
    let out = dir.path().join("jobs");
    ok(smoke(&out, &["--jobs", "2"]));
    assert_eq!(results(&out), results(&single));
    assert_eq!(figures(&out), figures(&single));
    for id in [
        "train-resnet8x1",
        "train-resnet8x2",
        "train-resnet8x1-seed2",
    ] {
        let log = std::fs::read_to_string(out.join("logs").join(format!("{id}.log"))).unwrap();
        assert!(log.contains(&format!("cell {id}: done")), "{id}: {log}");
        let record: Value = serde_json::from_str(
            &std::fs::read_to_string(out.join("cells").join(format!("{id}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(record["reused"], Value::Bool(false), "{id}");
    }
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        summary.contains("the trainings 2 at a time, each a process of"),
        "{summary}"
    );
    let provenance: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert!(provenance["provenance"]["train_seconds"].as_f64().unwrap() > 0.0);

    // A training that cannot run fails the stage, naming its cell and log; nothing is analysed.
    let broken = dir.path().join("broken");
    std::fs::create_dir_all(broken.join("runs")).unwrap();
    std::fs::write(broken.join("runs/resnet8x2"), "not a run directory").unwrap();
    let failed = smoke(&broken, &["--jobs", "2"]);
    let message = text(&failed);
    assert!(!failed.status.success(), "{message}");
    assert!(message.contains("cell train-resnet8x2 failed"), "{message}");
    assert!(message.contains("train-resnet8x2.log"), "{message}");
    assert!(!message.contains("train-resnet8x1 failed"), "{message}");
    assert!(!broken.join("summary.md").exists());
}

/// The cell processes (`--cell`) whose command line holds `needle`, by PID.
#[cfg(target_os = "linux")]
fn cells_with(needle: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let words = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            (words.contains(needle) && words.contains(" --cell ")).then_some(pid)
        })
        .collect()
}

#[test]
#[cfg(target_os = "linux")]
fn killing_a_run_ends_its_training_processes() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    // The smoke grid trained long enough to be killed mid-training.
    let config_path = smoke_config(dir.path(), &[("epochs", 200)]);
    let out = dir.path().join("killed");
    let mut run = Command::new(env!("CARGO_BIN_EXE_repsim"))
        .args(["experiment", "wide_vs_deep", "--quiet", "--jobs", "2"])
        .arg("--config")
        .arg(&config_path)
        .arg("--out")
        .arg(&out)
        .env("REPSIM_DEVICE", "flex")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let out_flag = format!("--out {} ", out.display());
    wait_for(
        || cells_with(&out_flag).len() >= 2,
        Duration::from_secs(60),
        "two training processes",
    );
    run.kill().unwrap(); // SIGKILL: no handler of its own runs
    run.wait().unwrap();
    wait_for(
        || cells_with(&out_flag).is_empty(),
        Duration::from_secs(30),
        "the training processes to end with their run",
    );
    assert!(!out.join("summary.md").exists());
}

/// Waits until `path` exists (or panics after `limit`).
fn wait_for(path: impl Fn() -> bool, limit: Duration, what: &str) {
    let started = Instant::now();
    while !path() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_training_cell_killed_mid_training_resumes_to_the_same_result() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    // The smoke configuration for six epochs, so there is a checkpoint to resume from.
    let config_path = smoke_config(dir.path(), &[("epochs", 6), ("train_count", 512)]);
    let config_flag = config_path.to_str().unwrap();
    let run = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "experiment",
            "wide_vs_deep",
            "--quiet",
            "--config",
            config_flag,
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(extra);
        repsim(&args)
    };
    let single = dir.path().join("single");
    ok(run(&single, &["--jobs", "1"]));

    let out = dir.path().join("cells");
    let mut child = Command::new(env!("CARGO_BIN_EXE_repsim"))
        .args([
            "experiment",
            "wide_vs_deep",
            "--quiet",
            "--config",
            config_flag,
            "--out",
            out.to_str().unwrap(),
            "--cell",
            "train-resnet8x2",
        ])
        .env("REPSIM_DEVICE", "flex")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let checkpoints = out.join("runs/resnet8x2/checkpoints");
    wait_for(
        || {
            std::fs::read_dir(&checkpoints)
                .map(|d| {
                    // A checkpoint exists once its manifest `epoch-NNNN.json` does.
                    d.flatten()
                        .any(|e| e.path().extension().is_some_and(|x| x == "json"))
                })
                .unwrap_or(false)
        },
        Duration::from_secs(120),
        "the first checkpoint",
    );
    child.kill().unwrap(); // SIGKILL, as a scheduler's preemption
    child.wait().unwrap();
    assert!(
        !out.join("runs/resnet8x2/model.bpk").exists(),
        "the cell finished before it was killed: make the training longer"
    );
    let resumed = ok(run(&out, &["--cell", "train-resnet8x2"]));
    assert!(text(&resumed).contains("resuming"), "{}", text(&resumed));
    // The rest of the plan, in order.
    let output = ok(run(&out, &["--plan", "--plan-format", "lines"]));
    for line in String::from_utf8(output.stdout).unwrap().lines() {
        ok(run_line(line));
    }
    assert_eq!(results(&out), results(&single));
}

/// The Slurm cluster of `tests/slurm/up.sh`, when `sbatch` reaches one.
fn slurm_available() -> bool {
    Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty())
}

/// The state of Slurm job `id` (`COMPLETED`, `FAILED`, ...; array jobs: every task's).
fn job_states(id: &str) -> Vec<String> {
    let output = Command::new("scontrol")
        .args(["show", "job", id])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("JobState="))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_plan_submitted_to_slurm_gives_the_single_process_results() {
    if !slurm_available() {
        assert!(
            std::env::var_os("REPSIM_REQUIRE_SLURM").is_none(),
            "REPSIM_REQUIRE_SLURM is set but sinfo reaches no Slurm cluster (start one with tests/slurm/up.sh)"
        );
        eprintln!("skipped: no Slurm cluster (start one with tests/slurm/up.sh)");
        return;
    }
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let single = single_process(dir.path());
    let out = dir.path().join("slurm");
    let submitted = ok(smoke(
        &out,
        &["--slurm", "--slurm-opts", "--time=30", "--submit"],
    ));
    let printed = text(&submitted);
    let report_job = printed
        .lines()
        .find_map(|l| l.strip_prefix("report: job "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no report job in: {printed}"))
        .to_string();
    assert!(printed.contains("squeue -j"), "{printed}");
    let started = Instant::now();
    loop {
        let states = job_states(&report_job);
        let done = states.iter().any(|s| {
            !matches!(
                s.as_str(),
                "PENDING" | "RUNNING" | "CONFIGURING" | "COMPLETING"
            )
        });
        if done {
            assert_eq!(
                states,
                ["COMPLETED"],
                "report job {report_job}: {}",
                std::fs::read_to_string(out.join("logs/report.log")).unwrap_or_default()
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the Slurm jobs did not finish in 10 minutes (states {states:?})"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(results(&out), results(&single));
    assert_eq!(figures(&out), figures(&single));
    for cell in ["train-resnet8x1", "analysis-cross", "report"] {
        let log = std::fs::read_to_string(out.join(format!("logs/{cell}.log"))).unwrap();
        assert!(log.contains(&format!("cell {cell}:")), "{log}");
    }
}

/// Every configuration the book documents (`examples/configs/NAME_*.json`) is a valid
/// configuration of its experiment: its plan is made (and nothing written), and the bottom_up
/// ones plan the networks and seeds they say.
#[test]
fn every_documented_config_plans() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let dir = tempfile::tempdir().unwrap();
    let mut seen = 0;
    for entry in std::fs::read_dir(root.join("examples/configs"))
        .unwrap()
        .flatten()
    {
        let path = entry.path();
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let name = [
            "wide_vs_deep",
            "bottom_up",
            "memorize_vs_generalize",
            "resnet_depths",
        ]
        .into_iter()
        .find(|n| file.starts_with(n))
        .unwrap_or_else(|| panic!("{file} names no experiment"));
        let out = dir.path().join(&file);
        let o = repsim(&[
            "experiment",
            name,
            "--config",
            path.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--plan",
        ]);
        assert!(
            o.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(!out.exists(), "{file}: --plan wrote {}", out.display());
        let plan: Value = serde_json::from_slice(&o.stdout).unwrap();
        let cells = plan["cells"].as_array().unwrap().len();
        if file == "bottom_up_every_epoch.json" || file == "bottom_up_every_20_steps.json" {
            // One seed of three networks, the analysis and the report.
            assert_eq!(cells, 5, "{file}");
        }
        seen += 1;
    }
    assert!(seen >= 5, "only {seen} configurations");
}
