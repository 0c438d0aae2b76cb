//! `repsim activations --model ... --data ... --out acts.npz`: runs a model over the first
//! examples of a dataset and saves every probed layer's activations, one array per layer, in
//! the .npz layout `repsim compare` reads.

use std::path::PathBuf;
use std::time::Instant;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use repsim_data::{ChannelStats, DataSpec, ImageBatcher, Split};
use repsim_model::{ActivationTensor, AnyModel, ModelSpec, Probe, TimeReduction};
use repsim_similarity::HostLayer;

use super::data::DataArgs;
use super::describe::ModelArgs;
use super::flags::parse_device;
use crate::device::{select_device, DeviceChoice};
use crate::error::Error as CliError;

/// Arguments of `repsim activations`.
#[derive(Debug, clap::Args)]
pub struct ActivationsArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// The .npz file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Which split the examples come from.
    #[arg(long, default_value = "test")]
    pub split: Split,
    /// Number of examples (the first of the split, in order, so two runs see the same ones).
    #[arg(long, default_value_t = 500)]
    pub count: usize,
    /// Examples per forward pass.
    #[arg(long, default_value_t = 100)]
    pub batch_size: usize,
    /// Seed of the model's random initialisation (ignored with --weights).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Load weights saved by repsim (burnpack).
    #[arg(long, conflicts_with = "torchvision")]
    pub weights: Option<PathBuf>,
    /// Load torchvision ResNet weights from a .safetensors state dict.
    #[arg(long)]
    pub torchvision: Option<PathBuf>,
    /// Which layers: blocks, all, or names=a,b,c.
    #[arg(long, default_value = "blocks")]
    pub probe: Probe,
    /// RNN layers: last, mean or steps.
    #[arg(long, default_value = "last")]
    pub time: TimeReduction,
    /// Device: auto, flex, wgpu or vulkan.
    #[arg(long, env = "REPSIM_DEVICE", default_value = "auto", value_parser = parse_device)]
    pub device: DeviceChoice,
}

/// Runs `repsim activations`.
pub fn run(args: ActivationsArgs) -> Result<(), CliError> {
    let spec = args.model.spec()?;
    if matches!(spec, ModelSpec::RnnLanguageModel(_)) {
        return Err(CliError::Input(
            "activations reads image datasets; a language model takes text (use the library's TextCorpus)".into(),
        ));
    }
    let (probe, time, split) = (args.probe.clone(), args.time, args.split);
    if args.count == 0 || args.batch_size == 0 {
        return Err(CliError::Input(
            "--count and --batch-size must be at least 1".into(),
        ));
    }
    let inputs: Vec<&std::path::Path> = args
        .weights
        .iter()
        .chain(args.torchvision.iter())
        .map(|p| p.as_path())
        .collect();
    super::output::check_output(&args.out, "--out", &["npz"], &inputs)?;
    let selected = select_device(args.device).map_err(|e| CliError::Input(e.0))?;
    status!("device: {selected}");
    let device = selected.device.clone();

    let dataset = args.data.open(split)?;
    if dataset.len() < args.count {
        return Err(CliError::Input(format!(
            "--count {} exceeds the {} items of the {split} split",
            args.count,
            dataset.len()
        )));
    }
    let stats = training_stats(&args.data, &dataset, args.weights.as_deref())?;

    let (height, width) = repsim_data::ImageDataset::image_size(&dataset);
    // The SVCCA conv net's classifier depends on the image side: build it for the data's.
    let mut spec = spec;
    if let ModelSpec::SvccaCnn(c) = &mut spec {
        c.side = height;
    }
    super::memory::check_model_fits(&spec, height.max(width), args.batch_size, false)?;
    device.seed(args.seed);
    let model = load_model(&spec, &args, &device)?;

    let started = Instant::now();
    let layers = ProbeRun {
        model: &model,
        dataset: &dataset,
        batcher: ImageBatcher::new(stats),
        count: args.count,
        batch_size: args.batch_size,
        probe: &probe,
        device: &device,
    }
    .host_layers(time)?;
    let layers = if time == TimeReduction::Steps {
        keep_step_layers(layers, args.count)?
    } else {
        layers
    };
    status!(
        "{}: {} layers of {} examples in {:.2} s",
        spec.name(),
        layers.len(),
        args.count,
        started.elapsed().as_secs_f64()
    );
    super::output::with_signal_cleanup(|| repsim_similarity::files::write_npz(&args.out, &layers))?;
    status!("wrote {}", args.out.display());
    Ok(())
}

/// The model of `spec`, initialised on `device` (seeded), with `--weights` or `--torchvision`
/// loaded into it.
fn load_model(
    spec: &ModelSpec,
    args: &ActivationsArgs,
    device: &burn::tensor::Device,
) -> Result<AnyModel, CliError> {
    let mut model = spec.init(device)?;
    if let Some(path) = &args.weights {
        model = match model {
            AnyModel::ResNet(m) => AnyModel::ResNet(repsim_model::load_weights(m, path)?),
            AnyModel::Cnn(m) => AnyModel::Cnn(repsim_model::load_weights(m, path)?),
            AnyModel::SvccaCnn(m) => AnyModel::SvccaCnn(repsim_model::load_weights(m, path)?),
            AnyModel::RnnClassifier(m) => {
                AnyModel::RnnClassifier(repsim_model::load_weights(m, path)?)
            }
            AnyModel::RnnLanguageModel(m) => {
                AnyModel::RnnLanguageModel(repsim_model::load_weights(m, path)?)
            }
        };
    }
    if let Some(path) = &args.torchvision {
        let AnyModel::ResNet(m) = model else {
            return Err(CliError::Input(
                "--torchvision loads ResNet weights only".into(),
            ));
        };
        let (m, report) = repsim_model::import_torchvision_resnet(m, path)?;
        status!(
            "imported {} tensors from {}",
            report.applied,
            path.display()
        );
        if !report.unused.is_empty() {
            eprintln!(
                "warning: {} keys of the file were not used, e.g. {}",
                report.unused.len(),
                report.unused[0]
            );
        }
        model = AnyModel::ResNet(m);
    }
    Ok(model)
}

/// A probe: `model` over the first `count` items of `dataset` (normalised by `batcher`, on
/// `device`) in batches of `batch_size`, recording the layers `probe` names.
pub(crate) struct ProbeRun<'a, D> {
    pub(crate) model: &'a AnyModel,
    pub(crate) dataset: &'a D,
    pub(crate) batcher: ImageBatcher,
    pub(crate) count: usize,
    pub(crate) batch_size: usize,
    pub(crate) probe: &'a Probe,
    pub(crate) device: &'a burn::tensor::Device,
}

impl<D: Dataset<repsim_data::ImageItem>> ProbeRun<'_, D> {
    /// The probed activations of items `range` (one batch).
    fn batch_activations(
        &self,
        range: std::ops::Range<usize>,
    ) -> Result<repsim_model::Activations, CliError> {
        let (start, end) = (range.start, range.end);
        let items = self
            .dataset
            .get_many(range.collect())
            .map_err(|e| CliError::Input(format!("reading items {start}..{end}: {e}")))?;
        let batch = self.batcher.batch(items, self.device);
        let (_, activations) = self.model.forward_images(batch.images, self.probe)?;
        Ok(activations)
    }

    /// The item ranges of the probe's batches: `batch_size` items each, the last may be
    /// shorter.
    pub(crate) fn batch_ranges(&self) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
        let batch_size = self.batch_size.max(1);
        (0..self.count)
            .step_by(batch_size)
            .map(move |start| start..(start + batch_size).min(self.count))
    }

    /// Hands each batch's probed activations to `each`, with a progress bar over the examples.
    fn for_each_batch(
        &self,
        mut each: impl FnMut(repsim_model::Activations) -> Result<(), CliError>,
    ) -> Result<(), CliError> {
        let bar = super::progress::bar(self.count as u64, "probing");
        for range in self.batch_ranges() {
            let end = range.end;
            each(self.batch_activations(range)?)?;
            bar.set_position(end as u64);
        }
        bar.finish_and_clear();
        Ok(())
    }

    /// One batch's layers as a comparison takes them (conv maps shaped by `conv`, sequences
    /// reduced by `time`), each with its shape before shaping: what
    /// [`ProbeRun::device_layers`] gathers, one batch at a time.
    pub(crate) fn batch_layers(
        &self,
        range: std::ops::Range<usize>,
        time: TimeReduction,
        conv: repsim_similarity::ConvMode,
    ) -> Result<Vec<(repsim_similarity::Layer, Vec<usize>)>, CliError> {
        self.batch_activations(range)?
            .into_entries()
            .into_iter()
            .map(|(name, tensor)| joined_layer(name, vec![tensor], time, conv))
            .collect()
    }

    /// The activations gathered on the host (one entry per probed layer, examples first, each
    /// sequence reduced by `time`): what `repsim activations` writes. The device holds one
    /// batch at a time.
    pub(crate) fn host_layers(&self, time: TimeReduction) -> Result<Vec<HostLayer>, CliError> {
        let mut layers: Vec<HostLayer> = Vec::new();
        let mut first = true;
        self.for_each_batch(|activations| {
            for (k, (name, tensor)) in activations.iter().enumerate() {
                let (shape, values) = host_values(tensor, time)?;
                if first {
                    layers.push(HostLayer {
                        name: name.clone(),
                        shape,
                        values,
                        stored_dtype: "f32",
                    });
                } else if let Some(layer) = layers.get_mut(k) {
                    layer.shape[0] += shape[0];
                    layer.values.extend(values);
                }
            }
            first = false;
            Ok(())
        })?;
        Ok(layers)
    }

    /// The same activations kept on the device as the layers a comparison takes (conv maps
    /// shaped by `conv`, sequences reduced by `time`), each with its shape before shaping: no
    /// round trip through the host, and the values of [`ProbeRun::host_layers`] uploaded
    /// again, bit for bit.
    pub(crate) fn device_layers(
        &self,
        time: TimeReduction,
        conv: repsim_similarity::ConvMode,
    ) -> Result<Vec<(repsim_similarity::Layer, Vec<usize>)>, CliError> {
        // Per layer: its name and its batches (maps stay maps until every batch is in).
        let mut batches: Vec<(String, Vec<ActivationTensor>)> = Vec::new();
        self.for_each_batch(|activations| {
            for (k, (name, tensor)) in activations.into_entries().into_iter().enumerate() {
                let tensor = match tensor {
                    ActivationTensor::Sequence(_) => {
                        ActivationTensor::Vector(tensor.into_matrix(time))
                    }
                    other => other,
                };
                match batches.get_mut(k) {
                    Some((_, parts)) => parts.push(tensor),
                    None => batches.push((name, vec![tensor])),
                }
            }
            Ok(())
        })?;
        batches
            .into_iter()
            .map(|(name, parts)| joined_layer(name, parts, time, conv))
            .collect()
    }
}

/// One layer's batches joined on the device, shaped as a comparison takes it, with its shape
/// before shaping.
fn joined_layer(
    name: String,
    parts: Vec<ActivationTensor>,
    time: TimeReduction,
    conv: repsim_similarity::ConvMode,
) -> Result<(repsim_similarity::Layer, Vec<usize>), CliError> {
    let maps: Vec<_> = parts
        .iter()
        .filter_map(|t| match t {
            ActivationTensor::Map(m) => Some(m.clone()),
            _ => None,
        })
        .collect();
    if maps.len() == parts.len() {
        let whole = burn::tensor::Tensor::cat(maps, 0);
        let shape = whole.dims().to_vec();
        let layer = match conv {
            repsim_similarity::ConvMode::Flatten => repsim_similarity::Layer {
                name,
                matrix: ActivationTensor::Map(whole).into_matrix(time),
            },
            _ => repsim_similarity::conv_layer(name, whole, conv)?,
        };
        return Ok((layer, shape));
    }
    let rows: Vec<_> = parts.into_iter().map(|t| t.into_matrix(time)).collect();
    let matrix = burn::tensor::Tensor::cat(rows, 0);
    let shape = matrix.dims().to_vec();
    Ok((repsim_similarity::Layer { name, matrix }, shape))
}

/// With `--time steps` the sequence layers hold one row per example and step, the others one
/// per example; a file mixing them could not be compared (every layer of a file must hold the
/// same rows). Keeps the per-step layers and says which were left out.
fn keep_step_layers(layers: Vec<HostLayer>, count: usize) -> Result<Vec<HostLayer>, CliError> {
    let (steps, per_example): (Vec<HostLayer>, Vec<HostLayer>) =
        layers.into_iter().partition(|l| l.shape[0] != count);
    if steps.is_empty() {
        return Err(CliError::Input(
            "--time steps: the probed layers have no time steps (only recurrent layers do); \
             use --time last or mean"
                .into(),
        ));
    }
    if !per_example.is_empty() {
        let names: Vec<&str> = per_example.iter().map(|l| l.name.as_str()).collect();
        eprintln!(
            "--time steps: kept the {} layers with one row per example and step ({} rows); left \
             out {} (one row per example), which a file of per-step rows cannot hold",
            steps.len(),
            steps[0].shape[0],
            names.join(", ")
        );
    }
    Ok(steps)
}

/// The normalisation a model trained on `data` saw. Weights from a training run (its
/// `config.json` beside them, or one folder up) are probed with the statistics that run
/// recorded: those of its own training images. Otherwise the stated default, with a warning
/// for weights: CIFAR's published statistics, or those of the first 2,000 images of the
/// training split (of the folder, for an image folder).
pub(crate) fn training_stats(
    data: &DataArgs,
    dataset: &repsim_data::AnyImageDataset,
    weights: Option<&std::path::Path>,
) -> Result<ChannelStats, CliError> {
    if let Some(weights) = weights {
        if let Some((run, record)) = repsim_train::RunRecord::of_weights(weights) {
            if let Some(stats) = record.normalization {
                status!(
                    "normalising by the statistics of {}'s training images (its config.json)",
                    run.display()
                );
                return Ok(stats);
            }
        }
    }
    let (stats, rule) = match data.data {
        DataSpec::Cifar10(_) => (ChannelStats::CIFAR10, "CIFAR-10's published statistics"),
        DataSpec::Cifar100(..) => (ChannelStats::CIFAR100, "CIFAR-100's published statistics"),
        DataSpec::Shapes => (
            ChannelStats::compute(&data.open(Split::Train)?, Some(2000))?,
            "the statistics of the first 2,000 training images",
        ),
        DataSpec::Folder(_) => (
            ChannelStats::compute(dataset, Some(2000))?,
            "the statistics of the folder's first 2,000 images",
        ),
    };
    if let Some(weights) = weights {
        eprintln!(
            "warning: {} has no run record of its normalisation beside it (config.json of `repsim train`): normalising by {rule}, which may differ from what it was trained with",
            weights.display()
        );
    }
    Ok(stats)
}

/// An activation's shape and values on the host; sequences are reduced over time first.
fn host_values(
    tensor: &ActivationTensor,
    time: TimeReduction,
) -> Result<(Vec<usize>, Vec<f32>), CliError> {
    let read = |data: burn::tensor::TensorData| {
        data.convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| CliError::Failure(format!("reading activations back: {e:?}")))
    };
    match tensor {
        ActivationTensor::Map(t) => Ok((t.dims().to_vec(), read(t.clone().into_data())?)),
        ActivationTensor::Vector(t) => Ok((t.dims().to_vec(), read(t.clone().into_data())?)),
        ActivationTensor::Sequence(_) => {
            let mut activations = repsim_model::Activations::default();
            activations.push_sequence("x", tensor.clone());
            let (_, matrix) = activations.into_matrices(time).remove(0);
            Ok((matrix.dims().to_vec(), read(matrix.into_data())?))
        }
    }
}
