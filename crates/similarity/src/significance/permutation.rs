//! Permutation nulls: how similar two layers look when B's examples are shuffled, so that any
//! pairing of A's and B's examples is chance.
//!
//! Draw `k` (`k = 1..P`) is one permutation of B's rows, the same for every cell of the matrix
//! (so the null of the whole matrix is `P` matrices, and a cell's null is comparable to its
//! neighbours'). How each measure gets there:
//! - linear and RBF CKA (biased, debiased) and RSA: each layer's centred Gram (or RDM) once,
//!   then per draw one gather and one product over all pairs ([`super::pair_matrices`]);
//! - minibatch CKA: within-batch permutations of the batch Grams ([`super::batches`]);
//! - mutual kNN: each layer's neighbour lists once, relabelled per draw (`O(n k)` per cell);
//! - CCA, SVCCA, PWCCA, Procrustes, the angular shape distance and CKNNA: the matrix is
//!   recomputed on B's permuted rows (`P` recomputations; their feature-space statistics do
//!   not permute).

use burn::tensor::{Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::{Result, SimilarityError};
use crate::layer::{check_same_examples, Layer};
use crate::measure::{similarity_matrix, Measure};
use crate::measures::neighbours::{check_k, nearest_neighbours, Neighbours};
use crate::measures::rsa::RdmComparison;
use crate::sides::Sides;

use super::batches::{batch_terms, BatchTerms};
use super::pair_matrices::{PairMatrices, PermutedProducts};

/// The RNG stream of the whole-data permutations.
const PERMUTATION_STREAM: u64 = 1;

/// Permutations generated and scored together.
const DRAWS_PER_ROUND: usize = 64;

/// Device memory the `n x n` matrices of the Gram measures may take before repsim refuses and
/// points at minibatch CKA.
const MAX_PAIR_MATRIX_BYTES: usize = 8 << 30;

/// A permutation null of every cell of a matrix.
#[derive(Clone, Debug)]
pub struct NullDistribution {
    /// The observed value of every cell by the same arithmetic as the null (row-major;
    /// `None` where undefined).
    pub observed: Vec<Option<f64>>,
    /// `P x cells`: draw `k` of every cell (`None` where undefined in that draw).
    pub null: Vec<Option<f64>>,
    /// Number of draws (`P`).
    pub permutations: usize,
    /// What was permuted: `examples` or `examples within each batch`.
    pub scheme: &'static str,
}

impl NullDistribution {
    /// Minibatch CKA's within-batch null, from its batch terms.
    pub fn of_batches(terms: &BatchTerms) -> Self {
        NullDistribution {
            observed: terms.observed(),
            null: terms.null_draws(),
            permutations: terms.permutations,
            scheme: "examples within each batch",
        }
    }

    /// The null draws of cell `c`, the undefined ones left out.
    pub fn cell(&self, c: usize) -> Vec<f64> {
        let cells = self.observed.len();
        (0..self.permutations)
            .filter_map(|k| self.null[k * cells + c])
            .collect()
    }
}

/// `count` seeded permutations of `0..n`, continuing `rng`.
fn draw_permutations(n: usize, count: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<u32>> {
    (0..count)
        .map(|_| {
            let mut p: Vec<u32> = (0..n as u32).collect();
            p.shuffle(rng);
            p
        })
        .collect()
}

/// The first `count` permutations of `0..n` that [`permutation_null`] draws from `seed` (all
/// measures but minibatch CKA), for checks and for users who want to apply them elsewhere.
pub fn whole_data_permutations(n: usize, count: usize, seed: u64) -> Vec<Vec<u32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(PERMUTATION_STREAM);
    draw_permutations(n, count, &mut rng)
}

/// `layers` with their rows reordered: row `i` of each result is row `order[i]`.
pub fn select_rows(layers: &[Layer], order: &[u32]) -> Vec<Layer> {
    let device = layers[0].matrix.device();
    let data: Vec<i64> = order.iter().map(|&i| i as i64).collect();
    let indices = Tensor::<1, Int>::from_data(TensorData::new(data, [order.len()]), &device);
    layers
        .iter()
        .map(|l| Layer {
            name: l.name.clone(),
            matrix: l.matrix.clone().select(0, indices.clone()),
        })
        .collect()
}

/// The permutation null of `measure` between every layer of A and of B: `permutations` draws
/// from `seed`.
pub fn permutation_null(
    measure: &Measure,
    layers_a: &[Layer],
    layers_b: &[Layer],
    permutations: usize,
    seed: u64,
) -> Result<NullDistribution> {
    let n = check_same_examples(layers_a.iter().chain(layers_b))?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(PERMUTATION_STREAM);
    let pairs = |a: PairMatrices, b: Option<PairMatrices>, rng: &mut ChaCha8Rng| {
        let b = b.as_ref().unwrap_or(&a);
        pair_matrix_null(&a, b, permutations, rng)
    };
    let gram_sides = |prepare: &dyn Fn(&[Layer]) -> Result<PairMatrices>| -> Result<_> {
        let bytes = (layers_a.len() + layers_b.len()) * n * n * 4;
        if bytes > MAX_PAIR_MATRIX_BYTES {
            return Err(SimilarityError::InvalidParameter {
                name: "--permutations",
                message: format!(
                    "the permutation null of {measure} keeps every layer's {n} x {n} matrix ({:.1} GiB); use minibatch_cka, whose null works batch by batch",
                    bytes as f64 / (1u64 << 30) as f64
                ),
            });
        }
        let a = prepare(layers_a)?;
        let b = if std::ptr::eq(layers_a, layers_b) {
            None
        } else {
            Some(prepare(layers_b)?)
        };
        Ok((a, b))
    };
    let (observed, null) = match *measure {
        Measure::LinearCka { estimator } => {
            let (a, b) = gram_sides(&|l| PairMatrices::linear(l, estimator))?;
            pairs(a, b, &mut rng)?
        }
        Measure::RbfCka {
            threshold,
            estimator,
        } => {
            let (a, b) = gram_sides(&|l| PairMatrices::rbf(l, threshold, estimator))?;
            pairs(a, b, &mut rng)?
        }
        // Tau-a is no inner product of per-layer vectors: recomputed, below.
        Measure::Rsa { rdm, compare } if compare != RdmComparison::TauA => {
            let (a, b) = gram_sides(&|l| PairMatrices::rsa(l, rdm, compare))?;
            pairs(a, b, &mut rng)?
        }
        Measure::MinibatchCka { batch_size } => {
            let terms = batch_terms(layers_a, layers_b, batch_size, permutations, seed)?;
            return Ok(NullDistribution::of_batches(&terms));
        }
        Measure::MutualKnn { k } => mutual_knn_null(layers_a, layers_b, k, permutations, &mut rng)?,
        _ => recomputed_null(measure, layers_a, layers_b, permutations, &mut rng)?,
    };
    Ok(NullDistribution {
        observed,
        null,
        permutations,
        scheme: "examples",
    })
}

/// Observed and null values of a pair-matrix measure.
fn pair_matrix_null(
    a: &PairMatrices,
    b: &PairMatrices,
    permutations: usize,
    rng: &mut ChaCha8Rng,
) -> Result<(Vec<Option<f64>>, Vec<Option<f64>>)> {
    let (la, lb, m) = (a.defined.len(), b.defined.len(), a.m);
    let cells = la * lb;
    let defined = |c: usize| a.defined[c / lb] && b.defined[c % lb];
    let to_cells = |products: &[f64]| -> Vec<Option<f64>> {
        products
            .iter()
            .enumerate()
            .map(|(i, &v)| defined(i % cells).then_some(v))
            .collect()
    };
    let products = PermutedProducts::new(&a.stack, &b.stack, m);
    let identity: Vec<u32> = (0..m as u32).collect();
    let observed = to_cells(&products.products(&[identity])?);
    let mut null = Vec::with_capacity(permutations * cells);
    let mut done = 0;
    while done < permutations {
        let count = DRAWS_PER_ROUND.min(permutations - done);
        null.extend(to_cells(
            &products.products(&draw_permutations(m, count, rng))?,
        ));
        done += count;
    }
    Ok((observed, null))
}

/// Mutual kNN under permutations: B's neighbour lists are found once; permuting B's rows by
/// `p` (row `i` becomes old row `p[i]`) gives example `i` the neighbours `p^-1(N_B(p[i]))`.
fn mutual_knn_null(
    layers_a: &[Layer],
    layers_b: &[Layer],
    k: usize,
    permutations: usize,
    rng: &mut ChaCha8Rng,
) -> Result<(Vec<Option<f64>>, Vec<Option<f64>>)> {
    let n = check_same_examples(layers_a.iter().chain(layers_b))?;
    check_k(k, n, 1, "mutual_knn")?;
    let sides = Sides::new(layers_a, layers_b, |l| nearest_neighbours(l, k, true, true))?;
    let (a, b) = (&sides.a, sides.b());
    let identity: Vec<u32> = (0..n as u32).collect();
    let observed = permuted_overlaps(a, b, &identity);
    let mut null = Vec::with_capacity(permutations * a.len() * b.len());
    for _ in 0..permutations {
        null.extend(permuted_overlaps(a, b, &draw_permutations(n, 1, rng)[0]));
    }
    Ok((observed, null))
}

/// Mutual kNN of every pair with B's rows permuted by `order`.
fn permuted_overlaps(a: &[Neighbours], b: &[Neighbours], order: &[u32]) -> Vec<Option<f64>> {
    let n = order.len();
    let mut inverse = vec![0u32; n];
    for (i, &p) in order.iter().enumerate() {
        inverse[p as usize] = i as u32;
    }
    let mut stamp = vec![u32::MAX; n];
    let mut shared = vec![0usize; a.len() * b.len()];
    for (p, na) in a.iter().enumerate() {
        for i in 0..n {
            for &j in na.of(i).0 {
                stamp[j as usize] = i as u32;
            }
            for (q, nb) in b.iter().enumerate() {
                shared[p * b.len() + q] += nb
                    .of(order[i] as usize)
                    .0
                    .iter()
                    .filter(|&&j| stamp[inverse[j as usize] as usize] == i as u32)
                    .count();
            }
        }
        stamp.iter_mut().for_each(|s| *s = u32::MAX);
    }
    let k = a.first().map_or(1, |x| x.k);
    shared
        .into_iter()
        .map(|s| Some(s as f64 / (n * k) as f64))
        .collect()
}

/// Any measure: the matrix recomputed on B's permuted rows, draw by draw.
fn recomputed_null(
    measure: &Measure,
    layers_a: &[Layer],
    layers_b: &[Layer],
    permutations: usize,
    rng: &mut ChaCha8Rng,
) -> Result<(Vec<Option<f64>>, Vec<Option<f64>>)> {
    let n = layers_a[0].num_examples();
    let flat = |layers: &[Layer]| -> Result<Vec<Option<f64>>> {
        let m = similarity_matrix(measure, layers_a, layers)?;
        Ok(m.values.into_iter().flatten().collect())
    };
    // A distinct copy of B, so that a model against itself takes the same (asymmetric) path
    // as its permuted draws.
    let observed = flat(&layers_b.to_vec())?;
    let mut null = Vec::with_capacity(permutations * observed.len());
    for _ in 0..permutations {
        null.extend(flat(&select_rows(
            layers_b,
            &draw_permutations(n, 1, rng)[0],
        ))?);
    }
    Ok((observed, null))
}
