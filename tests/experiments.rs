//! Every experiment's `--smoke` run: outputs exist and are sane, the numbers are those the
//! experiments gave before they moved onto one harness (`tests/golden/`), and a rerun reuses
//! the trained weights.

mod common;

use std::path::{Path, PathBuf};

use repsim::experiments::{
    bottom_up, memorize_vs_generalize, plan_named, resnet_depths, wide_vs_deep, ExperimentArgs,
};
use repsim::DeviceChoice;
use serde_json::Value;

/// The experiments run one at a time: run in parallel threads of one process, they share
/// rayon's thread pool, and their parallel sums change order with each other's load.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn smoke(out: &Path) -> ExperimentArgs {
    ExperimentArgs {
        out: Some(out.to_path_buf()),
        device: DeviceChoice::Flex,
        seed: 0,
        seeds: None,
        data: "shapes".into(),
        smoke: true,
        full: false,
        quiet: true,
        config: None,
        weights50: None,
        weights101: None,
        weights152: None,
    }
}

/// [`smoke`] with `config` saved as `path` and named by `--config`.
fn smoke_with_config(out: &Path, config: &impl serde::Serialize, path: PathBuf) -> ExperimentArgs {
    std::fs::write(&path, serde_json::to_string(config).unwrap()).unwrap();
    let mut args = smoke(out);
    args.config = Some(path);
    args
}

fn results(out: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap()
}

/// Keys whose values are wall times, paths or provenance: not results.
const NOT_RESULTS: [&str; 5] = [
    "provenance",
    "seconds",
    "cka_seconds",
    "examples_per_second",
    "weights",
];

/// Every number, string and flag of `golden` is in `got` at the same place; `got` may hold
/// more (new fields). Numbers agree within `1e-3` (relative above 1), accuracies within 0.02
/// (a few test images): flex's parallel reductions (rayon) add in an order that depends on
/// scheduling, so runs under load differ in the fifth digit (seen: 2e-5 in a CKA value after
/// one epoch); a refactor that changes what is computed moves them far more. Run alone, the
/// harness's results equal the golden files bit for bit (`wide_vs_deep`, `resnet_depths`) or
/// within 1e-12 (the CCA-family values, faer's SVD against burn's).
fn same_results(golden: &Value, got: &Value, path: &str, differences: &mut Vec<String>) {
    match (golden, got) {
        (Value::Object(g), Value::Object(o)) => {
            for (key, value) in g {
                if NOT_RESULTS.contains(&key.as_str()) {
                    continue;
                }
                match o.get(key) {
                    Some(other) => {
                        same_results(value, other, &format!("{path}.{key}"), differences)
                    }
                    None => differences.push(format!("{path}.{key} is missing")),
                }
            }
        }
        (Value::Array(g), Value::Array(o)) => {
            if g.len() != o.len() {
                differences.push(format!("{path}: {} entries, now {}", g.len(), o.len()));
                return;
            }
            for (i, (a, b)) in g.iter().zip(o).enumerate() {
                same_results(a, b, &format!("{path}[{i}]"), differences);
            }
        }
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            let tolerance = if path.ends_with("accuracy") || path.contains("accuracy[") {
                0.02
            } else {
                1e-3 * a.abs().max(1.0)
            };
            if (a - b).abs() > tolerance {
                differences.push(format!("{path}: {a}, now {b}"));
            }
        }
        (a, b) if a != b => differences.push(format!("{path}: {a}, now {b}")),
        _ => {}
    }
}

/// The smoke run's `results.json` against `tests/golden/NAME.smoke.json`, made by the
/// experiments before the harness refactor (commit cf68d41, on flex). `REPSIM_BLESS=1`
/// rewrites the golden file (for an intended change to training or to a measure).
fn check_golden(name: &str, out: &Path) {
    let golden_path = common::checkout()
        .join("tests/golden")
        .join(format!("{name}.smoke.json"));
    let mut got = results(out);
    if std::env::var_os("REPSIM_BLESS").is_some() {
        got.as_object_mut().unwrap().remove("provenance");
        std::fs::write(&golden_path, serde_json::to_string_pretty(&got).unwrap()).unwrap();
        return;
    }
    let golden: Value =
        serde_json::from_str(&std::fs::read_to_string(&golden_path).unwrap()).unwrap();
    let mut differences = Vec::new();
    same_results(&golden, &got, name, &mut differences);
    assert!(
        differences.is_empty(),
        "{name} --smoke differs from {} in {} places, first: {:?}",
        golden_path.display(),
        differences.len(),
        &differences[..differences.len().min(8)]
    );
}

/// Every figure the summary embeds exists, and every PNG in the folder is embedded.
fn check_summary(out: &Path) {
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    for entry in std::fs::read_dir(out).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".png") {
            assert!(
                summary.contains(&format!("]({name})")),
                "summary.md does not show {name}"
            );
        }
    }
    assert!(summary.contains("Reproduce"));
}

fn check_matrix(m: &Value, unit_diagonal: bool) {
    let rows = m["rows"].as_array().unwrap().len();
    let cols = m["cols"].as_array().unwrap().len();
    let values = m["values"].as_array().unwrap();
    assert_eq!(values.len(), rows);
    for (i, row) in values.iter().enumerate() {
        let row = row.as_array().unwrap();
        assert_eq!(row.len(), cols);
        for (j, v) in row.iter().enumerate() {
            if let Some(v) = v.as_f64() {
                // Unbiased-HSIC (minibatch) CKA can dip just below 0 for unrelated layers and
                // tiny batches (the smoke runs' 8 examples); biased measures cannot.
                assert!((-0.05..=1.0 + 1e-6).contains(&v), "value {v} out of [0, 1]");
                if unit_diagonal && i == j {
                    assert!((v - 1.0).abs() < 1e-4, "diagonal {v}");
                }
            }
        }
    }
}

#[test]
fn wide_vs_deep_smoke_run_and_rerun() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("wvd");
    wide_vs_deep::run(&smoke(&out)).unwrap();
    check_golden("wide_vs_deep", &out);
    let r = results(&out);
    let models = r["models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    for m in models {
        check_matrix(&m["within_cka"], true);
        check_matrix(&m["cka_first_pc_removed"], false);
        // Each layer's first PC alone is a rank-1 Gram: CKA 1 with itself.
        check_matrix(&m["cka_first_pc_alone"], true);
        // The dominant images: 8 distinct test images of the PC examples, largest share first,
        // their shares those of a unit vector (at most 1 in all).
        let dominant = &m["dominant_images"];
        let images = array(&dominant["images"]);
        assert_eq!(images.len(), 8);
        let shares: Vec<f64> = images
            .iter()
            .map(|i| i["share"].as_f64().unwrap())
            .collect();
        assert!(shares.windows(2).all(|w| w[0] >= w[1]), "{shares:?}");
        let total: f64 = shares.iter().sum();
        assert!((dominant["top_share"].as_f64().unwrap() - total).abs() < 1e-12);
        assert!(total <= 1.0 + 1e-9 && total > 8.0 / 256.0, "{total}");
        let mut indices: Vec<u64> = images
            .iter()
            .map(|i| i["index"].as_u64().unwrap())
            .collect();
        indices.sort_unstable();
        indices.dedup();
        assert_eq!(indices.len(), 8);
        assert!(array(&m["within_cka"]["rows"]).contains(&dominant["layer"]));
        let layers = m["within_cka"]["rows"].as_array().unwrap().len();
        assert_eq!(m["first_pc_fraction"].as_array().unwrap().len(), layers);
    }
    // The capacity trend over the grid and seed models (3 points).
    let all: Vec<&Value> = models.iter().chain(array(&r["seed_models"])).collect();
    check_capacity_trend(&r, &all);
    assert!(summary_of(&out).contains("## Block structure against capacity per training image"));
    // Nothing was there to reuse; which models were is provenance, not a result.
    assert_eq!(r["provenance"]["reused_models"], serde_json::json!([]));
    assert!(models.iter().all(|m| m.get("reused").is_none()));
    assert!(!r["cross"].as_array().unwrap().is_empty());
    for c in r["cross"].as_array().unwrap() {
        check_matrix(&c["cka"], false);
    }
    assert!(r["provenance"]["repsim_version"].is_string());
    // The commit repsim was built from (not the current directory's HEAD), or "unknown".
    let commit = repsim::experiments::build_commit();
    assert_eq!(r["provenance"]["git_commit"], commit);
    let hex = commit.trim_end_matches("-dirty");
    assert!(
        commit == "unknown" || (hex.len() == 40 && hex.chars().all(|c| c.is_ascii_hexdigit())),
        "{commit}"
    );
    check_summary(&out);
    // A rerun with the same config reuses every trained model (each training cell's record
    // says so) and leaves results.json as it was.
    let before = results(&out);
    wide_vs_deep::run(&smoke(&out)).unwrap();
    for m in results(&out)["models"].as_array().unwrap() {
        let record = out
            .join("cells")
            .join(format!("train-{}.json", m["name"].as_str().unwrap()));
        let record: Value =
            serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
        assert_eq!(record["reused"], true, "{}", record);
    }
    assert_eq!(results(&out), before);
}

/// The trends by hand: Spearman (average ranks for ties) of ln(parameters / N), each model at
/// the N it was trained on (`capacity_trend`), and of the training error, 1 - its final training
/// accuracy (`fit_trend`), against each block statistic over `all`, and the share of the
/// orderings of the statistic (all n! of them) whose correlation is at least the observed one.
fn check_capacity_trend(r: &Value, all: &[&Value]) {
    let per_image: Vec<f64> = all
        .iter()
        .map(|m| (m["parameters"].as_f64().unwrap() / m["train_images"].as_f64().unwrap()).ln())
        .collect();
    check_trend(r, "capacity_trend", &per_image, all);
    let error: Vec<f64> = all
        .iter()
        .map(|m| 1.0 - m["train_accuracy"].as_f64().unwrap())
        .collect();
    check_trend(r, "fit_trend", &error, all);
    for t in array(&r["fit_trend"]) {
        assert_eq!(t["against"], "training error");
    }
}

/// One trend array of `r` (`key`) against `x`, by hand; see [`check_capacity_trend`].
fn check_trend(r: &Value, key: &str, x: &[f64], all: &[&Value]) {
    let x = x.to_vec();
    let trends = array(&r[key]);
    for statistic in ["block_contrast", "block_share"] {
        let y: Vec<f64> = all.iter().map(|m| m[statistic].as_f64().unwrap()).collect();
        let trend = trends.iter().find(|t| t["statistic"] == statistic);
        let Some(rho) = rank_correlation(&x, &y) else {
            // A constant statistic has no correlation: no trend is claimed.
            assert!(trend.is_none(), "{statistic}: {trend:?}");
            continue;
        };
        let trend = trend.unwrap_or_else(|| panic!("{statistic}: no trend in {trends:?}"));
        assert_eq!(trend["points"], all.len());
        assert!(
            (trend["spearman"].as_f64().unwrap() - rho).abs() < 1e-12,
            "{trend}"
        );
        let mut orderings = Vec::new();
        permutations(
            &y,
            &mut Vec::new(),
            &mut vec![false; y.len()],
            &mut orderings,
        );
        let defined: Vec<f64> = orderings
            .iter()
            .filter_map(|o| rank_correlation(&x, o))
            .collect();
        let p = defined.iter().filter(|r| **r >= rho - 1e-12).count() as f64 / defined.len() as f64;
        assert!(
            (trend["p_value"].as_f64().unwrap() - p).abs() < 1e-12,
            "{trend}"
        );
    }
    assert!(
        trends.iter().any(|t| t["statistic"] == "block_contrast"),
        "block contrast is never constant on real models: {trends:?}"
    );
}

/// Models near the block-structure threshold: the summary lists the one-seed ones and writes
/// the follow-up config with them in `extra_seeds`; running it trains exactly their second seeds,
/// reuses every other model, and leaves no follow-up (each now has two seeds). The rule itself
/// against a hand computation on the run's numbers.
#[test]
fn wide_vs_deep_near_threshold_models_get_a_second_seed_on_follow_up() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("wvd-near");
    let mut config = wide_vs_deep::WideVsDeepConfig::for_scale(repsim::experiments::Scale::Smoke);
    // Every model near (a block of one layer is long enough, and contrast and share are within
    // 10 of their thresholds): the smoke grid's ResNet-8 x1 has its second seed (second_seed),
    // so the follow-up is ResNet-8 x2's.
    config.near_threshold_margin = 10.0;
    config.block_min_layers = 1;
    let mut args = smoke_with_config(&out, &config, dir.path().join("near.json"));
    wide_vs_deep::run(&args).unwrap();
    let summary = summary_of(&out);
    assert!(
        summary.contains("- **Near the threshold** (block contrast or share within 10.00"),
        "{summary}"
    );
    assert!(summary.contains("one seed each): resnet8x2. "), "{summary}");
    let follow_up = out.join("near_threshold_seeds.json");
    let text = std::fs::read_to_string(&follow_up).unwrap();
    let written: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(written["extra_seeds"], serde_json::json!([[8, 2, 256]]));

    // The rule by hand at the default margin, on this run's models.
    let r = results(&out);
    let default = wide_vs_deep::WideVsDeepConfig::for_scale(repsim::experiments::Scale::Smoke);
    for m in array(&r["models"]).iter().chain(array(&r["seed_models"])) {
        let model: wide_vs_deep::ModelResult = serde_json::from_value(m.clone()).unwrap();
        let slack = [
            (model.block_contrast - default.block_min_contrast, 0.1),
            (model.block_share - default.block_min_share, 0.1),
            (model.block.1 as f64 - default.block_min_layers as f64, 1.0),
        ];
        let by_hand = if model.block_structure {
            slack.iter().any(|(s, m)| *s < *m)
        } else {
            slack.iter().all(|(s, m)| *s >= -*m)
        };
        assert_eq!(default.near_threshold(&model), by_hand, "{}", model.name);
    }

    // The follow-up: only resnet8x2-seed2 is trained.
    args.config = Some(follow_up.clone());
    wide_vs_deep::run(&args).unwrap();
    let r = results(&out);
    let seeds: Vec<&str> = array(&r["seed_models"])
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(seeds, ["resnet8x1-seed2", "resnet8x2-seed2"]);
    let reused: Vec<&str> = array(&r["provenance"]["reused_models"])
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert_eq!(reused, ["resnet8x1", "resnet8x2", "resnet8x1-seed2"]);
    assert!(
        !follow_up.exists(),
        "no one-seed model is left near the threshold"
    );
    let summary = summary_of(&out);
    assert!(summary.contains("one seed each): none."), "{summary}");

    // A model outside the grid is refused before anything runs.
    config.extra_seeds = vec![(20, 1, 256)];
    let args = smoke_with_config(
        &dir.path().join("never"),
        &config,
        dir.path().join("bad.json"),
    );
    let err = wide_vs_deep::run(&args).unwrap_err().to_string();
    assert!(err.contains("ResNet-20 x1 on 256 images"), "{err}");
    assert!(!dir.path().join("never").exists());
}

/// The training-set-size axis: the smoke grid again on 64 of its 256 training images, from the
/// same initialisation and for the same number of steps, in epochs of 256 images (the 64
/// repeated 4 times, as the default does); the trend runs over both sizes.
#[test]
fn wide_vs_deep_training_set_size_axis() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("wvd-sizes");
    let mut config = wide_vs_deep::WideVsDeepConfig::for_scale(repsim::experiments::Scale::Smoke);
    config.other_train_counts = vec![64];
    config.images_per_epoch = Some(256);
    let args = smoke_with_config(&out, &config, dir.path().join("sizes.json"));
    wide_vs_deep::run(&args).unwrap();
    let r = results(&out);
    let models = array(&r["models"]);
    let sized = array(&r["size_models"]);
    let names: Vec<&str> = sized.iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["resnet8x1-n64", "resnet8x2-n64"]);
    for (m, at_64) in models.iter().zip(sized) {
        assert_eq!(m["train_images"], 256);
        assert_eq!(at_64["train_images"], 64);
        // 256 images in batches of 64 for 1 epoch, 64 images 4 times in 1 epoch: 4 steps each.
        assert_eq!(m["steps"], 4);
        assert_eq!(at_64["steps"], 4);
        check_matrix(&at_64["within_cka"], true);
        // The same initialisation: the same seed at both sizes (a paired design).
        let seed_of = |name: &str| {
            let text =
                std::fs::read_to_string(out.join("runs").join(name).join("config.json")).unwrap();
            let run: Value = serde_json::from_str(&text).unwrap();
            (
                run["config"]["seed"].clone(),
                run["config"]["data"]["train_count"].clone(),
                run["config"]["epochs"].clone(),
                run["config"]["data"]["train_repeats"].clone(),
                run["train_examples"].clone(),
            )
        };
        let (seed, count, epochs, repeats, examples) = seed_of(m["name"].as_str().unwrap());
        let (seed_64, count_64, epochs_64, repeats_64, examples_64) =
            seed_of(at_64["name"].as_str().unwrap());
        assert_eq!(seed, seed_64);
        // No repeats: the field is left out of config.json (older runs' configs stay equal).
        assert_eq!(
            (count, epochs, repeats),
            (256.into(), 1.into(), Value::Null)
        );
        assert_eq!(
            (count_64, epochs_64, repeats_64),
            (64.into(), 1.into(), 4.into())
        );
        assert_eq!((examples, examples_64), (256.into(), 256.into()));
        // One evaluation each: one row of metrics.
        let rows = |name: &str| {
            std::fs::read_to_string(out.join("runs").join(name).join("metrics.jsonl"))
                .unwrap()
                .lines()
                .count()
        };
        assert_eq!(rows(at_64["name"].as_str().unwrap()), 1);
    }
    // The trend over every model at both sizes (2 + 1 second seed + 2 = 5 points).
    let all: Vec<&Value> = models
        .iter()
        .chain(array(&r["seed_models"]))
        .chain(sized)
        .collect();
    assert_eq!(all.len(), 5);
    check_capacity_trend(&r, &all);
    for t in array(&r["capacity_trend"]) {
        assert_eq!(t["training_set_sizes"], serde_json::json!([64, 256]));
    }
    // The summary corrects the trend tests together (Holm, by hand: the i-th smallest of m
    // p-values times m - i, running maximum, capped at 1, back in the tests' order).
    let p: Vec<f64> = array(&r["capacity_trend"])
        .iter()
        .chain(array(&r["fit_trend"]))
        .map(|t| t["p_value"].as_f64().unwrap())
        .collect();
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut holm = vec![0.0; m];
    let mut running = 0.0f64;
    for (i, &k) in order.iter().enumerate() {
        running = running.max((p[k] * (m - i) as f64).min(1.0));
        holm[k] = running;
    }
    let summary = summary_of(&out);
    assert!(
        summary.contains("## Block structure against training error"),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("- **Trends** ({m} one-sided tests")),
        "{summary}"
    );
    for h in holm {
        assert!(
            summary.contains(&format!("Holm-corrected over the {m} tests: {h:.3}")),
            "{h:.3} not in {summary}"
        );
    }
    // The cross-model comparisons and the architectures stay at the main size.
    for c in array(&r["cross"]) {
        for side in ["model_a", "model_b"] {
            assert!(!c[side].as_str().unwrap().contains("-n"), "{}", c[side]);
        }
    }
    for a in array(&r["architectures"]) {
        assert!(array(&a["runs"])
            .iter()
            .all(|n| !n.as_str().unwrap().contains("-n")));
    }
    assert!(out.join("within_cka_depth8_by_training_size.png").is_file());
    let summary = summary_of(&out);
    assert!(summary.contains("## Training-set size"), "{summary}");
    assert!(summary.contains("| resnet8x1-n64 | 64 |"), "{summary}");
    assert!(
        summary.contains("2 different training-set sizes (64, 256)"),
        "{summary}"
    );
    check_summary(&out);

    // With ResNet-8 x2 omitted, the by-size figure has one column, not an empty second one:
    // narrower than the two-column figure above (same rows and panels otherwise).
    let figure_width = |dir: &Path| {
        image::open(dir.join("within_cka_depth8_by_training_size.png"))
            .unwrap()
            .width()
    };
    let one_width = dir.path().join("wvd-sizes-one-width");
    config.omit = vec![(8, 2)];
    let args = smoke_with_config(&one_width, &config, dir.path().join("one-width.json"));
    wide_vs_deep::run(&args).unwrap();
    assert!(
        figure_width(&one_width) < figure_width(&out),
        "{} against {}",
        figure_width(&one_width),
        figure_width(&out)
    );
}

#[test]
fn bottom_up_smoke_run() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bu");
    bottom_up::run(&smoke(&out)).unwrap();
    check_golden("bottom_up", &out);
    let r = results(&out);
    let networks = r["networks"].as_array().unwrap();
    assert_eq!(networks.len(), 3);
    for n in networks {
        for table in n["convergence"].as_array().unwrap() {
            let m = &table["matrix"];
            check_matrix(m, false);
            assert_eq!(m["cols"].as_array().unwrap().len(), 3); // epochs 0, 1, 2
            for row in m["values"].as_array().unwrap() {
                if let Some(last) = row.as_array().unwrap().last().unwrap().as_f64() {
                    assert!((last - 1.0).abs() < 1e-4);
                }
            }
        }
    }
    check_summary(&out);
}

#[test]
fn memorize_vs_generalize_smoke_run() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mvg");
    memorize_vs_generalize::run(&smoke(&out)).unwrap();
    check_golden("memorize_vs_generalize", &out);
    let r = results(&out);
    let groups = r["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    for g in groups {
        assert_eq!(g["pair_distances"].as_array().unwrap().len(), 1); // 2 networks: one pair
        for d in g["mean"].as_array().unwrap() {
            let d = d.as_f64().unwrap();
            assert!((-1e-6..=1.0 + 1e-6).contains(&d), "distance {d}");
        }
    }
    check_summary(&out);
}

#[test]
fn resnet_depths_smoke_run() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rd");
    resnet_depths::run(&smoke(&out)).unwrap();
    check_golden("resnet_depths", &out);
    let r = results(&out);
    assert_eq!(r["networks"].as_array().unwrap().len(), 2);
    let cmp = &r["comparisons"][0];
    check_matrix(&cmp["cka"], false);
    // ResNet-50 and ResNet-101 blocks: 16 and 33, plus the stem, pool and logits.
    assert_eq!(cmp["cka"]["rows"].as_array().unwrap().len(), 19);
    assert_eq!(cmp["cka"]["cols"].as_array().unwrap().len(), 36);
    assert!(r["cka_seconds"].as_f64().unwrap() > 0.0);
    check_summary(&out);
}

#[test]
fn the_same_bad_input_gets_the_same_exit_code_from_the_cli_and_an_experiment() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    // A file where an output directory is wanted, and an unreadable config: bad input (2).
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let bad_config = dir.path().join("bad.json");
    std::fs::write(&bad_config, b"{not json").unwrap();
    let cases: Vec<(Vec<String>, Vec<String>, &str)> = vec![
        (
            vec![
                "experiment".into(),
                "wide_vs_deep".into(),
                "--smoke".into(),
                "--out".into(),
                file.display().to_string(),
            ],
            vec![
                "train".into(),
                "--epochs".into(),
                "1".into(),
                "--out".into(),
                file.display().to_string(),
            ],
            "exists and is not a directory",
        ),
        (
            vec![
                "experiment".into(),
                "bottom_up".into(),
                "--config".into(),
                bad_config.display().to_string(),
                "--out".into(),
                dir.path().join("o").display().to_string(),
            ],
            vec![
                "plot".into(),
                bad_config.display().to_string(),
                "--out".into(),
                dir.path().join("p.png").display().to_string(),
            ],
            "bad.json",
        ),
    ];
    for (experiment, cli, says) in cases {
        let e = common::repsim(&experiment.iter().map(String::as_str).collect::<Vec<_>>());
        let c = common::repsim(&cli.iter().map(String::as_str).collect::<Vec<_>>());
        let stderr = String::from_utf8_lossy(&e.stderr);
        assert_eq!(e.status.code(), Some(2), "experiment: {stderr}");
        assert!(stderr.contains(says), "{stderr}");
        assert_eq!(
            c.status.code(),
            e.status.code(),
            "cli: {}",
            String::from_utf8_lossy(&c.stderr)
        );
    }
    // The library's experiments map errors by the same rule as the binary.
    let mut args = smoke(&file);
    args.smoke = true;
    let error = wide_vs_deep::run(&args).unwrap_err();
    assert_eq!(error.exit_code(), 2, "{error}");
}

#[test]
fn an_experiment_resumes_a_model_killed_mid_training_and_refuses_nothing_it_can_redo() {
    let _one = one_at_a_time();
    // An interrupted model (its run directory holds the same config and an older checkpoint)
    // is resumed, not trained again; a truncated final model.bpk is trained again, never
    // reused.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mvg");
    memorize_vs_generalize::run(&smoke(&out)).unwrap();
    let first = results(&out);
    let run = out.join("runs/true-0");
    // Truncate the final weights of one model.
    let weights = run.join("model.bpk");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    // Make another look killed after its first epoch: drop the newest checkpoint and the
    // final weights.
    let other = out.join("runs/random-1");
    std::fs::remove_file(other.join("model.bpk")).unwrap();
    std::fs::remove_file(other.join("checkpoints/epoch-0002.json")).unwrap();
    let kept = other.join("checkpoints/epoch-0001/model.bpk");
    let modified = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let before = modified(&kept);
    std::thread::sleep(std::time::Duration::from_millis(20));
    memorize_vs_generalize::run(&smoke(&out)).unwrap();
    assert_eq!(
        modified(&kept),
        before,
        "random-1 was trained from scratch, not resumed"
    );
    let second = results(&out);
    let mut differences = Vec::new();
    same_results(&first, &second, "memorize_vs_generalize", &mut differences);
    assert!(differences.is_empty(), "{differences:?}");
    assert_eq!(
        std::fs::read(&weights).unwrap(),
        bytes,
        "the truncated weights were redone"
    );
    let metrics = std::fs::read_to_string(other.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 2);
}

#[test]
fn a_diverging_experiment_names_the_model_and_the_divergence() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("diverge.json");
    std::fs::write(
        &config,
        r#"{"group_size": 2, "side": 16, "train_count": 64, "test_count": 64,
            "epochs": 1, "cnn": [3, 8], "pool": 2, "lr": 1e9}"#,
    )
    .unwrap();
    let mut args = smoke(&dir.path().join("out"));
    args.smoke = false;
    args.config = Some(config);
    let error = memorize_vs_generalize::run(&args).unwrap_err();
    let message = error.to_string();
    assert_eq!(error.exit_code(), 1, "{message}");
    assert!(message.contains("training true-0"), "{message}");
    assert!(
        message.contains("diverged") || message.contains("loss became"),
        "{message}"
    );
}

fn array(v: &Value) -> &Vec<Value> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}"))
}

fn summary_of(out: &Path) -> String {
    std::fs::read_to_string(out.join("summary.md")).unwrap()
}

/// An interval `[low, high]` inside `[min, max]`.
fn check_interval(i: &Value, min: f64, max: f64) {
    let (low, high) = (i["low"].as_f64().unwrap(), i["high"].as_f64().unwrap());
    assert!(
        min - 1e-12 <= low && low <= high && high <= max + 1e-12,
        "{i}"
    );
}

#[test]
fn wide_vs_deep_with_two_seeds_reports_spreads_and_per_class_intervals() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("wvd");
    // The smoke grid with a deeper row, so there is a wide-vs-deep pair (ResNet-8 x2 and
    // ResNet-14 x1).
    let mut config = wide_vs_deep::WideVsDeepConfig::for_scale(repsim::experiments::Scale::Smoke);
    config.depths = vec![8, 14];
    let config_path = dir.path().join("grid.json");
    std::fs::write(&config_path, serde_json::to_string(&config).unwrap()).unwrap();
    let with_config = |seeds: Option<usize>| {
        let mut args = smoke(&out);
        args.smoke = false;
        args.config = Some(config_path.clone());
        args.seeds = seeds;
        args
    };
    let args = with_config(Some(2));
    // The plan: the grid twice, each model analysed, and --seeds in every cell's command.
    let plan = plan_named("wide_vs_deep", &args).unwrap();
    let ids: Vec<&str> = plan.cells.iter().map(|c| c.id.as_str()).collect();
    for id in [
        "train-resnet8x1",
        "train-resnet8x2",
        "train-resnet8x1-seed2",
        "train-resnet8x2-seed2",
        "analysis-resnet8x2-seed2",
        "analysis-cross",
    ] {
        assert!(ids.contains(&id), "{ids:?}");
    }
    assert_eq!(
        args.cell_flags("wide_vs_deep")
            .unwrap()
            .iter()
            .filter(|f| *f == "--seeds")
            .count(),
        1
    );
    wide_vs_deep::run(&args).unwrap();
    let r = results(&out);
    assert_eq!(r["config"]["seeds"], 2);
    assert_eq!(array(&r["models"]).len(), 4);
    let seed_models: Vec<&str> = array(&r["seed_models"])
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        seed_models,
        [
            "resnet8x1-seed2",
            "resnet8x2-seed2",
            "resnet14x1-seed2",
            "resnet14x2-seed2"
        ]
    );
    let architectures = array(&r["architectures"]);
    assert_eq!(architectures.len(), 4);
    for a in architectures {
        assert_eq!(array(&a["runs"]).len(), 2);
        // The mean and sd of the block share are those of the two runs' shares.
        let shares: Vec<f64> = array(&a["runs"])
            .iter()
            .map(|name| {
                array(&r["models"])
                    .iter()
                    .chain(array(&r["seed_models"]))
                    .find(|m| m["name"] == *name)
                    .unwrap()["block_share"]
                    .as_f64()
                    .unwrap()
            })
            .collect();
        let mean = (shares[0] + shares[1]) / 2.0;
        let sd = (shares[0] - shares[1]).abs() / 2f64.sqrt();
        assert!((a["block_share"]["mean"].as_f64().unwrap() - mean).abs() < 1e-12);
        assert!((a["block_share"]["sd"].as_f64().unwrap() - sd).abs() < 1e-12);
        let k = a["with_block_structure"].as_u64().unwrap();
        assert!(k <= 2);
    }
    let pc = &r["per_class"];
    assert_eq!(pc["seeds"], 2);
    assert_eq!(
        pc["baseline"],
        serde_json::json!(["resnet8x1", "resnet8x1-seed2"])
    );
    let gaps = array(&pc["gaps"]);
    assert_eq!(gaps.len(), array(&pc["classes"]).len());
    for g in gaps {
        let gap = g["gap"].as_f64().unwrap();
        assert!((-1.0..=1.0).contains(&gap));
        // A class with images has intervals; the percentile interval of a mean holds it
        // unless the resamples are very skewed, which a gap in [-1, 1] over >= 2 images is not
        // often; check the range only.
        if !g["interval"].is_null() {
            check_interval(&g["interval"], -1.0, 1.0);
            check_interval(&g["seed_interval"], -1.0, 1.0);
        }
        assert!(g["seed_gap"].is_number());
    }
    let summary = summary_of(&out);
    for says in [
        "## Significance at this scale",
        "**Over seeds**",
        "seed-to-seed (points) [95%]",
        "- **Block structure**",
        "- **Wide vs deep per class**",
    ] {
        assert!(summary.contains(says), "summary.md lacks {says:?}");
    }
    assert!(
        summary.contains("--seeds 2"),
        "the reproduce line keeps --seeds"
    );
    // One seed in the same directory: the first seed's models and resnet8x1-seed2 (the
    // seed-to-seed model of a one-seed run) are the two-seed run's, reused.
    wide_vs_deep::run(&with_config(None)).unwrap();
    let r = results(&out);
    let reused = array(&r["provenance"]["reused_models"]);
    for m in array(&r["models"]).iter().chain(array(&r["seed_models"])) {
        assert!(
            reused.contains(&m["name"]),
            "{} was trained again",
            m["name"]
        );
    }
    assert_eq!(array(&r["seed_models"]).len(), 1);
    let summary = summary_of(&out);
    assert!(summary.contains("trained from one seed"), "{summary}");
}

/// Spearman's correlation by hand: Pearson's correlation of the average ranks (ties share the
/// mean of their positions); `None` when either side is constant.
fn rank_correlation(x: &[f64], y: &[f64]) -> Option<f64> {
    let ranks = |v: &[f64]| -> Vec<f64> {
        v.iter()
            .map(|a| {
                let below = v.iter().filter(|b| **b < *a).count() as f64;
                let equal = v.iter().filter(|b| **b == *a).count() as f64;
                below + (equal + 1.0) / 2.0
            })
            .collect()
    };
    let (rx, ry) = (ranks(x), ranks(y));
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (mx, my) = (mean(&rx), mean(&ry));
    let cov: f64 = rx.iter().zip(&ry).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = rx.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = ry.iter().map(|b| (b - my).powi(2)).sum();
    (vx > 0.0 && vy > 0.0).then(|| cov / (vx * vy).sqrt())
}

/// Every ordering of `values`, by recursion.
fn permutations(
    values: &[f64],
    prefix: &mut Vec<f64>,
    used: &mut Vec<bool>,
    out: &mut Vec<Vec<f64>>,
) {
    if prefix.len() == values.len() {
        out.push(prefix.clone());
        return;
    }
    for i in 0..values.len() {
        if !used[i] {
            used[i] = true;
            prefix.push(values[i]);
            permutations(values, prefix, used, out);
            prefix.pop();
            used[i] = false;
        }
    }
}

/// The permutation p-value of layer `l` recomputed from the distances in `results.json`:
/// every assignment of the 2g networks to two groups of g.
fn permutation_p(r: &Value, l: usize, g: usize) -> f64 {
    let n = 2 * g;
    let mut d = vec![vec![f64::NAN; n]; n];
    let mut set = |i: usize, j: usize, v: &Value| {
        let v = v.as_f64().unwrap();
        d[i][j] = v;
        d[j][i] = v;
    };
    for (group, offset) in [(0, 0), (1, g)] {
        for pair in array(&r["groups"][group]["pair_distances"]) {
            let (i, j) = (
                pair[0][0].as_u64().unwrap() as usize,
                pair[0][1].as_u64().unwrap() as usize,
            );
            set(offset + i, offset + j, &pair[1][l]);
        }
    }
    for pair in array(&r["between_groups"]) {
        let (i, j) = (
            pair[0][0].as_u64().unwrap() as usize,
            pair[0][1].as_u64().unwrap() as usize,
        );
        set(i, g + j, &pair[1][l]);
    }
    let statistic = |second: &[bool]| {
        let (mut sums, mut counts) = ([0.0; 2], [0.0; 2]);
        for i in 0..n {
            for j in i + 1..n {
                if second[i] == second[j] {
                    let k = usize::from(second[i]);
                    sums[k] += d[i][j];
                    counts[k] += 1.0;
                }
            }
        }
        sums[1] / counts[1] - sums[0] / counts[0]
    };
    let observed = statistic(&(0..n).map(|i| i >= g).collect::<Vec<_>>());
    let (mut at_least, mut total) = (0, 0);
    for mask in 0u32..(1 << n) {
        if mask.count_ones() as usize == g {
            let second: Vec<bool> = (0..n).map(|i| mask & (1 << i) != 0).collect();
            total += 1;
            at_least += usize::from(statistic(&second) >= observed - 1e-12);
        }
    }
    at_least as f64 / total as f64
}

#[test]
fn memorize_vs_generalize_tests_every_layer_by_permuting_networks() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mvg");
    let mut args = smoke(&out);
    args.seeds = Some(3);
    memorize_vs_generalize::run(&args).unwrap();
    let r = results(&out);
    assert_eq!(r["config"]["group_size"], 3);
    assert_eq!(array(&r["between_groups"]).len(), 9);
    let tests = array(&r["layer_tests"]);
    assert_eq!(tests.len(), array(&r["groups"][0]["layers"]).len());
    for (l, t) in tests.iter().enumerate() {
        let test = &t["test"];
        assert_eq!(test["assignments"], 20);
        assert_eq!(test["exact"], true);
        let p = test["p_value"].as_f64().unwrap();
        assert!(
            (p - permutation_p(&r, l, 3)).abs() < 1e-12,
            "layer {l}: p {p}"
        );
        let gap = r["groups"][1]["mean"][l].as_f64().unwrap()
            - r["groups"][0]["mean"][l].as_f64().unwrap();
        assert!((test["statistic"].as_f64().unwrap() - gap).abs() < 1e-9);
    }
    let summary = summary_of(&out);
    assert!(
        summary.contains("## Significance at this scale")
            || summary.contains("**Significance at this scale**")
    );
    assert!(summary.contains("1/20 = 0.050"), "{summary}");
    assert!(summary.contains("p (permutation)"));
    // Holm over the layers, recomputed by hand from the raw p-values: sorted, the i-th
    // smallest of m times (m - i), made non-decreasing, capped at 1.
    let raw: Vec<f64> = tests
        .iter()
        .map(|t| t["test"]["p_value"].as_f64().unwrap())
        .collect();
    let m = raw.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| raw[a].total_cmp(&raw[b]).then(a.cmp(&b)));
    let mut running: f64 = 0.0;
    let mut by_hand = vec![0.0; m];
    for (rank, &l) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * raw[l]).min(1.0));
        by_hand[l] = running;
    }
    for (l, t) in tests.iter().enumerate() {
        let holm = t["holm_p_value"].as_f64().unwrap();
        assert!(
            (holm - by_hand[l]).abs() < 1e-12,
            "layer {l}: {holm} vs {}",
            by_hand[l]
        );
    }
    assert!(summary.contains("p (Holm over layers)"), "{summary}");
    assert!(summary.contains("Holm-corrected"), "{summary}");
    // One network per group has no pair: refused as bad input, before training.
    let mut one = smoke(&dir.path().join("one"));
    one.seeds = Some(1);
    let error = memorize_vs_generalize::run(&one).unwrap_err();
    assert_eq!(error.exit_code(), 2, "{error}");
    assert!(
        error.to_string().contains("at least 2 networks per group"),
        "{error}"
    );
    assert!(!dir.path().join("one/runs").exists());
}

#[test]
fn bottom_up_with_two_seeds_reports_each_correlation_over_seeds() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bu");
    let mut args = smoke(&out);
    args.seeds = Some(2);
    bottom_up::run(&args).unwrap();
    let r = results(&out);
    let names: Vec<&str> = array(&r["networks"])
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "cnn",
            "resnet",
            "lstm",
            "cnn-seed2",
            "resnet-seed2",
            "lstm-seed2"
        ]
    );
    for n in array(&r["networks"]) {
        let intervals = array(&n["depth_order_interval"]);
        assert_eq!(intervals.len(), array(&n["depth_order_correlation"]).len());
        for (_, i) in intervals.iter().map(|p| (p[0].clone(), p[1].clone())) {
            if !i.is_null() {
                check_interval(&i, -1.0, 1.0);
            }
        }
    }
    let spread = array(&r["seeds"]);
    assert_eq!(spread.len(), 9); // 3 networks x 3 measures
    for s in spread {
        let correlations = array(&s["correlations"]);
        assert_eq!(correlations.len(), 2);
        let defined: Vec<f64> = correlations.iter().filter_map(Value::as_f64).collect();
        if defined.len() == 2 {
            let mean = (defined[0] + defined[1]) / 2.0;
            assert!((s["mean"].as_f64().unwrap() - mean).abs() < 1e-12);
        }
        let positive = defined.iter().filter(|c| **c > 0.0).count() as u64;
        assert_eq!(s["positive"].as_u64().unwrap(), positive);
    }
    let summary = summary_of(&out);
    assert!(summary.contains("## Significance at this scale"));
    assert!(summary.contains("Over 2 seeds of each network"));
    check_summary(&out);
}

#[test]
fn an_experiment_without_seeds_refuses_the_flag() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rd");
    let o = common::repsim(&[
        "experiment",
        "resnet_depths",
        "--smoke",
        "--seeds",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("does not take --seeds"), "{stderr}");
}

/// `bottom_up` observing every optimisation step: the convergence tables, the "first ...
/// reaching" numbers and the summary are in steps (256 images in batches of 128 for 2 epochs:
/// steps 0 to 4).
#[test]
fn bottom_up_tracks_every_k_steps_when_asked() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bu-steps");
    let mut config = bottom_up::BottomUpConfig::for_scale(repsim::experiments::Scale::Smoke);
    config.track_every_steps = Some(1);
    let config_path = dir.path().join("steps.json");
    let args = smoke_with_config(&out, &config, config_path.clone());
    bottom_up::run(&args).unwrap();
    let r = results(&out);
    for n in array(&r["networks"]) {
        for table in array(&n["convergence"]) {
            assert_eq!(table["unit"], "step");
            assert_eq!(table["epochs"], serde_json::json!([0, 1, 2, 3, 4]));
            let cols = array(&table["matrix"]["cols"]);
            assert_eq!(cols[4], "step 4");
            check_matrix(&table["matrix"], false);
        }
    }
    let summary = summary_of(&out);
    assert!(summary.contains("every 1 optimisation steps"), "{summary}");
    assert!(
        summary.contains("the first step at which a layer reaches"),
        "{summary}"
    );
    check_summary(&out);
    // A step count of 0 is refused with exit code 2.
    config.track_every_steps = Some(0);
    std::fs::write(&config_path, serde_json::to_string(&config).unwrap()).unwrap();
    let err = bottom_up::run(&args).unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    assert!(err.to_string().contains("track_every_steps"), "{err}");
}
