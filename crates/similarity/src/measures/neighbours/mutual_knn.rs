//! Mutual k-nearest-neighbour alignment (Huh, Cheung, Wang, Isola 2024, "The Platonic
//! Representation Hypothesis", ICML, arXiv:2405.07987):
//!
//! ```text
//! m_kNN(X, Y) = (1/n) sum_i |N_k^X(i) ∩ N_k^Y(i)| / k
//! ```
//!
//! `N_k^X(i)`: the `k` examples `j != i` with the largest inner products of L2-normalised rows
//! (cosine similarity; [`crate::measures::neighbours`], ties at the k-th place to the lower index). In
//! [0, 1]; 1 when every example has the same neighbours in both layers. Invariant to scaling
//! rows and to a rotation shared by all examples; not to translation. Memory `O(n k)` per layer
//! plus one kernel block.

use crate::error::Result;
use crate::layer::{check_same_examples, Layer};
use crate::matrix::SimilarityMatrix;
use crate::measures::neighbours::{check_k, nearest_neighbours, Neighbours};
use crate::sides::Sides;

/// The default number of neighbours (the paper's).
pub use repsim_results::params::DEFAULT_K;

/// `|N_a(i) ∩ N_b(i)|` summed over examples, over `n k`.
fn alignment(a: &Neighbours, b: &Neighbours) -> f64 {
    let mut shared = 0usize;
    for i in 0..a.n {
        let (x, y) = (a.of(i).0, b.of(i).0);
        let (mut p, mut q) = (0, 0);
        while p < x.len() && q < y.len() {
            match x[p].cmp(&y[q]) {
                std::cmp::Ordering::Less => p += 1,
                std::cmp::Ordering::Greater => q += 1,
                std::cmp::Ordering::Equal => {
                    shared += 1;
                    p += 1;
                    q += 1;
                }
            }
        }
    }
    shared as f64 / (a.n * a.k) as f64
}

/// Mutual kNN alignment of two layers over the same examples.
pub fn mutual_knn(x: &Layer, y: &Layer, k: usize) -> Result<f64> {
    let n = check_same_examples([x, y])?;
    check_k(k, n, 1, "mutual_knn")?;
    Ok(alignment(
        &nearest_neighbours(x, k, true, true)?,
        &nearest_neighbours(y, k, true, true)?,
    ))
}

/// Mutual kNN alignment of every layer of A against every layer of B; each layer's neighbours
/// are found once.
pub fn mutual_knn_matrix(
    layers_a: &[Layer],
    layers_b: &[Layer],
    k: usize,
) -> Result<SimilarityMatrix> {
    let n = check_same_examples(layers_a.iter().chain(layers_b))?;
    check_k(k, n, 1, "mutual_knn")?;
    let sides = Sides::new(layers_a, layers_b, |l| nearest_neighbours(l, k, true, true))?;
    let (a, b) = (&sides.a, sides.b());
    let values = a
        .iter()
        .flat_map(|na| b.iter().map(move |nb| Some(alignment(na, nb))))
        .collect();
    Ok(SimilarityMatrix::from_row_major(
        repsim_results::Measure::MutualKnn { k },
        layers_a.iter().map(|l| l.name.clone()).collect(),
        layers_b.iter().map(|l| l.name.clone()).collect(),
        values,
        n,
    ))
}
