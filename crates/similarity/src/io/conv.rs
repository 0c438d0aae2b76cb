//! Convolutional layers `(N, C, H, W)` as examples x features matrices, three ways:
//!
//! - `flatten` (default): each example is a point with `C*H*W` features.
//! - `spatial` (spatial-as-samples): each of the `N*H*W` positions is a point with the `C`
//!   channel values as features, as in the SVCCA authors' tutorial on conv layers (Raghu et al.
//!   2017): it compares what channels encode rather than where. Above `cap` points a fixed random
//!   subset is kept (the same positions for every layer of that shape, so two models keep
//!   matching points). Layers compared this way need the same `N*H*W`; pool them to a common
//!   size otherwise.
//! - `pool=K`: adaptive average pooling of the spatial dims to `K x K`, then flatten to
//!   `C*K*K` features: fewer features for the CCA family, same examples as the dense layers.
//!
//! Layouts are channels-first (`N, C, H, W`, PyTorch's); permute JAX/TF activations first.

use std::fmt;
use std::str::FromStr;

use burn::tensor::module::adaptive_avg_pool2d;
use burn::tensor::{Int, Tensor, TensorData};

use crate::error::{Result, SimilarityError};
use crate::layer::Layer;
use crate::testing::SplitMix64;

/// Default cap on the points of spatial-as-samples.
pub const DEFAULT_SPATIAL_CAP: usize = 100_000;

/// How a convolutional layer becomes a matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ConvMode {
    /// `N x (C H W)`.
    #[default]
    Flatten,
    /// `(N H W) x C`, at most `cap` points.
    SpatialAsSamples {
        /// The most points kept.
        cap: usize,
    },
    /// Average-pool to `size x size`, then `N x (C size size)`.
    Pool {
        /// The pooled spatial side.
        size: usize,
    },
}

impl FromStr for ConvMode {
    type Err = SimilarityError;

    /// `flatten`, `spatial`, `spatial=CAP` or `pool=K`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = |message: String| SimilarityError::InvalidParameter {
            name: "conv mode",
            message,
        };
        let number = |text: &str| -> Result<usize> {
            match text.parse::<usize>() {
                Ok(v) if v > 0 => Ok(v),
                _ => Err(bad(format!("`{s}`: expected a positive integer after `=`"))),
            }
        };
        match s.split_once('=') {
            None if s == "flatten" => Ok(ConvMode::Flatten),
            None if s == "spatial" => Ok(ConvMode::SpatialAsSamples {
                cap: DEFAULT_SPATIAL_CAP,
            }),
            Some(("spatial", cap)) => Ok(ConvMode::SpatialAsSamples { cap: number(cap)? }),
            Some(("pool", size)) => Ok(ConvMode::Pool {
                size: number(size)?,
            }),
            _ => Err(bad(format!(
                "unknown conv mode `{s}`; choose flatten, spatial, spatial=CAP or pool=K"
            ))),
        }
    }
}

impl fmt::Display for ConvMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConvMode::Flatten => f.write_str("flatten"),
            ConvMode::SpatialAsSamples { cap } => write!(f, "spatial={cap}"),
            ConvMode::Pool { size } => write!(f, "pool={size}"),
        }
    }
}

/// A convolutional layer `(N, C, H, W)` as a [`Layer`] in the given mode.
pub fn conv_layer(
    name: impl Into<String>,
    activations: Tensor<4>,
    mode: ConvMode,
) -> Result<Layer> {
    let name = name.into();
    let [n, c, h, w] = activations.dims();
    match mode {
        ConvMode::Flatten => Layer::new(name, activations),
        ConvMode::Pool { size } => {
            if size > h || size > w {
                return Err(SimilarityError::InvalidParameter {
                    name: "conv mode",
                    message: format!(
                        "layer `{name}` is {h} x {w}: cannot pool it up to {size} x {size}"
                    ),
                });
            }
            Layer::new(name, adaptive_avg_pool2d(activations, [size, size]))
        }
        ConvMode::SpatialAsSamples { cap } => {
            let points = n * h * w;
            // N x C x H x W -> N x H x W x C -> (N H W) x C
            let matrix = activations.permute([0, 2, 3, 1]).reshape([points, c]);
            let matrix = if points > cap {
                let device = matrix.device();
                let keep = spatial_subset(points, cap);
                let indices = Tensor::<1, Int>::from_data(TensorData::new(keep, [cap]), &device);
                matrix.select(0, indices)
            } else {
                matrix
            };
            Layer::new(name, matrix)
        }
    }
}

/// `cap` of `points` indices, a fixed random subset in increasing order: the same for every
/// layer with that many points.
fn spatial_subset(points: usize, cap: usize) -> Vec<i64> {
    let mut rng = SplitMix64::new(points as u64);
    let mut indices: Vec<usize> = (0..points).collect();
    for i in 0..cap {
        let j = i + (rng.next_u64() % (points - i) as u64) as usize;
        indices.swap(i, j);
    }
    let mut keep: Vec<i64> = indices[..cap].iter().map(|&i| i as i64).collect();
    keep.sort_unstable();
    keep
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::read_back;
    use burn::tensor::Device;

    fn conv(device: &Device) -> Tensor<4> {
        let values: Vec<f32> = (0..2 * 3 * 4 * 4).map(|i| i as f32).collect();
        Tensor::from_data(TensorData::new(values, [2, 3, 4, 4]), device)
    }

    #[test]
    fn modes_parse_and_print() {
        for text in ["flatten", "spatial=500", "pool=2"] {
            assert_eq!(text.parse::<ConvMode>().unwrap().to_string(), text);
        }
        assert_eq!(
            "spatial".parse::<ConvMode>().unwrap(),
            ConvMode::SpatialAsSamples {
                cap: DEFAULT_SPATIAL_CAP
            }
        );
        assert!("pool=0".parse::<ConvMode>().is_err());
        assert!("resize"
            .parse::<ConvMode>()
            .unwrap_err()
            .to_string()
            .contains("pool=K"));
    }

    #[test]
    fn shapes_of_each_mode() {
        let device = Device::flex();
        let flat = conv_layer("c", conv(&device), ConvMode::Flatten).unwrap();
        assert_eq!(flat.matrix.dims(), [2, 48]);
        let pooled = conv_layer("c", conv(&device), ConvMode::Pool { size: 2 }).unwrap();
        assert_eq!(pooled.matrix.dims(), [2, 12]);
        // Channel 0 of example 0, top-left 2x2 block: (0 + 1 + 4 + 5) / 4 = 2.5.
        assert_eq!(read_back(pooled.matrix).unwrap()[0], 2.5);
        let spatial =
            conv_layer("c", conv(&device), ConvMode::SpatialAsSamples { cap: 1000 }).unwrap();
        assert_eq!(spatial.matrix.dims(), [32, 3]);
        // Position (n=0, h=0, w=1) has channels 1, 17, 33.
        assert_eq!(
            read_back(spatial.matrix.narrow(0, 1, 1)).unwrap(),
            vec![1.0, 17.0, 33.0]
        );
        let capped =
            conv_layer("c", conv(&device), ConvMode::SpatialAsSamples { cap: 10 }).unwrap();
        assert_eq!(capped.matrix.dims(), [10, 3]);
    }

    #[test]
    fn the_spatial_subset_is_fixed_sorted_and_distinct() {
        let a = spatial_subset(1000, 50);
        assert_eq!(a, spatial_subset(1000, 50));
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert!(a.iter().all(|&i| (0..1000).contains(&i)));
    }
}
