#![recursion_limit = "256"]
//! The networks repsim compares, in burn, with named activation capture.
//!
//! burn has no forward hooks, so every model has `forward(x)` and
//! `forward_probed(x, &Probe) -> (output, Activations)`; activations are named by stable
//! paths (`stage2.block3.out`, `stage2.block3.conv1`, `lstm.layer1`) so that two models of a
//! family line up by name, and are listed in forward order.
//!
//! - [`ResNet`] ([`ResNetConfig`]): CIFAR layout (He et al. 2016, 6n+2 / 9n+2, any width) and
//!   torchvision's ImageNet layout (18-152), projection or zero-padding shortcuts.
//! - [`PlainCnn`] and [`SvccaConvNet`]: VGG-like stacks and the SVCCA tutorial's small net.
//! - [`RnnClassifier`] and [`RnnLanguageModel`]: stacked LSTM, GRU or vanilla RNN layers.
//! - [`save_weights`] / [`load_weights`] (burnpack) and [`import_torchvision_resnet`]
//!   (safetensors).
//! - [`ModelSpec`] / [`AnyModel`] / [`Description`]: every family behind one type, and what
//!   `repsim describe` prints.

mod cnn;
mod error;
pub mod kernels;
mod memory;
mod params;
mod probe;
mod resnet;
mod rnn;
mod weights;
mod zoo;

pub use cnn::{ConvLayer, PlainCnn, PlainCnnConfig, SvccaConvNet, SvccaConvNetConfig};
pub use error::ModelError;
pub use memory::{estimate_memory, MemoryEstimate};
pub use params::count_parameters;
pub use probe::{ActivationTensor, Activations, Probe, Recorder, TimeReduction};
pub use resnet::{
    Block, BlockKind, Downsample, ResNet, ResNetConfig, ResNetFamily, ResNetPlan, Shortcut, Stem,
    ZeroPad,
};
pub use rnn::{
    CellKind, RecurrentConfig, RecurrentLayer, RecurrentStack, RnnClassifier, RnnClassifierConfig,
    RnnLanguageModel, RnnLanguageModelConfig,
};
pub use weights::{import_torchvision_resnet, load_weights, save_weights, ImportReport};
pub use zoo::{AnyModel, Description, LayerInfo, ModelSpec};
