//! What the kernels' tests share.

use burn::tensor::Tensor;

/// The largest difference between `a` and `b`, relative to `b`'s largest magnitude.
pub fn relative_difference<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    let scale = b.clone().abs().max().into_scalar::<f32>().max(1e-6);
    (a - b).abs().max().into_scalar::<f32>() / scale
}
