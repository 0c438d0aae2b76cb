//! Every experiment's `--smoke` run: outputs exist and are sane, and a rerun reuses the
//! trained weights.

use std::path::Path;

use repsim::experiments::{
    bottom_up, memorize_vs_generalize, resnet_depths, wide_vs_deep, ExperimentArgs,
};
use repsim::DeviceChoice;
use serde_json::Value;

fn smoke(out: &Path) -> ExperimentArgs {
    ExperimentArgs {
        out: Some(out.to_path_buf()),
        device: DeviceChoice::Flex,
        seed: 0,
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

fn results(out: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap()
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
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("wvd");
    wide_vs_deep::run(&smoke(&out)).unwrap();
    let r = results(&out);
    let models = r["models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    for m in models {
        check_matrix(&m["within_cka"], true);
        check_matrix(&m["cka_first_pc_removed"], false);
        let layers = m["within_cka"]["rows"].as_array().unwrap().len();
        assert_eq!(m["first_pc_fraction"].as_array().unwrap().len(), layers);
        assert_eq!(m["reused"], false);
    }
    assert!(!r["cross"].as_array().unwrap().is_empty());
    for c in r["cross"].as_array().unwrap() {
        check_matrix(&c["cka"], false);
    }
    assert!(r["provenance"]["repsim_version"].is_string());
    check_summary(&out);
    // A rerun with the same config reuses every trained model.
    wide_vs_deep::run(&smoke(&out)).unwrap();
    for m in results(&out)["models"].as_array().unwrap() {
        assert_eq!(m["reused"], true);
    }
}

#[test]
fn bottom_up_smoke_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bu");
    bottom_up::run(&smoke(&out)).unwrap();
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
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mvg");
    memorize_vs_generalize::run(&smoke(&out)).unwrap();
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
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rd");
    resnet_depths::run(&smoke(&out)).unwrap();
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
