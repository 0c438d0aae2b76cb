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
//!   CKA all exceed a threshold (0.9), and its share of the layers;
//! - the grid again at other training-set sizes N from the same initialisation (the paper's
//!   capacity *relative to the data*), every size for about the same steps, a small set repeated
//!   to epochs of the usual length ([`WideVsDeepConfig::images_per_epoch`]);
//! - the trends over every model, size and seed: Spearman's correlation of block contrast and
//!   share with ln(parameters / N) and with the training error, each with a bootstrap interval,
//!   a one-sided permutation p-value and Holm's correction over the four tests.

mod report;
mod results;

use results::CLASS_RESAMPLES;
pub use results::{
    ArchitectureResult, BlockTrend, ClassGap, CrossResult, DominantImage, DominantImages,
    ModelResult, PerClassResult, Spread, WideVsDeepAnalysis, WideVsDeepConfig, CAPACITY_PER_IMAGE,
    TRAINING_ERROR,
};

use std::path::PathBuf;
use std::time::Instant;

use burn::tensor::Device;
use repsim_data::{ImageBatcher, ProbeSet};
use repsim_model::{AnyModel, ModelSpec, Probe, ResNetConfig};
use repsim_similarity::{
    cka_from_grams, first_component, HsicEstimator, Measure, SimilarityMatrix,
};
use repsim_train::datasets::RunData;
use repsim_train::{OptimizerConfig, ScheduleConfig, TrainConfig};

use repsim_train::probing::{comparison_pass, LayersOf};

use super::harness::{
    derived_seed, image_data, layers_fn, layers_of, probe_batches, AnalysisPart, Context,
    Experiment, ExperimentArgs, Figure, Provenance, Scale, TrainedRun, Training,
};
use crate::analysis::{block_contrast, longest_block};
use crate::error::{Error, Result};
use crate::statistics::{bootstrap_mean, bootstrap_spearman, mean_sd, permutation_spearman};

/// The test split's labels and each model's predicted class per image, in one pass.
fn test_predictions(
    probing: &Probing,
    models: &[&AnyModel],
) -> Result<(Vec<usize>, Vec<Vec<i64>>)> {
    use burn::data::dataloader::batcher::Batcher;
    use burn::data::dataset::Dataset;
    let n = probing.test.len();
    let mut labels = Vec::with_capacity(n);
    let mut predictions = vec![Vec::with_capacity(n); models.len()];
    for start in (0..n).step_by(256) {
        let items = probing
            .test
            .get_many((start..(start + 256).min(n)).collect())
            .map_err(|e| Error::Failure(format!("reading the test split: {e}")))?;
        labels.extend(items.iter().map(|i| i.label));
        let batch = probing.batcher.batch(items, &probing.device);
        for (model, predicted) in models.iter().zip(&mut predictions) {
            let (logits, _) = model.forward_images(batch.images.clone(), &Probe::None)?;
            predicted.extend(
                logits
                    .argmax(1)
                    .try_into_vec_as::<i64>()
                    .map_err(|e| Error::Failure(format!("reading predictions back: {e:?}")))?,
            );
        }
    }
    Ok((labels, predictions))
}

/// Per-class accuracies of the wide and the deep model (first seed), their gap averaged over
/// the seeds with a bootstrap interval over each class's test images, and the gap between two
/// seeds of one architecture as the baseline. `predictions`: wide seeds, then deep seeds (as
/// many), then the baseline's two runs when there is one.
fn per_class_result(
    images: &repsim_train::datasets::ImageData,
    labels: &[usize],
    predictions: &[Vec<i64>],
    names: (&str, &str),
    baseline: Option<(String, String)>,
    seed: u64,
) -> PerClassResult {
    let classes = images.classes.len();
    let seeds = (predictions.len() - if baseline.is_some() { 2 } else { 0 }) / 2;
    let (wide, rest) = predictions.split_at(seeds);
    let (deep, pair) = rest.split_at(seeds);
    let right = |p: &[i64], i: usize| f64::from(u8::from(p[i] == labels[i] as i64));
    let mut rows = Vec::new();
    let mut gaps = Vec::new();
    for c in 0..classes {
        let members: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == c).collect();
        let rate = |p: &[i64]| {
            members.iter().map(|&i| right(p, i)).sum::<f64>() / members.len().max(1) as f64
        };
        rows.push((
            images.classes[c].clone(),
            members.len(),
            rate(&wide[0]),
            rate(&deep[0]),
        ));
        // Per image: wide minus deep right, averaged over the seeds.
        let per_image: Vec<f64> = members
            .iter()
            .map(|&i| {
                (0..seeds)
                    .map(|k| right(&wide[k], i) - right(&deep[k], i))
                    .sum::<f64>()
                    / seeds as f64
            })
            .collect();
        let seed_per_image: Option<Vec<f64>> = (pair.len() == 2).then(|| {
            members
                .iter()
                .map(|&i| right(&pair[0], i) - right(&pair[1], i))
                .collect()
        });
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let class_seed = derived_seed(seed, c as u64);
        gaps.push(ClassGap {
            class: images.classes[c].clone(),
            gap: mean(&per_image),
            interval: bootstrap_mean(&per_image, CLASS_RESAMPLES, 0.95, class_seed),
            seed_gap: seed_per_image.as_deref().map(mean),
            seed_interval: seed_per_image.as_deref().and_then(|v| {
                bootstrap_mean(v, CLASS_RESAMPLES, 0.95, class_seed.wrapping_add(1 << 32))
            }),
        });
    }
    PerClassResult {
        wide: names.0.to_string(),
        deep: names.1.to_string(),
        classes: rows,
        seeds,
        baseline,
        gaps,
    }
}

/// The training of the grid model `depth` x `width` on `train_count` images: the schedule of
/// [`WideVsDeepConfig::schedule_at`].
fn train_config(
    c: &WideVsDeepConfig,
    args: &ExperimentArgs,
    (depth, width): (usize, usize),
    train_count: usize,
    seed: u64,
) -> TrainConfig {
    let (epochs, warmup_epochs) = c.schedule_at(train_count);
    TrainConfig {
        model: ModelSpec::Resnet(ResNetConfig::cifar(depth, width, 10)),
        data: repsim_train::DataConfig {
            train_repeats: c.repeats_at(train_count),
            ..image_data(args, c.side, train_count, c.test_count)
        },
        optimizer: OptimizerConfig::Sgd {
            momentum: 0.9,
            nesterov: false,
            weight_decay: c.weight_decay,
        },
        schedule: ScheduleConfig {
            warmup_epochs,
            ..ScheduleConfig::default()
        },
        lr: c.lr,
        epochs,
        batch_size: c.batch_size,
        seed,
    }
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
        let batches = probe_batches(&self.probe_set, self.test, &self.batcher, &self.device);
        let mut first = layers_fn(a, &self.probe);
        let mut second = b.map(|b| layers_fn(b, &self.probe));
        let mut others: Vec<&mut LayersOf> = second
            .as_mut()
            .map(|f| f as &mut LayersOf)
            .into_iter()
            .collect();
        let batch_size = self.probe_set.batches()[0].len();
        let mut results = comparison_pass(
            batches,
            &mut first,
            &mut others,
            &[Measure::minibatch_cka(batch_size)],
            repsim_similarity::ShortLastBatch::LeaveOut,
        )?;
        Ok(results.remove(0).matrices.remove(0))
    }
}

/// Linear CKA (unbiased HSIC) between every pair of linear Grams.
fn cka_of_grams(names: &[String], grams: &[burn::tensor::Tensor<2>], n: usize) -> SimilarityMatrix {
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
    SimilarityMatrix::from_row_major(
        Measure::LINEAR_CKA_DEBIASED,
        names.to_vec(),
        names.to_vec(),
        values,
        n,
    )
}

/// The experiment; see the module docs.
pub type WideVsDeep = WideVsDeepConfig;

/// Runs the experiment with its configuration from `args`; returns the path of `summary.md`.
pub fn run(args: &ExperimentArgs) -> Result<PathBuf> {
    super::cells::run::<WideVsDeep>(args)
}

/// The name of the grid model of `depth` x `width` from seed index `s` (0: `resnet20x2`,
/// then `resnet20x2-seed2`, ...), at `train_count`; at another training-set size N, with
/// `-nN` after the architecture (`resnet20x2-n250`, `resnet20x2-n250-seed2`).
fn model_name(
    config: &WideVsDeepConfig,
    (depth, width): (usize, usize),
    n: usize,
    s: usize,
) -> String {
    let size = if n == config.train_count {
        String::new()
    } else {
        format!("-n{n}")
    };
    if s == 0 {
        format!("resnet{depth}x{width}{size}")
    } else {
        format!("resnet{depth}x{width}{size}-seed{}", s + 1)
    }
}

/// The grid model of `depth` x `width` from seed index `s`, trained on `n` images. Its seed
/// follows from (depth, width, s) alone, so it stays the same when the grid or the number of
/// seeds changes, and a model starts from the same initialisation at every training-set size.
fn grid_training(
    config: &WideVsDeepConfig,
    args: &ExperimentArgs,
    cell: (usize, usize),
    n: usize,
    s: usize,
) -> Training {
    let (depth, width) = cell;
    let seed = derived_seed(args.seed, (100_000 * s + depth * 100 + width) as u64);
    Training::new(
        model_name(config, cell, n, s),
        train_config(config, args, cell, n, seed),
    )
}

/// Whether `training` is of the grid at `config.train_count` (the cross-model comparisons'
/// and the per-class accuracies' models).
fn at_main_size(config: &WideVsDeepConfig, training: &TrainConfig) -> bool {
    training.data.train_count == Some(config.train_count)
}

impl Experiment for WideVsDeepConfig {
    const NAME: &'static str = "wide_vs_deep";
    type Analysis = WideVsDeepAnalysis;

    fn for_scale(scale: Scale) -> Self {
        WideVsDeepConfig::for_scale(scale)
    }

    fn check(&self, _args: &ExperimentArgs) -> Result<()> {
        let config = self;
        config.validate()
    }

    fn headline(&self, args: &ExperimentArgs) -> String {
        let config = self;
        let scale = match &args.config {
            Some(path) => format!("config {}", path.display()),
            None => format!("{:?} scale", args.scale()),
        };
        let sizes = if config.other_train_counts.is_empty() {
            String::new()
        } else {
            format!(
                "; again on {:?} training images for about as many steps{}",
                config.other_train_counts,
                match config.images_per_epoch {
                    Some(e) => format!(", every epoch {e} images (a small set repeated)"),
                    None => String::new(),
                }
            )
        };
        format!(
            "wide_vs_deep ({scale}): ResNets of depths {:?} x widths {:?} on {} ({} train / {} test images, {} px), {} epochs{sizes}",
            config.depths, config.widths, args.data, config.train_count, config.test_count, config.side, config.epochs
        )
    }

    /// The grid (depth down, width across) from each seed in turn; with one seed, then the
    /// second seed of `second_seed` (the seed-to-seed comparison); then the grid at each other
    /// training-set size, from each seed; then the second seeds of `extra_seeds`.
    fn trainings(&self, args: &ExperimentArgs) -> Result<Vec<Training>> {
        let config = self;
        let mut trainings = Vec::new();
        let n = config.train_count;
        for s in 0..config.seeds {
            for cell in config.cells() {
                trainings.push(grid_training(config, args, cell, n, s));
            }
        }
        if config.seeds == 1 {
            trainings.push(grid_training(config, args, config.second_seed, n, 1));
        }
        for &n in &config.other_train_counts {
            for s in 0..config.seeds {
                for cell in config.cells() {
                    trainings.push(grid_training(config, args, cell, n, s));
                }
            }
        }
        for &(depth, width, n) in &config.extra_seeds {
            let extra = grid_training(config, args, (depth, width), n, 1);
            if !trainings.iter().any(|t| t.name == extra.name) {
                trainings.push(extra);
            }
        }
        Ok(trainings)
    }

    fn set_seeds(&mut self, seeds: usize) -> Result<()> {
        let config = self;
        config.seeds = seeds;
        Ok(())
    }

    fn analyse(&self, ctx: &Context, runs: &[TrainedRun]) -> Result<WideVsDeepAnalysis> {
        let config = self;
        let models = runs
            .iter()
            .map(|run| model_part(ctx, config, run))
            .collect::<Result<Vec<_>>>()?;
        // The cross part picks the models at the main size itself.
        Ok(assemble(config, models, cross_part(ctx, config, runs)?))
    }

    /// One part per trained model (its within-model CKA, first PC, block structure), and one
    /// for the cross-model comparisons, which needs every model.
    fn analysis_parts(&self, trainings: &[Training]) -> Vec<AnalysisPart> {
        let config = self;
        let mut parts: Vec<AnalysisPart> = trainings
            .iter()
            .map(|t| AnalysisPart {
                name: t.name.clone(),
                needs: vec![t.name.clone()],
            })
            .collect();
        parts.push(AnalysisPart {
            name: CROSS_PART.into(),
            needs: trainings
                .iter()
                .filter(|t| at_main_size(config, &t.config))
                .map(|t| t.name.clone())
                .collect(),
        });
        parts
    }

    fn analyse_part(
        &self,
        ctx: &Context,
        part: &str,
        runs: &[TrainedRun],
    ) -> Result<serde_json::Value> {
        let config = self;
        let value = if part == CROSS_PART {
            serde_json::to_value(cross_part(ctx, config, runs)?)
        } else {
            let run = runs
                .first()
                .ok_or_else(|| Error::Failure(format!("analysis part {part}: no model")))?;
            serde_json::to_value(model_part(ctx, config, run)?)
        };
        value.map_err(|e| Error::Failure(format!("analysis part {part} as JSON: {e}")))
    }

    fn combine(
        &self,
        _runs: &[TrainedRun],
        mut parts: Vec<serde_json::Value>,
    ) -> Result<WideVsDeepAnalysis> {
        let config = self;
        let invalid = |e: serde_json::Error| {
            Error::Failure(format!("wide_vs_deep: an analysis part is not one: {e}"))
        };
        let cross = parts
            .pop()
            .ok_or_else(|| Error::Failure("wide_vs_deep: no analysis part".into()))?;
        let cross: CrossPart = serde_json::from_value(cross).map_err(invalid)?;
        let models = parts
            .into_iter()
            .map(|p| serde_json::from_value::<ModelResult>(p).map_err(invalid))
            .collect::<Result<Vec<_>>>()?;
        Ok(assemble(config, models, cross))
    }

    fn figures(&self, ctx: &Context, analysis: &WideVsDeepAnalysis) -> Result<Vec<Figure>> {
        let config = self;
        report::write_near_threshold_config(ctx, config, analysis)?;
        report::draw(
            ctx,
            config,
            &analysis.models,
            &analysis.size_models,
            &analysis.cross,
        )
    }

    fn summary(
        &self,
        analysis: &WideVsDeepAnalysis,
        provenance: &Provenance,
        figures: &[Figure],
    ) -> String {
        let config = self;
        report::summary(config, analysis, provenance, figures)
    }

    fn reproduce_note(_analysis: &WideVsDeepAnalysis) -> String {
        " (weights reused from `runs/` when the config is unchanged: which were is in `results.json`'s provenance)".into()
    }
}

/// The probe set of the analysis: the test split, normalised as in training (every part opens
/// it the same way, so the parts see the same batches).
fn open_data(runs: &[TrainedRun]) -> Result<RunData> {
    let first = runs
        .first()
        .ok_or_else(|| Error::Failure("wide_vs_deep trained no models".into()))?;
    RunData::open(&first.config.data, first.config.seed).map_err(Error::from)
}

fn probing<'a>(
    ctx: &Context,
    config: &WideVsDeepConfig,
    data: &'a RunData,
) -> Result<(Probing<'a>, &'a repsim_train::datasets::ImageData)> {
    let RunData::Images(images) = data else {
        return Err(Error::Input("wide_vs_deep needs an image dataset".into()));
    };
    Ok((
        Probing {
            probe_set: ProbeSet::new(
                config.test_count,
                config.cka_batch,
                config.passes,
                Some(ctx.args.seed),
            )?,
            test: &images.test,
            batcher: images.batcher,
            device: ctx.device.clone(),
            probe: config.probe.parse()?,
        },
        images,
    ))
}

/// The analysis part of one grid model: its within-model CKA, first PC and block structure.
fn model_part(ctx: &Context, config: &WideVsDeepConfig, run: &TrainedRun) -> Result<ModelResult> {
    let data = open_data(std::slice::from_ref(run))?;
    let (probing, _) = probing(ctx, config, &data)?;
    let pc_batch = ProbeSet::new(config.test_count, config.pc_examples, 1, None)?;
    let started = Instant::now();
    let model = run.load(&ctx.device)?;
    let result = measure_model(ctx, config, &probing, &pc_batch, run, &model)?;
    log::info!(
        "{}: test acc {:.1}%, block of {} / {} layers (share {:.2}, contrast {:.2}: {}; share {:.2} -> {:.2} with the first PC removed), analysed in {:.1} s",
        result.name,
        100.0 * result.test_accuracy,
        result.block.1,
        result.within_cka.rows.len(),
        result.block_share,
        result.block_contrast,
        if result.block_structure { "block structure" } else { "no block structure" },
        result.block_share_pc_examples,
        result.block_share_pc_removed,
        started.elapsed().as_secs_f64()
    );
    Ok(result)
}

/// The cross-model part: its comparisons and the per-class accuracies.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct CrossPart {
    cross: Vec<CrossResult>,
    per_class: Option<PerClassResult>,
}

/// The analysis from every trained model's part (grid order, seed by seed) and the cross part:
/// the first seed's grid, the other seeds' models, and each architecture over its seeds.
fn assemble(
    config: &WideVsDeepConfig,
    all: Vec<ModelResult>,
    CrossPart { cross, per_class }: CrossPart,
) -> WideVsDeepAnalysis {
    let (main, size_models): (Vec<ModelResult>, Vec<ModelResult>) = all
        .into_iter()
        .partition(|m| m.train_images == config.train_count);
    let (models, seed_models): (Vec<ModelResult>, Vec<ModelResult>) =
        main.into_iter().partition(|m| !m.name.contains("-seed"));
    let mut architectures = Vec::new();
    for &depth in &config.depths {
        for &width in &config.widths {
            let runs: Vec<&ModelResult> = models
                .iter()
                .chain(&seed_models)
                .filter(|m| m.depth == depth && m.width == width)
                .collect();
            let spread = |f: fn(&ModelResult) -> f64| -> Spread {
                let values: Vec<f64> = runs.iter().map(|m| f(m)).collect();
                let (mean, sd) = mean_sd(&values).unwrap_or((f64::NAN, None));
                Spread { mean, sd }
            };
            if runs.is_empty() {
                continue;
            }
            architectures.push(ArchitectureResult {
                name: model_name(config, (depth, width), config.train_count, 0),
                runs: runs.iter().map(|m| m.name.clone()).collect(),
                test_accuracy: spread(|m| m.test_accuracy),
                block_share: spread(|m| m.block_share),
                block_layers: spread(|m| m.block.1 as f64),
                block_contrast: spread(|m| m.block_contrast),
                with_block_structure: runs.iter().filter(|m| m.block_structure).count(),
            });
        }
    }
    let every_model: Vec<&ModelResult> = models
        .iter()
        .chain(&seed_models)
        .chain(&size_models)
        .collect();
    let capacity_trend = block_trends(&every_model, CAPACITY_PER_IMAGE, 0x7e4d, |m| {
        (m.parameters as f64 / m.train_images.max(1) as f64).ln()
    });
    let fit_trend = block_trends(&every_model, TRAINING_ERROR, 0xf17, |m| {
        1.0 - m.train_accuracy
    });
    WideVsDeepAnalysis {
        models,
        seed_models,
        size_models,
        architectures,
        cross,
        per_class,
        capacity_trend,
        fit_trend,
    }
}

/// Bootstrap resamples of the capacity trend's interval.
const TREND_RESAMPLES: usize = 2000;

/// The trends (see [`BlockTrend`]) of block contrast and block share against `property` of
/// each of `models` (named `against`), each model at the training-set size it was trained on.
/// Seeded streams (from `stream`): a rerun gives the same intervals and p-values. A statistic
/// that is constant over the models has no correlation and no trend.
fn block_trends(
    models: &[&ModelResult],
    against: &str,
    stream: u64,
    property: impl Fn(&ModelResult) -> f64,
) -> Vec<BlockTrend> {
    let x: Vec<f64> = models.iter().map(|m| property(m)).collect();
    let mut sizes: Vec<usize> = models.iter().map(|m| m.train_images).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let statistics: [(&str, fn(&ModelResult) -> f64); 2] = [
        ("block_contrast", |m| m.block_contrast),
        ("block_share", |m| m.block_share),
    ];
    statistics
        .iter()
        .enumerate()
        .filter_map(|(k, (name, of))| {
            let values: Vec<f64> = models.iter().map(|m| of(m)).collect();
            let seed = derived_seed(stream, k as u64);
            let test = permutation_spearman(&x, &values, seed)?;
            Some(BlockTrend {
                statistic: name.to_string(),
                against: against.to_string(),
                points: models.len(),
                training_set_sizes: sizes.clone(),
                spearman: test.rho,
                interval: bootstrap_spearman(&x, &values, TREND_RESAMPLES, 0.95, seed),
                p_value: test.p_value,
                permutations: test.permutations,
            })
        })
        .collect()
}

/// What the cross-model part needs to know of a grid model (from its run).
struct GridModel {
    name: String,
    depth: usize,
    width: usize,
    test_accuracy: f64,
}

/// The cross-model comparisons: one architecture from two seeds, the wide and the deep model
/// of closest accuracy (and their per-class accuracies over every seed, against the two seeds'
/// gap), the smallest model against the deepest and the widest. `runs`: every trained model
/// (the first seed's grid first).
fn cross_part(ctx: &Context, config: &WideVsDeepConfig, runs: &[TrainedRun]) -> Result<CrossPart> {
    let grid_runs: Vec<&TrainedRun> = runs
        .iter()
        .filter(|r| !r.name.contains("-seed") && at_main_size(config, &r.config))
        .collect();
    let run_named = |name: &str| runs.iter().find(|r| r.name == name);
    // The test split normalised as the main-size models were trained (another size's
    // training subset has other channel statistics).
    let first = grid_runs
        .first()
        .ok_or_else(|| Error::Failure("wide_vs_deep trained no model at its main size".into()))?;
    let data = open_data(std::slice::from_ref(*first))?;
    let (probing, images) = probing(ctx, config, &data)?;
    let models = grid_runs
        .iter()
        .map(|run| {
            let (depth, width) = match &run.config.model {
                ModelSpec::Resnet(c) => (c.depth, c.width),
                _ => (0, 0),
            };
            Ok(GridModel {
                name: run.name.clone(),
                depth,
                width,
                test_accuracy: run.last()?.test_accuracy,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let loaded = grid_runs
        .iter()
        .map(|run| run.load(&ctx.device))
        .collect::<Result<Vec<_>>>()?;

    let index = |depth: usize, width: usize| {
        models
            .iter()
            .position(|m| m.depth == depth && m.width == width)
    };
    let (d0, w0) = (config.depths[0], config.widths[0]);
    let (dn, wn) = (
        config.depths[config.depths.len() - 1],
        config.widths[config.widths.len() - 1],
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
        log::info!(
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
    // `second_seed`'s first two seeds: (its grid index, the second's run, the second).
    let (sd, sw) = config.second_seed;
    let second_name = model_name(config, (sd, sw), config.train_count, 1);
    let second = match (index(sd, sw), run_named(&second_name)) {
        (Some(a), Some(run)) => Some((a, run, run.load(&ctx.device)?)),
        _ => None,
    };
    if let Some((a, run, model)) = &second {
        compare("same architecture, two seeds", *a, model, &run.name)?;
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
        // The other seeds of the wide and the deep model.
        let other_seeds = |grid_index: usize| -> Result<Vec<AnyModel>> {
            (1..config.seeds)
                .map(|s| {
                    let cell = (models[grid_index].depth, models[grid_index].width);
                    let name = model_name(config, cell, config.train_count, s);
                    run_named(&name)
                        .ok_or_else(|| {
                            Error::Failure(format!("wide_vs_deep: no trained model {name}"))
                        })?
                        .load(&ctx.device)
                })
                .collect()
        };
        let (wide_seeds, deep_seeds) = (other_seeds(wide)?, other_seeds(deep)?);
        let mut all: Vec<&AnyModel> = std::iter::once(&loaded[wide])
            .chain(&wide_seeds)
            .chain(std::iter::once(&loaded[deep]))
            .chain(&deep_seeds)
            .collect();
        if let Some((a, _, model)) = &second {
            all.extend([&loaded[*a], model]);
        }
        let (labels, predictions) = test_predictions(&probing, &all)?;
        per_class = Some(per_class_result(
            images,
            &labels,
            &predictions,
            (&models[wide].name, &models[deep].name),
            second
                .as_ref()
                .map(|(a, run, _)| (models[*a].name.clone(), run.name.clone())),
            derived_seed(ctx.args.seed, 7),
        ));
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
    Ok(CrossPart { cross, per_class })
}

/// Images shown and summed as a block's dominant images.
const DOMINANT_IMAGES: usize = 8;

/// The [`DOMINANT_IMAGES`] test images of `examples` (test indices, in the order of `u`) with the
/// largest share `u_i^2` of `layer`'s first principal component.
fn dominant_images(
    probing: &Probing<'_>,
    layer: &str,
    examples: &[usize],
    u: &[f64],
) -> Result<DominantImages> {
    use burn::data::dataset::Dataset;
    use repsim_data::ImageDataset;
    let mut order: Vec<usize> = (0..u.len().min(examples.len())).collect();
    order.sort_by(|&a, &b| (u[b] * u[b]).total_cmp(&(u[a] * u[a])));
    order.truncate(DOMINANT_IMAGES);
    let classes = probing.test.class_names();
    let images = order
        .iter()
        .map(|&k| {
            let index = examples[k];
            let item = probing
                .test
                .get(index)
                .map_err(|e| Error::Failure(format!("test image {index}: {e}")))?;
            Ok(DominantImage {
                index,
                class: classes
                    .get(item.label)
                    .cloned()
                    .unwrap_or_else(|| item.label.to_string()),
                share: u[k] * u[k],
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(DominantImages {
        layer: layer.to_string(),
        examples: examples.len(),
        top_share: images.iter().map(|i| i.share).sum(),
        images,
    })
}

/// The name of the cross-model part.
const CROSS_PART: &str = "cross";

/// One model's within-model CKA, first principal components and block structure.
fn measure_model(
    ctx: &Context,
    config: &WideVsDeepConfig,
    probing: &Probing<'_>,
    pc_batch: &ProbeSet,
    run: &TrainedRun,
    model: &AnyModel,
) -> Result<ModelResult> {
    let within = probing.minibatch_cka(model, None)?;
    let batch = pc_batch
        .iter(probing.test, &probing.batcher, &probing.device)
        .next()
        .ok_or_else(|| Error::Failure("no PC batch".into()))??;
    let layers = layers_of(model, batch.images, &probing.probe)?;
    let mut fractions = Vec::new();
    let (mut grams, mut removed, mut alone) = (Vec::new(), Vec::new(), Vec::new());
    let mut directions = Vec::new();
    for layer in &layers {
        match first_component(layer, 200) {
            Ok(pc) => {
                fractions.push(pc.explained);
                directions.push(Some(pc.direction));
                // The first component's own Gram, lambda v v^T: the whole minus the rest.
                alone.push(pc.gram.clone().sub(pc.gram_without_first.clone()));
                grams.push(pc.gram);
                removed.push(pc.gram_without_first);
            }
            Err(e) => {
                // A constant layer: its cells become undefined (null), the run goes on.
                log::warn!("{}: layer `{}`: {e}", run.name, layer.name);
                let n = layer.num_examples();
                let zeros = burn::tensor::Tensor::<2>::zeros([n, n], &ctx.device);
                fractions.push(0.0);
                directions.push(None);
                grams.push(zeros.clone());
                alone.push(zeros.clone());
                removed.push(zeros);
            }
        }
    }
    let names: Vec<String> = layers.iter().map(|l| l.name.clone()).collect();
    let n = config.pc_examples;
    let cka_pc = cka_of_grams(&names, &grams, n);
    let cka_removed = cka_of_grams(&names, &removed, n).with_parameter("first_pc", "removed");
    let cka_alone = cka_of_grams(&names, &alone, n).with_parameter("first_pc", "alone");
    let block = longest_block(&within, config.block_threshold);
    let contrast = block_contrast(&within, block);
    let block_before = longest_block(&cka_pc, config.block_threshold);
    let block_removed = longest_block(&cka_removed, config.block_threshold);
    let contrast_before = block_contrast(&cka_pc, block_before);
    let contrast_removed = block_contrast(&cka_removed, block_removed);
    let (depth, width) = match &run.config.model {
        ModelSpec::Resnet(c) => (c.depth, c.width),
        _ => (0, 0),
    };
    let l = names.len().max(1) as f64;
    let last = run.last()?;
    // The block's middle layer, when the PC examples' layers are the CKA's (same probe).
    let middle = block.0 + block.1 / 2;
    let dominant_images = match directions.get(middle) {
        Some(Some(u)) if within.rows.get(middle) == names.get(middle) => Some(dominant_images(
            probing,
            &names[middle],
            &pc_batch.batches()[0],
            u,
        )?),
        _ => None,
    };
    let train_images = run.config.data.train_count.unwrap_or(config.train_count);
    Ok(ModelResult {
        name: run.name.clone(),
        depth,
        width,
        parameters: model.num_params(),
        train_images,
        steps: run.config.epochs
            * repsim_train::trainer::steps_per_epoch(
                train_images * run.config.data.train_repeats,
                run.config.batch_size,
            ),
        test_accuracy: last.test_accuracy,
        train_accuracy: last.train_accuracy,
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
        block_contrast_pc_examples: contrast_before,
        block_contrast_pc_removed: contrast_removed,
        cka_first_pc_alone: cka_alone,
        dominant_images,
    })
}
