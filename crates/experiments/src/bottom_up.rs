//! `bottom_up`: do layers converge bottom-up during training? Raghu et al. 2017 (SVCCA, Fig. 4)
//! found that each layer's representation, compared with its own final representation, reaches
//! high similarity earlier the lower the layer sits; Morcos et al. 2018 (PWCCA) found the same in
//! RNNs. Trains a plain CNN, a CIFAR ResNet and an LSTM row-sequence classifier with the Tracker
//! observing every layer after every epoch, and reports, per layer, the first epoch at which it
//! reaches 0.9 of its final similarity.

use std::path::PathBuf;

use repsim_model::{
    CellKind, ModelSpec, PlainCnnConfig, RecurrentConfig, ResNetConfig, RnnClassifierConfig,
};
use repsim_similarity::{ConvMode, Measure};
use repsim_train::{
    ConvergenceTable, OptimizerConfig, ScheduleConfig, TrackEpochs, TrackOptions, Tracker,
    TrackerConfig, TrainConfig,
};
use serde::{Deserialize, Serialize};

use super::harness::{
    derived_seed, file_name, image_data, listed, markdown_table, Context, Experiment,
    ExperimentArgs, Figure, Provenance, Scale, TrainedRun, Training,
};
use crate::analysis::spearman;
use crate::error::{Error, Result};
use crate::statistics::{bootstrap_spearman, mean_sd, Interval};

/// The experiment's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BottomUpConfig {
    /// Image side.
    pub side: usize,
    /// Training images.
    pub train_count: usize,
    /// Test images.
    pub test_count: usize,
    /// Epochs of every network.
    pub epochs: usize,
    /// Probe images the Tracker records (the first N of the test split).
    pub probe_count: usize,
    /// Conv maps average-pooled to K x K before storage, so SVCCA and PWCCA see fewer
    /// features than probe images.
    pub pool: usize,
    /// Plain CNN depth and width.
    pub cnn: (usize, usize),
    /// ResNet depth.
    pub resnet_depth: usize,
    /// LSTM hidden units and layers.
    pub lstm: (usize, usize),
    /// The fraction of the final similarity a layer must reach.
    pub reach: f64,
    /// Seeds of each network (`--seeds N`).
    #[serde(default = "one_seed")]
    pub seeds: usize,
    /// Observe every K optimisation steps instead of every epoch (`null`: every epoch): the
    /// resolution at which the early layers converge. The convergence tables, the "first ...
    /// reaching" numbers and the figures are then in steps.
    #[serde(default)]
    pub track_every_steps: Option<usize>,
}

fn one_seed() -> usize {
    1
}

/// Resamples of the layers behind each Spearman interval.
const LAYER_RESAMPLES: usize = 2000;

/// The confidence of the Spearman intervals.
const CONFIDENCE: f64 = 0.95;

impl BottomUpConfig {
    /// The configuration of `scale`.
    pub fn for_scale(scale: Scale) -> Self {
        match scale {
            Scale::Smoke => BottomUpConfig {
                side: 16,
                train_count: 256,
                test_count: 128,
                epochs: 2,
                probe_count: 128,
                pool: 1,
                cnn: (3, 8),
                resnet_depth: 8,
                lstm: (32, 2),
                reach: 0.9,
                seeds: 1,
                track_every_steps: None,
            },
            Scale::Default => BottomUpConfig {
                side: 16,
                train_count: 10_000,
                test_count: 1000,
                epochs: 12,
                probe_count: 1000,
                pool: 2,
                cnn: (6, 16),
                resnet_depth: 14,
                lstm: (64, 3),
                reach: 0.9,
                // Three seeds, observed every 20 optimisation steps (49 observations over
                // 948 steps), where the layers converge: about 4.5 minutes a seed here.
                seeds: 3,
                track_every_steps: Some(20),
            },
            Scale::Full => BottomUpConfig {
                side: 32,
                train_count: 50_000,
                test_count: 10_000,
                epochs: 60,
                probe_count: 2000,
                pool: 2,
                cnn: (8, 64),
                resnet_depth: 56,
                lstm: (256, 4),
                reach: 0.9,
                seeds: 1,
                track_every_steps: None,
            },
        }
    }
}

/// One network's convergence.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkResult {
    /// Its name.
    pub name: String,
    /// Final test accuracy.
    pub test_accuracy: f64,
    /// Convergence tables (SVCCA, PWCCA, linear CKA).
    pub convergence: Vec<ConvergenceTable>,
    /// Per measure, per layer: the first epoch reaching `reach` of the final similarity.
    pub first_epoch: Vec<(String, Vec<(String, Option<usize>)>)>,
    /// Per measure: Spearman's rank correlation between layer depth and that epoch (positive:
    /// deeper layers converge later).
    pub depth_order_correlation: Vec<(String, Option<f64>)>,
    /// Per measure: its 95% percentile bootstrap interval over the layers (the (depth, epoch)
    /// pairs resampled with replacement, 2,000 times).
    #[serde(default)]
    pub depth_order_interval: Vec<(String, Option<Interval>)>,
    /// Warnings from the Tracker.
    pub warnings: Vec<String>,
}

/// One network's depth-order correlation over its seeds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedSpread {
    /// The network (`cnn`, `resnet`, `lstm`).
    pub network: String,
    /// The measure.
    pub metric: String,
    /// The correlation of each seed (`None`: undefined in that seed).
    pub correlations: Vec<Option<f64>>,
    /// The mean over the seeds where it is defined.
    pub mean: Option<f64>,
    /// The standard deviation over those seeds (two or more).
    pub sd: Option<f64>,
    /// In how many seeds the correlation is positive (bottom-up).
    pub positive: usize,
}

/// What the experiment measured (`results.json` adds the configs and provenance).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BottomUpAnalysis {
    /// Per network, every seed (the first seed's networks first).
    pub networks: Vec<NetworkResult>,
    /// Per network and measure: the correlation over seeds.
    #[serde(default)]
    pub seeds: Vec<SeedSpread>,
}

/// The experiment; see the module docs.
pub type BottomUp = BottomUpConfig;

/// Runs the experiment with its configuration from `args`; returns the path of `summary.md`.
pub fn run(args: &ExperimentArgs) -> Result<PathBuf> {
    super::cells::run::<BottomUp>(args)
}

impl Experiment for BottomUpConfig {
    const NAME: &'static str = "bottom_up";
    type Analysis = BottomUpAnalysis;

    fn for_scale(scale: Scale) -> Self {
        BottomUpConfig::for_scale(scale)
    }

    fn set_seeds(&mut self, seeds: usize) -> Result<()> {
        let config = self;
        config.seeds = seeds;
        Ok(())
    }

    fn check(&self, _args: &ExperimentArgs) -> Result<()> {
        let config = self;
        if config.seeds == 0 {
            return Err(Error::Input(
                "bottom_up needs at least 1 seed (--seeds)".into(),
            ));
        }
        if config.track_every_steps == Some(0) {
            return Err(Error::Input(
                "bottom_up: track_every_steps must be at least 1 (or null: every epoch)".into(),
            ));
        }
        Ok(())
    }

    fn headline(&self, args: &ExperimentArgs) -> String {
        let config = self;
        format!(
            "bottom_up: a plain CNN, a ResNet-{} and an LSTM on {}, {} epochs, {} seed(s) each, every layer tracked {}",
            config.resnet_depth, args.data, config.epochs, config.seeds, when_observed(config)
        )
    }

    /// A plain CNN, a ResNet and an LSTM row-sequence classifier, each tracked at
    /// initialisation and after every epoch on the first `probe_count` test images; then the
    /// same from the second seed (`NAME-seed2`), and so on.
    fn trainings(&self, args: &ExperimentArgs) -> Result<Vec<Training>> {
        let config = self;
        let data = image_data(args, config.side, config.train_count, config.test_count);
        let side = if args.data.starts_with("cifar") {
            32
        } else {
            config.side
        };
        let networks: Vec<(&str, ModelSpec, OptimizerConfig, f64)> = vec![
            (
                "cnn",
                ModelSpec::Cnn(
                    PlainCnnConfig::new()
                        .with_depth(config.cnn.0)
                        .with_width(config.cnn.1),
                ),
                OptimizerConfig::sgd(),
                0.05,
            ),
            (
                "resnet",
                ModelSpec::Resnet(ResNetConfig::cifar(config.resnet_depth, 1, 10)),
                OptimizerConfig::sgd(),
                0.05,
            ),
            (
                "lstm",
                ModelSpec::RnnClassifier(RnnClassifierConfig::new(
                    RecurrentConfig::new(CellKind::Lstm, 3 * side)
                        .with_hidden(config.lstm.0)
                        .with_layers(config.lstm.1),
                )),
                OptimizerConfig::adam(),
                2e-3,
            ),
        ];
        let tracker = TrackerConfig::new("track")
            .with_measures(vec![Measure::svcca(), Measure::PWCCA, Measure::LINEAR_CKA])
            .with_conv(if config.pool > 1 {
                ConvMode::Pool { size: config.pool }
            } else {
                ConvMode::Flatten
            });
        let mut trainings = Vec::new();
        for s in 0..config.seeds {
            for (i, (name, model, optimizer, lr)) in networks.iter().enumerate() {
                trainings.push(Training {
                    name: seed_name(name, s),
                    config: TrainConfig {
                        model: model.clone(),
                        data: data.clone(),
                        optimizer: optimizer.clone(),
                        schedule: ScheduleConfig::default(),
                        lr: *lr,
                        epochs: config.epochs,
                        batch_size: 128,
                        seed: derived_seed(args.seed, (s * 100 + i) as u64),
                    },
                    track: Some(TrackOptions {
                        tracker: tracker.clone(),
                        epochs: match config.track_every_steps {
                            Some(k) => TrackEpochs::EverySteps(k),
                            None => TrackEpochs::Every,
                        },
                        probe_count: config.probe_count,
                    }),
                });
            }
        }
        Ok(trainings)
    }

    /// Each network's convergence tables, the first epoch at which each layer reaches
    /// `reach` of its final similarity, and the rank correlation of that epoch with depth.
    fn analyse(&self, ctx: &Context, runs: &[TrainedRun]) -> Result<BottomUpAnalysis> {
        let config = self;
        let mut networks = Vec::new();
        for run in runs {
            let tracker_config = run
                .tracker
                .clone()
                .ok_or_else(|| Error::Failure(format!("{}: the run was not tracked", run.name)))?;
            let report = Tracker::open(tracker_config)?.finish()?;
            let mut first_epoch = Vec::new();
            let mut correlation = Vec::new();
            let mut interval = Vec::new();
            for (m, table) in report.convergence.iter().enumerate() {
                let reached = table.first_epoch_reaching(config.reach);
                let (depths, epochs): (Vec<f64>, Vec<f64>) = reached
                    .iter()
                    .enumerate()
                    .filter_map(|(i, (_, e))| e.map(|e| (i as f64, e as f64)))
                    .unzip();
                correlation.push((table.metric.clone(), spearman(&depths, &epochs)));
                let seed = derived_seed(ctx.args.seed, (networks.len() * 10 + m) as u64);
                interval.push((
                    table.metric.clone(),
                    bootstrap_spearman(&depths, &epochs, LAYER_RESAMPLES, CONFIDENCE, seed),
                ));
                first_epoch.push((table.metric.clone(), reached));
            }
            networks.push(NetworkResult {
                name: run.name.clone(),
                test_accuracy: run.last()?.test_accuracy,
                convergence: report.convergence,
                first_epoch,
                depth_order_correlation: correlation,
                depth_order_interval: interval,
                warnings: report.warnings,
            });
        }
        let seeds = seed_spread(&networks, config.seeds);
        Ok(BottomUpAnalysis { networks, seeds })
    }

    /// Per network and measure: the convergence plot and the layers x epochs heatmap.
    fn figures(&self, ctx: &Context, analysis: &BottomUpAnalysis) -> Result<Vec<Figure>> {
        let mut figures = Vec::new();
        // The first seed's networks (the other seeds' tables are in results.json).
        for network in analysis
            .networks
            .iter()
            .filter(|n| !n.name.contains("-seed"))
        {
            let stem = ctx.out.join(format!("convergence_{}", network.name));
            let title = format!("{}: each layer vs its final representation", network.name);
            for path in crate::tracking::draw_convergence(&network.convergence, &stem, &title)? {
                figures.push(Figure::new(file_name(&path), String::new()));
            }
        }
        Ok(figures)
    }

    fn summary(
        &self,
        analysis: &BottomUpAnalysis,
        provenance: &Provenance,
        figures: &[Figure],
    ) -> String {
        let config = self;
        summary(config, analysis, provenance, figures)
    }
}

/// The name of network `name`'s run from seed index `s` (0: `name`, then `name-seed2`, ...).
fn seed_name(name: &str, s: usize) -> String {
    if s == 0 {
        name.to_string()
    } else {
        format!("{name}-seed{}", s + 1)
    }
}

/// Per network and measure, its depth-order correlation over the seeds (`networks` is
/// seed-major: every network of the first seed, then of the second, ...).
fn seed_spread(networks: &[NetworkResult], seeds: usize) -> Vec<SeedSpread> {
    let per_seed = networks.len() / seeds.max(1);
    let mut spread = Vec::new();
    for (i, first) in networks[..per_seed].iter().enumerate() {
        for (m, (metric, _)) in first.depth_order_correlation.iter().enumerate() {
            let correlations: Vec<Option<f64>> = (0..seeds)
                .filter_map(|s| networks.get(s * per_seed + i))
                .map(|n| n.depth_order_correlation.get(m).and_then(|(_, c)| *c))
                .collect();
            let defined: Vec<f64> = correlations.iter().flatten().copied().collect();
            let stats = mean_sd(&defined);
            spread.push(SeedSpread {
                network: first.name.clone(),
                metric: metric.clone(),
                mean: stats.map(|(mean, _)| mean),
                sd: stats.and_then(|(_, sd)| sd),
                positive: defined.iter().filter(|c| **c > 0.0).count(),
                correlations,
            });
        }
    }
    spread
}

/// The summary's "Significance at this scale": which networks' bottom-up order the layer
/// bootstrap supports, and (with several seeds) how it varies between seeds.
fn significance_paragraph(c: &BottomUpConfig, r: &BottomUpAnalysis) -> String {
    let (mut supported, mut not) = (Vec::new(), Vec::new());
    for n in r.networks.iter().filter(|n| !n.name.contains("-seed")) {
        for (metric, interval) in &n.depth_order_interval {
            let label = format!("{} by {metric}", n.name);
            match interval {
                Some(i) if i.low > 0.0 => supported.push(label),
                _ => not.push(label),
            }
        }
    }
    let mut s = format!(
        "## Significance at this scale\n\nA correlation counts as a bottom-up order when its 95% bootstrap interval over the layers \
         (the (depth, {unit}) pairs resampled {LAYER_RESAMPLES} times) lies above zero. With a few layers per network and {unit}s that \
         tie, the intervals are wide; they say how much the order rests on single layers, not how another seed would order them. \
         Bottom-up and significant: {}. Not significant: {}. **No correction for multiple tests**: these are {} separate 95% \
         intervals (one per network and measure), so by chance alone about {:.1} of them could exclude zero; read one that does as \
         a lead, not a finding.\n\n",
        listed(&supported),
        listed(&not),
        supported.len() + not.len(),
        0.05 * (supported.len() + not.len()) as f64,
        unit = unit(c),
    );
    if c.seeds >= 2 {
        let rows: Vec<Vec<String>> = r
            .seeds
            .iter()
            .map(|sp| {
                vec![
                    sp.network.clone(),
                    sp.metric.clone(),
                    sp.correlations
                        .iter()
                        .map(|c| c.map_or("-".into(), |c| format!("{c:+.2}")))
                        .collect::<Vec<_>>()
                        .join(", "),
                    match (sp.mean, sp.sd) {
                        (Some(m), Some(sd)) => format!("{m:+.2} ± {sd:.2}"),
                        (Some(m), None) => format!("{m:+.2}"),
                        _ => "-".into(),
                    },
                    format!("{} of {}", sp.positive, c.seeds),
                ]
            })
            .collect();
        s.push_str(&format!("Over {} seeds of each network:\n\n", c.seeds));
        s.push_str(&markdown_table(
            &["network", "measure", "per seed", "mean ± sd", "positive"],
            &rows,
        ));
        s.push('\n');
    } else {
        s.push_str("One seed per network (the default, which keeps the run within its time budget): `--seeds 2` or more reports each correlation's spread over seeds.\n\n");
    }
    s
}

/// When the Tracker observes: `after every epoch` or `every K optimisation steps`.
fn when_observed(c: &BottomUpConfig) -> String {
    match c.track_every_steps {
        Some(k) => format!("every {k} optimisation steps"),
        None => "after every epoch".into(),
    }
}

/// What the observation labels count: `epoch` or `step`.
fn unit(c: &BottomUpConfig) -> &'static str {
    if c.track_every_steps.is_some() {
        "step"
    } else {
        "epoch"
    }
}

fn summary(c: &BottomUpConfig, r: &BottomUpAnalysis, p: &Provenance, figures: &[Figure]) -> String {
    let unit = unit(c);
    let mut s = format!(
        "# bottom_up\n\nRaghu et al. 2017 (SVCCA, Fig. 4); Morcos et al. 2018 (PWCCA, RNNs). A plain CNN, a ResNet-{} and an LSTM \
         row-sequence classifier trained on `{}` ({} training / {} test images, {} px, {} epochs); the Tracker records every \
         block-level layer on {} test images at initialisation ({unit} 0) and {} (conv maps average-pooled to \
         {} x {}). Each layer at each {unit} is compared with itself at the last one. Device: {}. Wall time of this run {:.0} s (training {:.0} s); \
         the networks' own training and tracking time {:.0} s.\n\n\
         Bottom-up convergence means the first {unit} at which a layer reaches {} of its final similarity grows with depth: \
         the rank correlation (Spearman) between layer index and that {unit} is then positive.\n\n",
        c.resnet_depth, p.data, c.train_count, c.test_count, c.side, c.epochs, c.probe_count, when_observed(c), c.pool, c.pool,
        p.device, p.train_seconds + p.analysis_seconds, p.train_seconds, p.models_training_seconds, c.reach
    );
    // The first seed's tables; the other seeds' are in results.json and their correlations in
    // the significance section.
    for n in r.networks.iter().filter(|n| !n.name.contains("-seed")) {
        s.push_str(&format!(
            "## {} (test accuracy {:.1}%)\n\n",
            n.name,
            100.0 * n.test_accuracy
        ));
        let layers: Vec<String> = n
            .first_epoch
            .first()
            .map(|(_, l)| l.iter().map(|(name, _)| name.clone()).collect())
            .unwrap_or_default();
        let rows: Vec<Vec<String>> = layers
            .iter()
            .enumerate()
            .map(|(i, layer)| {
                let mut row = vec![layer.clone()];
                for (_, reached) in &n.first_epoch {
                    row.push(reached[i].1.map_or("-".into(), |e| e.to_string()));
                }
                row
            })
            .collect();
        let mut header = vec!["layer"];
        header.extend(n.first_epoch.iter().map(|(m, _)| m.as_str()));
        s.push_str(&markdown_table(&header, &rows));
        s.push_str(&format!("\nSpearman correlation of depth with the first {unit} reaching the threshold (95% bootstrap interval over the layers): "));
        let corr: Vec<String> = n
            .depth_order_correlation
            .iter()
            .zip(&n.depth_order_interval)
            .map(|((m, c), (_, interval))| {
                format!(
                    "{m} {}{}",
                    c.map_or("undefined".into(), |c| format!("{c:+.2}")),
                    interval.map_or(String::new(), |i| format!(
                        " [{:+.2}, {:+.2}]",
                        i.low, i.high
                    ))
                )
            })
            .collect();
        s.push_str(&corr.join(", "));
        s.push_str("\n\n");
        for f in figures
            .iter()
            .map(|f| &f.file)
            .filter(|f| f.starts_with(&format!("convergence_{}_", n.name)))
        {
            s.push_str(&format!("![{f}]({f})\n\n"));
        }
    }
    s.push_str(&significance_paragraph(c, r));
    s
}
