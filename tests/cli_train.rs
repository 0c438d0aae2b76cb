//! `repsim train` and `repsim track` as a user runs them: a run killed with SIGKILL at random
//! moments resumes every time; bad flags exit 2; the tracker's tables and plots come out.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::repsim;

const SMALL: &[&str] = &[
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
    "1200",
    "--test-count",
    "200",
    "--batch-size",
    "32",
    "--seed",
    "3",
    "--quiet",
    "--device",
    "flex",
];

/// SMALL's model and data flags alone (for `repsim activations` and `compare` on its weights).
fn small_model_and_data() -> &'static [&'static str] {
    &SMALL[..10]
}

/// A ResNet-8 on 1,200 shapes images: a few seconds per epoch.
const RESNET8: &[&str] = &[
    "--model",
    "resnet",
    "--depth",
    "8",
    "--data",
    "shapes",
    "--side",
    "16",
    "--train-count",
    "1200",
    "--test-count",
    "400",
    "--batch-size",
    "32",
    "--seed",
    "5",
    "--quiet",
    "--device",
    "flex",
];

/// `repsim train --out OUT --epochs EPOCHS` with `base` and `extra` flags.
fn args_with<'a>(
    base: &[&'a str],
    out: &'a str,
    epochs: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec!["train", "--out", out, "--epochs", epochs];
    args.extend_from_slice(base);
    args.extend_from_slice(extra);
    args
}

fn train_args<'a>(out: &'a str, epochs: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    args_with(SMALL, out, epochs, extra)
}

/// `args` with the values of flags it already sets replaced.
fn with_values<'a>(mut args: Vec<&'a str>, values: &[(&str, &'a str)]) -> Vec<&'a str> {
    for (flag, value) in values {
        let at = args
            .iter()
            .position(|a| a == flag)
            .unwrap_or_else(|| panic!("the base flags set {flag}"));
        args[at + 1] = value;
    }
    args
}

/// SMALL with `--resume`, width 16 and 4,000 training images: long enough (about 0.3 s per
/// epoch here) for kills to land in every phase of an epoch.
fn longer_args<'a>(out: &'a str, epochs: &'a str) -> Vec<&'a str> {
    with_values(
        args_with(SMALL, out, epochs, &["--resume"]),
        &[("--width", "16"), ("--train-count", "4000")],
    )
}

fn metrics_lines(run: &Path) -> usize {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

#[test]
fn a_run_killed_at_random_moments_resumes_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = run.to_str().unwrap();
    let epochs = "10";
    // A fixed sequence of "random" kill delays (an LCG), spread over start-up, training,
    // evaluation and checkpoint writes.
    let mut state: u64 = 0x2545_f491;
    let mut kills = 0;
    let started = Instant::now();
    while kills < 4 && started.elapsed() < Duration::from_secs(240) {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let delay = Duration::from_millis(150 + (state >> 33) % 900);
        let mut child = Command::new(env!("CARGO_BIN_EXE_repsim"))
            .args(longer_args(out, epochs))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_some() {
            break; // finished before the kill
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        // Whatever the moment, no half file: config and metrics parse, leftovers are only
        // our recognisable temporaries.
        if run.join("config.json").exists() {
            serde_json::from_str::<serde_json::Value>(
                &std::fs::read_to_string(run.join("config.json")).unwrap(),
            )
            .expect("config.json is whole");
        }
        if run.join("metrics.jsonl").exists() {
            repsim_train::read_metrics(&run).expect("metrics.jsonl is whole");
        }
    }
    assert!(kills >= 3, "the run finished after {kills} kills");
    let finished = repsim(&longer_args(out, epochs));
    assert!(
        finished.status.success(),
        "{}",
        String::from_utf8_lossy(&finished.stderr)
    );
    assert_eq!(metrics_lines(&run), 10);
    assert!(run.join("model.bpk").is_file());
    let leftovers: Vec<_> = std::fs::read_dir(&run)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("repsim-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn bad_flags_and_directories_exit_2_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let out = out.to_str().unwrap();
    for (args, needle) in [
        (train_args(out, "0", &[]), "epochs"),
        (train_args(out, "2", &["--lr", "-1"]), "learning rate"),
        (train_args(out, "2", &["--optimizer", "rmsprop"]), "rmsprop"),
        (train_args(out, "2", &["--schedule", "linear"]), "schedule"),
        (
            train_args(out, "2", &["--train-repeats", "0"]),
            "--train-repeats must be at least 1",
        ),
        (
            train_args(out, "2", &["--random-labels", "2"]),
            "random-label",
        ),
        (
            train_args(
                out,
                "2",
                &["--track", "every-epoch", "--probe-count", "5000"],
            ),
            "test split",
        ),
    ] {
        let o = repsim(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let o = repsim(&[
        "train", "--out", out, "--model", "resnet", "--depth", "9", "--epochs", "1", "--quiet",
        "--device", "flex",
    ]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // A non-empty directory without --resume or --overwrite.
    std::fs::create_dir_all(dir.path().join("full")).unwrap();
    std::fs::write(dir.path().join("full").join("x"), b"x").unwrap();
    let full = dir.path().join("full");
    let o = repsim(&train_args(full.to_str().unwrap(), "1", &[]));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not empty"));
}

#[test]
fn track_gives_convergence_tables_and_plots() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = run.to_str().unwrap();
    let o = repsim(&train_args(
        out,
        "3",
        &[
            "--track",
            "every-epoch",
            "--probe-count",
            "150",
            "--conv",
            "pool=2",
        ],
    ));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let plot = dir.path().join("conv.png");
    let o = repsim(&[
        "track",
        out,
        "--metric",
        "svcca,linear_cka",
        "--plot",
        plot.to_str().unwrap(),
        "--epoch",
        "3",
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("first epoch at 0.9"), "{stdout}");
    for name in [
        "conv_svcca.png",
        "conv_linear_cka.png",
        "conv_svcca_heatmap.png",
    ] {
        assert!(dir.path().join(name).is_file(), "{name} missing");
    }
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run.join("track").join("convergence.json")).unwrap(),
    )
    .unwrap();
    let table = &json["report"]["convergence"][0]["matrix"];
    assert_eq!(table["cols"].as_array().unwrap().len(), 4); // epochs 0..=3
    for row in table["values"].as_array().unwrap() {
        let last = row.as_array().unwrap().last().unwrap().as_f64().unwrap();
        assert!(
            (last - 1.0).abs() < 1e-4,
            "final-epoch self-similarity {last}"
        );
    }
    assert_eq!(json["matrices"][0]["parameters"]["epoch"], 3);
    // A run without --track says so.
    let plain = dir.path().join("plain");
    let o = repsim(&train_args(plain.to_str().unwrap(), "1", &[]));
    assert!(o.status.success());
    let o = repsim(&["track", plain.to_str().unwrap()]);
    assert_ne!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--track"));
}

#[test]
fn compare_probes_two_run_directories_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for (run, seed) in [(&a, "1"), (&b, "2")] {
        let mut args = train_args(run.to_str().unwrap(), "1", &[]);
        let at = args.iter().position(|v| *v == "--seed").unwrap();
        args[at + 1] = seed;
        let o = repsim(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let json = dir.path().join("c.json");
    let o = repsim(&[
        "compare",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--count",
        "120",
        "--metric",
        "linear_cka,minibatch_cka",
        "--batch-size",
        "60",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["meta"]["n_examples"], 120);
    for result in doc["results"].as_array().unwrap() {
        let rows = result["rows"].as_array().unwrap();
        assert_eq!(rows[0], "layer1");
        for row in result["values"].as_array().unwrap() {
            for v in row.as_array().unwrap() {
                let v = v.as_f64().unwrap();
                assert!((0.0..=1.0 + 1e-6).contains(&v), "{v}");
            }
        }
    }
    // A run compared with itself: unit diagonal.
    let o = repsim(&[
        "compare",
        a.to_str().unwrap(),
        a.to_str().unwrap(),
        "--count",
        "50",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let values = &doc["results"][0]["values"];
    for i in 0..values.as_array().unwrap().len() {
        assert!((values[i][i].as_f64().unwrap() - 1.0).abs() < 1e-4);
    }
    // The runs' weight files, with the architecture and data given by flags.
    let (wa, wb) = (a.join("model.bpk"), b.join("model.bpk"));
    let weights = |extra: &[&str]| {
        let mut args = vec![
            "compare",
            wa.to_str().unwrap(),
            wb.to_str().unwrap(),
            "--count",
            "100",
        ];
        args.extend_from_slice(extra);
        repsim(&args)
    };
    let o = weights(&[
        "--model", "cnn", "--depth", "3", "--width", "8", "--side", "16",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("layer1"));
    let o = weights(&["--model", "resnet", "--depth", "8", "--side", "16"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Too many examples, or a run and a file: exit 2 with the reason.
    let o = repsim(&[
        "compare",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--count",
        "5000",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("larger than the test split"));
    let o = repsim(&["compare", a.to_str().unwrap(), json.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a run directory"));
}

/// repsim's flex kernels (convolution, batch norm) against burn's own ops
/// (`REPSIM_KERNELS=burn`): a ResNet-8 trained for two epochs learns alike (the kernels round
/// differently, so the runs drift apart; a wrong gradient would leave one near chance), and
/// with the kernels a run is reproduced bit for bit (its losses, every step's summed, to the
/// last digit).
#[test]
fn resnet8_trains_alike_with_repsim_kernels_and_burns_ops() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, kernels: &str| {
        let out = dir.path().join(name);
        let out_str = out.to_str().unwrap();
        let args = args_with(RESNET8, out_str, "2", &[]);
        let output = common::repsim_with_env(&args, &[("REPSIM_KERNELS", kernels)]);
        common::ok(output);
        let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
        let epochs: Vec<serde_json::Value> = metrics
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        epochs
    };
    let ours = run("repsim", "repsim");
    let burns = run("burn", "burn");
    let again = run("again", "repsim");
    assert_eq!(ours.len(), 2);
    for (epoch, (a, b)) in ours.iter().zip(&burns).enumerate() {
        let field = |v: &serde_json::Value, f: &str| v[f].as_f64().unwrap();
        let (acc_a, acc_b) = (field(a, "test_accuracy"), field(b, "test_accuracy"));
        assert!(
            (acc_a - acc_b).abs() <= 0.1,
            "epoch {}: test accuracy {acc_a} with repsim's kernels, {acc_b} with burn's ops",
            epoch + 1
        );
        let (loss_a, loss_b) = (field(a, "train_loss"), field(b, "train_loss"));
        assert!(
            (loss_a - loss_b).abs() <= 0.05 * loss_b,
            "epoch {}: training loss {loss_a} with repsim's kernels, {loss_b} with burn's ops",
            epoch + 1
        );
    }
    assert!(
        ours[1]["test_accuracy"].as_f64().unwrap() > 0.3,
        "two epochs learn (chance is 0.1): {:?}",
        ours[1]
    );
    for (a, b) in ours.iter().zip(&again) {
        for f in ["train_loss", "test_loss", "test_accuracy"] {
            assert_eq!(a[f], b[f], "{f} of a repeated run");
        }
    }
}

#[test]
fn track_every_steps_labels_observations_by_step() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = run.to_str().unwrap();
    // 1,200 images in batches of 32: 38 steps (the last batch of 16 kept); every 10 steps and
    // the last.
    let o = repsim(&train_args(
        out,
        "1",
        &["--track-every-steps", "10", "--probe-count", "100"],
    ));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(run.join("track").join("step-0038.npz").is_file());
    let o = repsim(&["track", out, "--metric", "linear_cka", "--epoch", "20"]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("steps [0, 10, 20, 30, 38]"), "{stdout}");
    assert!(stdout.contains("first step at 0.9"), "{stdout}");
    // Both ways of saying when to observe at once are refused.
    let both = dir.path().join("both");
    let o = repsim(&train_args(
        both.to_str().unwrap(),
        "1",
        &["--track", "every-epoch", "--track-every-steps", "10"],
    ));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--track-every-steps"));
}

/// A run records the statistics it normalised its images by (those of its own training
/// subset, here 300 images), and `repsim activations --weights` on its weights probes with
/// them: the same activations, bit for bit, as the run's own data pipeline gives. A copy of
/// the weights away from its run is probed with the stated default, with a warning, and gives
/// other activations.
#[test]
fn weights_are_probed_with_the_normalisation_their_run_recorded() {
    use burn::tensor::Device;
    use repsim::model::{ActivationTensor, Probe};
    use repsim::train::{datasets::RunData, RunRecord};

    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let mut args = train_args(run.to_str().unwrap(), "1", &[]);
    let at = args.iter().position(|a| *a == "--train-count").unwrap();
    args[at + 1] = "300";
    let o = repsim(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let record: RunRecord =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    let recorded = record
        .normalization
        .expect("the run records its normalisation");

    // The run's own pipeline: its data, its batcher, its final model, the first 64 test images.
    let device = Device::flex();
    let data = RunData::open(&record.config.data, record.config.seed).unwrap();
    assert_eq!(data.normalization(), Some(recorded));
    let batch = data.test_batches(64, &device).next().unwrap().unwrap();
    let model = record
        .config
        .model
        .init_with_weights(&run.join(repsim::train::FINAL_WEIGHTS), &device)
        .unwrap();
    let repsim::train::network::Inputs::Images(images) = batch.inputs else {
        panic!("an image run gives images")
    };
    let (_, own) = model.forward_images(images, &Probe::Blocks).unwrap();
    let own: Vec<(String, Vec<f32>)> = own
        .iter()
        .map(|(name, tensor)| {
            let data = match tensor {
                ActivationTensor::Map(t) => t.clone().into_data(),
                ActivationTensor::Vector(t) => t.clone().into_data(),
                ActivationTensor::Sequence(_) => panic!("a CNN has no sequences"),
            };
            (name.clone(), data.try_to_vec::<f32>().unwrap())
        })
        .collect();

    let probe = |weights: &Path, out: &Path| {
        let mut args = vec!["activations"];
        args.extend(small_model_and_data());
        args.extend([
            "--weights",
            weights.to_str().unwrap(),
            "--count",
            "64",
            "--out",
            out.to_str().unwrap(),
            "--device",
            "flex",
        ]);
        repsim(&args)
    };
    let from_run = dir.path().join("from_run.npz");
    let o = probe(&run.join(repsim::train::FINAL_WEIGHTS), &from_run);
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains("training images (its config.json)"),
        "{stderr}"
    );
    let read = |path: &Path| repsim::similarity::read_activations(path).unwrap();
    let cli = read(&from_run);
    assert_eq!(cli.len(), own.len());
    for (layer, (name, values)) in cli.iter().zip(&own) {
        assert_eq!(&layer.name, name);
        assert!(layer.values == *values, "{name}: the probes differ");
    }

    // The weights alone: the default rule, said, and other inputs.
    let alone = dir.path().join("alone.bpk");
    std::fs::copy(run.join(repsim::train::FINAL_WEIGHTS), &alone).unwrap();
    let from_alone = dir.path().join("from_alone.npz");
    let o = probe(&alone, &from_alone);
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning") && stderr.contains("no run record"),
        "{stderr}"
    );
    assert!(read(&from_alone)[0].values != cli[0].values);
}

/// `compare` on two weight files (and on their two run directories) probes the models on the
/// device and keeps their layers there; the matrices equal, bit for bit, those of the
/// activation files `repsim activations` writes of the same weights, compared alike.
#[test]
fn weights_compare_on_the_device_as_their_activation_files_do() {
    let dir = tempfile::tempdir().unwrap();
    let runs: Vec<_> = ["3", "4"]
        .iter()
        .map(|seed| {
            let run = dir.path().join(format!("run{seed}"));
            let mut args = train_args(run.to_str().unwrap(), "1", &[]);
            for (flag, value) in [("--train-count", "300"), ("--seed", *seed)] {
                let at = args.iter().position(|a| *a == flag).unwrap();
                args[at + 1] = value;
            }
            let o = repsim(&args);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            run
        })
        .collect();
    let measures = [
        "--metric",
        "linear_cka,minibatch_cka",
        "--batch-size",
        "32",
        "--conv",
        "pool=2",
    ];
    let values = |json: &Path| -> Vec<serde_json::Value> {
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
        doc["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["values"].clone())
            .collect()
    };
    let run_ok = |args: Vec<&str>| -> String {
        let o = repsim(&args);
        let stderr = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(o.status.success(), "{stderr}");
        stderr
    };
    let weights: Vec<String> = runs
        .iter()
        .map(|r| r.join(repsim::train::FINAL_WEIGHTS).display().to_string())
        .collect();
    let on_device = dir.path().join("weights.json");
    let mut args = vec!["compare", &weights[0], &weights[1], "--count", "64"];
    args.extend(small_model_and_data().iter().chain(&measures));
    args.extend(["--json", on_device.to_str().unwrap()]);
    // Two models probed batch by batch into the comparison driver (linear CKA gathers its
    // layers on the device, minibatch CKA does not).
    let said = run_ok(args);
    assert!(said.contains("probed batch by batch"), "{said}");

    let files: Vec<String> = ["a", "b"]
        .iter()
        .map(|n| dir.path().join(format!("{n}.npz")).display().to_string())
        .collect();
    for (w, out) in weights.iter().zip(&files) {
        let mut args = vec!["activations", "--weights", w, "--count", "64", "--out", out];
        args.extend(small_model_and_data());
        run_ok(args);
    }
    let from_files = dir.path().join("files.json");
    let mut args = vec!["compare", &files[0], &files[1]];
    args.extend(measures.iter());
    args.extend(["--json", from_files.to_str().unwrap()]);
    run_ok(args);
    assert_eq!(values(&on_device), values(&from_files));

    let from_runs = dir.path().join("runs.json");
    let (a, b) = (runs[0].display().to_string(), runs[1].display().to_string());
    let mut args = vec!["compare", &a, &b, "--count", "64"];
    args.extend(measures.iter());
    args.extend(["--json", from_runs.to_str().unwrap()]);
    let said = run_ok(args);
    assert!(said.contains("probed batch by batch"), "{said}");
    assert_eq!(values(&from_runs), values(&from_files));
}

/// One tiny training's numbers, pinned: the same on every x86-64 CPU with AVX2 (the book's
/// *Results across CPUs*: burn's cross-entropy used to sum its rows in an order that follows
/// the CPU's SIMD width). Made on an AVX-512 Xeon and checked under QEMU's emulation of a
/// Haswell CPU (`tests/cross_cpu/avx2_vs_native.sh`, the same flags); a CI machine of another
/// kind that gets other numbers fails here. x86-64 only: other architectures' SIMD (NEON) and
/// their matrix kernels are not claimed to agree.
#[cfg(target_arch = "x86_64")]
#[test]
fn a_short_training_gives_the_stored_numbers() {
    if !(std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"))
    {
        eprintln!("skipped: this CPU has no AVX2 and FMA, for which the numbers are pinned");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    // The script's flags: RESNET8 on 256 training and 64 test images, batches of 64.
    let out_arg = out.to_str().unwrap();
    let args = with_values(
        args_with(RESNET8, out_arg, "2", &[]),
        &[
            ("--train-count", "256"),
            ("--test-count", "64"),
            ("--batch-size", "64"),
        ],
    );
    common::ok(common::repsim_with_env(
        &args,
        &[("REPSIM_KERNELS", "repsim")],
    ));
    // (train_loss, train_accuracy, test_loss, test_accuracy, lr) of epochs 1 and 2.
    let pinned = [
        (
            2.3621687293052673,
            0.109375,
            2.3082010746002197,
            0.0625,
            0.03056302334890786,
        ),
        (
            2.2898916602134705,
            0.12890625,
            2.3096861839294434,
            0.125,
            0.0,
        ),
    ];
    let lines = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let got: Vec<(f64, f64, f64, f64, f64)> = lines
        .lines()
        .map(|line| {
            let m: serde_json::Value = serde_json::from_str(line).unwrap();
            let f = |k: &str| m[k].as_f64().unwrap();
            (
                f("train_loss"),
                f("train_accuracy"),
                f("test_loss"),
                f("test_accuracy"),
                f("lr"),
            )
        })
        .collect();
    assert_eq!(
        got, pinned,
        "a short training's numbers moved (see the book's notes)"
    );
}

/// `--train-repeats K`: each training image K times per epoch, so an epoch holds K times the
/// images (and steps) while the images stay the first N; a run without it records no such
/// field, so configs written before it stay equal on `--resume`.
#[test]
fn train_repeats_make_epochs_of_the_same_images_k_times_over() {
    let dir = tempfile::tempdir().unwrap();
    let record = |name: &str, extra: &[&str]| {
        let out = dir.path().join(name);
        let o = repsim(&train_args(out.to_str().unwrap(), "1", extra));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let text = std::fs::read_to_string(out.join("config.json")).unwrap();
        serde_json::from_str::<serde_json::Value>(&text).unwrap()
    };
    let once = record("once", &[]);
    let thrice = record("thrice", &["--train-repeats", "3"]);
    assert_eq!(once["train_examples"], 1200);
    assert!(once["config"]["data"].get("train_repeats").is_none());
    assert_eq!(thrice["train_examples"], 3600);
    assert_eq!(thrice["config"]["data"]["train_repeats"], 3);
    assert_eq!(thrice["config"]["data"]["train_count"], 1200);
    // A language model's text is not repeated.
    let o = repsim(&[
        "train",
        "--out",
        dir.path().join("text").to_str().unwrap(),
        "--model",
        "lstm-lm",
        "--data",
        "text",
        "--epochs",
        "1",
        "--train-repeats",
        "2",
        "--quiet",
        "--device",
        "flex",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("not repeated"), "{err}");
}
