//! Every measure against a float64 computation in the test itself, for inputs scaled by
//! 1e-30 .. 1e30 and offset by up to 1e6 (issue "Trust"): the measures are invariant to those
//! maps, so a float32 implementation must not let them change the number.
//!
//! The references take the same float32 values, converted to f64.

use burn::tensor::{Device, Tensor, TensorData};
use repsim_similarity::testing::SplitMix64;
use repsim_similarity::{similarity_matrix, HsicEstimator, Layer, Measure, MinibatchCka};

const N: usize = 200;
const D: usize = 32;

/// `g` (N x D standard normal, f32) and `y`, a noisy linear map of `g` (so CKA is neither 0
/// nor 1), as f32 row-major values.
fn base_data(seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = SplitMix64::new(seed);
    let g: Vec<f32> = (0..N * D).map(|_| rng.normal() as f32).collect();
    let w: Vec<f64> = (0..D * D).map(|_| rng.normal()).collect();
    let mut y = vec![0f32; N * D];
    for i in 0..N {
        for j in 0..D {
            let mut s = 0.0;
            for k in 0..D {
                s += g[i * D + k] as f64 * w[k * D + j];
            }
            y[i * D + j] = (s * 0.3 + 2.0 * rng.normal()) as f32;
        }
    }
    (g, y)
}

/// `values * scale + offset`, rounded to f32 as a user's file would hold it.
fn transformed(values: &[f32], scale: f64, offset: f64) -> Vec<f32> {
    values
        .iter()
        .map(|v| (*v as f64 * scale + offset) as f32)
        .collect()
}

fn layer(name: &str, values: &[f32], rows: usize) -> Layer {
    let cols = values.len() / rows;
    let t = Tensor::<2>::from_data(
        TensorData::new(values.to_vec(), [rows, cols]),
        &Device::flex(),
    );
    Layer::new(name, t).unwrap()
}

// ---- float64 references ------------------------------------------------------------------

fn to_f64(values: &[f32], rows: usize) -> Vec<Vec<f64>> {
    let cols = values.len() / rows;
    (0..rows)
        .map(|i| (0..cols).map(|j| values[i * cols + j] as f64).collect())
        .collect()
}

fn centred(x: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let n = x.len() as f64;
    let d = x[0].len();
    let mean: Vec<f64> = (0..d)
        .map(|j| x.iter().map(|r| r[j]).sum::<f64>() / n)
        .collect();
    x.iter()
        .map(|r| r.iter().zip(&mean).map(|(v, m)| v - m).collect())
        .collect()
}

fn linear_gram64(x: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let xc = centred(x);
    xc.iter()
        .map(|a| {
            xc.iter()
                .map(|b| a.iter().zip(b).map(|(p, q)| p * q).sum())
                .collect()
        })
        .collect()
}

fn rbf_gram64(x: &[Vec<f64>], threshold: f64) -> Vec<Vec<f64>> {
    let n = x.len();
    let d2: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| x[i].iter().zip(&x[j]).map(|(a, b)| (a - b) * (a - b)).sum())
                .collect()
        })
        .collect();
    let mut all: Vec<f64> = d2.iter().flatten().copied().collect();
    all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let m = all.len();
    let median = if m % 2 == 1 {
        all[m / 2]
    } else {
        (all[m / 2 - 1] + all[m / 2]) / 2.0
    };
    d2.iter()
        .map(|r| {
            r.iter()
                .map(|v| (-v / (2.0 * threshold * threshold * median)).exp())
                .collect()
        })
        .collect()
}

fn centre_gram64(k: &[Vec<f64>], estimator: HsicEstimator) -> Vec<Vec<f64>> {
    let n = k.len();
    match estimator {
        HsicEstimator::Biased => {
            let nf = n as f64;
            let col: Vec<f64> = (0..n)
                .map(|j| k.iter().map(|r| r[j]).sum::<f64>() / nf)
                .collect();
            let row: Vec<f64> = k.iter().map(|r| r.iter().sum::<f64>() / nf).collect();
            let all: f64 = col.iter().sum::<f64>() / nf;
            (0..n)
                .map(|i| (0..n).map(|j| k[i][j] - col[j] - row[i] + all).collect())
                .collect()
        }
        HsicEstimator::Unbiased => {
            let mut k0: Vec<Vec<f64>> = k.to_vec();
            for (i, row) in k0.iter_mut().enumerate() {
                row[i] = 0.0;
            }
            let nf = n as f64;
            let means: Vec<f64> = (0..n)
                .map(|j| k0.iter().map(|r| r[j]).sum::<f64>() / (nf - 2.0))
                .collect();
            let correction = means.iter().sum::<f64>() / (2.0 * (nf - 1.0));
            let means: Vec<f64> = means.iter().map(|m| m - correction).collect();
            (0..n)
                .map(|i| {
                    (0..n)
                        .map(|j| {
                            if i == j {
                                0.0
                            } else {
                                k0[i][j] - means[i] - means[j]
                            }
                        })
                        .collect()
                })
                .collect()
        }
    }
}

fn cka64(k: &[Vec<f64>], l: &[Vec<f64>], estimator: HsicEstimator) -> f64 {
    let kc = centre_gram64(k, estimator);
    let lc = centre_gram64(l, estimator);
    let dot = |a: &[Vec<f64>], b: &[Vec<f64>]| -> f64 {
        a.iter()
            .zip(b)
            .map(|(r, s)| r.iter().zip(s).map(|(p, q)| p * q).sum::<f64>())
            .sum()
    };
    dot(&kc, &lc) / (dot(&kc, &kc) * dot(&lc, &lc)).sqrt()
}

fn reference(metric: Measure, x: &[f32], y: &[f32]) -> f64 {
    let (x, y) = (to_f64(x, N), to_f64(y, N));
    match metric {
        Measure::LinearCka { estimator } => {
            cka64(&linear_gram64(&x), &linear_gram64(&y), estimator)
        }
        Measure::RbfCka {
            threshold,
            estimator,
        } => cka64(
            &rbf_gram64(&x, threshold),
            &rbf_gram64(&y, threshold),
            estimator,
        ),
        other => panic!("no f64 reference for {other}"),
    }
}

fn repsim_value(metric: Measure, x: &[f32], y: &[f32]) -> Result<f64, String> {
    let a = [layer("x", x, N)];
    let b = [layer("y", y, N)];
    let metric = match metric {
        Measure::MinibatchCka { .. } => Measure::minibatch_cka(50),
        other => other,
    };
    let m = similarity_matrix(&metric, &a, &b).map_err(|e| e.to_string())?;
    m.values[0][0].ok_or_else(|| format!("undefined: {:?}", m.warnings))
}

const SCALES: [f64; 7] = [1e-30, 1e-20, 1e-12, 1e-3, 1e3, 1e12, 1e30];
const OFFSETS: [f64; 4] = [-1e6, -3e3, 1e3, 1e4];

#[test]
fn cka_measures_match_float64_for_every_scale_and_offset() {
    let (g, y) = base_data(7);
    let mut failures = Vec::new();
    for metric in [
        "linear_cka",
        "linear_cka_debiased",
        "rbf_cka",
        "rbf_cka_debiased",
    ]
    .map(|name| Measure::from_name(name).unwrap())
    {
        let cases = SCALES
            .iter()
            .map(|s| (*s, 0.0))
            .chain(OFFSETS.iter().map(|o| (1.0, *o)))
            .chain([(1e-20, 1e-15), (1e20, 1e26)]);
        for (scale, offset) in cases {
            let x = transformed(&g, scale, offset);
            let want = reference(metric, &x, &y);
            match repsim_value(metric, &x, &y) {
                Ok(got) if (got - want).abs() <= 1e-5 => {}
                Ok(got) => failures.push(format!(
                    "{metric} x*{scale:e}+{offset:e}: {got} vs f64 {want}"
                )),
                Err(e) => failures.push(format!("{metric} x*{scale:e}+{offset:e}: {e}")),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The measures without a reference here: invariance to the same maps, against the value on
/// the untouched data (whose agreement with independent implementations the fixture tests
/// check).
#[test]
fn cca_family_and_minibatch_are_invariant_to_scale_and_offset() {
    let (g, y) = base_data(11);
    let mut failures = Vec::new();
    for metric in ["minibatch_cka", "cca", "svcca", "pwcca", "procrustes"]
        .map(|name| Measure::from_name(name).unwrap())
    {
        let base = repsim_value(metric, &g, &y).unwrap();
        let offsets: &[f64] = if metric == Measure::PWCCA {
            // The google convention weighs the uncentred features: an offset changes the value.
            &[]
        } else {
            &OFFSETS
        };
        let cases = SCALES
            .iter()
            .map(|s| (*s, 0.0))
            .chain(offsets.iter().map(|o| (1.0, *o)));
        for (scale, offset) in cases {
            let x = transformed(&g, scale, offset);
            // Offsets round g to f32 around the offset: compare with the same rounded data,
            // shifted back in f64 (exact: the values are within a factor 2 of the offset).
            let unshifted: Vec<f32> = x
                .iter()
                .map(|v| ((*v as f64 - offset) / scale) as f32)
                .collect();
            let want = repsim_value(metric, &unshifted, &y).unwrap();
            match repsim_value(metric, &x, &y) {
                Ok(got) if (got - want).abs() <= 1e-5 => {}
                Ok(got) => failures.push(format!(
                    "{metric} x*{scale:e}+{offset:e}: {got} vs {want} (unscaled {base})"
                )),
                Err(e) => failures.push(format!("{metric} x*{scale:e}+{offset:e}: {e}")),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn only_a_really_constant_layer_has_zero_variance() {
    let (g, y) = base_data(3);
    // Tiny or offset data varies; a layer constant up to its own rounding does not.
    for (scale, offset) in [(1e-20, 0.0), (1.0, 1e4), (1e-30, 0.0)] {
        let x = transformed(&g, scale, offset);
        repsim_value(Measure::LINEAR_CKA, &x, &y).unwrap();
    }
    let constant = vec![1234.5f32; N * D];
    let err = repsim_value(Measure::LINEAR_CKA, &constant, &y).unwrap_err();
    assert!(err.contains("zero variance"), "{err}");
}

#[test]
fn minibatch_accumulator_is_scale_safe_across_batches() {
    // Each batch is centred and scaled on its own: the accumulated HSICs must still combine.
    let (g, y) = base_data(5);
    let mut cka_small = MinibatchCka::new();
    let mut cka_plain = MinibatchCka::new();
    let x = transformed(&g, 1e-25, 0.0);
    let per = 50 * D;
    for b in 0..N / 50 {
        let xs = [layer("x", &x[b * per..(b + 1) * per], 50)];
        let gs = [layer("x", &g[b * per..(b + 1) * per], 50)];
        let ys = [layer("y", &y[b * per..(b + 1) * per], 50)];
        cka_small.update(&xs, &ys).unwrap();
        cka_plain.update(&gs, &ys).unwrap();
    }
    let a = cka_small.finish().unwrap().values[0][0].unwrap();
    let b = cka_plain.finish().unwrap().values[0][0].unwrap();
    assert!((a - b).abs() < 1e-5, "{a} vs {b}");
}

/// Linear CKA, biased and debiased, at n = 50,000 (the feature-space path, whose sums run over
/// n), against float64 from the features: `<K, L> = ||Xc^T Yc||_F^2` and Song et al.'s
/// debiasing from the centred rows' squared norms.
#[test]
fn linear_cka_at_fifty_thousand_examples_matches_float64() {
    const BIG_N: usize = 50_000;
    const DX: usize = 8;
    const DY: usize = 6;
    let mut rng = SplitMix64::new(99);
    let g: Vec<f32> = (0..BIG_N * DX).map(|_| rng.normal() as f32).collect();
    let y: Vec<f32> = (0..BIG_N)
        .flat_map(|i| {
            let row: Vec<f32> = (0..DY)
                .map(|j| (g[i * DX + j] as f64 + 1.5 * rng.normal()) as f32)
                .collect();
            row
        })
        .collect();
    let x = transformed(&g, 1e-20, 0.0);
    let x_off = transformed(&g, 1.0, 1e3);
    for x in [&x, &x_off] {
        let xs = centred(&to_f64(x, BIG_N));
        let ys = centred(&to_f64(&y, BIG_N));
        let cross = |a: &[Vec<f64>], b: &[Vec<f64>]| -> f64 {
            let (da, db) = (a[0].len(), b[0].len());
            let mut m = vec![0f64; da * db];
            for (ra, rb) in a.iter().zip(b) {
                for p in 0..da {
                    for q in 0..db {
                        m[p * db + q] += ra[p] * rb[q];
                    }
                }
            }
            m.iter().map(|v| v * v).sum()
        };
        let norms = |a: &[Vec<f64>]| {
            a.iter()
                .map(|r| r.iter().map(|v| v * v).sum())
                .collect::<Vec<f64>>()
        };
        let (kl, kk, ll) = (cross(&xs, &ys), cross(&xs, &xs), cross(&ys, &ys));
        let (dx, dy) = (norms(&xs), norms(&ys));
        let nf = BIG_N as f64;
        let debias = |inner: f64, a: &[f64], b: &[f64]| {
            let dot: f64 = a.iter().zip(b).map(|(p, q)| p * q).sum();
            let (sa, sb): (f64, f64) = (a.iter().sum(), b.iter().sum());
            inner - (1.0 + 2.0 / (nf - 2.0)) * dot + sa * sb / ((nf - 1.0) * (nf - 2.0))
        };
        let biased = kl / (kk * ll).sqrt();
        let debiased = debias(kl, &dx, &dy) / (debias(kk, &dx, &dx) * debias(ll, &dy, &dy)).sqrt();
        let a = [layer("x", x, BIG_N)];
        let b = [layer("y", &y, BIG_N)];
        for (metric, want) in [
            (Measure::LINEAR_CKA, biased),
            (Measure::LINEAR_CKA_DEBIASED, debiased),
        ] {
            let got = similarity_matrix(&metric, &a, &b).unwrap().values[0][0].unwrap();
            assert!(
                (got - want).abs() < 1e-5,
                "{metric} at n = 50,000: {got} vs f64 {want}"
            );
        }
    }
}

/// The cases the trust issue reported, with `y = g` (so every CKA is 1): `g + 3000` gave RBF
/// CKA 0.2355, `g * 1e-12` linear CKA 1.0376, `g * 1e-15` debiased CKA 35.38, and `g * 1e-20`
/// or `g + 1e4` "zero variance".
#[test]
fn the_reported_cases_give_one() {
    let mut rng = SplitMix64::new(2024);
    let g: Vec<f32> = (0..N * D).map(|_| rng.normal() as f32).collect();
    let cases = [
        (1.0, 3000.0),
        (1.0, 1e3),
        (1e-12, 0.0),
        (1e-15, 0.0),
        (1e-20, 0.0),
        (1.0, 1e4),
    ];
    for (scale, offset) in cases {
        let x = transformed(&g, scale, offset);
        // The rounding of g near the offset is part of x; y holds the same rounded values
        // shifted back, so the true value is exactly 1.
        let y: Vec<f32> = x
            .iter()
            .map(|v| ((*v as f64 - offset) / scale) as f32)
            .collect();
        for metric in [
            "linear_cka",
            "linear_cka_debiased",
            "rbf_cka",
            "rbf_cka_debiased",
        ]
        .map(|name| Measure::from_name(name).unwrap())
        {
            let value = repsim_value(metric, &x, &y).unwrap();
            assert!(
                (value - 1.0).abs() < 1e-5,
                "{metric} of g*{scale:e}+{offset:e} with g: {value}"
            );
        }
    }
}

/// The CCA family through `similarity_matrices` with several CCA measures at once (shared
/// covariance statistics) gives the values of the measures one by one, at any scale.
#[test]
fn shared_cca_statistics_are_scale_safe_too() {
    let (g, y) = base_data(13);
    let metrics =
        ["cca", "svcca", "pwcca", "procrustes"].map(|name| Measure::from_name(name).unwrap());
    for scale in [1e-30, 1.0, 1e30] {
        let x = transformed(&g, scale, 0.0);
        let a = [layer("x", &x, N)];
        let b = [layer("y", &y, N)];
        let together = repsim_similarity::similarity_matrices(&metrics, &a, &b).unwrap();
        for (metric, shared) in metrics.iter().zip(&together) {
            let alone = repsim_value(*metric, &g, &y).unwrap();
            let value = shared.values[0][0].expect("defined");
            assert!(
                (value - alone).abs() < 1e-5,
                "{metric} at scale {scale:e}: {value} vs {alone}"
            );
        }
    }
}
