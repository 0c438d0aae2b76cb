//! `shapes`: a built-in synthetic image dataset, generated on demand, so every example and test
//! runs on a fresh machine with nothing downloaded.
//!
//! Ten classes: circle, square, triangle, cross, ring, horizontal stripes, vertical stripes,
//! checkerboard, diamond, star. Each image has a random position, scale, rotation and colours,
//! on a textured two-colour background, with per-pixel noise. Edges are anti-aliased from
//! signed distance functions. Item `i` of a split is a pure function of (seed, split, i), so
//! any number of items can be asked for in any order, from any thread, and always agree. Labels
//! cycle through the classes (`i % 10`), so every prefix of 10k items is exactly balanced.
//!
//! Stripes and checkerboards rotate by at most ±17°, squares by at most ±20° and diamonds
//! (elongated rhombi) within ±20° of 45°: otherwise rotation would turn one class into another.

use burn::data::dataset::{Dataset, DatasetError};
use rand::Rng;

use crate::rng::rng_for;
use crate::{DataError, ImageDataset, ImageItem, Split};

/// The class names of `shapes`, indexed by label.
pub const SHAPE_CLASSES: [&str; 10] = [
    "circle",
    "square",
    "triangle",
    "cross",
    "ring",
    "horizontal_stripes",
    "vertical_stripes",
    "checkerboard",
    "diamond",
    "star",
];

/// Configuration of the `shapes` dataset.
#[derive(burn::config::Config, Debug, PartialEq)]
pub struct ShapesConfig {
    /// Image side in pixels (32 as CIFAR; 16 or 24 make CPU experiments faster).
    #[config(default = 32)]
    pub side: usize,
    /// Seed: two seeds give two unrelated datasets.
    #[config(default = 0)]
    pub seed: u64,
    /// Number of training items.
    #[config(default = 50_000)]
    pub train_len: usize,
    /// Number of test items.
    #[config(default = 10_000)]
    pub test_len: usize,
    /// Standard deviation of the per-pixel noise, in units of the full intensity range.
    #[config(default = 0.06)]
    pub noise: f64,
}

impl ShapesConfig {
    /// The split `split` of the dataset this configuration describes.
    pub fn init(&self, split: Split) -> Result<ShapesDataset, DataError> {
        if !(8..=512).contains(&self.side) {
            return Err(DataError::BadOption(format!(
                "shapes: image side must be 8 to 512 pixels, got {}",
                self.side
            )));
        }
        if !(self.noise.is_finite() && (0.0..=0.5).contains(&self.noise)) {
            return Err(DataError::BadOption(format!(
                "shapes: noise must be in [0, 0.5], got {}",
                self.noise
            )));
        }
        let len = match split {
            Split::Train => self.train_len,
            Split::Test => self.test_len,
        };
        Ok(ShapesDataset {
            config: self.clone(),
            split,
            len,
            class_names: SHAPE_CLASSES.iter().map(|s| s.to_string()).collect(),
        })
    }
}

/// One split of `shapes`; items are generated when asked for.
#[derive(Debug, Clone)]
pub struct ShapesDataset {
    config: ShapesConfig,
    split: Split,
    len: usize,
    class_names: Vec<String>,
}

impl ShapesDataset {
    /// Generates item `index` (any index; `len` only bounds iteration).
    pub fn generate(&self, index: usize) -> ImageItem {
        let label = index % SHAPE_CLASSES.len();
        let pixels = render(&self.config, self.split, index as u64, label);
        ImageItem {
            pixels,
            height: self.config.side,
            width: self.config.side,
            label,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ShapesConfig {
        &self.config
    }
}

impl Dataset<ImageItem> for ShapesDataset {
    fn get(&self, index: usize) -> Result<ImageItem, DatasetError> {
        if index >= self.len {
            return Err(DataError::Index {
                index,
                len: self.len,
            }
            .into());
        }
        Ok(self.generate(index))
    }
    fn len(&self) -> usize {
        self.len
    }
}

impl ImageDataset for ShapesDataset {
    fn class_names(&self) -> &[String] {
        &self.class_names
    }
    fn image_size(&self) -> (usize, usize) {
        (self.config.side, self.config.side)
    }
    fn label(&self, index: usize) -> Result<usize, DataError> {
        if index >= self.len {
            return Err(DataError::Index {
                index,
                len: self.len,
            });
        }
        Ok(index % SHAPE_CLASSES.len())
    }
}

fn length(x: f32, y: f32) -> f32 {
    (x * x + y * y).sqrt()
}

/// Signed distance to a box of half-sizes (bx, by) centred at the origin.
fn sd_box(x: f32, y: f32, bx: f32, by: f32) -> f32 {
    let (qx, qy) = (x.abs() - bx, y.abs() - by);
    length(qx.max(0.0), qy.max(0.0)) + qx.max(qy).min(0.0)
}

/// Signed distance to an equilateral triangle of circumradius about 1 (Quilez).
fn sd_triangle(x: f32, y: f32) -> f32 {
    let k = 3f32.sqrt();
    let (mut px, mut py) = (x.abs() - 0.9, -y + 0.9 / k);
    if px + k * py > 0.0 {
        let (nx, ny) = ((px - k * py) / 2.0, (-k * px - py) / 2.0);
        px = nx;
        py = ny;
    }
    px -= px.clamp(-1.8, 0.0);
    -length(px, py) * py.signum()
}

/// Signed distance (approximate, Lipschitz <= 1) to a five-pointed star.
fn sd_star(x: f32, y: f32) -> f32 {
    let r = length(x, y);
    let a = y.atan2(x);
    let lobe = (0.5 + 0.5 * (5.0 * a).cos()).powf(1.5);
    (r - (0.42 + 0.58 * lobe)) * 0.55
}

/// Per-class geometry: signed distance (normalised units) and, for patterned classes, which of
/// the two foreground colours a point takes.
fn shape_at(label: usize, u: f32, v: f32, frequency: f32) -> (f32, bool) {
    let stripes = |t: f32| (t * frequency).sin() >= 0.0;
    match label {
        0 => (length(u, v) - 0.9, true),
        1 => (sd_box(u, v, 0.8, 0.8), true),
        2 => (sd_triangle(u, v), true),
        3 => (sd_box(u, v, 1.0, 0.28).min(sd_box(u, v, 0.28, 1.0)), true),
        4 => ((length(u, v) - 0.72).abs() - 0.22, true),
        5 => (sd_box(u, v, 0.9, 0.9), stripes(v)),
        6 => (sd_box(u, v, 0.9, 0.9), stripes(u)),
        7 => (sd_box(u, v, 0.9, 0.9), stripes(u) == stripes(v)),
        8 => ((u.abs() / 1.0 + v.abs() / 0.62 - 1.0) * 0.5, true),
        _ => (sd_star(u, v), true),
    }
}

fn luminance(c: [f32; 3]) -> f32 {
    0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]
}

/// Renders item `index` of class `label` as planar RGB bytes.
fn render(config: &ShapesConfig, split: Split, index: u64, label: usize) -> Vec<u8> {
    let side = config.side;
    let s = side as f32;
    let mut rng = rng_for(&[config.seed, split.seed_tag(), index]);
    let color = |rng: &mut rand_chacha::ChaCha8Rng| -> [f32; 3] {
        [
            rng.random::<f32>(),
            rng.random::<f32>(),
            rng.random::<f32>(),
        ]
    };
    // Background: two colours blended by a low-frequency wave in a random direction.
    let bg_a = color(&mut rng);
    let bg_b = color(&mut rng);
    let wave_angle = rng.random::<f32>() * std::f32::consts::TAU;
    let wave_freq = (0.5 + rng.random::<f32>() * 2.0) * std::f32::consts::TAU / s;
    let wave_phase = rng.random::<f32>() * std::f32::consts::TAU;
    let wave_amp = 0.25 + rng.random::<f32>() * 0.45;
    let (wave_x, wave_y) = (wave_angle.cos() * wave_freq, wave_angle.sin() * wave_freq);
    // Foreground colours, pushed away from the background's luminance.
    let bg_lum = luminance([
        (bg_a[0] + bg_b[0]) / 2.0,
        (bg_a[1] + bg_b[1]) / 2.0,
        (bg_a[2] + bg_b[2]) / 2.0,
    ]);
    let contrast = 0.18 + rng.random::<f32>() * 0.4;
    let mut fg = color(&mut rng);
    let shift = if bg_lum < 0.5 { contrast } else { -contrast };
    let target = (bg_lum + shift).clamp(0.0, 1.0);
    let delta = target - luminance(fg);
    for c in fg.iter_mut() {
        *c = (*c + delta).clamp(0.0, 1.0);
    }
    // The second colour of patterned classes contrasts with the first.
    let fg2 = if luminance(fg) > 0.5 {
        [fg[0] * 0.3, fg[1] * 0.3, fg[2] * 0.3]
    } else {
        [
            1.0 - (1.0 - fg[0]) * 0.3,
            1.0 - (1.0 - fg[1]) * 0.3,
            1.0 - (1.0 - fg[2]) * 0.3,
        ]
    };
    // Geometry.
    let radius = s * (0.2 + rng.random::<f32>() * 0.18);
    let margin = radius * 0.85;
    let cx = margin + rng.random::<f32>() * (s - 2.0 * margin).max(0.0);
    let cy = margin + rng.random::<f32>() * (s - 2.0 * margin).max(0.0);
    let jitter =
        |rng: &mut rand_chacha::ChaCha8Rng, max: f32| (rng.random::<f32>() * 2.0 - 1.0) * max;
    let angle = match label {
        1 => jitter(&mut rng, 0.35),
        5..=7 => jitter(&mut rng, 0.3),
        8 => jitter(&mut rng, 0.35),
        _ => rng.random::<f32>() * std::f32::consts::TAU,
    };
    let frequency = 6.0 + rng.random::<f32>() * 3.0;
    let (sin, cos) = angle.sin_cos();
    let noise = config.noise as f32;
    let plane = side * side;
    let mut out = vec![0u8; plane * 3];
    let mut random_bits = 0u64;
    let mut bits_left = 0;
    for y in 0..side {
        for x in 0..side {
            let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
            let t = 0.5 + 0.5 * (px * wave_x + py * wave_y + wave_phase).sin();
            let t = t * wave_amp;
            let (dx, dy) = (px - cx, py - cy);
            let u = (cos * dx + sin * dy) / radius;
            let v = (-sin * dx + cos * dy) / radius;
            let (distance, first) = shape_at(label, u, v, frequency);
            // Anti-aliasing: coverage falls from 1 to 0 across one pixel of the edge.
            let coverage = (0.5 - distance * radius).clamp(0.0, 1.0);
            let shape_color = if first { fg } else { fg2 };
            let i = y * side + x;
            for c in 0..3 {
                if bits_left == 0 {
                    random_bits = rng.random::<u64>();
                    bits_left = 4;
                }
                // Sum of two uniforms: a triangular, roughly Gaussian noise of the given sd.
                let a = (random_bits & 0xff) as f32 / 255.0;
                let b = ((random_bits >> 8) & 0xff) as f32 / 255.0;
                random_bits >>= 16;
                bits_left -= 1;
                let n = (a + b - 1.0) * noise * 2.449;
                let background = bg_a[c] * (1.0 - t) + bg_b[c] * t;
                let value = background * (1.0 - coverage) + shape_color[c] * coverage + n;
                out[c * plane + i] = (value.clamp(0.0, 1.0) * 255.0 + 0.5) as u8;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triangle_and_star_contain_their_centre_and_not_far_points() {
        for label in 0..10 {
            let (inside, _) = shape_at(label, 0.0, if label == 4 { 0.72 } else { 0.0 }, 3.0);
            let (outside, _) = shape_at(label, 1.6, 1.6, 3.0);
            assert!(inside < 0.0, "class {label}: centre distance {inside}");
            assert!(outside > 0.0, "class {label}: far distance {outside}");
        }
    }
}
