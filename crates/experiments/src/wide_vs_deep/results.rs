//! wide_vs_deep's configuration and what it measures (the types of `results.json`).

use repsim_similarity::SimilarityMatrix;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::harness::Scale;
use crate::statistics::Interval;

/// The experiment's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WideVsDeepConfig {
    /// ResNet depths (6n+2), down the rows of the figures.
    pub depths: Vec<usize>,
    /// Width multipliers, across the columns.
    pub widths: Vec<usize>,
    /// (depth, width) cells of the grid not trained (an empty panel in the figures): the
    /// default leaves out ResNet-38 x4, which alone would take longer than the rest.
    #[serde(default)]
    pub omit: Vec<(usize, usize)>,
    /// The (depth, width) whose first two seeds are compared (the seed-to-seed comparison and
    /// the per-class baseline); with one seed it is the one architecture trained twice.
    pub second_seed: (usize, usize),
    /// Seeds of every grid model (`--seeds N`).
    #[serde(default = "one_seed")]
    pub seeds: usize,
    /// Image side (shapes; CIFAR is 32).
    pub side: usize,
    /// Training images (the first this many of the training split).
    pub train_count: usize,
    /// Further training-set sizes, the paper's third axis (capacity *relative to the data*):
    /// the grid is trained again on the first N training images for each N here, from the same
    /// initialisation as at `train_count` (a paired design: a model's seed does not depend on
    /// N), for about the same number of optimisation steps ([`Self::schedule_at`]). Every model
    /// at every N enters the capacity trend; the cross-model comparisons and the per-class
    /// accuracies stay at `train_count`. Empty (the default): one size.
    #[serde(default)]
    pub other_train_counts: Vec<usize>,
    /// Training images per epoch at every size: N images are repeated
    /// `images_per_epoch / N` times per epoch (at least once; each copy augmented on its own),
    /// so small training sets are trained in epochs of the usual length and are evaluated and
    /// checkpointed as rarely per step as large ones (the schedule in steps is unchanged). `None`
    /// (config files that predate it): no repeats, so a small set trains for many short epochs.
    #[serde(default)]
    pub images_per_epoch: Option<usize>,
    /// Models trained from their second seed besides the grid, as (depth, width, training
    /// images): the follow-up of a one-seed run, whose summary lists the models near the
    /// block-structure threshold and writes this config with them added
    /// (`near_threshold_seeds.json`). Each must be a grid cell at one of the training-set
    /// sizes; a model whose second seed is trained anyway (`--seeds 2`, `second_seed`) is
    /// trained once. Empty (the default): none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_seeds: Vec<(usize, usize, usize)>,
    /// A model is *near the threshold* of block structure when a block statistic is within
    /// this margin of it (contrast and share) or its block one layer short, the other criteria
    /// met or as near ([`Self::near_threshold`]).
    #[serde(
        default = "near_threshold_margin",
        skip_serializing_if = "is_default_margin"
    )]
    pub near_threshold_margin: f64,
    /// Test images (the probe set of the CKA estimates).
    pub test_count: usize,
    /// Epochs.
    pub epochs: usize,
    /// Batch size.
    pub batch_size: usize,
    /// Peak learning rate (SGD, momentum 0.9, cosine).
    pub lr: f64,
    /// Epochs of linear warm-up before the cosine (deep ResNets diverge without it: He et al.
    /// 2016 warm ResNet-110 up too).
    pub warmup_epochs: usize,
    /// Weight decay.
    pub weight_decay: f64,
    /// Layers compared: blocks or all.
    pub probe: String,
    /// Minibatch CKA batch size (the paper: 256).
    pub cka_batch: usize,
    /// Shuffled passes over the test split for minibatch CKA (the paper: 10).
    pub passes: usize,
    /// Test images for the principal-component analysis.
    pub pc_examples: usize,
    /// The CKA threshold of the block-structure number.
    pub block_threshold: f64,
    /// A block counts as block structure when it holds at least this share of the layers...
    pub block_min_share: f64,
    /// ... at least this many layers ...
    pub block_min_layers: usize,
    /// ... and its mean CKA inside exceeds its mean CKA with the other layers by this much.
    pub block_min_contrast: f64,
}

impl WideVsDeepConfig {
    /// The configuration of `scale`. The default was chosen by measuring training speed on a
    /// 2-core CPU (flex): see the README section "wide_vs_deep".
    pub fn for_scale(scale: Scale) -> Self {
        match scale {
            Scale::Smoke => WideVsDeepConfig {
                depths: vec![8],
                widths: vec![1, 2],
                omit: Vec::new(),
                second_seed: (8, 1),
                side: 16,
                train_count: 256,
                other_train_counts: Vec::new(),
                images_per_epoch: None,
                extra_seeds: Vec::new(),
                near_threshold_margin: NEAR_THRESHOLD_MARGIN,
                test_count: 512,
                epochs: 1,
                batch_size: 64,
                lr: 0.05,
                warmup_epochs: 0,
                weight_decay: 5e-4,
                probe: "blocks".into(),
                cka_batch: 256,
                passes: 1,
                pc_examples: 256,
                block_threshold: 0.9,
                block_min_share: 0.25,
                block_min_layers: 4,
                block_min_contrast: 0.4,
                seeds: 1,
            },
            Scale::Default => WideVsDeepConfig {
                depths: vec![8, 20, 38],
                widths: vec![1, 2],
                omit: vec![(20, 2), (38, 2)],
                second_seed: (20, 1),
                side: 16,
                train_count: 1000,
                other_train_counts: vec![250, 4000],
                images_per_epoch: Some(4000),
                extra_seeds: Vec::new(),
                near_threshold_margin: NEAR_THRESHOLD_MARGIN,
                test_count: 1024,
                epochs: 8,
                batch_size: 64,
                lr: 0.05,
                warmup_epochs: 1,
                weight_decay: 5e-4,
                probe: "blocks".into(),
                cka_batch: 256,
                passes: 2,
                pc_examples: 512,
                block_threshold: 0.9,
                block_min_share: 0.25,
                block_min_layers: 4,
                block_min_contrast: 0.4,
                seeds: 1,
            },
            Scale::Full => WideVsDeepConfig {
                depths: vec![20, 38, 56, 110],
                widths: vec![1, 2, 4, 8],
                omit: Vec::new(),
                second_seed: (110, 1),
                side: 32,
                train_count: 50_000,
                other_train_counts: Vec::new(),
                images_per_epoch: None,
                extra_seeds: Vec::new(),
                near_threshold_margin: NEAR_THRESHOLD_MARGIN,
                test_count: 10_000,
                epochs: 200,
                batch_size: 128,
                lr: 0.1,
                warmup_epochs: 2,
                weight_decay: 5e-4,
                probe: "all".into(),
                cka_batch: 256,
                passes: 10,
                pc_examples: 2000,
                block_threshold: 0.9,
                block_min_share: 0.25,
                block_min_layers: 4,
                block_min_contrast: 0.4,
                seeds: 1,
            },
        }
    }

    pub(super) fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Input(m));
        if self.seeds == 0 {
            return bad("wide_vs_deep needs at least 1 seed (--seeds)".into());
        }
        if self.depths.is_empty() || self.widths.is_empty() {
            return bad("wide_vs_deep needs at least one depth and one width".into());
        }
        if let Some(d) = self.depths.iter().find(|d| **d < 8 || (**d - 2) % 6 != 0) {
            return bad(format!(
                "depth {d} is not a CIFAR ResNet depth (6n+2, at least 8)"
            ));
        }
        if let Some((d, w)) = self
            .omit
            .iter()
            .find(|(d, w)| !self.depths.contains(d) || !self.widths.contains(w))
        {
            return bad(format!(
                "omit names ResNet-{d} x{w}, which is not in the grid (depths {:?}, widths {:?})",
                self.depths, self.widths
            ));
        }
        if self.cells().is_empty() {
            return bad("wide_vs_deep's omit leaves no model in the grid".into());
        }
        let mut sizes = self.train_counts();
        if sizes.contains(&0) {
            return bad("a training-set size of 0 images (train_count, other_train_counts)".into());
        }
        sizes.sort_unstable();
        if let Some(w) = sizes.windows(2).find(|w| w[0] == w[1]) {
            return bad(format!(
                "training-set size {} appears twice (train_count {}, other_train_counts {:?})",
                w[0], self.train_count, self.other_train_counts
            ));
        }
        let sizes = self.train_counts();
        if let Some((d, w, n)) = self
            .extra_seeds
            .iter()
            .find(|(d, w, n)| !self.cells().contains(&(*d, *w)) || !sizes.contains(n))
        {
            return bad(format!(
                "extra_seeds names ResNet-{d} x{w} on {n} images, which is not a model of the grid (cells {:?}, sizes {sizes:?})",
                self.cells()
            ));
        }
        if !(self.near_threshold_margin.is_finite() && self.near_threshold_margin >= 0.0) {
            return bad(format!(
                "near_threshold_margin must be a finite number of at least 0, got {}",
                self.near_threshold_margin
            ));
        }
        if self.images_per_epoch == Some(0) {
            return bad(
                "images_per_epoch of 0: an epoch needs images (leave it out for no repeats)".into(),
            );
        }
        if self.cka_batch > self.test_count || self.pc_examples > self.test_count {
            return bad(format!(
                "the CKA batch ({}) and the PC examples ({}) must fit in the {} test images",
                self.cka_batch, self.pc_examples, self.test_count
            ));
        }
        Ok(())
    }
}

impl WideVsDeepConfig {
    /// The grid's (depth, width) cells, depth down then width across, less `omit`.
    pub fn cells(&self) -> Vec<(usize, usize)> {
        self.depths
            .iter()
            .flat_map(|&d| self.widths.iter().map(move |&w| (d, w)))
            .filter(|cell| !self.omit.contains(cell))
            .collect()
    }
}

impl WideVsDeepConfig {
    /// Every training-set size: `train_count`, then `other_train_counts`.
    pub fn train_counts(&self) -> Vec<usize> {
        std::iter::once(self.train_count)
            .chain(self.other_train_counts.iter().copied())
            .collect()
    }

    /// Optimisation steps per epoch on `n` training images (the trainer's rule).
    pub fn steps_per_epoch(&self, n: usize) -> usize {
        repsim_train::trainer::steps_per_epoch(n, self.batch_size)
    }

    /// How many times each of `n` training images is seen per epoch: `images_per_epoch / n`
    /// (whole, at least 1) when `images_per_epoch` is set, else 1.
    pub fn repeats_at(&self, n: usize) -> usize {
        self.images_per_epoch
            .map_or(1, |per_epoch| (per_epoch / n.max(1)).max(1))
    }

    /// Training examples per epoch at `n` images: `n` times [`Self::repeats_at`].
    fn epoch_examples(&self, n: usize) -> usize {
        n * self.repeats_at(n)
    }

    /// (epochs, warm-up epochs) of a model trained on `n` images: `epochs` and `warmup_epochs`
    /// scaled by the steps per epoch at `train_count` over those at `n` (each counted over an
    /// epoch's examples, [`Self::repeats_at`]), so every training-set size gets about the same
    /// number of optimisation steps (rounded to whole epochs, at least one; a warm-up stays at
    /// least one epoch and shorter than the run). At `train_count`, the configured values.
    pub fn schedule_at(&self, n: usize) -> (usize, usize) {
        if n == self.train_count {
            return (self.epochs, self.warmup_epochs);
        }
        let ratio = self.steps_per_epoch(self.epoch_examples(self.train_count)) as f64
            / self.steps_per_epoch(self.epoch_examples(n)) as f64;
        let epochs = ((self.epochs as f64 * ratio).round() as usize).max(1);
        let warmup = if self.warmup_epochs == 0 {
            0
        } else {
            ((self.warmup_epochs as f64 * ratio).round() as usize)
                .clamp(1, epochs.saturating_sub(1).max(1))
        };
        (epochs, warmup)
    }

    /// Whether `model` is near the threshold of block structure: its verdict would change if
    /// its statistics moved by [`Self::near_threshold_margin`] (contrast and share) or its
    /// block by one layer. With block structure: some criterion is met by less than that. Without:
    /// every criterion it misses, it misses by at most that.
    pub fn near_threshold(&self, model: &ModelResult) -> bool {
        let margin = self.near_threshold_margin;
        // How far each criterion is met (negative: missed), in its own units.
        let slack = [
            (model.block_contrast - self.block_min_contrast, margin),
            (model.block_share - self.block_min_share, margin),
            (model.block.1 as f64 - self.block_min_layers as f64, 1.0),
        ];
        if model.block_structure {
            slack.iter().any(|(s, m)| *s < *m)
        } else {
            slack.iter().all(|(s, m)| *s >= -*m)
        }
    }

    /// The optimisation steps of a model trained on `n` images.
    pub fn steps_at(&self, n: usize) -> usize {
        self.schedule_at(n).0 * self.steps_per_epoch(self.epoch_examples(n))
    }
}

/// [`BlockTrend::against`]: the natural log of trainable parameters over training images.
pub const CAPACITY_PER_IMAGE: &str = "ln(parameters / training images)";
/// [`BlockTrend::against`]: 1 - the final training accuracy (last epoch, augmented images).
pub const TRAINING_ERROR: &str = "training error";

/// The default [`WideVsDeepConfig::near_threshold_margin`]: about the spread of block contrast
/// between two seeds of one architecture at this scale (0.29 and 0.37 for ResNet-20 x1 at 1,000
/// images, 0.44 and 0.32 for ResNet-38 x1 at 250).
pub const NEAR_THRESHOLD_MARGIN: f64 = 0.1;

fn near_threshold_margin() -> f64 {
    NEAR_THRESHOLD_MARGIN
}

fn is_default_margin(margin: &f64) -> bool {
    *margin == NEAR_THRESHOLD_MARGIN
}

fn capacity_per_image() -> String {
    CAPACITY_PER_IMAGE.into()
}

fn one_seed() -> usize {
    1
}

/// One model's measurements.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelResult {
    /// `resnet20x2`.
    pub name: String,
    /// Depth.
    pub depth: usize,
    /// Width multiplier.
    pub width: usize,
    /// Trainable parameters.
    pub parameters: usize,
    /// The training images it was trained on.
    pub train_images: usize,
    /// Its optimisation steps (epochs times steps per epoch).
    pub steps: usize,
    /// Final test accuracy.
    pub test_accuracy: f64,
    /// Final training accuracy.
    pub train_accuracy: f64,
    /// Minibatch CKA between every pair of its layers.
    pub within_cka: SimilarityMatrix,
    /// Debiased CKA on the PC examples, and the same with each layer's first PC removed.
    pub cka_pc_examples: SimilarityMatrix,
    /// CKA with each layer's first principal component removed.
    pub cka_first_pc_removed: SimilarityMatrix,
    /// Fraction of variance of each layer's first principal component.
    pub first_pc_fraction: Vec<f64>,
    /// The longest run of consecutive layers with pairwise CKA above the threshold: (first
    /// layer index, length).
    pub block: (usize, usize),
    /// The run's length over the number of layers.
    pub block_share: f64,
    /// Mean CKA inside the block (off the diagonal) minus mean CKA between the block's layers
    /// and the other layers: high for a block that stands apart, low for a smooth band.
    pub block_contrast: f64,
    /// Whether the block meets the config's share, length and contrast: block structure.
    pub block_structure: bool,
    /// The block share of the debiased CKA on the PC examples (the baseline of the next).
    pub block_share_pc_examples: f64,
    /// The block share with each layer's first PC removed (same examples and estimator).
    pub block_share_pc_removed: f64,
    /// The contrast of the longest block of the debiased CKA on the PC examples.
    pub block_contrast_pc_examples: f64,
    /// The contrast of the longest block with each layer's first PC removed (same examples).
    pub block_contrast_pc_removed: f64,
    /// Debiased CKA between the layers' first principal components alone (each layer's Gram
    /// reduced to `lambda_1 v_1 v_1^T`; Nguyen et al. 2021, Section 4: inside a block the first
    /// PCs match, so this map shows the block where the full one does).
    pub cka_first_pc_alone: SimilarityMatrix,
    /// The test images that load most on the first principal component of the block's middle
    /// layer: the "dominant datapoints" of Nguyen, Raghu & Kornblith 2022, *On the Origins of
    /// the Block Structure Phenomenon in Neural Network Representations* (TMLR).
    pub dominant_images: Option<DominantImages>,
}

/// The images a block's first principal component rests on: with `u` the component in example
/// space (unit length), image `i` carries `u_i^2` of it; a component spread evenly over the `n`
/// PC examples gives each `1 / n`, one driven by a few images gives those few most of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DominantImages {
    /// The layer: the middle of the model's longest block.
    pub layer: String,
    /// The examples the component was computed on (the PC examples).
    pub examples: usize,
    /// The images loading most, largest share first.
    pub images: Vec<DominantImage>,
    /// Their summed share of the component (`images.len() / examples` if it were even).
    pub top_share: f64,
}

/// One test image's share of a layer's first principal component.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DominantImage {
    /// Its index in the test split.
    pub index: usize,
    /// Its class.
    pub class: String,
    /// `u_i^2`.
    pub share: f64,
}

/// A cross-model comparison.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CrossResult {
    /// What is compared.
    pub label: String,
    /// Model of the rows.
    pub model_a: String,
    /// Model of the columns.
    pub model_b: String,
    /// Minibatch CKA, layers of A x layers of B.
    pub cka: SimilarityMatrix,
    /// Mean of the diagonal (corresponding layers), when A and B have the same layers.
    pub diagonal_mean: Option<f64>,
}

/// Per-class test accuracy of two models (Nguyen et al. 2021, Section 6: wide and deep models
/// of equal overall accuracy differ systematically on some classes).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PerClassResult {
    /// The wide model.
    pub wide: String,
    /// The deep model.
    pub deep: String,
    /// (class, test images, wide accuracy, deep accuracy), first seed.
    pub classes: Vec<(String, usize, f64, f64)>,
    /// Seeds of each model the gaps average over.
    #[serde(default)]
    pub seeds: usize,
    /// The two runs of one architecture whose per-class gap is the seed-to-seed baseline
    /// (`None` when the first seed of `second_seed` was not trained: it is not in the grid).
    #[serde(default)]
    pub baseline: Option<(String, String)>,
    /// Per class: the wide-minus-deep gap, its interval, and the seed-to-seed baseline.
    #[serde(default)]
    pub gaps: Vec<ClassGap>,
}

/// Resamples of a class's test images behind each per-class interval.
pub const CLASS_RESAMPLES: usize = 2000;

/// One class's accuracy gap between the wide and the deep model, with the gap between two
/// seeds of one architecture as the baseline (accuracies as fractions).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClassGap {
    /// The class.
    pub class: String,
    /// Wide minus deep accuracy, averaged over the seeds.
    pub gap: f64,
    /// Its 95% percentile bootstrap interval over the class's test images.
    pub interval: Option<Interval>,
    /// The first seed minus the second of the baseline architecture.
    pub seed_gap: Option<f64>,
    /// Its 95% bootstrap interval over the class's test images.
    pub seed_interval: Option<Interval>,
}

/// A number over the seeds of one architecture.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// Mean over seeds.
    pub mean: f64,
    /// Sample standard deviation over seeds (two or more).
    pub sd: Option<f64>,
}

/// One architecture of the grid over its seeds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArchitectureResult {
    /// `resnet38x2`.
    pub name: String,
    /// Its runs (`resnet38x2`, `resnet38x2-seed2`, ...).
    pub runs: Vec<String>,
    /// Test accuracy over the seeds.
    pub test_accuracy: Spread,
    /// Block share over the seeds.
    pub block_share: Spread,
    /// Block length (layers) over the seeds.
    pub block_layers: Spread,
    /// Block contrast over the seeds.
    pub block_contrast: Spread,
    /// In how many seeds the model shows block structure.
    pub with_block_structure: usize,
}

/// Everything the experiment measured (`results.json` adds the configs and provenance).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WideVsDeepAnalysis {
    /// Per grid model, first seed.
    pub models: Vec<ModelResult>,
    /// The other seeds' models (`resnet38x2-seed2`, ...).
    #[serde(default)]
    pub seed_models: Vec<ModelResult>,
    /// The grid at the other training-set sizes (`other_train_counts`), every seed.
    #[serde(default)]
    pub size_models: Vec<ModelResult>,
    /// Per architecture: its block structure over every seed trained (at `train_count`).
    #[serde(default)]
    pub architectures: Vec<ArchitectureResult>,
    /// Cross-model comparisons.
    pub cross: Vec<CrossResult>,
    /// Per-class test accuracy of the wide and the deep model of similar accuracy (the paper's
    /// Section 6).
    pub per_class: Option<PerClassResult>,
    /// Does block structure grow with capacity relative to the training set? One trend per
    /// block statistic against `ln(parameters / training images)`, over every trained model
    /// and seed.
    #[serde(default)]
    pub capacity_trend: Vec<BlockTrend>,
    /// Does block structure come with not fitting the training set? One trend per block
    /// statistic against the training error (1 - final training accuracy), over the same
    /// models: the lead of earlier runs at this scale (blocks in deep models far from fitting
    /// their data), tested as a hypothesis stated before the run.
    #[serde(default)]
    pub fit_trend: Vec<BlockTrend>,
}

/// Spearman's correlation between a property of the models (`against`) and a block statistic
/// over every trained model (every seed a point), with a bootstrap interval over the models and
/// a one-sided permutation p-value (H1: the statistic grows with the property).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BlockTrend {
    /// The block statistic: `block_contrast` or `block_share`.
    pub statistic: String,
    /// What it is correlated with: [`CAPACITY_PER_IMAGE`] or [`TRAINING_ERROR`].
    #[serde(default = "capacity_per_image")]
    pub against: String,
    /// Models (with their seeds) in the correlation.
    pub points: usize,
    /// Distinct training-set sizes among them (1: the trend is over capacity alone).
    pub training_set_sizes: Vec<usize>,
    /// Spearman's rho.
    pub spearman: f64,
    /// Its 95% percentile bootstrap interval (pairs resampled with replacement).
    pub interval: Option<Interval>,
    /// The one-sided permutation p-value ([`crate::statistics::permutation_spearman`]).
    pub p_value: f64,
    /// Orderings evaluated by the permutation test.
    pub permutations: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn omitted_cells_are_not_trained_and_must_be_in_the_grid() {
        let mut config = WideVsDeepConfig::for_scale(Scale::Default);
        assert_eq!(config.cells(), vec![(8, 1), (8, 2), (20, 1), (38, 1)]);
        assert!(config.validate().is_ok());
        config.omit = vec![(56, 4)];
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("ResNet-56 x4"), "{err}");
        config.omit = config.cells();
        config.omit.push((38, 2));
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("no model"), "{err}");
    }

    #[test]
    fn other_training_set_sizes_get_about_the_same_steps() {
        // The schedule of config files without repeats (images_per_epoch left out).
        let mut config = WideVsDeepConfig {
            images_per_epoch: None,
            epochs: 30,
            warmup_epochs: 2,
            other_train_counts: Vec::new(),
            ..WideVsDeepConfig::for_scale(Scale::Default)
        };
        // 1,000 images in batches of 64: 16 steps per epoch, 30 epochs, 2 of warm-up.
        assert_eq!(config.schedule_at(1000), (30, 2));
        // 250: 4 steps per epoch, so 4x the epochs (480 steps either way).
        assert_eq!(config.schedule_at(250), (120, 8));
        // 4,000: 63 steps per epoch; 30 x 16 / 63 = 7.6, so 8 epochs (504 steps), warm-up 1.
        assert_eq!(config.schedule_at(4000), (8, 1));
        // Fewer images than a batch: one step per epoch.
        assert_eq!(config.schedule_at(10), (480, 32));
        // 63 x 64 + 1 images: the trainer drops a last batch of one image, so still 63 steps.
        assert_eq!(config.steps_per_epoch(4033), 63);
        assert_eq!(config.steps_per_epoch(4034), 64);
        config.other_train_counts = vec![250, 4000];
        assert_eq!(config.train_counts(), vec![1000, 250, 4000]);
        assert!(config.validate().is_ok());
        config.other_train_counts = vec![250, 1000];
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("1000 appears twice"), "{err}");
        config.other_train_counts = vec![0];
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("size of 0"));
    }

    #[test]
    fn small_training_sets_are_repeated_to_epochs_of_the_same_length() {
        let config = WideVsDeepConfig::for_scale(Scale::Default);
        assert_eq!(config.images_per_epoch, Some(4000));
        // 250 images 16 times, 1,000 four times, 4,000 once: 63 steps per epoch at each size,
        // so the same 8 epochs (1 of warm-up) and 504 steps everywhere.
        for (n, repeats) in [(250, 16), (1000, 4), (4000, 1)] {
            assert_eq!(config.repeats_at(n), repeats, "N = {n}");
            assert_eq!(config.schedule_at(n), (8, 1), "N = {n}");
            assert_eq!(config.steps_at(n), 504, "N = {n}");
        }
        // A size that does not divide: 3,000 images once (47 steps per epoch), so 11 epochs
        // for about the same steps; more images than an epoch: no repeat, fewer epochs.
        assert_eq!(config.repeats_at(3000), 1);
        assert_eq!(config.schedule_at(3000), (11, 1));
        assert_eq!(config.repeats_at(16_000), 1);
        assert_eq!(config.schedule_at(16_000), (2, 1));
        // The training config carries the repeats; the images stay the first N.
        let args = crate::harness::ExperimentArgs::default();
        let training = super::super::train_config(&config, &args, (8, 1), 250, 0);
        assert_eq!(training.data.train_count, Some(250));
        assert_eq!(training.data.train_repeats, 16);
        assert_eq!(training.epochs, 8);
        let mut zero = config.clone();
        zero.images_per_epoch = Some(0);
        assert!(zero
            .validate()
            .unwrap_err()
            .to_string()
            .contains("images_per_epoch of 0"));
    }

    #[test]
    fn a_config_file_without_omit_keeps_the_whole_grid() {
        let mut json = serde_json::to_value(WideVsDeepConfig::for_scale(Scale::Smoke)).unwrap();
        json.as_object_mut().unwrap().remove("omit");
        let config: WideVsDeepConfig = serde_json::from_value(json).unwrap();
        assert_eq!(config.cells(), vec![(8, 1), (8, 2)]);
    }
}
