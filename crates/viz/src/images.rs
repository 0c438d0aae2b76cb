//! A grid of small images with captions: what `repsim data --preview` draws to show what a
//! dataset holds.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use crate::paint;
use crate::{Figure, FigureSize, VizError};

/// One tile: an RGB image (interleaved bytes, row-major) and its caption.
#[derive(Debug, Clone, PartialEq)]
pub struct Tile {
    /// `3 * width * height` bytes, RGB interleaved.
    pub rgb: Vec<u8>,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Caption under the image (e.g. its class name).
    pub caption: String,
}

/// Images in a grid of `cols` columns, each scaled up by whole pixels (nearest neighbour, so
/// a 32 x 32 image stays crisp) with its caption.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageGrid {
    /// The tiles, row-major.
    pub tiles: Vec<Tile>,
    /// Tiles per row.
    pub cols: usize,
    /// Title.
    pub title: String,
    /// Scale factor of each image pixel.
    pub zoom: usize,
}

impl ImageGrid {
    fn rows(&self) -> usize {
        self.tiles.len().div_ceil(self.cols.max(1))
    }
    fn tile_size(&self) -> (usize, usize) {
        let w = self.tiles.iter().map(|t| t.width).max().unwrap_or(0) * self.zoom;
        let h = self.tiles.iter().map(|t| t.height).max().unwrap_or(0) * self.zoom;
        (w, h)
    }
}

const DPI: f64 = 100.0;

impl Figure for ImageGrid {
    fn size(&self) -> FigureSize {
        let (tw, th) = self.tile_size();
        let w = (self.cols * (tw + 16) + 24).max(300);
        let h = self.rows() * (th + 34) + 50;
        FigureSize::new(w as f64 / DPI, h as f64 / DPI, DPI)
    }

    fn validate(&self) -> Result<(), VizError> {
        if self.tiles.is_empty() {
            return Err(VizError::Empty("no images to draw".into()));
        }
        if self.cols == 0 || self.zoom == 0 {
            return Err(VizError::BadOption(
                "an image grid needs at least one column and a zoom of 1 or more".into(),
            ));
        }
        for (i, t) in self.tiles.iter().enumerate() {
            if t.rgb.len() != 3 * t.width * t.height || t.width == 0 {
                return Err(VizError::BadValue(format!(
                    "image {i} ({}) holds {} bytes, expected 3 x {} x {}",
                    t.caption,
                    t.rgb.len(),
                    t.width,
                    t.height
                )));
            }
        }
        Ok(())
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), VizError> {
        let pt = self.size().px_per_pt();
        let (tw, th) = self.tile_size();
        let title_font = paint::font(12.0 * pt, true);
        let caption_font = paint::font(9.0 * pt, false);
        let width = self.size().pixels().0 as f64;
        paint::draw_text(
            area,
            &self.title,
            &title_font,
            (width / 2.0, 8.0),
            (HPos::Center, VPos::Top),
            false,
        )?;
        let top = 40.0;
        for (k, tile) in self.tiles.iter().enumerate() {
            let (r, c) = (k / self.cols, k % self.cols);
            let x0 = 12 + c * (tw + 16) + 8;
            let y0 = top as usize + r * (th + 34);
            for y in 0..tile.height {
                for x in 0..tile.width {
                    let i = 3 * (y * tile.width + x);
                    let color = RGBColor(tile.rgb[i], tile.rgb[i + 1], tile.rgb[i + 2]);
                    let (px, py) = ((x0 + x * self.zoom) as i32, (y0 + y * self.zoom) as i32);
                    area.draw(&Rectangle::new(
                        [(px, py), (px + self.zoom as i32, py + self.zoom as i32)],
                        color.filled(),
                    ))
                    .map_err(VizError::draw)?;
                }
            }
            let caption = paint::shorten(&tile.caption, 18);
            paint::draw_text(
                area,
                &caption,
                &caption_font,
                ((x0 + tw / 2) as f64, (y0 + th + 4) as f64),
                (HPos::Center, VPos::Top),
                false,
            )?;
        }
        Ok(())
    }
}
