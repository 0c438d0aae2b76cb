//! Turning a [`Figure`] into a PNG or SVG file: the size and DPI, the embedded font, the
//! format chosen by the file's extension, and atomic writes.

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use crate::text::CrispText;
use crate::VizError;

/// The family name the embedded DejaVu Sans is registered under.
pub(crate) const FONT_FAMILY: &str = "sans-serif";

/// Registers DejaVu Sans (matplotlib's default face, from the `dejavu` crate) with plotters,
/// once per process. No system font is ever looked up.
pub(crate) fn ensure_font() -> Result<(), VizError> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            register_font(FONT_FAMILY, FontStyle::Normal, dejavu::sans::regular())
                .map_err(|_| "the embedded DejaVu Sans regular font is invalid".to_string())?;
            register_font(FONT_FAMILY, FontStyle::Bold, dejavu::sans::bold())
                .map_err(|_| "the embedded DejaVu Sans bold font is invalid".to_string())?;
            Ok(())
        })
        .clone()
        .map_err(VizError::Draw)
}

/// A figure's physical size: width and height in inches and a resolution in dots per inch.
/// Font sizes are in points (1/72 inch), so a figure looks the same at any DPI, only sharper.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FigureSize {
    /// Width in inches.
    pub width_in: f64,
    /// Height in inches.
    pub height_in: f64,
    /// Dots (pixels) per inch.
    pub dpi: f64,
}

impl FigureSize {
    /// A size in inches at a DPI.
    pub fn new(width_in: f64, height_in: f64, dpi: f64) -> Self {
        Self {
            width_in,
            height_in,
            dpi,
        }
    }

    /// The size in pixels.
    pub fn pixels(&self) -> (u32, u32) {
        (
            (self.width_in * self.dpi).round() as u32,
            (self.height_in * self.dpi).round() as u32,
        )
    }

    /// Pixels per typographic point.
    pub fn px_per_pt(&self) -> f64 {
        self.dpi / 72.0
    }

    /// Checks the size gives a drawable image of at most 20,000 x 20,000 pixels.
    pub fn validate(&self) -> Result<(), VizError> {
        let ok = |v: f64| v.is_finite() && v > 0.0;
        if !ok(self.width_in) || !ok(self.height_in) {
            return Err(VizError::BadOption(format!(
                "figure size must be positive, got {} x {} inches",
                self.width_in, self.height_in
            )));
        }
        if !ok(self.dpi) || self.dpi < 10.0 {
            return Err(VizError::BadOption(format!(
                "DPI must be at least 10, got {}",
                self.dpi
            )));
        }
        let (w, h) = self.pixels();
        if w < 100 || h < 100 || w > 20_000 || h > 20_000 {
            return Err(VizError::BadOption(format!(
                "a {} x {} inch figure at {} DPI is {w} x {h} pixels; each side must be 100 to 20000",
                self.width_in, self.height_in, self.dpi
            )));
        }
        Ok(())
    }
}

/// Something repsim can draw on any plotters backend: a heatmap, a grid, a line or bar plot.
pub trait Figure {
    /// The physical size of the figure.
    fn size(&self) -> FigureSize;

    /// Checks the figure's data and options before anything is drawn.
    fn validate(&self) -> Result<(), VizError>;

    /// Draws the figure onto `area`, whose pixel size is `self.size().pixels()`.
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), VizError>;
}

/// The image formats repsim writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// A bitmap, with the DPI recorded in its pHYs chunk.
    Png,
    /// Scalable vector graphics; text stays text.
    Svg,
}

impl ImageFormat {
    /// The format named by `path`'s extension (`.png` or `.svg`, any case).
    pub fn from_path(path: &Path) -> Result<Self, VizError> {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        match extension.as_str() {
            "png" => Ok(ImageFormat::Png),
            "svg" => Ok(ImageFormat::Svg),
            _ => Err(VizError::UnknownFormat {
                path: path.to_path_buf(),
                extension,
            }),
        }
    }
}

/// Renders `figure` as PNG bytes.
pub fn render_png(figure: &impl Figure) -> Result<Vec<u8>, VizError> {
    figure.validate()?;
    figure.size().validate()?;
    ensure_font()?;
    let size = figure.size();
    let (w, h) = size.pixels();
    let mut rgb = vec![255u8; w as usize * h as usize * 3];
    {
        let root =
            CrispText::bitmap(BitMapBackend::with_buffer(&mut rgb, (w, h))).into_drawing_area();
        root.fill(&WHITE).map_err(VizError::draw)?;
        figure.draw(&root)?;
        root.present().map_err(VizError::draw)?;
    }
    encode_png(&rgb, w, h, size.dpi)
}

/// Renders `figure` as an SVG document.
pub fn render_svg(figure: &impl Figure) -> Result<String, VizError> {
    figure.validate()?;
    figure.size().validate()?;
    ensure_font()?;
    let (w, h) = figure.size().pixels();
    let mut svg = String::new();
    {
        let root = CrispText::vector(SVGBackend::with_string(&mut svg, (w, h))).into_drawing_area();
        root.fill(&WHITE).map_err(VizError::draw)?;
        figure.draw(&root)?;
        root.present().map_err(VizError::draw)?;
    }
    Ok(svg)
}

/// Draws `figure` into `path`, as PNG or SVG by the extension. The image is rendered in
/// memory and written to a temporary file that is renamed into place, so a failure never
/// leaves a half-written image.
pub fn save(figure: &impl Figure, path: &Path) -> Result<(), VizError> {
    let bytes = match ImageFormat::from_path(path)? {
        ImageFormat::Png => render_png(figure)?,
        ImageFormat::Svg => render_svg(figure)?.into_bytes(),
    };
    write_atomically(path, &bytes)
}

/// Checks, before any work, that `path` has a known extension and can be created.
pub fn check_output_path(path: &Path) -> Result<ImageFormat, VizError> {
    let format = ImageFormat::from_path(path)?;
    let dir = repsim_durable::parent_dir(path);
    if !dir.is_dir() {
        return Err(VizError::Io {
            path: path.to_path_buf(),
            message: format!("the directory {} does not exist", dir.display()),
        });
    }
    if path.is_dir() {
        return Err(VizError::Io {
            path: path.to_path_buf(),
            message: "is a directory".into(),
        });
    }
    Ok(format)
}

fn encode_png(rgb: &[u8], width: u32, height: u32, dpi: f64) -> Result<Vec<u8>, VizError> {
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let per_metre = (dpi / 0.0254).round() as u32;
        encoder.set_pixel_dims(Some(png::PixelDimensions {
            xppu: per_metre,
            yppu: per_metre,
            unit: png::Unit::Meter,
        }));
        let mut writer = encoder.write_header().map_err(VizError::draw)?;
        writer.write_image_data(rgb).map_err(VizError::draw)?;
        writer.finish().map_err(VizError::draw)?;
    }
    Ok(bytes)
}

pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), VizError> {
    repsim_durable::write_bytes(path, bytes).map_err(VizError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_follows_the_extension() {
        assert_eq!(
            ImageFormat::from_path(Path::new("a/b.PNG")).unwrap(),
            ImageFormat::Png
        );
        assert_eq!(
            ImageFormat::from_path(Path::new("b.svg")).unwrap(),
            ImageFormat::Svg
        );
        let err = ImageFormat::from_path(Path::new("b.jpg"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("b.jpg") && err.contains(".png or .svg"),
            "{err}"
        );
        assert!(ImageFormat::from_path(Path::new("noext")).is_err());
    }

    #[test]
    fn sizes_are_checked() {
        assert_eq!(FigureSize::new(6.0, 5.0, 100.0).pixels(), (600, 500));
        assert!(FigureSize::new(6.0, 5.0, 100.0).validate().is_ok());
        assert!(FigureSize::new(0.0, 5.0, 100.0).validate().is_err());
        assert!(FigureSize::new(6.0, 5.0, f64::NAN).validate().is_err());
        assert!(FigureSize::new(500.0, 5.0, 100.0).validate().is_err());
    }

    #[test]
    fn the_embedded_font_registers() {
        ensure_font().unwrap();
        ensure_font().unwrap();
    }
}
