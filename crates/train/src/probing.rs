//! The one probing path of repsim: a probe set cut into batches on the device
//! ([`probe_batches`]), each observed model's layers per batch ([`layers_of`]: conv maps and
//! sequences shaped as the comparison takes them), and the comparison driver
//! ([`repsim_similarity::Comparison`]) fed batch by batch ([`comparison_pass`]): minibatch CKA
//! folds each batch into its sums, and only measures that need every example at once gather
//! the layers, on the device. [`crate::compare()`], the [`crate::Tracker`], the experiments'
//! comparisons of trained networks and `repsim compare` on weights and runs go through it;
//! nothing leaves the device but the measures' sums.

use std::time::Instant;

use repsim_model::{Probe, TimeReduction};
use repsim_similarity::{
    Comparison, ConvMode, Layer, Measure, ShortLastBatch, SimilarityError, SimilarityMatrix,
    WholeData,
};

use crate::error::{Result, TrainError};
use crate::network::Inputs;
use crate::observe::{layers_from_activations, Observe};

/// One model seen through the pass: its layers of one batch (by default a batch of probe
/// inputs; any batch description its caller chooses, such as a range of dataset items that
/// each model normalises its own way), with the caller's error type.
pub type LayersOf<'a, Batch = Inputs, E = TrainError> =
    dyn FnMut(Batch) -> std::result::Result<Vec<Layer>, E> + 'a;

/// Consecutive batches of `batch_size` probe inputs (the last may be shorter), without
/// autodiff, on the inputs' device.
pub fn probe_batches(
    inputs: &Inputs,
    batch_size: usize,
) -> impl Iterator<Item = Result<Inputs>> + '_ {
    let n = inputs.len();
    let batch_size = batch_size.max(1);
    (0..n).step_by(batch_size).map(move |start| {
        Ok(inputs
            .narrow(start, batch_size.min(n - start))
            .without_autodiff())
    })
}

/// `observed`'s layers of one batch: the activations `probe` names (a closure gives what it
/// returns), conv maps shaped by `conv`, sequences reduced by `time`.
pub fn layers_of<'a, Marker>(
    observed: impl Observe<Marker> + 'a,
    probe: &'a Probe,
    conv: ConvMode,
    time: TimeReduction,
) -> impl FnMut(Inputs) -> Result<Vec<Layer>> + 'a {
    let mut activations_of = observed.batch_fn(probe);
    move |batch| layers_from_activations(activations_of(batch)?, conv, time)
}

/// What the pass gives for each comparison: the matrices, and the seconds spent on them (the
/// compared model's forward passes and the measures' updates; the first model's shared
/// forward passes are counted in none).
pub struct PassResult {
    /// One matrix per measure, in order: the first model's layers (rows) against this model's
    /// (columns).
    pub matrices: Vec<SimilarityMatrix>,
    /// Seconds of this comparison's own work.
    pub seconds: f64,
}

/// `measures` of `first`'s layers against each of `others`' (none: `first` against itself)
/// over `batches`. Each batch's layers of `first` are computed once and serve every
/// comparison; with minibatch CKA among the measures, the batches must hold its batch size (a
/// shorter last one is left out, with a warning in the matrix, or counted: `short_last`). A
/// model that gives no layers is refused, naming it (`first` is model 0, the others 1, 2, ...).
pub fn comparison_pass<Batch: Clone, E: From<TrainError> + From<SimilarityError>>(
    batches: impl IntoIterator<Item = std::result::Result<Batch, E>>,
    first: &mut LayersOf<'_, Batch, E>,
    others: &mut [&mut LayersOf<'_, Batch, E>],
    measures: &[Measure],
    short_last: ShortLastBatch,
) -> std::result::Result<Vec<PassResult>, E> {
    let count = others.len().max(1);
    let mut comparisons: Vec<(Comparison, f64)> = (0..count)
        .map(|_| {
            let comparison = Comparison::new(measures, WholeData::Gather)?;
            Ok((comparison.with_short_last_batch(short_last), 0.0))
        })
        .collect::<std::result::Result<_, SimilarityError>>()?;
    let single = others.len() <= 1;
    let no_layers = |which: usize| {
        let model = match which {
            0 => "model a (the rows)".to_string(),
            _ if single => "model b (the columns)".to_string(),
            k => format!("model {k} of the columns"),
        };
        E::from(TrainError::BadConfig(format!(
            "{model} gave no layers to compare"
        )))
    };
    for inputs in batches {
        let inputs = inputs?;
        let layers = first(inputs.clone())?;
        if layers.is_empty() {
            return Err(no_layers(0));
        }
        if others.is_empty() {
            let started = Instant::now();
            comparisons[0].0.update(&layers, None).map_err(E::from)?;
            comparisons[0].1 += started.elapsed().as_secs_f64();
            continue;
        }
        for (k, (other, (comparison, seconds))) in
            others.iter_mut().zip(comparisons.iter_mut()).enumerate()
        {
            let started = Instant::now();
            let theirs = other(inputs.clone())?;
            if theirs.is_empty() {
                return Err(no_layers(k + 1));
            }
            comparison.update(&layers, Some(&theirs)).map_err(E::from)?;
            *seconds += started.elapsed().as_secs_f64();
        }
    }
    comparisons
        .into_iter()
        .map(|(comparison, mut seconds)| {
            let started = Instant::now();
            let matrices = comparison.finish().map_err(E::from)?;
            seconds += started.elapsed().as_secs_f64();
            Ok(PassResult { matrices, seconds })
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
        let together = comparison_pass(
            batches(),
            &mut a,
            &mut [&mut b, &mut c],
            &[Measure::minibatch_cka(16)],
            ShortLastBatch::LeaveOut,
        )
        .unwrap();
        assert_eq!(together.len(), 2);
        let mut a = projection(1, &[4, 5]);
        let mut c = projection(3, &[5, 2]);
        let alone = comparison_pass(
            batches(),
            &mut a,
            &mut [&mut c],
            &[Measure::minibatch_cka(16)],
            ShortLastBatch::LeaveOut,
        )
        .unwrap();
        assert_eq!(together[1].matrices[0].values, alone[0].matrices[0].values);
        assert_eq!(together[1].matrices[0].shape(), (2, 2));
        assert_eq!(
            together[1].matrices[0].measure,
            repsim_similarity::Measure::minibatch_cka(16)
        );
        let mut a = projection(1, &[4, 5]);
        let itself = comparison_pass(
            batches(),
            &mut a,
            &mut [],
            &[Measure::minibatch_cka(16)],
            ShortLastBatch::LeaveOut,
        )
        .unwrap();
        for i in 0..2 {
            let diagonal = itself[0].matrices[0].values[i][i].unwrap();
            assert!((diagonal - 1.0).abs() < 1e-5, "{diagonal}");
        }
    }

    #[test]
    fn several_measures_in_one_pass_equal_the_whole_data_entry_point() {
        let measures: Vec<Measure> = ["minibatch_cka:batch_size=16", "linear_cka", "svcca:dims=2"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let mut a = projection(1, &[4, 5]);
        let mut b = projection(2, &[3]);
        let pass = comparison_pass(
            batches(),
            &mut a,
            &mut [&mut b],
            &measures,
            ShortLastBatch::LeaveOut,
        )
        .unwrap();
        // The same layers gathered by hand, then every measure on all 48 examples at once.
        let (mut a, mut b) = (projection(1, &[4, 5]), projection(2, &[3]));
        let (mut whole_a, mut whole_b): (Vec<Vec<Layer>>, Vec<Vec<Layer>>) = (vec![], vec![]);
        for inputs in batches() {
            let inputs = inputs.unwrap();
            whole_a.push(a(inputs.clone()).unwrap());
            whole_b.push(b(inputs).unwrap());
        }
        let join = |batches: Vec<Vec<Layer>>| -> Vec<Layer> {
            (0..batches[0].len())
                .map(|i| Layer {
                    name: batches[0][i].name.clone(),
                    matrix: burn::tensor::Tensor::cat(
                        batches.iter().map(|b| b[i].matrix.clone()).collect(),
                        0,
                    ),
                })
                .collect()
        };
        let (whole_a, whole_b) = (join(whole_a), join(whole_b));
        let expected =
            repsim_similarity::similarity_matrices(&measures, &whole_a, &whole_b).unwrap();
        assert_eq!(pass[0].matrices.len(), 3);
        for (got, expected) in pass[0].matrices.iter().zip(&expected) {
            assert_eq!(got.measure, expected.measure);
            assert_eq!(got.values, expected.values, "{}", got.measure);
        }
    }

    #[test]
    fn a_model_without_layers_is_named() {
        let mut a = projection(1, &[4]);
        let mut empty = |_: Inputs| -> Result<Vec<Layer>> { Ok(Vec::new()) };
        let err = comparison_pass(
            batches(),
            &mut a,
            &mut [&mut empty],
            &[Measure::minibatch_cka(16)],
            ShortLastBatch::LeaveOut,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("model b (the columns)"), "{err}");
    }
}
