//! Centered kernel nearest-neighbour alignment, CKNNA (Huh, Cheung, Wang, Isola 2024, "The
//! Platonic Representation Hypothesis", ICML): CKA restricted to the pairs of examples that
//! are nearest neighbours in both layers,
//!
//! ```text
//! CKNNA(K, L) = h(M∘K, M∘L) / sqrt( h(M_K∘K, M_K∘K) h(M_L∘L, M_L∘L) ),   M = M_K ∘ M_L
//! ```
//!
//! with `K = X Xᵀ`, `L = Y Yᵀ` the linear kernels of the features as given (the authors divide
//! rows by their L2 norm first: `normalize`), `M_K(i, j) = 1` when `j` is among the `k` largest
//! entries of row `i` of `K` (the diagonal excluded for the unbiased estimator; the masks are
//! not symmetric), and `h` the unbiased HSIC of Song et al. (2012) evaluated as written on the
//! non-symmetric masked kernels (with `Ã` = `A` with a zero diagonal):
//!
//! ```text
//! h(A, B) = [ tr(Ã B̃) + (1ᵀÃ1)(1ᵀB̃1) / ((n-1)(n-2)) - 2/(n-2) (Ãᵀ1)·(B̃1) ] / (n (n-3))
//! ```
//!
//! or, biased, `tr(A H B H)` (the self-pair allowed as a neighbour). Rows are divided by their
//! L2 norm first by default (`normalize`), as in the authors' pipeline and in repsim's
//! `mutual_knn`, so `--metric mutual_knn,cknna` compares neighbourhoods under one convention
//! (on the MNIST fixture, CKNNA is 0.0423 normalised, 0.0017 on the features as given). The
//! authors' code adds 1e-6 to the denominator (`eps`), which makes the score depend on the
//! scale of the data (the unbiased HSIC of unit-norm rows is `O(k/n)`: 1e-6 moves the score by
//! 1.4e-4 at n = 500, 1.4e-3 at n = 5,000); repsim's default is `eps = 0`, and `eps = 1e-6`
//! gives the authors' values (`tests/fixtures/README.md`). A negative self term leaves the cell
//! undefined (the original gives NaN). The masked kernels have `k` entries per row, so every
//! term is a sum over `n k` neighbours.
//!
//! The biased estimator reads high on independent data: with k = 10 and rows normalised,
//! platonic-rep's code gives 0.36 at n = 100 (10 features), 0.59 at n = 500 (64) and 0.79 at
//! n = 1,000 (200) on independent Gaussian data, where the unbiased default gives 0.01-0.09.
//! Read a biased value against its permutation null (`--permutations`), or use the default.

use crate::error::Result;
use crate::layer::{check_same_examples, Layer};
use crate::matrix::SimilarityMatrix;
use crate::measures::cka::hsic::HsicEstimator;
use crate::measures::neighbours::{check_k, nearest_neighbours, Neighbours};
use crate::sides::Sides;

/// A kernel restricted to a mask: per example its kept neighbours (ascending) and values.
struct Masked {
    n: usize,
    rows: Vec<Vec<(u32, f64)>>,
}

impl Masked {
    /// `K` on its own neighbours (`M_K ∘ K`).
    fn of(neighbours: &Neighbours) -> Self {
        Masked {
            n: neighbours.n,
            rows: (0..neighbours.n)
                .map(|i| {
                    let (idx, val) = neighbours.of(i);
                    idx.iter().copied().zip(val.iter().copied()).collect()
                })
                .collect(),
        }
    }

    /// `K` on the neighbours shared with `other` (`M ∘ K`, `M = M_K ∘ M_L`).
    fn shared(mine: &Neighbours, other: &Neighbours) -> Self {
        Masked {
            n: mine.n,
            rows: (0..mine.n)
                .map(|i| {
                    let (idx, val) = mine.of(i);
                    idx.iter()
                        .zip(val)
                        .filter(|(j, _)| other.of(i).0.binary_search(j).is_ok())
                        .map(|(j, v)| (*j, *v))
                        .collect()
                })
                .collect(),
        }
    }

    /// The entry `(i, j)`, zero off the mask.
    fn get(&self, i: usize, j: u32) -> f64 {
        let row = &self.rows[i];
        row.binary_search_by_key(&j, |(c, _)| *c)
            .map_or(0.0, |p| row[p].1)
    }

    fn row_sums(&self, zero_diagonal: bool) -> Vec<f64> {
        (0..self.n)
            .map(|i| {
                self.rows[i]
                    .iter()
                    .filter(|(j, _)| !(zero_diagonal && *j as usize == i))
                    .map(|(_, v)| v)
                    .sum()
            })
            .collect()
    }

    fn column_sums(&self, zero_diagonal: bool) -> Vec<f64> {
        let mut sums = vec![0.0; self.n];
        for (i, row) in self.rows.iter().enumerate() {
            for (j, v) in row {
                if !(zero_diagonal && *j as usize == i) {
                    sums[*j as usize] += v;
                }
            }
        }
        sums
    }

    /// `tr(A B) = sum_ij A_ij B_ji` over `A`'s entries.
    fn trace_product(&self, other: &Masked, zero_diagonal: bool) -> f64 {
        let mut total = 0.0;
        for (i, row) in self.rows.iter().enumerate() {
            for (j, v) in row {
                if zero_diagonal && *j as usize == i {
                    continue;
                }
                total += v * other.get(*j as usize, i as u32);
            }
        }
        total
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `h(A, B)` of the module docs.
fn hsic(a: &Masked, b: &Masked, estimator: HsicEstimator) -> f64 {
    let n = a.n as f64;
    match estimator {
        HsicEstimator::Unbiased => {
            let rows_b = b.row_sums(true);
            let (sum_a, sum_b) = (
                a.row_sums(true).iter().sum::<f64>(),
                rows_b.iter().sum::<f64>(),
            );
            (a.trace_product(b, true) + sum_a * sum_b / ((n - 1.0) * (n - 2.0))
                - 2.0 / (n - 2.0) * dot(&a.column_sums(true), &rows_b))
                / (n * (n - 3.0))
        }
        HsicEstimator::Biased => {
            let (rows_a, cols_a) = (a.row_sums(false), a.column_sums(false));
            let (rows_b, cols_b) = (b.row_sums(false), b.column_sums(false));
            a.trace_product(b, false) - (dot(&rows_a, &cols_b) + dot(&cols_a, &rows_b)) / n
                + rows_a.iter().sum::<f64>() * rows_b.iter().sum::<f64>() / (n * n)
        }
    }
}

/// A layer's neighbours and its self term `h(M_K∘K, M_K∘K)`, computed once per layer.
struct Prepared {
    neighbours: Neighbours,
    self_term: f64,
}

impl Prepared {
    fn new(neighbours: Neighbours, estimator: HsicEstimator) -> Self {
        let masked = Masked::of(&neighbours);
        let self_term = hsic(&masked, &masked, estimator);
        Prepared {
            neighbours,
            self_term,
        }
    }
}

/// The CKNNA of two prepared layers (`None` when a self term is not positive), with `eps`
/// added to the denominator.
fn score(a: &Prepared, b: &Prepared, estimator: HsicEstimator, eps: f64) -> Option<f64> {
    let (na, nb) = (&a.neighbours, &b.neighbours);
    let cross = hsic(&Masked::shared(na, nb), &Masked::shared(nb, na), estimator);
    let denominator = (a.self_term * b.self_term).sqrt();
    let value = cross / (denominator + eps);
    (denominator > 0.0 && value.is_finite()).then_some(value)
}

/// CKNNA's parameters (defined in `repsim-results` with the other measures').
pub use repsim_results::CknnaParams;

fn prepare(layer: &Layer, options: &CknnaParams) -> Result<Prepared> {
    let neighbours = nearest_neighbours(
        layer,
        options.k,
        options.normalize,
        options.estimator == HsicEstimator::Unbiased,
    )?;
    Ok(Prepared::new(neighbours, options.estimator))
}

/// `2 <= k <= n - 1`, and the 4 examples the unbiased HSIC needs.
fn check_examples(n: usize, options: &CknnaParams) -> Result<()> {
    check_k(options.k, n, 2, "cknna")?;
    if n < crate::conditioning::MIN_EXAMPLES {
        return Err(crate::error::SimilarityError::InvalidParameter {
            name: "examples",
            message: format!("cknna needs at least 4 examples, got {n}"),
        });
    }
    Ok(())
}

/// CKNNA of two layers over the same examples (`None`: undefined, a self term not positive).
pub fn cknna(x: &Layer, y: &Layer, options: &CknnaParams) -> Result<Option<f64>> {
    repsim_results::Measure::Cknna(*options).validate()?;
    let n = check_same_examples([x, y])?;
    check_examples(n, options)?;
    Ok(score(
        &prepare(x, options)?,
        &prepare(y, options)?,
        options.estimator,
        options.eps,
    ))
}

/// CKNNA of every layer of A against every layer of B; each layer's neighbours are found once.
pub fn cknna_matrix(
    layers_a: &[Layer],
    layers_b: &[Layer],
    options: &CknnaParams,
) -> Result<SimilarityMatrix> {
    let n = check_same_examples(layers_a.iter().chain(layers_b))?;
    check_examples(n, options)?;
    let sides = Sides::new(layers_a, layers_b, |l| prepare(l, options))?;
    let (a, b) = (&sides.a, sides.b());
    let mut values = Vec::with_capacity(a.len() * b.len());
    let mut warnings = Vec::new();
    for (na, la) in a.iter().zip(layers_a) {
        for (nb, lb) in b.iter().zip(layers_b) {
            let value = score(na, nb, options.estimator, options.eps);
            if value.is_none() {
                warnings.push(format!(
                    "`{}` vs `{}`: a self term of the masked kernels is not positive, so CKNNA is undefined",
                    la.name, lb.name
                ));
            }
            values.push(value);
        }
    }
    let mut matrix = SimilarityMatrix::from_row_major(
        repsim_results::Measure::Cknna(*options),
        layers_a.iter().map(|l| l.name.clone()).collect(),
        layers_b.iter().map(|l| l.name.clone()).collect(),
        values,
        n,
    );
    matrix.warnings.extend(warnings);
    Ok(matrix)
}
