//! Line plots and bar charts: similarity of each layer over training epochs (Raghu et al. 2017,
//! Fig. 4; Morcos et al. 2018), similarity against layer index, explained variance of PCA.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::paint;
use crate::{ColorMap, Figure, FigureSize, VizError};

/// One line: a name for the legend and its points (x, y).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Series {
    /// Legend entry (e.g. the layer's name).
    pub name: String,
    /// The points, in drawing order.
    pub points: Vec<(f64, f64)>,
    /// A shaded band around the line: (low, high) at each point's x (the spread over seeds or
    /// pairs, say); `None` draws none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub band: Option<Vec<(f64, f64)>>,
}

/// How lines are told apart.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum LineColors {
    /// A categorical palette and a legend with every series.
    Legend,
    /// A colour gradient through the map, first series to last (e.g. by depth, as in
    /// Raghu et al.'s convergence plots), with the first and last named in the legend.
    Gradient(ColorMap),
}

/// A line plot of several series.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LinePlot {
    /// The lines.
    pub series: Vec<Series>,
    /// Title.
    pub title: String,
    /// Label of the x axis (e.g. `epoch`).
    pub x_label: String,
    /// Label of the y axis (e.g. `CKA with the final network`).
    pub y_label: String,
    /// How lines are coloured.
    pub colors: LineColors,
    /// The y range; `None` fits the data (and includes [0, 1] when it is within it).
    pub y_range: Option<(f64, f64)>,
    /// Names for integer x positions (e.g. layer names for a similarity-vs-layer plot).
    pub x_tick_labels: Option<Vec<String>>,
    /// Physical size; `None` is 6.5 x 4.2 inches at 150 DPI.
    pub size: Option<FigureSize>,
    /// The x values are whole numbers (epochs): ticks only at integers.
    #[serde(default)]
    pub x_integer: bool,
}

impl LinePlot {
    /// A plot of `series` with a legend and axes fitted to the data.
    pub fn new(series: Vec<Series>, title: &str, x_label: &str, y_label: &str) -> Self {
        Self {
            series,
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            colors: LineColors::Legend,
            y_range: None,
            x_tick_labels: None,
            x_integer: false,
            size: None,
        }
    }

    fn x_range(&self) -> (f64, f64) {
        let xs = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0));
        let (lo, hi) = min_max(xs);
        if self.x_tick_labels.is_some() {
            // Named positions sit in the middle of their slot, not on the frame.
            return (lo - 0.5, hi + 0.5);
        }
        if lo == hi {
            (lo - 0.5, hi + 0.5)
        } else {
            (lo, hi)
        }
    }

    fn y_range(&self) -> (f64, f64) {
        if let Some(r) = self.y_range {
            return r;
        }
        let (lo, hi) = min_max(self.series.iter().flat_map(|s| {
            s.points.iter().map(|p| p.1).chain(
                s.band
                    .iter()
                    .flatten()
                    .flat_map(|(low, high)| [*low, *high]),
            )
        }));
        if lo >= 0.0 && hi <= 1.0 {
            return (0.0, 1.0);
        }
        let margin = ((hi - lo) * 0.05).max(1e-6);
        (lo - margin, hi + margin)
    }

    fn color(&self, index: usize) -> RGBColor {
        match self.colors {
            LineColors::Legend => categorical(index),
            LineColors::Gradient(map) => {
                let n = self.series.len().max(2) - 1;
                // Stay away from the map's near-white and near-black ends.
                map.color(0.08 + 0.8 * index as f64 / n as f64)
            }
        }
    }
}

/// A tick value as short text: plotters' tick positions carry rounding error (0.1 * 3 is
/// 0.30000000000000004), so at most 4 decimals, trailing zeros dropped.
fn tick_text(x: f64) -> String {
    let text = format!("{x:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".into()
    } else {
        text.to_string()
    }
}

fn min_max(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    })
}

/// matplotlib's `tab10` palette, repeated.
fn categorical(index: usize) -> RGBColor {
    const TAB10: [(u8, u8, u8); 10] = [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
    ];
    let (r, g, b) = TAB10[index % 10];
    RGBColor(r, g, b)
}

fn check_points<'a>(
    what: &str,
    points: impl Iterator<Item = (&'a str, f64, f64)>,
) -> Result<(), VizError> {
    for (name, x, y) in points {
        if !x.is_finite() || !y.is_finite() {
            return Err(VizError::BadValue(format!(
                "{what}: series {name:?} has a point ({x}, {y}) that is not finite"
            )));
        }
    }
    Ok(())
}

fn check_range(range: Option<(f64, f64)>) -> Result<(), VizError> {
    if let Some((lo, hi)) = range {
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            return Err(VizError::BadOption(format!(
                "the y range must be two finite numbers, low < high; got {lo}..{hi}"
            )));
        }
    }
    Ok(())
}

impl Figure for LinePlot {
    fn size(&self) -> FigureSize {
        self.size.unwrap_or(FigureSize::new(6.5, 4.2, 150.0))
    }

    fn validate(&self) -> Result<(), VizError> {
        if self.series.iter().all(|s| s.points.is_empty()) {
            return Err(VizError::Empty(format!(
                "the line plot {:?} has no points",
                self.title
            )));
        }
        check_points(
            "the line plot",
            self.series
                .iter()
                .flat_map(|s| s.points.iter().map(move |p| (s.name.as_str(), p.0, p.1))),
        )?;
        check_range(self.y_range)
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), VizError> {
        let size = self.size();
        let pt = size.px_per_pt();
        let (x0, x1) = self.x_range();
        let (y0, y1) = self.y_range();
        let label_font = paint::font(8.0 * pt, false);
        // Layer names as x ticks are drawn by repsim, rotated, under the axis: plotters puts
        // rotated tick labels inside the plot.
        let tick_names: Vec<String> = self
            .x_tick_labels
            .iter()
            .flatten()
            .map(|l| paint::shorten(l, 24))
            .collect();
        let mut widest: f64 = 0.0;
        for name in &tick_names {
            widest = widest.max(paint::text_size(area, name, &label_font)?.0);
        }
        let x_label_area = if tick_names.is_empty() {
            30.0 * pt
        } else {
            widest + 24.0 * pt
        };
        let mut chart = ChartBuilder::on(area)
            .caption(&self.title, paint::font(13.0 * pt, true))
            .margin(10.0 * pt)
            .x_label_area_size(x_label_area)
            .y_label_area_size(42.0 * pt)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(VizError::draw)?;
        let named_ticks = !tick_names.is_empty();
        let integer = self.x_integer;
        let formatter = move |x: &f64| -> String {
            if named_ticks || (integer && x.fract().abs() > 1e-9) {
                String::new()
            } else {
                tick_text(*x)
            }
        };
        let mut mesh = chart.configure_mesh();
        if integer {
            // At most one tick per whole number.
            mesh.x_labels(((x1 - x0).round() as usize + 1).clamp(2, 12));
        }
        mesh.x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            .axis_desc_style(paint::font(9.5 * pt, false))
            .label_style(label_font.clone())
            .light_line_style(RGBColor(244, 244, 244))
            .bold_line_style(RGBColor(220, 220, 220))
            .x_label_formatter(&formatter);
        mesh.draw().map_err(VizError::draw)?;
        if named_ticks {
            let (left, _) = chart.backend_coord(&(x0, y0));
            let (right, _) = chart.backend_coord(&(x1, y0));
            let label_h = paint::text_size(area, "Ag", &label_font)?.1;
            let step =
                paint::label_step(tick_names.len(), (right - left).abs() as f64, label_h, None);
            for (i, name) in tick_names.iter().enumerate().step_by(step) {
                let x = i as f64;
                if x < x0 || x > x1 {
                    continue;
                }
                let (px, py) = chart.backend_coord(&(x, y0));
                area.draw(&PathElement::new(
                    vec![(px, py), (px, py + (3.0 * pt) as i32)],
                    BLACK,
                ))
                .map_err(VizError::draw)?;
                paint::draw_text(
                    area,
                    name,
                    &label_font,
                    (px as f64, py as f64 + 5.0 * pt),
                    (
                        plotters::style::text_anchor::HPos::Right,
                        plotters::style::text_anchor::VPos::Center,
                    ),
                    true,
                )?;
            }
        }

        let count = self.series.len();
        let labelled = |i: usize| match self.colors {
            LineColors::Legend => true,
            LineColors::Gradient(_) => i == 0 || i + 1 == count,
        };
        for (i, series) in self.series.iter().enumerate() {
            let color = self.color(i);
            if let Some(band) = series
                .band
                .as_ref()
                .filter(|b| b.len() == series.points.len())
            {
                let outline: Vec<(f64, f64)> = series
                    .points
                    .iter()
                    .zip(band)
                    .map(|(p, b)| (p.0, b.1))
                    .chain(
                        series
                            .points
                            .iter()
                            .zip(band)
                            .rev()
                            .map(|(p, b)| (p.0, b.0)),
                    )
                    .collect();
                chart
                    .draw_series(std::iter::once(Polygon::new(
                        outline,
                        color.mix(0.22).filled(),
                    )))
                    .map_err(VizError::draw)?;
            }
            let style = color.stroke_width((1.6 * pt).round().max(1.0) as u32);
            let drawn = chart
                .draw_series(LineSeries::new(series.points.iter().copied(), style))
                .map_err(VizError::draw)?;
            if labelled(i) {
                drawn.label(series.name.as_str()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            }
            if series.points.len() <= 30 {
                chart
                    .draw_series(
                        series
                            .points
                            .iter()
                            .map(|p| Circle::new(*p, (2.0 * pt).round() as i32, color.filled())),
                    )
                    .map_err(VizError::draw)?;
            }
        }
        chart
            .configure_series_labels()
            .label_font(paint::font(8.0 * pt, false))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(VizError::draw)?;
        Ok(())
    }
}

/// A bar chart, e.g. the fraction of variance each principal direction explains, with the
/// cumulative fraction drawn over it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BarChart {
    /// One value per bar.
    pub values: Vec<f64>,
    /// Title.
    pub title: String,
    /// Label of the x axis.
    pub x_label: String,
    /// Label of the y axis.
    pub y_label: String,
    /// Also draw the running sum as a line (explained variance).
    pub cumulative: bool,
    /// Bar colour as a position in the colour map.
    pub colormap: ColorMap,
    /// Physical size; `None` is 6.5 x 4.2 inches at 150 DPI.
    pub size: Option<FigureSize>,
}

impl BarChart {
    /// The explained-variance chart of a PCA: `variances` (any non-negative numbers, e.g.
    /// squared singular values) are normalised to fractions and drawn with their running sum.
    pub fn explained_variance(variances: &[f64], title: &str) -> Result<Self, VizError> {
        if variances.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return Err(VizError::BadValue(
                "explained variance needs finite, non-negative variances".into(),
            ));
        }
        let total: f64 = variances.iter().sum();
        if total <= 0.0 {
            return Err(VizError::Empty(
                "the variances sum to zero: nothing to draw".into(),
            ));
        }
        Ok(Self {
            values: variances.iter().map(|v| v / total).collect(),
            title: title.into(),
            x_label: "principal direction".into(),
            y_label: "fraction of variance".into(),
            cumulative: true,
            colormap: ColorMap::Viridis,
            size: None,
        })
    }
}

impl Figure for BarChart {
    fn size(&self) -> FigureSize {
        self.size.unwrap_or(FigureSize::new(6.5, 4.2, 150.0))
    }

    fn validate(&self) -> Result<(), VizError> {
        if self.values.is_empty() {
            return Err(VizError::Empty(format!(
                "the bar chart {:?} has no bars",
                self.title
            )));
        }
        check_points(
            "the bar chart",
            self.values
                .iter()
                .enumerate()
                .map(|(i, v)| ("bars", i as f64, *v)),
        )
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), VizError> {
        let pt = self.size().px_per_pt();
        let n = self.values.len();
        let mut hi = self.values.iter().copied().fold(0.0, f64::max);
        if self.cumulative {
            hi = hi.max(self.values.iter().sum::<f64>());
        }
        let lo = self.values.iter().copied().fold(0.0, f64::min);
        let hi = if hi <= lo { lo + 1.0 } else { hi * 1.05 };
        let mut chart = ChartBuilder::on(area)
            .caption(&self.title, paint::font(13.0 * pt, true))
            .margin(10.0 * pt)
            .x_label_area_size(30.0 * pt)
            .y_label_area_size(42.0 * pt)
            .build_cartesian_2d(-0.5..(n as f64 - 0.5), lo..hi)
            .map_err(VizError::draw)?;
        chart
            .configure_mesh()
            .x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            .axis_desc_style(paint::font(9.5 * pt, false))
            .label_style(paint::font(8.0 * pt, false))
            .disable_x_mesh()
            .x_label_formatter(&|x: &f64| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 {
                    format!("{}", i as usize + 1)
                } else {
                    String::new()
                }
            })
            .draw()
            .map_err(VizError::draw)?;
        let bar_color = self.colormap.color(0.35);
        chart
            .draw_series(self.values.iter().enumerate().map(|(i, v)| {
                let x = i as f64;
                Rectangle::new(
                    [(x - 0.4, 0.0f64.min(*v)), (x + 0.4, 0.0f64.max(*v))],
                    bar_color.filled(),
                )
            }))
            .map_err(VizError::draw)?;
        if self.cumulative {
            let mut sum = 0.0;
            let points: Vec<(f64, f64)> = self
                .values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    sum += v;
                    (i as f64, sum)
                })
                .collect();
            let line_color = self.colormap.color(0.8);
            chart
                .draw_series(LineSeries::new(
                    points,
                    line_color.stroke_width((1.6 * pt).round() as u32),
                ))
                .map_err(VizError::draw)?
                .label("cumulative")
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], line_color.stroke_width(2))
                });
            chart
                .configure_series_labels()
                .label_font(paint::font(8.0 * pt, false))
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(180, 180, 180))
                .position(SeriesLabelPosition::MiddleRight)
                .draw()
                .map_err(VizError::draw)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tick_tests {
    #[test]
    fn tick_text_hides_rounding_error() {
        assert_eq!(super::tick_text(0.1 * 3.0), "0.3");
        assert_eq!(super::tick_text(2.0), "2");
        assert_eq!(super::tick_text(-0.00001), "0");
        assert_eq!(super::tick_text(0.125), "0.125");
    }
}

#[cfg(test)]
mod integer_ticks {
    use super::*;

    #[test]
    fn whole_number_axes_tick_only_whole_numbers() {
        let series = vec![Series {
            name: "a".into(),
            points: vec![(1.0, 0.5), (2.0, 0.7), (3.0, 1.0)],
            band: None,
        }];
        let mut plot = LinePlot::new(series, "t", "epoch", "v");
        plot.x_integer = true;
        let svg = crate::render_svg(&plot).unwrap();
        // SVG text nodes hold one tick label per line.
        let labels: Vec<&str> = svg.lines().map(str::trim).collect();
        for fraction in ["1.2", "1.4", "2.5"] {
            assert!(!labels.contains(&fraction), "{fraction} drawn");
        }
        assert!(labels.contains(&"2"), "no tick at epoch 2");
        if let Ok(dir) = std::env::var("REPSIM_RENDER_DIR") {
            std::fs::write(
                format!("{dir}/integer_ticks.png"),
                crate::render_png(&plot).unwrap(),
            )
            .unwrap();
        }
    }
}
