//! `repsim describe --model resnet --depth 20 ...`: a model's configuration, parameter count,
//! and every probed layer's name and activation shape, before anything is compared.

use std::path::PathBuf;

use repsim_model::{
    CellKind, Description, ModelSpec, PlainCnnConfig, Probe, RecurrentConfig, ResNetConfig,
    RnnClassifierConfig, RnnLanguageModelConfig, Stem, SvccaConvNetConfig,
};

use super::flags::parse_device;
use crate::device::{select_device, DeviceChoice};
use crate::error::Error as CliError;

/// Which model, shared by every command that builds one.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// Family: resnet (CIFAR layout), resnet18/34/50/101/152 (ImageNet layout), cnn,
    /// svcca-cnn, lstm, gru, rnn (sequence classifiers), lstm-lm, gru-lm, rnn-lm.
    #[arg(long, default_value = "resnet")]
    pub model: String,
    /// Depth: ResNet depth (6n+2 or 9n+2; default 20) or number of conv layers of `cnn`
    /// (default 6).
    #[arg(long)]
    pub depth: Option<usize>,
    /// Width: ResNet multiplier k (default 1) or channels of the first `cnn` layers (32).
    #[arg(long)]
    pub width: Option<usize>,
    /// Number of classes.
    #[arg(long, default_value_t = 10)]
    pub classes: usize,
    /// ResNet stem: cifar or imagenet (default: the family's own).
    #[arg(long)]
    pub stem: Option<String>,
    /// ResNet shortcut: projection or zero_pad.
    #[arg(long, default_value = "projection")]
    pub shortcut: String,
    /// ResNet block: basic or bottleneck (default: inferred from the depth).
    #[arg(long)]
    pub block: Option<String>,
    /// RNNs: hidden units per layer.
    #[arg(long, default_value_t = 128)]
    pub hidden: usize,
    /// RNNs: stacked layers.
    #[arg(long, default_value_t = 2)]
    pub layers: usize,
    /// RNN classifiers: features per step (96 = a row of a 32 x 32 RGB image).
    #[arg(long, default_value_t = 96)]
    pub features: usize,
    /// Language models: vocabulary size.
    #[arg(long, default_value_t = 64)]
    pub vocab: usize,
}

impl ModelArgs {
    /// The model these arguments name.
    pub fn spec(&self) -> Result<ModelSpec, CliError> {
        let name = self.model.to_ascii_lowercase();
        let stem = self.stem.as_deref().map(str::parse::<Stem>).transpose()?;
        let block = self.block.as_deref().map(str::parse).transpose()?;
        let shortcut = self.shortcut.parse()?;
        let resnet = |config: ResNetConfig| -> ModelSpec {
            ModelSpec::Resnet(
                config
                    .with_stem(stem)
                    .with_block(block)
                    .with_shortcut(shortcut)
                    .with_width(self.width.unwrap_or(1)),
            )
        };
        let only_resnet = |flag: &str, used: bool| -> Result<(), CliError> {
            if used {
                return Err(CliError::Input(format!(
                    "--{flag} applies to ResNets only, not {}",
                    self.model
                )));
            }
            Ok(())
        };
        let spec = match name.as_str() {
            "resnet" => resnet(ResNetConfig::cifar(self.depth.unwrap_or(20), 1, self.classes)),
            "resnet18" | "resnet34" | "resnet50" | "resnet101" | "resnet152" => {
                let depth: usize = name["resnet".len()..].parse().unwrap_or(0);
                if self.depth.is_some_and(|d| d != depth) {
                    return Err(CliError::Input(format!("--depth {} contradicts --model {name}", self.depth.unwrap_or(0))));
                }
                resnet(ResNetConfig::imagenet(depth, self.classes))
            }
            "cnn" => {
                only_resnet("stem", self.stem.is_some())?;
                ModelSpec::Cnn(
                    PlainCnnConfig::new()
                        .with_depth(self.depth.unwrap_or(6))
                        .with_width(self.width.unwrap_or(32))
                        .with_classes(self.classes),
                )
            }
            "svcca-cnn" => {
                only_resnet("stem", self.stem.is_some())?;
                ModelSpec::SvccaCnn(SvccaConvNetConfig::new().with_classes(self.classes))
            }
            "lstm" | "gru" | "rnn" => {
                let cell: CellKind = name.parse()?;
                ModelSpec::RnnClassifier(
                    RnnClassifierConfig::new(
                        RecurrentConfig::new(cell, self.features).with_hidden(self.hidden).with_layers(self.layers),
                    )
                    .with_classes(self.classes),
                )
            }
            "lstm-lm" | "gru-lm" | "rnn-lm" => {
                let cell: CellKind = name.trim_end_matches("-lm").parse()?;
                ModelSpec::RnnLanguageModel(
                    RnnLanguageModelConfig::new(self.vocab)
                        .with_cell(cell)
                        .with_hidden(self.hidden)
                        .with_layers(self.layers),
                )
            }
            other => {
                return Err(CliError::Input(format!(
                    "unknown model {other:?}; use resnet, resnet18, resnet34, resnet50, resnet101, resnet152, cnn, svcca-cnn, lstm, gru, rnn, lstm-lm, gru-lm or rnn-lm"
                )))
            }
        };
        Ok(spec)
    }
}

/// Arguments of `repsim describe`.
#[derive(Debug, clap::Args)]
pub struct DescribeArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Input side in pixels (images) or steps (sequences); default 32, or 224 for the
    /// ImageNet stem. `--side`, as in `activations`, `data` and `train` (`--input` is kept as
    /// an alias).
    #[arg(long, visible_alias = "input")]
    pub side: Option<usize>,
    /// Which layers: blocks, all, or names=a,b,c.
    #[arg(long, default_value = "blocks")]
    pub probe: Probe,
    /// Also write the description as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Device: auto, flex, wgpu or vulkan (default auto, as every other command).
    #[arg(long, env = "REPSIM_DEVICE", default_value = "auto", value_parser = parse_device)]
    pub device: DeviceChoice,
}

/// Runs `repsim describe`.
pub fn run(args: DescribeArgs) -> Result<(), CliError> {
    let mut spec = args.model.spec()?;
    // The SVCCA conv net's classifier depends on the image side: build it for --side.
    if let (ModelSpec::SvccaCnn(c), Some(side)) = (&mut spec, args.side) {
        c.side = side;
    }
    let probe = args.probe.clone();
    if let Some(json) = &args.json {
        super::output::check_output(json, "--json", &["json"], &[])?;
    }
    let side = args.side.unwrap_or(match &spec {
        ModelSpec::Resnet(c) if c.plan()?.stem == Stem::ImageNet => 224,
        _ => 32,
    });
    if side == 0 || side > 4096 {
        return Err(CliError::Input(format!(
            "--side must be 1 to 4096, got {side}"
        )));
    }
    super::memory::check_model_fits(&spec, side, 1, false)?;
    let selected = select_device(args.device).map_err(|e| CliError::Input(e.0))?;
    status!("device: {selected}");
    let model = spec.init(&selected.device)?;
    let description =
        model.describe(&spec, &spec.input_shape(1, side), &probe, &selected.device)?;
    print!("{}", render(&description));
    if let Some(path) = &args.json {
        let value =
            serde_json::to_value(&description).map_err(|e| CliError::Failure(e.to_string()))?;
        super::output::write_json(path, &value)?;
        status!("wrote {}", path.display());
    }
    Ok(())
}

fn with_thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The description as text: a header and one line per layer.
pub fn render(d: &Description) -> String {
    let config = match &d.spec {
        ModelSpec::Resnet(c) => serde_json::to_string(c),
        ModelSpec::Cnn(c) => serde_json::to_string(c),
        ModelSpec::SvccaCnn(c) => serde_json::to_string(c),
        ModelSpec::RnnClassifier(c) => serde_json::to_string(c),
        ModelSpec::RnnLanguageModel(c) => serde_json::to_string(c),
    }
    .unwrap_or_default();
    let mut out = format!(
        "model: {}\nconfig: {config}\nparameters: {}\ninput: {:?}\nlayers ({}):\n",
        d.name,
        with_thousands(d.parameters),
        d.input,
        d.layers.len()
    );
    let width = d.layers.iter().map(|l| l.name.len()).max().unwrap_or(0);
    for layer in &d.layers {
        let features: usize = layer.shape.iter().skip(1).product();
        out.push_str(&format!(
            "  {:<width$}  {:<20}  {} features\n",
            layer.name,
            format!("{:?}", layer.shape),
            with_thousands(features)
        ));
    }
    out
}
