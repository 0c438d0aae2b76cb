//! Plain convolutional networks without shortcuts: VGG-like conv-BN-ReLU stacks of any depth
//! and width (Simonyan & Zisserman 2015), and the small network of the SVCCA tutorial on
//! convolutional layers (Raghu et al. 2017; google/svcca `tutorials/002`).

use crate::kernels::{batch_norm, conv2d};
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::probe::{Level, Recorder};
use crate::resnet::check_images;
use crate::{Activations, ModelError, Probe};

/// A VGG-like stack: `depth` 3x3 conv-BN-ReLU layers, a 2x2 max pool after every
/// `pool_every` layers (channels doubling after each pool when `widen`), global average pool,
/// and a linear classifier.
#[derive(burn::config::Config, Debug, PartialEq)]
pub struct PlainCnnConfig {
    /// Number of conv layers.
    #[config(default = 6)]
    pub depth: usize,
    /// Channels of the first layers.
    #[config(default = 32)]
    pub width: usize,
    /// Max-pool after every this many layers (0: never).
    #[config(default = 2)]
    pub pool_every: usize,
    /// Double the channels after each pool.
    #[config(default = true)]
    pub widen: bool,
    /// Number of classes.
    #[config(default = 10)]
    pub classes: usize,
}

impl PlainCnnConfig {
    /// Channels of each conv layer, and whether a pool follows it.
    pub fn layers(&self) -> Vec<(usize, bool)> {
        let mut channels = self.width;
        (0..self.depth)
            .map(|i| {
                let pool =
                    self.pool_every > 0 && (i + 1) % self.pool_every == 0 && i + 1 < self.depth;
                let c = channels;
                if pool && self.widen {
                    channels *= 2;
                }
                (c, pool)
            })
            .collect()
    }

    /// Builds the network on `device`.
    pub fn init(&self, device: &Device) -> Result<PlainCnn, ModelError> {
        if self.depth == 0 || self.depth > 200 || self.width == 0 || self.classes == 0 {
            return Err(ModelError::BadConfig(format!(
                "a plain CNN needs depth 1-200, width >= 1 and classes >= 1; got depth {}, width {}, classes {}",
                self.depth, self.width, self.classes
            )));
        }
        let mut layers = Vec::new();
        let mut cin = 3;
        for (c, pool) in self.layers() {
            layers.push(ConvLayer {
                conv: Conv2dConfig::new([cin, c], [3, 3])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .with_bias(false)
                    .init(device),
                bn: BatchNormConfig::new(c).init(device),
                pool: pool.then(|| MaxPool2dConfig::new([2, 2]).init()),
            });
            cin = c;
        }
        Ok(PlainCnn {
            layers,
            avgpool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            fc: LinearConfig::new(cin, self.classes).init(device),
        })
    }
}

/// One conv-BN-ReLU layer, optionally followed by a 2x2 max pool.
#[derive(Module, Debug)]
pub struct ConvLayer {
    /// 3x3 convolution.
    pub conv: Conv2d,
    /// Batch norm.
    pub bn: BatchNorm,
    /// Max pool after the ReLU.
    pub pool: Option<MaxPool2d>,
}

/// A plain CNN; layers record `layerK.conv`, `layerK.bn`, `layerK` (after the ReLU; a block
/// name) and `layerK.pool`.
#[derive(Module, Debug)]
pub struct PlainCnn {
    /// The conv layers.
    pub layers: Vec<ConvLayer>,
    /// Global average pool.
    pub avgpool: AdaptiveAvgPool2d,
    /// Classifier.
    pub fc: Linear,
}

impl PlainCnn {
    /// Logits of images (N, 3, H, W).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward_recorded(x, &mut Recorder::disabled())
    }

    /// Logits and the activations `probe` asks for.
    pub fn forward_probed(
        &self,
        x: Tensor<4>,
        probe: &Probe,
    ) -> Result<(Tensor<2>, Activations), ModelError> {
        check_images(&x, 3)?;
        let [_, _, h, w] = x.dims();
        let pools = self.layers.iter().filter(|l| l.pool.is_some()).count() as u32;
        let minimum = 1usize << pools.min(30);
        if h < minimum || w < minimum {
            return Err(ModelError::BadInput(format!(
                "this CNN pools {pools} times, so it needs images of at least {minimum} x {minimum} pixels, got {h} x {w}"
            )));
        }
        let mut rec = Recorder::new(probe);
        let logits = self.forward_recorded(x, &mut rec);
        Ok((logits, rec.finish()?))
    }

    fn forward_recorded(&self, mut x: Tensor<4>, rec: &mut Recorder) -> Tensor<2> {
        for (i, layer) in self.layers.iter().enumerate() {
            let k = i + 1;
            x = conv2d(&layer.conv, x);
            rec.map(Level::Inner, || format!("layer{k}.conv"), &x);
            x = batch_norm(&layer.bn, x);
            rec.map(Level::Inner, || format!("layer{k}.bn"), &x);
            x = relu(x);
            rec.map(Level::Block, || format!("layer{k}"), &x);
            if let Some(pool) = &layer.pool {
                x = pool.forward(x);
                rec.map(Level::Inner, || format!("layer{k}.pool"), &x);
            }
        }
        let pooled = self.avgpool.forward(x);
        let [n, c, _, _] = pooled.dims();
        let pooled = pooled.reshape([n, c]);
        rec.vector(Level::Block, || "pool".into(), &pooled);
        let logits = self.fc.forward(pooled);
        rec.vector(Level::Block, || "logits".into(), &logits);
        logits
    }
}

/// The SVCCA tutorial's small conv net: conv3x3-32, ReLU, max pool, conv3x3-64, ReLU, max
/// pool, batch norm, fc-200, ReLU, fc-10. Convolutions keep the size ("same" padding), so
/// the input side must be a multiple of 4.
#[derive(burn::config::Config, Debug, PartialEq)]
pub struct SvccaConvNetConfig {
    /// Input image side.
    #[config(default = 32)]
    pub side: usize,
    /// Number of classes.
    #[config(default = 10)]
    pub classes: usize,
}

impl SvccaConvNetConfig {
    /// Builds the network on `device`.
    pub fn init(&self, device: &Device) -> Result<SvccaConvNet, ModelError> {
        if self.side < 4 || !self.side.is_multiple_of(4) || self.classes == 0 {
            return Err(ModelError::BadConfig(format!(
                "the SVCCA conv net needs an input side that is a positive multiple of 4 and classes >= 1; got side {}, classes {}",
                self.side, self.classes
            )));
        }
        let conv = |cin, cout| {
            Conv2dConfig::new([cin, cout], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        let flat = 64 * (self.side / 4) * (self.side / 4);
        Ok(SvccaConvNet {
            conv1: conv(3, 32),
            conv2: conv(32, 64),
            pool: MaxPool2dConfig::new([2, 2]).init(),
            bn: BatchNormConfig::new(64).init(device),
            fc1: LinearConfig::new(flat, 200).init(device),
            fc2: LinearConfig::new(200, self.classes).init(device),
        })
    }
}

/// The SVCCA tutorial network; records `conv1`, `pool1`, `conv2`, `pool2`, `bn`, `fc1`,
/// `logits` (blocks: `conv1`, `conv2`, `fc1`, `logits`).
#[derive(Module, Debug)]
pub struct SvccaConvNet {
    /// First convolution (32 channels).
    pub conv1: Conv2d,
    /// Second convolution (64 channels).
    pub conv2: Conv2d,
    /// 2x2 max pool (used twice).
    pub pool: MaxPool2d,
    /// Batch norm before the dense layers.
    pub bn: BatchNorm,
    /// Hidden dense layer (200 units).
    pub fc1: Linear,
    /// Classifier.
    pub fc2: Linear,
}

impl SvccaConvNet {
    /// Logits of images (N, 3, side, side).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward_recorded(x, &mut Recorder::disabled())
    }

    /// Logits and the activations `probe` asks for.
    pub fn forward_probed(
        &self,
        x: Tensor<4>,
        probe: &Probe,
    ) -> Result<(Tensor<2>, Activations), ModelError> {
        check_images(&x, 3)?;
        let [_, _, h, w] = x.dims();
        let [flat, _] = self.fc1.weight.dims();
        let given = 64 * (h / 4) * (w / 4);
        if h % 4 != 0 || w % 4 != 0 || given != flat {
            return Err(ModelError::BadInput(format!(
                "the SVCCA conv net was built for other images: its first dense layer takes {flat} features, {h} x {w} images give {given}"
            )));
        }
        let mut rec = Recorder::new(probe);
        let logits = self.forward_recorded(x, &mut rec);
        Ok((logits, rec.finish()?))
    }

    fn forward_recorded(&self, x: Tensor<4>, rec: &mut Recorder) -> Tensor<2> {
        let x = relu(conv2d(&self.conv1, x));
        rec.map(Level::Block, || "conv1".into(), &x);
        let x = self.pool.forward(x);
        rec.map(Level::Inner, || "pool1".into(), &x);
        let x = relu(conv2d(&self.conv2, x));
        rec.map(Level::Block, || "conv2".into(), &x);
        let x = self.pool.forward(x);
        rec.map(Level::Inner, || "pool2".into(), &x);
        let x = batch_norm(&self.bn, x);
        rec.map(Level::Inner, || "bn".into(), &x);
        let [n, c, h, w] = x.dims();
        let x = relu(self.fc1.forward(x.reshape([n, c * h * w])));
        rec.vector(Level::Block, || "fc1".into(), &x);
        let logits = self.fc2.forward(x);
        rec.vector(Level::Block, || "logits".into(), &logits);
        logits
    }
}
