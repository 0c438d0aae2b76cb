#![recursion_limit = "256"]
//! Benchmark: what the content hashes of a sharded comparison cost against reading the rows.
//!
//! A shard (`repsim compare --shard I/N --state F`) hashes the bytes of every minibatch it
//! reads (xxh3) and fingerprints each input when it opens it (64 samples of 4 KiB per `.npy`
//! file; an `.npz` by its stored CRC-32s). This program writes one `.npy` file of `--rows` x
//! `--features` float32 (default 20,000 x 2,048: 164 MB) in a temporary directory, and times,
//! best of `--reps` full passes in batches of `--batch-size` (default 256), from the page cache:
//! - `open`: [`RowSource::open`], headers and the fingerprint;
//! - `read`: every batch through `read_rows` (read and decode to f32);
//! - `read + hash`: the same through `read_rows_hashed`, as a shard reads;
//!
//! and prints the hashing's share of the reading.
//!
//! ```text
//! cargo run --example row_hash_cost -- [--rows 20000] [--features 2048] [--reps 5]
//! ```

use std::time::Instant;

use repsim::similarity::files::{write_npy, HostLayer};
use repsim::similarity::{RowSource, Xxh3};

struct Options {
    rows: usize,
    features: usize,
    batch_size: usize,
    reps: usize,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        rows: 20_000,
        features: 2_048,
        batch_size: 256,
        reps: 5,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value: usize = args
            .next()
            .and_then(|v| v.parse().ok())
            .filter(|&v| v > 0)
            .ok_or(format!("{arg} needs a positive integer"))?;
        match arg.as_str() {
            "--rows" => options.rows = value,
            "--features" => options.features = value,
            "--batch-size" => options.batch_size = value,
            "--reps" => options.reps = value,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(options)
}

/// The fastest of `reps` runs, in seconds.
fn best_of(reps: usize, mut run: impl FnMut() -> Result<(), String>) -> Result<f64, String> {
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let t = Instant::now();
        run()?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(best)
}

fn main() -> Result<(), String> {
    let options = parse_args()?;
    let (n, d) = (options.rows, options.features);
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("layer.npy");
    let layer = HostLayer {
        name: "layer".into(),
        shape: vec![n, d],
        values: (0..n * d).map(|i| ((i % 9973) as f32).sin()).collect(),
        stored_dtype: "f32",
    };
    write_npy(&path, &layer).map_err(|e| e.to_string())?;
    drop(layer);
    let megabytes = (n * d * 4) as f64 / 1e6;
    let open = best_of(options.reps, || {
        RowSource::open(&path)
            .map(|_| ())
            .map_err(|e| e.to_string())
    })?;
    let source = RowSource::open(&path).map_err(|e| e.to_string())?;
    let batches: Vec<(usize, usize)> = (0..n)
        .step_by(options.batch_size)
        .map(|start| (start, options.batch_size.min(n - start)))
        .collect();
    let read = best_of(options.reps, || {
        for &(start, len) in &batches {
            source.read_rows(start, len).map_err(|e| e.to_string())?;
        }
        Ok(())
    })?;
    let hashed = best_of(options.reps, || {
        for &(start, len) in &batches {
            let mut hash = Xxh3::new();
            source
                .read_rows_hashed(start, len, &mut hash)
                .map_err(|e| e.to_string())?;
            std::hint::black_box(hash.digest());
        }
        Ok(())
    })?;
    println!(
        "{n} x {d} float32 ({megabytes:.0} MB), batches of {}, best of {} passes from the page cache:",
        options.batch_size, options.reps
    );
    println!("  open (headers + fingerprint): {:.2} ms", open * 1e3);
    println!("  read:        {read:.3} s ({:.0} MB/s)", megabytes / read);
    println!(
        "  read + hash: {hashed:.3} s ({:.0} MB/s): hashing adds {:+.1}% to reading",
        megabytes / hashed,
        (hashed / read - 1.0) * 100.0
    );
    Ok(())
}
