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
use repsim_similarity::{similarity_matrix, ConvMode, Layer, Measure};
use repsim_train::datasets::RunData;
use repsim_train::observe::layers_from_activations;
use repsim_train::{DataConfig, OptimizerConfig, ScheduleConfig, TrainConfig};
use repsim_viz::{save, LineColors, LinePlot, Series};
use serde::{Deserialize, Serialize};

use super::harness::{
    derived_seed, image_data, listed, markdown_table, Context, Experiment, ExperimentArgs, Figure,
    Provenance, Scale, TrainedRun, Training,
};
use crate::error::{Error, Result};
use crate::statistics::{binomial, holm, mean_sd, two_group_permutation, PermutationTest};

/// The experiment's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemorizeConfig {
    /// Networks per group, each from its own seed (`--seeds N`).
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
                // 5 per group: 252 assignments of the permutation test, so p can reach 1/252
                // and, Holm-corrected over the 6 layers, 6/252 = 0.024 (4 per group: 6/70 =
                // 0.086, so no layer could be significant after the correction).
                group_size: 5,
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

/// The permutation test of one layer: are the random-label networks further apart from each
/// other than the true-label ones ([`crate::statistics::two_group_permutation`])?
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerTest {
    /// The layer.
    pub layer: String,
    /// The test (statistic: mean distance within the random-label group minus within the
    /// true-label group); `None` when a group has no defined distance at this layer.
    pub test: Option<PermutationTest>,
    /// The p-value adjusted for testing every layer ([`crate::statistics::holm`], over the
    /// layers with a test); the one the summary calls significant or not.
    #[serde(default)]
    pub holm_p_value: Option<f64>,
}

/// What the experiment measured (`results.json` adds the configs and provenance).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemorizeAnalysis {
    /// True labels, then random labels.
    pub groups: Vec<GroupResult>,
    /// Per pair (true-label network i, random-label network j): the PWCCA distance of each
    /// layer (what the permutation test mixes into the groups).
    #[serde(default)]
    pub between_groups: Vec<((usize, usize), Vec<Option<f64>>)>,
    /// Per layer: the permutation test over the assignments of networks to the two groups.
    #[serde(default)]
    pub layer_tests: Vec<LayerTest>,
}

/// The two groups: (label, fraction of random labels, run-name prefix).
const GROUPS: [(&str, f64, &str); 2] = [
    ("true labels", 0.0, "true"),
    ("random labels", 1.0, "random"),
];

/// The experiment; see the module docs.
pub type MemorizeVsGeneralize = MemorizeConfig;

/// Runs the experiment with its configuration from `args`; returns the path of `summary.md`.
pub fn run(args: &ExperimentArgs) -> Result<PathBuf> {
    super::cells::run::<MemorizeVsGeneralize>(args)
}

impl Experiment for MemorizeConfig {
    const NAME: &'static str = "memorize_vs_generalize";
    type Analysis = MemorizeAnalysis;

    fn for_scale(scale: Scale) -> Self {
        MemorizeConfig::for_scale(scale)
    }

    /// `--seeds N`: N networks per group (at least 2, for a pair).
    fn set_seeds(&mut self, seeds: usize) -> Result<()> {
        let config = self;
        config.group_size = seeds;
        Ok(())
    }

    fn check(&self, _args: &ExperimentArgs) -> Result<()> {
        let config = self;
        if config.group_size < 2 {
            return Err(Error::Input(format!(
                "memorize_vs_generalize needs at least 2 networks per group (--seeds / group_size), not {}",
                config.group_size
            )));
        }
        Ok(())
    }

    fn headline(&self, args: &ExperimentArgs) -> String {
        let config = self;
        format!(
            "memorize_vs_generalize: two groups of {} CNNs on {} ({} images), true and random labels, {} epochs",
            config.group_size, args.data, config.train_count, config.epochs
        )
    }

    /// `group_size` CNNs on the true labels, then as many on random labels, each from its own
    /// seed.
    fn trainings(&self, args: &ExperimentArgs) -> Result<Vec<Training>> {
        let config = self;
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
    fn analyse(&self, ctx: &Context, runs: &[TrainedRun]) -> Result<MemorizeAnalysis> {
        let config = self;
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
        let mut per_network: Vec<Vec<Layer>> = Vec::new();
        for run in runs {
            let model = run.load(&ctx.device)?;
            let (_, acts) = model.forward_images(batch.images.clone(), &Probe::Blocks)?;
            per_network.push(layers_from_activations(acts, mode, TimeReduction::Last)?);
        }
        let distances = pair_distances(&per_network);
        let g = config.group_size;
        let mut groups = Vec::new();
        for (k, (label, _, _)) in GROUPS.iter().enumerate() {
            let members: Vec<usize> = (k * g..(k + 1) * g).collect();
            groups.push(group_distances(
                label,
                &runs[k * g..(k + 1) * g],
                &per_network[0],
                &members,
                &distances,
            )?);
        }
        let between_groups = (0..g)
            .flat_map(|i| (0..g).map(move |j| (i, j)))
            .map(|(i, j)| ((i, j), pair_of(&distances, i, g + j, per_network[0].len())))
            .collect();
        let mut layer_tests: Vec<LayerTest> = per_network[0]
            .iter()
            .enumerate()
            .map(|(l, layer)| LayerTest {
                layer: layer.name.clone(),
                test: two_group_permutation(
                    2 * g,
                    g,
                    |i, j| {
                        distances
                            .get(&(i, j))
                            .and_then(|d| d.get(l).copied().flatten())
                    },
                    derived_seed(ctx.args.seed, l as u64),
                ),
                holm_p_value: None,
            })
            .collect();
        let raw: Vec<Option<f64>> = layer_tests
            .iter()
            .map(|t| t.test.map(|t| t.p_value))
            .collect();
        for (t, adjusted) in layer_tests.iter_mut().zip(holm(&raw)) {
            t.holm_p_value = adjusted;
        }
        Ok(MemorizeAnalysis {
            groups,
            between_groups,
            layer_tests,
        })
    }

    /// The mean distance per layer of each group, shaded from the smallest to the largest
    /// distance over its pairs.
    fn figures(&self, ctx: &Context, analysis: &MemorizeAnalysis) -> Result<Vec<Figure>> {
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
        &self,
        analysis: &MemorizeAnalysis,
        provenance: &Provenance,
        _figures: &[Figure],
    ) -> String {
        let config = self;
        summary(config, analysis, provenance)
    }
}

/// The PWCCA distance `1 - PWCCA` of every pair `i < j` of networks, per layer (`None` where
/// it is undefined).
fn pair_distances(
    per_network: &[Vec<Layer>],
) -> std::collections::BTreeMap<(usize, usize), Vec<Option<f64>>> {
    let mut pairs = std::collections::BTreeMap::new();
    for i in 0..per_network.len() {
        for j in i + 1..per_network.len() {
            let distances = per_network[i]
                .iter()
                .zip(&per_network[j])
                .map(|(a, b)| {
                    similarity_matrix(
                        &Measure::PWCCA,
                        std::slice::from_ref(a),
                        std::slice::from_ref(b),
                    )
                    .ok()
                    .and_then(|m| m.values[0][0])
                    .map(|v| 1.0 - v)
                })
                .collect();
            pairs.insert((i, j), distances);
        }
    }
    pairs
}

/// The distances of networks `i < j` per layer (undefined where the pair is missing).
fn pair_of(
    distances: &std::collections::BTreeMap<(usize, usize), Vec<Option<f64>>>,
    i: usize,
    j: usize,
    layers: usize,
) -> Vec<Option<f64>> {
    distances
        .get(&(i, j))
        .cloned()
        .unwrap_or_else(|| vec![None; layers])
}

/// One group's distances: every pair of its `members` (indices into `distances`' networks,
/// reported by their place in the group), with the mean and standard deviation over pairs.
fn group_distances(
    label: &str,
    runs: &[TrainedRun],
    layers: &[Layer],
    members: &[usize],
    distances: &std::collections::BTreeMap<(usize, usize), Vec<Option<f64>>>,
) -> Result<GroupResult> {
    let names: Vec<String> = layers.iter().map(|l| l.name.clone()).collect();
    let mut pairs = Vec::new();
    for (i, &a) in members.iter().enumerate() {
        for (j, &b) in members.iter().enumerate().skip(i + 1) {
            pairs.push(((i, j), pair_of(distances, a, b, layers.len())));
        }
    }
    let (mut mean, mut sd) = (Vec::new(), Vec::new());
    for l in 0..names.len() {
        let v: Vec<f64> = pairs.iter().filter_map(|(_, d)| d[l]).collect();
        // No pair: 0 and 0; one pair: its distance and 0.
        let (m, sd_over_pairs) = mean_sd(&v).map_or((0.0, 0.0), |(m, s)| (m, s.unwrap_or(0.0)));
        mean.push(m);
        sd.push(sd_over_pairs);
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

/// The permutation test of layer `l`, when it was defined.
fn layer_test(r: &MemorizeAnalysis, l: usize) -> Option<&PermutationTest> {
    r.layer_tests.get(l).and_then(|t| t.test.as_ref())
}

/// The summary's "Significance at this scale": which layers' gaps the permutation test
/// supports after Holm's correction over the layers, and the smallest adjusted p-value the group
/// size allows.
fn significance_paragraph(c: &MemorizeConfig, r: &MemorizeAnalysis) -> String {
    let level = 0.05;
    let Some(first) = r.layer_tests.iter().find_map(|t| t.test) else {
        return "**Significance at this scale**: no layer has a defined distance in both groups, so no test was made.\n\n".into();
    };
    let tested: Vec<&LayerTest> = r.layer_tests.iter().filter(|t| t.test.is_some()).collect();
    let m = tested.len();
    let (significant, not): (Vec<&LayerTest>, Vec<&LayerTest>) = tested
        .iter()
        .partition(|t| t.holm_p_value.is_some_and(|p| p <= level));
    let smallest = 1.0 / first.assignments as f64;
    let smallest_adjusted = (m as f64 * smallest).min(1.0);
    let uncorrected = tested
        .iter()
        .filter(|t| t.test.is_some_and(|t| t.p_value <= level))
        .count();
    let mut s = format!(
        "**Significance at this scale** (a permutation test per layer: the {} networks are reassigned to two groups of {} in every \
         possible way{}, and p is the share of assignments whose statistic, mean distance within the random-label group minus within \
         the true-label group, is at least the observed one; the smallest possible p is 1/{} = {:.3}). {m} layers are tested, so the \
         p-values are **Holm-corrected** for multiple tests (Holm 1979: the family-wise error rate over the {m} layers stays at most \
         {level}; the smallest possible adjusted p is {m} x {:.3} = {:.3}). \
         Layers where the memorising networks are further apart at Holm-adjusted p <= {level}: {}. Not significant: {}. \
         Before the correction, {uncorrected} of {m} layers had p <= {level}.",
        2 * c.group_size,
        c.group_size,
        if first.exact { "" } else { " (a seeded sample of 20,000 assignments)" },
        first.assignments,
        smallest,
        smallest,
        smallest_adjusted,
        listed(&significant.iter().map(|t| t.layer.as_str()).collect::<Vec<_>>()),
        listed(&not.iter().map(|t| t.layer.as_str()).collect::<Vec<_>>()),
    );
    if smallest_adjusted > level {
        // The smallest group size whose adjusted minimum reaches the level.
        let enough = (c.group_size + 1..64)
            .find(|g| binomial(2 * g, *g).is_some_and(|a| m as f64 / a as f64 <= level))
            .unwrap_or(c.group_size + 1);
        s.push_str(&format!(
            " With {} networks per group and {m} layers no layer can reach an adjusted p <= {level}; `--seeds {enough}` \
             ({} assignments) can.",
            c.group_size,
            binomial(2 * enough, enough).unwrap_or(usize::MAX)
        ));
    } else {
        let next = c.group_size + 1;
        let assignments = binomial(2 * next, next).unwrap_or(usize::MAX);
        s.push_str(&format!(
            " An unadjusted p = {smallest:.3} is as extreme as {} networks per group can show (no other assignment reaches the observed gap); `--seeds {next}` ({assignments} assignments) resolves smaller p-values.",
            c.group_size,
        ));
    }
    s.push_str(" The test treats networks, not test images, as the units: it asks whether a new seed would show the same gap.\n\n");
    s
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
            row.push(layer_test(r, l).map_or("-".into(), |t| format!("{:.3}", t.p_value)));
            row.push(
                r.layer_tests
                    .get(l)
                    .and_then(|t| t.holm_p_value)
                    .map_or("-".into(), |p| format!("{p:.3}")),
            );
            row
        })
        .collect();
    s.push_str(&markdown_table(
        &[
            "layer",
            "true labels",
            "random labels",
            "random - true",
            "p (permutation)",
            "p (Holm over layers)",
        ],
        &rows,
    ));
    s.push_str("\nA positive `random - true` means the memorising networks differ more from each other than the generalising ones at that layer.\n\n");
    s.push_str(&significance_paragraph(c, r));
    s.push_str("![pwcca_distance.png](pwcca_distance.png)\n\n");
    s
}
