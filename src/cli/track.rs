//! `repsim track RUN_DIR`: the convergence tables (and plots) of what the Tracker recorded in a
//! finished or running training run.

use std::path::PathBuf;

use repsim_train::{Tracker, TrackerConfig};

use crate::error::Error as CliError;

/// Arguments of `repsim track`.
#[derive(Debug, clap::Args)]
pub struct TrackArgs {
    /// The run directory (trained with --track).
    pub run: PathBuf,
    /// Measures of the convergence table (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "svcca,pwcca,linear_cka")]
    pub metric: Vec<repsim_similarity::Measure>,
    /// Draw the convergence plots: FILE_METRIC.png and FILE_METRIC_heatmap.png per measure.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Write the report (convergence tables as SimilarityMatrix JSON) here; default
    /// RUN/track/convergence.json.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Also give one layer's epoch x epoch matrix (first measure).
    #[arg(long)]
    pub layer: Option<String>,
    /// Also give the layer x layer matrix at this observed epoch (first measure); for a run
    /// tracked with steps=K, this observed step.
    #[arg(long)]
    pub epoch: Option<usize>,
}

/// Runs `repsim track`.
pub fn run(args: TrackArgs) -> Result<(), CliError> {
    let measures = args.metric.clone();
    let config = TrackerConfig::new(args.run.join("track")).with_measures(measures.clone());
    let mut tracker = Tracker::open(config)?;
    if let Some(plot) = &args.plot {
        repsim_viz::check_output_path(plot).map_err(|e| CliError::Input(e.to_string()))?;
    }
    let report = tracker.finish()?;
    for table in &report.convergence {
        let unit = table.unit.name();
        println!(
            "{} of each layer vs itself at {unit} {} (rows: layers; columns: {unit}s {:?})",
            table.metric, table.final_epoch, table.epochs
        );
        let width = table.matrix.rows.iter().map(|r| r.len()).max().unwrap_or(5);
        for (layer, row) in table.matrix.rows.iter().zip(&table.matrix.values) {
            let cells: Vec<String> = row
                .iter()
                .map(|v| v.map_or("   -  ".into(), |v| format!("{v:6.3}")))
                .collect();
            println!("  {layer:<width$} {}", cells.join(" "));
        }
        println!(
            "  first {unit} at 0.9 of the final value: {}",
            table.first_epochs_text(0.9)
        );
    }
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    let mut extra = Vec::new();
    if let Some(layer) = &args.layer {
        extra.push(tracker.epoch_matrix(layer, &measures[0])?);
    }
    if let Some(epoch) = args.epoch {
        extra.push(tracker.layer_matrix(epoch, &measures[0])?);
    }
    let json_path = args
        .json
        .clone()
        .unwrap_or_else(|| args.run.join("track").join("convergence.json"));
    super::output::check_output(&json_path, "--json", &["json"], &[])?;
    let value = serde_json::json!({
        "report": report,
        "matrices": extra,
    });
    super::output::write_json(&json_path, &value)?;
    println!("wrote {}", json_path.display());
    if let Some(plot) = &args.plot {
        let title = format!("{}: convergence", args.run.display());
        for path in crate::tracking::draw_convergence(&report.convergence, plot, &title)
            .map_err(|e| CliError::Failure(e.to_string()))?
        {
            println!("wrote {}", path.display());
        }
    }
    Ok(())
}
