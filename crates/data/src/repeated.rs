//! A dataset seen several times per epoch: the small training sets of a training-set-size
//! axis cycled through epochs of the usual length, so a model trained on 250 images takes as
//! many steps per epoch (and is evaluated as often per step) as one trained on 1,000.

use burn::data::dataset::{Dataset, DatasetError};

use crate::{DataError, ImageDataset, ImageItem};

/// `inner`'s items `times` times over: item `i` is `inner`'s item `i mod inner.len()`. Each
/// copy has its own index, so an [`crate::Augmented`] wrapped around it draws each copy's crop
/// and flip independently. `times = 1` is `inner` itself.
#[derive(Debug, Clone)]
pub struct Repeated<D> {
    inner: D,
    times: usize,
}

impl<D: Dataset<ImageItem>> Repeated<D> {
    /// `inner` repeated `times` (at least 1) times.
    pub fn new(inner: D, times: usize) -> Result<Self, DataError> {
        if times == 0 {
            return Err(DataError::BadOption(
                "a training set is repeated at least once per epoch, got 0 repeats".into(),
            ));
        }
        if inner.len().checked_mul(times).is_none() {
            return Err(DataError::BadOption(format!(
                "{} items repeated {times} times are more than an index can count",
                inner.len()
            )));
        }
        Ok(Self { inner, times })
    }

    /// How many times each item appears.
    pub fn times(&self) -> usize {
        self.times
    }

    /// The index in `inner` of item `index`; an error past the end.
    fn source(&self, index: usize) -> Result<usize, DataError> {
        let len = self.inner.len();
        if index >= len * self.times {
            return Err(DataError::Index {
                index,
                len: len * self.times,
            });
        }
        Ok(index % len)
    }
}

impl<D: Dataset<ImageItem>> Dataset<ImageItem> for Repeated<D> {
    fn get(&self, index: usize) -> Result<ImageItem, DatasetError> {
        self.inner.get(self.source(index)?)
    }
    fn len(&self) -> usize {
        self.inner.len() * self.times
    }
}

impl<D: ImageDataset> ImageDataset for Repeated<D> {
    fn class_names(&self) -> &[String] {
        self.inner.class_names()
    }
    fn image_size(&self) -> (usize, usize) {
        self.inner.image_size()
    }
    fn label(&self, index: usize) -> Result<usize, DataError> {
        self.inner.label(self.source(index)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Augmentation, Augmented, ShapesConfig, Split};

    fn shapes(len: usize) -> crate::ShapesDataset {
        ShapesConfig::new()
            .with_side(16)
            .with_train_len(len)
            .init(Split::Train)
            .unwrap()
    }

    #[test]
    fn each_item_appears_times_over_in_order() {
        let inner = shapes(5);
        let repeated = Repeated::new(inner.clone(), 3).unwrap();
        assert_eq!(repeated.len(), 15);
        for i in 0..15 {
            assert_eq!(
                repeated.get(i).unwrap(),
                inner.get(i % 5).unwrap(),
                "item {i}"
            );
            assert_eq!(repeated.label(i).unwrap(), inner.label(i % 5).unwrap());
        }
        assert!(repeated.get(15).is_err());
        assert!(repeated.label(15).is_err());
    }

    #[test]
    fn once_is_the_dataset_itself_and_zero_is_refused() {
        let inner = shapes(4);
        let once = Repeated::new(inner.clone(), 1).unwrap();
        assert_eq!(once.len(), 4);
        assert!((0..4).all(|i| once.get(i).unwrap() == inner.get(i).unwrap()));
        let err = Repeated::new(inner.clone(), 0).unwrap_err().to_string();
        assert!(err.contains("0 repeats"), "{err}");
        let err = Repeated::new(inner, usize::MAX / 2)
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than an index can count"), "{err}");
    }

    #[test]
    fn augmented_copies_of_one_image_get_their_own_crops() {
        let augmentation = Augmentation {
            padding: 2,
            flip: true,
        };
        let augmented = Augmented::new(Repeated::new(shapes(3), 8).unwrap(), augmentation, 7);
        // The 8 copies of image 0 (indices 0, 3, 6, ...): not all augmented alike.
        let copies: Vec<ImageItem> = (0..8).map(|k| augmented.get(3 * k).unwrap()).collect();
        assert!(copies.iter().any(|c| c != &copies[0]));
        assert!(copies.iter().all(|c| c.label == copies[0].label));
    }
}
