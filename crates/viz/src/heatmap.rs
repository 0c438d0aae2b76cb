//! The heatmap of one [`SimilarityMatrix`]: layer names on both axes (thinned when there are
//! too many to read), a colour bar, a title and subtitle, undefined cells in their own colour.
//!
//! The layout follows the figures of Kornblith et al. 2019 and Nguyen, Raghu & Kornblith 2021:
//! rows are the layers of model A, columns those of model B, magma from 0 (black) to 1 (light
//! yellow), optionally with the origin at the bottom left.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};
use repsim_results::SimilarityMatrix;

use crate::paint::{self, Rect};
use crate::{ColorMap, Figure, FigureSize, VizError};

/// How a heatmap looks. `Default` gives the papers' style: magma, [0, 1], origin top-left,
/// a title from the measure and a subtitle from the number of examples.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HeatmapOptions {
    /// Physical size; `None` picks one from the matrix shape (about 6.5 x 5.5 inches).
    pub size: Option<FigureSize>,
    /// The colour map.
    pub colormap: ColorMap,
    /// Value range of the colour scale; `None` is [0, 1], widened for measures beyond it.
    pub range: Option<(f64, f64)>,
    /// Title; `None` uses the measure's name.
    pub title: Option<String>,
    /// Subtitle; `None` uses the number of examples and the compared models.
    pub subtitle: Option<String>,
    /// Row 0 at the bottom (as in the papers' figures) instead of the top.
    pub origin_lower: bool,
    /// Axis title of the rows (model A); `None` draws none.
    pub row_title: Option<String>,
    /// Axis title of the columns (model B); `None` draws none.
    pub col_title: Option<String>,
    /// At most this many layer names per axis; `None` prints as many as fit.
    pub max_labels: Option<usize>,
    /// Print layer names at all.
    pub show_labels: bool,
}

impl Default for HeatmapOptions {
    fn default() -> Self {
        Self {
            size: None,
            colormap: ColorMap::Magma,
            range: None,
            title: None,
            subtitle: None,
            origin_lower: false,
            row_title: None,
            col_title: None,
            max_labels: None,
            show_labels: true,
        }
    }
}

/// A heatmap of one matrix, ready to [`save`](crate::save).
#[derive(Debug, Clone)]
pub struct Heatmap<'a> {
    /// The matrix drawn.
    pub matrix: &'a SimilarityMatrix,
    /// How it is drawn.
    pub options: HeatmapOptions,
}

impl<'a> Heatmap<'a> {
    /// A heatmap of `matrix` with `options`.
    pub fn new(matrix: &'a SimilarityMatrix, options: HeatmapOptions) -> Self {
        Self { matrix, options }
    }

    /// The default subtitle: examples, and the models when known.
    fn subtitle(&self) -> String {
        if let Some(s) = &self.options.subtitle {
            return s.clone();
        }
        let m = self.matrix;
        let mut parts: Vec<String> = m
            .n_examples
            .map(|n| format!("{n} examples"))
            .into_iter()
            .collect();
        parts.push(format!("{} x {} layers", m.rows.len(), m.cols.len()));
        parts.join(" · ")
    }

    fn title(&self) -> String {
        self.options
            .title
            .clone()
            .unwrap_or_else(|| self.matrix.measure.title().to_string())
    }
}

/// The size picked for a heatmap when none is given: wider than tall, to leave room for the
/// colour bar; larger for hundreds of layers so cells stay visible.
pub fn default_heatmap_size(rows: usize, cols: usize) -> FigureSize {
    let big = rows.max(cols) > 120;
    if big {
        FigureSize::new(10.0, 9.0, 150.0)
    } else {
        FigureSize::new(6.5, 5.6, 150.0)
    }
}

impl Figure for Heatmap<'_> {
    fn size(&self) -> FigureSize {
        self.options
            .size
            .unwrap_or_else(|| default_heatmap_size(self.matrix.rows.len(), self.matrix.cols.len()))
    }

    fn validate(&self) -> Result<(), VizError> {
        paint::check_matrix(self.matrix, "the matrix")?;
        paint::value_range([self.matrix], self.options.range)?;
        Ok(())
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), VizError> {
        let plan = self.plan(area)?;
        self.paint(area, &plan)
    }
}

/// Where everything of a heatmap goes, worked out before anything is drawn.
struct Plan {
    plot: Rect,
    cell: f64,
    range: (f64, f64),
    pt: f64,
    tick_len: f64,
    label_gap: f64,
    row_label_w: f64,
    col_label_h: f64,
    axis_title_h: f64,
    bar_gap: f64,
    bar_width: f64,
    label_font: TextStyle<'static>,
    row_labels: Vec<(usize, String)>,
    col_labels: Vec<(usize, String)>,
}

impl Heatmap<'_> {
    /// Lays the figure out on `area`: text is measured, nothing is drawn.
    fn plan<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<Plan, VizError> {
        let o = &self.options;
        let m = self.matrix;
        let size = self.size();
        let pt = size.px_per_pt();
        let (width, height) = size.pixels();
        let (width, height) = (width as f64, height as f64);
        let range = paint::value_range([m], o.range)?;
        let pad = 8.0 * pt;
        let tick_len = 3.0 * pt;

        let title_font = paint::font(13.0 * pt, true);
        let subtitle_font = paint::font(9.0 * pt, false);
        let axis_font = paint::font(9.5 * pt, false);
        let colorbar_font = paint::font(8.0 * pt, false);

        // Title block.
        let mut top = pad;
        let title = self.title();
        top += paint::text_size(area, &title, &title_font)?.1 + 4.0 * pt;
        let subtitle = self.subtitle();
        if !subtitle.is_empty() {
            top += paint::text_size(area, &subtitle, &subtitle_font)?.1;
        }
        top += pad;

        // Space for the colour bar on the right: bar, gap, ticks and their labels.
        let bar_width = 11.0 * pt;
        let bar_gap = 12.0 * pt;
        let ticks = paint::nice_ticks(range.0, range.1, 5);
        let mut widest_tick: f64 = 0.0;
        for value in &ticks {
            let label = paint::format_tick(*value, &ticks);
            widest_tick = widest_tick.max(paint::text_size(area, &label, &colorbar_font)?.0);
        }
        let colorbar_space = bar_gap + bar_width + tick_len * 1.8 + widest_tick + pad;

        // Axis titles.
        let axis_title_h = paint::text_size(area, "Ag", &axis_font)?.1;
        let left_title = if o.row_title.is_some() {
            axis_title_h + 6.0 * pt
        } else {
            0.0
        };
        let bottom_title = if o.col_title.is_some() {
            axis_title_h + 6.0 * pt
        } else {
            0.0
        };

        // First estimate of the plot area, to size the labels.
        let (rows, cols) = (m.rows.len(), m.cols.len());
        let rough_w = width - pad - left_title - colorbar_space - 0.22 * width;
        let rough_h = height - top - pad - bottom_title - 0.22 * height;
        let rough_cell = (rough_w / cols as f64).min(rough_h / rows as f64).max(0.5);
        let label_pt = (rough_cell / pt / 1.25).clamp(4.5, 8.0);
        let label_font = paint::font(label_pt * pt, false);
        let label_h = paint::text_size(area, "Ag", &label_font)?.1;
        let row_step = paint::label_step(rows, rough_cell * rows as f64, label_h, o.max_labels);
        let col_step = paint::label_step(cols, rough_cell * cols as f64, label_h, o.max_labels);
        let max_chars = 28;
        let shown = |names: &[String], step: usize| -> Vec<(usize, String)> {
            names
                .iter()
                .enumerate()
                .filter(|(i, _)| i % step == 0)
                .map(|(i, n)| (i, paint::shorten(n, max_chars)))
                .collect()
        };
        let (row_labels, col_labels) = if o.show_labels {
            (shown(&m.rows, row_step), shown(&m.cols, col_step))
        } else {
            (Vec::new(), Vec::new())
        };
        let widest = |labels: &[(usize, String)]| -> Result<f64, VizError> {
            let mut w: f64 = 0.0;
            for (_, l) in labels {
                w = w.max(paint::text_size(area, l, &label_font)?.0);
            }
            Ok(w)
        };
        let row_label_w = widest(&row_labels)?;
        let col_label_h = widest(&col_labels)?;
        let label_gap = if o.show_labels {
            tick_len + 3.0 * pt
        } else {
            0.0
        };

        // The plot area, with square cells, centred in what is left.
        let avail = Rect {
            left: pad + left_title + row_label_w + label_gap,
            top,
            right: width - colorbar_space,
            bottom: height - pad - bottom_title - col_label_h - label_gap,
        };
        if avail.width() < 20.0 || avail.height() < 20.0 {
            return Err(VizError::BadOption(format!(
                "a {:.1} x {:.1} inch figure leaves no room for the cells; make it larger",
                size.width_in, size.height_in
            )));
        }
        let cell = (avail.width() / cols as f64).min(avail.height() / rows as f64);
        let (plot_w, plot_h) = (cell * cols as f64, cell * rows as f64);
        let left = avail.left + (avail.width() - plot_w) / 2.0;
        let plot = Rect {
            left,
            top: avail.top,
            right: left + plot_w,
            bottom: avail.top + plot_h,
        };
        Ok(Plan {
            plot,
            cell,
            range,
            pt,
            tick_len,
            label_gap,
            row_label_w,
            col_label_h,
            axis_title_h,
            bar_gap,
            bar_width,
            label_font,
            row_labels,
            col_labels,
        })
    }

    /// The pixel at the centre of cell (`row`, `col`) in the image this heatmap renders to.
    pub fn cell_center(&self, row: usize, col: usize) -> Result<(u32, u32), VizError> {
        self.validate()?;
        let (rows, cols) = (self.matrix.rows.len(), self.matrix.cols.len());
        if row >= rows || col >= cols {
            return Err(VizError::BadOption(format!(
                "cell ({row}, {col}) is outside the {rows} x {cols} matrix"
            )));
        }
        let plan = self.measured_plan()?;
        let slot = if self.options.origin_lower {
            rows - 1 - row
        } else {
            row
        };
        let xs = paint::boundaries(plan.plot.left, plan.plot.right, cols);
        let ys = paint::boundaries(plan.plot.top, plan.plot.bottom, rows);
        Ok((
            ((xs[col] + xs[col + 1]) / 2) as u32,
            ((ys[slot] + ys[slot + 1]) / 2) as u32,
        ))
    }

    /// The rectangle (left, top, right, bottom; pixels) holding the cells.
    pub fn plot_area(&self) -> Result<(u32, u32, u32, u32), VizError> {
        self.validate()?;
        let p = self.measured_plan()?.plot;
        Ok((
            p.left.round() as u32,
            p.top.round() as u32,
            p.right.round() as u32,
            p.bottom.round() as u32,
        ))
    }

    /// The layout, measured off screen (text measures the same on every backend).
    fn measured_plan(&self) -> Result<Plan, VizError> {
        crate::output::ensure_font()?;
        let (w, h) = self.size().pixels();
        let mut sink = String::new();
        let area = crate::text::CrispText::vector(SVGBackend::with_string(&mut sink, (w, h)))
            .into_drawing_area();
        self.plan(&area)
    }

    fn paint<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        plan: &Plan,
    ) -> Result<(), VizError> {
        let o = &self.options;
        let m = self.matrix;
        let (rows, _cols) = (m.rows.len(), m.cols.len());
        let Plan {
            plot,
            cell,
            range,
            pt,
            tick_len,
            label_gap,
            row_label_w,
            col_label_h,
            axis_title_h,
            bar_gap,
            bar_width,
            ..
        } = *plan;
        let label_font = &plan.label_font;
        let (row_labels, col_labels) = (&plan.row_labels, &plan.col_labels);
        let axis_font = paint::font(9.5 * pt, false);
        let colorbar_font = paint::font(8.0 * pt, false);
        let title_font = paint::font(13.0 * pt, true);
        let subtitle_font = paint::font(9.0 * pt, false);
        let width = self.size().pixels().0 as f64;
        let pad = 8.0 * pt;
        let title = self.title();
        paint::draw_text(
            area,
            &title,
            &title_font,
            (width / 2.0, pad),
            (HPos::Center, VPos::Top),
            false,
        )?;
        let subtitle = self.subtitle();
        if !subtitle.is_empty() {
            let y = pad + paint::text_size(area, &title, &title_font)?.1 + 4.0 * pt;
            paint::draw_text(
                area,
                &subtitle,
                &subtitle_font,
                (width / 2.0, y),
                (HPos::Center, VPos::Top),
                false,
            )?;
        }
        paint::draw_cells(area, m, plot, o.colormap, range, o.origin_lower)?;

        // Layer names and ticks.
        let row_center = |i: usize| {
            let slot = if o.origin_lower { rows - 1 - i } else { i };
            plot.top + (slot as f64 + 0.5) * cell
        };
        for (i, label) in row_labels {
            let y = row_center(*i);
            let yi = y.round() as i32;
            let x0 = plot.left.round() as i32 - 1;
            area.draw(&PathElement::new(
                vec![(x0 - tick_len.round() as i32, yi), (x0, yi)],
                BLACK,
            ))
            .map_err(VizError::draw)?;
            paint::draw_text(
                area,
                label,
                label_font,
                (plot.left - label_gap, y),
                (HPos::Right, VPos::Center),
                false,
            )?;
        }
        for (j, label) in col_labels {
            let x = plot.left + (*j as f64 + 0.5) * cell;
            let xi = x.round() as i32;
            let y0 = plot.bottom.round() as i32;
            area.draw(&PathElement::new(
                vec![(xi, y0), (xi, y0 + tick_len.round() as i32)],
                BLACK,
            ))
            .map_err(VizError::draw)?;
            paint::draw_text(
                area,
                label,
                label_font,
                (x, plot.bottom + label_gap),
                (HPos::Right, VPos::Center),
                true,
            )?;
        }

        // Axis titles.
        if let Some(t) = &o.row_title {
            let x = plot.left - label_gap - row_label_w - 6.0 * pt - axis_title_h / 2.0;
            paint::draw_text(
                area,
                t,
                &axis_font,
                (x, (plot.top + plot.bottom) / 2.0),
                (HPos::Center, VPos::Center),
                true,
            )?;
        }
        if let Some(t) = &o.col_title {
            let y = plot.bottom + label_gap + col_label_h + 6.0 * pt;
            paint::draw_text(
                area,
                t,
                &axis_font,
                ((plot.left + plot.right) / 2.0, y),
                (HPos::Center, VPos::Top),
                false,
            )?;
        }

        // Colour bar, and the key of undefined cells under it.
        let bar = Rect {
            left: plot.right + bar_gap,
            top: plot.top,
            right: plot.right + bar_gap + bar_width,
            bottom: plot.bottom,
        };
        paint::draw_colorbar(area, bar, o.colormap, range, &colorbar_font, tick_len)?;
        paint::draw_keys(
            area,
            [m],
            (bar.left, bar.bottom + 6.0 * pt),
            (8.0 * pt, 4.0 * pt),
            o.colormap,
            &colorbar_font,
        )?;
        Ok(())
    }
}
