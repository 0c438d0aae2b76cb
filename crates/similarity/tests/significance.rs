//! Permutation nulls and bootstrap intervals (`repsim_similarity::significance`):
//! - every fast path's null draws equal the matrix recomputed on B's permuted rows (the same
//!   permutations, exposed for this check);
//! - p-values are uniform on independent data (Kolmogorov-Smirnov, a loose bound) and as small
//!   as they can be (`1 / (1 + P)`) on identical data, for similarities and distances;
//! - bootstrap intervals cover the population value in most repeated draws (seeded, loose).

use burn::tensor::{Device, Tensor, TensorData};
use repsim_similarity::significance::batches::batch_permutations;
use repsim_similarity::significance::permutation::{select_rows, whole_data_permutations};
use repsim_similarity::significance::{assess, permutation_null, SignificanceOptions};
use repsim_similarity::testing::SplitMix64;
use repsim_similarity::{similarity_matrix, Layer, Measure, MEASURE_NAMES};

fn layer(name: &str, values: Vec<f32>, n: usize, device: &Device) -> Layer {
    let d = values.len() / n;
    Layer::new(
        name,
        Tensor::<2>::from_data(TensorData::new(values, [n, d]), device),
    )
    .unwrap()
}

/// Three layers of `n` examples sharing a latent signal, with different noise and widths.
fn related_layers(n: usize, seed: u64, device: &Device) -> Vec<Layer> {
    let mut rng = SplitMix64::new(seed);
    let latent: Vec<f64> = (0..n * 4).map(|_| rng.normal()).collect();
    [(6, 0.3), (9, 0.8), (5, 1.5)]
        .iter()
        .enumerate()
        .map(|(l, &(d, noise))| {
            let weights: Vec<f64> = (0..4 * d).map(|_| rng.normal()).collect();
            let mut values = Vec::with_capacity(n * d);
            for i in 0..n {
                for j in 0..d {
                    let signal: f64 = (0..4).map(|t| latent[i * 4 + t] * weights[t * d + j]).sum();
                    values.push((signal + noise * rng.normal()) as f32);
                }
            }
            layer(&format!("l{l}"), values, n, device)
        })
        .collect()
}

/// Independent Gaussian layers.
fn noise_layers(n: usize, count: usize, seed: u64, device: &Device) -> Vec<Layer> {
    let mut rng = SplitMix64::new(seed);
    (0..count)
        .map(|l| {
            let d = 3 + 2 * l;
            layer(
                &format!("z{l}"),
                (0..n * d).map(|_| rng.normal() as f32).collect(),
                n,
                device,
            )
        })
        .collect()
}

const FAST_PATHS: [&str; 7] = [
    "linear_cka",
    "linear_cka_debiased",
    "rbf_cka",
    "rbf_cka_debiased",
    "rsa",
    "mutual_knn",
    "cca",
];

/// The measure `name` with `k` neighbours and minibatches of `batch_size` where it has them.
fn measure(name: &str, k: usize, batch_size: usize) -> Measure {
    Measure::from_spec(
        name,
        &[("k", k.to_string()), ("batch_size", batch_size.to_string())],
    )
    .unwrap()
}

#[test]
fn null_draws_equal_the_matrix_on_permuted_rows() {
    let device = Device::flex();
    let n = 40;
    let a = related_layers(n, 1, &device);
    let b = related_layers(n, 2, &device);
    let draws = 5;
    let permutations = whole_data_permutations(n, draws, 7);
    for name in FAST_PATHS {
        let metric = measure(name, 5, 256);
        for (side_a, side_b) in [(&a, &b), (&a, &a)] {
            let null = permutation_null(&metric, side_a, side_b, draws, 7).unwrap();
            let direct = similarity_matrix(&metric, side_a, side_b).unwrap();
            for (c, value) in direct.values.iter().flatten().enumerate() {
                let same_path = null.observed[c].unwrap();
                assert!(
                    (same_path - value.unwrap()).abs() < 1e-5,
                    "{metric}: {same_path} vs {value:?}"
                );
            }
            for (k, order) in permutations.iter().enumerate() {
                let permuted = select_rows(side_b, order);
                let expected = similarity_matrix(&metric, side_a, &permuted).unwrap();
                for (c, value) in expected.values.iter().flatten().enumerate() {
                    let got = null.null[k * null.observed.len() + c].unwrap();
                    assert!(
                        (got - value.unwrap()).abs() < 1e-5,
                        "{metric} draw {k} cell {c}: {got} vs {value:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn minibatch_null_permutes_within_batches() {
    let device = Device::flex();
    let (n, m) = (60, 20);
    let a = related_layers(n, 3, &device);
    let b = related_layers(n, 4, &device);
    let metric = Measure::minibatch_cka(m);
    let draws = 3;
    let null = permutation_null(&metric, &a, &b, draws, 11).unwrap();
    let direct = similarity_matrix(&metric, &a, &b).unwrap();
    for (c, value) in direct.values.iter().flatten().enumerate() {
        assert!((null.observed[c].unwrap() - value.unwrap()).abs() < 1e-5);
    }
    let per_batch: Vec<Vec<Vec<u32>>> = (0..n / m)
        .map(|t| batch_permutations(m, draws, 11, t))
        .collect();
    for k in 0..draws {
        let order: Vec<u32> = (0..n / m)
            .flat_map(|t| per_batch[t][k].iter().map(move |&i| (t * m) as u32 + i))
            .collect();
        let expected = similarity_matrix(&metric, &a, &select_rows(&b, &order)).unwrap();
        for (c, value) in expected.values.iter().flatten().enumerate() {
            let got = null.null[k * null.observed.len() + c].unwrap();
            assert!(
                (got - value.unwrap()).abs() < 1e-5,
                "draw {k}: {got} vs {value:?}"
            );
        }
    }
}

/// Kolmogorov-Smirnov distance of `values` from the uniform distribution on [0, 1].
fn ks_uniform(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len() as f64;
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| (v - i as f64 / n).abs().max(((i + 1) as f64 / n - v).abs()))
        .fold(0.0, f64::max)
}

#[test]
fn p_values_are_uniform_on_independent_data() {
    let device = Device::flex();
    let n = 48;
    for name in [
        "linear_cka",
        "minibatch_cka",
        "mutual_knn",
        "rsa",
        "procrustes",
    ] {
        let metric = measure(name, 5, 16);
        let mut p_values = Vec::new();
        // Distinct data sets, so the p-values are independent draws.
        for set in 0..60u64 {
            let a = noise_layers(n, 1, 100 + 2 * set, &device);
            let b = noise_layers(n, 1, 101 + 2 * set, &device);
            let mut m = similarity_matrix(&metric, &a, &b).unwrap();
            let significance = SignificanceOptions {
                permutations: 99,
                seed: set,
                ..SignificanceOptions::default()
            };
            assess(&mut m, &a, &b, &significance).unwrap();
            p_values.push(m.significance.p_value.unwrap()[0][0].unwrap());
        }
        // The 0.1% critical value of the one-sample KS statistic is 1.95 / sqrt(N); the
        // p-values are discrete (steps of 1/100), which only makes the test conservative.
        let d = ks_uniform(p_values.clone());
        assert!(
            d < 1.95 / (p_values.len() as f64).sqrt(),
            "{metric}: KS distance {d}, {p_values:?}"
        );
        let small = p_values.iter().filter(|&&p| p < 0.05).count();
        assert!(small <= 10, "{metric}: {small} of 60 p-values below 0.05");
    }
}

#[test]
fn identical_data_gets_the_smallest_p_value() {
    let device = Device::flex();
    let layers = related_layers(40, 5, &device);
    let significance = SignificanceOptions {
        permutations: 199,
        calibrated: true,
        ..SignificanceOptions::default()
    };
    for name in MEASURE_NAMES {
        let metric = measure(name, 5, 10);
        let mut m = similarity_matrix(&metric, &layers, &layers).unwrap();
        assess(&mut m, &layers, &layers, &significance).unwrap();
        let p = m.significance.p_value.as_ref().unwrap();
        for i in 0..layers.len() {
            assert_eq!(p[i][i], Some(1.0 / 200.0), "{metric} layer {i}");
        }
        let calibrated = m.significance.calibrated.as_ref().unwrap()[0][0].unwrap();
        if metric.is_distance() {
            assert!(calibrated < 0.0, "{metric}: {calibrated}");
        } else {
            assert!(calibrated > 0.0, "{metric}: {calibrated}");
        }
        assert_eq!(m.parameters["permutations"], 199);
    }
}

/// `y = x W + noise` with `x ~ N(0, I_dx)`: the population linear CKA is
/// `tr(S_xy S_yx) / sqrt(tr(S_xx^2) tr(S_yy^2)) = ||W||_F^2 / sqrt(dx ||S_yy||_F^2)` with `S_xx = I`, `S_xy = W`,
/// `S_yy = W^T W + s^2 I`.
fn population_pair(n: usize, seed: u64, device: &Device) -> (Vec<Layer>, Vec<Layer>, f64) {
    let (dx, dy, noise) = (3usize, 2usize, 1.0f64);
    let w = [1.0, 0.5, -0.5, 1.0, 0.3, 0.2];
    let mut rng = SplitMix64::new(seed);
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let x: Vec<f64> = (0..dx).map(|_| rng.normal()).collect();
        for j in 0..dy {
            let s: f64 = (0..dx).map(|t| x[t] * w[t * dy + j]).sum();
            ys.push((s + noise * rng.normal()) as f32);
        }
        xs.extend(x.iter().map(|&v| v as f32));
    }
    // tr(S_xy S_yx) = ||W||^2; tr(S_xx^2) = dx; S_yy = W^T W + s^2 I.
    let w_sq: f64 = w.iter().map(|v| v * v).sum();
    let mut syy = [[0.0; 2]; 2];
    for (j, row) in syy.iter_mut().enumerate() {
        for (l, cell) in row.iter_mut().enumerate() {
            *cell = (0..dx).map(|t| w[t * dy + j] * w[t * dy + l]).sum::<f64>()
                + if j == l { noise * noise } else { 0.0 };
        }
    }
    let syy_sq: f64 = syy.iter().flatten().map(|v| v * v).sum();
    let population = w_sq / ((dx as f64) * syy_sq).sqrt();
    (
        vec![layer("x", xs, n, device)],
        vec![layer("y", ys, n, device)],
        population,
    )
}

#[test]
fn bootstrap_intervals_cover_the_population_value() {
    let device = Device::flex();
    let draws = 30;
    for (metric, n) in [
        (Measure::LINEAR_CKA_DEBIASED, 120),
        (Measure::minibatch_cka(20), 400),
    ] {
        let mut covered = 0;
        let mut population = 0.0;
        for set in 0..draws {
            let (a, b, value) = population_pair(n, 1000 + set, &device);
            population = value;
            let mut m = similarity_matrix(&metric, &a, &b).unwrap();
            let significance = SignificanceOptions {
                bootstrap: 100,
                seed: set,
                ..SignificanceOptions::default()
            };
            assess(&mut m, &a, &b, &significance).unwrap();
            let low = m.significance.ci_low.unwrap()[0][0].unwrap();
            let high = m.significance.ci_high.unwrap()[0][0].unwrap();
            assert!(low <= high);
            if low <= value && value <= high {
                covered += 1;
            }
        }
        // Nominal 95%; a loose bound (a broken interval covers far less, or always).
        assert!(
            covered >= 24,
            "{metric}: the interval covered the population value {population:.4} in {covered} of {draws} draws"
        );
    }
}

#[test]
fn bad_options_are_refused() {
    let device = Device::flex();
    let a = related_layers(12, 9, &device);
    let mut m = similarity_matrix(&Measure::minibatch_cka(12), &a, &a).unwrap();
    let one_batch = SignificanceOptions {
        bootstrap: 10,
        ..SignificanceOptions::default()
    };
    let err = assess(&mut m, &a, &a, &one_batch).unwrap_err().to_string();
    assert!(err.contains("batch"), "{err}");
    for bad in [
        SignificanceOptions {
            bootstrap: 10,
            confidence: 1.5,
            ..SignificanceOptions::default()
        },
        SignificanceOptions {
            calibrated: true,
            ..SignificanceOptions::default()
        },
    ] {
        assert!(bad.check().is_err());
    }
}
