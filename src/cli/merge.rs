//! `repsim merge part-*.state`: the states of every shard of a comparison (`repsim compare
//! --shard I/N --state F`) combined into its matrix, printed and written as `compare` does.

use std::path::PathBuf;

use repsim_similarity::shard::{merge_states, read_state, verify_inputs};

use crate::error::Error as CliError;

/// Arguments of `repsim merge`.
#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// The state files of every shard (any order).
    #[arg(required = true)]
    pub states: Vec<PathBuf>,
    /// Write the merged results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Draw the merged matrix to this PNG or SVG.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Read the inputs again (at the paths the states name) and check every shard's rows
    /// against the hashes it recorded: catches any change to a file since a shard read it.
    /// One pass over the inputs' rows.
    #[arg(long)]
    pub verify_inputs: bool,
    #[command(flatten)]
    pub style: super::plot::PlotStyle,
}

/// Runs the merge.
pub fn run(args: MergeArgs) -> Result<(), CliError> {
    let inputs: Vec<&std::path::Path> = args.states.iter().map(PathBuf::as_path).collect();
    if let Some(json) = &args.json {
        super::output::check_output(json, "--json", &["json"], &inputs)?;
    }
    if let Some(plot) = &args.plot {
        repsim_viz::check_output_path(plot)?;
        super::output::check_output(plot, "--plot", &[], &inputs)?;
    }
    let states = args
        .states
        .iter()
        .map(|path| Ok((path.clone(), read_state(path)?)))
        .collect::<Result<Vec<_>, CliError>>()?;
    let merged = merge_states(&states)?;
    if args.verify_inputs {
        verify_inputs(&states)?;
        status!("verified every shard's rows against the inputs");
    }
    let first = &states[0].1;
    let selected = crate::device::select_device(crate::device::DeviceChoice::Flex)?;
    let results = merged.matrices(&selected.device)?;
    let batch_size = first.parameters.batch_size;
    let n = first.n_examples;
    status!(
        "merged {} state file{} ({} minibatches of {batch_size})",
        states.len(),
        if states.len() == 1 { "" } else { "s" },
        first.total_batches
    );
    let b = first.b.as_ref().unwrap_or(&first.a);
    let meta = repsim_similarity::ResultsMeta {
        repsim_version: Some(env!("CARGO_PKG_VERSION").into()),
        a: Some(first.a.path.display().to_string()),
        b: Some(b.path.display().to_string()),
        n_examples: Some(n),
        metrics: first
            .measures
            .iter()
            .map(|m| m.name().to_string())
            .collect(),
        batch_size: Some(batch_size),
        conv: Some(first.parameters.conv.clone()),
        layers_a: Some(first.a.layers.clone()),
        shapes_a: Some(first.a.shapes.clone()),
        layers_b: Some(b.layers.clone()),
        shapes_b: Some(b.shapes.clone()),
        precision: Some("f32".into()),
        shards: Some(states.len()),
        inputs: Some(super::compare::identity_json(&merged.identity)),
        ..Default::default()
    };
    let titles = (
        Some(first.a.path.display().to_string()),
        Some(b.path.display().to_string()),
    );
    super::compare::report(
        results,
        meta,
        args.json.as_deref(),
        args.plot.as_deref(),
        &args.style,
        titles,
    )
}
