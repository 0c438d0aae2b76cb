//! Drawing what the Tracker recorded (the train crate measures; the viz crate draws; this glue
//! lives in the root, where both are in reach): the convergence plot of Raghu et al. 2017
//! (Fig. 4: one line per layer over epochs, coloured by depth) and the layers x epochs heatmap.

use std::path::{Path, PathBuf};

use repsim_train::ConvergenceTable;
use repsim_viz::{save, ColorMap, Heatmap, HeatmapOptions, LineColors, LinePlot, Series, VizError};

/// The convergence plot of one table: each layer's similarity to its final self over epochs.
pub fn convergence_plot(table: &ConvergenceTable, title: &str) -> LinePlot {
    let series = table
        .matrix
        .rows
        .iter()
        .zip(&table.matrix.values)
        .map(|(layer, row)| Series {
            name: layer.clone(),
            points: table
                .epochs
                .iter()
                .zip(row)
                .filter_map(|(e, v)| v.map(|v| (*e as f64, v)))
                .collect(),
            band: None,
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    let mut plot = LinePlot::new(
        series,
        title,
        "epoch",
        &format!(
            "{} with epoch {}",
            repsim_viz::measure_title(&table.metric),
            table.final_epoch
        ),
    );
    plot.colors = LineColors::Gradient(ColorMap::Viridis);
    plot.y_range = Some((0.0, 1.02));
    plot.x_integer = true;
    plot
}

/// Writes, for each table, `STEM_METRIC.png` (the convergence plot) and
/// `STEM_METRIC_heatmap.png` (layers x epochs) beside `stem`; returns the files written.
pub fn draw_convergence(
    tables: &[ConvergenceTable],
    stem: &Path,
    title: &str,
) -> Result<Vec<PathBuf>, VizError> {
    let mut written = Vec::new();
    let base = stem.to_string_lossy().trim_end_matches(".png").to_string();
    for table in tables {
        let plot_path = PathBuf::from(format!("{base}_{}.png", table.metric));
        save(&convergence_plot(table, title), &plot_path)?;
        written.push(plot_path);
        let heatmap_path = PathBuf::from(format!("{base}_{}_heatmap.png", table.metric));
        let options = HeatmapOptions {
            title: Some(format!(
                "{}: each layer vs itself at epoch {}",
                repsim_viz::measure_title(&table.metric),
                table.final_epoch
            )),
            row_title: Some("layer".into()),
            col_title: Some("epoch".into()),
            ..HeatmapOptions::default()
        };
        save(&Heatmap::new(&table.matrix, options), &heatmap_path)?;
        written.push(heatmap_path);
    }
    Ok(written)
}
