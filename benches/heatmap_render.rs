#![recursion_limit = "256"]
//! Benchmark: time to draw heatmaps of 12 x 12 to 300 x 300 layers as PNG and SVG (the blog's
//! ResNet-50 vs ResNet-152 figures have hundreds of layers per axis).
//!
//! `cargo run --example heatmap_render -- [--reps 5]`

use std::time::Instant;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use repsim::similarity::SimilarityMatrix;
use repsim::viz::{render_png, render_svg, Heatmap, HeatmapOptions};

#[derive(Parser)]
struct Args {
    /// Timed repetitions per size.
    #[arg(long, default_value_t = 5)]
    reps: usize,
}

fn matrix(n: usize) -> SimilarityMatrix {
    let names: Vec<String> = (0..n)
        .map(|i| format!("stage{}.block{}.out", i / 50 + 1, i % 50 + 1))
        .collect();
    SimilarityMatrix {
        measure: repsim::similarity::Measure::LINEAR_CKA,
        parameters: Default::default(),
        n_examples: Some(10_000),
        rows: names.clone(),
        cols: names,
        values: (0..n)
            .map(|i| {
                (0..n)
                    .map(|j| Some((-((i as f64 - j as f64).abs()) / 40.0).exp()))
                    .collect()
            })
            .collect(),
        warnings: Vec::new(),
        significance: Default::default(),
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let reps = args.reps.max(1);
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "{:>5} {:>12} {:>12} {:>10} {:>10}",
        "n", "png ms", "svg ms", "png KB", "svg KB"
    );
    for n in [12, 50, 150, 300] {
        let m = matrix(n);
        let heatmap = Heatmap::new(&m, HeatmapOptions::default());
        let (mut png_times, mut svg_times) = (Vec::new(), Vec::new());
        let (mut png_size, mut svg_size) = (0, 0);
        for _ in 0..reps {
            let t = Instant::now();
            match render_png(&heatmap) {
                Ok(bytes) => png_size = bytes.len(),
                Err(e) => {
                    eprintln!("error: {e}");
                    return std::process::ExitCode::from(1);
                }
            }
            png_times.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            match render_svg(&heatmap) {
                Ok(text) => svg_size = text.len(),
                Err(e) => {
                    eprintln!("error: {e}");
                    return std::process::ExitCode::from(1);
                }
            }
            svg_times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        println!(
            "{n:>5} {:>12.1} {:>12.1} {:>10} {:>10}",
            median(png_times),
            median(svg_times),
            png_size / 1024,
            svg_size / 1024
        );
    }
    std::process::ExitCode::SUCCESS
}
