//! Minibatch CKA's per-batch HSIC terms, for its permutation null and its batch bootstrap.
//!
//! Minibatch CKA (Nguyen et al. 2021) is
//!
//! ```text
//! CKA_mb(A, B) = sum_t HSIC_1(K_t, L_t) / sqrt(sum_t HSIC_1(K_t, K_t) sum_t HSIC_1(L_t, L_t))
//! ```
//!
//! over batches `t` of `m` examples, with `HSIC_1(K, L) = <U(K), U(L)> / (m (m - 3))`.
//! - **Permutation null**: B's examples are permuted *within* each batch (a fresh permutation
//!   per batch and per draw), so the batch Grams are computed once and only gathered; the
//!   batches stay the same examples, and under independence of A and B a within-batch
//!   permutation is as exchangeable as a global one.
//! - **Bootstrap**: batches are resampled with replacement; each batch's three HSIC terms are
//!   kept, so a replicate is a weighted sum and needs no Gram again. Batches are independent
//!   draws of examples, so duplicating a batch duplicates no pair of examples inside a U-statistic.

use burn::tensor::Tensor;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::conditioning::shift_and_scale_batch;
use crate::error::Result;
use crate::layer::{check_same_examples, explain_non_finite, read_back, Layer};
use crate::measure::check_batch_size;
use crate::measures::cka::centering::u_center_gram;
use crate::measures::cka::gram::gram;
use crate::measures::cka::kernel_cka::self_inner_products;

use super::pair_matrices::permuted_inner_products;

/// The RNG stream of batch `t`'s within-batch permutations (seeded with the user's seed).
const BATCH_STREAM_BASE: u64 = 1 << 32;

/// HSIC terms of every batch (true scale, the common `1 / (m (m - 3))` left out: it cancels)
/// and, with permutations, the null's cross terms summed over batches.
#[derive(Clone, Debug)]
pub struct BatchTerms {
    /// Layers of A.
    pub la: usize,
    /// Layers of B.
    pub lb: usize,
    /// Per batch, `La x Lb` cross terms `<U(K_t), U(L_t)>`, row-major.
    pub cross: Vec<Vec<f64>>,
    /// Per batch, `<U(K_t), U(K_t)>` of each layer of A.
    pub self_a: Vec<Vec<f64>>,
    /// Per batch, `<U(L_t), U(L_t)>` of each layer of B.
    pub self_b: Vec<Vec<f64>>,
    /// `P x La x Lb`: the cross terms summed over batches, under each permutation draw.
    pub null_cross: Vec<f64>,
    /// Permutation draws in `null_cross`.
    pub permutations: usize,
}

impl BatchTerms {
    /// Minibatch CKA of cell (`p`, `q`) from cross and self sums; `None` when a layer has no
    /// variance in any batch.
    pub fn ratio(cross: f64, self_a: f64, self_b: f64) -> Option<f64> {
        let denominator = (self_a * self_b).sqrt();
        let value = cross / denominator;
        (denominator > 0.0 && value.is_finite()).then_some(value)
    }

    /// The observed matrix, `La x Lb` row-major.
    pub fn observed(&self) -> Vec<Option<f64>> {
        self.weighted(&vec![1.0; self.cross.len()])
    }

    /// The matrix with batch `t` counted `weights[t]` times (a bootstrap replicate).
    pub fn weighted(&self, weights: &[f64]) -> Vec<Option<f64>> {
        let (la, lb) = (self.la, self.lb);
        let mut cross = vec![0.0; la * lb];
        let mut self_a = vec![0.0; la];
        let mut self_b = vec![0.0; lb];
        for (t, &w) in weights.iter().enumerate() {
            if w == 0.0 {
                continue;
            }
            cross
                .iter_mut()
                .zip(&self.cross[t])
                .for_each(|(s, v)| *s += w * v);
            self_a
                .iter_mut()
                .zip(&self.self_a[t])
                .for_each(|(s, v)| *s += w * v);
            self_b
                .iter_mut()
                .zip(&self.self_b[t])
                .for_each(|(s, v)| *s += w * v);
        }
        (0..la * lb)
            .map(|c| Self::ratio(cross[c], self_a[c / lb], self_b[c % lb]))
            .collect()
    }

    /// Every null draw of every cell, `P x La x Lb` row-major (the self terms do not change
    /// under a permutation: they are summed once).
    pub fn null_draws(&self) -> Vec<Option<f64>> {
        let (la, lb) = (self.la, self.lb);
        let self_a: Vec<f64> = (0..la)
            .map(|p| self.self_a.iter().map(|s| s[p]).sum())
            .collect();
        let self_b: Vec<f64> = (0..lb)
            .map(|q| self.self_b.iter().map(|s| s[q]).sum())
            .collect();
        self.null_cross
            .iter()
            .enumerate()
            .map(|(i, &cross)| {
                let c = i % (la * lb);
                Self::ratio(cross, self_a[c / lb], self_b[c % lb])
            })
            .collect()
    }
}

/// The `count` within-batch permutations of batch `batch` (of `m` examples) that
/// [`batch_terms`] draws from `seed`: draw `k` of the null permutes every batch by its own
/// `k`-th permutation.
pub fn batch_permutations(m: usize, count: usize, seed: u64, batch: usize) -> Vec<Vec<u32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(BATCH_STREAM_BASE + batch as u64);
    (0..count)
        .map(|_| {
            let mut p: Vec<u32> = (0..m as u32).collect();
            p.shuffle(&mut rng);
            p
        })
        .collect()
}

/// One batch's U-centred Grams of `layers`, scaled (a `L x m^2` stack), with the scale of each
/// layer (`1 / max |x - x_0|`, the batch shifted by its first example: U-centring ignores a
/// shift; 0 for a layer constant in the batch) and `<U, U>` of each.
fn batch_stack(layers: &[Layer]) -> Result<(Tensor<2>, Vec<f64>, Vec<f64>)> {
    let m = layers[0].num_examples();
    let mut rows = Vec::with_capacity(layers.len());
    let mut scales = Vec::with_capacity(layers.len());
    for layer in layers {
        let (scaled, scale) = shift_and_scale_batch(layer);
        rows.push(u_center_gram(gram(scaled.matrix)).reshape([1, m * m]));
        scales.push(scale);
    }
    let stack = Tensor::cat(rows, 0);
    let scales = read_back(Tensor::cat(scales, 0))?;
    let self_terms = self_inner_products(stack.clone(), m)?;
    for ((layer, scale), s) in layers.iter().zip(&scales).zip(&self_terms) {
        if !scale.is_finite() || !s.is_finite() {
            return Err(explain_non_finite(layer, 0));
        }
    }
    Ok((stack, scales, self_terms))
}

/// The HSIC terms of every full batch of `batch_size` consecutive examples (the last
/// `n % batch_size` left out, as minibatch CKA does), and `permutations` within-batch
/// permutation draws, seeded by `seed`.
pub fn batch_terms(
    layers_a: &[Layer],
    layers_b: &[Layer],
    batch_size: usize,
    permutations: usize,
    seed: u64,
) -> Result<BatchTerms> {
    let n = check_same_examples(layers_a.iter().chain(layers_b))?;
    check_batch_size(batch_size, n)?;
    let symmetric = std::ptr::eq(layers_a, layers_b);
    let (la, lb) = (layers_a.len(), layers_b.len());
    let mut terms = BatchTerms {
        la,
        lb,
        cross: Vec::new(),
        self_a: Vec::new(),
        self_b: Vec::new(),
        null_cross: vec![0.0; permutations * la * lb],
        permutations,
    };
    let m = batch_size;
    for (t, start) in (0..=n - m).step_by(m).enumerate() {
        let rows = |layers: &[Layer]| layers.iter().map(|l| l.rows(start, m)).collect::<Vec<_>>();
        let (stack_a, scales_a, squares_a) = batch_stack(&rows(layers_a))?;
        let (stack_b, scales_b, squares_b) = if symmetric {
            (stack_a.clone(), scales_a.clone(), squares_a.clone())
        } else {
            batch_stack(&rows(layers_b))?
        };
        // Back to the true scale: the Gram of `s x` is `s^2` times that of `x`. A layer
        // constant in the batch (scale 0) has a zero U-centred Gram.
        let unscale = |s: f64| if s > 0.0 { 1.0 / (s * s) } else { 0.0 };
        let factor_a: Vec<f64> = scales_a.iter().map(|&s| unscale(s)).collect();
        let factor_b: Vec<f64> = scales_b.iter().map(|&s| unscale(s)).collect();
        terms.self_a.push(
            squares_a
                .iter()
                .zip(&factor_a)
                .map(|(v, f)| v * f * f)
                .collect(),
        );
        terms.self_b.push(
            squares_b
                .iter()
                .zip(&factor_b)
                .map(|(v, f)| v * f * f)
                .collect(),
        );

        let mut draws = vec![(0..m as u32).collect::<Vec<_>>()];
        draws.extend(batch_permutations(m, permutations, seed, t));
        let products = permuted_inner_products(&stack_a, &stack_b, m, &draws)?;
        let cell =
            |k: usize, c: usize| products[k * la * lb + c] * factor_a[c / lb] * factor_b[c % lb];
        terms.cross.push((0..la * lb).map(|c| cell(0, c)).collect());
        for k in 0..permutations {
            for c in 0..la * lb {
                terms.null_cross[k * la * lb + c] += cell(k + 1, c);
            }
        }
    }
    Ok(terms)
}
