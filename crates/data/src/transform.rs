//! Image transforms: the standard CIFAR augmentation (random crop with 4-pixel zero padding and
//! horizontal flip; He et al. 2016, section 4.2) and per-channel normalisation.

use std::sync::atomic::{AtomicU64, Ordering};

use burn::data::dataset::{Dataset, DatasetError};
use rand::Rng;

use crate::rng::rng_for;
use crate::{DataError, ImageDataset, ImageItem};

/// Random crop after zero padding, and a horizontal flip with probability 1/2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Augmentation {
    /// Padding on each side before cropping back to the original size (4 for CIFAR).
    pub padding: usize,
    /// Flip horizontally with probability 1/2.
    pub flip: bool,
}

impl Default for Augmentation {
    fn default() -> Self {
        Self {
            padding: 4,
            flip: true,
        }
    }
}

impl Augmentation {
    /// Applies the augmentation to `item` with offsets drawn from `rng`.
    pub fn apply(&self, item: &ImageItem, rng: &mut impl Rng) -> ImageItem {
        let (h, w, p) = (item.height, item.width, self.padding);
        // Offset of the crop window in the padded image, 0..=2p on each axis.
        let oy = rng.random_range(0..=2 * p) as isize - p as isize;
        let ox = rng.random_range(0..=2 * p) as isize - p as isize;
        let flip = self.flip && rng.random::<bool>();
        let mut pixels = vec![0u8; item.pixels.len()];
        for c in 0..ImageItem::CHANNELS {
            let plane = &item.pixels[c * h * w..(c + 1) * h * w];
            let out = &mut pixels[c * h * w..(c + 1) * h * w];
            for y in 0..h {
                let sy = y as isize + oy;
                if sy < 0 || sy >= h as isize {
                    continue;
                }
                let row = &plane[sy as usize * w..(sy as usize + 1) * w];
                let out_row = &mut out[y * w..(y + 1) * w];
                for (x, o) in out_row.iter_mut().enumerate() {
                    let tx = if flip { w - 1 - x } else { x };
                    let sx = tx as isize + ox;
                    if sx >= 0 && sx < w as isize {
                        *o = row[sx as usize];
                    }
                }
            }
        }
        ImageItem {
            pixels,
            height: h,
            width: w,
            label: item.label,
        }
    }
}

/// A dataset whose items are augmented. Item `i` in epoch `e` is augmented with a generator
/// fixed by (seed, e, i): reproducible, and the same whichever loader thread reads it. Call
/// [`Augmented::set_epoch`] between epochs to draw new crops.
#[derive(Debug)]
pub struct Augmented<D> {
    inner: D,
    augmentation: Augmentation,
    seed: u64,
    epoch: AtomicU64,
}

impl<D> Augmented<D> {
    /// Augments `inner`'s items with `augmentation`, from `seed`.
    pub fn new(inner: D, augmentation: Augmentation, seed: u64) -> Self {
        Self {
            inner,
            augmentation,
            seed,
            epoch: AtomicU64::new(0),
        }
    }

    /// Sets the epoch that, with the seed and the index, fixes each item's augmentation.
    pub fn set_epoch(&self, epoch: u64) {
        self.epoch.store(epoch, Ordering::Relaxed);
    }
}

impl<D: Dataset<ImageItem>> Dataset<ImageItem> for Augmented<D> {
    fn get(&self, index: usize) -> Result<ImageItem, DatasetError> {
        let item = self.inner.get(index)?;
        let mut rng = rng_for(&[self.seed, self.epoch.load(Ordering::Relaxed), index as u64]);
        Ok(self.augmentation.apply(&item, &mut rng))
    }
    fn len(&self) -> usize {
        self.inner.len()
    }
}

impl<D: ImageDataset> ImageDataset for Augmented<D> {
    fn class_names(&self) -> &[String] {
        self.inner.class_names()
    }
    fn image_size(&self) -> (usize, usize) {
        self.inner.image_size()
    }
    fn label(&self, index: usize) -> Result<usize, DataError> {
        self.inner.label(index)
    }
}

/// Per-channel mean and standard deviation, in [0, 1] units, for normalising
/// `(x / 255 - mean) / std`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChannelStats {
    /// Mean of R, G, B.
    pub mean: [f32; 3],
    /// Standard deviation of R, G, B.
    pub std: [f32; 3],
}

impl ChannelStats {
    /// CIFAR-10's training-set statistics as commonly published.
    pub const CIFAR10: ChannelStats = ChannelStats {
        mean: [0.4914, 0.4822, 0.4465],
        std: [0.2470, 0.2435, 0.2616],
    };
    /// CIFAR-100's training-set statistics as commonly published.
    pub const CIFAR100: ChannelStats = ChannelStats {
        mean: [0.5071, 0.4865, 0.4409],
        std: [0.2673, 0.2564, 0.2762],
    };
    /// No normalisation beyond scaling to [0, 1].
    pub const IDENTITY: ChannelStats = ChannelStats {
        mean: [0.0; 3],
        std: [1.0; 3],
    };

    /// Computes the statistics of the first `limit` items of `dataset` (all when `None`).
    pub fn compute(
        dataset: &impl Dataset<ImageItem>,
        limit: Option<usize>,
    ) -> Result<Self, DataError> {
        let n = limit.unwrap_or(usize::MAX).min(dataset.len());
        if n == 0 {
            return Err(DataError::BadOption(
                "cannot compute channel statistics of an empty dataset".into(),
            ));
        }
        let mut sum = [0f64; 3];
        let mut sum_sq = [0f64; 3];
        let mut count = 0f64;
        for i in 0..n {
            let item = dataset
                .get(i)
                .map_err(|e| DataError::BadOption(format!("item {i}: {e}")))?;
            let plane = item.height * item.width;
            for c in 0..3 {
                for &v in &item.pixels[c * plane..(c + 1) * plane] {
                    let v = v as f64 / 255.0;
                    sum[c] += v;
                    sum_sq[c] += v * v;
                }
            }
            count += plane as f64;
        }
        let mut stats = ChannelStats::IDENTITY;
        for c in 0..3 {
            let mean = sum[c] / count;
            let var = (sum_sq[c] / count - mean * mean).max(0.0);
            stats.mean[c] = mean as f32;
            stats.std[c] = (var.sqrt() as f32).max(1e-6);
        }
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(side: usize) -> ImageItem {
        let pixels = (0..3 * side * side).map(|i| (i % 251) as u8).collect();
        ImageItem {
            pixels,
            height: side,
            width: side,
            label: 3,
        }
    }

    #[test]
    fn no_padding_and_no_flip_is_the_identity() {
        let item = ramp(8);
        let aug = Augmentation {
            padding: 0,
            flip: false,
        };
        let mut rng = rng_for(&[1]);
        assert_eq!(aug.apply(&item, &mut rng), item);
    }

    #[test]
    fn crops_shift_content_and_pad_with_zeros() {
        let item = ramp(8);
        let aug = Augmentation::default();
        let mut saw_shift = false;
        for seed in 0..50 {
            let out = aug.apply(&item, &mut rng_for(&[seed]));
            assert_eq!(out.pixels.len(), item.pixels.len());
            assert_eq!(out.label, 3);
            saw_shift |= out != item;
        }
        assert!(saw_shift);
    }

    #[test]
    fn augmented_items_are_reproducible_per_epoch() {
        struct One(ImageItem);
        impl Dataset<ImageItem> for One {
            fn get(&self, _: usize) -> Result<ImageItem, DatasetError> {
                Ok(self.0.clone())
            }
            fn len(&self) -> usize {
                1
            }
        }
        let d = Augmented::new(One(ramp(8)), Augmentation::default(), 7);
        let a = d.get(0).unwrap();
        assert_eq!(a, d.get(0).unwrap());
        let differs = (1..20).any(|e| {
            d.set_epoch(e);
            d.get(0).unwrap() != a
        });
        assert!(differs, "new epochs draw new crops");
    }
}
