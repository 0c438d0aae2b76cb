//! repsim's own CPU kernels for the layers that dominate training on flex: 2-d convolution
//! and batch normalisation, forward and backward (issue 22); and the cross-entropy loss, whose
//! sums run in one order on every CPU ([`cross_entropy`], so a training run gives the same
//! numbers on AVX2 and AVX-512 machines).
//!
//! The models keep burn's modules (`Conv2d`, `BatchNorm`), so parameter names, `.bpk` files and
//! torchvision imports are unchanged; their forward passes call [`conv2d`] and [`batch_norm`]
//! here instead of the modules' own `forward`. On flex (plain or under autodiff, `f32`) these
//! run the kernels, recorded in burn's autodiff graph as one node each with a hand-written
//! backward (burn-autodiff's `Backward`); on wgpu, or any case the kernels do not cover
//! (groups, dilation, "same" padding, another float type, gradient checkpointing), they call
//! burn's op unchanged. `REPSIM_KERNELS=burn` turns them off for the whole process
//! ([`use_repsim_kernels`]).

mod batch_norm;
mod conv2d;
mod cross_entropy;
mod host;
mod lanes;
mod switch;
#[cfg(test)]
mod test_support;

pub use batch_norm::batch_norm;
pub use conv2d::conv2d;
pub use cross_entropy::cross_entropy;
pub use switch::{repsim_kernels, use_repsim_kernels};
