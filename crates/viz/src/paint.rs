//! Drawing pieces shared by the heatmap, the grid and the plots: text in points, the cells of a
//! similarity matrix, the colour bar, tick positions and label thinning.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontDesc, FontFamily, FontStyle, FontTransform};
use repsim_results::SimilarityMatrix;

use crate::output::FONT_FAMILY;
use crate::{ColorMap, VizError};

/// A rectangle in pixels: left, top, right, bottom (right and bottom exclusive).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rect {
    pub left: f64,
    pub top: f64,
    pub right: f64,
    pub bottom: f64,
}

impl Rect {
    pub fn width(&self) -> f64 {
        self.right - self.left
    }
    pub fn height(&self) -> f64 {
        self.bottom - self.top
    }
}

/// A text style `size_px` pixels high in the embedded font.
pub(crate) fn font(size_px: f64, bold: bool) -> TextStyle<'static> {
    let style = if bold {
        FontStyle::Bold
    } else {
        FontStyle::Normal
    };
    FontDesc::new(FontFamily::Name(FONT_FAMILY), size_px, style).color(&BLACK)
}

/// Width and height in pixels of `text` in `style` (unrotated).
pub(crate) fn text_size<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    style: &TextStyle,
) -> Result<(f64, f64), VizError> {
    let (w, h) = area
        .estimate_text_size(text, style)
        .map_err(VizError::draw)?;
    Ok((w as f64, h as f64))
}

/// Draws `text` anchored at `(x, y)`; `rotated` turns it to read bottom to top.
pub(crate) fn draw_text<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    style: &TextStyle,
    (x, y): (f64, f64),
    (h, v): (HPos, VPos),
    rotated: bool,
) -> Result<(), VizError> {
    let mut style = style.clone().pos(Pos::new(h, v));
    if rotated {
        style = style.transform(FontTransform::Rotate270);
    }
    area.draw_text(text, &style, (x.round() as i32, y.round() as i32))
        .map_err(VizError::draw)
}

/// Shortens a layer name longer than `max_chars` by cutting its middle, keeping both ends
/// (`stage3.block17.conv2` stays recognisable).
pub(crate) fn shorten(name: &str, max_chars: usize) -> String {
    let chars: Vec<char> = name.chars().collect();
    if chars.len() <= max_chars || max_chars < 5 {
        return name.to_string();
    }
    let keep = max_chars - 1;
    let head = keep / 2;
    let tail = keep - head;
    let mut s: String = chars[..head].iter().collect();
    s.push('…');
    s.extend(&chars[chars.len() - tail..]);
    s
}

/// Every how many labels to print so that labels `label_px` high do not overlap on an axis
/// `extent_px` long holding `count` cells, optionally at most `max_labels` labels.
pub(crate) fn label_step(
    count: usize,
    extent_px: f64,
    label_px: f64,
    max_labels: Option<usize>,
) -> usize {
    if count == 0 {
        return 1;
    }
    let fit = ((extent_px / (label_px * 1.15)).floor() as usize).max(1);
    let mut step = count.div_ceil(fit).max(1);
    if let Some(max) = max_labels {
        step = step.max(count.div_ceil(max.max(1)));
    }
    step
}

/// Checks a matrix can be drawn: rows and columns present, a value grid of that shape, and
/// every defined value finite.
pub(crate) fn check_matrix(matrix: &SimilarityMatrix, what: &str) -> Result<(), VizError> {
    let (rows, cols) = (matrix.rows.len(), matrix.cols.len());
    if rows == 0 || cols == 0 {
        return Err(VizError::Empty(format!(
            "{what} ({}) has {rows} rows and {cols} columns: nothing to draw",
            matrix.measure
        )));
    }
    if matrix.values.len() != rows {
        return Err(VizError::BadValue(format!(
            "{what} ({}) names {rows} rows but holds {} rows of values",
            matrix.measure,
            matrix.values.len()
        )));
    }
    for (i, row) in matrix.values.iter().enumerate() {
        if row.len() != cols {
            return Err(VizError::BadValue(format!(
                "{what} ({}): row {i} ({}) holds {} values, expected {cols}",
                matrix.measure,
                matrix.rows[i],
                row.len()
            )));
        }
        for (j, v) in row.iter().enumerate() {
            if let Some(v) = v {
                if !v.is_finite() {
                    return Err(VizError::BadValue(format!(
                        "{what} ({}): value {v} at ({}, {}) is not finite",
                        matrix.measure, matrix.rows[i], matrix.cols[j]
                    )));
                }
            }
        }
    }
    Ok(())
}

/// The value range of the colour scale: `requested` if given (checked), else [0, 1], widened
/// to the data when a measure leaves [0, 1] (Procrustes distances reach 2).
pub(crate) fn value_range<'a>(
    matrices: impl IntoIterator<Item = &'a SimilarityMatrix>,
    requested: Option<(f64, f64)>,
) -> Result<(f64, f64), VizError> {
    if let Some((lo, hi)) = requested {
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            return Err(VizError::BadOption(format!(
                "the value range must be two finite numbers, low < high; got {lo}..{hi}"
            )));
        }
        return Ok((lo, hi));
    }
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for m in matrices {
        for v in m.values.iter().flatten().flatten() {
            if *v < -1e-9 {
                lo = lo.min(*v);
            }
            if *v > 1.0 + 1e-9 {
                hi = hi.max(*v);
            }
        }
    }
    Ok((lo, hi))
}

/// Whether any value of the matrices is undefined.
pub(crate) fn has_undefined<'a>(matrices: impl IntoIterator<Item = &'a SimilarityMatrix>) -> bool {
    matrices
        .into_iter()
        .any(|m| m.values.iter().flatten().any(|v| v.is_none()))
}

/// The p-value at and above which a cell is drawn as not significant.
pub const SIGNIFICANCE_LEVEL: f64 = 0.05;

/// Whether any cell of the matrices has a permutation p-value of at least
/// [`SIGNIFICANCE_LEVEL`] (and is drawn crossed by a diagonal).
pub(crate) fn has_not_significant<'a>(
    matrices: impl IntoIterator<Item = &'a SimilarityMatrix>,
) -> bool {
    matrices.into_iter().any(|m| {
        let (rows, cols) = m.shape();
        (0..rows * cols)
            .any(|c| m.significant(c / cols, c % cols, SIGNIFICANCE_LEVEL) == Some(false))
    })
}

/// The mark of a cell that is not significant: a diagonal from its lower left to its upper
/// right corner, white on a dark cell and black on a light one.
fn draw_not_significant_mark<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (x0, y0): (i32, i32),
    (x1, y1): (i32, i32),
    fill: RGBColor,
) -> Result<(), VizError> {
    let width = (((x1 - x0).min(y1 - y0)) / 12).clamp(1, 3) as u32;
    let RGBColor(r, g, b) = fill;
    let luminance = (0.299 * r as f64 + 0.587 * g as f64 + 0.114 * b as f64) / 255.0;
    let ink = if luminance < 0.5 {
        WHITE.mix(0.8)
    } else {
        BLACK.mix(0.6)
    };
    area.draw(&PathElement::new(
        vec![(x0, y1 - 1), (x1 - 1, y0)],
        ink.stroke_width(width),
    ))
    .map_err(VizError::draw)
}

/// The pixel boundaries of `count` cells spread over `start..end`: `count + 1` integers, so
/// neighbouring cells share an edge and leave no gap.
pub(crate) fn boundaries(start: f64, end: f64, count: usize) -> Vec<i32> {
    (0..=count)
        .map(|i| (start + (end - start) * i as f64 / count as f64).round() as i32)
        .collect()
}

/// Fills `rect` with the matrix's cells: row 0 at the top, or at the bottom when
/// `origin_lower`; undefined cells in the colour map's undefined colour.
pub(crate) fn draw_cells<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    matrix: &SimilarityMatrix,
    rect: Rect,
    colormap: ColorMap,
    (lo, hi): (f64, f64),
    origin_lower: bool,
) -> Result<(), VizError> {
    let (rows, cols) = (matrix.rows.len(), matrix.cols.len());
    let xs = boundaries(rect.left, rect.right, cols);
    let ys = boundaries(rect.top, rect.bottom, rows);
    for (i, row) in matrix.values.iter().enumerate() {
        let slot = if origin_lower { rows - 1 - i } else { i };
        let (y0, y1) = (ys[slot], ys[slot + 1]);
        if y1 <= y0 {
            continue;
        }
        for (j, value) in row.iter().enumerate() {
            let (x0, x1) = (xs[j], xs[j + 1]);
            if x1 <= x0 {
                continue;
            }
            let color = match value {
                Some(v) => colormap.color((v - lo) / (hi - lo)),
                None => colormap.undefined(),
            };
            area.draw(&Rectangle::new([(x0, y0), (x1, y1)], color.filled()))
                .map_err(VizError::draw)?;
            if matrix.significant(i, j, SIGNIFICANCE_LEVEL) == Some(false) {
                draw_not_significant_mark(area, (x0, y0), (x1, y1), color)?;
            }
        }
    }
    frame(area, rect)
}

/// A thin black frame around `rect`.
pub(crate) fn frame<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    rect: Rect,
) -> Result<(), VizError> {
    let (l, t) = (rect.left.round() as i32, rect.top.round() as i32);
    let (r, b) = (
        rect.right.round() as i32 - 1,
        rect.bottom.round() as i32 - 1,
    );
    area.draw(&Rectangle::new(
        [(l - 1, t - 1), (r + 1, b + 1)],
        BLACK.stroke_width(1),
    ))
    .map_err(VizError::draw)
}

/// About `target` round tick values (steps of 1, 2 or 5 times a power of ten) within lo..=hi.
pub(crate) fn nice_ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        return vec![lo];
    }
    let raw = span / target.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// A tick value with the fewest decimals (up to 6) that show every tick of `ticks` exactly.
pub(crate) fn format_tick(value: f64, ticks: &[f64]) -> String {
    let exact = |d: usize| {
        ticks.iter().all(|t| {
            let shown: f64 = format!("{t:.d$}").parse().unwrap_or(f64::NAN);
            (shown - t).abs() < 1e-9 * (1.0 + t.abs())
        })
    };
    let decimals = (0..=6).find(|d| exact(*d)).unwrap_or(6);
    let v = if value.abs() < 1e-12 { 0.0 } else { value };
    format!("{v:.decimals$}")
}

/// A vertical colour bar in `rect` (low at the bottom) with ticks and their values to its
/// right; returns the right edge of the tick labels.
pub(crate) fn draw_colorbar<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    rect: Rect,
    colormap: ColorMap,
    (lo, hi): (f64, f64),
    tick_font: &TextStyle,
    tick_len: f64,
) -> Result<f64, VizError> {
    let top = rect.top.round() as i32;
    let bottom = rect.bottom.round() as i32;
    let (l, r) = (rect.left.round() as i32, rect.right.round() as i32 - 1);
    let height = (bottom - top).max(1);
    for y in top..bottom {
        let t = (bottom - 1 - y) as f64 / (height - 1).max(1) as f64;
        area.draw(&PathElement::new(vec![(l, y), (r, y)], colormap.color(t)))
            .map_err(VizError::draw)?;
    }
    frame(area, rect)?;
    let ticks = nice_ticks(lo, hi, 5);
    let mut right_edge = rect.right;
    for value in &ticks {
        let t = (value - lo) / (hi - lo);
        let y = rect.bottom - t * (rect.bottom - rect.top);
        let yi = y.round() as i32;
        area.draw(&PathElement::new(
            vec![(r + 1, yi), (r + 1 + tick_len.round() as i32, yi)],
            BLACK,
        ))
        .map_err(VizError::draw)?;
        let label = format_tick(*value, &ticks);
        let x = rect.right + tick_len * 1.8;
        draw_text(
            area,
            &label,
            tick_font,
            (x, y),
            (HPos::Left, VPos::Center),
            false,
        )?;
        let (w, _) = text_size(area, &label, tick_font)?;
        right_edge = right_edge.max(x + w);
    }
    Ok(right_edge)
}

/// The keys under a colour bar, stacked from `(x, y)` down: the undefined colour when a
/// matrix has undefined cells, the crossed swatch when a cell is not significant.
pub(crate) fn draw_keys<'a, DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    matrices: impl IntoIterator<Item = &'a SimilarityMatrix> + Clone,
    (x, y): (f64, f64),
    (side, gap): (f64, f64),
    colormap: ColorMap,
    font: &TextStyle,
) -> Result<(), VizError> {
    let mut top = y;
    if has_undefined(matrices.clone()) {
        draw_key(
            area,
            (x, top),
            side,
            colormap.undefined(),
            false,
            "undefined",
            font,
        )?;
        top += side + gap;
    }
    if has_not_significant(matrices) {
        let label = format!("p ≥ {SIGNIFICANCE_LEVEL} (permutations)");
        draw_key(
            area,
            (x, top),
            side,
            colormap.color(0.5),
            true,
            &label,
            font,
        )?;
    }
    Ok(())
}

/// A framed swatch of `fill` (crossed like a cell that is not significant when `crossed`)
/// with `label` beside it, its top-left at `(x, y)`, moved left as far as it takes for the
/// label to end inside the drawing.
fn draw_key<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (x, y): (f64, f64),
    side: f64,
    fill: RGBColor,
    crossed: bool,
    label: &str,
    font: &TextStyle,
) -> Result<(), VizError> {
    let (label_width, _) = text_size(area, label, font)?;
    let width = f64::from(area.dim_in_pixel().0);
    let x = x
        .min(width - side * 1.4 - label_width - side / 2.0)
        .max(0.0);
    let rect = Rect {
        left: x,
        top: y,
        right: x + side,
        bottom: y + side,
    };
    let (x0, y0) = (x.round() as i32, y.round() as i32);
    let (x1, y1) = (rect.right.round() as i32, rect.bottom.round() as i32);
    area.draw(&Rectangle::new([(x0, y0), (x1 - 1, y1 - 1)], fill.filled()))
        .map_err(VizError::draw)?;
    if crossed {
        draw_not_significant_mark(area, (x0, y0), (x1, y1), fill)?;
    }
    frame(area, rect)?;
    draw_text(
        area,
        label,
        font,
        (x + side * 1.4, y + side / 2.0),
        (HPos::Left, VPos::Center),
        false,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_inside_the_range() {
        assert_eq!(
            nice_ticks(0.0, 1.0, 5),
            vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
        );
        let t = nice_ticks(0.0, 2.0, 5);
        assert_eq!(t.first(), Some(&0.0));
        assert!((t.last().unwrap() - 2.0).abs() < 1e-12);
        let t = nice_ticks(0.13, 0.87, 5);
        assert!(t.iter().all(|v| (0.13..=0.87).contains(v)), "{t:?}");
        assert_eq!(
            format_tick(0.6000000000000001, &nice_ticks(0.0, 1.0, 5)),
            "0.6"
        );
        assert_eq!(format_tick(0.25, &[0.0, 0.25, 0.5]), "0.25");
        assert_eq!(format_tick(2.0, &[0.0, 1.0, 2.0]), "2");
    }

    #[test]
    fn labels_thin_to_what_fits() {
        assert_eq!(label_step(10, 500.0, 10.0, None), 1);
        let step = label_step(300, 500.0, 10.0, None);
        assert!(300 / step <= 500 / 10, "step {step}");
        assert_eq!(label_step(300, 5000.0, 10.0, Some(30)), 10);
    }

    #[test]
    fn long_names_keep_both_ends() {
        assert_eq!(shorten("stage3.block17.conv2", 40), "stage3.block17.conv2");
        let s = shorten("model.encoder.stage3.block17.conv2", 16);
        assert_eq!(s.chars().count(), 16);
        assert!(s.starts_with("model.") && s.ends_with("conv2"), "{s}");
    }

    #[test]
    fn boundaries_tile_without_gaps() {
        let b = boundaries(10.0, 510.0, 300);
        assert_eq!(b.len(), 301);
        assert_eq!((b[0], b[300]), (10, 510));
        assert!(b.windows(2).all(|w| w[1] >= w[0]));
    }
}
