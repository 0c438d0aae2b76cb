//! Probe sets: the fixed batches of examples every compared model sees, so that activations of
//! different models are computed on the same examples in the same order.
//!
//! Nguyen, Raghu & Kornblith 2021 estimate minibatch CKA from 10 passes over the 10,000 CIFAR
//! test images in batches of 256, each pass in its own random order; `ProbeSet` gives exactly
//! that: pass 0 in a shuffled order fixed by (seed, 0), pass 1 by (seed, 1), and so on.

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::tensor::Device;
use rand::seq::SliceRandom;

use crate::rng::rng_for;
use crate::DataError;

/// Deterministic batches of indices over a dataset of `len` items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSet {
    batches: Vec<Vec<usize>>,
    len: usize,
}

impl ProbeSet {
    /// `passes` passes over items `0..len` in batches of `batch_size`; with `seed` each pass
    /// is shuffled (its own order), without it every pass is in dataset order. A last partial
    /// batch is dropped (minibatch CKA needs equal batches); at least one full batch must fit.
    pub fn new(
        len: usize,
        batch_size: usize,
        passes: usize,
        seed: Option<u64>,
    ) -> Result<Self, DataError> {
        if batch_size < 4 || batch_size > len {
            return Err(DataError::BadOption(format!(
                "a probe batch must hold 4 to {len} examples (the dataset's size), got {batch_size}"
            )));
        }
        if passes == 0 {
            return Err(DataError::BadOption(
                "a probe set needs at least one pass".into(),
            ));
        }
        let mut batches = Vec::new();
        for pass in 0..passes {
            let mut order: Vec<usize> = (0..len).collect();
            if let Some(seed) = seed {
                order.shuffle(&mut rng_for(&[seed, pass as u64, 0x0070_726f_6265]));
            }
            for chunk in order.chunks_exact(batch_size) {
                batches.push(chunk.to_vec());
            }
        }
        Ok(Self { batches, len })
    }

    /// The batches of indices, in order.
    pub fn batches(&self) -> &[Vec<usize>] {
        &self.batches
    }

    /// The total number of examples over all batches and passes.
    pub fn num_examples(&self) -> usize {
        self.batches.iter().map(Vec::len).sum()
    }

    /// Iterates over the batches of `dataset`, made by `batcher` on `device`.
    pub fn iter<'a, I, O, D, B>(
        &'a self,
        dataset: &'a D,
        batcher: &'a B,
        device: &'a Device,
    ) -> impl Iterator<Item = Result<O, DataError>> + 'a
    where
        D: Dataset<I>,
        B: Batcher<I, O>,
    {
        self.batches.iter().map(move |indices| {
            if dataset.len() < self.len {
                return Err(DataError::BadOption(format!(
                    "the probe set covers {} items but the dataset holds {}",
                    self.len,
                    dataset.len()
                )));
            }
            let items = dataset
                .get_many(indices.clone())
                .map_err(|e| DataError::BadOption(format!("reading a probe batch: {e}")))?;
            Ok(batcher.batch(items, device))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_cover_every_item_once_in_their_own_order() {
        let probe = ProbeSet::new(100, 10, 3, Some(5)).unwrap();
        assert_eq!(probe.batches().len(), 30);
        for pass in 0..3 {
            let mut seen: Vec<usize> = probe.batches()[pass * 10..(pass + 1) * 10].concat();
            seen.sort();
            assert_eq!(seen, (0..100).collect::<Vec<_>>());
        }
        assert_ne!(probe.batches()[0], probe.batches()[10]);
        assert_eq!(probe, ProbeSet::new(100, 10, 3, Some(5)).unwrap());
        let ordered = ProbeSet::new(25, 10, 1, None).unwrap();
        assert_eq!(
            ordered.batches(),
            &[(0..10).collect::<Vec<_>>(), (10..20).collect()]
        );
        assert!(ProbeSet::new(10, 11, 1, None).is_err());
        assert!(ProbeSet::new(10, 5, 0, None).is_err());
    }
}
