//! Sharded comparisons through the `repsim` binary: `compare --shard I/N --state F` and
//! `repsim merge` over 1, 2, 3 and 7 shards equal the unsharded matrix (minibatch CKA; linear
//! CKA and the CCA family from feature-space sums); streamed minibatch
//! CKA equals the in-memory one bit for bit; merge refuses mixed, missing, overlapping and
//! truncated states; and files larger than a memory limit (peak resident memory) are compared in
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

/// Runs `command` to its end and returns its output and its peak resident set size in kB
/// (`wait4`'s `ru_maxrss` for this one child).
fn run_measuring_rss(mut command: Command) -> (Output, u64) {
    use std::io::Read;
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (mut stdout, mut stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out_reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        stdout.read_to_end(&mut bytes).unwrap();
        bytes
    });
    let mut err_bytes = Vec::new();
    stderr.read_to_end(&mut err_bytes).unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 fills it for this child, which is
    // reaped here (the Child is not waited on again).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t, "wait4 failed");
    use std::os::unix::process::ExitStatusExt;
    let output = Output {
        status: std::process::ExitStatus::from_raw(status),
        stdout: out_reader.join().unwrap(),
        stderr: err_bytes,
    };
    (output, usage.ru_maxrss as u64)
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
    // Peak resident memory below 250 MB, for the program, its libraries and its threads: less
    // than the two files. (Resident, not virtual: gemm reserves scratch address space of twice
    // the L3 cache, 520 MiB on a 260 MiB-L3 Xeon, and touches little of it, so `ulimit -v`
    // measured the CPU, not the comparison.)
    let limit_kb = 250_000u64;
    assert!(total > limit_kb * 1024);
    let limited = dir.path().join("limited.json");
    let mut command = Command::new(env!("CARGO_BIN_EXE_repsim"));
    command
        .args(["compare", a.to_str().unwrap(), b.to_str().unwrap()])
        .args(["--metric", "minibatch_cka", "--batch-size", "256", "--json"])
        .arg(&limited)
        .env("REPSIM_DEVICE", "flex");
    let (output, peak_kb) = run_measuring_rss(command);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        peak_kb < limit_kb,
        "the streamed comparison peaked at {peak_kb} kB resident, the files are {total} bytes"
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

/// `value` of `path` (JSON) as the library's state type.
fn read_state_json(path: &Path) -> repsim_similarity::shard::CompareState {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn refused(output: Output, expected: &[&str]) {
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    for word in expected {
        assert!(text(&output).contains(word), "{word}: {}", text(&output));
    }
}

/// A copy of the layers of `from` with every value moved: same names, shapes and dtypes.
fn same_shapes_other_values(from: &Path, to: &Path) {
    let mut layers = repsim_similarity::read_activations(from).unwrap();
    for layer in &mut layers {
        for v in &mut layer.values {
            *v = 0.5 * *v + 0.1;
        }
    }
    write_npz(to, &layers).unwrap();
}

#[test]
fn merge_refuses_shards_that_read_other_data() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = inputs(dir.path());
    let a2 = dir.path().join("a2.npz");
    same_shapes_other_values(&a, &a2);
    for metric in ["minibatch_cka", "linear_cka"] {
        let parts = dir.path().join(format!("parts-{metric}"));
        std::fs::create_dir(&parts).unwrap();
        let states = shard_states(&a, &b, &parts, 3, &["--metric", metric]);
        // Shard 1 from another file of the same shapes.
        let other_dir = dir.path().join(format!("other-{metric}"));
        std::fs::create_dir(&other_dir).unwrap();
        let other = shard_states(&a2, &b, &other_dir, 3, &["--metric", metric]);
        refused(
            merge(
                &[states[0].clone(), other[1].clone(), states[2].clone()],
                &[],
            ),
            &["input A", "a2.npz", "different files, or the file changed"],
        );
    }
    // The same path, overwritten between shards: shards 0 and 2 read the old content, shard
    // 1 the new. The directory of .npy files (input B) is caught the same way.
    let parts = dir.path().join("overwritten");
    std::fs::create_dir(&parts).unwrap();
    let before = shard_states(&a, &b, &parts, 3, &[]);
    let m2 = b.join("m2.npy");
    let original = std::fs::read(&m2).unwrap();
    let mut changed = repsim_similarity::read_activations(&m2).unwrap();
    for v in &mut changed[0].values {
        *v = -*v;
    }
    write_npy(&m2, &changed[0]).unwrap();
    let middle = parts.join("middle.state");
    ok(compare(
        &a,
        &b,
        &[
            "--metric",
            "minibatch_cka",
            "--shard",
            "1/3",
            "--state",
            middle.to_str().unwrap(),
        ],
    ));
    refused(
        merge(&[before[0].clone(), middle.clone(), before[2].clone()], &[]),
        &["input B", "middle.state", "the file changed between shards"],
    );
    std::fs::write(&m2, original).unwrap();
}

#[test]
fn merged_shards_carry_the_identity_of_the_unsharded_pass() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = inputs(dir.path());
    let whole = dir.path().join("whole.json");
    ok(compare(
        &a,
        &b,
        &[
            "--metric",
            "minibatch_cka",
            "--json",
            whole.to_str().unwrap(),
        ],
    ));
    let inputs_of = |path: &Path| {
        let document: Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        document["meta"]["inputs"].clone()
    };
    let expected = inputs_of(&whole);
    assert!(expected["a"]["rows_hash"].as_str().unwrap().len() == 16);
    assert!(expected["a"]["fingerprint"]
        .as_str()
        .unwrap()
        .starts_with("zip-crc32:"));
    assert!(expected["b"]["fingerprint"]
        .as_str()
        .unwrap()
        .starts_with("sampled:"));
    for count in [2usize, 5] {
        let parts = dir.path().join(format!("parts-{count}"));
        std::fs::create_dir(&parts).unwrap();
        let states = shard_states(&a, &b, &parts, count, &[]);
        let merged = parts.join("merged.json");
        ok(merge(&states, &["--json", merged.to_str().unwrap()]));
        assert_eq!(inputs_of(&merged), expected, "{count} shards");
    }
}

#[test]
fn damaged_and_contradictory_state_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = inputs(dir.path());
    let parts = dir.path().join("parts");
    std::fs::create_dir(&parts).unwrap();
    let states = shard_states(&a, &b, &parts, 3, &["--metric", "minibatch_cka,linear_cka"]);
    let with = |i: usize, path: &Path| {
        let mut all = states.clone();
        all[i] = path.to_path_buf();
        all
    };
    // One digit of a sum changed: the checksum no longer matches.
    let text_of = std::fs::read_to_string(&states[1]).unwrap();
    let mut value: Value = serde_json::from_str(&text_of).unwrap();
    let sum = value["minibatch"]["hsic_ab"][0].as_f64().unwrap();
    value["minibatch"]["hsic_ab"][0] = Value::from(sum * 1.01);
    let edited = dir.path().join("edited.state");
    std::fs::write(&edited, value.to_string()).unwrap();
    refused(merge(&with(1, &edited), &[]), &["edited.state", "checksum"]);
    // Forged with a valid checksum: counts that contradict the range.
    let mut forged = read_state_json(&states[1]);
    forged.minibatch.as_mut().unwrap().n_batches += 1;
    forged.seal().unwrap();
    let forged_path = dir.path().join("forged.state");
    std::fs::write(&forged_path, serde_json::to_string(&forged).unwrap()).unwrap();
    refused(
        merge(&with(1, &forged_path), &[]),
        &["forged.state", "full batches"],
    );
    let mut forged = read_state_json(&states[2]);
    forged.covariance.as_mut().unwrap().n -= 1;
    forged.seal().unwrap();
    std::fs::write(&forged_path, serde_json::to_string(&forged).unwrap()).unwrap();
    refused(
        merge(&with(2, &forged_path), &[]),
        &["forged.state", "feature-space sums over"],
    );
    let mut forged = read_state_json(&states[0]);
    forged.batches = 0..6;
    forged.a.batch_hashes.push("0".repeat(16));
    forged.b.as_mut().unwrap().batch_hashes.push("0".repeat(16));
    forged.seal().unwrap();
    std::fs::write(&forged_path, serde_json::to_string(&forged).unwrap()).unwrap();
    refused(
        merge(&with(0, &forged_path), &[]),
        &["forged.state", "are not shard 0/3"],
    );
    // A state of the previous format (no hashes, no checksum) names its version.
    let mut old: Value = serde_json::from_str(&text_of).unwrap();
    old["version"] = Value::from(1);
    std::fs::write(&edited, old.to_string()).unwrap();
    refused(
        merge(&with(1, &edited), &[]),
        &["version 1", "compute the shards again"],
    );
    // The missing range names examples within the data (1,000, not 1,024).
    refused(
        merge(&states[..2], &[]),
        &["minibatches 10..16", "examples 640..1000"],
    );
}

/// Writes `layer` as a Fortran-order (column-major) .npy file.
fn write_fortran_npy(path: &Path, layer: &HostLayer) {
    let shape = layer
        .shape
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let dict = format!("{{'descr': '<f4', 'fortran_order': True, 'shape': ({shape}), }}");
    let mut header = dict.into_bytes();
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header);
    // Column-major: the first index varies fastest.
    let n = layer.shape[0];
    let rest = &layer.shape[1..];
    let features: usize = rest.iter().product();
    let mut fortran = vec![0f32; layer.values.len()];
    for i in 0..n {
        for flat in 0..features {
            let mut index = vec![0usize; rest.len()];
            let mut r = flat;
            for (k, d) in rest.iter().enumerate().rev() {
                index[k] = r % d;
                r /= d;
            }
            let mut column = 0;
            for (k, d) in rest.iter().enumerate().rev() {
                column = column * d + index[k];
            }
            fortran[i + n * column] = layer.values[i * features + flat];
        }
    }
    for v in fortran {
        bytes.extend(v.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn fortran_order_files_stream_and_shard_as_c_order_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let conv = random_layer("conv", vec![300, 3, 2, 4], &mut rng);
    let other = random_layer("other", vec![300, 7], &mut rng);
    let c_order = dir.path().join("c.npy");
    let fortran = dir.path().join("f.npy");
    let b = dir.path().join("b.npy");
    write_npy(&c_order, &conv).unwrap();
    write_fortran_npy(&fortran, &conv);
    write_npy(&b, &other).unwrap();
    let run = |a: &Path, name: &str| {
        let json = dir.path().join(name);
        ok(compare(
            a,
            &b,
            &[
                "--metric",
                "minibatch_cka",
                "--json",
                json.to_str().unwrap(),
            ],
        ));
        matrix(&json)
    };
    let expected = run(&c_order, "c.json");
    assert_eq!(run(&fortran, "f.json"), expected);
    // Sharded from the Fortran file: the same rows, so the same row hashes as the C file's.
    let parts = dir.path().join("parts");
    std::fs::create_dir(&parts).unwrap();
    let states = shard_states(&fortran, &b, &parts, 2, &[]);
    let merged = parts.join("merged.json");
    ok(merge(&states, &["--json", merged.to_str().unwrap()]));
    assert_eq!(matrix(&merged), expected);
    let c_parts = dir.path().join("c-parts");
    std::fs::create_dir(&c_parts).unwrap();
    let c_states = shard_states(&c_order, &b, &c_parts, 2, &[]);
    assert_eq!(
        read_state_json(&states[0]).a.batch_hashes,
        read_state_json(&c_states[0]).a.batch_hashes
    );
}

#[test]
fn shard_specifications_and_sizes_at_the_edges() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = inputs(dir.path());
    let state = dir.path().join("edge.state");
    let state_arg = state.to_str().unwrap();
    // The largest shard numbers: no overflow, shard 18446744073709551614 holds the last batch.
    let huge = compare(
        &a,
        &b,
        &[
            "--metric",
            "minibatch_cka",
            "--shard",
            "18446744073709551614/18446744073709551615",
            "--state",
            state_arg,
        ],
    );
    assert!(huge.status.success(), "{}", text(&huge));
    assert_eq!(read_state_json(&state).batches, 15..16);
    // A negative shard reaches repsim's own message.
    refused(
        compare(
            &a,
            &b,
            &[
                "--metric",
                "minibatch_cka",
                "--shard",
                "-1/2",
                "--state",
                state_arg,
            ],
        ),
        &["--shard", "I is not a number"],
    );
    // shape_angular is refused with its own reason.
    let shape = compare(
        &a,
        &b,
        &[
            "--metric",
            "shape_angular",
            "--shard",
            "0/2",
            "--state",
            state_arg,
        ],
    );
    refused(shape, &["shape_angular aligns every example at once"]);
    // Linear CKA on 5 examples: the batch size only sets how rows are read.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let small_a = dir.path().join("small_a.npy");
    let small_b = dir.path().join("small_b.npy");
    write_npy(&small_a, &random_layer("x", vec![5, 6], &mut rng)).unwrap();
    write_npy(&small_b, &random_layer("y", vec![5, 4], &mut rng)).unwrap();
    // (`compare` asks for batches of 64, more than the 5 examples.)
    let small_state = dir.path().join("small.state");
    ok(compare(
        &small_a,
        &small_b,
        &[
            "--metric",
            "linear_cka",
            "--shard",
            "0/1",
            "--state",
            small_state.to_str().unwrap(),
        ],
    ));
    let merged = dir.path().join("small.json");
    ok(merge(&[small_state], &["--json", merged.to_str().unwrap()]));
    let whole = dir.path().join("small-whole.json");
    ok(compare(
        &small_a,
        &small_b,
        &["--metric", "linear_cka", "--json", whole.to_str().unwrap()],
    ));
    let (m, w) = (
        matrix(&merged)[0][0].unwrap(),
        matrix(&whole)[0][0].unwrap(),
    );
    assert!((m - w).abs() < 1e-6, "{m} vs {w}");
}

#[test]
fn merge_verifies_every_row_against_the_inputs_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(21);
    // 2,000 x 64 float32: 512 kB, more than the fingerprint's 64 samples of 4 kB cover.
    let a = dir.path().join("a.npy");
    let b = dir.path().join("b.npy");
    write_npy(&a, &random_layer("a", vec![2000, 64], &mut rng)).unwrap();
    write_npy(&b, &random_layer("b", vec![2000, 8], &mut rng)).unwrap();
    let states = shard_states(&a, &b, dir.path(), 2, &[]);
    let merged = dir.path().join("merged.json");
    ok(merge(
        &states,
        &["--verify-inputs", "--json", merged.to_str().unwrap()],
    ));
    // One value changed between two of the fingerprint's samples, inside shard 0's rows.
    let size = std::fs::metadata(&a).unwrap().len();
    let span = size - 4096;
    let offset = (span * 10 / 63 + 4096 + 1000) / 4 * 4;
    assert!(
        offset + 4 < span * 11 / 63,
        "the change must fall between two samples"
    );
    let mut bytes = std::fs::read(&a).unwrap();
    bytes[offset as usize] ^= 0x40;
    std::fs::write(&a, &bytes).unwrap();
    // The fingerprint does not see it, so a plain merge goes through (the documented limit)...
    ok(merge(&states, &[]));
    // ...and the row check does, naming the shard, the input and the minibatch.
    refused(
        merge(&states, &["--verify-inputs"]),
        &[
            "part-0-of-2.state",
            "input A",
            "changed since this shard read it",
            "minibatch",
        ],
    );
}

/// The files of the previous state version (2: the measures by name, SVCCA's and PWCCA's
/// parameters beside them), written by repsim 0.1.0 at commit 5656d90 into
/// `tests/fixtures/previous_version` (see its README): its two shards merge, with every row
/// verified, into the matrices that version merged, the measures typed with their parameters;
/// and a shard of this version merges with one of that version.
#[test]
fn states_of_the_previous_version_merge_into_what_it_merged() {
    // Read at run time: a test binary reused by another checkout reads its own fixtures.
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let old = Path::new("tests/fixtures/previous_version");
    let dir = tempfile::tempdir().unwrap();
    let merged = dir.path().join("merged.json");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_repsim"))
            .args(args)
            .env("REPSIM_DEVICE", "flex")
            .current_dir(&root)
            .output()
            .unwrap()
    };
    let state = |i: usize| old.join(format!("state-{i}-of-2.json"));
    ok(run(&[
        "merge",
        state(0).to_str().unwrap(),
        state(1).to_str().unwrap(),
        "--verify-inputs",
        "--json",
        merged.to_str().unwrap(),
    ]));
    let read = |path: &Path| -> repsim_similarity::ResultsFile {
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let (now, then) = (read(&merged), read(&root.join(old).join("merged.json")));
    let specs: Vec<String> = now.results.iter().map(|m| m.measure.spec()).collect();
    assert_eq!(
        specs,
        [
            "minibatch_cka:batch_size=8",
            "svcca:dims=3",
            "pwcca:convention=textbook"
        ]
    );
    for (a, b) in now.results.iter().zip(&then.results) {
        assert_eq!(a.measure, b.measure);
        for (x, y) in a.values.iter().flatten().zip(b.values.iter().flatten()) {
            let (x, y) = (x.unwrap(), y.unwrap());
            assert!((x - y).abs() < 1e-12, "{}: {x} vs {y}", a.measure);
        }
    }
    // Shard 0 of this version with shard 1 of the previous one.
    let fresh = dir.path().join("state-0.json");
    ok(run(&[
        "compare",
        old.join("a.npz").to_str().unwrap(),
        old.join("b.npz").to_str().unwrap(),
        "--metric",
        "minibatch_cka,svcca:dims=3,pwcca:convention=textbook",
        "--batch-size",
        "8",
        "--shard",
        "0/2",
        "--state",
        fresh.to_str().unwrap(),
    ]));
    let mixed = dir.path().join("mixed.json");
    ok(run(&[
        "merge",
        fresh.to_str().unwrap(),
        state(1).to_str().unwrap(),
        "--json",
        mixed.to_str().unwrap(),
    ]));
    assert_eq!(read(&mixed).results, now.results);
    // A shard of other parameters is refused, naming them.
    let other = dir.path().join("state-0-dims-2.json");
    ok(run(&[
        "compare",
        old.join("a.npz").to_str().unwrap(),
        old.join("b.npz").to_str().unwrap(),
        "--metric",
        "minibatch_cka,svcca:dims=2,pwcca:convention=textbook",
        "--batch-size",
        "8",
        "--shard",
        "0/2",
        "--state",
        other.to_str().unwrap(),
    ]));
    let refused = run(&["merge", other.to_str().unwrap(), state(1).to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("svcca:dims=2"),
        "{}",
        text(&refused)
    );
}
