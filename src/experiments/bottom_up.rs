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
use repsim_similarity::{ConvMode, Metric};
use repsim_train::{
    ConvergenceTable, OptimizerConfig, ScheduleConfig, TrackEpochs, TrackOptions, Tracker,
    TrackerConfig, TrainConfig,
};
use serde::{Deserialize, Serialize};

use super::harness::{
    derived_seed, file_name, image_data, markdown_table, Context, Experiment, ExperimentArgs,
    Figure, Provenance, Scale, TrainedRun, Training,
};
use crate::analysis::spearman;
use crate::error::{Error, Result};

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
}

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
    /// Warnings from the Tracker.
    pub warnings: Vec<String>,
}

/// What the experiment measured (`results.json` adds the configs and provenance).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BottomUpAnalysis {
    /// Per network.
    pub networks: Vec<NetworkResult>,
}

/// The experiment; see the module docs.
pub struct BottomUp;

/// Runs the experiment with its configuration from `args`; returns the path of `summary.md`.
pub fn run(args: &ExperimentArgs) -> Result<PathBuf> {
    super::cells::run::<BottomUp>(args)
}

impl Experiment for BottomUp {
    const NAME: &'static str = "bottom_up";
    type Config = BottomUpConfig;
    type Analysis = BottomUpAnalysis;

    fn config(scale: Scale) -> BottomUpConfig {
        BottomUpConfig::for_scale(scale)
    }

    fn headline(config: &BottomUpConfig, args: &ExperimentArgs) -> String {
        format!(
            "bottom_up: a plain CNN, a ResNet-{} and an LSTM on {}, {} epochs, every layer tracked after every epoch",
            config.resnet_depth, args.data, config.epochs
        )
    }

    /// A plain CNN, a ResNet and an LSTM row-sequence classifier, each tracked at
    /// initialisation and after every epoch on the first `probe_count` test images.
    fn trainings(config: &BottomUpConfig, args: &ExperimentArgs) -> Result<Vec<Training>> {
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
            .with_measures(vec![Metric::Svcca, Metric::Pwcca, Metric::LinearCka])
            .with_conv(if config.pool > 1 {
                ConvMode::Pool { size: config.pool }
            } else {
                ConvMode::Flatten
            });
        Ok(networks
            .into_iter()
            .enumerate()
            .map(|(i, (name, model, optimizer, lr))| Training {
                name: name.to_string(),
                config: TrainConfig {
                    model,
                    data: data.clone(),
                    optimizer,
                    schedule: ScheduleConfig::default(),
                    lr,
                    epochs: config.epochs,
                    batch_size: 128,
                    seed: derived_seed(args.seed, i as u64),
                },
                track: Some(TrackOptions {
                    tracker: tracker.clone(),
                    epochs: TrackEpochs::Every,
                    probe_count: config.probe_count,
                }),
            })
            .collect())
    }

    /// Each network's convergence tables, the first epoch at which each layer reaches
    /// `reach` of its final similarity, and the rank correlation of that epoch with depth.
    fn analyse(
        _ctx: &Context,
        config: &BottomUpConfig,
        runs: &[TrainedRun],
    ) -> Result<BottomUpAnalysis> {
        let mut networks = Vec::new();
        for run in runs {
            let tracker_config = run
                .tracker
                .clone()
                .ok_or_else(|| Error::Failure(format!("{}: the run was not tracked", run.name)))?;
            let report = Tracker::open(tracker_config)?.finish()?;
            let mut first_epoch = Vec::new();
            let mut correlation = Vec::new();
            for table in &report.convergence {
                let reached = table.first_epoch_reaching(config.reach);
                let (depths, epochs): (Vec<f64>, Vec<f64>) = reached
                    .iter()
                    .enumerate()
                    .filter_map(|(i, (_, e))| e.map(|e| (i as f64, e as f64)))
                    .unzip();
                correlation.push((table.metric.clone(), spearman(&depths, &epochs)));
                first_epoch.push((table.metric.clone(), reached));
            }
            networks.push(NetworkResult {
                name: run.name.clone(),
                test_accuracy: run.last()?.test_accuracy,
                convergence: report.convergence,
                first_epoch,
                depth_order_correlation: correlation,
                warnings: report.warnings,
            });
        }
        Ok(BottomUpAnalysis { networks })
    }

    /// Per network and measure: the convergence plot and the layers x epochs heatmap.
    fn figures(
        ctx: &Context,
        _config: &BottomUpConfig,
        analysis: &BottomUpAnalysis,
    ) -> Result<Vec<Figure>> {
        let mut figures = Vec::new();
        for network in &analysis.networks {
            let stem = ctx.out.join(format!("convergence_{}", network.name));
            let title = format!("{}: each layer vs its final representation", network.name);
            for path in crate::tracking::draw_convergence(&network.convergence, &stem, &title)? {
                figures.push(Figure::new(file_name(&path), String::new()));
            }
        }
        Ok(figures)
    }

    fn summary(
        config: &BottomUpConfig,
        analysis: &BottomUpAnalysis,
        provenance: &Provenance,
        figures: &[Figure],
    ) -> String {
        summary(config, analysis, provenance, figures)
    }
}

fn summary(c: &BottomUpConfig, r: &BottomUpAnalysis, p: &Provenance, figures: &[Figure]) -> String {
    let mut s = format!(
        "# bottom_up\n\nRaghu et al. 2017 (SVCCA, Fig. 4); Morcos et al. 2018 (PWCCA, RNNs). A plain CNN, a ResNet-{} and an LSTM \
         row-sequence classifier trained on `{}` ({} training / {} test images, {} px, {} epochs); the Tracker records every \
         block-level layer on {} test images at initialisation (epoch 0) and after every epoch (conv maps average-pooled to \
         {} x {}). Each layer at each epoch is compared with itself at the last epoch. Device: {}. Wall time of this run {:.0} s (training {:.0} s); \
         the networks' own training and tracking time {:.0} s.\n\n\
         Bottom-up convergence means the first epoch at which a layer reaches {} of its final similarity grows with depth: \
         the rank correlation (Spearman) between layer index and that epoch is then positive.\n\n",
        c.resnet_depth, p.data, c.train_count, c.test_count, c.side, c.epochs, c.probe_count, c.pool, c.pool,
        p.device, p.train_seconds + p.analysis_seconds, p.train_seconds, p.models_training_seconds, c.reach
    );
    for n in &r.networks {
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
        s.push_str("\nSpearman correlation of depth with the first epoch reaching the threshold: ");
        let corr: Vec<String> = n
            .depth_order_correlation
            .iter()
            .map(|(m, c)| {
                format!(
                    "{m} {}",
                    c.map_or("undefined".into(), |c| format!("{c:+.2}"))
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
    s
}
