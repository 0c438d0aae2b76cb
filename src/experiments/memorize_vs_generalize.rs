//! `memorize_vs_generalize`: Morcos et al. 2018 ("Insights on representational similarity in
//! neural networks with canonical correlation", NeurIPS), Fig. 2-3: networks that generalise
//! converge to more similar representations than networks that memorise. Trains a group of CNNs
//! from different seeds on the true labels and a group on random labels (same architecture,
//! trained until the random-label group fits its training set), and measures the PWCCA distance
//! `1 - PWCCA` between every pair of networks within each group, layer by layer, on the test
//! split.

use std::path::PathBuf;

use repsim_data::ProbeSet;
use repsim_model::{ModelSpec, PlainCnnConfig, Probe, TimeReduction};
use repsim_similarity::{similarity_matrix, ConvMode, Layer, Metric, MetricOptions};
use repsim_train::datasets::RunData;
use repsim_train::observe::layers_from_activations;
use repsim_train::{DataConfig, OptimizerConfig, ScheduleConfig, TrainConfig};
use repsim_viz::{save, LineColors, LinePlot, Series};
use serde::{Deserialize, Serialize};

use super::harness::{
    derived_seed, image_data, markdown_table, Context, Experiment, ExperimentArgs, Figure,
    Provenance, Scale, TrainedRun, Training,
};
use crate::error::{Error, Result};

/// The experiment's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemorizeConfig {
    /// Networks per group.
    pub group_size: usize,
    /// Image side.
    pub side: usize,
    /// Training images (small, so the random-label group can memorise them).
    pub train_count: usize,
    /// Test images the distances are measured on.
    pub test_count: usize,
    /// Epochs (both groups).
    pub epochs: usize,
    /// CNN depth and width.
    pub cnn: (usize, usize),
    /// Conv maps average-pooled to K x K, so PWCCA sees fewer features than examples.
    pub pool: usize,
    /// Adam learning rate.
    pub lr: f64,
}

impl MemorizeConfig {
    /// The configuration of `scale`.
    pub fn for_scale(scale: Scale) -> Self {
        match scale {
            Scale::Smoke => MemorizeConfig {
                group_size: 2,
                side: 16,
                train_count: 128,
                test_count: 256,
                epochs: 2,
                cnn: (3, 8),
                pool: 2,
                lr: 3e-3,
            },
            Scale::Default => MemorizeConfig {
                group_size: 3,
                side: 16,
                train_count: 500,
                test_count: 1000,
                epochs: 80,
                cnn: (4, 32),
                pool: 2,
                lr: 2e-3,
            },
            Scale::Full => MemorizeConfig {
                group_size: 5,
                side: 32,
                train_count: 10_000,
                test_count: 5000,
                epochs: 200,
                cnn: (8, 64),
                pool: 2,
                lr: 1e-3,
            },
        }
    }
}

/// One group's distances.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupResult {
    /// `true labels` or `random labels`.
    pub group: String,
    /// Training accuracy of each network (random labels: memorisation).
    pub train_accuracy: Vec<f64>,
    /// Test accuracy of each network.
    pub test_accuracy: Vec<f64>,
    /// Layer names.
    pub layers: Vec<String>,
    /// Per pair (i, j): the PWCCA distance of each layer.
    pub pair_distances: Vec<((usize, usize), Vec<Option<f64>>)>,
    /// Per layer: mean and standard deviation over pairs.
    pub mean: Vec<f64>,
    /// Standard deviation over pairs.
    pub sd: Vec<f64>,
}

/// What the experiment measured (`results.json` adds the configs and provenance).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemorizeAnalysis {
    /// True labels, then random labels.
    pub groups: Vec<GroupResult>,
}

/// The two groups: (label, fraction of random labels, run-name prefix).
const GROUPS: [(&str, f64, &str); 2] = [
    ("true labels", 0.0, "true"),
    ("random labels", 1.0, "random"),
];

/// The experiment; see the module docs.
pub struct MemorizeVsGeneralize;

/// Runs the experiment with its configuration from `args`; returns the path of `summary.md`.
pub fn run(args: &ExperimentArgs) -> Result<PathBuf> {
    super::cells::run::<MemorizeVsGeneralize>(args)
}

impl Experiment for MemorizeVsGeneralize {
    const NAME: &'static str = "memorize_vs_generalize";
    type Config = MemorizeConfig;
    type Analysis = MemorizeAnalysis;

    fn config(scale: Scale) -> MemorizeConfig {
        MemorizeConfig::for_scale(scale)
    }

    fn headline(config: &MemorizeConfig, args: &ExperimentArgs) -> String {
        format!(
            "memorize_vs_generalize: two groups of {} CNNs on {} ({} images), true and random labels, {} epochs",
            config.group_size, args.data, config.train_count, config.epochs
        )
    }

    /// `group_size` CNNs on the true labels, then as many on random labels, each from its own
    /// seed.
    fn trainings(config: &MemorizeConfig, args: &ExperimentArgs) -> Result<Vec<Training>> {
        let mut trainings = Vec::new();
        for (g, (_, fraction, prefix)) in GROUPS.into_iter().enumerate() {
            for k in 0..config.group_size {
                let tc = TrainConfig {
                    model: ModelSpec::Cnn(
                        PlainCnnConfig::new()
                            .with_depth(config.cnn.0)
                            .with_width(config.cnn.1),
                    ),
                    data: DataConfig {
                        random_labels: fraction,
                        augment: false,
                        ..image_data(args, config.side, config.train_count, config.test_count)
                    },
                    optimizer: OptimizerConfig::adam(),
                    schedule: ScheduleConfig::default(),
                    lr: config.lr,
                    epochs: config.epochs,
                    batch_size: 64,
                    seed: derived_seed(args.seed, (g * 100 + k) as u64),
                };
                trainings.push(Training::new(format!("{prefix}-{k}"), tc));
            }
        }
        Ok(trainings)
    }

    /// Activations of every network on the same test images (true labels are irrelevant
    /// here), and the PWCCA distance of every pair within a group, layer by layer.
    fn analyse(
        ctx: &Context,
        config: &MemorizeConfig,
        runs: &[TrainedRun],
    ) -> Result<MemorizeAnalysis> {
        let first = runs
            .first()
            .ok_or_else(|| Error::Failure("memorize_vs_generalize trained no models".into()))?;
        let data = RunData::open(&first.config.data, first.config.seed)?;
        let RunData::Images(images) = &data else {
            return Err(Error::Input(
                "memorize_vs_generalize needs an image dataset".into(),
            ));
        };
        let probe = ProbeSet::new(config.test_count, config.test_count, 1, None)?;
        let batch = probe
            .iter(&*images.test, &images.batcher, &ctx.device)
            .next()
            .ok_or_else(|| Error::Failure("no probe batch".into()))??;
        let mode = ConvMode::Pool { size: config.pool };
        let options = MetricOptions::default();
        let mut groups = Vec::new();
        for ((label, _, _), group_runs) in GROUPS.iter().zip(runs.chunks(config.group_size)) {
            let mut per_network: Vec<Vec<Layer>> = Vec::new();
            for run in group_runs {
                let model = run.load(&ctx.device)?;
                let (_, acts) = model.forward_images(batch.images.clone(), &Probe::Blocks)?;
                per_network.push(layers_from_activations(acts, mode, TimeReduction::Last)?);
            }
            groups.push(group_distances(label, group_runs, &per_network, &options)?);
        }
        Ok(MemorizeAnalysis { groups })
    }

    /// The mean distance per layer of each group, shaded from the smallest to the largest
    /// distance over its pairs.
    fn figures(
        ctx: &Context,
        _config: &MemorizeConfig,
        analysis: &MemorizeAnalysis,
    ) -> Result<Vec<Figure>> {
        let results = &analysis.groups;
        let series = results
            .iter()
            .map(|g| Series {
                name: format!(
                    "{} (mean; band: min to max over {} pairs)",
                    g.group,
                    g.pair_distances.len()
                ),
                points: (0..g.layers.len()).map(|l| (l as f64, g.mean[l])).collect(),
                band: Some(
                    (0..g.layers.len())
                        .map(|l| {
                            let values: Vec<f64> =
                                g.pair_distances.iter().filter_map(|(_, d)| d[l]).collect();
                            let low = values.iter().copied().fold(g.mean[l], f64::min);
                            let high = values.iter().copied().fold(g.mean[l], f64::max);
                            (low, high)
                        })
                        .collect(),
                ),
            })
            .collect();
        let mut plot = LinePlot::new(
            series,
            "Mean PWCCA distance between the networks of a group",
            "layer",
            "PWCCA distance (1 - PWCCA)",
        );
        plot.colors = LineColors::Legend;
        plot.x_tick_labels = Some(results[0].layers.clone());
        save(&plot, &ctx.out.join("pwcca_distance.png"))?;
        Ok(vec![Figure::new(
            "pwcca_distance.png",
            "Mean PWCCA distance between the networks of each group, per layer.",
        )])
    }

    fn summary(
        config: &MemorizeConfig,
        analysis: &MemorizeAnalysis,
        provenance: &Provenance,
        _figures: &[Figure],
    ) -> String {
        summary(config, analysis, provenance)
    }
}

/// The PWCCA distance of every pair of networks in one group, per layer, with its mean and
/// standard deviation over pairs.
fn group_distances(
    label: &str,
    runs: &[TrainedRun],
    per_network: &[Vec<Layer>],
    options: &MetricOptions,
) -> Result<GroupResult> {
    let names: Vec<String> = per_network[0].iter().map(|l| l.name.clone()).collect();
    let mut pairs = Vec::new();
    for i in 0..per_network.len() {
        for j in i + 1..per_network.len() {
            let mut distances = Vec::new();
            for (a, b) in per_network[i].iter().zip(&per_network[j]) {
                let d = similarity_matrix(
                    Metric::Pwcca,
                    std::slice::from_ref(a),
                    std::slice::from_ref(b),
                    options,
                )
                .ok()
                .and_then(|m| m.values[0][0])
                .map(|v| 1.0 - v);
                distances.push(d);
            }
            pairs.push(((i, j), distances));
        }
    }
    let (mut mean, mut sd) = (Vec::new(), Vec::new());
    for l in 0..names.len() {
        let v: Vec<f64> = pairs.iter().filter_map(|(_, d)| d[l]).collect();
        let m = v.iter().sum::<f64>() / v.len().max(1) as f64;
        let s =
            (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len().max(2) - 1) as f64).sqrt();
        mean.push(m);
        sd.push(s);
    }
    let accuracies = |f: fn(&repsim_train::EpochMetrics) -> f64| -> Result<Vec<f64>> {
        runs.iter().map(|r| Ok(f(r.last()?))).collect()
    };
    Ok(GroupResult {
        group: label.to_string(),
        train_accuracy: accuracies(|m| m.train_accuracy)?,
        test_accuracy: accuracies(|m| m.test_accuracy)?,
        layers: names,
        pair_distances: pairs,
        mean,
        sd,
    })
}

fn summary(c: &MemorizeConfig, r: &MemorizeAnalysis, p: &Provenance) -> String {
    let mut s = format!(
        "# memorize_vs_generalize\n\nMorcos et al. 2018, Fig. 2-3. Two groups of {} CNNs (depth {}, width {}), one on true labels and one \
         on random labels, each trained from its own seed on the same {} `{}` images ({} px, no augmentation, Adam lr {}, {} epochs). \
         PWCCA distance (1 - PWCCA) between every pair within a group, per layer, on {} test images (conv maps average-pooled to {} x {}). \
         Device: {}. Wall time of this run {:.0} s (training {:.0} s); the models' own training time {:.0} s.\n\n",
        c.group_size, c.cnn.0, c.cnn.1, c.train_count, p.data, c.side, c.lr, c.epochs, c.test_count, c.pool, c.pool,
        p.device, p.train_seconds + p.analysis_seconds, p.train_seconds, p.models_training_seconds
    );
    for g in &r.groups {
        let fmt = |v: &[f64]| {
            v.iter()
                .map(|a| format!("{:.1}%", 100.0 * a))
                .collect::<Vec<_>>()
                .join(", ")
        };
        s.push_str(&format!(
            "- {}: train accuracy {}; test accuracy {}\n",
            g.group,
            fmt(&g.train_accuracy),
            fmt(&g.test_accuracy)
        ));
    }
    s.push('\n');
    let rows: Vec<Vec<String>> = r.groups[0]
        .layers
        .iter()
        .enumerate()
        .map(|(l, name)| {
            let mut row = vec![name.clone()];
            for g in &r.groups {
                row.push(format!("{:.3} ± {:.3}", g.mean[l], g.sd[l]));
            }
            row.push(format!("{:+.3}", r.groups[1].mean[l] - r.groups[0].mean[l]));
            row
        })
        .collect();
    s.push_str(&markdown_table(
        &["layer", "true labels", "random labels", "random - true"],
        &rows,
    ));
    s.push_str("\nA positive last column means the memorising networks differ more from each other than the generalising ones at that layer.\n\n");
    s.push_str("![pwcca_distance.png](pwcca_distance.png)\n\n");
    s
}
