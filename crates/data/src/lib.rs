//! Datasets for repsim: what the compared networks are trained and probed on.
//!
//! - [`CifarDataset`]: CIFAR-10 and CIFAR-100, binary version, from the extracted folder or
//!   straight from the `.tar.gz`.
//! - [`ImageFolder`]: `root/<class>/*.png|jpg`, resized and centre-cropped.
//! - [`ShapesDataset`]: built-in synthetic shapes in 10 classes, generated on demand; the
//!   default everywhere, since nothing can be downloaded at run time.
//! - [`RandomLabels`]: a fraction of labels replaced by random ones, for memorisation.
//! - [`Repeated`]: a small training set seen several times per epoch.
//! - [`RowSequences`] and [`TextCorpus`]: sequences for RNN classifiers and language models.
//! - [`Augmentation`] / [`Augmented`] and [`ChannelStats`]: CIFAR augmentation and
//!   normalisation.
//! - [`ImageBatcher`] & co.: burn `Batcher`s producing tensors on a device, and
//!   [`data_loader`]; [`ProbeSet`]: the fixed batches every compared model sees.
//!
//! Every dataset implements burn's `Dataset`; image datasets also [`ImageDataset`] (class
//! names, image size, labels without decoding).
//!
//! ```
//! use burn::data::dataset::Dataset;
//! use repsim_data::{ShapesConfig, Split, SHAPE_CLASSES};
//!
//! // The built-in shapes: item i of a split is a pure function of (seed, split, i).
//! let train = ShapesConfig::new().with_side(16).with_train_len(20).init(Split::Train)?;
//! assert_eq!(train.len(), 20);
//! let item = train.get(3)?;
//! assert!(item.label < SHAPE_CLASSES.len());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod batcher;
mod cifar;
mod error;
mod folder;
mod item;
mod probe;
mod random_labels;
mod repeated;
mod rng;
mod sequence;
mod shapes;
mod spec;
mod transform;

pub use batcher::{
    data_loader, ImageBatch, ImageBatcher, LoaderConfig, SequenceBatch, SequenceBatcher, TextBatch,
    TextBatcher,
};
pub use cifar::{Cifar100Labels, CifarDataset, CIFAR10_CLASSES, CIFAR_SIDE};
pub use error::DataError;
pub use folder::{load_image, ImageFolder};
pub use item::{ImageDataset, ImageItem, Split};
pub use probe::ProbeSet;
pub use random_labels::RandomLabels;
pub use repeated::Repeated;
pub use sequence::{RowSequences, SequenceItem, SyntheticText, TextCorpus, TextItem};
pub use shapes::{ShapesConfig, ShapesDataset, SHAPE_CLASSES};
pub use spec::{class_counts, AnyImageDataset, DataSpec};
pub use transform::{Augmentation, Augmented, ChannelStats};
