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
use repsim_similarity::{MinibatchCka, SimilarityMatrix};
use repsim_train::datasets::RunData;
use repsim_train::{DataConfig, OptimizerConfig, ScheduleConfig, TrainConfig};
use repsim_viz::{save, Heatmap, HeatmapOptions};
use serde::{Deserialize, Serialize};

use super::{
    derived_seed, layers_of, Context, ExperimentArgs, ExperimentError, Provenance, Result, Scale,
    TrainedRun,
};

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
#[derive(Debug, Clone, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
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

/// The results.
#[derive(Debug, Clone, Serialize)]
pub struct ResnetDepthsResults {
    /// The configuration.
    pub config: ResnetDepthsConfig,
    /// Per network.
    pub networks: Vec<NetworkResult>,
    /// The comparisons.
    pub comparisons: Vec<ComparisonResult>,
    /// Wall time of the CKA part (every comparison), seconds.
    pub cka_seconds: f64,
    /// Provenance (training time separately).
    pub provenance: Provenance,
}

/// Runs the experiment; returns the path of `summary.md`.
pub fn run(args: &ExperimentArgs) -> Result<PathBuf> {
    let config = args.config_or(ResnetDepthsConfig::for_scale(args.scale()))?;
    if config.depths.len() < 2 {
        return Err(ExperimentError::Input(
            "resnet_depths compares at least two depths".into(),
        ));
    }
    let ctx = Context::new(args, "resnet_depths")?;
    let weights: BTreeMap<usize, PathBuf> = [
        (50, &args.weights50),
        (101, &args.weights101),
        (152, &args.weights152),
    ]
    .into_iter()
    .filter_map(|(d, w)| w.clone().map(|w| (d, w)))
    .collect();
    let torchvision = !weights.is_empty();
    if torchvision {
        if let Some(d) = config.depths.iter().find(|d| !weights.contains_key(d)) {
            return Err(ExperimentError::Input(format!(
                "with torchvision weights every compared depth needs its file: --weights{d} is missing"
            )));
        }
    }
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
    let train_started = Instant::now();
    let mut models = Vec::new();
    let mut networks = Vec::new();
    let mut runs: Vec<TrainedRun> = Vec::new();
    for &depth in &config.depths {
        let name = format!("resnet{depth}");
        if torchvision {
            let path = &weights[&depth];
            let model = ResNetConfig::imagenet(depth, 1000).init(&ctx.device)?;
            let (model, report) = import_torchvision_resnet(model, path)?;
            println!(
                "{name}: loaded {} tensors from {}",
                report.applied,
                path.display()
            );
            let model = AnyModel::ResNet(model);
            networks.push(NetworkResult {
                name,
                parameters: model.num_params(),
                test_accuracy: None,
                weights: path.display().to_string(),
            });
            models.push(model);
        } else {
            let tc = TrainConfig {
                model: ModelSpec::Resnet(
                    ResNetConfig::imagenet(depth, 10).with_stem(Some(Stem::Cifar)),
                ),
                data: data.clone(),
                optimizer: OptimizerConfig::sgd(),
                schedule: ScheduleConfig::default(),
                lr: config.lr,
                epochs: config.epochs,
                batch_size: config.batch_size,
                seed: derived_seed(args.seed, depth as u64),
            };
            let run = ctx.train_or_reuse(&name, &tc)?;
            let model = run.load(&ctx.device)?;
            networks.push(NetworkResult {
                name,
                parameters: model.num_params(),
                test_accuracy: Some(run.last().test_accuracy),
                weights: format!("trained briefly: {}", run.dir.display()),
            });
            models.push(model);
            runs.push(run);
        }
    }
    let train_seconds = train_started.elapsed().as_secs_f64();

    // The CKA part: the first model against each of the others, on the same test images.
    let cka_started = Instant::now();
    let run_data = RunData::open(&data, 0)?;
    let RunData::Images(images) = &run_data else {
        return Err(ExperimentError::Input(
            "resnet_depths needs an image dataset".into(),
        ));
    };
    let probe_set = ProbeSet::new(config.test_count, config.cka_batch, 1, Some(args.seed))?;
    let probe: Probe = config.probe.parse()?;
    let mut comparisons = Vec::new();
    let mut figures = Vec::new();
    // One pass over the probe batches: the first model's layers are computed once per batch and
    // compared with every other model's. A comparison's seconds: its model's forward passes and
    // its CKA updates (the shared forward of the first model is in the CKA part's total).
    let mut accumulators: Vec<(MinibatchCka, f64)> = (1..models.len())
        .map(|_| (MinibatchCka::new(), 0.0))
        .collect();
    for batch in probe_set.iter(&*images.test, &images.batcher, &ctx.device) {
        let x = batch?.images;
        let a = layers_of(&models[0], x.clone(), &probe)?;
        for (other, (cka, seconds)) in models[1..].iter().zip(accumulators.iter_mut()) {
            let started = Instant::now();
            let b = layers_of(other, x.clone(), &probe)?;
            cka.update(&a, &b)?;
            *seconds += started.elapsed().as_secs_f64();
        }
    }
    for (k, (cka, seconds)) in accumulators
        .into_iter()
        .enumerate()
        .map(|(i, c)| (i + 1, c))
    {
        let matrix = cka.finish()?.with_parameter("batch_size", config.cka_batch);
        println!(
            "{} vs {}: {} x {} layers, minibatch CKA in {seconds:.1} s",
            networks[0].name,
            networks[k].name,
            matrix.rows.len(),
            matrix.cols.len()
        );
        let file = format!("cka_{}_vs_{}.png", networks[0].name, networks[k].name);
        let options = HeatmapOptions {
            title: Some(format!(
                "Minibatch CKA: {} vs {}",
                networks[0].name, networks[k].name
            )),
            row_title: Some(networks[0].name.clone()),
            col_title: Some(networks[k].name.clone()),
            origin_lower: true,
            ..HeatmapOptions::default()
        };
        save(&Heatmap::new(&matrix, options), &ctx.out.join(&file))?;
        figures.push(file);
        comparisons.push(ComparisonResult {
            model_a: networks[0].name.clone(),
            model_b: networks[k].name.clone(),
            cka: matrix,
            seconds,
        });
    }
    let cka_seconds = cka_started.elapsed().as_secs_f64();
    let results = ResnetDepthsResults {
        config: config.clone(),
        networks,
        comparisons,
        cka_seconds,
        provenance: ctx.provenance(
            train_seconds,
            runs.iter().map(TrainedRun::training_seconds).sum(),
        ),
    };
    ctx.write_json("results.json", &results)?;
    let path = ctx.write_text("summary.md", &summary(&results, &figures))?;
    println!("CKA part: {cka_seconds:.0} s; training: {train_seconds:.0} s");
    Ok(path)
}

fn summary(r: &ResnetDepthsResults, figures: &[String]) -> String {
    let c = &r.config;
    let p = &r.provenance;
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
    for (cmp, file) in r.comparisons.iter().zip(figures) {
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
    s.push_str(&format!(
        "Reproduce: `cargo run --example resnet_depths -- --seed {}{}`.\n",
        p.seed,
        match p.scale {
            Scale::Smoke => " --smoke",
            Scale::Full => " --full",
            Scale::Default => "",
        }
    ));
    s
}
