//! What a model will need in memory, estimated before anything large is allocated.
//!
//! Parameters initialise lazily in burn 0.22, so [`ModelSpec::init`] of even a huge model
//! allocates nothing: the parameter count is read from the lazy shapes. Activations are
//! measured on one example at a small input (every probed layer, `Probe::All`) once the
//! parameters are known to fit, and scaled to the real input: by `(side / small)^2` for image
//! models (spatial maps dominate; the classifier head is counted as if it grew too, so this
//! errs high), by `steps / small` for sequence models.

use burn::tensor::Device;

use crate::{count_parameters, AnyModel, ModelError, ModelSpec, Probe};

/// Bytes of one float32.
const F32_BYTES: u64 = 4;

/// An estimate of a model's memory.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemoryEstimate {
    /// Trainable parameters.
    pub parameters: u64,
    /// Floats of every probed activation for one example at the requested input.
    pub activations_per_example: u64,
}

impl MemoryEstimate {
    /// Bytes of a forward pass over `batch` examples keeping every activation (inference), or
    /// of a training step (`training`: gradients and optimiser state of the parameters, about
    /// 4x; activations kept for the backward pass and their gradients, about 3x).
    pub fn bytes(&self, batch: usize, training: bool) -> u64 {
        let (parameter_copies, activation_copies) = if training { (4, 3) } else { (1, 1) };
        F32_BYTES
            * (parameter_copies * self.parameters
                + activation_copies * self.activations_per_example * batch as u64)
    }
}

/// Estimates `spec` at input side (pixels) or length (steps) `side`. Only the parameter count
/// is computed when the parameters alone exceed `parameter_limit_bytes` (the activations would
/// need the parameters allocated).
pub fn estimate_memory(
    spec: &ModelSpec,
    side: usize,
    parameter_limit_bytes: u64,
) -> Result<MemoryEstimate, ModelError> {
    let device = Device::flex();
    let model = spec.init(&device)?; // lazy: nothing allocated yet
    let parameters = match &model {
        AnyModel::ResNet(m) => count_parameters(m),
        AnyModel::Cnn(m) => count_parameters(m),
        AnyModel::SvccaCnn(m) => count_parameters(m),
        AnyModel::RnnClassifier(m) => count_parameters(m),
        AnyModel::RnnLanguageModel(m) => count_parameters(m),
    } as u64;
    if parameters * F32_BYTES > parameter_limit_bytes {
        return Ok(MemoryEstimate {
            parameters,
            activations_per_example: 0,
        });
    }
    let (small, scale) = match spec {
        ModelSpec::Resnet(_) | ModelSpec::Cnn(_) => {
            let small = minimum_side(spec)?.max(side.min(64));
            let ratio = side as f64 / small as f64;
            (small, ratio * ratio)
        }
        ModelSpec::SvccaCnn(c) => (c.side, 1.0),
        ModelSpec::RnnClassifier(_) | ModelSpec::RnnLanguageModel(_) => {
            let small = side.clamp(1, 16);
            (small, side as f64 / small as f64)
        }
    };
    let description = model.describe(spec, &spec.input_shape(1, small), &Probe::All, &device)?;
    let measured: u64 = description
        .layers
        .iter()
        .map(|l| l.shape.iter().skip(1).product::<usize>() as u64)
        .sum();
    Ok(MemoryEstimate {
        parameters,
        activations_per_example: (measured as f64 * scale).ceil() as u64,
    })
}

/// The smallest input side an image model takes.
fn minimum_side(spec: &ModelSpec) -> Result<usize, ModelError> {
    Ok(match spec {
        ModelSpec::Resnet(c) => match c.plan()?.stem {
            crate::Stem::ImageNet => 32,
            crate::Stem::Cifar => 8,
        },
        _ => 8,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PlainCnnConfig, ResNetConfig};

    #[test]
    fn a_huge_model_is_counted_without_being_allocated() {
        // 100,000 channels: about 360 GB of parameters, counted from lazy shapes.
        let spec = ModelSpec::Cnn(PlainCnnConfig::new().with_width(100_000));
        let e = estimate_memory(&spec, 32, 1 << 30).unwrap();
        assert!(e.parameters > 50_000_000_000, "{e:?}");
        assert_eq!(e.activations_per_example, 0);
    }

    #[test]
    fn activations_scale_with_the_input_area() {
        let spec = ModelSpec::Resnet(ResNetConfig::cifar(8, 1, 10));
        let at_32 = estimate_memory(&spec, 32, u64::MAX).unwrap();
        let at_128 = estimate_memory(&spec, 128, u64::MAX).unwrap();
        assert_eq!(at_32.parameters, at_128.parameters);
        let ratio = at_128.activations_per_example as f64 / at_32.activations_per_example as f64;
        assert!((ratio - 16.0).abs() < 0.5, "{ratio}");
        assert!(at_32.bytes(128, true) > at_32.bytes(128, false));
    }
}
