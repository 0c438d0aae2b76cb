//! Faults: a training, a tracked training and an experiment killed at every file rename they
//! make (`strace -e inject=rename:signal=KILL:when=K`), resumed, and compared with an
//! uninterrupted run; and one test per fault of issue 25 (a run without its config, a lock
//! reached through a symbolic link, a divergence in the last step, resuming with other
//! tracking options, an output inside an input run, leftovers of killed processes, text files
//! too short, metrics validated before any is computed); and of issue 32, the run lock and the
//! stale-temporary cleanup across PID namespaces (`unshare -p -f --mount-proc`: a process
//! whose PIDs mean nothing here, as on another machine sharing the directory).
//!
//! The kill loops need `strace` (Debian's package), the namespace tests `unshare` as root;
//! without them they say so and pass, unless `REPSIM_REQUIRE_STRACE=1` /
//! `REPSIM_REQUIRE_UNSHARE=1` (as in CI, whose script installs strace; unshare is util-linux).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::repsim;
use repsim::similarity::ConvMode;
use repsim::train::{Tracker, TrackerConfig};
use serde_json::Value;

/// One test at a time: the kill loops compare weights bit for bit, and repsim processes
/// running beside each other would only slow each other down.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// A small CNN on 256 shapes images: about a second per run.
const BASE: &[&str] = &[
    "--model",
    "cnn",
    "--depth",
    "3",
    "--width",
    "8",
    "--data",
    "shapes",
    "--side",
    "16",
    "--train-count",
    "256",
    "--test-count",
    "128",
    "--batch-size",
    "64",
    "--seed",
    "0",
    "--quiet",
    "--device",
    "flex",
];

/// Tracking every epoch on 64 probe images, conv maps pooled to 2 x 2.
const TRACK: &[&str] = &[
    "--track",
    "every-epoch",
    "--probe-count",
    "64",
    "--conv",
    "pool=2",
];

fn train(out: &Path, epochs: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "train".into(),
        "--out".into(),
        out.display().to_string(),
        "--epochs".into(),
        epochs.into(),
    ];
    args.extend(BASE.iter().map(|s| s.to_string()));
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn run(args: &[String]) -> Output {
    repsim(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Whether `program ARGS` runs and succeeds here; where it does not, the tests that need it
/// say so and pass, unless `require` (an environment variable, set in CI) asks for it.
fn tool_works(program: &str, args: &[&str], require: &str, what: &str) -> bool {
    let works = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !works {
        assert!(
            std::env::var_os(require).is_none(),
            "{program} is required ({require}) but cannot run here"
        );
        eprintln!("{program} cannot run here: {what} are skipped");
    }
    works
}

/// Whether strace can trace here; with `REPSIM_REQUIRE_STRACE=1`, its absence fails the test.
fn strace_available() -> bool {
    tool_works(
        "strace",
        &["-qq", "-o", "/dev/null", "true"],
        "REPSIM_REQUIRE_STRACE",
        "the kill-at-every-rename tests",
    )
}

/// The number of `rename` system calls `repsim ARGS` makes.
fn renames(args: &[String], log: &Path) -> usize {
    let status = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=rename", "-o"])
        .arg(log)
        .arg(env!("CARGO_BIN_EXE_repsim"))
        .args(args)
        .env("REPSIM_DEVICE", "flex")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "the traced run failed: {args:?}");
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .filter(|l| l.contains("rename("))
        .count()
}

/// `repsim ARGS`, killed (SIGKILL) at the entry of its `k`-th rename.
fn killed_at(args: &[String], k: usize) -> Output {
    Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "-e", "trace=rename", "-e"])
        .arg(format!("inject=rename:signal=KILL:when={k}"))
        .arg(env!("CARGO_BIN_EXE_repsim"))
        .args(args)
        .env("REPSIM_DEVICE", "flex")
        .output()
        .unwrap()
}

/// Every path under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

/// Nothing a killed process could leave: no temporary, no checkpoint folder without its
/// manifest, no lock beside the run.
fn assert_clean(run_dir: &Path) {
    for path in walk(run_dir) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !name.contains(".repsim-tmp-") && !name.ends_with(".partial"),
            "left behind: {}",
            path.display()
        );
        if path.is_dir() && name.starts_with("epoch-") {
            let manifest = path.with_file_name(format!("{name}.json"));
            assert!(
                manifest.exists(),
                "a checkpoint without manifest: {}",
                path.display()
            );
        }
    }
    let parent = run_dir.parent().unwrap();
    for entry in std::fs::read_dir(parent).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(!name.ends_with(".lock"), "a lock was left: {name}");
    }
}

/// Every float tensor of a run's final weights (parameters and batch-norm statistics), in
/// visit order: what must equal bit for bit (the weight files themselves differ in burn's
/// random parameter ids).
fn weights(run_dir: &Path) -> Vec<f32> {
    use burn::module::{Module, ModuleVisitor, Param};
    use burn::tensor::{Device, Tensor};
    struct Collect(Vec<f32>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.extend(param.val().try_into_vec_as::<f32>().unwrap());
        }
    }
    let record: repsim::train::RunRecord =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("config.json")).unwrap())
            .unwrap();
    let model = record
        .config
        .model
        .init_with_weights(&run_dir.join("model.bpk"), &Device::flex())
        .unwrap();
    let repsim::model::AnyModel::Cnn(cnn) = model else {
        panic!("the fault tests train a CNN");
    };
    let mut collect = Collect(Vec::new());
    cnn.visit(&mut collect);
    collect.0
}

/// `metrics.jsonl` without its timings (seconds, examples per second), value for value.
fn metrics_without_timings(run_dir: &Path) -> Vec<BTreeMap<String, Value>> {
    std::fs::read_to_string(run_dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|line| {
            let mut m: BTreeMap<String, Value> = serde_json::from_str(line).unwrap();
            m.remove("seconds");
            m.remove("examples_per_second");
            m
        })
        .collect()
}

/// The tracker's convergence tables of a run, as (metric, row-major values).
fn tracker_tables(run_dir: &Path) -> Vec<(String, Vec<Option<f64>>)> {
    let config = TrackerConfig::new(run_dir.join("track")).with_conv(ConvMode::Pool { size: 2 });
    let mut tracker = Tracker::open(config).unwrap();
    tracker
        .finish()
        .unwrap()
        .convergence
        .into_iter()
        .map(|t| (t.metric, t.matrix.values.into_iter().flatten().collect()))
        .collect()
}

fn assert_close_tables(
    a: &[(String, Vec<Option<f64>>)],
    b: &[(String, Vec<Option<f64>>)],
    k: usize,
) {
    assert_eq!(a.len(), b.len());
    for ((ma, va), (mb, vb)) in a.iter().zip(b) {
        assert_eq!(ma, mb);
        assert_eq!(va.len(), vb.len(), "{ma} after a kill at rename {k}");
        for (x, y) in va.iter().zip(vb) {
            match (x, y) {
                (Some(x), Some(y)) => assert!(
                    (x - y).abs() < 1e-6,
                    "{ma} after a kill at rename {k}: {x} vs {y}"
                ),
                (x, y) => assert_eq!(x, y, "{ma} after a kill at rename {k}"),
            }
        }
    }
}

/// For every k of `total`: `killed(DIR/killed-k)` killed at its k-th rename, then
/// `rerun(DIR/killed-k)` run to the end (it must succeed), then `check(k, DIR/killed-k)`.
fn after_a_kill_at_every_rename(
    dir: &Path,
    total: usize,
    killed: impl Fn(&Path) -> Vec<String>,
    rerun: impl Fn(&Path) -> Vec<String>,
    mut check: impl FnMut(usize, &Path),
) {
    for k in 1..=total {
        let out = dir.join(format!("killed-{k}"));
        let stopped = killed_at(&killed(&out), k);
        assert!(!stopped.status.success(), "not killed at rename {k}");
        let again = run(&rerun(&out));
        assert!(
            again.status.success(),
            "rerun after a kill at rename {k}: {}",
            stderr(&again)
        );
        check(k, &out);
        std::fs::remove_dir_all(&out).unwrap();
    }
}

#[test]
fn a_tracked_training_killed_at_every_rename_resumes_to_the_uninterrupted_run() {
    let _one = one_at_a_time();
    if !strace_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference");
    let reference_args = train(&reference, "2", TRACK);
    let total = renames(&reference_args, &dir.path().join("renames.log"));
    assert!(total > 10, "only {total} renames");
    eprintln!("the tracked training makes {total} renames");
    let expected_weights = weights(&reference);
    let metrics = metrics_without_timings(&reference);
    let tables = tracker_tables(&reference);
    let resume = |run_dir: &Path| {
        let mut args = train(run_dir, "2", TRACK);
        args.push("--resume".into());
        args
    };
    let killed = |run_dir: &Path| train(run_dir, "2", TRACK);
    after_a_kill_at_every_rename(dir.path(), total, killed, resume, |k, run_dir| {
        let got = weights(&run_dir);
        assert_eq!(got.len(), expected_weights.len());
        if let Some(i) = (0..got.len()).find(|&i| got[i].to_bits() != expected_weights[i].to_bits())
        {
            panic!(
                "the weights after a kill at rename {k} differ from the uninterrupted run's at value {i}: {} vs {}",
                got[i], expected_weights[i]
            );
        }
        assert_eq!(
            metrics_without_timings(&run_dir),
            metrics,
            "metrics after rename {k}"
        );
        let index = Tracker::open(
            TrackerConfig::new(run_dir.join("track")).with_conv(ConvMode::Pool { size: 2 }),
        )
        .unwrap()
        .index()
        .epochs
        .clone();
        assert_eq!(
            index,
            [0, 1, 2],
            "the tracker's epochs after a kill at rename {k}"
        );
        assert_close_tables(&tracker_tables(&run_dir), &tables, k);
        assert_clean(run_dir);
    });
}

/// A tiny `memorize_vs_generalize`: four CNNs of two epochs on 64 images.
fn tiny_experiment(dir: &Path, out: &Path) -> Vec<String> {
    let config = dir.join("tiny.json");
    if !config.exists() {
        std::fs::write(
            &config,
            r#"{"group_size": 2, "side": 16, "train_count": 64, "test_count": 64,
                "epochs": 2, "cnn": [3, 8], "pool": 2, "lr": 0.003}"#,
        )
        .unwrap();
    }
    vec![
        "experiment".into(),
        "memorize_vs_generalize".into(),
        "--config".into(),
        config.display().to_string(),
        "--out".into(),
        out.display().to_string(),
        "--quiet".into(),
        "--device".into(),
        "flex".into(),
        // One process: strace counts each process's renames apart, so the k-th rename is one
        // place only in a run of one process. A training cell's own process killed at any point
        // is the cells' test (tests/cells.rs); it writes its files with the same code.
        "--jobs".into(),
        "1".into(),
    ]
}

/// results.json without provenance and timings.
fn results_without_timings(out: &Path) -> Value {
    let mut r: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    r.as_object_mut().unwrap().remove("provenance");
    r
}

#[test]
fn an_experiment_killed_at_every_rename_gives_the_uninterrupted_results() {
    let _one = one_at_a_time();
    if !strace_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference");
    let total = renames(
        &tiny_experiment(dir.path(), &reference),
        &dir.path().join("renames.log"),
    );
    assert!(total > 20, "only {total} renames");
    eprintln!("the experiment makes {total} renames");
    let expected = results_without_timings(&reference);
    let args = |out: &Path| tiny_experiment(dir.path(), out);
    after_a_kill_at_every_rename(dir.path(), total, args, args, |k, out| {
        assert_eq!(
            results_without_timings(&out),
            expected,
            "results.json after a kill at rename {k}"
        );
        for run_dir in std::fs::read_dir(out.join("runs")).unwrap().flatten() {
            assert_clean(&run_dir.path());
        }
        for path in walk(&out) {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            assert!(!name.contains(".repsim-tmp-"), "left: {}", path.display());
        }
    });
}

#[test]
fn resuming_without_config_json_is_refused_and_mixes_nothing() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("r");
    assert!(run(&train(&run_dir, "2", &[])).status.success());
    std::fs::remove_file(run_dir.join("config.json")).unwrap();
    let before = std::fs::read(run_dir.join("model.bpk")).unwrap();
    let o = run(&train(&run_dir, "3", &["--resume", "--lr", "0.2"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("config.json"), "{}", stderr(&o));
    assert_eq!(std::fs::read(run_dir.join("model.bpk")).unwrap(), before);
    assert!(!run_dir.join("config.json").exists());
}

#[test]
fn the_lock_holds_through_a_symbolic_link() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("two2");
    std::fs::create_dir(&real).unwrap();
    let link = dir.path().join("two2_link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    // A live process (this test) holds the run's lock, under the run's own name.
    let _held = repsim_durable::DirLock::acquire(&dir.path().join(".two2.lock")).unwrap();
    let o = run(&train(&link, "1", &["--overwrite"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("another process"), "{}", stderr(&o));
    assert!(std::fs::read_dir(&real).unwrap().next().is_none());
}

#[test]
fn a_divergence_in_the_last_step_is_not_saved_as_success() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("r");
    let mut args = train(&run_dir, "1", &[]);
    for (flag, value) in [("--train-count", "64"), ("--batch-size", "64")] {
        let at = args.iter().position(|a| a == flag).unwrap();
        args[at + 1] = value.into();
    }
    args.extend(["--lr".to_string(), "1e8".to_string()]);
    let o = run(&args);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("diverged") || stderr(&o).contains("loss became"),
        "{}",
        stderr(&o)
    );
    assert!(!run_dir.join("model.bpk").exists());
    assert!(!run_dir.join("checkpoints/epoch-0001.json").exists());
}

#[test]
fn resuming_with_other_tracking_options_is_refused() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("r");
    assert!(run(&train(&run_dir, "2", TRACK)).status.success());
    // Another conv mode.
    let mut other = TRACK.to_vec();
    *other.last_mut().unwrap() = "flatten";
    let mut extra = other.clone();
    extra.push("--resume");
    let o = run(&train(&run_dir, "2", &extra));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("track.conv"), "{}", stderr(&o));
    // Without --track.
    let o = run(&train(&run_dir, "2", &["--resume"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--track"), "{}", stderr(&o));
    // A deleted index.json: refused, naming it.
    std::fs::remove_file(run_dir.join("track/index.json")).unwrap();
    let mut extra = TRACK.to_vec();
    extra.push("--resume");
    let o = run(&train(&run_dir, "2", &extra));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("index.json"), "{}", stderr(&o));
    let metrics = std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 2, "nothing was trained");
}

#[test]
fn compare_never_writes_inside_an_input_run() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("r");
    assert!(run(&train(&run_dir, "1", &[])).status.success());
    let config = std::fs::read(run_dir.join("config.json")).unwrap();
    let run_str = run_dir.display().to_string();
    let json = run_dir.join("config.json").display().to_string();
    let o = repsim(&[
        "compare", &run_str, &run_str, "--count", "64", "--json", &json,
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("inside the input directory"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(run_dir.join("config.json")).unwrap(), config);
}

#[test]
fn leftovers_of_killed_processes_are_removed_on_resume() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("r");
    assert!(run(&train(&run_dir, "2", TRACK)).status.success());
    // PID 4194304 is above Linux's pid_max: its process is gone. The names carry this host's
    // scope (host, boot, PID namespace: the repsim process below shares it), or are the forms of
    // earlier versions, which count as left behind once older than a lease.
    let here = repsim_durable::process_scope();
    let planted = [
        run_dir.join(".model.bpk.4194304.partial"),
        run_dir.join(format!(".metrics.jsonl.repsim-tmp-{here}-4194304-0")),
        run_dir.join(format!(
            "checkpoints/.epoch-0001.json.repsim-tmp-{here}-4194304-3"
        )),
        run_dir.join("checkpoints/epoch-0001/.state.json.repsim-tmp-4194304"),
        run_dir.join(format!("track/.index.json.repsim-tmp-{here}-4194304-0")),
    ];
    let old =
        std::time::SystemTime::now() - repsim_durable::lease() - std::time::Duration::from_secs(5);
    for path in &planted {
        std::fs::write(path, b"half").unwrap();
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    // A half-pruned checkpoint: its manifest gone, part of its folder left.
    std::fs::create_dir_all(run_dir.join("checkpoints/epoch-0000")).unwrap();
    std::fs::write(run_dir.join("checkpoints/epoch-0000/state.json"), b"{").unwrap();
    let mut extra = TRACK.to_vec();
    extra.push("--resume");
    let o = run(&train(&run_dir, "2", &extra));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("left by an interrupted run"));
    for path in &planted {
        assert!(!path.exists(), "{} is still there", path.display());
    }
    assert!(!run_dir.join("checkpoints/epoch-0000").exists());
    assert_clean(&run_dir);
    // A finished run resumed again (nothing left to train) is cleaned up too.
    std::fs::write(&planted[1], b"half").unwrap();
    let o = run(&train(&run_dir, "2", &extra));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!planted[1].exists());
}

#[test]
fn a_corrupt_only_checkpoint_is_reported_once_and_truthfully() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("r");
    // A run of 2 epochs whose newest checkpoint lost its manifest (killed while saving it)
    // and whose only other checkpoint is truncated.
    assert!(run(&train(&run_dir, "2", &[])).status.success());
    std::fs::remove_file(run_dir.join("checkpoints/epoch-0002.json")).unwrap();
    let model = run_dir.join("checkpoints/epoch-0001/model.bpk");
    let bytes = std::fs::read(&model).unwrap();
    std::fs::write(&model, &bytes[..bytes.len() / 2]).unwrap();
    let o = run(&train(&run_dir, "2", &["--resume"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(
        err.matches("incomplete or corrupt").count(),
        1,
        "the warning once: {err}"
    );
    assert!(err.contains("training from the start"), "{err}");
    assert!(!err.contains("using an earlier one"), "{err}");
}

#[test]
fn text_files_that_cannot_be_used_are_bad_input() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let lm = |data: &str, out: &Path| -> Vec<String> {
        vec![
            "train".into(),
            "--model".into(),
            "lstm-lm".into(),
            "--data".into(),
            data.into(),
            "--epochs".into(),
            "1".into(),
            "--quiet".into(),
            "--device".into(),
            "flex".into(),
            "--out".into(),
            out.display().to_string(),
        ]
    };
    let missing = dir.path().join("missing.txt");
    let o = run(&lm(
        &format!("text={}", missing.display()),
        &dir.path().join("a"),
    ));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("missing.txt"), "{}", stderr(&o));
    let short = dir.path().join("short.txt");
    std::fs::write(&short, "abcdefghij").unwrap();
    let o = run(&lm(
        &format!("text={}", short.display()),
        &dir.path().join("b"),
    ));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("short.txt") && err.contains("training split"),
        "{err}"
    );
    assert!(
        err.contains("9 characters") && !err.contains("1 characters"),
        "{err}"
    );
}

#[test]
fn every_metric_is_checked_before_any_is_computed() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    // 60 examples of a 200-feature layer: SVCCA can run, PWCCA cannot.
    let acts = dir.path().join("wide.npz");
    let o = repsim(&[
        "activations",
        "--model",
        "cnn",
        "--depth",
        "3",
        "--width",
        "8",
        "--side",
        "16",
        "--count",
        "60",
        "--probe",
        "names=layer1",
        "--out",
        acts.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let a = acts.to_str().unwrap();
    let o = repsim(&["compare", a, a, "--metric", "svcca,pwcca"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("pwcca needs more examples"),
        "{}",
        stderr(&o)
    );
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("svcca ("),
        "SVCCA was computed before the check"
    );
}

/// Whether `unshare -p -f --mount-proc` (a new PID namespace with its own /proc) works here;
/// with `REPSIM_REQUIRE_UNSHARE=1` (CI) its absence fails the test.
fn unshare_available() -> bool {
    tool_works(
        "unshare",
        &["-p", "-f", "--mount-proc", "true"],
        "REPSIM_REQUIRE_UNSHARE",
        "the PID-namespace tests",
    )
}

/// `repsim ARGS` in a new PID namespace, where this machine's PIDs mean nothing (as on
/// another machine sharing the directory).
fn in_other_namespace(args: &[String], vars: &[(&str, &str)]) -> Output {
    Command::new("unshare")
        .args(["-p", "-f", "--mount-proc"])
        .arg(env!("CARGO_BIN_EXE_repsim"))
        .args(args)
        .env("REPSIM_DEVICE", "flex")
        .envs(vars.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn a_training_in_another_pid_namespace_is_refused_while_the_first_runs() {
    let _one = one_at_a_time();
    if !unshare_available() {
        return;
    }
    // Both kinds of lock: advisory (the default) and the lease of file systems without one.
    for mode in ["flock", "lease"] {
        let dir = tempfile::tempdir().unwrap();
        let run_dir = dir.path().join("r");
        let lock = dir.path().join(".r.lock");
        let args = train(&run_dir, "500", &[]);
        let mut first = Command::new(env!("CARGO_BIN_EXE_repsim"))
            .args(&args)
            .env("REPSIM_DEVICE", "flex")
            .env("REPSIM_LOCK", mode)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        while std::fs::read_to_string(&lock).map_or(true, |t| !t.contains("\"pid\"")) {
            assert!(
                started.elapsed().as_secs() < 120,
                "{mode}: the first training took no lock"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let second = in_other_namespace(&args, &[("REPSIM_LOCK", mode)]);
        let _ = first.kill();
        let _ = first.wait();
        assert_eq!(second.status.code(), Some(2), "{mode}: {}", stderr(&second));
        let message = stderr(&second);
        assert!(
            message.contains(&format!("another process (PID {} on", first.id()))
                && message.contains("another machine or PID namespace"),
            "{mode}: {message}"
        );
    }
}

#[test]
fn a_command_in_another_pid_namespace_keeps_the_live_temporaries_of_this_one() {
    let _one = one_at_a_time();
    if !unshare_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    // This test process stands for a live writer in OUT: a temporary named as repsim names
    // them, for this process.
    let live = repsim_durable::temporary_path(&out.join("results.json"));
    std::fs::write(&live, b"half").unwrap();
    // And one of a process of this namespace that is gone (PID above pid_max).
    let dead = out.join(format!(
        ".summary.md.repsim-tmp-{}-4194304-0",
        repsim_durable::process_scope()
    ));
    std::fs::write(&dead, b"half").unwrap();
    let layer = |name: &str, seed: u64| repsim::similarity::files::HostLayer {
        name: name.into(),
        shape: vec![64, 5],
        values: repsim::similarity::testing::random_values(64, 5, seed),
        stored_dtype: "f32",
    };
    let (a, b) = (dir.path().join("a.npy"), dir.path().join("b.npy"));
    repsim::similarity::files::write_npy(&a, &layer("a", 1)).unwrap();
    repsim::similarity::files::write_npy(&b, &layer("b", 2)).unwrap();
    // `compare --json OUT/x.json` cleans up OUT's stale temporaries before it writes.
    let args: Vec<String> = [
        "compare",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--json",
        out.join("x.json").to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let o = in_other_namespace(&args, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        live.exists(),
        "a live writer's temporary was removed from elsewhere"
    );
    // Its own namespace's leftovers: the PID there is another namespace's, so still kept...
    assert!(dead.exists());
    // ...until a process of this namespace, where the PID means something, sees it is gone.
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!dead.exists() && live.exists());
}
