//! [`compare()`]: minibatch CKA between every layer of two models on the same inputs, in
//! memory, for any burn model.
//!
//! ```ignore
//! let matrix = compare(
//!     probe_images,                                    // Tensor<4> (or Tensor<2, Int>)
//!     |x| model_a.valid().forward_with_layers(x),      // named tensors, any form
//!     |x| model_b.valid().forward_with_layers(x),
//!     &CompareOptions::default(),                      // batches of 256
//! )?;
//! ```
//!
//! The inputs are cut into batches of `batch_size` examples; each batch goes through both
//! models, and each layer's Gram is computed once per batch and folded into the streaming
//! minibatch CKA of Nguyen et al. 2021 (unbiased HSIC per batch, summed over batches:
//! `CKA = sum_b HSIC_1(K_b, L_b) / sqrt(sum_b HSIC_1(K_b, K_b) sum_b HSIC_1(L_b, L_b))`). So no
//! more than one batch of activations is alive at a time and nothing is written to disk. Either
//! side may be a closure or a repsim model (`&model`), as for the Tracker ([`crate::observe`]).

use repsim_model::{Probe, TimeReduction};
use repsim_similarity::{ConvMode, SimilarityMatrix};

use crate::error::{Result, TrainError};
use crate::network::Inputs;
use crate::observe::Observe;
use crate::probing::{comparison_pass, layers_of, probe_batches};
use repsim_similarity::Measure;

/// How [`compare()`] batches and flattens.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// Examples per batch (the paper: 256). A shorter last batch counts as a minibatch of its
    /// own if it holds at least 4 examples (the unbiased HSIC needs 4), so that every probe
    /// example is compared; fewer are left out, with a warning in the matrix.
    pub batch_size: usize,
    /// How conv feature maps become matrices.
    pub conv: ConvMode,
    /// How sequences become one row per example.
    pub time: TimeReduction,
    /// Which layers a repsim model gives (closures give what they return).
    pub probe: Probe,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            batch_size: 256,
            conv: ConvMode::Flatten,
            time: TimeReduction::Last,
            probe: Probe::Blocks,
        }
    }
}

/// Minibatch CKA of every layer of `a` (rows) against every layer of `b` (columns) on `inputs`;
/// see the module docs.
pub fn compare<Ma, Mb>(
    inputs: impl Into<Inputs>,
    a: impl Observe<Ma>,
    b: impl Observe<Mb>,
    options: &CompareOptions,
) -> Result<SimilarityMatrix> {
    let inputs = inputs.into();
    let n = inputs.len();
    let batch_size = options.batch_size;
    if batch_size < 4 {
        return Err(TrainError::BadConfig(format!(
            "a batch size of {batch_size} is too small for minibatch CKA (at least 4)"
        )));
    }
    if n < 4 {
        return Err(TrainError::BadConfig(format!(
            "{n} examples are too few to compare (at least 4)"
        )));
    }
    let (conv, time) = (options.conv, options.time);
    let mut side_a = layers_of(a, &options.probe, conv, time);
    let mut side_b = layers_of(b, &options.probe, conv, time);
    let mut results = comparison_pass(
        probe_batches(&inputs, batch_size),
        &mut side_a,
        &mut [&mut side_b],
        &[Measure::minibatch_cka(batch_size)],
        repsim_similarity::ShortLastBatch::Count,
    )?;
    Ok(results.remove(0).matrices.remove(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution, Tensor};
    use repsim_model::Activations;
    use repsim_similarity::{Layer, MinibatchCka};

    #[test]
    fn two_closures_are_compared_like_the_accumulator_over_the_same_batches() {
        let device = Device::flex();
        let x = Tensor::<4>::random([40, 2, 3, 3], Distribution::Normal(0.0, 1.0), &device);
        let w = Tensor::<2>::random([18, 5], Distribution::Normal(0.0, 1.0), &device);
        let hidden =
            |x: Tensor<4>| burn::tensor::activation::relu(x.reshape([-1, 18]).matmul(w.clone()));
        let a = |x: Tensor<4>| {
            vec![
                ("input", x.clone().reshape([-1, 18])),
                ("hidden", hidden(x)),
            ]
        };
        let b = |x: Tensor<4>| {
            Activations::new()
                .with("hidden", hidden(x.clone()))
                .with("map", x)
        };
        let options = CompareOptions {
            batch_size: 16,
            ..CompareOptions::default()
        };
        let m = compare(x.clone(), a, b, &options).unwrap();
        assert_eq!(m.rows, ["input", "hidden"]);
        assert_eq!(m.cols, ["hidden", "map"]);
        // hidden vs hidden: the same layer.
        assert!((m.values[1][0].unwrap() - 1.0).abs() < 1e-5);
        // The same batches (16, 16, 8) through the accumulator directly: a shorter last batch
        // of at least 4 examples counts (ShortLastBatch::Count), so every example is compared.
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
        assert_eq!(m.n_examples, Some(40));
        let mut direct = MinibatchCka::new();
        for (start, len) in [(0, 16), (16, 16), (32, 8)] {
            let xb = x.clone().narrow(0, start, len);
            let flat = xb.clone().reshape([len as i32, 18]);
            let la = vec![
                Layer::new("input", flat.clone()).unwrap(),
                Layer::new("hidden", hidden(xb.clone())).unwrap(),
            ];
            let lb = vec![
                Layer::new("hidden", hidden(xb)).unwrap(),
                Layer::new("map", flat).unwrap(),
            ];
            direct.update(&la, &lb).unwrap();
        }
        let direct = direct.finish().unwrap();
        for (row, expected) in m.values.iter().zip(&direct.values) {
            for (v, e) in row.iter().zip(expected) {
                assert!((v.unwrap() - e.unwrap()).abs() < 1e-6, "{v:?} vs {e:?}");
            }
        }
    }

    #[test]
    fn too_few_examples_or_a_tiny_batch_are_refused() {
        let device = Device::flex();
        let x = Tensor::<4>::ones([3, 1, 2, 2], &device);
        let f = |x: Tensor<4>| vec![("x", x)];
        assert!(compare(x.clone(), f, f, &CompareOptions::default()).is_err());
        let options = CompareOptions {
            batch_size: 2,
            ..CompareOptions::default()
        };
        let e = compare(x, f, f, &options).unwrap_err();
        assert!(e.to_string().contains("batch size of 2"), "{e}");
    }
}
