//! Batching items into burn tensors on a device, and the data loaders built from them.

use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::{DataLoader, DataLoaderBuilder};
use burn::data::dataset::Dataset;
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::{ChannelStats, ImageItem, SequenceItem, TextItem};

/// A batch of images: `images` is (N, 3, H, W) float32, normalised; `targets` the classes.
#[derive(Debug, Clone)]
pub struct ImageBatch {
    /// (N, 3, H, W) images, `(x / 255 - mean) / std` per channel.
    pub images: Tensor<4>,
    /// (N) class indices.
    pub targets: Tensor<1, Int>,
}

/// Turns [`ImageItem`]s into an [`ImageBatch`], normalising with `stats`.
#[derive(Debug, Clone, Copy)]
pub struct ImageBatcher {
    /// Per-channel statistics used for normalisation.
    pub stats: ChannelStats,
}

impl ImageBatcher {
    /// A batcher normalising with `stats`.
    pub fn new(stats: ChannelStats) -> Self {
        Self { stats }
    }
}

impl Batcher<ImageItem, ImageBatch> for ImageBatcher {
    fn batch(&self, items: Vec<ImageItem>, device: &Device) -> ImageBatch {
        let n = items.len();
        let (h, w) = items.first().map(|i| (i.height, i.width)).unwrap_or((0, 0));
        let plane = h * w;
        let mut values = Vec::with_capacity(n * 3 * plane);
        let mut targets = Vec::with_capacity(n);
        let scale: [f32; 3] = std::array::from_fn(|c| 1.0 / (255.0 * self.stats.std[c]));
        let shift: [f32; 3] = std::array::from_fn(|c| self.stats.mean[c] / self.stats.std[c]);
        for item in &items {
            // Items of one dataset share a size; a stray size would be a bug in the dataset.
            debug_assert_eq!((item.height, item.width), (h, w));
            for c in 0..3 {
                values.extend(
                    item.pixels[c * plane..(c + 1) * plane]
                        .iter()
                        .map(|v| *v as f32 * scale[c] - shift[c]),
                );
            }
            targets.push(item.label as i64);
        }
        ImageBatch {
            images: Tensor::from_data(TensorData::new(values, [n, 3, h, w]), device),
            targets: Tensor::from_data(TensorData::new(targets, [n]), device),
        }
    }
}

/// A batch of sequences: `inputs` is (N, steps, features) float32.
#[derive(Debug, Clone)]
pub struct SequenceBatch {
    /// (N, T, F) inputs.
    pub inputs: Tensor<3>,
    /// (N) class indices.
    pub targets: Tensor<1, Int>,
}

/// Turns [`SequenceItem`]s into a [`SequenceBatch`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SequenceBatcher;

impl Batcher<SequenceItem, SequenceBatch> for SequenceBatcher {
    fn batch(&self, items: Vec<SequenceItem>, device: &Device) -> SequenceBatch {
        let n = items.len();
        let (t, f) = items
            .first()
            .map(|i| (i.steps, i.features))
            .unwrap_or((0, 0));
        let mut values = Vec::with_capacity(n * t * f);
        let mut targets = Vec::with_capacity(n);
        for item in &items {
            values.extend_from_slice(&item.values);
            targets.push(item.label as i64);
        }
        SequenceBatch {
            inputs: Tensor::from_data(TensorData::new(values, [n, t, f]), device),
            targets: Tensor::from_data(TensorData::new(targets, [n]), device),
        }
    }
}

/// A batch of text windows: token ids (N, L) and their next-token targets (N, L).
#[derive(Debug, Clone)]
pub struct TextBatch {
    /// (N, L) input token ids.
    pub inputs: Tensor<2, Int>,
    /// (N, L) target token ids.
    pub targets: Tensor<2, Int>,
}

/// Turns [`TextItem`]s into a [`TextBatch`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TextBatcher;

impl Batcher<TextItem, TextBatch> for TextBatcher {
    fn batch(&self, items: Vec<TextItem>, device: &Device) -> TextBatch {
        let n = items.len();
        let l = items.first().map(|i| i.inputs.len()).unwrap_or(0);
        let inputs: Vec<i64> = items
            .iter()
            .flat_map(|i| i.inputs.iter().map(|t| *t as i64))
            .collect();
        let targets: Vec<i64> = items
            .iter()
            .flat_map(|i| i.targets.iter().map(|t| *t as i64))
            .collect();
        TextBatch {
            inputs: Tensor::from_data(TensorData::new(inputs, [n, l]), device),
            targets: Tensor::from_data(TensorData::new(targets, [n, l]), device),
        }
    }
}

/// How a data loader batches, shuffles and parallelises.
#[derive(burn::config::Config, Debug)]
pub struct LoaderConfig {
    /// Items per batch.
    #[config(default = 128)]
    pub batch_size: usize,
    /// Shuffle every epoch with this seed; `None` keeps dataset order.
    pub shuffle_seed: Option<u64>,
    /// Worker threads preparing batches (0: the calling thread).
    #[config(default = 2)]
    pub workers: usize,
}

/// A burn data loader over `dataset`, batching with `batcher` onto `device`.
pub fn data_loader<I, O, B, D>(
    dataset: D,
    batcher: B,
    config: &LoaderConfig,
    device: &Device,
) -> Arc<dyn DataLoader<O>>
where
    I: Send + Sync + Clone + std::fmt::Debug + 'static,
    O: Send + Clone + std::fmt::Debug + 'static,
    B: Batcher<I, O> + 'static,
    D: Dataset<I> + 'static,
{
    let mut builder = DataLoaderBuilder::new(batcher)
        .batch_size(config.batch_size.max(1))
        .num_workers(config.workers)
        .set_device(device.clone());
    if let Some(seed) = config.shuffle_seed {
        builder = builder.shuffle(seed);
    }
    builder.build(dataset)
}
