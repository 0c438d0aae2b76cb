//! `wide_vs_deep`: Nguyen, Raghu & Kornblith 2021, "Do Wide and Deep Networks Learn the Same
//! Things? Uncovering How Neural Network Representations Vary with Width and Depth" (ICLR).
//!
//! Trains a grid of CIFAR-layout ResNets over depth and width and measures:
//! - within-model minibatch CKA (unbiased HSIC per batch of 256, several shuffled passes over the
//!   test split: the paper's estimator) of every probed layer: the *block structure*, a large
//!   contiguous set of layers with very high similarity, appears when capacity is large relative
//!   to the training set;
//! - the fraction of variance explained by each layer's first principal component, and CKA with
//!   that component removed (the paper's Section 4: the block is the first PC);
//! - cross-model CKA: one architecture from two seeds, a wide vs a deep model, the smallest model
//!   vs the deepest and the widest;
//! - a block-structure number per model: the longest run of consecutive layers whose pairwise
//!   CKA all exceed a threshold (0.9), and its share of the layers.

use std::path::PathBuf;
use std::time::Instant;

use burn::tensor::Device;
use repsim_data::{ImageBatcher, ProbeSet};
use repsim_model::{AnyModel, ModelSpec, Probe, ResNetConfig};
use repsim_similarity::{
    cka_from_grams, first_component, HsicEstimator, MinibatchCka, SimilarityMatrix,
};
use repsim_train::datasets::RunData;
use repsim_train::{DataConfig, OptimizerConfig, ScheduleConfig, TrainConfig};
use repsim_viz::{
    save, GridPanel, Heatmap, HeatmapGrid, HeatmapOptions, LineColors, LinePlot, Series,
};
use serde::{Deserialize, Serialize};

use super::{
    derived_seed, layers_of, markdown_table, Context, ExperimentArgs, ExperimentError, Provenance,
    Result, Scale, TrainedRun,
};

/// The experiment's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WideVsDeepConfig {
    /// ResNet depths (6n+2), down the rows of the figures.
    pub depths: Vec<usize>,
    /// Width multipliers, across the columns.
    pub widths: Vec<usize>,
    /// The (depth, width) trained from a second seed for the seed-to-seed comparison.
    pub second_seed: (usize, usize),
    /// Image side (shapes; CIFAR is 32).
    pub side: usize,
    /// Training images.
    pub train_count: usize,
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
                second_seed: (8, 1),
                side: 16,
                train_count: 256,
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
            },
            Scale::Default => WideVsDeepConfig {
                depths: vec![8, 20, 38],
                widths: vec![1, 2],
                second_seed: (38, 2),
                side: 16,
                train_count: 1000,
                test_count: 1024,
                epochs: 30,
                batch_size: 64,
                lr: 0.05,
                warmup_epochs: 2,
                weight_decay: 5e-4,
                probe: "blocks".into(),
                cka_batch: 256,
                passes: 2,
                pc_examples: 512,
                block_threshold: 0.9,
                block_min_share: 0.25,
                block_min_layers: 4,
                block_min_contrast: 0.4,
            },
            Scale::Full => WideVsDeepConfig {
                depths: vec![20, 38, 56, 110],
                widths: vec![1, 2, 4, 8],
                second_seed: (110, 1),
                side: 32,
                train_count: 50_000,
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
            },
        }
    }

    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(ExperimentError::Input(m));
        if self.depths.is_empty() || self.widths.is_empty() {
            return bad("wide_vs_deep needs at least one depth and one width".into());
        }
        if let Some(d) = self.depths.iter().find(|d| **d < 8 || (**d - 2) % 6 != 0) {
            return bad(format!(
                "depth {d} is not a CIFAR ResNet depth (6n+2, at least 8)"
            ));
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

/// One model's measurements.
#[derive(Debug, Clone, Serialize)]
pub struct ModelResult {
    /// `resnet20x2`.
    pub name: String,
    /// Depth.
    pub depth: usize,
    /// Width multiplier.
    pub width: usize,
    /// Trainable parameters.
    pub parameters: usize,
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
    /// Whether the weights were reused from an earlier run.
    pub reused: bool,
}

/// A cross-model comparison.
#[derive(Debug, Clone, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
pub struct PerClassResult {
    /// The wide model.
    pub wide: String,
    /// The deep model.
    pub deep: String,
    /// (class, test images, wide accuracy, deep accuracy).
    pub classes: Vec<(String, usize, f64, f64)>,
}

/// Per-class test accuracy of two models on the whole probe split.
fn per_class_accuracy(
    probing: &Probing,
    images: &repsim_train::datasets::ImageData,
    (wide_name, wide): (&str, &AnyModel),
    (deep_name, deep): (&str, &AnyModel),
) -> Result<PerClassResult> {
    use burn::data::dataloader::batcher::Batcher;
    use burn::data::dataset::Dataset;
    let classes = images.classes.len();
    let (mut total, mut right_wide, mut right_deep) = (
        vec![0usize; classes],
        vec![0usize; classes],
        vec![0usize; classes],
    );
    let n = probing.test.len();
    for start in (0..n).step_by(256) {
        let items = probing
            .test
            .get_many((start..(start + 256).min(n)).collect())
            .map_err(|e| ExperimentError::Failure(format!("reading the test split: {e}")))?;
        let labels: Vec<usize> = items.iter().map(|i| i.label).collect();
        let batch = probing.batcher.batch(items, &probing.device);
        let predict = |model: &AnyModel| -> Result<Vec<i64>> {
            let (logits, _) = model.forward_images(batch.images.clone(), &Probe::None)?;
            logits
                .argmax(1)
                .try_into_vec_as::<i64>()
                .map_err(|e| ExperimentError::Failure(format!("reading predictions back: {e:?}")))
        };
        let (pw, pd) = (predict(wide)?, predict(deep)?);
        for (k, &label) in labels.iter().enumerate() {
            if label < classes {
                total[label] += 1;
                right_wide[label] += usize::from(pw[k] == label as i64);
                right_deep[label] += usize::from(pd[k] == label as i64);
            }
        }
    }
    let rate = |right: usize, all: usize| right as f64 / all.max(1) as f64;
    Ok(PerClassResult {
        wide: wide_name.to_string(),
        deep: deep_name.to_string(),
        classes: (0..classes)
            .map(|c| {
                (
                    images.classes[c].clone(),
                    total[c],
                    rate(right_wide[c], total[c]),
                    rate(right_deep[c], total[c]),
                )
            })
            .collect(),
    })
}

/// Everything the experiment measured, with its provenance.
#[derive(Debug, Clone, Serialize)]
pub struct WideVsDeepResults {
    /// The configuration.
    pub config: WideVsDeepConfig,
    /// The training configs of the models, by name.
    pub training: Vec<TrainConfig>,
    /// Per model.
    pub models: Vec<ModelResult>,
    /// Cross-model comparisons.
    pub cross: Vec<CrossResult>,
    /// Per-class test accuracy of the wide and the deep model of similar accuracy (the paper's
    /// Section 6).
    pub per_class: Option<PerClassResult>,
    /// How the results were made.
    pub provenance: Provenance,
}

fn train_config(
    c: &WideVsDeepConfig,
    data: &str,
    depth: usize,
    width: usize,
    seed: u64,
) -> TrainConfig {
    TrainConfig {
        model: ModelSpec::Resnet(ResNetConfig::cifar(depth, width, 10)),
        data: DataConfig {
            dataset: data.to_string(),
            side: c.side,
            train_count: Some(c.train_count),
            test_count: Some(c.test_count),
            random_labels: 0.0,
            augment: true,
            data_seed: 0,
            window: 64,
        },
        optimizer: OptimizerConfig::Sgd {
            momentum: 0.9,
            nesterov: false,
            weight_decay: c.weight_decay,
        },
        schedule: ScheduleConfig {
            warmup_epochs: c.warmup_epochs,
            ..ScheduleConfig::default()
        },
        lr: c.lr,
        epochs: c.epochs,
        batch_size: c.batch_size,
        seed,
    }
}

/// Mean of the block's off-diagonal values minus the mean between the block's layers and the
/// others (0 when the block spans every layer).
pub fn block_contrast(matrix: &SimilarityMatrix, (start, len): (usize, usize)) -> f64 {
    let n = matrix.rows.len();
    let inside_range = start..start + len;
    let (mut inside, mut outside) = (Vec::new(), Vec::new());
    for i in inside_range.clone() {
        for j in 0..n {
            match (i == j, inside_range.contains(&j), matrix.values[i][j]) {
                (true, _, _) | (_, _, None) => {}
                (false, true, Some(v)) => inside.push(v),
                (false, false, Some(v)) => outside.push(v),
            }
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    if inside.is_empty() || outside.is_empty() {
        return 0.0;
    }
    mean(&inside) - mean(&outside)
}

/// The longest run of consecutive layers whose pairwise values all exceed `threshold`, as
/// (first index, length); undefined cells break a run.
pub fn longest_block(matrix: &SimilarityMatrix, threshold: f64) -> (usize, usize) {
    let n = matrix.rows.len().min(matrix.cols.len());
    let above = |i: usize, j: usize| matrix.values[i][j].is_some_and(|v| v > threshold);
    let mut best = (0, n.min(1));
    for start in 0..n {
        let mut end = start + 1;
        while end < n && (start..end).all(|i| above(i, end) && above(end, i)) {
            end += 1;
        }
        if end - start > best.1 {
            best = (start, end - start);
        }
    }
    best
}

struct Probing<'a> {
    probe_set: ProbeSet,
    test: &'a repsim_train::datasets::FirstN<repsim_data::AnyImageDataset>,
    batcher: ImageBatcher,
    device: Device,
    probe: Probe,
}

impl Probing<'_> {
    /// Minibatch CKA of A's layers against B's (`b = None`: A against itself).
    fn minibatch_cka(&self, a: &AnyModel, b: Option<&AnyModel>) -> Result<SimilarityMatrix> {
        let mut cka = MinibatchCka::new();
        for batch in self.probe_set.iter(self.test, &self.batcher, &self.device) {
            let images = batch?.images;
            let layers_a = layers_of(a, images.clone(), &self.probe)?;
            match b {
                None => cka.update(&layers_a, &layers_a)?,
                Some(b) => cka.update(&layers_a, &layers_of(b, images, &self.probe)?)?,
            }
        }
        Ok(cka
            .finish()?
            .with_parameter("batch_size", self.probe_set.batches()[0].len()))
    }
}

/// CKA (unbiased HSIC) between every pair of Grams.
fn cka_of_grams(
    names: &[String],
    grams: &[burn::tensor::Tensor<2>],
    n: usize,
    metric: &str,
) -> SimilarityMatrix {
    let l = grams.len();
    let mut values = vec![None; l * l];
    for i in 0..l {
        for j in i..l {
            let v =
                cka_from_grams(grams[i].clone(), grams[j].clone(), HsicEstimator::Unbiased).ok();
            values[i * l + j] = v;
            values[j * l + i] = v;
        }
    }
    SimilarityMatrix::from_row_major(metric, names.to_vec(), names.to_vec(), values, n)
}

/// Runs the experiment; returns the path of `summary.md`.
pub fn run(args: &ExperimentArgs) -> Result<PathBuf> {
    let config = args.config_or(WideVsDeepConfig::for_scale(args.scale()))?;
    run_with(args, &config)
}

/// Runs the experiment with an explicit configuration.
pub fn run_with(args: &ExperimentArgs, config: &WideVsDeepConfig) -> Result<PathBuf> {
    config.validate()?;
    let ctx = Context::new(args, "wide_vs_deep")?;
    let scale = match &args.config {
        Some(path) => format!("config {}", path.display()),
        None => format!("{:?} scale", args.scale()),
    };
    println!(
        "wide_vs_deep ({scale}): ResNets of depths {:?} x widths {:?} on {} ({} train / {} test images, {} px), {} epochs",
        config.depths, config.widths, args.data, config.train_count, config.test_count, config.side, config.epochs
    );
    // Training (or reusing) every model of the grid, and the second seed.
    let train_started = Instant::now();
    let mut runs: Vec<TrainedRun> = Vec::new();
    let mut training = Vec::new();
    // A model's seed follows from its (depth, width), so it stays the same when the grid changes.
    for &depth in &config.depths {
        for &width in &config.widths {
            let seed = derived_seed(args.seed, (depth * 100 + width) as u64);
            let tc = train_config(config, &args.data, depth, width, seed);
            runs.push(ctx.train_or_reuse(&format!("resnet{depth}x{width}"), &tc)?);
            training.push(tc);
        }
    }
    let (sd, sw) = config.second_seed;
    let second = train_config(
        config,
        &args.data,
        sd,
        sw,
        derived_seed(args.seed, (100_000 + sd * 100 + sw) as u64),
    );
    let second_run = ctx.train_or_reuse(&format!("resnet{sd}x{sw}-seed2"), &second)?;
    training.push(second);
    let train_seconds = train_started.elapsed().as_secs_f64();

    // The probe set: the test split, normalised as in training.
    let data = RunData::open(&training[0].data, training[0].seed)?;
    let RunData::Images(images) = &data else {
        return Err(ExperimentError::Input(
            "wide_vs_deep needs an image dataset".into(),
        ));
    };
    let probing = Probing {
        probe_set: ProbeSet::new(
            config.test_count,
            config.cka_batch,
            config.passes,
            Some(args.seed),
        )?,
        test: &images.test,
        batcher: images.batcher,
        device: ctx.device.clone(),
        probe: config.probe.parse()?,
    };
    let pc_batch = ProbeSet::new(config.test_count, config.pc_examples, 1, None)?;

    let mut models = Vec::new();
    let mut loaded = Vec::new();
    for run in &runs {
        let started = Instant::now();
        let model = run.load(&ctx.device)?;
        let within = probing.minibatch_cka(&model, None)?;
        let batch = pc_batch
            .iter(probing.test, &probing.batcher, &probing.device)
            .next()
            .ok_or_else(|| ExperimentError::Failure("no PC batch".into()))??;
        let layers = layers_of(&model, batch.images, &probing.probe)?;
        let mut fractions = Vec::new();
        let (mut grams, mut removed) = (Vec::new(), Vec::new());
        for layer in &layers {
            match first_component(layer, 200) {
                Ok(pc) => {
                    fractions.push(pc.explained);
                    grams.push(pc.gram);
                    removed.push(pc.gram_without_first);
                }
                Err(e) => {
                    // A constant layer: its cells become undefined (null), the run goes on.
                    eprintln!("warning: {}: layer `{}`: {e}", run.name, layer.name);
                    let n = layer.num_examples();
                    let zeros = burn::tensor::Tensor::<2>::zeros([n, n], &ctx.device);
                    fractions.push(0.0);
                    grams.push(zeros.clone());
                    removed.push(zeros);
                }
            }
        }
        let names: Vec<String> = layers.iter().map(|l| l.name.clone()).collect();
        let n = config.pc_examples;
        let cka_pc = cka_of_grams(&names, &grams, n, "linear_cka_debiased");
        let cka_removed = cka_of_grams(&names, &removed, n, "linear_cka_debiased")
            .with_parameter("first_pc", "removed");
        let block = longest_block(&within, config.block_threshold);
        let contrast = block_contrast(&within, block);
        let block_before = longest_block(&cka_pc, config.block_threshold);
        let block_removed = longest_block(&cka_removed, config.block_threshold);
        let (depth, width) = match &run.config.model {
            ModelSpec::Resnet(c) => (c.depth, c.width),
            _ => (0, 0),
        };
        let l = names.len().max(1) as f64;
        let result = ModelResult {
            name: run.name.clone(),
            depth,
            width,
            parameters: model.num_params(),
            test_accuracy: run.last().test_accuracy,
            train_accuracy: run.last().train_accuracy,
            within_cka: within,
            cka_pc_examples: cka_pc,
            cka_first_pc_removed: cka_removed,
            first_pc_fraction: fractions,
            block,
            block_share: block.1 as f64 / l,
            block_contrast: contrast,
            block_structure: block.1 as f64 / l >= config.block_min_share
                && block.1 >= config.block_min_layers
                && contrast >= config.block_min_contrast,
            block_share_pc_examples: block_before.1 as f64 / l,
            block_share_pc_removed: block_removed.1 as f64 / l,
            reused: run.reused,
        };
        println!(
            "{}: test acc {:.1}%, block of {} / {} layers (share {:.2}, contrast {:.2}: {}; share {:.2} -> {:.2} with the first PC removed), analysed in {:.1} s",
            result.name,
            100.0 * result.test_accuracy,
            block.1,
            names.len(),
            result.block_share,
            result.block_contrast,
            if result.block_structure { "block structure" } else { "no block structure" },
            result.block_share_pc_examples,
            result.block_share_pc_removed,
            started.elapsed().as_secs_f64()
        );
        models.push(result);
        loaded.push(model);
    }

    // Cross-model comparisons.
    let index = |depth: usize, width: usize| {
        let i = config.depths.iter().position(|d| *d == depth)?;
        let j = config.widths.iter().position(|w| *w == width)?;
        Some(i * config.widths.len() + j)
    };
    let last = |v: &Vec<usize>| *v.last().expect("validated non-empty");
    let (d0, w0, dn, wn) = (
        config.depths[0],
        config.widths[0],
        last(&config.depths),
        last(&config.widths),
    );
    let mut cross = Vec::new();
    let mut compare = |label: &str, a: usize, b_model: &AnyModel, b_name: &str| -> Result<()> {
        let cka = probing.minibatch_cka(&loaded[a], Some(b_model))?;
        let diagonal_mean = (cka.rows == cka.cols).then(|| {
            let d: Vec<f64> = (0..cka.rows.len())
                .filter_map(|i| cka.values[i][i])
                .collect();
            d.iter().sum::<f64>() / d.len().max(1) as f64
        });
        println!(
            "{label}: minibatch CKA computed ({} x {} layers)",
            cka.rows.len(),
            cka.cols.len()
        );
        cross.push(CrossResult {
            label: label.to_string(),
            model_a: models[a].name.clone(),
            model_b: b_name.to_string(),
            cka,
            diagonal_mean,
        });
        Ok(())
    };
    if let Some(a) = index(sd, sw) {
        let model_b = second_run.load(&ctx.device)?;
        compare(
            "same architecture, two seeds",
            a,
            &model_b,
            &second_run.name,
        )?;
    }
    // Wide vs deep of similar accuracy: among pairs of a wider-and-shallower model and a
    // narrower-and-deeper one, the pair whose test accuracies are closest.
    let wide_deep = (0..models.len())
        .flat_map(|w| (0..models.len()).map(move |d| (w, d)))
        .filter(|&(w, d)| models[w].width > models[d].width && models[w].depth < models[d].depth)
        .min_by(|a, b| {
            let gap =
                |(w, d): (usize, usize)| (models[w].test_accuracy - models[d].test_accuracy).abs();
            gap(*a).total_cmp(&gap(*b))
        });
    let mut per_class = None;
    if let Some((wide, deep)) = wide_deep {
        compare(
            "wide vs deep",
            wide,
            &loaded[deep],
            &models[deep].name.clone(),
        )?;
        per_class = Some(per_class_accuracy(
            &probing,
            images,
            (&models[wide].name, &loaded[wide]),
            (&models[deep].name, &loaded[deep]),
        )?);
    }
    if let Some(small) = index(d0, w0) {
        for (label, other) in [
            ("smallest vs deepest", index(dn, w0)),
            ("smallest vs widest", index(d0, wn)),
        ] {
            if let Some(other) = other.filter(|o| *o != small) {
                compare(label, small, &loaded[other], &models[other].name.clone())?;
            }
        }
    }

    // Figures.
    let figures = draw(&ctx, config, &models, &cross)?;
    let results = WideVsDeepResults {
        config: config.clone(),
        training,
        models,
        cross,
        per_class,
        provenance: ctx.provenance(
            train_seconds,
            runs.iter()
                .chain([&second_run])
                .map(TrainedRun::training_seconds)
                .sum(),
        ),
    };
    ctx.write_json("results.json", &results)?;
    let summary = summary(&results, &figures);
    let path = ctx.write_text("summary.md", &summary)?;
    println!(
        "wall time: {:.0} s (training {:.0} s)",
        ctx.elapsed(),
        train_seconds
    );
    Ok(path)
}

fn grid<'a>(
    config: &WideVsDeepConfig,
    panels: Vec<Option<GridPanel<'a>>>,
    title: &str,
) -> HeatmapGrid<'a> {
    let mut grid = HeatmapGrid::new(panels, config.depths.len(), config.widths.len());
    grid.row_headers = config.depths.iter().map(|d| format!("depth {d}")).collect();
    grid.col_headers = config
        .widths
        .iter()
        .map(|w| format!("width x{w}"))
        .collect();
    grid.title = Some(title.to_string());
    grid.origin_lower = true;
    grid.row_title = Some("layer".into());
    grid.col_title = Some("layer".into());
    grid
}

fn draw(
    ctx: &Context,
    config: &WideVsDeepConfig,
    models: &[ModelResult],
    cross: &[CrossResult],
) -> Result<Vec<(String, String)>> {
    let mut figures = Vec::new();
    let caption = |m: &ModelResult| {
        Some(format!(
            "{:.0}% · block {}/{} · contrast {:.2}",
            100.0 * m.test_accuracy,
            m.block.1,
            m.within_cka.rows.len(),
            m.block_contrast
        ))
    };
    let panels = models
        .iter()
        .map(|m| {
            Some(GridPanel {
                matrix: &m.within_cka,
                caption: caption(m),
            })
        })
        .collect();
    save(
        &grid(config, panels, "Minibatch CKA within each model"),
        &ctx.out.join("within_cka.png"),
    )?;
    figures.push(("within_cka.png".into(), "Minibatch CKA between every pair of layers of each model (depth down, width across), as in Nguyen et al. 2021, Fig. 1. Captions: test accuracy and the longest block of layers with pairwise CKA above the threshold.".into()));
    let panels = models
        .iter()
        .map(|m| {
            Some(GridPanel {
                matrix: &m.cka_first_pc_removed,
                caption: Some(format!(
                    "block {}/{}",
                    (m.block_share_pc_removed * m.within_cka.rows.len() as f64).round(),
                    m.within_cka.rows.len()
                )),
            })
        })
        .collect();
    save(
        &grid(
            config,
            panels,
            "CKA with each layer's first principal component removed",
        ),
        &ctx.out.join("within_cka_first_pc_removed.png"),
    )?;
    figures.push(("within_cka_first_pc_removed.png".into(), "Debiased CKA with each layer's first principal component projected out (Nguyen et al. 2021, Section 4).".into()));
    let series = models
        .iter()
        .map(|m| {
            let l = (m.first_pc_fraction.len().max(2) - 1) as f64;
            Series {
                name: m.name.clone(),
                points: m
                    .first_pc_fraction
                    .iter()
                    .enumerate()
                    .map(|(i, f)| (i as f64 / l, *f))
                    .collect(),
                band: None,
            }
        })
        .collect();
    let mut plot = LinePlot::new(
        series,
        "Variance explained by each layer's first principal component",
        "relative depth (layer index / last layer)",
        "fraction of variance",
    );
    plot.colors = LineColors::Legend;
    plot.y_range = Some((0.0, 1.0));
    save(&plot, &ctx.out.join("first_pc_fraction.png"))?;
    figures.push((
        "first_pc_fraction.png".into(),
        "The share of each layer's variance on its first principal component, per model.".into(),
    ));
    for c in cross {
        let file = format!("cross_{}.png", c.label.replace([' ', ','], "_"));
        let options = HeatmapOptions {
            title: Some(format!("{}: {} vs {}", c.label, c.model_a, c.model_b)),
            row_title: Some(c.model_a.clone()),
            col_title: Some(c.model_b.clone()),
            origin_lower: true,
            ..HeatmapOptions::default()
        };
        save(&Heatmap::new(&c.cka, options), &ctx.out.join(&file))?;
        figures.push((file, format!("Minibatch CKA across models: {}.", c.label)));
    }
    Ok(figures)
}

fn summary(r: &WideVsDeepResults, figures: &[(String, String)]) -> String {
    let c = &r.config;
    let p = &r.provenance;
    let mut s = format!(
        "# wide_vs_deep\n\nNguyen, Raghu & Kornblith 2021, *Do Wide and Deep Networks Learn the Same Things?*\n\n\
         CIFAR-layout ResNets of depths {:?} and widths {:?}, trained on `{}` ({} training / {} test images, {} px) \
         for {} epochs (SGD, momentum 0.9, weight decay {}, peak lr {} after {} epochs of linear warm-up, cosine, batch {}). \
         Within-model similarity is minibatch CKA (unbiased HSIC per batch of {}, {} shuffled passes over the {} test images). \
         Device: {}. Wall time of this run {:.0} s (training {:.0} s, analysis {:.0} s); the models' own training time, \
         summed from their metrics, {:.0} s.\n\n",
        c.depths, c.widths, p.data, c.train_count, c.test_count, c.side, c.epochs, c.weight_decay, c.lr, c.warmup_epochs, c.batch_size,
        c.cka_batch, c.passes, c.test_count, p.device, p.train_seconds + p.analysis_seconds, p.train_seconds, p.analysis_seconds,
        p.models_training_seconds
    );
    s.push_str(&format!(
        "**Block-structure number**: the *block* is the longest run of consecutive probed layers whose pairwise CKA all exceed {}; \
         its *share* is its length over the model's layers, and its *contrast* the mean CKA inside it minus the mean CKA between its \
         layers and the others. Adjacent residual-block outputs are often similar, so a short run is expected everywhere, and a deep \
         narrow network can show a long smooth band of similar layers that does not stand apart; a model is counted as showing \
         **block structure** when its block holds at least {:.0}% of the layers and {} layers, with a contrast of at least {}.\n\n",
        c.block_threshold, 100.0 * c.block_min_share, c.block_min_layers, c.block_min_contrast
    ));
    let rows: Vec<Vec<String>> = r
        .models
        .iter()
        .map(|m| {
            let inside: Vec<f64> = m.first_pc_fraction[m.block.0..m.block.0 + m.block.1].to_vec();
            let outside: Vec<f64> = m
                .first_pc_fraction
                .iter()
                .enumerate()
                .filter(|(i, _)| *i < m.block.0 || *i >= m.block.0 + m.block.1)
                .map(|(_, v)| *v)
                .collect();
            let mean = |v: &[f64]| {
                if v.is_empty() {
                    "-".to_string()
                } else {
                    format!("{:.2}", v.iter().sum::<f64>() / v.len() as f64)
                }
            };
            vec![
                m.name.clone(),
                format!("{}", m.parameters),
                format!("{:.1}%", 100.0 * m.test_accuracy),
                format!("{:.1}%", 100.0 * m.train_accuracy),
                format!(
                    "{} of {} ({}..{})",
                    m.block.1,
                    m.within_cka.rows.len(),
                    m.within_cka.rows[m.block.0],
                    m.within_cka.rows[m.block.0 + m.block.1 - 1]
                ),
                format!("{:.2}", m.block_share),
                format!("{:.2}", m.block_contrast),
                (if m.block_structure { "yes" } else { "no" }).to_string(),
                format!(
                    "{:.2} -> {:.2}",
                    m.block_share_pc_examples, m.block_share_pc_removed
                ),
                mean(&inside),
                mean(&outside),
            ]
        })
        .collect();
    s.push_str(&markdown_table(
        &[
            "model",
            "parameters",
            "test acc",
            "train acc",
            "block (layers)",
            "share",
            "contrast",
            "block structure",
            "share, 1st PC removed (debiased CKA, PC examples)",
            "1st-PC variance in block",
            "outside",
        ],
        &rows,
    ));
    s.push('\n');
    for c in &r.cross {
        s.push_str(&format!(
            "- {}: {} vs {}{}\n",
            c.label,
            c.model_a,
            c.model_b,
            c.diagonal_mean.map_or(String::new(), |d| format!(
                ", mean CKA of corresponding layers {d:.3}"
            ))
        ));
    }
    s.push('\n');
    if let Some(pc) = &r.per_class {
        s.push_str(&format!(
            "**Per class** (the paper's Section 6), {} (wide) vs {} (deep), the pair of a wider-shallower and a narrower-deeper model \
             with the closest test accuracy. With one seed each and about a hundred test images per class, differences under about \
             10 points are within noise; the paper averages many seeds.\n\n",
            pc.wide, pc.deep
        ));
        let rows: Vec<Vec<String>> = pc
            .classes
            .iter()
            .map(|(name, n, w, d)| {
                vec![
                    name.clone(),
                    n.to_string(),
                    format!("{:.1}%", 100.0 * w),
                    format!("{:.1}%", 100.0 * d),
                    format!("{:+.1}", 100.0 * (w - d)),
                ]
            })
            .collect();
        s.push_str(&markdown_table(
            &[
                "class",
                "test images",
                "wide",
                "deep",
                "wide - deep (points)",
            ],
            &rows,
        ));
        s.push('\n');
    }
    for (file, caption) in figures {
        s.push_str(&format!("![{file}]({file})\n\n*{caption}*\n\n"));
    }
    let reused = r.models.iter().filter(|m| m.reused).count();
    s.push_str(&format!(
        "Reproduce: `cargo run --example wide_vs_deep -- --seed {}{}` (weights reused from `runs/` when the config is unchanged; {} of {} models were reused in this run). Configs and seeds: `results.json`.\n",
        p.seed,
        match p.scale { Scale::Smoke => " --smoke", Scale::Full => " --full", Scale::Default => "" },
        reused,
        r.models.len()
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_block_is_found() {
        let names: Vec<String> = (0..5).map(|i| format!("l{i}")).collect();
        let v = |i: usize, j: usize| {
            if i == j || (1..4).contains(&i) && (1..4).contains(&j) {
                0.95
            } else {
                0.5
            }
        };
        let values = (0..25).map(|k| Some(v(k / 5, k % 5))).collect();
        let m = SimilarityMatrix::from_row_major("x", names.clone(), names, values, 10);
        assert_eq!(longest_block(&m, 0.9), (1, 3));
        // Inside: 0.95 (6 off-diagonal cells); with the other two layers: 0.5.
        assert!((block_contrast(&m, (1, 3)) - 0.45).abs() < 1e-12);
        assert_eq!(block_contrast(&m, (0, 5)), 0.0);
    }
}
