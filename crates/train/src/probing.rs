//! The one probing pass of repsim: batches of inputs on the device, each model's layers per
//! batch, folded into minibatch CKA (Nguyen et al. 2021) as they come. [`crate::compare()`],
//! the experiments' comparisons of trained networks and any user of two models' layers go
//! through [`minibatch_cka_pass`]; no more than one batch of activations is alive at a time, and
//! nothing leaves the device but the HSIC sums.

use std::time::Instant;

use repsim_similarity::{Layer, MinibatchCka, SimilarityMatrix};

use crate::error::{Result, TrainError};
use crate::network::Inputs;

/// One model seen through the pass: its layers of one batch of inputs.
pub type LayersOf<'a> = dyn FnMut(Inputs) -> Result<Vec<Layer>> + 'a;

/// What the pass gives for each comparison: the matrix, and the seconds spent on it (the
/// compared model's forward passes and the CKA updates; the first model's shared forward passes
/// are counted in none).
pub struct PassResult {
    /// Minibatch CKA of the first model's layers (rows) against this model's (columns).
    pub matrix: SimilarityMatrix,
    /// Seconds of this comparison's own work.
    pub seconds: f64,
}

/// Minibatch CKA of `first`'s layers against each of `others`' (none: `first` against itself)
/// over `batches`. Each batch's layers of `first` are computed once and serve every comparison;
/// the matrices record `batch_size` as the measure's (the last batch may be smaller). A model
/// that gives no layers is refused, naming it (`first` is model 0, the others 1, 2, ...).
pub fn minibatch_cka_pass(
    batches: impl IntoIterator<Item = Result<Inputs>>,
    first: &mut LayersOf<'_>,
    others: &mut [&mut LayersOf<'_>],
    batch_size: usize,
) -> Result<Vec<PassResult>> {
    let count = others.len().max(1);
    let mut accumulators: Vec<(MinibatchCka, f64)> =
        (0..count).map(|_| (MinibatchCka::new(), 0.0)).collect();
    let single = others.len() <= 1;
    let no_layers = |which: usize| {
        let model = match which {
            0 => "model a (the rows)".to_string(),
            _ if single => "model b (the columns)".to_string(),
            k => format!("model {k} of the columns"),
        };
        TrainError::BadConfig(format!("{model} gave no layers to compare"))
    };
    for inputs in batches {
        let inputs = inputs?;
        let layers = first(inputs.clone())?;
        if layers.is_empty() {
            return Err(no_layers(0));
        }
        if others.is_empty() {
            let started = Instant::now();
            accumulators[0].0.update(&layers, &layers)?;
            accumulators[0].1 += started.elapsed().as_secs_f64();
            continue;
        }
        for (k, (other, (cka, seconds))) in
            others.iter_mut().zip(accumulators.iter_mut()).enumerate()
        {
            let started = Instant::now();
            let theirs = other(inputs.clone())?;
            if theirs.is_empty() {
                return Err(no_layers(k + 1));
            }
            cka.update(&layers, &theirs)?;
            *seconds += started.elapsed().as_secs_f64();
        }
    }
    accumulators
        .into_iter()
        .map(|(cka, seconds)| {
            Ok(PassResult {
                matrix: cka.finish_with_batch_size(batch_size)?,
                seconds,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Tensor};
    use repsim_similarity::testing::random_matrix;

    /// A "model": fixed random projections of the inputs, one layer each.
    fn projection(seed: u64, widths: &[usize]) -> impl FnMut(Inputs) -> Result<Vec<Layer>> {
        let device = Device::flex();
        // Seeded draws of their own: burn's RNG is process-global and the tests run at once.
        let weights: Vec<Tensor<2>> = widths
            .iter()
            .enumerate()
            .map(|(i, &w)| random_matrix(6, w, seed * 10 + i as u64, &device))
            .collect();
        move |inputs| {
            let Inputs::Images(x) = inputs else {
                unreachable!()
            };
            let x: Tensor<2> = x.flatten(1, 3);
            Ok(weights
                .iter()
                .enumerate()
                .map(|(i, w)| Layer {
                    name: format!("l{i}"),
                    matrix: x.clone().matmul(w.clone()).tanh(),
                })
                .collect())
        }
    }

    fn batches() -> Vec<Result<Inputs>> {
        let device = Device::flex();
        (0..3)
            .map(|b| {
                Ok(Inputs::Images(
                    random_matrix(16, 6, 100 + b, &device).reshape([16, 6, 1, 1]),
                ))
            })
            .collect()
    }

    #[test]
    fn one_against_many_equals_each_pair_and_itself_the_symmetric_pass() {
        let mut a = projection(1, &[4, 5]);
        let mut b = projection(2, &[3]);
        let mut c = projection(3, &[5, 2]);
        let together = minibatch_cka_pass(batches(), &mut a, &mut [&mut b, &mut c], 16).unwrap();
        assert_eq!(together.len(), 2);
        let mut a = projection(1, &[4, 5]);
        let mut c = projection(3, &[5, 2]);
        let alone = minibatch_cka_pass(batches(), &mut a, &mut [&mut c], 16).unwrap();
        assert_eq!(together[1].matrix.values, alone[0].matrix.values);
        assert_eq!(together[1].matrix.shape(), (2, 2));
        assert_eq!(
            together[1].matrix.measure,
            repsim_similarity::Measure::minibatch_cka(16)
        );
        let mut a = projection(1, &[4, 5]);
        let itself = minibatch_cka_pass(batches(), &mut a, &mut [], 16).unwrap();
        for i in 0..2 {
            let diagonal = itself[0].matrix.values[i][i].unwrap();
            assert!((diagonal - 1.0).abs() < 1e-5, "{diagonal}");
        }
    }

    #[test]
    fn a_model_without_layers_is_named() {
        let mut a = projection(1, &[4]);
        let mut empty = |_: Inputs| -> Result<Vec<Layer>> { Ok(Vec::new()) };
        let err = minibatch_cka_pass(batches(), &mut a, &mut [&mut empty], 16)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("model b (the columns)"), "{err}");
    }
}
