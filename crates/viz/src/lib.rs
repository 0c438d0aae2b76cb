#![recursion_limit = "256"]
//! Publication-quality drawings of repsim's results, on plotters.
//!
//! - [`Heatmap`]: one [`SimilarityMatrix`], layer names on both axes (thinned when there are
//!   too many), a colour bar, magma by default as in Kornblith et al. 2019 and Nguyen, Raghu &
//!   Kornblith 2021.
//! - [`HeatmapGrid`]: several heatmaps with one shared colour bar and row/column headers, for
//!   sweeps over width and depth.
//! - [`LinePlot`] and [`BarChart`]: similarity over training epochs or layers, explained
//!   variance.
//! - [`ImageGrid`]: sample images with captions (dataset previews).
//!
//! Every figure implements [`Figure`]; [`save`] writes PNG or SVG by the file's extension.
//! Text uses DejaVu Sans embedded from the `dejavu` crate, so drawings look the same on every
//! machine and never depend on system fonts.
//!
//! ```no_run
//! # use repsim_viz::{save, Heatmap, HeatmapOptions};
//! # fn demo(matrix: &repsim_results::SimilarityMatrix) -> Result<(), repsim_viz::VizError> {
//! save(&Heatmap::new(matrix, HeatmapOptions::default()), "cka.png".as_ref())?;
//! # Ok(()) }
//! ```

mod colormap;
mod curves;
mod error;
mod grid;
mod heatmap;
mod images;
mod output;
mod paint;
mod results;
mod text;

pub use colormap::ColorMap;
pub use curves::{BarChart, LineColors, LinePlot, Series};
pub use error::VizError;
pub use grid::{GridPanel, HeatmapGrid};
pub use heatmap::{default_heatmap_size, Heatmap, HeatmapOptions};
pub use images::{ImageGrid, Tile};
pub use output::{
    check_output_path, render_png, render_svg, save, Figure, FigureSize, ImageFormat,
};
pub use plotters::style::RGBColor;
pub use repsim_results::{Measure, SimilarityMatrix};
pub use results::{parse_results, read_results, Results};
