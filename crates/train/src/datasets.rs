//! The data of a run, opened from its [`DataConfig`], and the batches of an epoch in an order
//! fixed by (seed, epoch) alone: prepared on one background thread, in order, so the order never
//! depends on thread scheduling (burn's loader with 2+ workers reorders batches), and never on
//! the training thread's critical path.

use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::{Dataset, DatasetError};
use burn::tensor::{Device, Int, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use repsim_data::{
    AnyImageDataset, Augmentation, Augmented, ChannelStats, DataError, DataSpec, ImageBatcher,
    ImageDataset, ImageItem, RandomLabels, Repeated, ShapesConfig, Split, TextBatcher, TextCorpus,
    TextItem,
};

use crate::config::DataConfig;
use crate::error::{Result, TrainError};
use crate::network::Inputs;

/// One training or evaluation batch: inputs and flattened targets (one per logit row).
#[derive(Debug, Clone)]
pub struct Batch {
    /// The inputs.
    pub inputs: Inputs,
    /// `(M)` targets: classes, or next tokens of every position.
    pub targets: Tensor<1, Int>,
}

/// The first `len` items of a dataset.
#[derive(Debug, Clone)]
pub struct FirstN<D> {
    inner: D,
    len: usize,
}

impl<D: ImageDataset> FirstN<D> {
    /// The first `len` items of `inner` (which must hold that many).
    pub fn new(inner: D, len: usize, what: &str) -> Result<Self> {
        if len > inner.len() {
            return Err(TrainError::BadConfig(format!(
                "{what} asks for {len} examples but the split holds {}",
                inner.len()
            )));
        }
        Ok(Self { inner, len })
    }
}

impl<D: ImageDataset> Dataset<ImageItem> for FirstN<D> {
    fn get(&self, index: usize) -> std::result::Result<ImageItem, DatasetError> {
        if index >= self.len {
            return Err(DataError::Index {
                index,
                len: self.len,
            }
            .into());
        }
        self.inner.get(index)
    }
    fn len(&self) -> usize {
        self.len
    }
}

impl<D: ImageDataset> ImageDataset for FirstN<D> {
    fn class_names(&self) -> &[String] {
        self.inner.class_names()
    }
    fn image_size(&self) -> (usize, usize) {
        self.inner.image_size()
    }
    fn label(&self, index: usize) -> std::result::Result<usize, DataError> {
        self.inner.label(index)
    }
}

type Labelled = RandomLabels<FirstN<AnyImageDataset>>;

/// An image run's data.
pub struct ImageData {
    /// What training batches are drawn from: the training split repeated
    /// [`DataConfig::train_repeats`] times, augmented when asked.
    pub train: Arc<dyn Dataset<ImageItem>>,
    augmented: Option<Arc<Augmented<Repeated<Arc<Labelled>>>>>,
    /// The training split with its labels (random where asked) and without augmentation.
    pub train_plain: Arc<Labelled>,
    /// The test split (true labels).
    pub test: Arc<FirstN<AnyImageDataset>>,
    /// Normalisation from the training split's statistics.
    pub batcher: ImageBatcher,
    /// Class names.
    pub classes: Vec<String>,
    /// Image (height, width).
    pub image_size: (usize, usize),
}

/// A language-model run's data.
pub struct TextData {
    /// Training windows.
    pub train: Arc<TextCorpus>,
    /// Test windows (same vocabulary).
    pub test: Arc<TextCorpus>,
}

/// The data of a run.
pub enum RunData {
    /// Images with class labels.
    Images(ImageData),
    /// Character windows for next-token prediction.
    Text(TextData),
}

impl RunData {
    /// Opens the data `config` names; `seed` fixes the augmentation.
    pub fn open(config: &DataConfig, seed: u64) -> Result<Self> {
        config.check_train_repeats()?;
        if config.is_text() {
            return Self::open_text(config);
        }
        let spec: DataSpec = config.dataset.parse()?;
        let shapes = ShapesConfig::new()
            .with_side(config.side)
            .with_seed(config.data_seed)
            .with_train_len(config.train_count.unwrap_or(50_000))
            .with_test_len(config.test_count.unwrap_or(10_000));
        let train_raw = spec.open(Split::Train, &shapes)?;
        let test_raw = if matches!(spec, DataSpec::Folder(_)) {
            // An image folder has one split: its items are the test split too.
            train_raw.clone()
        } else {
            spec.open(Split::Test, &shapes)?
        };
        let train_len = config.train_count.unwrap_or(train_raw.len());
        let test_len = config.test_count.unwrap_or(test_raw.len());
        let classes = train_raw.class_names().to_vec();
        let image_size = train_raw.image_size();
        let train_subset = FirstN::new(train_raw, train_len, "--train-count")?;
        let test = Arc::new(FirstN::new(test_raw, test_len, "--test-count")?);
        let stats = ChannelStats::compute(&train_subset, Some(2000))?;
        let train_plain = Arc::new(RandomLabels::new(
            train_subset,
            config.random_labels,
            config.data_seed,
        )?);
        let repeated = Repeated::new(train_plain.clone(), config.train_repeats)?;
        let (train, augmented): (Arc<dyn Dataset<ImageItem>>, _) = if config.augment {
            let augmentation = Augmentation {
                padding: (image_size.0 / 8).max(1),
                flip: true,
            };
            let augmented = Arc::new(Augmented::new(repeated, augmentation, seed));
            (augmented.clone(), Some(augmented))
        } else {
            (Arc::new(repeated), None)
        };
        Ok(RunData::Images(ImageData {
            train,
            augmented,
            train_plain,
            test,
            batcher: ImageBatcher::new(stats),
            classes,
            image_size,
        }))
    }

    fn open_text(config: &DataConfig) -> Result<Self> {
        let window = config.window;
        let (train, test) = match config.dataset.strip_prefix("text=") {
            None => {
                let chars =
                    |count: Option<usize>, default: usize| count.unwrap_or(default) * window + 1;
                (
                    TextCorpus::synthetic(
                        Split::Train,
                        config.data_seed,
                        chars(config.train_count, 2000),
                        window,
                        window,
                    )?,
                    TextCorpus::synthetic(
                        Split::Test,
                        config.data_seed,
                        chars(config.test_count, 200),
                        window,
                        window,
                    )?,
                )
            }
            Some(path) => {
                // One file: the last tenth is the test split.
                let text = std::fs::read_to_string(path).map_err(|e| {
                    TrainError::Data(repsim_data::DataError::Io {
                        path: path.into(),
                        message: format!("cannot read the text (--data text=PATH): {e}"),
                    })
                })?;
                let chars: Vec<char> = text.chars().collect();
                let cut = chars.len() * 9 / 10;
                let head: String = chars[..cut].iter().collect();
                let tail: String = chars[cut..].iter().collect();
                let split = |text: &str, what: &str| {
                    TextCorpus::from_text(text, window, window).map_err(|e| {
                        TrainError::Data(repsim_data::DataError::Format {
                            path: path.into(),
                            message: format!("{what}: {e}"),
                        })
                    })
                };
                (
                    split(&head, "the training split (the first nine tenths)")?,
                    split(&tail, "the test split (the last tenth)")?,
                )
            }
        };
        if train.vocabulary() != test.vocabulary() {
            return Err(TrainError::BadConfig(format!(
                "the test text's characters ({}) differ from the training text's ({}); a language model needs one vocabulary",
                test.vocabulary().len(),
                train.vocabulary().len()
            )));
        }
        let limit = |corpus: &TextCorpus, count: Option<usize>, what: &str| match count {
            Some(n) if n > corpus.len() => Err(TrainError::BadConfig(format!(
                "{what} asks for {n} windows but the text holds {}",
                corpus.len()
            ))),
            _ => Ok(()),
        };
        if config.dataset != "text" {
            limit(&train, config.train_count, "--train-count")?;
            limit(&test, config.test_count, "--test-count")?;
        }
        Ok(RunData::Text(TextData {
            train: Arc::new(train),
            test: Arc::new(test),
        }))
    }

    /// Training examples per epoch: the training split times [`DataConfig::train_repeats`].
    pub fn train_len(&self) -> usize {
        match self {
            RunData::Images(d) => d.train.len(),
            RunData::Text(d) => d.train.len(),
        }
    }

    /// Number of test examples.
    pub fn test_len(&self) -> usize {
        match self {
            RunData::Images(d) => d.test.len(),
            RunData::Text(d) => d.test.len(),
        }
    }

    /// Number of classes (or the vocabulary size).
    pub fn num_classes(&self) -> usize {
        match self {
            RunData::Images(d) => d.classes.len(),
            RunData::Text(d) => d.train.vocabulary().len(),
        }
    }

    /// Targets per example (1, or the window length of a language model).
    pub fn targets_per_example(&self) -> usize {
        match self {
            RunData::Images(_) => 1,
            RunData::Text(d) => d.train.window(),
        }
    }

    /// The training order of `epoch`: a permutation fixed by (seed, epoch).
    pub fn epoch_order(&self, seed: u64, epoch: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.train_len()).collect();
        order.shuffle(&mut epoch_rng(seed, epoch, 0x5348_5546));
        order
    }

    /// Starts preparing the training batches of `epoch` (1-based) on a background thread, in
    /// the order of [`RunData::epoch_order`]; at most two batches wait ahead. A last batch of a
    /// single example is dropped (batch norm needs two).
    pub fn train_batches(
        &self,
        seed: u64,
        epoch: usize,
        batch_size: usize,
        device: &Device,
    ) -> Receiver<Result<Batch>> {
        if let RunData::Images(d) = self {
            if let Some(augmented) = &d.augmented {
                augmented.set_epoch(epoch as u64);
            }
        }
        let order = self.epoch_order(seed, epoch);
        let chunks: Vec<Vec<usize>> = order
            .chunks(batch_size.max(1))
            .filter(|c| c.len() > 1 || order.len() == 1)
            .map(|c| c.to_vec())
            .collect();
        let (sender, receiver) = sync_channel(2);
        let source = self.source();
        let device = device.clone();
        std::thread::spawn(move || {
            for chunk in chunks {
                if sender.send(source.batch(chunk, &device)).is_err() {
                    return;
                }
            }
        });
        receiver
    }

    /// The per-channel statistics images are normalised by (those of the training subset);
    /// `None` for text.
    pub fn normalization(&self) -> Option<ChannelStats> {
        match self {
            RunData::Images(images) => Some(images.batcher.stats),
            RunData::Text(_) => None,
        }
    }

    /// The test split in order, in batches of `batch_size`.
    pub fn test_batches(
        &self,
        batch_size: usize,
        device: &Device,
    ) -> impl Iterator<Item = Result<Batch>> + '_ {
        let len = self.test_len();
        let device = device.clone();
        let source = self.test_source();
        (0..len).step_by(batch_size.max(1)).map(move |start| {
            source.batch((start..(start + batch_size).min(len)).collect(), &device)
        })
    }

    fn source(&self) -> Source {
        match self {
            RunData::Images(d) => Source::Images(d.train.clone(), d.batcher),
            RunData::Text(d) => Source::Text(d.train.clone()),
        }
    }

    fn test_source(&self) -> Source {
        match self {
            RunData::Images(d) => Source::Images(d.test.clone(), d.batcher),
            RunData::Text(d) => Source::Text(d.test.clone()),
        }
    }
}

/// A generator fixed by (seed, epoch, purpose).
pub(crate) fn epoch_rng(seed: u64, epoch: usize, purpose: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(epoch_seed(seed, epoch, purpose))
}

/// A well-mixed 64-bit seed from (seed, epoch, purpose) (SplitMix64's finaliser per word).
pub(crate) fn epoch_seed(seed: u64, epoch: usize, purpose: u64) -> u64 {
    let mut h = 0x7265_7073_696d_7472u64;
    for w in [seed, epoch as u64, purpose] {
        h ^= w;
        h = h.wrapping_add(0x9E37_79B9_7F4A_7C15);
        h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        h ^= h >> 31;
    }
    h
}

/// Where batches come from, cheap to clone into the loader thread.
#[derive(Clone)]
enum Source {
    Images(Arc<dyn Dataset<ImageItem>>, ImageBatcher),
    Text(Arc<TextCorpus>),
}

impl Source {
    fn batch(&self, indices: Vec<usize>, device: &Device) -> Result<Batch> {
        match self {
            Source::Images(dataset, batcher) => {
                let items = dataset
                    .get_many(indices)
                    .map_err(|e| TrainError::Failed(format!("reading a training batch: {e}")))?;
                let batch = batcher.batch(items, device);
                Ok(Batch {
                    inputs: Inputs::Images(batch.images),
                    targets: batch.targets,
                })
            }
            Source::Text(corpus) => {
                let items: Vec<TextItem> = corpus
                    .get_many(indices)
                    .map_err(|e| TrainError::Failed(format!("reading a text batch: {e}")))?;
                let batch = TextBatcher.batch(items, device);
                let [n, l] = batch.targets.dims();
                Ok(Batch {
                    inputs: Inputs::Tokens(batch.inputs),
                    targets: batch.targets.reshape([n * l]),
                })
            }
        }
    }
}
