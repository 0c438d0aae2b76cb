//! `repsim describe`, `data`, `activations`, `plot` and `compare --plot` end to end, and their
//! bad input (exit code 2, a message naming the problem, nothing left behind).

use std::path::Path;
use std::process::Output;

mod common;
use common::repsim;

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn rejected(args: &[&str], needle: &str) {
    let o = repsim(args);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert!(
        err.contains(needle),
        "{args:?}: expected {needle:?} in {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn describe_prints_parameters_and_layers() {
    let o = repsim(&[
        "describe", "--model", "resnet", "--depth", "20", "--width", "1",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("parameters: 272,474"), "{out}");
    assert!(
        out.contains("stage2.block1.out") && out.contains("[1, 32, 16, 16]"),
        "{out}"
    );
    let o = repsim(&[
        "describe",
        "--model",
        "resnet",
        "--depth",
        "20",
        "--shortcut",
        "zero_pad",
        "--probe",
        "all",
    ]);
    let (out, _) = text(&o);
    assert!(
        out.contains("parameters: 269,722") && out.contains("layers (68)"),
        "{out}"
    );
    let o = repsim(&[
        "describe",
        "--model",
        "resnet50",
        "--classes",
        "1000",
        "--stem",
        "cifar",
    ]);
    let (out, err) = text(&o);
    // torchvision's 25,557,032 less the 7x7 stem conv (9,408) plus a 3x3 one (1,728).
    assert!(out.contains("parameters: 25,549,352"), "{out}{err}");
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("d.json");
    let o = repsim(&[
        "describe",
        "--model",
        "lstm",
        "--hidden",
        "16",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    let d: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(d["layers"][0]["name"], "lstm.layer1");
    assert_eq!(d["layers"][0]["shape"], serde_json::json!([1, 32, 16]));
    for model in ["cnn", "svcca-cnn", "gru", "rnn-lm"] {
        let o = repsim(&["describe", "--model", model]);
        assert!(o.status.success(), "{model}: {}", text(&o).1);
    }
}

#[test]
fn describe_refuses_bad_models() {
    rejected(&["describe", "--model", "resnet", "--depth", "21"], "6n+2");
    rejected(
        &["describe", "--model", "resnet18", "--depth", "50"],
        "contradicts",
    );
    rejected(&["describe", "--model", "vgg"], "unknown model");
    rejected(&["describe", "--model", "resnet", "--width", "0"], "width");
    rejected(
        &["describe", "--model", "resnet", "--shortcut", "none"],
        "unknown shortcut",
    );
    rejected(
        &["describe", "--model", "resnet", "--probe", "some"],
        "unknown probe",
    );
    rejected(
        &[
            "describe",
            "--model",
            "resnet",
            "--probe",
            "names=stage9.block1.out",
        ],
        "stage9.block1.out",
    );
    rejected(
        &["describe", "--model", "resnet18", "--input", "16"],
        "at least 32",
    );
    rejected(
        &["describe", "--model", "resnet", "--probe", "names="],
        "names=",
    );
    // About 360 GB of parameters: refused from the estimate, before any allocation.
    rejected(
        &["describe", "--model", "cnn", "--width", "100000"],
        "parameters",
    );
    // Activations of a 4096 x 4096 input to ResNet-152: refused with the estimate.
    rejected(
        &["describe", "--model", "resnet152", "--input", "4096"],
        "activation floats per example",
    );
}

#[test]
fn data_prints_balance_and_writes_a_preview() {
    let dir = tempfile::tempdir().unwrap();
    let preview = dir.path().join("p.png");
    let o = repsim(&[
        "data",
        "--data",
        "shapes",
        "--preview",
        preview.to_str().unwrap(),
        "--count",
        "20",
        "--side",
        "16",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("items: 10000") && out.contains("1000 to 1000 items per class"),
        "{out}"
    );
    assert!(out.contains("checkerboard"), "{out}");
    let image = image::open(&preview).unwrap();
    assert!(image.width() > 300);
    rejected(
        &["data", "--data", "cifar10=/nonexistent/cifar"],
        "/nonexistent/cifar",
    );
    rejected(&["data", "--data", "mnist"], "unknown dataset");
    rejected(&["data", "--split", "val"], "unknown split");
    let bad = dir.path().join("p.gif");
    rejected(
        &["data", "--preview", bad.to_str().unwrap()],
        ".png or .svg",
    );
    assert_eq!(files_in(dir.path()), vec!["p.png"]);
}

#[test]
fn the_svcca_conv_net_is_built_for_the_images_side() {
    let o = repsim(&["describe", "--model", "svcca-cnn", "--side", "16"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(out.contains("[1, 3, 16, 16]"), "{out}");
    let dir = tempfile::tempdir().unwrap();
    let npz = dir.path().join("svcca16.npz");
    let o = repsim(&[
        "activations",
        "--model",
        "svcca-cnn",
        "--data",
        "shapes",
        "--side",
        "16",
        "--count",
        "8",
        "--out",
        npz.to_str().unwrap(),
    ]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
}

#[test]
fn activations_with_time_steps_writes_a_file_compare_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("steps.npz");
    let out_str = out.to_str().unwrap();
    let o = repsim(&[
        "activations",
        "--model",
        "lstm",
        "--hidden",
        "16",
        "--layers",
        "2",
        "--data",
        "shapes",
        "--count",
        "8",
        "--time",
        "steps",
        "--out",
        out_str,
    ]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("left out") && err.contains("logits"), "{err}");
    let o = repsim(&["compare", out_str, out_str, "--metric", "linear_cka"]);
    let (table, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(table.contains("lstm.layer1"), "{table}");
}

#[test]
fn activations_then_compare_and_plot() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.npz");
    let b = dir.path().join("b.npz");
    for (path, seed) in [(&a, "1"), (&b, "2")] {
        let o = repsim(&[
            "activations",
            "--model",
            "resnet",
            "--depth",
            "8",
            "--data",
            "shapes",
            "--side",
            "16",
            "--count",
            "60",
            "--batch-size",
            "25",
            "--seed",
            seed,
            "--out",
            path.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", text(&o).1);
    }
    let json = dir.path().join("r.json");
    let png = dir.path().join("r.png");
    let o = repsim(&[
        "compare",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--metric",
        "linear_cka,svcca",
        "--json",
        json.to_str().unwrap(),
        "--plot",
        png.to_str().unwrap(),
    ]);
    let (_, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows: Vec<&str> = doc["results"][0]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        rows,
        [
            "stem",
            "stage1.block1.out",
            "stage2.block1.out",
            "stage3.block1.out",
            "pool",
            "logits"
        ]
    );
    assert_eq!(doc["meta"]["n_examples"], 60);
    assert!(image::open(&png).unwrap().width() > 500);

    let svg = dir.path().join("p.svg");
    let o = repsim(&[
        "plot",
        json.to_str().unwrap(),
        "--out",
        svg.to_str().unwrap(),
        "--colormap",
        "viridis",
        "--origin-lower",
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(
        svg.contains("Linear CKA") && svg.contains("SVCCA"),
        "a grid of both measures"
    );
    let sep = dir.path().join("s.png");
    let o = repsim(&[
        "plot",
        json.to_str().unwrap(),
        "--out",
        sep.to_str().unwrap(),
        "--separate",
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    assert!(
        dir.path().join("s-linear_cka.png").is_file() && dir.path().join("s-svcca.png").is_file()
    );
    let one = dir.path().join("one.svg");
    let o = repsim(&[
        "plot",
        json.to_str().unwrap(),
        "--out",
        one.to_str().unwrap(),
        "--separate",
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    assert!(std::fs::read_to_string(dir.path().join("one-svcca.svg"))
        .unwrap()
        .contains("stage2.block1.out"));
}

/// A grid for similarities (a slightly negative unbiased-CKA cell only widens its scale); one
/// image per measure when a distance is among them.
#[test]
fn plot_draws_a_grid_unless_distances_and_similarities_mix() {
    let dir = tempfile::tempdir().unwrap();
    let matrix = |metric: &str, values: [f64; 4]| {
        serde_json::json!({
            "metric": metric,
            "rows": ["a", "b"],
            "cols": ["a", "b"],
            "values": [[values[0], values[1]], [values[2], values[3]]],
        })
    };
    let draw = |name: &str, matrices: serde_json::Value| -> Vec<String> {
        let folder = dir.path().join(name);
        std::fs::create_dir(&folder).unwrap();
        let json = folder.join("m.json");
        std::fs::write(&json, serde_json::to_string(&matrices).unwrap()).unwrap();
        let out = folder.join("x.png");
        let o = repsim(&[
            "plot",
            json.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", text(&o).1);
        let mut files = files_in(&folder);
        files.retain(|f| f.ends_with(".png"));
        files
    };
    let similarities = serde_json::json!([
        matrix("linear_cka", [1.0, 0.4, 0.4, 1.0]),
        matrix("minibatch_cka", [1.0, -0.02, -0.02, 1.0]),
    ]);
    assert_eq!(draw("similar", similarities), ["x.png"]);
    let mixed = serde_json::json!([
        matrix("linear_cka", [1.0, 0.4, 0.4, 1.0]),
        matrix("procrustes", [0.0, 1.3, 1.3, 0.0]),
    ]);
    assert_eq!(
        draw("mixed", mixed),
        ["x-linear_cka.png", "x-procrustes.png"]
    );
}

#[test]
fn plot_refuses_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.png");
    let out_str = out.to_str().unwrap();
    let write = |name: &str, body: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        p.to_str().unwrap().to_string()
    };
    rejected(
        &["plot", &write("empty.json", ""), "--out", out_str],
        "empty",
    );
    rejected(
        &[
            "plot",
            &write("broken.json", "{\"results\": [1,"),
            "--out",
            out_str,
        ],
        "broken.json",
    );
    rejected(
        &[
            "plot",
            &write("none.json", "{\"results\": []}"),
            "--out",
            out_str,
        ],
        "no similarity matrices",
    );
    let no_rows = r#"{"metric": "linear_cka", "parameters": {}, "n_examples": 5, "rows": [], "cols": [], "values": [], "warnings": []}"#;
    rejected(
        &["plot", &write("norows.json", no_rows), "--out", out_str],
        "nothing to draw",
    );
    let ok = r#"{"metric": "linear_cka", "parameters": {}, "n_examples": 5, "rows": ["a"], "cols": ["b"], "values": [[0.5]], "warnings": []}"#;
    let ok = write("ok.json", ok);
    rejected(
        &[
            "plot",
            &ok,
            "--out",
            dir.path().join("o.bmp").to_str().unwrap(),
        ],
        ".png or .svg",
    );
    rejected(&["plot", &ok, "--out", out_str, "--colormap", "jet"], "jet");
    rejected(
        &["plot", &ok, "--out", out_str, "--range", "1,0"],
        "low < high",
    );
    rejected(
        &["plot", &ok, "--out", out_str, "--size", "6by5"],
        "WIDTHxHEIGHT",
    );
    rejected(
        &["plot", &ok, "--out", out_str, "--size", "600x5"],
        "pixels",
    );
    rejected(
        &["plot", &ok, "--out", out_str, "--range", "0"],
        "two numbers",
    );
    rejected(
        &[
            "plot",
            &dir.path().join("missing.json").to_string_lossy(),
            "--out",
            out_str,
        ],
        "missing.json",
    );
    assert!(!out.exists(), "nothing is written on failure");
    let o = repsim(&[
        "plot", &ok, "--out", out_str, "--size", "4x3", "--dpi", "100",
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    let image = image::open(&out).unwrap();
    assert_eq!((image.width(), image.height()), (400, 300));
}

#[test]
fn cifar_and_image_folders_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    // A CIFAR-10 test batch of 20 records in the published layout, and a 2-class image folder.
    let folder = dir.path().join("cifar-10-batches-bin");
    std::fs::create_dir_all(&folder).unwrap();
    let bytes: Vec<u8> = (0..20)
        .flat_map(|i: usize| {
            let mut r = vec![(i % 10) as u8];
            r.extend((0..3072).map(|p| ((p * 7 + i * 13) % 256) as u8));
            r
        })
        .collect();
    std::fs::write(folder.join("test_batch.bin"), bytes).unwrap();
    let spec = format!("cifar10={}", dir.path().display());
    let o = repsim(&["data", "--data", &spec]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("items: 20")
            && out.contains("airplane")
            && out.contains("2 to 2 items per class"),
        "{out}"
    );
    let npz = dir.path().join("c.npz");
    let o = repsim(&[
        "activations",
        "--model",
        "cnn",
        "--depth",
        "2",
        "--width",
        "4",
        "--data",
        &spec,
        "--count",
        "20",
        "--out",
        npz.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    // The train split is missing: a clear error naming the file.
    rejected(
        &["data", "--data", &spec, "--split", "train"],
        "data_batch_1.bin",
    );

    let images = dir.path().join("images");
    for class in ["cats", "dogs"] {
        std::fs::create_dir_all(images.join(class)).unwrap();
        for i in 0..2 {
            image::RgbImage::from_pixel(20, 20, image::Rgb([i * 100, 50, 200]))
                .save(images.join(class).join(format!("{i}.png")))
                .unwrap();
        }
    }
    let spec = format!("folder={}", images.display());
    let o = repsim(&["data", "--data", &spec, "--side", "16"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("items: 4") && out.contains("cats") && out.contains("16 x 16"),
        "{out}"
    );
    std::fs::write(images.join("dogs").join("bad.png"), b"no").unwrap();
    rejected(&["data", "--data", &spec], "bad.png");
}

/// SIGTERM while `activations` writes its file: the temporary is removed, nothing is left
/// behind, the exit code is 130. The write of ~330 MB takes long enough to be caught.
#[cfg(unix)]
#[test]
fn sigterm_during_a_write_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big.npz");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_repsim"))
        .args([
            "activations",
            "--model",
            "resnet",
            "--depth",
            "8",
            "--probe",
            "all",
            "--data",
            "shapes",
            "--side",
            "32",
            "--count",
            "256",
            "--out",
        ])
        .arg(&out)
        .env("REPSIM_DEVICE", "flex")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The probing is over when stderr says how long it took; the write starts right after.
    let stderr = child.stderr.take().unwrap();
    let probed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = probed.clone();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("examples in") {
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
    });
    let started = std::time::Instant::now();
    let mut caught = false;
    while started.elapsed() < std::time::Duration::from_secs(120) {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if !probed.load(std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(2));
            continue;
        }
        let temporary = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().contains(".repsim-tmp-"));
        if temporary {
            std::process::Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .unwrap();
            caught = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let status = child.wait().unwrap();
    assert!(
        caught,
        "the write finished before a temporary was seen: make it bigger"
    );
    assert_eq!(status.code(), Some(130));
    assert_eq!(files_in(dir.path()), Vec::<String>::new());
}
