//! Random labels for memorisation experiments (Zhang et al. 2017; Morcos et al. 2018 compare
//! networks trained on true and on randomised labels).

use burn::data::dataset::{Dataset, DatasetError};
use rand::seq::SliceRandom;
use rand::Rng;

use crate::rng::rng_for;
use crate::{DataError, ImageDataset, ImageItem};

/// Wraps a dataset and replaces the labels of a fraction `p` of its items with labels drawn
/// uniformly from all classes. Exactly `round(p * len)` items are chosen, by a permutation
/// fixed by `seed`; a drawn label may by chance equal the true one (as in Zhang et al.).
#[derive(Debug, Clone)]
pub struct RandomLabels<D> {
    inner: D,
    fraction: f64,
    /// `Some(label)` for items whose label was replaced.
    replaced: Vec<Option<u16>>,
}

impl<D: ImageDataset> RandomLabels<D> {
    /// Randomises the labels of `fraction` (in [0, 1]) of `inner`'s items.
    pub fn new(inner: D, fraction: f64, seed: u64) -> Result<Self, DataError> {
        if !(fraction.is_finite() && (0.0..=1.0).contains(&fraction)) {
            return Err(DataError::BadOption(format!(
                "the random-label fraction must be in [0, 1], got {fraction}"
            )));
        }
        let classes = inner.class_names().len();
        if classes == 0 || classes > u16::MAX as usize {
            return Err(DataError::BadOption(format!(
                "random labels need 1 to 65535 classes, the dataset has {classes}"
            )));
        }
        let len = inner.len();
        let count = (fraction * len as f64).round() as usize;
        let mut rng = rng_for(&[seed, 0x7261_6e64_6c61_6265]);
        let mut order: Vec<usize> = (0..len).collect();
        order.shuffle(&mut rng);
        let mut replaced = vec![None; len];
        for &i in &order[..count] {
            replaced[i] = Some(rng.random_range(0..classes) as u16);
        }
        Ok(Self {
            inner,
            fraction,
            replaced,
        })
    }

    /// The fraction asked for.
    pub fn fraction(&self) -> f64 {
        self.fraction
    }

    /// Whether item `index` got a random label.
    pub fn is_randomised(&self, index: usize) -> bool {
        self.replaced.get(index).is_some_and(|r| r.is_some())
    }

    /// The wrapped dataset.
    pub fn inner(&self) -> &D {
        &self.inner
    }
}

impl<D: ImageDataset> Dataset<ImageItem> for RandomLabels<D> {
    fn get(&self, index: usize) -> Result<ImageItem, DatasetError> {
        let mut item = self.inner.get(index)?;
        if let Some(Some(label)) = self.replaced.get(index) {
            item.label = *label as usize;
        }
        Ok(item)
    }
    fn len(&self) -> usize {
        self.inner.len()
    }
}

impl<D: ImageDataset> ImageDataset for RandomLabels<D> {
    fn class_names(&self) -> &[String] {
        self.inner.class_names()
    }
    fn image_size(&self) -> (usize, usize) {
        self.inner.image_size()
    }
    fn label(&self, index: usize) -> Result<usize, DataError> {
        match self.replaced.get(index) {
            Some(Some(label)) => Ok(*label as usize),
            _ => self.inner.label(index),
        }
    }
}
