//! Sharded comparisons through the `repsim` binary: `compare --shard I/N --state F` and
//! `repsim merge` over 1, 2, 3 and 7 shards equal the unsharded matrix (minibatch CKA; linear
//! CKA and the CCA family from feature-space sums); streamed minibatch
//! CKA equals the in-memory one bit for bit; merge refuses mixed, missing, overlapping and
//! truncated states; and files larger than a memory limit (`ulimit -v`) are compared in
//! bounded memory.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{ok, repsim, text};
use rand::{Rng, SeedableRng};
use repsim_similarity::files::{write_npy, write_npz};
use repsim_similarity::HostLayer;
use serde_json::Value;

fn random_layer(name: &str, shape: Vec<usize>, rng: &mut impl Rng) -> HostLayer {
    let count = shape.iter().product();
    HostLayer {
        name: name.into(),
        values: (0..count).map(|_| rng.random_range(-1.0f32..1.0)).collect(),
        shape,
        stored_dtype: "f32",
    }
}

/// A (an npz of three layers, one of them conv) and B (a directory of two .npy files, one
/// related to A's first layer), 1000 examples.
fn inputs(dir: &Path) -> (PathBuf, PathBuf) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let n = 1000;
    let first = random_layer("l1", vec![n, 24], &mut rng);
    let mut related = random_layer("m1", vec![n, 24], &mut rng);
    for (r, f) in related.values.iter_mut().zip(&first.values) {
        *r = 0.3 * *r + f;
    }
    let a = dir.join("a.npz");
    write_npz(
        &a,
        &[
            first,
            random_layer("l2", vec![n, 3, 4, 4], &mut rng),
            random_layer("l3", vec![n, 10], &mut rng),
        ],
    )
    .unwrap();
    let b = dir.join("b");
    std::fs::create_dir(&b).unwrap();
    write_npy(&b.join("m1.npy"), &related).unwrap();
    write_npy(
        &b.join("m2.npy"),
        &random_layer("m2", vec![n, 16], &mut rng),
    )
    .unwrap();
    (a, b)
}

fn matrix(json: &Path) -> Vec<Vec<Option<f64>>> {
    let document: Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    serde_json::from_value(document["results"][0]["values"].clone()).unwrap()
}

fn compare(a: &Path, b: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "compare",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--batch-size",
        "64",
    ];
    args.extend(extra);
    repsim(&args)
}

fn shard_states(a: &Path, b: &Path, dir: &Path, count: usize, extra: &[&str]) -> Vec<PathBuf> {
    (0..count)
        .map(|i| {
            let state = dir.join(format!("part-{i}-of-{count}.state"));
            let shard = format!("{i}/{count}");
            let mut args = vec![
                "--shard",
                shard.as_str(),
                "--state",
                state.to_str().unwrap(),
            ];
            if !extra.contains(&"--metric") {
                args.extend(["--metric", "minibatch_cka"]);
            }
            args.extend(extra);
            ok(compare(a, b, &args));
            state
        })
        .collect()
}

fn merge(states: &[PathBuf], extra: &[&str]) -> Output {
    let mut args: Vec<&str> = vec!["merge"];
    args.extend(states.iter().map(|s| s.to_str().unwrap()));
    args.extend(extra);
    repsim(&args)
}

#[test]
fn merged_shards_equal_the_unsharded_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = inputs(dir.path());
    // In memory (the whole files read, as with any other metric) and streamed by rows.
    let in_memory = dir.path().join("in_memory.json");
    ok(compare(
        &a,
        &b,
        &[
            "--metric",
            "minibatch_cka,linear_cka",
            "--json",
            in_memory.to_str().unwrap(),
        ],
    ));
    let streamed = dir.path().join("streamed.json");
    ok(compare(
        &a,
        &b,
        &[
            "--metric",
            "minibatch_cka",
            "--json",
            streamed.to_str().unwrap(),
        ],
    ));
    let whole = matrix(&streamed);
    assert_eq!(whole, matrix(&in_memory), "streamed differs from in memory");
    assert!(whole[0][0].unwrap() > 0.5, "{whole:?}");

    for count in [1usize, 2, 3, 7] {
        let states = shard_states(&a, &b, dir.path(), count, &[]);
        let merged_json = dir.path().join(format!("merged-{count}.json"));
        // Any order of the files.
        let mut reversed = states.clone();
        reversed.reverse();
        ok(merge(&reversed, &["--json", merged_json.to_str().unwrap()]));
        let merged = matrix(&merged_json);
        for (row_m, row_w) in merged.iter().zip(&whole) {
            for (m, w) in row_m.iter().zip(row_w) {
                let (m, w) = (m.unwrap(), w.unwrap());
                assert!((m - w).abs() <= 1e-6, "{count} shards: {m} vs {w}");
                if count == 1 {
                    assert_eq!(m, w, "one shard sums in the same order");
                }
            }
        }
    }

    // Linear CKA and the CCA family from feature-space sums: every metric of 3 shards equals
    // the unsharded (in-memory) matrix.
    let family = "minibatch_cka,linear_cka,cca,svcca,pwcca,procrustes";
    let unsharded = dir.path().join("family.json");
    ok(compare(
        &a,
        &b,
        &["--metric", family, "--json", unsharded.to_str().unwrap()],
    ));
    let family_dir = dir.path().join("family");
    std::fs::create_dir(&family_dir).unwrap();
    let states = shard_states(&a, &b, &family_dir, 3, &["--metric", family]);
    let merged_json = dir.path().join("family-merged.json");
    ok(merge(&states, &["--json", merged_json.to_str().unwrap()]));
    let all = |path: &Path| -> Vec<(String, Vec<Vec<Option<f64>>>)> {
        let document: Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        document["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["metric"].as_str().unwrap().to_string(),
                    serde_json::from_value(r["values"].clone()).unwrap(),
                )
            })
            .collect()
    };
    let (expected, merged) = (all(&unsharded), all(&merged_json));
    assert_eq!(merged.len(), 6);
    for (metric, m) in &merged {
        let (_, e) = expected
            .iter()
            .find(|(name, _)| name == metric)
            .unwrap_or_else(|| panic!("{metric} not computed unsharded"));
        for (x, y) in e.iter().flatten().zip(m.iter().flatten()) {
            let (x, y) = (x.unwrap(), y.unwrap());
            assert!(
                (x - y).abs() <= 1e-6,
                "{metric}: unsharded {x} vs merged {y}"
            );
        }
    }

    // A against itself (B = A) shards and merges too.
    let states = shard_states(&a, &a, dir.path(), 2, &[]);
    let itself = dir.path().join("itself.json");
    ok(merge(&states, &["--json", itself.to_str().unwrap()]));
    let values = matrix(&itself);
    assert!((values[0][0].unwrap() - 1.0).abs() < 1e-6);
}

#[test]
fn merge_refuses_what_is_not_one_comparison() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = inputs(dir.path());
    let parts = dir.path().join("parts");
    std::fs::create_dir(&parts).unwrap();
    let states = shard_states(&a, &b, &parts, 3, &[]);
    let refused = |output: Output, expected: &[&str]| {
        assert_eq!(output.status.code(), Some(2), "{}", text(&output));
        for word in expected {
            assert!(text(&output).contains(word), "{word}: {}", text(&output));
        }
    };
    // A missing shard, named by its minibatches and examples.
    refused(
        merge(&[states[0].clone(), states[2].clone()], &[]),
        &["minibatches 5..10", "examples 320..640", "missing"],
    );
    // A shard given twice.
    refused(
        merge(
            &[
                states[0].clone(),
                states[1].clone(),
                states[1].clone(),
                states[2].clone(),
            ],
            &[],
        ),
        &["overlap"],
    );
    // Other parameters (how conv layers are shaped).
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let other_batch = shard_states(&a, &b, &other, 1, &["--conv", "pool=2"]);
    refused(
        merge(&[states[0].clone(), other_batch[0].clone()], &[]),
        &["parameters"],
    );
    // Other inputs.
    let other_b = shard_states(&a, &a, &other, 3, &[]);
    refused(
        merge(
            &[states[0].clone(), other_b[1].clone(), other_b[2].clone()],
            &[],
        ),
        &["input B"],
    );
    // A truncated state, and another format version.
    let bytes = std::fs::read(&states[1]).unwrap();
    let truncated = dir.path().join("truncated.state");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    refused(
        merge(
            &[states[0].clone(), truncated.clone(), states[2].clone()],
            &[],
        ),
        &["truncated.state", "not a complete state file"],
    );
    let mut future: Value = serde_json::from_slice(&bytes).unwrap();
    future["version"] = Value::from(99);
    let future_path = dir.path().join("future.state");
    std::fs::write(&future_path, future.to_string()).unwrap();
    refused(
        merge(&[states[0].clone(), future_path, states[2].clone()], &[]),
        &["version 99"],
    );
    // --state with another metric is refused, naming minibatch_cka.
    let state = dir.path().join("x.state");
    refused(
        compare(
            &a,
            &b,
            &[
                "--metric",
                "rbf_cka",
                "--shard",
                "0/2",
                "--state",
                state.to_str().unwrap(),
            ],
        ),
        &["rbf_cka", "minibatch_cka"],
    );
    assert!(!state.exists());
    // A shard out of range.
    refused(
        compare(
            &a,
            &b,
            &[
                "--metric",
                "minibatch_cka",
                "--shard",
                "2/2",
                "--state",
                state.to_str().unwrap(),
            ],
        ),
        &["--shard"],
    );
}

/// Writes an `n x d` float32 .npy of a smooth function of (row, column) and `seed`, in
/// chunks, without holding it in memory.
fn write_large_npy(path: &Path, n: usize, d: usize, seed: f32) {
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({n}, {d}), }}");
    let mut header = dict.into_bytes();
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    file.write_all(b"\x93NUMPY\x01\x00").unwrap();
    file.write_all(&(header.len() as u16).to_le_bytes())
        .unwrap();
    file.write_all(&header).unwrap();
    let mut row = vec![0u8; d * 4];
    for i in 0..n {
        for (j, chunk) in row.chunks_exact_mut(4).enumerate() {
            let v = ((i * 31 + j * 17) as f32 * 0.001 + seed).sin() + (j % 7) as f32 * 0.01;
            chunk.copy_from_slice(&v.to_le_bytes());
        }
        file.write_all(&row).unwrap();
    }
    file.flush().unwrap();
}

#[test]
fn files_larger_than_the_memory_limit_compare_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    // Two files of 20,000 x 2,048 float32: 164 MB each, 328 MB together.
    let (n, d) = (20_000, 2_048);
    let a = dir.path().join("big_a.npy");
    let b = dir.path().join("big_b.npy");
    write_large_npy(&a, n, d, 0.0);
    write_large_npy(&b, n, d, 0.5);
    let total = std::fs::metadata(&a).unwrap().len() + std::fs::metadata(&b).unwrap().len();
    // 250 MB of address space, for the program, its libraries and its threads: less than
    // the two files.
    let limit_kb = 250_000u64;
    assert!(total > limit_kb * 1024);
    let limited = dir.path().join("limited.json");
    let output = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {limit_kb} && exec \"$0\" compare \"$1\" \"$2\" --metric minibatch_cka --batch-size 256 --json \"$3\""
        ))
        .arg(env!("CARGO_BIN_EXE_repsim"))
        .arg(&a)
        .arg(&b)
        .arg(&limited)
        .env("REPSIM_DEVICE", "flex")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "under ulimit -v {limit_kb}: {}",
        text(&output)
    );
    // The same numbers as the whole files in memory (no limit).
    let in_memory = dir.path().join("in_memory.json");
    ok(repsim(&[
        "compare",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--metric",
        "minibatch_cka,linear_cka",
        "--batch-size",
        "256",
        "--json",
        in_memory.to_str().unwrap(),
    ]));
    assert_eq!(matrix(&limited), matrix(&in_memory));
}
