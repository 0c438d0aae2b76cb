//! One entry point for every architecture: [`ModelSpec`] (a family and its configuration,
//! serialisable), [`AnyModel`] (the built network) and [`Description`] (name, parameter count
//! and every probed layer's name and shape), which `repsim describe` prints.

use burn::tensor::{Device, Int, Tensor};

use crate::{
    count_parameters, Activations, ModelError, PlainCnn, PlainCnnConfig, Probe, ResNet,
    ResNetConfig, RnnClassifier, RnnClassifierConfig, RnnLanguageModel, RnnLanguageModelConfig,
    SvccaConvNet, SvccaConvNetConfig,
};

/// A model family with its configuration.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "family", content = "config", rename_all = "snake_case")]
pub enum ModelSpec {
    /// A ResNet (CIFAR or ImageNet layout).
    Resnet(ResNetConfig),
    /// A VGG-like plain CNN.
    Cnn(PlainCnnConfig),
    /// The SVCCA tutorial conv net.
    SvccaCnn(SvccaConvNetConfig),
    /// A recurrent sequence classifier.
    RnnClassifier(RnnClassifierConfig),
    /// A recurrent language model.
    RnnLanguageModel(RnnLanguageModelConfig),
}

impl ModelSpec {
    /// Builds the model on `device`.
    pub fn init(&self, device: &Device) -> Result<AnyModel, ModelError> {
        Ok(match self {
            ModelSpec::Resnet(c) => AnyModel::ResNet(c.init(device)?),
            ModelSpec::Cnn(c) => AnyModel::Cnn(c.init(device)?),
            ModelSpec::SvccaCnn(c) => AnyModel::SvccaCnn(c.init(device)?),
            ModelSpec::RnnClassifier(c) => AnyModel::RnnClassifier(c.init(device)?),
            ModelSpec::RnnLanguageModel(c) => AnyModel::RnnLanguageModel(c.init(device)?),
        })
    }

    /// Builds the model on `device` and loads the weights at `path` (saved by
    /// [`crate::save_weights`]) into it.
    pub fn init_with_weights(
        &self,
        path: &std::path::Path,
        device: &Device,
    ) -> Result<AnyModel, ModelError> {
        use crate::load_weights;
        Ok(match self.init(device)? {
            AnyModel::ResNet(m) => AnyModel::ResNet(load_weights(m, path)?),
            AnyModel::Cnn(m) => AnyModel::Cnn(load_weights(m, path)?),
            AnyModel::SvccaCnn(m) => AnyModel::SvccaCnn(load_weights(m, path)?),
            AnyModel::RnnClassifier(m) => AnyModel::RnnClassifier(load_weights(m, path)?),
            AnyModel::RnnLanguageModel(m) => AnyModel::RnnLanguageModel(load_weights(m, path)?),
        })
    }

    /// A short name for titles and file names.
    pub fn name(&self) -> String {
        match self {
            ModelSpec::Resnet(c) => c.name(),
            ModelSpec::Cnn(c) => format!("cnn{}x{}", c.depth, c.width),
            ModelSpec::SvccaCnn(_) => "svcca-cnn".into(),
            ModelSpec::RnnClassifier(c) => format!(
                "{}{}x{}",
                c.recurrent.cell.name(),
                c.recurrent.layers,
                c.recurrent.hidden
            ),
            ModelSpec::RnnLanguageModel(c) => {
                format!("{}-lm{}x{}", c.cell.name(), c.layers, c.hidden)
            }
        }
    }

    /// The input a model of this family takes, for `side` (images) or `steps` (sequences):
    /// (N, 3, side, side), (N, steps, features) or token ids (N, steps).
    pub fn input_shape(&self, batch: usize, side: usize) -> Vec<usize> {
        match self {
            ModelSpec::Resnet(_) | ModelSpec::Cnn(_) => vec![batch, 3, side, side],
            ModelSpec::SvccaCnn(c) => vec![batch, 3, c.side, c.side],
            ModelSpec::RnnClassifier(c) => vec![batch, side, c.recurrent.input_size],
            ModelSpec::RnnLanguageModel(_) => vec![batch, side],
        }
    }
}

/// A built model of any family. (One model is built per use, so the variants' sizes do not
/// matter.)
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum AnyModel {
    /// A ResNet.
    ResNet(ResNet),
    /// A plain CNN.
    Cnn(PlainCnn),
    /// The SVCCA tutorial conv net.
    SvccaCnn(SvccaConvNet),
    /// A recurrent classifier.
    RnnClassifier(RnnClassifier),
    /// A recurrent language model.
    RnnLanguageModel(RnnLanguageModel),
}

/// One probed layer of a [`Description`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerInfo {
    /// The layer's stable name.
    pub name: String,
    /// Its activation's shape for the described input (examples first).
    pub shape: Vec<usize>,
}

/// What a model is: its configuration, size and probed layers.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Description {
    /// Short name.
    pub name: String,
    /// The configuration.
    pub spec: ModelSpec,
    /// Number of trainable parameters.
    pub parameters: usize,
    /// The input shape the activation shapes are for.
    pub input: Vec<usize>,
    /// The probe used.
    pub probe: Probe,
    /// Every probed layer, in forward order.
    pub layers: Vec<LayerInfo>,
}

impl AnyModel {
    /// Number of trainable parameters (batch-norm running statistics excluded).
    pub fn num_params(&self) -> usize {
        match self {
            AnyModel::ResNet(m) => count_parameters(m),
            AnyModel::Cnn(m) => count_parameters(m),
            AnyModel::SvccaCnn(m) => count_parameters(m),
            AnyModel::RnnClassifier(m) => count_parameters(m),
            AnyModel::RnnLanguageModel(m) => count_parameters(m),
        }
    }

    /// Runs images through an image model, returning logits and activations.
    pub fn forward_images(
        &self,
        x: Tensor<4>,
        probe: &Probe,
    ) -> Result<(Tensor<2>, Activations), ModelError> {
        match self {
            AnyModel::ResNet(m) => m.forward_probed(x, probe),
            AnyModel::Cnn(m) => m.forward_probed(x, probe),
            AnyModel::SvccaCnn(m) => m.forward_probed(x, probe),
            AnyModel::RnnClassifier(m) => {
                // Images are read row by row: (N, 3, H, W) -> (N, H, 3 * W), channel-major.
                let [n, c, h, w] = x.dims();
                let rows = x.permute([0, 2, 1, 3]).reshape([n, h, c * w]);
                m.forward_probed(rows, probe)
            }
            AnyModel::RnnLanguageModel(_) => Err(ModelError::BadInput(
                "a language model takes token ids, not images".into(),
            )),
        }
    }

    /// Describes the model on an input of `input` shape (zeros; batch-norm layers use their
    /// running statistics, so a batch of 2 is enough).
    pub fn describe(
        &self,
        spec: &ModelSpec,
        input: &[usize],
        probe: &Probe,
        device: &Device,
    ) -> Result<Description, ModelError> {
        let activations = match (self, input) {
            (AnyModel::RnnLanguageModel(m), [n, l]) => {
                m.forward_probed(Tensor::<2, Int>::zeros([*n, *l], device), probe)?
                    .1
            }
            (AnyModel::RnnClassifier(m), [n, t, f]) => {
                m.forward_probed(Tensor::<3>::zeros([*n, *t, *f], device), probe)?
                    .1
            }
            (_, [n, c, h, w]) => {
                check_image_size(spec, *h, *w)?;
                self.forward_images(Tensor::<4>::zeros([*n, *c, *h, *w], device), probe)?
                    .1
            }
            _ => {
                return Err(ModelError::BadInput(format!(
                    "input shape {input:?} does not fit a {} model",
                    spec.name()
                )))
            }
        };
        Ok(Description {
            name: spec.name(),
            spec: spec.clone(),
            parameters: self.num_params(),
            input: input.to_vec(),
            probe: probe.clone(),
            layers: activations
                .iter()
                .map(|(name, t)| LayerInfo {
                    name: name.clone(),
                    shape: t.dims(),
                })
                .collect(),
        })
    }
}

/// Refuses images too small for the network's downsampling (which burn would panic on).
fn check_image_size(spec: &ModelSpec, h: usize, w: usize) -> Result<(), ModelError> {
    let minimum = match spec {
        ModelSpec::Resnet(c) => match c.plan()?.stem {
            crate::Stem::ImageNet => 32,
            crate::Stem::Cifar => 8,
        },
        ModelSpec::Cnn(c) => 1 << c.layers().iter().filter(|l| l.1).count(),
        ModelSpec::SvccaCnn(c) => c.side,
        _ => 1,
    };
    if h < minimum || w < minimum {
        return Err(ModelError::BadInput(format!(
            "{} needs images of at least {minimum} x {minimum} pixels, got {h} x {w}",
            spec.name()
        )));
    }
    if let ModelSpec::SvccaCnn(c) = spec {
        if h != c.side || w != c.side {
            return Err(ModelError::BadInput(format!(
                "the SVCCA conv net was built for {0} x {0} images, got {h} x {w}: build it for \
                 the images' side (`SvccaConvNetConfig::new().with_side({h})`; the command line \
                 does so from --side or the data)",
                c.side
            )));
        }
    }
    Ok(())
}
