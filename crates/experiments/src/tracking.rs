//! Drawing what the Tracker recorded (the train crate measures; the viz crate draws; this glue
//! lives in the root, where both are in reach): the convergence plot of Raghu et al. 2017
//! (Fig. 4: one line per layer over epochs, coloured by depth) and the layers x epochs heatmap.

use std::path::{Path, PathBuf};

use repsim_train::{ConvergenceTable, TrackReport};
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
    let unit = table.unit.name();
    let mut plot = LinePlot::new(
        series,
        title,
        unit,
        &format!(
            "{} with {unit} {}",
            table.matrix.measure.title(),
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
                "{}: each layer vs itself at {} {}",
                table.matrix.measure.title(),
                table.unit.name(),
                table.final_epoch
            )),
            row_title: Some("layer".into()),
            col_title: Some(table.unit.name().into()),
            ..HeatmapOptions::default()
        };
        save(&Heatmap::new(&table.matrix, options), &heatmap_path)?;
        written.push(heatmap_path);
    }
    Ok(written)
}

/// What a tracked run leaves in `out`: the report as `out/track/report.json` and, per measure,
/// the convergence plot and heatmap as `out/convergence_METRIC[_heatmap].png`; returns the
/// files written, the report first.
pub fn write_report(
    report: &TrackReport,
    out: &Path,
    title: &str,
) -> Result<Vec<PathBuf>, crate::error::Error> {
    let report_path = out.join("track").join("report.json");
    repsim_durable::write_json(&report_path, report)?;
    let mut written = vec![report_path];
    written.extend(draw_convergence(
        &report.convergence,
        &out.join("convergence"),
        title,
    )?);
    Ok(written)
}

/// One line per measure: the first epoch at which each layer reaches `fraction` of its final
/// similarity (`conv1: 4, conv2: 5, ...`).
pub fn summary_lines(report: &TrackReport, fraction: f64) -> Vec<String> {
    report
        .convergence
        .iter()
        .map(|table| {
            format!(
                "{}: first {} >= {fraction} of the final: {}",
                table.metric,
                table.unit.name(),
                table.first_epochs_text(fraction)
            )
        })
        .collect()
}
