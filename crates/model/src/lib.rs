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
//! - [`kernels`]: repsim's own flex kernels the models call (convolution and batch norm with
//!   their autodiff backward; burn's ops on every other backend, and with `REPSIM_KERNELS=burn`).
//!
//! ```
//! use burn::tensor::{Device, Distribution, Tensor};
//! use repsim_model::{count_parameters, Probe, ResNetConfig};
//!
//! let device = Device::flex();
//! let resnet20 = ResNetConfig::cifar(20, 1, 10).init(&device)?; // He et al.'s CIFAR layout
//! assert_eq!(count_parameters(&resnet20), 272_474); // the published count
//! let x = Tensor::<4>::random([2, 3, 16, 16], Distribution::Normal(0.0, 1.0), &device);
//! let (logits, layers) = resnet20.forward_probed(x, &Probe::Blocks)?;
//! assert_eq!(logits.dims(), [2, 10]);
//! assert!(layers.iter().any(|(name, _)| name == "stage1.block1.out"));
//! # Ok::<(), repsim_model::ModelError>(())
//! ```

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
