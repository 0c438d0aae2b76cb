//! Building burn-optim's optimisers from an [`OptimizerConfig`], and saving and loading their
//! state (burnpack) onto the run's device.

use std::path::Path;

use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, AdamWConfig, ModuleOptimizer, SgdConfig};
use burn::tensor::Device;

use crate::config::OptimizerConfig;
use crate::durable::write_via;
use crate::error::{Result, TrainError};

/// The burn optimiser for `config`, with every default that differs from PyTorch's set
/// explicitly (momentum dampening 0, Adam epsilon as configured).
pub fn build_optimizer(config: &OptimizerConfig) -> ModuleOptimizer {
    let decay = |w: f64| (w > 0.0).then(|| WeightDecayConfig::new(w as f32));
    match config {
        OptimizerConfig::Sgd {
            momentum,
            nesterov,
            weight_decay,
        } => SgdConfig::new()
            .with_momentum((*momentum > 0.0).then(|| {
                MomentumConfig::new()
                    .with_momentum(*momentum)
                    .with_dampening(0.0)
                    .with_nesterov(*nesterov)
            }))
            .with_weight_decay(decay(*weight_decay))
            .init(),
        OptimizerConfig::Adam {
            beta1,
            beta2,
            epsilon,
            weight_decay,
        } => AdamConfig::new()
            .with_beta_1(*beta1 as f32)
            .with_beta_2(*beta2 as f32)
            .with_epsilon(*epsilon as f32)
            .with_weight_decay(decay(*weight_decay))
            .init(),
        OptimizerConfig::AdamW {
            beta1,
            beta2,
            epsilon,
            weight_decay,
        } => AdamWConfig::new()
            .with_beta_1(*beta1 as f32)
            .with_beta_2(*beta2 as f32)
            .with_epsilon(*epsilon as f32)
            .with_weight_decay(*weight_decay as f32)
            .init(),
    }
}

/// Saves the optimiser's state to `path` atomically.
pub fn save_optimizer(optimizer: &ModuleOptimizer, path: &Path) -> Result<()> {
    write_via(path, |temporary| {
        optimizer
            .save(temporary)
            .map_err(|e| TrainError::file(path, format!("cannot save the optimizer state: {e}")))
    })
}

/// Loads optimiser state saved by [`save_optimizer`] into `optimizer`, with the state tensors
/// on `device`'s backend.
///
/// burn 0.22.1's `ModuleOptimizer::load_record` materialises the state on `Device::default()`,
/// which with repsim's `wgpu` feature is a wgpu adapter (and panics where there is none). burn
/// reads the default from `BURN_DEVICE`; so for a flex run it is set to `flex` for the duration
/// of the load (when the user has not set it), and restored after. The state moves to each
/// parameter's device at the next step either way; this only keeps the load itself off wgpu.
pub fn load_optimizer(
    optimizer: ModuleOptimizer,
    path: &Path,
    device: &Device,
) -> Result<ModuleOptimizer> {
    let on_flex = *device == Device::flex();
    let previous = std::env::var_os("BURN_DEVICE");
    let pin = on_flex && previous.is_none();
    if pin {
        std::env::set_var("BURN_DEVICE", "flex");
    }
    let loaded = optimizer.load(path);
    if pin {
        std::env::remove_var("BURN_DEVICE");
    }
    loaded.map_err(|e| TrainError::file(path, format!("not a readable optimizer state: {e}")))
}
