//! A layer's activations as an examples x features matrix on the device.
//!
//! Every measure takes activations with the examples on dim 0 and flattens everything past
//! dim 0 into features: a convolutional layer's `(N, C, H, W)` becomes `N x (C*H*W)`.

use burn::tensor::Tensor;

use crate::error::{Result, SimilarityError};

/// One layer's activations: a name and an `N x D` matrix (examples x features) on a device.
#[derive(Clone, Debug)]
pub struct Layer {
    /// The layer's name, e.g. `stage2.block3.out`; errors and matrices name layers by it.
    pub name: String,
    /// The activations, examples on dim 0, features flattened on dim 1.
    pub matrix: Tensor<2>,
}

impl Layer {
    /// A layer from activations of any rank >= 2, examples on dim 0.
    pub fn new<const D: usize>(name: impl Into<String>, activations: Tensor<D>) -> Result<Self> {
        let name = name.into();
        let matrix = flatten_examples(&name, activations)?;
        Ok(Layer { name, matrix })
    }

    /// Number of examples (rows).
    pub fn num_examples(&self) -> usize {
        self.matrix.dims()[0]
    }

    /// Number of features (columns).
    pub fn num_features(&self) -> usize {
        self.matrix.dims()[1]
    }

    /// The rows `start .. start + len` of this layer (a minibatch), same name.
    pub fn rows(&self, start: usize, len: usize) -> Layer {
        Layer {
            name: self.name.clone(),
            matrix: self.matrix.clone().narrow(0, start, len),
        }
    }
}

/// Flattens activations of rank `D >= 2` to `N x (product of the other dims)`.
pub fn flatten_examples<const D: usize>(layer: &str, activations: Tensor<D>) -> Result<Tensor<2>> {
    let dims = activations.dims();
    if D < 2 {
        return Err(SimilarityError::BadRank {
            layer: layer.to_string(),
            shape: dims.to_vec(),
        });
    }
    if D == 2 {
        return Ok(activations.reshape(dims_2(&dims)));
    }
    Ok(activations.flatten::<2>(1, D - 1))
}

fn dims_2(dims: &[usize]) -> [usize; 2] {
    [dims[0], dims[1]]
}

/// Checks that every layer holds `n` examples; the first layer sets `n` when `n` is `None`.
pub(crate) fn check_same_examples<'a>(
    layers: impl IntoIterator<Item = &'a Layer>,
) -> Result<usize> {
    let mut first: Option<(&str, usize)> = None;
    for layer in layers {
        let n = layer.num_examples();
        match first {
            None => first = Some((&layer.name, n)),
            Some((name, n0)) if n0 != n => {
                return Err(SimilarityError::ExampleCountMismatch {
                    layer_a: name.to_string(),
                    n_a: n0,
                    layer_b: layer.name.clone(),
                    n_b: n,
                })
            }
            Some(_) => {}
        }
    }
    first
        .map(|(_, n)| n)
        .ok_or(SimilarityError::InvalidParameter {
            name: "layers",
            message: "no layers given".to_string(),
        })
}

/// Checks that layers have at least `needed` examples for `estimator`.
pub(crate) fn check_min_examples(
    layer: &Layer,
    needed: usize,
    estimator: &'static str,
) -> Result<()> {
    let n = layer.num_examples();
    if n < needed {
        return Err(SimilarityError::TooFewExamples {
            estimator,
            needed,
            layer: layer.name.clone(),
            n,
        });
    }
    Ok(())
}

/// Explains a non-finite result: finds the first NaN or infinity in `layer` (examples
/// offset by `example_offset`), or reports an f32 overflow when the inputs are all finite.
///
/// Only called on the error path: it reads the whole layer back to the host.
pub(crate) fn explain_non_finite(layer: &Layer, example_offset: usize) -> SimilarityError {
    let features = layer.num_features().max(1);
    match layer.matrix.clone().try_into_vec_as::<f32>() {
        Ok(values) => {
            if let Some(index) = values.iter().position(|v| !v.is_finite()) {
                let v = values[index];
                SimilarityError::NonFinite {
                    layer: layer.name.clone(),
                    value: if v.is_nan() {
                        "NaN".into()
                    } else {
                        format!("{v}")
                    },
                    example: example_offset + index / features,
                    feature: index % features,
                }
            } else {
                let max_abs = values.iter().fold(0f32, |m, v| m.max(v.abs()));
                SimilarityError::Overflow {
                    layer: layer.name.clone(),
                    max_abs,
                }
            }
        }
        Err(e) => SimilarityError::Readback(format!("{e:?}")),
    }
}

/// Sums of long reductions, read back in one go: each part is a vector of partial sums
/// (e.g. the row sums of an `n x n` product), added up on the host in f64, so an `n^2`-long
/// sum is never accumulated in one float32 register.
pub(crate) fn read_sums(parts: Vec<Tensor<1>>) -> Result<Vec<f64>> {
    let lengths: Vec<usize> = parts.iter().map(|p| p.dims()[0]).collect();
    let values = read_back(Tensor::cat(parts, 0))?;
    let mut sums = Vec::with_capacity(lengths.len());
    let mut start = 0;
    for len in lengths {
        sums.push(pairwise_sum(&values[start..start + len]));
        start += len;
    }
    Ok(sums)
}

/// Pairwise (cascade) summation in f64.
fn pairwise_sum(values: &[f64]) -> f64 {
    if values.len() <= 64 {
        return values.iter().sum();
    }
    let (a, b) = values.split_at(values.len() / 2);
    pairwise_sum(a) + pairwise_sum(b)
}

/// Reads a device tensor back as `f64`s.
pub(crate) fn read_back<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f64>> {
    tensor
        .try_into_vec_as::<f64>()
        .map_err(|e| SimilarityError::Readback(format!("{e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn flattens_every_dim_past_the_first() {
        let device = Device::flex();
        let x = Tensor::<4>::zeros([5, 2, 3, 4], &device);
        let layer = Layer::new("conv", x).unwrap();
        assert_eq!(layer.matrix.dims(), [5, 24]);
        assert_eq!(layer.rows(1, 3).matrix.dims(), [3, 24]);
    }

    #[test]
    fn rank_one_is_an_error_naming_the_layer() {
        let device = Device::flex();
        let err = Layer::new("logits", Tensor::<1>::zeros([5], &device)).unwrap_err();
        assert!(err.to_string().contains("logits"), "{err}");
    }

    #[test]
    fn explains_the_first_nan_with_its_example_and_feature() {
        let device = Device::flex();
        let mut values = vec![0.5f32; 12];
        values[7] = f32::NAN;
        let x = Tensor::<2>::from_data(TensorData::new(values, [4, 3]), &device);
        let err = explain_non_finite(&Layer::new("fc", x).unwrap(), 100);
        match err {
            SimilarityError::NonFinite {
                layer,
                example,
                feature,
                ..
            } => assert_eq!((layer.as_str(), example, feature), ("fc", 102, 1)),
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn mismatched_example_counts_name_both_layers() {
        let device = Device::flex();
        let a = Layer::new("a", Tensor::<2>::zeros([5, 2], &device)).unwrap();
        let b = Layer::new("b", Tensor::<2>::zeros([6, 2], &device)).unwrap();
        let err = check_same_examples([&a, &b]).unwrap_err().to_string();
        assert!(err.contains("`a`") && err.contains("`b`"), "{err}");
    }
}
