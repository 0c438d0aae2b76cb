//! Deterministic random data for tests and benchmarks (no `rand` dependency, same numbers on
//! every backend and machine).

use burn::tensor::{Device, Tensor, TensorData};

/// A small, fast, seedable generator (SplitMix64).
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// `rows x cols` standard normal values, row-major.
pub fn random_values(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    (0..rows * cols).map(|_| rng.normal() as f32).collect()
}

/// A `rows x cols` standard normal matrix on `device`.
pub fn random_matrix(rows: usize, cols: usize, seed: u64, device: &Device) -> Tensor<2> {
    Tensor::from_data(
        TensorData::new(random_values(rows, cols, seed), [rows, cols]),
        device,
    )
}

/// A random `size x size` orthogonal matrix (Gram-Schmidt of a normal matrix, in f64).
pub fn orthogonal(size: usize, seed: u64, device: &Device) -> Tensor<2> {
    let mut rng = SplitMix64::new(seed);
    let mut columns: Vec<Vec<f64>> = Vec::with_capacity(size);
    while columns.len() < size {
        let mut v: Vec<f64> = (0..size).map(|_| rng.normal()).collect();
        for c in &columns {
            let dot: f64 = v.iter().zip(c).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(c).for_each(|(a, b)| *a -= dot * b);
        }
        let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        if norm > 1e-6 {
            columns.push(v.into_iter().map(|a| a / norm).collect());
        }
    }
    let values: Vec<f32> = (0..size)
        .flat_map(|r| columns.iter().map(move |c| c[r] as f32).collect::<Vec<_>>())
        .collect();
    Tensor::from_data(TensorData::new(values, [size, size]), device)
}

/// Song et al.'s (2012) unbiased HSIC by its explicit formula, in f64 on the host, from two
/// row-major `n x n` Grams (their diagonals are ignored): the reference the tests check the
/// device estimators against.
pub fn song_unbiased_hsic(k: &[f64], l: &[f64], n: usize) -> f64 {
    let off_diagonal = |m: &[f64], i: usize, j: usize| if i == j { 0.0 } else { m[i * n + j] };
    let mut trace_kl = 0.0;
    let (mut sum_k, mut sum_l, mut ones_kl_ones) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let (mut row_k, mut row_l) = (0.0, 0.0);
        for j in 0..n {
            let (kij, lij) = (off_diagonal(k, i, j), off_diagonal(l, i, j));
            trace_kl += kij * lij;
            row_k += kij;
            row_l += lij;
        }
        sum_k += row_k;
        sum_l += row_l;
        ones_kl_ones += row_k * row_l;
    }
    let nf = n as f64;
    (trace_kl + sum_k * sum_l / ((nf - 1.0) * (nf - 2.0)) - 2.0 / (nf - 2.0) * ones_kl_ones)
        / (nf * (nf - 3.0))
}
