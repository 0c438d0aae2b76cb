//! The items datasets hold: an RGB image with its label, planar (channel, row, column) bytes.

/// An RGB image in planar layout (all red bytes, then green, then blue; each plane row-major),
/// as CIFAR stores it, with its class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageItem {
    /// `3 * height * width` bytes, planar.
    pub pixels: Vec<u8>,
    /// Image height in pixels.
    pub height: usize,
    /// Image width in pixels.
    pub width: usize,
    /// The class index.
    pub label: usize,
}

impl ImageItem {
    /// Number of channels (always 3).
    pub const CHANNELS: usize = 3;

    /// The byte of channel `c` at (`y`, `x`).
    pub fn at(&self, c: usize, y: usize, x: usize) -> u8 {
        self.pixels[(c * self.height + y) * self.width + x]
    }

    /// The image as interleaved RGB bytes (row-major, 3 bytes per pixel), for image writers.
    pub fn to_rgb_interleaved(&self) -> Vec<u8> {
        let plane = self.height * self.width;
        let mut out = vec![0u8; plane * 3];
        for i in 0..plane {
            for c in 0..3 {
                out[i * 3 + c] = self.pixels[c * plane + i];
            }
        }
        out
    }

    /// An item from interleaved RGB bytes.
    pub fn from_rgb_interleaved(rgb: &[u8], height: usize, width: usize, label: usize) -> Self {
        let plane = height * width;
        let mut pixels = vec![0u8; plane * 3];
        for i in 0..plane {
            for c in 0..3 {
                pixels[c * plane + i] = rgb[i * 3 + c];
            }
        }
        Self {
            pixels,
            height,
            width,
            label,
        }
    }
}

/// Which part of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// The training split.
    Train,
    /// The test split.
    Test,
}

impl Split {
    /// A number mixed into seeds, so the splits of a generated dataset never share items.
    pub(crate) fn seed_tag(self) -> u64 {
        match self {
            Split::Train => 0x7472_6169_6e00_0001,
            Split::Test => 0x7465_7374_0000_0002,
        }
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Split::Train => "train",
            Split::Test => "test",
        })
    }
}

impl std::str::FromStr for Split {
    type Err = crate::DataError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "train" => Ok(Split::Train),
            "test" => Ok(Split::Test),
            other => Err(crate::DataError::BadOption(format!(
                "unknown split {other:?}; use train or test"
            ))),
        }
    }
}

/// A dataset of labelled images that knows its class names.
pub trait ImageDataset: burn::data::dataset::Dataset<ImageItem> {
    /// The class names, indexed by label.
    fn class_names(&self) -> &[String];
    /// The images' (height, width).
    fn image_size(&self) -> (usize, usize);
    /// The label of item `index`, without decoding or generating its image.
    fn label(&self, index: usize) -> Result<usize, crate::DataError>;
}
