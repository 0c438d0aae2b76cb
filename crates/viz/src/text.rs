//! Text drawn glyph by glyph with correct side bearings. plotters 0.3.7's `ab_glyph` text
//! drops each glyph's left bearing, so at small sizes letters collide ("circle" reads
//! "cirde"). [`CrispText`] wraps a backend: on bitmaps it rasterises text itself with
//! `ab_glyph`; on SVG it keeps native `<text>` elements. Both measure text the same way, so a
//! layout computed on one holds for the other.

use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
    FontStyle,
};

use crate::VizError;

/// DejaVu Sans regular and bold, parsed once; `None` only if the embedded bytes were corrupt
/// (`ensure_font` reports that before anything is drawn).
fn fonts() -> Option<&'static (FontRef<'static>, FontRef<'static>)> {
    static FONTS: OnceLock<Option<(FontRef<'static>, FontRef<'static>)>> = OnceLock::new();
    FONTS
        .get_or_init(|| {
            let regular = FontRef::try_from_slice(dejavu::sans::regular()).ok()?;
            let bold = FontRef::try_from_slice(dejavu::sans::bold()).ok()?;
            Some((regular, bold))
        })
        .as_ref()
}

fn font_for(style: FontStyle) -> Option<&'static FontRef<'static>> {
    let (regular, bold) = fonts()?;
    Some(match style {
        FontStyle::Bold => bold,
        _ => regular,
    })
}

/// Width and height (ascent - descent) of `text` at `size` pixels.
pub(crate) fn measure(text: &str, size: f64, style: FontStyle) -> (f64, f64) {
    let Some(font) = font_for(style) else {
        return (0.0, 0.0);
    };
    let font = font.as_scaled(PxScale::from(size as f32));
    let mut width = 0.0f32;
    let mut previous = None;
    for c in text.chars() {
        let id = font.glyph_id(c);
        if let Some(p) = previous {
            width += font.kern(p, id);
        }
        width += font.h_advance(id);
        previous = Some(id);
    }
    (width as f64, (font.ascent() - font.descent()) as f64)
}

/// A backend whose text is measured (and, on bitmaps, drawn) with correct glyph metrics.
pub struct CrispText<DB> {
    inner: DB,
    rasterise: bool,
}

impl<DB: DrawingBackend> CrispText<DB> {
    /// Wraps a bitmap backend: text is rasterised here.
    pub fn bitmap(inner: DB) -> Self {
        Self {
            inner,
            rasterise: true,
        }
    }
    /// Wraps a vector backend: text stays text.
    pub fn vector(inner: DB) -> Self {
        Self {
            inner,
            rasterise: false,
        }
    }
}

impl<DB: DrawingBackend> DrawingBackend for CrispText<DB> {
    type ErrorType = DB::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }
    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.ensure_prepared()
    }
    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.present()
    }
    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_pixel(point, color)
    }
    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_line(from, to, style)
    }
    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }
    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_path(path, style)
    }
    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_circle(center, radius, style, fill)
    }
    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.fill_polygon(vert, style)
    }
    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
        let (w, h) = measure(text, style.size(), style.style());
        Ok((w.ceil() as u32, h.ceil() as u32))
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        if !self.rasterise {
            return self.inner.draw_text(text, style, pos);
        }
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let Some(font) = font_for(style.style()) else {
            return Err(DrawingErrorKind::FontError(Box::new(VizError::Draw(
                "the embedded DejaVu Sans font is corrupt".into(),
            ))));
        };
        let scale = PxScale::from(style.size() as f32);
        let scaled = font.as_scaled(scale);
        let (width, height) = measure(text, style.size(), style.style());
        let anchor = style.anchor();
        let dx = match anchor.h_pos {
            HPos::Left => 0.0,
            HPos::Center => -width / 2.0,
            HPos::Right => -width,
        };
        let baseline = scaled.ascent() as f64
            + match anchor.v_pos {
                VPos::Top => 0.0,
                VPos::Center => -height / 2.0,
                VPos::Bottom => -height,
            };
        let transform = style.transform();
        let (w, h) = self.inner.get_size();
        let mut x = dx as f32;
        let mut previous = None;
        for c in text.chars() {
            let id = scaled.glyph_id(c);
            if let Some(p) = previous {
                x += scaled.kern(p, id);
            }
            let glyph = id.with_scale_and_position(scale, ab_glyph::point(x, baseline as f32));
            x += scaled.h_advance(id);
            previous = Some(id);
            let Some(outline) = font.outline_glyph(glyph) else {
                continue;
            };
            let bounds = outline.px_bounds();
            let mut pixels = Vec::new();
            outline.draw(|gx, gy, coverage| {
                if coverage > 0.0 {
                    pixels.push((
                        bounds.min.x as i32 + gx as i32,
                        bounds.min.y as i32 + gy as i32,
                        coverage,
                    ));
                }
            });
            for (px, py, coverage) in pixels {
                let (tx, ty) = transform.transform(px, py);
                let (tx, ty) = (pos.0 + tx, pos.1 + ty);
                if tx >= 0 && ty >= 0 && (tx as u32) < w && (ty as u32) < h {
                    self.inner.draw_pixel(
                        (tx, ty),
                        BackendColor {
                            alpha: color.alpha * coverage.min(1.0) as f64,
                            rgb: color.rgb,
                        },
                    )?;
                }
            }
        }
        Ok(())
    }
}
