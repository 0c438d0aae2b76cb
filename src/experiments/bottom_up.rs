//! `bottom_up`: do layers converge bottom-up during training? Raghu et al. 2017 (SVCCA, Fig. 4)
//! found that each layer's representation, compared with its own final representation, reaches
//! high similarity earlier the lower the layer sits; Morcos et al. 2018 (PWCCA) found the same in
//! RNNs. Trains a plain CNN, a CIFAR ResNet and an LSTM row-sequence classifier with the Tracker
//! observing every layer after every epoch, and reports, per layer, the first epoch at which it
//! reaches 0.9 of its final similarity.

use std::path::PathBuf;
use std::time::Instant;

use repsim_model::{
    CellKind, ModelSpec, PlainCnnConfig, RecurrentConfig, ResNetConfig, RnnClassifierConfig,
};
use repsim_similarity::{ConvMode, Metric};
use repsim_train::{
    completed_run, train, ConvergenceTable, DataConfig, OptimizerConfig, ProgressMode, RunOptions,
    ScheduleConfig, TrackEpochs, TrackOptions, Tracker, TrackerConfig, TrainConfig,
};
use serde::{Deserialize, Serialize};

use super::{derived_seed, markdown_table, Context, ExperimentArgs, Provenance, Result, Scale};

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
#[derive(Debug, Clone, Serialize)]
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

/// The results.
#[derive(Debug, Clone, Serialize)]
pub struct BottomUpResults {
    /// The configuration.
    pub config: BottomUpConfig,
    /// Training configs.
    pub training: Vec<TrainConfig>,
    /// Per network.
    pub networks: Vec<NetworkResult>,
    /// Provenance.
    pub provenance: Provenance,
}

/// Spearman's rank correlation of two sequences (average ranks for ties).
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.len() < 3 {
        return None;
    }
    let ranks = |v: &[f64]| {
        let mut order: Vec<usize> = (0..v.len()).collect();
        order.sort_by(|a, b| v[*a].total_cmp(&v[*b]));
        let mut r = vec![0.0; v.len()];
        let mut i = 0;
        while i < order.len() {
            let mut j = i;
            while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
                j += 1;
            }
            for k in i..=j {
                r[order[k]] = (i + j) as f64 / 2.0;
            }
            i = j + 1;
        }
        r
    };
    let (rx, ry) = (ranks(x), ranks(y));
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (mx, my) = (mean(&rx), mean(&ry));
    let cov: f64 = rx.iter().zip(&ry).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = rx.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = ry.iter().map(|b| (b - my).powi(2)).sum();
    (vx > 0.0 && vy > 0.0).then(|| cov / (vx * vy).sqrt())
}

/// Runs the experiment; returns the path of `summary.md`.
pub fn run(args: &ExperimentArgs) -> Result<PathBuf> {
    let config = args.config_or(BottomUpConfig::for_scale(args.scale()))?;
    let ctx = Context::new(args, "bottom_up")?;
    let data = DataConfig {
        dataset: args.data.clone(),
        side: config.side,
        train_count: Some(config.train_count),
        test_count: Some(config.test_count),
        random_labels: 0.0,
        augment: true,
        data_seed: 0,
        window: 64,
    };
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
    let train_started = Instant::now();
    let mut trained = Vec::new();
    for (i, (name, model, optimizer, lr)) in networks.into_iter().enumerate() {
        let tc = TrainConfig {
            model,
            data: data.clone(),
            optimizer,
            schedule: ScheduleConfig::default(),
            lr,
            epochs: config.epochs,
            batch_size: 128,
            seed: derived_seed(args.seed, i as u64),
        };
        let dir = ctx.out.join("runs").join(name);
        let tracker = TrackerConfig::new(dir.join("track"))
            .with_measures(vec![Metric::Svcca, Metric::Pwcca, Metric::LinearCka])
            .with_conv(if config.pool > 1 {
                ConvMode::Pool { size: config.pool }
            } else {
                ConvMode::Flatten
            });
        let complete =
            completed_run(&tc, &dir).is_some() && dir.join("track").join("index.json").exists();
        let metrics = if complete {
            println!(
                "{name}: reusing the trained run in {} (same config)",
                dir.display()
            );
            repsim_train::read_metrics(&dir)?
        } else {
            println!(
                "{name}: training {} for {} epochs, tracking every layer",
                tc.model.name(),
                tc.epochs
            );
            let mut options = RunOptions::new(ctx.device.clone());
            options.overwrite = true;
            options.progress = if args.quiet {
                ProgressMode::Quiet
            } else {
                ProgressMode::Auto
            };
            options.track = Some(TrackOptions {
                tracker: tracker.clone(),
                epochs: TrackEpochs::Every,
                probe_count: config.probe_count,
            });
            train(&tc, &dir, &options)?.metrics
        };
        trained.push((name.to_string(), tc, tracker, metrics));
    }
    let train_seconds = train_started.elapsed().as_secs_f64();

    let mut results = Vec::new();
    let mut figures = Vec::new();
    for (name, _, tracker_config, metrics) in &trained {
        let mut tracker = Tracker::open(tracker_config.clone())?;
        let report = tracker.finish()?;
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
        let stem = ctx.out.join(format!("convergence_{name}"));
        let title = format!("{name}: each layer vs its final representation");
        for path in crate::tracking::draw_convergence(&report.convergence, &stem, &title)? {
            let file = path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            figures.push(file);
        }
        results.push(NetworkResult {
            name: name.clone(),
            test_accuracy: metrics.last().map_or(0.0, |m| m.test_accuracy),
            convergence: report.convergence,
            first_epoch,
            depth_order_correlation: correlation,
            warnings: report.warnings,
        });
    }
    let results = BottomUpResults {
        config: config.clone(),
        training: trained.iter().map(|t| t.1.clone()).collect(),
        networks: results,
        provenance: ctx.provenance(
            train_seconds,
            trained
                .iter()
                .map(|t| t.3.iter().map(|m| m.seconds).sum::<f64>())
                .sum(),
        ),
    };
    ctx.write_json("results.json", &results)?;
    let path = ctx.write_text("summary.md", &summary(&results, &figures))?;
    println!(
        "wall time: {:.0} s (training {:.0} s)",
        ctx.elapsed(),
        train_seconds
    );
    Ok(path)
}

fn summary(r: &BottomUpResults, figures: &[String]) -> String {
    let p = &r.provenance;
    let c = &r.config;
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
            .filter(|f| f.starts_with(&format!("convergence_{}_", n.name)))
        {
            s.push_str(&format!("![{f}]({f})\n\n"));
        }
    }
    s.push_str(&format!(
        "Reproduce: `cargo run --example bottom_up -- --seed {}{}`.\n",
        p.seed,
        match p.scale {
            Scale::Smoke => " --smoke",
            Scale::Full => " --full",
            Scale::Default => "",
        }
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_of_monotone_and_reversed_sequences() {
        assert!(
            (spearman(&[1.0, 2.0, 3.0, 4.0], &[1.0, 5.0, 6.0, 9.0]).unwrap() - 1.0).abs() < 1e-12
        );
        assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]).unwrap() + 1.0).abs() < 1e-12);
        assert!(spearman(&[1.0, 2.0, 3.0], &[1.0, 1.0, 1.0]).is_none());
    }
}
