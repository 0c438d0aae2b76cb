//! `repsim plot RESULTS.json --out FILE.png|svg`: draws every matrix of a results file, and the
//! drawing that `repsim compare --plot` makes.

use std::path::{Path, PathBuf};

use repsim_similarity::SimilarityMatrix;
use repsim_viz::{
    check_output_path, read_results, save, ColorMap, Heatmap, HeatmapGrid, HeatmapOptions,
};

use crate::error::Error as CliError;

/// Arguments of `repsim plot`.
#[derive(Debug, clap::Args)]
pub struct PlotArgs {
    /// A results file written by `repsim compare --json` (or a matrix, or an array of them).
    pub results: PathBuf,
    /// The image to write: .png or .svg.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub style: PlotStyle,
    /// With several matrices, one image each (FILE-metric.png) instead of one grid.
    #[arg(long)]
    pub separate: bool,
}

/// Drawing options shared by `plot` and `compare --plot`.
#[derive(Debug, Clone, clap::Args)]
pub struct PlotStyle {
    /// Colour map: magma, viridis or greys.
    #[arg(long, default_value = "magma")]
    pub colormap: ColorMap,
    /// Value range of the colour scale, LOW,HIGH (default 0,1, widened for measures beyond).
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    pub range: Option<Vec<f64>>,
    /// Put row 0 at the bottom, as in the papers' figures.
    #[arg(long)]
    pub origin_lower: bool,
    /// Title (default: the measure).
    #[arg(long)]
    pub title: Option<String>,
    /// Resolution of PNG output.
    #[arg(long, default_value_t = 150.0)]
    pub dpi: f64,
    /// Figure size in inches, WIDTHxHEIGHT (default: from the number of layers or panels).
    #[arg(long)]
    pub size: Option<String>,
}

impl PlotStyle {
    /// The value range asked for, checked to be two numbers.
    fn value_range(&self) -> Result<Option<(f64, f64)>, CliError> {
        match self.range.as_deref() {
            None => Ok(None),
            Some([lo, hi]) => Ok(Some((*lo, *hi))),
            Some(other) => Err(CliError::Input(format!(
                "--range takes two numbers, LOW,HIGH; got {} values",
                other.len()
            ))),
        }
    }

    /// The figure size asked for with `--size WxH` (inches), at `--dpi`.
    fn figure_size(&self) -> Result<Option<repsim_viz::FigureSize>, CliError> {
        let Some(text) = &self.size else {
            return Ok(None);
        };
        let parsed = text.split_once(['x', 'X']).and_then(|(w, h)| {
            Some((w.trim().parse::<f64>().ok()?, h.trim().parse::<f64>().ok()?))
        });
        let Some((w, h)) = parsed else {
            return Err(CliError::Input(format!(
                "--size takes WIDTHxHEIGHT in inches (e.g. 6x5), got {text:?}"
            )));
        };
        let size = repsim_viz::FigureSize::new(w, h, self.dpi);
        size.validate()?;
        Ok(Some(size))
    }

    fn options(&self, rows: usize, cols: usize) -> Result<HeatmapOptions, CliError> {
        let colormap = self.colormap;
        let mut size = repsim_viz::default_heatmap_size(rows, cols);
        size.dpi = self.dpi;
        let size = self.figure_size()?.unwrap_or(size);
        Ok(HeatmapOptions {
            size: Some(size),
            colormap,
            range: self.value_range()?,
            title: self.title.clone(),
            origin_lower: self.origin_lower,
            ..Default::default()
        })
    }
}

/// Draws `matrices` to `out`: a heatmap for one, a grid for several (or one file each when
/// `separate`, or when distances and similarities are mixed). `row_title`/`col_title` name the compared inputs. Returns the files written.
pub fn draw_results(
    matrices: &[SimilarityMatrix],
    out: &Path,
    style: &PlotStyle,
    separate: bool,
    titles: (Option<String>, Option<String>),
) -> Result<Vec<PathBuf>, CliError> {
    check_output_path(out)?;
    let short = |t: &Option<String>| {
        t.as_ref().map(|p| {
            Path::new(p)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| p.clone())
        })
    };
    let (row_title, col_title) = (short(&titles.0), short(&titles.1));
    let several = matrices.len() > 1;
    let heatmap = |m: &SimilarityMatrix, path: &Path| -> Result<(), CliError> {
        let mut options = style.options(m.rows.len(), m.cols.len())?;
        // One file per measure: each title names its measure, even with a common --title.
        if several {
            if let Some(title) = &options.title {
                options.title = Some(format!("{title} · {}", m.measure.title()));
            }
        }
        options.row_title = row_title.clone();
        options.col_title = col_title.clone();
        if let (Some(a), Some(b)) = (&row_title, &col_title) {
            let models = if a == b {
                a.clone()
            } else {
                format!("{a} vs {b}")
            };
            let examples = m
                .n_examples
                .map_or(String::new(), |n| format!(" · {n} examples"));
            options.subtitle = Some(format!(
                "{models}{examples} · {} x {} layers",
                m.rows.len(),
                m.cols.len()
            ));
        }
        save(&Heatmap::new(m, options), path)?;
        Ok(())
    };
    if matrices.len() == 1 {
        heatmap(&matrices[0], out)?;
        return Ok(vec![out.to_path_buf()]);
    }
    // One colour scale cannot serve distances and similarities (Procrustes distances reach 2,
    // 0 is "the same"; similarities stay near [0, 1], 1 is "the same"): such a mix is drawn one
    // image per measure. Similarities a little below 0 (unbiased HSIC) only widen the shared
    // scale.
    let is_distance = |m: &SimilarityMatrix| m.measure.is_distance();
    let mixed_ranges = style.range.is_none()
        && matrices.iter().any(is_distance)
        && !matrices.iter().all(is_distance);
    if mixed_ranges && !separate {
        status!("note: the measures have different value ranges; drawing one image per measure");
    }
    if separate || mixed_ranges {
        let stem = out
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let extension = out
            .extension()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut written = Vec::new();
        for m in matrices {
            let path = out.with_file_name(format!("{stem}-{}.{extension}", m.measure));
            heatmap(m, &path)?;
            written.push(path);
        }
        return Ok(written);
    }
    let grid = grid_of(matrices, style, (&row_title, &col_title))?;
    save(&grid, out)?;
    Ok(vec![out.to_path_buf()])
}

/// Several measures of the same layers as one grid of heatmaps on one colour scale, titled
/// with the compared models (`titles`: rows', columns').
fn grid_of<'a>(
    matrices: &'a [SimilarityMatrix],
    style: &PlotStyle,
    titles: (&Option<String>, &Option<String>),
) -> Result<HeatmapGrid<'a>, CliError> {
    let (row_title, col_title) = titles;
    let mut grid = HeatmapGrid::auto(matrices);
    grid.row_title = Some(match row_title {
        Some(a) => format!("layers of {a}"),
        None => "layers (rows)".into(),
    });
    grid.col_title = Some(match col_title {
        Some(b) => format!("layers of {b}"),
        None => "layers (columns)".into(),
    });
    let options = style.options(1, 1)?;
    grid.colormap = options.colormap;
    grid.range = options.range;
    grid.origin_lower = options.origin_lower;
    grid.title = Some(style.title.clone().unwrap_or_else(|| {
        let models = match (row_title, col_title) {
            (Some(a), Some(b)) if a != b => format!("{a} vs {b}"),
            (Some(a), _) => a.clone(),
            _ => String::new(),
        };
        let examples = matrices[0]
            .n_examples
            .map_or(String::new(), |n| format!(" ({n} examples)"));
        let measures = matrices
            .iter()
            .map(|m| m.measure.title().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        if models.is_empty() {
            format!("{measures}{examples}")
        } else {
            format!("{models}{examples}")
        }
    }));
    let mut size = repsim_viz::Figure::size(&grid);
    size.dpi = style.dpi;
    grid.size = Some(style.figure_size()?.unwrap_or(size));
    Ok(grid)
}

/// Runs `repsim plot`.
pub fn run(args: PlotArgs) -> Result<(), CliError> {
    check_output_path(&args.out)?;
    let results = read_results(&args.results)?;
    let written = draw_results(
        &results.matrices,
        &args.out,
        &args.style,
        args.separate,
        (results.model_a, results.model_b),
    )?;
    for path in written {
        status!("wrote {}", path.display());
    }
    Ok(())
}
