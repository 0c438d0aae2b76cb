//! `repsim compare --permutations P --bootstrap B`: p-values, null summaries and intervals in
//! the printed table (`*`), in the JSON (with P, B and the seed in the parameters) and in the
//! heatmap (a mark on the cells that are not significant); the same seed gives the same
//! numbers; shards and bad values are refused with an exit code of 2.

mod common;

use std::path::{Path, PathBuf};

use common::{ok, repsim, text};
use rand::{Rng, SeedableRng};
use repsim_similarity::files::write_npz;
use repsim_similarity::HostLayer;
use serde_json::Value;

fn random_layer(name: &str, n: usize, d: usize, rng: &mut impl Rng) -> HostLayer {
    HostLayer {
        name: name.into(),
        values: (0..n * d).map(|_| rng.random_range(-1.0f32..1.0)).collect(),
        shape: vec![n, d],
        stored_dtype: "f32",
    }
}

/// A: two layers; B: one layer that is A's first plus a little noise, one independent.
fn inputs(dir: &Path) -> (PathBuf, PathBuf) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let n = 200;
    let first = random_layer("a1", n, 12, &mut rng);
    let mut related = random_layer("b1", n, 12, &mut rng);
    for (r, f) in related.values.iter_mut().zip(&first.values) {
        *r = 0.2 * *r + f;
    }
    let a = dir.join("a.npz");
    write_npz(&a, &[first, random_layer("a2", n, 8, &mut rng)]).unwrap();
    let b = dir.join("b.npz");
    write_npz(&b, &[related, random_layer("b2", n, 10, &mut rng)]).unwrap();
    (a, b)
}

/// Linear and minibatch CKA with 199 permutations, 50 bootstrap replicates, calibrated, seeded,
/// written to `json`.
fn significance_run(
    a: &Path,
    b: &Path,
    seed: &str,
    json: &Path,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec![
        "--metric",
        "linear_cka,minibatch_cka",
        "--batch-size",
        "20",
        "--permutations",
        "199",
        "--bootstrap",
        "50",
        "--seed",
        seed,
        "--calibrated",
        "--json",
        json.to_str().unwrap(),
    ];
    args.extend(extra);
    run(a, b, &args)
}

fn run(a: &Path, b: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["compare", a.to_str().unwrap(), b.to_str().unwrap()];
    args.extend(extra);
    repsim(&args)
}

#[test]
fn permutations_and_bootstrap_reach_the_table_json_and_heatmap() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = inputs(dir.path());
    let json = dir.path().join("out.json");
    let plot = dir.path().join("out.png");
    let output = ok(significance_run(
        &a,
        &b,
        "5",
        &json,
        &["--plot", plot.to_str().unwrap()],
    ));
    let printed = text(&output);
    assert!(
        printed.contains("* p < 0.05 (199 permutations"),
        "{printed}"
    );
    assert!(
        printed.contains("95% bootstrap interval (half-samples)"),
        "{printed}"
    );
    assert!(
        printed.contains("95% bootstrap interval (batches)"),
        "{printed}"
    );
    assert!(printed.contains("calibrated"), "{printed}");

    let document: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for result in document["results"].as_array().unwrap() {
        let p = &result["p_value"];
        // a1 x b1 is related: the smallest p-value; a2 x b2 independent.
        assert_eq!(p[0][0].as_f64().unwrap(), 1.0 / 200.0, "{result}");
        assert!(p[1][1].as_f64().unwrap() > 0.01, "{result}");
        for field in ["null_mean", "null_p95", "calibrated", "ci_low", "ci_high"] {
            assert!(result[field][1][0].is_number(), "{field}: {result}");
        }
        let (low, high) = (
            result["ci_low"][0][0].as_f64().unwrap(),
            result["ci_high"][0][0].as_f64().unwrap(),
        );
        let value = result["values"][0][0].as_f64().unwrap();
        assert!(low < value && value < high, "{low} {value} {high}");
        let parameters = &result["parameters"];
        assert_eq!(parameters["permutations"], 199);
        assert_eq!(parameters["bootstrap"], 50);
        assert_eq!(parameters["seed"], 5);
        assert_eq!(parameters["ci"], 0.95);
    }
    // Two similarities: one grid, its cells marked.
    assert!(std::fs::metadata(&plot).unwrap().len() > 1000, "{plot:?}");
    for metric in ["linear_cka", "minibatch_cka"] {
        assert!(!dir.path().join(format!("out-{metric}.png")).exists());
    }

    // The same seed, the same numbers; another seed, other draws.
    let again = dir.path().join("again.json");
    let other = dir.path().join("other.json");
    for (path, seed) in [(&again, "5"), (&other, "6")] {
        ok(significance_run(&a, &b, seed, path, &[]));
    }
    let results = |p: &Path| -> Value {
        let d: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
        d["results"].clone()
    };
    assert_eq!(results(&json), results(&again));
    assert_ne!(
        results(&json)[0]["null_mean"],
        results(&other)[0]["null_mean"]
    );
}

#[test]
fn shards_and_bad_values_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = inputs(dir.path());
    let state = dir.path().join("s.json");
    for (extra, expected) in [
        (
            vec![
                "--metric",
                "minibatch_cka",
                "--batch-size",
                "20",
                "--permutations",
                "10",
                "--shard",
                "0/2",
                "--state",
                state.to_str().unwrap(),
            ],
            "leave out --state",
        ),
        (vec!["--bootstrap", "10", "--ci", "1.2"], "--ci"),
        (vec!["--calibrated"], "--permutations"),
        (
            vec![
                "--metric",
                "minibatch_cka",
                "--batch-size",
                "200",
                "--bootstrap",
                "10",
            ],
            "batches",
        ),
    ] {
        let output = run(&a, &b, &extra);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{extra:?}: {}",
            text(&output)
        );
        assert!(
            text(&output).contains(expected),
            "{extra:?}: {}",
            text(&output)
        );
    }
    assert!(!state.exists());
}
