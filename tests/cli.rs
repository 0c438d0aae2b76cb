//! `repsim compare` end to end: reference values through the binary, JSON output, and every
//! kind of bad input (exit code 2, a message naming the problem, no output file left behind).

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::repsim;

use npyz::WriterBuilder;
use repsim::similarity::files::{write_npy, write_npz, HostLayer};
use repsim::similarity::testing::random_values;
use serde_json::Value;

fn fixtures() -> PathBuf {
    let dir = std::env::var_os("REPSIM_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::checkout().join("tests/fixtures"));
    assert!(
        dir.join("kornblith_demo_x.npy").is_file(),
        "fixtures not found in {}",
        dir.display()
    );
    dir
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn layer(name: &str, shape: &[usize], seed: u64) -> HostLayer {
    let features: usize = shape[1..].iter().product();
    HostLayer {
        name: name.into(),
        shape: shape.to_vec(),
        values: random_values(shape[0], features, seed),
        stored_dtype: "f32",
    }
}

fn value(doc: &Value, metric: &str, i: usize, j: usize) -> Option<f64> {
    let result = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["metric"] == metric)
        .unwrap();
    result["values"][i][j].as_f64()
}

fn json_run(args: &[&str], dir: &Path) -> (Output, Value) {
    let out = dir.join("out.json");
    let mut all: Vec<&str> = args.to_vec();
    let out_str = out.to_str().unwrap().to_string();
    all.extend(["--json", &out_str]);
    let o = repsim(&all);
    assert!(o.status.success(), "repsim failed: {}", stderr(&o));
    let doc = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    (o, doc)
}

#[test]
fn reference_values_through_the_cli() {
    let f = fixtures();
    let dir = tempfile::tempdir().unwrap();
    let x = f.join("kornblith_demo_x.npy");
    let y = f.join("kornblith_demo_y.npy");
    let (o, doc) = json_run(
        &[
            "compare",
            x.to_str().unwrap(),
            y.to_str().unwrap(),
            "--metric",
            "linear_cka,linear_cka_debiased,rbf_cka,minibatch_cka",
            "--rbf-threshold",
            "0.5",
            "--batch-size",
            "100",
        ],
        dir.path(),
    );
    assert!(stderr(&o).contains("device: flex"), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("0.5576"), "table: {stdout}");
    for (metric, want) in [
        ("linear_cka", 0.557613),
        ("linear_cka_debiased", 0.513456),
        ("rbf_cka", 0.654831),
        ("minibatch_cka", 0.513456),
    ] {
        let got = value(&doc, metric, 0, 0).unwrap();
        assert!((got - want).abs() < 1e-4, "{metric}: {got} vs {want}");
    }
    assert_eq!(doc["meta"]["n_examples"], 100);
    assert_eq!(doc["results"][0]["rows"][0], "kornblith_demo_x");

    let (_, doc) = json_run(
        &[
            "compare",
            f.join("svcca_svhn_model0_layer6.npy").to_str().unwrap(),
            f.join("svcca_svhn_model1_layer6.npy").to_str().unwrap(),
            "--metric",
            "linear_cka,linear_cka_debiased",
        ],
        dir.path(),
    );
    assert!((value(&doc, "linear_cka", 0, 0).unwrap() - 0.872379).abs() < 1e-4);
    assert!((value(&doc, "linear_cka_debiased", 0, 0).unwrap() - 0.867853).abs() < 1e-4);

    let (_, doc) = json_run(
        &[
            "compare",
            f.join("svcca_mnist_model0_layer4.npy").to_str().unwrap(),
            f.join("svcca_mnist_model1_layer4.npy").to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!((value(&doc, "linear_cka", 0, 0).unwrap() - 0.437452).abs() < 1e-4);
}

#[test]
fn npz_and_directories_give_the_same_matrix_and_self_comparison_is_symmetric() {
    let dir = tempfile::tempdir().unwrap();
    let layers = vec![layer("conv", &[64, 2, 3, 3], 1), layer("fc", &[64, 10], 2)];
    let npz = dir.path().join("a.npz");
    write_npz(&npz, &layers).unwrap();
    let sub = dir.path().join("a_dir");
    std::fs::create_dir(&sub).unwrap();
    for l in &layers {
        write_npy(&sub.join(format!("{}.npy", l.name)), l).unwrap();
    }
    let args = |a: &Path, b: &Path| {
        vec![
            "compare".to_string(),
            a.display().to_string(),
            b.display().to_string(),
            "--metric".into(),
            "linear_cka,minibatch_cka".into(),
            "--batch-size".into(),
            "32".into(),
        ]
    };
    let run = |a: &Path, b: &Path| {
        let a = args(a, b);
        json_run(
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
            dir.path(),
        )
        .1
    };
    let from_npz = run(&npz, &npz);
    let from_dir = run(&sub, &npz);
    for metric in ["linear_cka", "minibatch_cka"] {
        for i in 0..2 {
            assert!((value(&from_npz, metric, i, i).unwrap() - 1.0).abs() < 1e-5);
            for j in 0..2 {
                let (a, b) = (
                    value(&from_npz, metric, i, j).unwrap(),
                    value(&from_dir, metric, i, j).unwrap(),
                );
                assert!((a - b).abs() < 1e-6, "{metric} [{i}][{j}]: {a} vs {b}");
                assert!((a - value(&from_npz, metric, j, i).unwrap()).abs() < 1e-6);
            }
        }
    }
    assert_eq!(
        from_npz["results"][0]["rows"],
        serde_json::json!(["conv", "fc"])
    );
}

/// Runs a bad comparison: exit code 2, the message contains `needle`, no JSON written.
fn assert_rejected(args: &[&str], needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("result.json");
    let mut all = args.to_vec();
    let out_str = out.to_str().unwrap().to_string();
    all.extend(["--json", &out_str]);
    let o = repsim(&all);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "args {args:?}: {err}");
    assert!(err.contains(needle), "expected `{needle}` in: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!out.exists(), "a failed run left {}", out.display());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "leftover files"
    );
}

#[test]
fn bad_input_exits_2_with_a_clear_message_and_no_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).display().to_string();
    let good = layer("good", &[20, 5], 1);
    write_npy(Path::new(&p("good.npy")), &good).unwrap();
    write_npy(Path::new(&p("other_n.npy")), &layer("other_n", &[21, 5], 2)).unwrap();
    write_npy(Path::new(&p("tiny.npy")), &layer("tiny", &[3, 5], 3)).unwrap();
    let mut with_nan = layer("with_nan", &[20, 5], 4);
    with_nan.values[7 * 5 + 3] = f32::NAN;
    write_npy(Path::new(&p("with_nan.npy")), &with_nan).unwrap();
    let mut bytes = Vec::new();
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&[20, 5])
        .writer(&mut bytes)
        .begin_nd()
        .unwrap();
    w.extend(0..100i64).unwrap();
    w.finish().unwrap();
    std::fs::write(p("ints.npy"), bytes).unwrap();

    let g = p("good.npy");
    assert_rejected(&["compare", &p("nope.npy"), &g], "nope.npy");
    assert_rejected(&["compare", &g, &p("ints.npy")], "unsupported dtype");
    assert_rejected(&["compare", &g, &p("other_n.npy")], "21");
    assert_rejected(
        &[
            "compare",
            &p("tiny.npy"),
            &p("tiny.npy"),
            "--metric",
            "linear_cka_debiased",
        ],
        "at least 4 examples",
    );
    assert_rejected(&["compare", &g, &p("with_nan.npy")], "example 7, feature 3");
    assert_rejected(&["compare", &g, &p("with_nan.npy")], "with_nan");
    assert_rejected(
        &["compare", &g, &g, "--metric", "cka"],
        "unknown metric `cka`",
    );
    assert_rejected(
        &[
            "compare",
            &g,
            &g,
            "--metric",
            "minibatch_cka",
            "--batch-size",
            "64",
        ],
        "larger than the number of examples",
    );
    assert_rejected(&["compare", &g, &g, "--device", "tpu"], "unknown device");
}

#[test]
fn zero_variance_layer_gives_null_cells_and_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let mut dead = layer("dead", &[30, 4], 1);
    dead.values.iter_mut().for_each(|v| *v = 0.25);
    let npz = dir.path().join("acts.npz");
    write_npz(&npz, &[layer("alive", &[30, 4], 2), dead]).unwrap();
    let (o, doc) = json_run(
        &[
            "compare",
            npz.to_str().unwrap(),
            npz.to_str().unwrap(),
            "--metric",
            "linear_cka,minibatch_cka,rbf_cka",
            "--batch-size",
            "10",
        ],
        dir.path(),
    );
    for metric in ["linear_cka", "minibatch_cka", "rbf_cka"] {
        assert!(value(&doc, metric, 0, 0).is_some());
        assert_eq!(value(&doc, metric, 1, 0), None, "{metric}");
        assert_eq!(value(&doc, metric, 1, 1), None, "{metric}");
    }
    assert!(
        stderr(&o).contains("warning") && stderr(&o).contains("`dead`"),
        "{}",
        stderr(&o)
    );
    let raw = std::fs::read_to_string(dir.path().join("out.json")).unwrap();
    assert!(!raw.contains("NaN") && raw.contains("null"));
}

#[test]
fn cca_family_through_the_cli() {
    let f = fixtures();
    let dir = tempfile::tempdir().unwrap();
    let x = f.join("kornblith_demo_x.npy");
    let y = f.join("kornblith_demo_y.npy");
    let (_, doc) = json_run(
        &[
            "compare",
            x.to_str().unwrap(),
            y.to_str().unwrap(),
            "--metric",
            "cca,svcca,pwcca,procrustes",
            "--pwcca-convention",
            "textbook",
        ],
        dir.path(),
    );
    // Reference values: tests/fixtures/README.md (cca) and shared/reference/simref.py.
    for (metric, want) in [
        ("cca", 0.731014),
        ("svcca", 0.731014),
        ("pwcca", 0.734668),
        ("procrustes", 0.527489),
    ] {
        let got = value(&doc, metric, 0, 0).unwrap();
        assert!((got - want).abs() < 1e-4, "{metric}: {got} vs {want}");
    }
    let svcca = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["metric"] == "svcca")
        .unwrap();
    assert_eq!(
        svcca["parameters"]["kept_dims_rows"],
        serde_json::json!([10])
    );
    assert_eq!(svcca["parameters"]["precision"], "f64");
    let (_, doc) = json_run(
        &[
            "compare",
            x.to_str().unwrap(),
            y.to_str().unwrap(),
            "--metric",
            "svcca",
            "--svd-dims",
            "3",
        ],
        dir.path(),
    );
    let svcca = &doc["results"][0];
    assert_eq!(
        svcca["parameters"]["kept_dims_rows"],
        serde_json::json!([3])
    );
}

#[test]
fn cca_family_bad_input_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let wide = dir.path().join("wide.npy");
    write_npy(&wide, &layer("wide", &[12, 30], 1)).unwrap();
    let w = wide.to_str().unwrap();
    assert_rejected(&["compare", w, w, "--metric", "cca"], "svcca");
    assert_rejected(
        &[
            "compare",
            w,
            w,
            "--metric",
            "pwcca",
            "--pwcca-convention",
            "lapack",
        ],
        "unknown convention `lapack`",
    );
    assert_rejected(
        &["compare", w, w, "--metric", "svcca", "--svd-keep", "1.5"],
        "--svd-keep",
    );
}

#[test]
fn conv_layers_flatten_spatial_or_pool() {
    let dir = tempfile::tempdir().unwrap();
    let convs = dir.path().join("convs.npz");
    write_npz(
        &convs,
        &[
            layer("conv1", &[40, 3, 4, 4], 1),
            layer("conv2", &[40, 5, 4, 4], 2),
        ],
    )
    .unwrap();
    let c = convs.to_str().unwrap();
    for mode in ["flatten", "spatial", "pool=2"] {
        let (o, doc) = json_run(
            &[
                "compare",
                c,
                c,
                "--metric",
                "linear_cka,svcca",
                "--conv",
                mode,
            ],
            dir.path(),
        );
        assert_eq!(
            doc["meta"]["conv"],
            if mode == "spatial" {
                "spatial=100000"
            } else {
                mode
            },
            "{}",
            stderr(&o)
        );
        for metric in ["linear_cka", "svcca"] {
            assert!(
                (value(&doc, metric, 0, 0).unwrap() - 1.0).abs() < 1e-5,
                "{mode} {metric}"
            );
            assert!(value(&doc, metric, 0, 1).unwrap() < 0.99, "{mode} {metric}");
        }
    }
    let mixed = dir.path().join("mixed.npz");
    write_npz(
        &mixed,
        &[layer("conv", &[40, 3, 4, 4], 1), layer("fc", &[40, 6], 2)],
    )
    .unwrap();
    let m = mixed.to_str().unwrap();
    assert_rejected(&["compare", m, m, "--conv", "spatial"], "examples");
    assert_rejected(&["compare", m, m, "--conv", "pool=9"], "cannot pool");
    assert_rejected(&["compare", m, m, "--conv", "resize"], "unknown conv mode");
}

#[test]
fn svcca_and_procrustes_handle_layers_wider_than_the_examples() {
    let dir = tempfile::tempdir().unwrap();
    let wide = dir.path().join("wide.npz");
    // 60 examples of 3000 and 2500 features: only the example-space path can decompose these.
    write_npz(
        &wide,
        &[
            layer("conv_a", &[60, 30, 10, 10], 1),
            layer("conv_b", &[60, 2500], 2),
        ],
    )
    .unwrap();
    let w = wide.to_str().unwrap();
    let (_, doc) = json_run(
        &["compare", w, w, "--metric", "svcca,procrustes"],
        dir.path(),
    );
    for metric in ["svcca", "procrustes"] {
        let result = doc["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["metric"] == metric)
            .unwrap();
        assert_eq!(result["parameters"]["space"], "examples");
        let diagonal = if metric == "svcca" { 1.0 } else { 0.0 };
        assert!(
            (value(&doc, metric, 0, 0).unwrap() - diagonal).abs() < 1e-6,
            "{metric}"
        );
        assert!(value(&doc, metric, 0, 1).is_some());
    }
    // 3000 features over 60 examples: the first thing wrong is too few examples, not the width.
    assert_rejected(
        &["compare", w, w, "--metric", "cca"],
        "needs more examples than features",
    );
    assert_rejected(&["compare", w, w, "--metric", "pwcca"], "--conv pool=K");
}

#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    // `repsim ... | head -1`: the reader is gone before anything is printed (its end of the
    // pipe closed first, so this does not depend on timing).
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_repsim"))
        .args([
            "experiment",
            "wide_vs_deep",
            "--smoke",
            "--plan",
            "--out",
            dir.path().join("out").to_str().unwrap(),
        ])
        .env("REPSIM_DEVICE", "flex")
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
}

#[test]
fn version_completions_and_man_page_come_from_the_command_definitions() {
    let version = repsim(&["--version"]);
    assert!(version.status.success(), "{}", stderr(&version));
    let text = String::from_utf8_lossy(&version.stdout).into_owned();
    assert!(
        text.starts_with(&format!("repsim {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    assert!(text.contains(repsim::experiments::build_commit()), "{text}");
    for (shell, mark) in [
        ("bash", "_repsim()"),
        ("zsh", "#compdef repsim"),
        ("fish", "complete -c repsim"),
    ] {
        let out = repsim(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let script = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(script.contains(mark), "{shell}: no {mark:?}");
        // Every command and a command's own flag are completed.
        for word in ["compare", "merge", "experiment", "verify-inputs"] {
            assert!(script.contains(word), "{shell}: no {word}");
        }
    }
    let bad = repsim(&["completions", "tcsh"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("tcsh"), "{}", stderr(&bad));
    let man = repsim(&["man"]);
    assert!(man.status.success(), "{}", stderr(&man));
    let page = String::from_utf8_lossy(&man.stdout).into_owned();
    assert!(
        page.starts_with(".ie") || page.contains(".TH repsim"),
        "{}",
        &page[..page.len().min(200)]
    );
    assert!(page.contains("compare") && page.contains("experiment"));
}

/// A measure on the command line carries its parameters (`NAME:KEY=VALUE`), which win over the
/// flags; the results file records them, and a bad one is refused naming it.
#[test]
fn measures_carry_their_parameters_on_the_command_line() {
    let f = fixtures();
    let dir = tempfile::tempdir().unwrap();
    let x = f.join("kornblith_demo_x.npy");
    let y = f.join("kornblith_demo_y.npy");
    let (x, y) = (x.to_str().unwrap(), y.to_str().unwrap());
    let (_, doc) = json_run(
        &[
            "compare",
            x,
            y,
            "--metric",
            "rbf_cka:threshold=0.5,svcca:dims=3,minibatch_cka:batch_size=50",
            "--rbf-threshold",
            "2",
            "--batch-size",
            "25",
        ],
        dir.path(),
    );
    let results = &doc["results"];
    assert_eq!(results[0]["parameters"]["threshold"], 0.5);
    assert_eq!(
        results[1]["parameters"]["reduction"],
        serde_json::json!({"dims": 3})
    );
    assert_eq!(results[2]["parameters"]["batch_size"], 50);
    // The same as the flags give.
    let (_, flags) = json_run(
        &[
            "compare",
            x,
            y,
            "--metric",
            "rbf_cka",
            "--rbf-threshold",
            "0.5",
        ],
        dir.path(),
    );
    assert_eq!(flags["results"][0]["values"], results[0]["values"]);
    assert_rejected(
        &["compare", x, y, "--metric", "rbf_cka:threshold=-1"],
        "positive number, got -1",
    );
    assert_rejected(
        &["compare", x, y, "--metric", "cca:k=3"],
        "cca has no parameter `k`",
    );
    assert_rejected(
        &[
            "compare",
            x,
            y,
            "--metric",
            "linear_cka,linear_cka:estimator=biased",
        ],
        "names linear_cka twice",
    );
    assert_rejected(
        &["compare", x, y, "--metric", "rsa", "--rdm", "cosine"],
        "unknown RDM",
    );
}

/// A results file written by the previous version (`tests/fixtures/previous_version`) reads
/// with every measure typed, its parameters included, and draws.
#[test]
fn results_files_of_the_previous_version_read_and_draw() {
    // In the repository whatever REPSIM_FIXTURES says (read at run time, as `fixtures`).
    let path = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap())
        .join("tests/fixtures/previous_version/results.json");
    let file: repsim::similarity::ResultsFile =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let specs: Vec<String> = file.results.iter().map(|m| m.measure.spec()).collect();
    assert_eq!(
        specs,
        [
            "linear_cka:estimator=biased",
            "rbf_cka_debiased:estimator=unbiased:threshold=0.8",
            "cknna:k=5:estimator=unbiased:normalize_rows=true:eps=0.0",
            "rsa:rdm=euclidean:compare=spearman",
            "shape_angular:alpha=0.5:centered=true",
            "mutual_knn:k=5",
        ]
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("old.png");
    let o = repsim(&[
        "plot",
        path.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--separate",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// `--clip-outliers Q` clamps each layer as platonic-rep prepares features (its values on the
/// demo: `crates/similarity/tests/new_measures.rs`), is recorded in the results file, and is
/// refused where a shard would not see every example.
#[test]
fn outliers_are_clipped_on_request() {
    let f = fixtures();
    let dir = tempfile::tempdir().unwrap();
    let x = f.join("kornblith_demo_x.npy");
    let y = f.join("kornblith_demo_y.npy");
    let (x, y) = (x.to_str().unwrap(), y.to_str().unwrap());
    let args = ["compare", x, y, "--metric", "mutual_knn,cknna:eps=1e-6"];
    let (_, plain) = json_run(&args, dir.path());
    let (_, clipped) = json_run(
        &[&args[..], &["--clip-outliers", "0.95"]].concat(),
        dir.path(),
    );
    assert_eq!(clipped["meta"]["clip_outliers"], 0.95);
    assert!(plain["meta"].get("clip_outliers").is_none());
    let value = |doc: &Value, i: usize| doc["results"][i]["values"][0][0].as_f64().unwrap();
    // platonic-rep's own values on the clipped demo.
    assert!((value(&clipped, 0) - 0.289000004529953).abs() < 1e-7);
    assert!((value(&clipped, 1) - 0.3125481878403961).abs() < 1e-6);
    assert!((value(&plain, 1) - value(&clipped, 1)).abs() > 1e-4);
    assert_rejected(&[&args[..], &["--clip-outliers", "1.5"]].concat(), "(0, 1]");
    let state = dir.path().join("s.json");
    let o = repsim(&[
        "compare",
        x,
        y,
        "--metric",
        "minibatch_cka",
        "--batch-size",
        "50",
        "--clip-outliers",
        "0.9",
        "--shard",
        "0/2",
        "--state",
        state.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("a shard does not see"),
        "{}",
        stderr(&o)
    );
    assert!(!state.exists());
}

#[test]
fn quiet_leaves_the_results_and_drops_the_status_lines_and_verbose_is_accepted() {
    let f = fixtures();
    let dir = tempfile::tempdir().unwrap();
    let x = f.join("kornblith_demo_x.npy");
    let y = f.join("kornblith_demo_y.npy");
    let json = dir.path().join("q.json");
    let compare = |flags: &[&str]| {
        let mut args: Vec<&str> = flags.to_vec();
        args.extend([
            "compare",
            x.to_str().unwrap(),
            y.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ]);
        repsim(&args)
    };
    let quiet = compare(&["-q"]);
    assert!(quiet.status.success(), "{}", stderr(&quiet));
    assert_eq!(stderr(&quiet), "", "-q printed status lines");
    assert!(String::from_utf8_lossy(&quiet.stdout).contains("0.5576"));
    assert!(json.is_file(), "-q still writes what was asked");

    let normal = compare(&[]);
    assert!(
        stderr(&normal).contains("device: flex"),
        "{}",
        stderr(&normal)
    );
    assert!(stderr(&normal).contains("wrote"), "{}", stderr(&normal));
    let verbose = compare(&["-vv"]);
    assert!(verbose.status.success(), "{}", stderr(&verbose));
    assert!(
        stderr(&verbose).contains("device: flex"),
        "{}",
        stderr(&verbose)
    );

    let both = compare(&["-q", "-v"]);
    assert_eq!(both.status.code(), Some(2), "{}", stderr(&both));
    assert!(
        stderr(&both).contains("cannot be used with"),
        "{}",
        stderr(&both)
    );
}
