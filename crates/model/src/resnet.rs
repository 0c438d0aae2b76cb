//! Residual networks (He et al. 2016, "Deep Residual Learning for Image Recognition"), in two
//! layouts and any width:
//!
//! - the CIFAR layout of section 4.2: a 3x3 stem and three stages of 16k, 32k and 64k
//!   channels, depth 6n+2 with basic blocks (20, 32, 44, 56, 110, ...) or 9n+2 with
//!   bottlenecks (4x expansion), as used by Nguyen, Raghu & Kornblith 2021 (depth 14-110,
//!   width x1-x10);
//! - the ImageNet layout of torchvision (18, 34, 50, 101, 152; the same parameter names, so
//!   torchvision weights load by name), with `stem = imagenet` (7x7 stride 2 and a max pool)
//!   or `stem = cifar` (3x3 stride 1, no pool) for 32x32 inputs.
//!
//! Shortcuts are `projection` (1x1 conv + BN where the shape changes; torchvision's choice) or
//! `zero_pad` (He et al.'s option A: subsample and pad channels with zeros; no parameters).
//! Every block records `stageS.blockB.{conv1,bn1,relu1,conv2,bn2,...,add,out}`.

use crate::kernels::{batch_norm, conv2d};
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::probe::{Level, Recorder};
use crate::{Activations, ModelError, Probe};

/// The layout: CIFAR (three stages from 16 channels) or ImageNet (four from 64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResNetFamily {
    /// He et al. 2016, section 4.2.
    Cifar,
    /// torchvision's ResNet-18/34/50/101/152.
    ImageNet,
}

/// The first layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stem {
    /// 3x3 convolution, stride 1, no pooling: for 32x32 images.
    Cifar,
    /// 7x7 convolution, stride 2, then a 3x3 max pool with stride 2: for 224x224 images.
    ImageNet,
}

/// The residual block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlockKind {
    /// Two 3x3 convolutions.
    Basic,
    /// 1x1 reduce, 3x3, 1x1 expand by 4.
    Bottleneck,
}

/// How a block's shortcut changes shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shortcut {
    /// A strided 1x1 convolution and batch norm where the shape changes (option B).
    Projection,
    /// Subsample and pad the new channels with zeros (option A): no parameters.
    ZeroPad,
}

macro_rules! parse_enum {
    ($ty:ty, $what:literal, $($name:literal => $value:expr),+) => {
        impl std::str::FromStr for $ty {
            type Err = ModelError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok($value),)+
                    other => Err(ModelError::BadConfig(format!(
                        concat!("unknown ", $what, " {:?}; use {}"),
                        other,
                        [$($name),+].join(", ")
                    ))),
                }
            }
        }
    };
}
parse_enum!(ResNetFamily, "ResNet family", "cifar" => ResNetFamily::Cifar, "imagenet" => ResNetFamily::ImageNet);
parse_enum!(Stem, "stem", "cifar" => Stem::Cifar, "imagenet" => Stem::ImageNet);
parse_enum!(BlockKind, "block", "basic" => BlockKind::Basic, "bottleneck" => BlockKind::Bottleneck);
parse_enum!(Shortcut, "shortcut", "projection" => Shortcut::Projection, "zero_pad" => Shortcut::ZeroPad);

/// Configuration of a ResNet.
#[derive(burn::config::Config, Debug, PartialEq)]
pub struct ResNetConfig {
    /// CIFAR or ImageNet layout.
    pub family: ResNetFamily,
    /// Depth: 6n+2 (basic) or 9n+2 (bottleneck) for CIFAR; 18, 34, 50, 101 or 152 for ImageNet.
    pub depth: usize,
    /// Width multiplier k: stages of 16k/32k/64k (CIFAR) or 64k/.../512k (ImageNet) channels.
    #[config(default = 1)]
    pub width: usize,
    /// The stem; `None` is the family's own.
    #[config(default = "None")]
    pub stem: Option<Stem>,
    /// Number of classes.
    #[config(default = 10)]
    pub classes: usize,
    /// Shortcut type where the shape changes.
    #[config(default = "Shortcut::Projection")]
    pub shortcut: Shortcut,
    /// Block type; `None` infers it (CIFAR: basic when depth = 6n+2, else bottleneck when
    /// depth = 9n+2; ImageNet: basic up to 34).
    #[config(default = "None")]
    pub block: Option<BlockKind>,
}

/// The resolved architecture: blocks per stage, channels, strides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResNetPlan {
    /// The stem.
    pub stem: Stem,
    /// The stem's output channels.
    pub stem_channels: usize,
    /// The block type.
    pub block: BlockKind,
    /// (blocks, inner channels, stride) of every stage.
    pub stages: Vec<(usize, usize, usize)>,
}

impl ResNetPlan {
    /// Output channels per inner channel of a block.
    pub fn expansion(&self) -> usize {
        match self.block {
            BlockKind::Basic => 1,
            BlockKind::Bottleneck => 4,
        }
    }
    /// Channels of the pooled features.
    pub fn feature_channels(&self) -> usize {
        self.stages
            .last()
            .map_or(self.stem_channels, |s| s.1 * self.expansion())
    }
}

impl ResNetConfig {
    /// A CIFAR ResNet of `depth` and width `width` for `classes` classes.
    pub fn cifar(depth: usize, width: usize, classes: usize) -> Self {
        Self::new(ResNetFamily::Cifar, depth)
            .with_width(width)
            .with_classes(classes)
    }

    /// torchvision's ResNet-`depth` (18, 34, 50, 101, 152) for `classes` classes.
    pub fn imagenet(depth: usize, classes: usize) -> Self {
        Self::new(ResNetFamily::ImageNet, depth).with_classes(classes)
    }

    /// Resolves depth, block and width into the stages, or says why it cannot.
    pub fn plan(&self) -> Result<ResNetPlan, ModelError> {
        if self.width == 0 || self.width > 64 {
            return Err(ModelError::BadConfig(format!(
                "width must be 1 to 64, got {}",
                self.width
            )));
        }
        if self.classes == 0 {
            return Err(ModelError::BadConfig("classes must be at least 1".into()));
        }
        let k = self.width;
        match self.family {
            ResNetFamily::Cifar => {
                let basic_ok = self.depth >= 8 && (self.depth - 2).is_multiple_of(6);
                let bottleneck_ok = self.depth >= 11 && (self.depth - 2).is_multiple_of(9);
                let block = match self.block {
                    Some(BlockKind::Basic) if basic_ok => BlockKind::Basic,
                    Some(BlockKind::Bottleneck) if bottleneck_ok => BlockKind::Bottleneck,
                    None if basic_ok => BlockKind::Basic,
                    None if bottleneck_ok => BlockKind::Bottleneck,
                    _ => {
                        return Err(ModelError::BadConfig(format!(
                            "a CIFAR ResNet has depth 6n+2 with basic blocks (8, 14, 20, 32, 44, 56, 110, ...) or 9n+2 with bottlenecks (11, 20, 29, ..., 164); {}{} is neither",
                            self.depth,
                            self.block.map_or(String::new(), |b| format!(" with {b:?} blocks").to_lowercase())
                        )))
                    }
                };
                let n = match block {
                    BlockKind::Basic => (self.depth - 2) / 6,
                    BlockKind::Bottleneck => (self.depth - 2) / 9,
                };
                if self.stem == Some(Stem::ImageNet) {
                    return Err(ModelError::BadConfig(
                        "the CIFAR layout has the cifar stem only".into(),
                    ));
                }
                Ok(ResNetPlan {
                    stem: Stem::Cifar,
                    stem_channels: 16 * k,
                    block,
                    stages: vec![(n, 16 * k, 1), (n, 32 * k, 2), (n, 64 * k, 2)],
                })
            }
            ResNetFamily::ImageNet => {
                let (block, counts) = match self.depth {
                    18 => (BlockKind::Basic, [2, 2, 2, 2]),
                    34 => (BlockKind::Basic, [3, 4, 6, 3]),
                    50 => (BlockKind::Bottleneck, [3, 4, 6, 3]),
                    101 => (BlockKind::Bottleneck, [3, 4, 23, 3]),
                    152 => (BlockKind::Bottleneck, [3, 8, 36, 3]),
                    d => {
                        return Err(ModelError::BadConfig(format!(
                            "an ImageNet ResNet has depth 18, 34, 50, 101 or 152, got {d}"
                        )))
                    }
                };
                if self.block.is_some_and(|b| b != block) {
                    return Err(ModelError::BadConfig(format!(
                        "ResNet-{} has {:?} blocks",
                        self.depth, block
                    )));
                }
                Ok(ResNetPlan {
                    stem: self.stem.unwrap_or(Stem::ImageNet),
                    stem_channels: 64 * k,
                    block,
                    stages: counts
                        .iter()
                        .zip([64 * k, 128 * k, 256 * k, 512 * k])
                        .zip([1, 2, 2, 2])
                        .map(|((n, c), s)| (*n, c, s))
                        .collect(),
                })
            }
        }
    }

    /// A short name: `resnet20`, `resnet56x4`, `resnet50` (`-cifar` for the cifar stem).
    pub fn name(&self) -> String {
        let width = if self.width > 1 {
            format!("x{}", self.width)
        } else {
            String::new()
        };
        let stem = match (self.family, self.stem) {
            (ResNetFamily::ImageNet, Some(Stem::Cifar)) => "-cifarstem",
            _ => "",
        };
        format!("resnet{}{width}{stem}", self.depth)
    }

    /// Builds the network on `device`.
    pub fn init(&self, device: &Device) -> Result<ResNet, ModelError> {
        let plan = self.plan()?;
        let conv = |cin: usize, cout: usize, kernel: usize, stride: usize, pad: usize| {
            Conv2dConfig::new([cin, cout], [kernel, kernel])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
                .with_bias(false)
                .with_initializer(Initializer::KaimingNormal {
                    gain: std::f64::consts::SQRT_2,
                    fan_out_only: true,
                })
                .init(device)
        };
        let bn = |c: usize| BatchNormConfig::new(c).init(device);
        let (conv1, maxpool) = match plan.stem {
            Stem::Cifar => (conv(3, plan.stem_channels, 3, 1, 1), None),
            Stem::ImageNet => (
                conv(3, plan.stem_channels, 7, 2, 3),
                Some(
                    MaxPool2dConfig::new([3, 3])
                        .with_strides([2, 2])
                        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                        .init(),
                ),
            ),
        };
        let expansion = plan.expansion();
        let mut in_channels = plan.stem_channels;
        let mut stages: Vec<Vec<Block>> = Vec::new();
        for &(count, planes, stride) in &plan.stages {
            let mut blocks = Vec::new();
            for b in 0..count {
                let stride = if b == 0 { stride } else { 1 };
                let out = planes * expansion;
                let reshapes = stride != 1 || in_channels != out;
                let (downsample, zero_pad) = match (reshapes, self.shortcut) {
                    (false, _) => (None, None),
                    (true, Shortcut::Projection) => (
                        Some(Downsample {
                            conv: conv(in_channels, out, 1, stride, 0),
                            bn: bn(out),
                        }),
                        None,
                    ),
                    (true, Shortcut::ZeroPad) => (
                        None,
                        Some(ZeroPad {
                            stride,
                            extra_channels: out - in_channels,
                        }),
                    ),
                };
                let block = match plan.block {
                    BlockKind::Basic => Block {
                        conv1: conv(in_channels, planes, 3, stride, 1),
                        bn1: bn(planes),
                        conv2: conv(planes, planes, 3, 1, 1),
                        bn2: bn(planes),
                        conv3: None,
                        bn3: None,
                        downsample,
                        zero_pad,
                    },
                    BlockKind::Bottleneck => Block {
                        conv1: conv(in_channels, planes, 1, 1, 0),
                        bn1: bn(planes),
                        conv2: conv(planes, planes, 3, stride, 1),
                        bn2: bn(planes),
                        conv3: Some(conv(planes, out, 1, 1, 0)),
                        bn3: Some(bn(out)),
                        downsample,
                        zero_pad,
                    },
                };
                blocks.push(block);
                in_channels = out;
            }
            stages.push(blocks);
        }
        let mut stages = stages.into_iter();
        let mut next = || stages.next().unwrap_or_default();
        Ok(ResNet {
            conv1,
            bn1: bn(plan.stem_channels),
            maxpool,
            layer1: next(),
            layer2: next(),
            layer3: next(),
            layer4: next(),
            avgpool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            fc: LinearConfig::new(plan.feature_channels(), self.classes).init(device),
        })
    }
}

/// He et al.'s option-A shortcut: subsample by `stride`, then append `extra_channels` zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZeroPad {
    /// Subsampling stride.
    pub stride: usize,
    /// Zero channels appended.
    pub extra_channels: usize,
}

impl ZeroPad {
    fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        let x = if self.stride > 1 {
            burn::tensor::module::max_pool2d(
                x,
                burn::tensor::ops::MaxPoolOptions {
                    kernel_size: [1, 1],
                    stride: [self.stride, self.stride],
                    padding: [(0, 0); 2],
                    dilation: [1, 1],
                    ceil_mode: false,
                },
            )
        } else {
            x
        };
        if self.extra_channels == 0 {
            return x;
        }
        let [n, _, h, w] = x.dims();
        let zeros = Tensor::zeros([n, self.extra_channels, h, w], &x.device());
        Tensor::cat(vec![x, zeros], 1)
    }
}

/// A projection shortcut: strided 1x1 convolution and batch norm (torchvision's
/// `downsample.0` and `downsample.1`).
#[derive(Module, Debug)]
pub struct Downsample {
    /// The 1x1 convolution.
    pub conv: Conv2d,
    /// Its batch norm.
    pub bn: BatchNorm,
}

/// A basic or bottleneck residual block, with torchvision's field names.
#[derive(Module, Debug)]
pub struct Block {
    /// First convolution (3x3, or 1x1 in a bottleneck).
    pub conv1: Conv2d,
    /// Its batch norm.
    pub bn1: BatchNorm,
    /// Second convolution (3x3; strided in a bottleneck).
    pub conv2: Conv2d,
    /// Its batch norm.
    pub bn2: BatchNorm,
    /// The bottleneck's expanding 1x1 convolution.
    pub conv3: Option<Conv2d>,
    /// Its batch norm.
    pub bn3: Option<BatchNorm>,
    /// The projection shortcut, where the shape changes.
    pub downsample: Option<Downsample>,
    /// The zero-padding shortcut, where the shape changes.
    #[module(skip)]
    pub zero_pad: Option<ZeroPad>,
}

impl Block {
    fn forward(&self, x: Tensor<4>, prefix: &str, rec: &mut Recorder) -> Tensor<4> {
        let name = |s: &'static str| move || format!("{prefix}.{s}");
        let out = conv2d(&self.conv1, x.clone());
        rec.map(Level::Inner, name("conv1"), &out);
        let out = batch_norm(&self.bn1, out);
        rec.map(Level::Inner, name("bn1"), &out);
        let out = relu(out);
        rec.map(Level::Inner, name("relu1"), &out);
        let out = conv2d(&self.conv2, out);
        rec.map(Level::Inner, name("conv2"), &out);
        let mut out = batch_norm(&self.bn2, out);
        rec.map(Level::Inner, name("bn2"), &out);
        if let (Some(conv3), Some(bn3)) = (&self.conv3, &self.bn3) {
            out = relu(out);
            rec.map(Level::Inner, name("relu2"), &out);
            out = conv2d(conv3, out);
            rec.map(Level::Inner, name("conv3"), &out);
            out = batch_norm(bn3, out);
            rec.map(Level::Inner, name("bn3"), &out);
        }
        let shortcut = match (&self.downsample, &self.zero_pad) {
            (Some(d), _) => {
                let s = conv2d(&d.conv, x);
                rec.map(Level::Inner, name("shortcut.conv"), &s);
                let s = batch_norm(&d.bn, s);
                rec.map(Level::Inner, name("shortcut.bn"), &s);
                s
            }
            (None, Some(z)) => z.apply(x),
            (None, None) => x,
        };
        let out = out + shortcut;
        rec.map(Level::Inner, name("add"), &out);
        let out = relu(out);
        rec.map(Level::Block, name("out"), &out);
        out
    }
}

/// A ResNet (either layout). Field names follow torchvision, so its weights load by name.
#[derive(Module, Debug)]
pub struct ResNet {
    /// Stem convolution.
    pub conv1: Conv2d,
    /// Stem batch norm.
    pub bn1: BatchNorm,
    /// The ImageNet stem's max pool.
    pub maxpool: Option<MaxPool2d>,
    /// Stage 1.
    pub layer1: Vec<Block>,
    /// Stage 2.
    pub layer2: Vec<Block>,
    /// Stage 3.
    pub layer3: Vec<Block>,
    /// Stage 4 (empty in the CIFAR layout).
    pub layer4: Vec<Block>,
    /// Global average pool.
    pub avgpool: AdaptiveAvgPool2d,
    /// Classifier.
    pub fc: Linear,
}

impl ResNet {
    /// Logits (N, classes) of images (N, 3, H, W).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward_recorded(x, &mut Recorder::disabled())
    }

    /// Logits and the activations `probe` asks for. The logits equal [`ResNet::forward`]'s.
    pub fn forward_probed(
        &self,
        x: Tensor<4>,
        probe: &Probe,
    ) -> Result<(Tensor<2>, Activations), ModelError> {
        check_images(&x, 3)?;
        let mut rec = Recorder::new(probe);
        let logits = self.forward_recorded(x, &mut rec);
        Ok((logits, rec.finish()?))
    }

    fn forward_recorded(&self, x: Tensor<4>, rec: &mut Recorder) -> Tensor<2> {
        let out = conv2d(&self.conv1, x);
        rec.map(Level::Inner, || "stem.conv".into(), &out);
        let out = batch_norm(&self.bn1, out);
        rec.map(Level::Inner, || "stem.bn".into(), &out);
        let out = relu(out);
        let mut out = match &self.maxpool {
            Some(pool) => {
                rec.map(Level::Inner, || "stem.relu".into(), &out);
                pool.forward(out)
            }
            None => out,
        };
        rec.map(Level::Block, || "stem".into(), &out);
        for (s, stage) in [&self.layer1, &self.layer2, &self.layer3, &self.layer4]
            .iter()
            .enumerate()
        {
            for (b, block) in stage.iter().enumerate() {
                let prefix = if rec.is_active() {
                    format!("stage{}.block{}", s + 1, b + 1)
                } else {
                    String::new()
                };
                out = block.forward(out, &prefix, rec);
            }
        }
        let pooled = self.avgpool.forward(out);
        let [n, c, _, _] = pooled.dims();
        let pooled = pooled.reshape([n, c]);
        rec.vector(Level::Block, || "pool".into(), &pooled);
        let logits = self.fc.forward(pooled);
        rec.vector(Level::Block, || "logits".into(), &logits);
        logits
    }
}

/// Checks images are (N >= 1, channels, H, W).
pub(crate) fn check_images(x: &Tensor<4>, channels: usize) -> Result<(), ModelError> {
    let [n, c, h, w] = x.dims();
    if n == 0 || c != channels || h == 0 || w == 0 {
        return Err(ModelError::BadInput(format!(
            "expected images of shape (N, {channels}, H, W) with N >= 1, got ({n}, {c}, {h}, {w})"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depths_resolve_to_blocks_and_stages() {
        let plan = ResNetConfig::cifar(56, 2, 10).plan().unwrap();
        assert_eq!(
            plan.block,
            BlockKind::Basic,
            "56 = 6*9+2 = 9*6+2: basic unless asked"
        );
        assert_eq!(plan.stages, vec![(9, 32, 1), (9, 64, 2), (9, 128, 2)]);
        let plan = ResNetConfig::cifar(56, 1, 10)
            .with_block(Some(BlockKind::Bottleneck))
            .plan()
            .unwrap();
        assert_eq!((plan.stages[0].0, plan.feature_channels()), (6, 256));
        let plan = ResNetConfig::cifar(29, 1, 10).plan().unwrap();
        assert_eq!(plan.block, BlockKind::Bottleneck);
        let plan = ResNetConfig::imagenet(101, 1000).plan().unwrap();
        assert_eq!(
            plan.stages.iter().map(|s| s.0).collect::<Vec<_>>(),
            [3, 4, 23, 3]
        );
        assert_eq!((plan.stem, plan.feature_channels()), (Stem::ImageNet, 2048));
        assert!(ResNetConfig::imagenet(50, 10)
            .with_block(Some(BlockKind::Basic))
            .plan()
            .is_err());
        assert!(ResNetConfig::cifar(20, 1, 10)
            .with_stem(Some(Stem::ImageNet))
            .plan()
            .is_err());
        assert!(ResNetConfig::cifar(20, 1, 0).plan().is_err());
        assert_eq!(ResNetConfig::cifar(56, 4, 10).name(), "resnet56x4");
    }

    #[test]
    fn zero_pad_subsamples_and_pads_channels() {
        let device = burn::tensor::Device::flex();
        let x = Tensor::<4>::ones([1, 2, 4, 4], &device);
        let y = ZeroPad {
            stride: 2,
            extra_channels: 3,
        }
        .apply(x);
        assert_eq!(y.dims(), [1, 5, 2, 2]);
        let v: Vec<f32> = y.into_data().try_to_vec().unwrap();
        assert_eq!(
            v.iter().sum::<f32>(),
            8.0,
            "two channels of ones, three of zeros"
        );
    }
}
