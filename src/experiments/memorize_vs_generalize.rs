//! `memorize_vs_generalize`: Morcos et al. 2018 ("Insights on representational similarity in
//! neural networks with canonical correlation", NeurIPS), Fig. 2-3: networks that generalise
//! converge to more similar representations than networks that memorise. Trains a group of CNNs
//! from different seeds on the true labels and a group on random labels (same architecture,
//! trained until the random-label group fits its training set), and measures the PWCCA distance
//! `1 - PWCCA` between every pair of networks within each group, layer by layer, on the test
//! split.

use std::path::PathBuf;
use std::time::Instant;

use repsim_data::ProbeSet;
use repsim_model::{ModelSpec, PlainCnnConfig, Probe, TimeReduction};
use repsim_similarity::{conv_layer, similarity_matrix, ConvMode, Layer, Metric, MetricOptions};
use repsim_train::datasets::RunData;
use repsim_train::{DataConfig, OptimizerConfig, ScheduleConfig, TrainConfig};
use repsim_viz::{save, LineColors, LinePlot, Series};
use serde::{Deserialize, Serialize};

use super::{
    derived_seed, markdown_table, Context, ExperimentArgs, ExperimentError, Provenance, Result,
    Scale, TrainedRun,
};

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
#[derive(Debug, Clone, Serialize)]
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

/// The results.
#[derive(Debug, Clone, Serialize)]
pub struct MemorizeResults {
    /// The configuration.
    pub config: MemorizeConfig,
    /// Training configs.
    pub training: Vec<TrainConfig>,
    /// True labels, then random labels.
    pub groups: Vec<GroupResult>,
    /// Provenance.
    pub provenance: Provenance,
}

/// Runs the experiment; returns the path of `summary.md`.
pub fn run(args: &ExperimentArgs) -> Result<PathBuf> {
    let config = args.config_or(MemorizeConfig::for_scale(args.scale()))?;
    let ctx = Context::new(args, "memorize_vs_generalize")?;
    let train_started = Instant::now();
    let mut groups: Vec<(String, Vec<TrainedRun>)> = Vec::new();
    let mut training = Vec::new();
    for (g, (label, fraction)) in [("true labels", 0.0), ("random labels", 1.0)]
        .into_iter()
        .enumerate()
    {
        let mut runs = Vec::new();
        for k in 0..config.group_size {
            let tc = TrainConfig {
                model: ModelSpec::Cnn(
                    PlainCnnConfig::new()
                        .with_depth(config.cnn.0)
                        .with_width(config.cnn.1),
                ),
                data: DataConfig {
                    dataset: args.data.clone(),
                    side: config.side,
                    train_count: Some(config.train_count),
                    test_count: Some(config.test_count),
                    random_labels: fraction,
                    augment: false,
                    data_seed: 0,
                    window: 64,
                },
                optimizer: OptimizerConfig::adam(),
                schedule: ScheduleConfig::default(),
                lr: config.lr,
                epochs: config.epochs,
                batch_size: 64,
                seed: derived_seed(args.seed, (g * 100 + k) as u64),
            };
            let name = format!("{}-{k}", if fraction > 0.0 { "random" } else { "true" });
            runs.push(ctx.train_or_reuse(&name, &tc)?);
            training.push(tc);
        }
        groups.push((label.to_string(), runs));
    }
    let train_seconds = train_started.elapsed().as_secs_f64();

    // Activations of every network on the same test images (true labels are irrelevant here).
    let data = RunData::open(&training[0].data, training[0].seed)?;
    let RunData::Images(images) = &data else {
        return Err(ExperimentError::Input(
            "memorize_vs_generalize needs an image dataset".into(),
        ));
    };
    let probe = ProbeSet::new(config.test_count, config.test_count, 1, None)?;
    let batch = probe
        .iter(&*images.test, &images.batcher, &ctx.device)
        .next()
        .ok_or_else(|| ExperimentError::Failure("no probe batch".into()))??;
    let mode = ConvMode::Pool { size: config.pool };
    let options = MetricOptions::default();
    let mut results = Vec::new();
    for (label, runs) in &groups {
        let mut per_network: Vec<Vec<Layer>> = Vec::new();
        for run in runs {
            let model = run.load(&ctx.device)?;
            let (_, acts) = model.forward_images(batch.images.clone(), &Probe::Blocks)?;
            let mut layers = Vec::new();
            for (name, t) in acts.iter() {
                layers.push(match t {
                    repsim_model::ActivationTensor::Map(m) => {
                        conv_layer(name.clone(), m.clone(), mode)?
                    }
                    other => Layer {
                        name: name.clone(),
                        matrix: other.clone().into_matrix(TimeReduction::Last),
                    },
                });
            }
            per_network.push(layers);
        }
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
                        &options,
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
            let s = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len().max(2) - 1) as f64)
                .sqrt();
            mean.push(m);
            sd.push(s);
        }
        results.push(GroupResult {
            group: label.clone(),
            train_accuracy: runs.iter().map(|r| r.last().train_accuracy).collect(),
            test_accuracy: runs.iter().map(|r| r.last().test_accuracy).collect(),
            layers: names,
            pair_distances: pairs,
            mean,
            sd,
        });
    }

    // One plot: the mean distance per layer of each group, shaded from the smallest to the
    // largest distance over its pairs.
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

    let results = MemorizeResults {
        config: config.clone(),
        training,
        groups: results,
        provenance: ctx.provenance(
            train_seconds,
            groups
                .iter()
                .flat_map(|(_, runs)| runs.iter().map(TrainedRun::training_seconds))
                .sum(),
        ),
    };
    ctx.write_json("results.json", &results)?;
    let path = ctx.write_text("summary.md", &summary(&results))?;
    println!(
        "wall time: {:.0} s (training {:.0} s)",
        ctx.elapsed(),
        train_seconds
    );
    Ok(path)
}

fn summary(r: &MemorizeResults) -> String {
    let c = &r.config;
    let p = &r.provenance;
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
    s.push_str(&format!(
        "Reproduce: `cargo run --example memorize_vs_generalize -- --seed {}{}`.\n",
        p.seed,
        match p.scale {
            Scale::Smoke => " --smoke",
            Scale::Full => " --full",
            Scale::Default => "",
        }
    ));
    s
}
