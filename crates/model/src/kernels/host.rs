//! Moving tensors between burn's run-time `Tensor` and flex's host storage, for the kernels.
//!
//! On flex a tensor's values already live in host memory; `Tensor::try_into_primitive` (burn's
//! backend-extension API) downcasts a `Tensor` to the flex primitive (`FlexTensor`), or to the
//! autodiff wrapper around one (`AutodiffTensor<Flex>`) on `Device::flex().autodiff()`. Any
//! other device, float type or checkpointing strategy fails the downcast, and the caller keeps
//! burn's own op.

use burn::backend::{AutodiffBackend, BackendTypes};
use burn::tensor::{DType, Tensor, TensorData};
use burn_autodiff::Autodiff;
use burn_flex::{Flex, FlexTensor};

/// The autodiff primitive on flex (burn's default strategy, no gradient checkpointing).
pub type FlexAutodiff = Autodiff<Flex>;
/// A float tensor of [`FlexAutodiff`]: a flex tensor and its node in the autodiff graph.
pub type TrackedTensor = <FlexAutodiff as BackendTypes>::FloatTensorPrimitive;

/// Where a tensor lives, as far as the kernels care.
pub enum OnFlex {
    /// Plain flex (inference, or no gradient wanted).
    Plain(FlexTensor),
    /// Flex under autodiff: the op records itself in the graph.
    Tracked(TrackedTensor),
}

impl OnFlex {
    /// `x` as a flex primitive, or `None` for any other device or a float type other than
    /// `f32` (burn's op then runs).
    pub fn of<const D: usize>(x: &Tensor<D>) -> Option<Self> {
        if x.dtype() != DType::F32 {
            return None;
        }
        if x.device().is_autodiff() {
            x.clone()
                .try_into_primitive::<FlexAutodiff>()
                .ok()
                .map(OnFlex::Tracked)
        } else {
            x.clone()
                .try_into_primitive::<Flex>()
                .ok()
                .map(OnFlex::Plain)
        }
    }
}

/// The flex tensor inside an autodiff one (a reference count, not a copy).
pub fn inner(x: &TrackedTensor) -> FlexTensor {
    FlexAutodiff::inner(x.clone())
}

/// `x` with its values in row-major order from the start of its storage: `x` itself when it
/// already is (a reference count, not a copy), else one copy.
pub fn contiguous(x: FlexTensor) -> FlexTensor {
    let layout = x.layout();
    if layout.is_contiguous() && layout.start_offset() == 0 {
        x
    } else {
        x.to_contiguous()
    }
}

/// The values of an `f32` flex tensor made [`contiguous`].
pub fn values(x: &FlexTensor) -> &[f32] {
    &x.storage::<f32>()[..x.layout().num_elements()]
}

/// A flex tensor of `shape` holding `values` (moved, not copied).
pub fn flex_tensor(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// A flex tensor as an autodiff one outside the graph (a constant).
pub fn untracked(x: FlexTensor) -> TrackedTensor {
    FlexAutodiff::from_inner(x)
}

/// A plain flex tensor back into burn's run-time `Tensor`.
pub fn plain_tensor<const D: usize>(x: FlexTensor) -> Tensor<D> {
    Tensor::from_primitive::<Flex>(x)
}

/// An autodiff flex tensor back into burn's run-time `Tensor`.
pub fn tracked_tensor<const D: usize>(x: TrackedTensor) -> Tensor<D> {
    Tensor::from_primitive::<FlexAutodiff>(x)
}
