//! What the [`crate::Tracker`] and [`crate::compare()`] can observe: any burn model, given as a
//! closure from a batch of probe inputs to named activations, or a repsim model (anything that
//! implements [`Network`]).
//!
//! ```ignore
//! // A hand-written burn module: a closure returning named tensors.
//! tracker.observe(epoch, |x| model.valid().forward_with_layers(x))?;
//! // One of repsim's models: the model itself.
//! tracker.observe(epoch, &resnet)?;
//! ```
//!
//! A closure takes the probe inputs as a plain tensor ([`ProbeInput`]: `Tensor<4>` images or
//! `Tensor<2, Int>` token ids, on the device the probe tensor was given on, without autodiff)
//! and returns its layers in any simple form ([`IntoActivations`]): `Vec<(String, Tensor<D>)>`
//! of any rank (or `&str` names), repsim's [`Activations`] (`Activations::new().with("conv1",
//! x1).with("fc", logits)` for layers of mixed ranks), or a `Result` of either. Examples are on
//! dim 0; a rank-4 tensor is a feature map (the Tracker's conv mode applies), rank 3 a sequence
//! (its time reduction applies), any other rank is flattened past dim 0. The closure is called
//! once per probe batch; call `model.valid()` in it (batch-norm running statistics, no
//! autodiff), never on a clone of the training model (burn shares batch-norm state between
//! clones).

use burn::tensor::{Int, Tensor};
use repsim_model::{ActivationTensor, Activations, Probe, TimeReduction};
use repsim_similarity::{conv_layer, ConvMode, Layer};

use crate::error::{Result, TrainError};
use crate::network::{Inputs, Network};

/// The plain tensor a closure takes: what a batch of probe inputs is.
pub trait ProbeInput: Sized {
    /// The batch as this type, or an error naming both kinds.
    fn from_inputs(inputs: Inputs) -> Result<Self>;
}

impl ProbeInput for Tensor<4> {
    fn from_inputs(inputs: Inputs) -> Result<Self> {
        match inputs {
            Inputs::Images(x) => Ok(x),
            Inputs::Tokens(_) => Err(TrainError::BadConfig(
                "the probe inputs are token ids (Tensor<2, Int>), but the observed function takes images (Tensor<4>)".into(),
            )),
        }
    }
}

impl ProbeInput for Tensor<2, Int> {
    fn from_inputs(inputs: Inputs) -> Result<Self> {
        match inputs {
            Inputs::Tokens(t) => Ok(t),
            Inputs::Images(_) => Err(TrainError::BadConfig(
                "the probe inputs are images (Tensor<4>), but the observed function takes token ids (Tensor<2, Int>)".into(),
            )),
        }
    }
}

impl ProbeInput for Inputs {
    fn from_inputs(inputs: Inputs) -> Result<Self> {
        Ok(inputs)
    }
}

/// Named activations in any simple form; see the module docs.
pub trait IntoActivations {
    /// The activations, in the order given.
    fn into_activations(self) -> Result<Activations>;
}

impl IntoActivations for Activations {
    fn into_activations(self) -> Result<Activations> {
        Ok(self)
    }
}

impl<N: Into<String>, T: Into<ActivationTensor>> IntoActivations for Vec<(N, T)> {
    fn into_activations(self) -> Result<Activations> {
        Ok(self.into_iter().collect())
    }
}

impl<A: IntoActivations, E: std::fmt::Display> IntoActivations for std::result::Result<A, E> {
    fn into_activations(self) -> Result<Activations> {
        self.map_err(|e| TrainError::Failed(format!("the observed model failed: {e}")))?
            .into_activations()
    }
}

/// A batch of probe inputs to its named activations.
pub type BatchFn<'a> = Box<dyn FnMut(Inputs) -> Result<Activations> + 'a>;

/// Something whose layers can be observed: a closure ([`ProbeInput`] to [`IntoActivations`]) or
/// a reference to a [`Network`]. `Marker` only tells the two kinds of implementation apart, so
/// that a closure's argument type is inferred from its body; callers never name it.
pub trait Observe<Marker> {
    /// A function from one batch of probe inputs (on the probe's device, without autodiff) to
    /// its named activations; `probe` says which layers a [`Network`] gives (a closure gives
    /// what it returns).
    fn batch_fn<'a>(self, probe: &'a Probe) -> BatchFn<'a>
    where
        Self: 'a;
}

/// The marker of [`Observe`] for repsim's models.
pub enum ByNetwork {}

/// A repsim model (or any [`Network`]) is observed in validation mode (`model.valid()`), with
/// the inputs moved to its device.
impl<M: Network> Observe<ByNetwork> for &M {
    fn batch_fn<'a>(self, probe: &'a Probe) -> BatchFn<'a>
    where
        Self: 'a,
    {
        let eval = self.valid();
        let device = eval.devices().into_iter().next();
        Box::new(move |inputs: Inputs| {
            let inputs = match &device {
                Some(device) => inputs.to_device(device),
                None => inputs,
            };
            Ok(eval.activations(inputs, probe)?)
        })
    }
}

impl<F, X, R> Observe<fn(X) -> R> for F
where
    F: FnMut(X) -> R,
    X: ProbeInput,
    R: IntoActivations,
{
    fn batch_fn<'a>(mut self, _probe: &'a Probe) -> BatchFn<'a>
    where
        Self: 'a,
    {
        Box::new(move |inputs: Inputs| self(X::from_inputs(inputs)?).into_activations())
    }
}

/// Every activation as an (examples x features) [`Layer`], without autodiff: feature maps by
/// `conv`, sequences reduced over time by `time`, vectors as they are.
pub fn layers_from_activations(
    activations: Activations,
    conv: ConvMode,
    time: TimeReduction,
) -> Result<Vec<Layer>> {
    let mut layers = Vec::new();
    for (name, tensor) in activations.into_entries() {
        let layer = match tensor {
            ActivationTensor::Map(map) => conv_layer(name, map.without_autodiff(), conv)?,
            other => Layer {
                matrix: other.into_matrix(time).without_autodiff(),
                name,
            },
        };
        layers.push(layer);
    }
    Ok(layers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    fn layers_of<Mk>(observed: impl Observe<Mk>, inputs: Inputs) -> Vec<(String, Vec<usize>)> {
        let probe = Probe::Blocks;
        let mut f = observed.batch_fn(&probe);
        let acts = f(inputs).unwrap();
        acts.iter().map(|(n, t)| (n.clone(), t.dims())).collect()
    }

    #[test]
    fn closures_of_every_simple_form_are_observed() {
        let device = Device::flex();
        let images = Inputs::from(Tensor::<4>::ones([6, 3, 4, 4], &device));
        let vec_of_strings = |x: Tensor<4>| vec![("flat".to_string(), x.clone().reshape([6, 48]))];
        assert_eq!(
            layers_of(vec_of_strings, images.clone()),
            [("flat".to_string(), vec![6, 48])]
        );
        // The argument type follows from the body.
        let double = |x| vec![("twice", Tensor::<4>::mul_scalar(x, 2.0))];
        assert_eq!(layers_of(double, images.clone())[0].1, [6, 3, 4, 4]);
        let mixed = |x: Tensor<4>| {
            Ok::<_, String>(
                Activations::new()
                    .with("map", x.clone())
                    .with("pooled", x.mean_dim(3).mean_dim(2).reshape([6, 3])),
            )
        };
        assert_eq!(layers_of(mixed, images.clone()).len(), 2);
        let failing = |_x: Tensor<4>| Err::<Activations, _>("out of memory");
        let probe = Probe::Blocks;
        let e = failing.batch_fn(&probe)(images.clone()).unwrap_err();
        assert!(e.to_string().contains("out of memory"), "{e}");
        // Token ids given to an image closure: a clear error.
        let tokens = Inputs::from(Tensor::<2, Int>::zeros([6, 5], &device));
        let e = (|x: Tensor<4>| vec![("x", x)]).batch_fn(&probe)(tokens).unwrap_err();
        assert!(e.to_string().contains("token ids"), "{e}");
    }

    #[test]
    fn layers_lose_autodiff_and_follow_the_conv_mode() {
        let device = Device::flex().autodiff();
        let x = Tensor::<4>::ones([5, 2, 4, 4], &device).require_grad();
        let acts = Activations::new()
            .with("map", x.clone())
            .with("v", x.reshape([5, 32]));
        let layers =
            layers_from_activations(acts, ConvMode::Pool { size: 2 }, TimeReduction::Last).unwrap();
        assert_eq!(layers[0].matrix.dims(), [5, 8]);
        assert_eq!(layers[1].matrix.dims(), [5, 32]);
        assert!(layers.iter().all(|l| !l.matrix.is_autodiff()));
    }
}
