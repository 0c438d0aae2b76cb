//! `resnet_depths`: ResNet-50 against ResNet-101 and ResNet-152, every block, minibatch CKA on
//! 32 x 32 images: the comparison of the blog post this project started from (its TensorFlow
//! version took about an hour for one 256-image heatmap).
//!
//! torchvision-layout bottleneck ResNets (`ResNetConfig::imagenet`) with the CIFAR stem (3 x 3,
//! stride 1, no max pool), briefly trained on the default data; or, with
//! `--weights50 A --weights101 B --weights152 C`, torchvision's own weights from `.safetensors`
//! files (then with torchvision's ImageNet stem and 1,000 classes, and no training). The wall
//! time of the CKA part is reported separately from the training.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use repsim_data::ProbeSet;
use repsim_model::{import_torchvision_resnet, AnyModel, ModelSpec, Probe, ResNetConfig, Stem};
use repsim_similarity::{Measure, SimilarityMatrix};
use repsim_train::datasets::RunData;
use repsim_train::probing::{comparison_pass, LayersOf};
use repsim_train::{DataConfig, OptimizerConfig, ScheduleConfig, TrainConfig};
use repsim_viz::{save, Heatmap, HeatmapOptions};
use serde::{Deserialize, Serialize};

use super::harness::{
    derived_seed, image_data, layers_fn, probe_batches, Context, Experiment, ExperimentArgs,
    Figure, Provenance, Scale, TrainedRun, Training,
};
use crate::error::{Error, Result};

/// The experiment's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResnetDepthsConfig {
    /// The depths; the first is compared with each of the others.
    pub depths: Vec<usize>,
    /// Image side.
    pub side: usize,
    /// Training images (the brief training).
    pub train_count: usize,
    /// Test images: the probe set of the CKA estimate.
    pub test_count: usize,
    /// Epochs of the brief training.
    pub epochs: usize,
    /// Training batch size.
    pub batch_size: usize,
    /// Peak learning rate (SGD, cosine).
    pub lr: f64,
    /// Layers compared: blocks or all.
    pub probe: String,
    /// Minibatch CKA batch size.
    pub cka_batch: usize,
}

impl ResnetDepthsConfig {
    /// The configuration of `scale`.
    pub fn for_scale(scale: Scale) -> Self {
        match scale {
            Scale::Smoke => ResnetDepthsConfig {
                depths: vec![50, 101],
                side: 32,
                train_count: 8,
                test_count: 16,
                epochs: 1,
                batch_size: 8,
                lr: 0.01,
                probe: "blocks".into(),
                cka_batch: 8,
            },
            Scale::Default => ResnetDepthsConfig {
                depths: vec![50, 101, 152],
                side: 32,
                train_count: 512,
                test_count: 512,
                epochs: 1,
                batch_size: 32,
                lr: 0.01,
                probe: "blocks".into(),
                cka_batch: 256,
            },
            Scale::Full => ResnetDepthsConfig {
                depths: vec![50, 101, 152],
                side: 32,
                train_count: 50_000,
                test_count: 10_000,
                epochs: 30,
                batch_size: 128,
                lr: 0.1,
                probe: "all".into(),
                cka_batch: 256,
            },
        }
    }
}

/// One network.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkResult {
    /// `resnet50`, ...
    pub name: String,
    /// Trainable parameters.
    pub parameters: usize,
    /// Test accuracy after the brief training (`None` with torchvision weights).
    pub test_accuracy: Option<f64>,
    /// Where its weights came from.
    pub weights: String,
}

/// One comparison.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ComparisonResult {
    /// Rows.
    pub model_a: String,
    /// Columns.
    pub model_b: String,
    /// Minibatch CKA, every probed layer of A x every probed layer of B.
    pub cka: SimilarityMatrix,
    /// Wall time of this comparison (its model's forward passes and CKA updates), seconds.
    pub seconds: f64,
}

/// What the experiment measured (`results.json` adds the configs and provenance).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResnetDepthsAnalysis {
    /// Per network.
    pub networks: Vec<NetworkResult>,
    /// The comparisons.
    pub comparisons: Vec<ComparisonResult>,
    /// Wall time of the CKA part (every comparison), seconds.
    pub cka_seconds: f64,
}

/// The experiment; see the module docs.
pub type ResnetDepths = ResnetDepthsConfig;

/// Runs the experiment with its configuration from `args`; returns the path of `summary.md`.
pub fn run(args: &ExperimentArgs) -> Result<PathBuf> {
    super::cells::run::<ResnetDepths>(args)
}

/// torchvision weight files by depth, from `--weights50/101/152`.
fn torchvision_weights(args: &ExperimentArgs) -> BTreeMap<usize, PathBuf> {
    [
        (50, &args.weights50),
        (101, &args.weights101),
        (152, &args.weights152),
    ]
    .into_iter()
    .filter_map(|(d, w)| w.clone().map(|w| (d, w)))
    .collect()
}

fn data_config(config: &ResnetDepthsConfig, args: &ExperimentArgs) -> DataConfig {
    image_data(args, config.side, config.train_count, config.test_count)
}

impl Experiment for ResnetDepthsConfig {
    const NAME: &'static str = "resnet_depths";
    type Analysis = ResnetDepthsAnalysis;

    fn for_scale(scale: Scale) -> Self {
        ResnetDepthsConfig::for_scale(scale)
    }

    fn check(&self, args: &ExperimentArgs) -> Result<()> {
        let config = self;
        if config.depths.len() < 2 {
            return Err(Error::Input(
                "resnet_depths compares at least two depths".into(),
            ));
        }
        let weights = torchvision_weights(args);
        if !weights.is_empty() {
            if let Some(d) = config.depths.iter().find(|d| !weights.contains_key(d)) {
                return Err(Error::Input(format!(
                    "with torchvision weights every compared depth needs its file: --weights{d} is missing"
                )));
            }
        }
        Ok(())
    }

    fn headline(&self, args: &ExperimentArgs) -> String {
        let config = self;
        format!(
            "resnet_depths: ResNet-{} against {} on {} ({} test images), {}",
            config.depths[0],
            config.depths[1..]
                .iter()
                .map(|d| format!("ResNet-{d}"))
                .collect::<Vec<_>>()
                .join(" and "),
            args.data,
            config.test_count,
            if torchvision_weights(args).is_empty() {
                "trained briefly"
            } else {
                "torchvision weights"
            }
        )
    }

    /// Each depth's brief training, or nothing with torchvision weights.
    fn trainings(&self, args: &ExperimentArgs) -> Result<Vec<Training>> {
        let config = self;
        if !torchvision_weights(args).is_empty() {
            return Ok(Vec::new());
        }
        Ok(config
            .depths
            .iter()
            .map(|&depth| {
                Training::new(
                    format!("resnet{depth}"),
                    TrainConfig {
                        model: ModelSpec::Resnet(
                            ResNetConfig::imagenet(depth, 10).with_stem(Some(Stem::Cifar)),
                        ),
                        data: data_config(config, args),
                        optimizer: OptimizerConfig::sgd(),
                        schedule: ScheduleConfig::default(),
                        lr: config.lr,
                        epochs: config.epochs,
                        batch_size: config.batch_size,
                        seed: derived_seed(args.seed, depth as u64),
                    },
                )
            })
            .collect())
    }

    /// The first model against each of the others, on the same test images.
    fn analyse(&self, ctx: &Context, runs: &[TrainedRun]) -> Result<ResnetDepthsAnalysis> {
        let config = self;
        let (networks, models) = networks(ctx, config, runs)?;
        compare(ctx, config, networks, &models)
    }

    fn figures(&self, ctx: &Context, analysis: &ResnetDepthsAnalysis) -> Result<Vec<Figure>> {
        let mut figures = Vec::new();
        for cmp in &analysis.comparisons {
            let file = format!("cka_{}_vs_{}.png", cmp.model_a, cmp.model_b);
            let options = HeatmapOptions {
                title: Some(format!("Minibatch CKA: {} vs {}", cmp.model_a, cmp.model_b)),
                row_title: Some(cmp.model_a.clone()),
                col_title: Some(cmp.model_b.clone()),
                origin_lower: true,
                ..HeatmapOptions::default()
            };
            save(&Heatmap::new(&cmp.cka, options), &ctx.out.join(&file))?;
            figures.push(Figure::new(
                file,
                format!("Minibatch CKA: {} vs {}.", cmp.model_a, cmp.model_b),
            ));
        }
        Ok(figures)
    }

    fn summary(
        &self,
        analysis: &ResnetDepthsAnalysis,
        provenance: &Provenance,
        figures: &[Figure],
    ) -> String {
        let config = self;
        summary(config, analysis, provenance, figures)
    }
}

/// The compared networks: loaded from torchvision weights, or the briefly trained runs.
fn networks(
    ctx: &Context,
    config: &ResnetDepthsConfig,
    runs: &[TrainedRun],
) -> Result<(Vec<NetworkResult>, Vec<AnyModel>)> {
    let weights = torchvision_weights(&ctx.args);
    let mut networks = Vec::new();
    let mut models = Vec::new();
    if weights.is_empty() {
        for run in runs {
            let model = run.load(&ctx.device)?;
            networks.push(NetworkResult {
                name: run.name.clone(),
                parameters: model.num_params(),
                test_accuracy: Some(run.last()?.test_accuracy),
                weights: format!("trained briefly: {}", run.dir.display()),
            });
            models.push(model);
        }
        return Ok((networks, models));
    }
    for &depth in &config.depths {
        let path = &weights[&depth];
        let model = ResNetConfig::imagenet(depth, 1000).init(&ctx.device)?;
        let (model, report) = import_torchvision_resnet(model, path)?;
        log::info!(
            "resnet{depth}: loaded {} tensors from {}",
            report.applied,
            path.display()
        );
        let model = AnyModel::ResNet(model);
        networks.push(NetworkResult {
            name: format!("resnet{depth}"),
            parameters: model.num_params(),
            test_accuracy: None,
            weights: path.display().to_string(),
        });
        models.push(model);
    }
    Ok((networks, models))
}

/// One pass over the probe batches: the first model's layers are computed once per batch and
/// compared with every other model's. A comparison's seconds: its model's forward passes and
/// its CKA updates (the shared forward of the first model is in the CKA part's total).
fn compare(
    ctx: &Context,
    config: &ResnetDepthsConfig,
    networks: Vec<NetworkResult>,
    models: &[AnyModel],
) -> Result<ResnetDepthsAnalysis> {
    let cka_started = Instant::now();
    let run_data = RunData::open(&data_config(config, &ctx.args), 0)?;
    let RunData::Images(images) = &run_data else {
        return Err(Error::Input("resnet_depths needs an image dataset".into()));
    };
    let probe_set = ProbeSet::new(config.test_count, config.cka_batch, 1, Some(ctx.args.seed))?;
    let probe: Probe = config.probe.parse()?;
    let batches = probe_batches(&probe_set, &*images.test, &images.batcher, &ctx.device);
    let mut first = layers_fn(&models[0], &probe);
    let mut rest: Vec<_> = models[1..].iter().map(|m| layers_fn(m, &probe)).collect();
    let mut others: Vec<&mut LayersOf> = rest.iter_mut().map(|f| f as &mut LayersOf).collect();
    let passes = comparison_pass(
        batches,
        &mut first,
        &mut others,
        &[Measure::minibatch_cka(config.cka_batch)],
        repsim_similarity::ShortLastBatch::LeaveOut,
    )?;
    let mut comparisons = Vec::new();
    for (k, pass) in passes.into_iter().enumerate().map(|(i, p)| (i + 1, p)) {
        let (mut matrices, seconds) = (pass.matrices, pass.seconds);
        let matrix = matrices.remove(0);
        log::info!(
            "{} vs {}: {} x {} layers, minibatch CKA in {seconds:.1} s",
            networks[0].name,
            networks[k].name,
            matrix.rows.len(),
            matrix.cols.len()
        );
        comparisons.push(ComparisonResult {
            model_a: networks[0].name.clone(),
            model_b: networks[k].name.clone(),
            cka: matrix,
            seconds,
        });
    }
    let cka_seconds = cka_started.elapsed().as_secs_f64();
    log::info!("CKA part: {cka_seconds:.0} s");
    Ok(ResnetDepthsAnalysis {
        networks,
        comparisons,
        cka_seconds,
    })
}

fn summary(
    c: &ResnetDepthsConfig,
    r: &ResnetDepthsAnalysis,
    p: &Provenance,
    figures: &[Figure],
) -> String {
    let mut s = format!(
        "# resnet_depths\n\n{} against {}: minibatch CKA of every probed layer ({}), batches of {}, on {} test images of `{}` at {} x {} px. \
         Device: {}.\n\n**Wall time of the CKA part: {:.0} s** (forward passes and CKA of every comparison). Training: {:.0} s in this run \
         (the models' own training time {:.0} s).\n\n",
        r.networks[0].name,
        r.networks[1..].iter().map(|n| n.name.as_str()).collect::<Vec<_>>().join(" and "),
        c.probe, c.cka_batch, c.test_count, p.data, c.side, c.side, p.device, r.cka_seconds, p.train_seconds, p.models_training_seconds
    );
    for n in &r.networks {
        s.push_str(&format!(
            "- {}: {} parameters; {}{}\n",
            n.name,
            n.parameters,
            n.weights,
            n.test_accuracy.map_or(String::new(), |a| format!(
                "; test accuracy {:.1}% after {} epoch(s) on {} images",
                100.0 * a,
                c.epochs,
                c.train_count
            ))
        ));
    }
    s.push('\n');
    for (cmp, Figure { file, .. }) in r.comparisons.iter().zip(figures) {
        let diagonal_like: Vec<f64> = cmp
            .cka
            .values
            .iter()
            .filter_map(|row| {
                row.iter()
                    .flatten()
                    .cloned()
                    .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
            })
            .collect();
        let mean_best = diagonal_like.iter().sum::<f64>() / diagonal_like.len().max(1) as f64;
        s.push_str(&format!(
            "## {} vs {} ({} x {} layers, {:.0} s)\n\nFor each layer of {}, the mean over layers of its highest CKA with any layer of {}: {:.3}.\n\n![{file}]({file})\n\n",
            cmp.model_a, cmp.model_b, cmp.cka.rows.len(), cmp.cka.cols.len(), cmp.seconds, cmp.model_a, cmp.model_b, mean_best
        ));
    }
    s
}
