//! What training needs of a network: [`Network`] (logits for a batch, activations for a probe),
//! implemented for every repsim-model family, and [`visit_network`], which hands the concrete
//! model inside an [`AnyModel`] to generic code (the training loop is generic over the model
//! type, since burn's optimiser steps a concrete `Module`).

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Int, Tensor};
use repsim_model::{
    Activations, AnyModel, ModelError, PlainCnn, Probe, ResNet, RnnClassifier, RnnLanguageModel,
    SvccaConvNet,
};

/// A network's input batch.
#[derive(Debug, Clone)]
pub enum Inputs {
    /// (N, 3, H, W) normalised images.
    Images(Tensor<4>),
    /// (N, L) token ids.
    Tokens(Tensor<2, Int>),
}

impl Inputs {
    /// Number of examples (dim 0).
    pub fn len(&self) -> usize {
        match self {
            Inputs::Images(t) => t.dims()[0],
            Inputs::Tokens(t) => t.dims()[0],
        }
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The same inputs on `device`.
    pub fn to_device(self, device: &burn::tensor::Device) -> Self {
        match self {
            Inputs::Images(t) => Inputs::Images(t.to_device(device)),
            Inputs::Tokens(t) => Inputs::Tokens(t.to_device(device)),
        }
    }

    /// The same inputs on their device without autodiff (probing needs no gradients).
    pub fn without_autodiff(self) -> Self {
        match self {
            Inputs::Images(t) => Inputs::Images(t.without_autodiff()),
            Inputs::Tokens(t) => Inputs::Tokens(t.without_autodiff()),
        }
    }

    /// Examples `start .. start + len`.
    pub fn narrow(&self, start: usize, len: usize) -> Self {
        match self {
            Inputs::Images(t) => Inputs::Images(t.clone().narrow(0, start, len)),
            Inputs::Tokens(t) => Inputs::Tokens(t.clone().narrow(0, start, len)),
        }
    }
}

impl From<Tensor<4>> for Inputs {
    fn from(images: Tensor<4>) -> Self {
        Inputs::Images(images)
    }
}

impl From<Tensor<2, Int>> for Inputs {
    fn from(tokens: Tensor<2, Int>) -> Self {
        Inputs::Tokens(tokens)
    }
}

/// A model repsim can train and probe: anything with logits for a batch and named activations.
/// Every repsim model has it. Your own burn module does not need it: the Tracker and
/// [`crate::compare()`] take a closure returning named tensors ([`crate::observe`]).
pub trait Network: Module + 'static {
    /// Logits `(M, classes)`: `M = N` for a classifier, `N * L` (every position) for a
    /// language model, in the order of the flattened targets.
    fn logits(&self, inputs: Inputs) -> Result<Tensor<2>, ModelError>;

    /// The activations `probe` asks for, in forward order.
    fn activations(&self, inputs: Inputs, probe: &Probe) -> Result<Activations, ModelError>;
}

fn wrong_input(model: &str, wanted: &str) -> ModelError {
    ModelError::BadInput(format!("a {model} takes {wanted}"))
}

macro_rules! image_network {
    ($model:ty, $name:literal) => {
        impl Network for $model {
            fn logits(&self, inputs: Inputs) -> Result<Tensor<2>, ModelError> {
                match inputs {
                    Inputs::Images(x) => Ok(self.forward(x)),
                    Inputs::Tokens(_) => Err(wrong_input($name, "images")),
                }
            }
            fn activations(
                &self,
                inputs: Inputs,
                probe: &Probe,
            ) -> Result<Activations, ModelError> {
                match inputs {
                    Inputs::Images(x) => Ok(self.forward_probed(x, probe)?.1),
                    Inputs::Tokens(_) => Err(wrong_input($name, "images")),
                }
            }
        }
    };
}

image_network!(ResNet, "ResNet");
image_network!(PlainCnn, "plain CNN");
image_network!(SvccaConvNet, "SVCCA conv net");

/// Images read row by row, as [`AnyModel::forward_images`] does: (N, 3, H, W) -> (N, H, 3W).
fn rows(x: Tensor<4>) -> Tensor<3> {
    let [n, c, h, w] = x.dims();
    x.permute([0, 2, 1, 3]).reshape([n, h, c * w])
}

impl Network for RnnClassifier {
    fn logits(&self, inputs: Inputs) -> Result<Tensor<2>, ModelError> {
        match inputs {
            Inputs::Images(x) => Ok(self.forward(rows(x))),
            Inputs::Tokens(_) => Err(wrong_input("recurrent classifier", "images (read as rows)")),
        }
    }
    fn activations(&self, inputs: Inputs, probe: &Probe) -> Result<Activations, ModelError> {
        match inputs {
            Inputs::Images(x) => Ok(self.forward_probed(rows(x), probe)?.1),
            Inputs::Tokens(_) => Err(wrong_input("recurrent classifier", "images (read as rows)")),
        }
    }
}

impl Network for RnnLanguageModel {
    fn logits(&self, inputs: Inputs) -> Result<Tensor<2>, ModelError> {
        match inputs {
            Inputs::Tokens(t) => {
                let logits = self.forward(t);
                let [n, l, v] = logits.dims();
                Ok(logits.reshape([n * l, v]))
            }
            Inputs::Images(_) => Err(wrong_input("language model", "token ids")),
        }
    }
    fn activations(&self, inputs: Inputs, probe: &Probe) -> Result<Activations, ModelError> {
        match inputs {
            Inputs::Tokens(t) => Ok(self.forward_probed(t, probe)?.1),
            Inputs::Images(_) => Err(wrong_input("language model", "token ids")),
        }
    }
}

/// Generic code over the concrete model type of an [`AnyModel`].
pub trait NetworkVisitor {
    /// What the visit returns.
    type Output;
    /// Called with the concrete model.
    fn visit<M: Network>(self, model: M) -> Self::Output;
}

/// Calls `visitor` with the model inside `model`.
pub fn visit_network<V: NetworkVisitor>(model: AnyModel, visitor: V) -> V::Output {
    match model {
        AnyModel::ResNet(m) => visitor.visit(m),
        AnyModel::Cnn(m) => visitor.visit(m),
        AnyModel::SvccaCnn(m) => visitor.visit(m),
        AnyModel::RnnClassifier(m) => visitor.visit(m),
        AnyModel::RnnLanguageModel(m) => visitor.visit(m),
    }
}

/// Touches every parameter, so that burn's lazy initialisation happens now, in a fixed order,
/// from the RNG state right after the seed: without this, parameters would be drawn at their
/// first use, after other random draws, and a seeded run would not be reproducible.
pub fn force_initialisation<M: Module>(model: &M) {
    struct Touch;
    impl ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    model.visit(&mut Touch);
}
