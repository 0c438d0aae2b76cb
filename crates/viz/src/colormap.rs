//! Perceptual colour maps (from matplotlib, through the `colorous` crate) and the colour of
//! undefined cells.

use std::fmt;
use std::str::FromStr;

use plotters::style::RGBColor;

use crate::VizError;

/// A sequential colour map: value 0 of the range maps to [`ColorMap::bottom`], 1 to
/// [`ColorMap::top`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColorMap {
    /// matplotlib's magma (black through purple and orange to light yellow), as in Kornblith
    /// et al. 2019 and Nguyen et al. 2021.
    #[default]
    Magma,
    /// matplotlib's viridis (dark blue through green to yellow).
    Viridis,
    /// White (low) to black (high).
    Greys,
}

impl ColorMap {
    /// The colour of `t`, clamped to [0, 1].
    pub fn color(self, t: f64) -> RGBColor {
        let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
        let c = match self {
            ColorMap::Magma => colorous::MAGMA.eval_continuous(t),
            ColorMap::Viridis => colorous::VIRIDIS.eval_continuous(t),
            ColorMap::Greys => colorous::GREYS.eval_continuous(t),
        };
        RGBColor(c.r, c.g, c.b)
    }

    /// The colour of the bottom of the range (t = 0).
    pub fn bottom(self) -> RGBColor {
        self.color(0.0)
    }

    /// The colour of the top of the range (t = 1).
    pub fn top(self) -> RGBColor {
        self.color(1.0)
    }

    /// The colour of undefined cells: one that the map itself never produces (a steel blue
    /// beside magma and greys, a brick red beside viridis).
    pub fn undefined(self) -> RGBColor {
        match self {
            ColorMap::Magma | ColorMap::Greys => RGBColor(70, 150, 200),
            ColorMap::Viridis => RGBColor(200, 60, 60),
        }
    }

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ColorMap::Magma => "magma",
            ColorMap::Viridis => "viridis",
            ColorMap::Greys => "greys",
        }
    }
}

impl fmt::Display for ColorMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ColorMap {
    type Err = VizError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "magma" => Ok(ColorMap::Magma),
            "viridis" => Ok(ColorMap::Viridis),
            "greys" | "grays" | "grey" | "gray" => Ok(ColorMap::Greys),
            other => Err(VizError::BadOption(format!(
                "unknown colour map {other:?}; use magma, viridis or greys"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magma_runs_from_black_to_light_yellow() {
        let bottom = ColorMap::Magma.bottom();
        let top = ColorMap::Magma.top();
        assert!(
            bottom.0 < 10 && bottom.1 < 10 && bottom.2 < 20,
            "{bottom:?}"
        );
        assert!(top.0 > 240 && top.1 > 240 && top.2 > 150, "{top:?}");
    }

    #[test]
    fn undefined_colour_is_far_from_every_map_colour() {
        for map in [ColorMap::Magma, ColorMap::Viridis, ColorMap::Greys] {
            let u = map.undefined();
            let nearest = (0..=1000)
                .map(|i| {
                    let c = map.color(i as f64 / 1000.0);
                    let d = |a: u8, b: u8| (a as f64 - b as f64).powi(2);
                    (d(c.0, u.0) + d(c.1, u.1) + d(c.2, u.2)).sqrt()
                })
                .fold(f64::INFINITY, f64::min);
            assert!(
                nearest > 40.0,
                "{map}: undefined colour is {nearest} from the map"
            );
        }
    }

    #[test]
    fn names_parse_and_bad_names_are_refused() {
        for map in [ColorMap::Magma, ColorMap::Viridis, ColorMap::Greys] {
            assert_eq!(map.name().parse::<ColorMap>().unwrap(), map);
        }
        let err = "jet".parse::<ColorMap>().unwrap_err().to_string();
        assert!(err.contains("jet"), "{err}");
    }
}
