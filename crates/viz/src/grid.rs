//! A grid of heatmaps sharing one colour bar, with row and column headers: the layout of
//! Nguyen, Raghu & Kornblith 2021 (Fig. 1: depth down the rows, width across the columns).

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};
use repsim_results::SimilarityMatrix;

use crate::paint::{self, Rect};
use crate::{ColorMap, Figure, FigureSize, VizError};

/// One panel of a grid: a matrix and an optional caption drawn above it.
#[derive(Debug, Clone)]
pub struct GridPanel<'a> {
    /// The matrix.
    pub matrix: &'a SimilarityMatrix,
    /// A short caption (e.g. `ResNet-38 x2`); `None` draws none.
    pub caption: Option<String>,
}

/// Heatmaps in `rows` x `cols` slots, filled row by row; `None` leaves a slot empty.
#[derive(Debug, Clone)]
pub struct HeatmapGrid<'a> {
    /// The panels, row-major; at most rows x cols.
    pub panels: Vec<Option<GridPanel<'a>>>,
    /// Number of rows of panels.
    pub rows: usize,
    /// Number of columns of panels.
    pub cols: usize,
    /// Headers left of each row (e.g. `depth 20`); empty for none.
    pub row_headers: Vec<String>,
    /// Headers above each column (e.g. `width x1`); empty for none.
    pub col_headers: Vec<String>,
    /// The figure's title.
    pub title: Option<String>,
    /// The colour map shared by every panel.
    pub colormap: ColorMap,
    /// The value range shared by every panel; `None` is [0, 1], widened when needed.
    pub range: Option<(f64, f64)>,
    /// Row 0 of each matrix at the bottom.
    pub origin_lower: bool,
    /// Physical size; `None` gives about 2.2 inches per panel.
    pub size: Option<FigureSize>,
    /// Layer names beside the outer panels: row names left of the first column, column names
    /// below the lowest panel of each column (thinned to fit; default on).
    pub layer_labels: bool,
    /// Axis title of the rows (e.g. "layers of a.npz"), left of the grid.
    pub row_title: Option<String>,
    /// Axis title of the columns, below the grid.
    pub col_title: Option<String>,
}

/// Longest layer label, in characters (longer names are cut in the middle).
const LABEL_CHARS: usize = 17;

impl<'a> HeatmapGrid<'a> {
    /// A grid of `rows` x `cols` with the papers' defaults (magma, [0, 1]).
    pub fn new(panels: Vec<Option<GridPanel<'a>>>, rows: usize, cols: usize) -> Self {
        Self {
            panels,
            rows,
            cols,
            row_headers: Vec::new(),
            col_headers: Vec::new(),
            title: None,
            colormap: ColorMap::Magma,
            range: None,
            origin_lower: false,
            size: None,
            layer_labels: true,
            row_title: None,
            col_title: None,
        }
    }

    /// A grid of as many matrices as given, in a near-square arrangement, captioned with
    /// their measure names: what `repsim plot` draws for a file of several results.
    pub fn auto(matrices: &'a [SimilarityMatrix]) -> Self {
        let n = matrices.len().max(1);
        let cols = (n as f64).sqrt().ceil() as usize;
        let rows = n.div_ceil(cols);
        let panels = matrices
            .iter()
            .map(|m| {
                Some(GridPanel {
                    matrix: m,
                    caption: Some(m.measure.title().to_string()),
                })
            })
            .collect();
        Self::new(panels, rows, cols)
    }

    fn matrices(&self) -> impl Iterator<Item = &SimilarityMatrix> + Clone {
        self.panels.iter().flatten().map(|p| p.matrix)
    }
}

impl HeatmapGrid<'_> {
    /// Row names left of `rect` (`rows`) and column names below it, rotated (`cols`), thinned
    /// so that they do not overlap, in the order the cells are drawn.
    #[allow(clippy::too_many_arguments)]
    fn draw_layer_labels<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        matrix: &SimilarityMatrix,
        rect: Rect,
        (rows, cols): (bool, bool),
        font: &TextStyle,
        label_h: f64,
        pt: f64,
    ) -> Result<(), VizError> {
        let (n_rows, n_cols) = (matrix.rows.len(), matrix.cols.len());
        if rows && n_rows > 0 {
            let cell = (rect.bottom - rect.top) / n_rows as f64;
            let step = paint::label_step(n_rows, rect.bottom - rect.top, label_h, None);
            for (i, name) in matrix.rows.iter().enumerate().step_by(step) {
                let slot = if self.origin_lower { n_rows - 1 - i } else { i };
                let y = rect.top + (slot as f64 + 0.5) * cell;
                paint::draw_text(
                    area,
                    &paint::shorten(name, LABEL_CHARS),
                    font,
                    (rect.left - 2.0 * pt, y),
                    (HPos::Right, VPos::Center),
                    false,
                )?;
            }
        }
        if cols && n_cols > 0 {
            let cell = (rect.right - rect.left) / n_cols as f64;
            let step = paint::label_step(n_cols, rect.right - rect.left, label_h, None);
            for (j, name) in matrix.cols.iter().enumerate().step_by(step) {
                let x = rect.left + (j as f64 + 0.5) * cell;
                paint::draw_text(
                    area,
                    &paint::shorten(name, LABEL_CHARS),
                    font,
                    (x, rect.bottom + 2.0 * pt),
                    (HPos::Right, VPos::Center),
                    true,
                )?;
            }
        }
        Ok(())
    }
}

impl Figure for HeatmapGrid<'_> {
    fn size(&self) -> FigureSize {
        self.size.unwrap_or_else(|| {
            let labels = if self.layer_labels { 0.7 } else { 0.0 };
            let w = 1.2 + 2.2 * self.cols as f64 + 1.0 + labels;
            let h = 0.9 + 2.35 * self.rows as f64 + labels;
            FigureSize::new(w, h, 150.0)
        })
    }

    fn validate(&self) -> Result<(), VizError> {
        if self.rows == 0 || self.cols == 0 {
            return Err(VizError::BadOption(format!(
                "a grid needs at least one row and one column, got {} x {}",
                self.rows, self.cols
            )));
        }
        if self.panels.len() > self.rows * self.cols {
            return Err(VizError::BadOption(format!(
                "{} panels do not fit a {} x {} grid",
                self.panels.len(),
                self.rows,
                self.cols
            )));
        }
        if self.panels.iter().all(|p| p.is_none()) {
            return Err(VizError::Empty("the grid has no panels to draw".into()));
        }
        for (k, panel) in self.panels.iter().enumerate() {
            if let Some(p) = panel {
                paint::check_matrix(
                    p.matrix,
                    &format!(
                        "panel {} (row {}, column {})",
                        k + 1,
                        k / self.cols + 1,
                        k % self.cols + 1
                    ),
                )?;
            }
        }
        if !self.row_headers.is_empty() && self.row_headers.len() != self.rows {
            return Err(VizError::BadOption(format!(
                "{} row headers for {} rows",
                self.row_headers.len(),
                self.rows
            )));
        }
        if !self.col_headers.is_empty() && self.col_headers.len() != self.cols {
            return Err(VizError::BadOption(format!(
                "{} column headers for {} columns",
                self.col_headers.len(),
                self.cols
            )));
        }
        paint::value_range(self.matrices(), self.range)?;
        Ok(())
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), VizError> {
        let size = self.size();
        let pt = size.px_per_pt();
        let (width, height) = size.pixels();
        let (width, height) = (width as f64, height as f64);
        let range = paint::value_range(self.matrices(), self.range)?;
        let pad = 8.0 * pt;
        let header_font = paint::font(10.0 * pt, true);
        let caption_font = paint::font(8.0 * pt, false);
        let colorbar_font = paint::font(8.0 * pt, false);

        let mut top = pad;
        if let Some(title) = &self.title {
            // A title wider than a narrow grid (one column) is set smaller rather than cut off.
            let full = 13.0 * pt;
            let title_width = paint::text_size(area, title, &paint::font(full, true))?.0;
            let room = width - 2.0 * pad;
            let size = if title_width > room {
                full * room / title_width
            } else {
                full
            };
            let title_font = paint::font(size, true);
            paint::draw_text(
                area,
                title,
                &title_font,
                (width / 2.0, top),
                (HPos::Center, VPos::Top),
                false,
            )?;
            top += paint::text_size(area, title, &title_font)?.1 + pad;
        }
        let header_h = paint::text_size(area, "Ag", &header_font)?.1;
        if !self.col_headers.is_empty() {
            top += header_h + 4.0 * pt;
        }
        let mut left = pad;
        if !self.row_headers.is_empty() {
            left += header_h + 6.0 * pt;
        }
        // Room for layer names and axis titles around the outer panels.
        let label_font = paint::font(6.5 * pt, false);
        let axis_font = paint::font(8.0 * pt, false);
        let axis_h = paint::text_size(area, "Ag", &axis_font)?.1;
        let label_h = paint::text_size(area, "Ag", &label_font)?.1;
        let widest = |names: &mut dyn Iterator<Item = &String>| -> Result<f64, VizError> {
            let mut widest: f64 = 0.0;
            for name in names {
                let shown = paint::shorten(name, LABEL_CHARS);
                widest = widest.max(paint::text_size(area, &shown, &label_font)?.0);
            }
            Ok(widest)
        };
        let (row_label_w, col_label_h) = if self.layer_labels {
            (
                widest(&mut self.matrices().flat_map(|m| m.rows.iter()))? + 3.0 * pt,
                widest(&mut self.matrices().flat_map(|m| m.cols.iter()))? + 3.0 * pt,
            )
        } else {
            (0.0, 0.0)
        };
        if self.row_title.is_some() {
            left += axis_h + 4.0 * pt;
        }
        let row_axis_x = left - axis_h / 2.0 - 2.0 * pt;
        left += row_label_w;
        let colorbar_space = 12.0 * pt
            + 11.0 * pt
            + 6.0 * pt
            + paint::text_size(area, "0.00", &colorbar_font)?.0
            + pad;
        let right = width - colorbar_space;
        let mut bottom = height - pad;
        if self.col_title.is_some() {
            bottom -= axis_h + 4.0 * pt;
        }
        let col_axis_y = bottom + 2.0 * pt;
        bottom -= col_label_h;
        let captions = self.panels.iter().flatten().any(|p| p.caption.is_some());
        let caption_h = if captions {
            paint::text_size(area, "Ag", &caption_font)?.1 + 3.0 * pt
        } else {
            0.0
        };
        let gap = 8.0 * pt;
        let slot_w = (right - left) / self.cols as f64;
        let slot_h = (bottom - top) / self.rows as f64;
        let side = (slot_w - gap).min(slot_h - gap - caption_h);
        if side < 10.0 {
            return Err(VizError::BadOption(format!(
                "a {:.1} x {:.1} inch figure is too small for a {} x {} grid",
                size.width_in, size.height_in, self.rows, self.cols
            )));
        }

        for (k, panel) in self.panels.iter().enumerate() {
            let Some(panel) = panel else { continue };
            let (r, c) = (k / self.cols, k % self.cols);
            let slot_left = left + c as f64 * slot_w + (slot_w - side) / 2.0;
            let slot_top = top + r as f64 * slot_h + caption_h;
            // Panels keep their matrices' aspect: square cells inside a square slot.
            let (rows, cols) = (
                panel.matrix.rows.len() as f64,
                panel.matrix.cols.len() as f64,
            );
            let cell = (side / cols).min(side / rows);
            let (w, h) = (cell * cols, cell * rows);
            let rect = Rect {
                left: slot_left + (side - w) / 2.0,
                top: slot_top + (side - h) / 2.0,
                right: slot_left + (side - w) / 2.0 + w,
                bottom: slot_top + (side - h) / 2.0 + h,
            };
            paint::draw_cells(
                area,
                panel.matrix,
                rect,
                self.colormap,
                range,
                self.origin_lower,
            )?;
            if self.layer_labels {
                let lowest_in_column = (r + 1..self.rows).all(|below| {
                    self.panels
                        .get(below * self.cols + c)
                        .is_none_or(Option::is_none)
                });
                self.draw_layer_labels(
                    area,
                    panel.matrix,
                    rect,
                    (c == 0, lowest_in_column),
                    &label_font,
                    label_h,
                    pt,
                )?;
            }
            if let Some(caption) = &panel.caption {
                paint::draw_text(
                    area,
                    caption,
                    &caption_font,
                    ((rect.left + rect.right) / 2.0, rect.top - 3.0 * pt),
                    (HPos::Center, VPos::Bottom),
                    false,
                )?;
            }
        }
        for (c, header) in self.col_headers.iter().enumerate() {
            let x = left + (c as f64 + 0.5) * slot_w;
            paint::draw_text(
                area,
                header,
                &header_font,
                (x, top - 4.0 * pt - caption_h * 0.0),
                (HPos::Center, VPos::Bottom),
                false,
            )?;
        }
        for (r, header) in self.row_headers.iter().enumerate() {
            let y = top + r as f64 * slot_h + caption_h + side / 2.0;
            paint::draw_text(
                area,
                header,
                &header_font,
                (pad + header_h / 2.0, y),
                (HPos::Center, VPos::Center),
                true,
            )?;
        }

        let grid_top = top + caption_h;
        let grid_bottom = top + (self.rows - 1) as f64 * slot_h + caption_h + side;
        if let Some(title) = &self.row_title {
            paint::draw_text(
                area,
                title,
                &axis_font,
                (row_axis_x, (grid_top + grid_bottom) / 2.0),
                (HPos::Center, VPos::Center),
                true,
            )?;
        }
        if let Some(title) = &self.col_title {
            paint::draw_text(
                area,
                title,
                &axis_font,
                ((left + right) / 2.0, col_axis_y),
                (HPos::Center, VPos::Top),
                false,
            )?;
        }

        let bar = Rect {
            left: right + 12.0 * pt,
            top: top + caption_h,
            right: right + 23.0 * pt,
            bottom: (top + (self.rows - 1) as f64 * slot_h + caption_h + side)
                .min(height - pad - 16.0 * pt),
        };
        paint::draw_colorbar(area, bar, self.colormap, range, &colorbar_font, 3.0 * pt)?;
        paint::draw_keys(
            area,
            self.matrices(),
            (bar.left, bar.bottom + 5.0 * pt),
            (8.0 * pt, 4.0 * pt),
            self.colormap,
            &colorbar_font,
        )?;
        Ok(())
    }
}
