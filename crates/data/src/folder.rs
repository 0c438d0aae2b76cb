//! Image folders: `root/<class>/*.{png,jpg,jpeg}`, classes in sorted order, every image
//! decoded with the `image` crate, its shorter side resized to the target size and the centre
//! cropped square. Images are decoded when the folder is opened, so an unreadable file is
//! reported at once, by name.

use std::path::{Path, PathBuf};

use burn::data::dataset::{Dataset, DatasetError};
use image::imageops::FilterType;

use crate::{DataError, ImageDataset, ImageItem};

/// A folder of class sub-folders, decoded into memory at `side` x `side`.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    items: Vec<ImageItem>,
    files: Vec<PathBuf>,
    class_names: Vec<String>,
    side: usize,
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
        .unwrap_or(false)
}

/// Decodes one image, resizes its shorter side to `side` and crops the centre square.
pub fn load_image(path: &Path, side: usize) -> Result<Vec<u8>, DataError> {
    let image = image::ImageReader::open(path)
        .map_err(|e| DataError::io(path, e))?
        .with_guessed_format()
        .map_err(|e| DataError::io(path, e))?
        .decode()
        .map_err(|e| DataError::Image {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    let (w, h) = (image.width() as f64, image.height() as f64);
    if w < 1.0 || h < 1.0 {
        return Err(DataError::Image {
            path: path.to_path_buf(),
            message: "the image is empty".into(),
        });
    }
    let scale = side as f64 / w.min(h);
    let (rw, rh) = (
        ((w * scale).round() as u32).max(side as u32),
        ((h * scale).round() as u32).max(side as u32),
    );
    let resized = image.resize_exact(rw, rh, FilterType::Triangle).to_rgb8();
    let (x0, y0) = ((rw - side as u32) / 2, (rh - side as u32) / 2);
    let cropped = image::imageops::crop_imm(&resized, x0, y0, side as u32, side as u32).to_image();
    Ok(cropped.into_raw())
}

impl ImageFolder {
    /// Opens `root`, whose sub-folders are the classes, at `side` x `side` pixels.
    pub fn open(root: &Path, side: usize) -> Result<Self, DataError> {
        if !(8..=1024).contains(&side) {
            return Err(DataError::BadOption(format!(
                "image side must be 8 to 1024 pixels, got {side}"
            )));
        }
        if !root.is_dir() {
            return Err(DataError::Missing {
                path: root.to_path_buf(),
                what: "image folder (no such directory)".into(),
            });
        }
        let read_dir = |p: &Path| -> Result<Vec<PathBuf>, DataError> {
            let mut entries = std::fs::read_dir(p)
                .map_err(|e| DataError::io(p, e))?
                .map(|e| e.map(|e| e.path()).map_err(|e| DataError::io(p, e)))
                .collect::<Result<Vec<_>, _>>()?;
            entries.sort();
            Ok(entries)
        };
        let class_dirs: Vec<PathBuf> = read_dir(root)?.into_iter().filter(|p| p.is_dir()).collect();
        if class_dirs.is_empty() {
            return Err(DataError::Format {
                path: root.to_path_buf(),
                message: "holds no class sub-folders (expected root/<class>/*.png|jpg)".into(),
            });
        }
        let mut class_names = Vec::new();
        let mut files = Vec::new();
        let mut labels = Vec::new();
        for (label, dir) in class_dirs.iter().enumerate() {
            class_names.push(
                dir.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            );
            for file in read_dir(dir)?
                .into_iter()
                .filter(|p| p.is_file() && is_image(p))
            {
                files.push(file);
                labels.push(label);
            }
        }
        if files.is_empty() {
            return Err(DataError::Format {
                path: root.to_path_buf(),
                message: "its class folders hold no .png or .jpg images".into(),
            });
        }
        // Decode on all cores; the first failure (in file order) is reported.
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(files.len());
        let chunk = files.len().div_ceil(threads);
        let decoded: Vec<Result<Vec<u8>, DataError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = files
                .chunks(chunk)
                .map(|part| {
                    scope
                        .spawn(move || part.iter().map(|f| load_image(f, side)).collect::<Vec<_>>())
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| {
                    h.join().unwrap_or_else(|_| {
                        vec![Err(DataError::BadOption(
                            "an image decoder thread failed".into(),
                        ))]
                    })
                })
                .collect()
        });
        let mut items = Vec::with_capacity(files.len());
        for (rgb, label) in decoded.into_iter().zip(labels) {
            items.push(ImageItem::from_rgb_interleaved(&rgb?, side, side, label));
        }
        Ok(Self {
            items,
            files,
            class_names,
            side,
        })
    }

    /// The image files, in item order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }
}

impl Dataset<ImageItem> for ImageFolder {
    fn get(&self, index: usize) -> Result<ImageItem, DatasetError> {
        self.items.get(index).cloned().ok_or_else(|| {
            DataError::Index {
                index,
                len: self.items.len(),
            }
            .into()
        })
    }
    fn len(&self) -> usize {
        self.items.len()
    }
}

impl ImageDataset for ImageFolder {
    fn class_names(&self) -> &[String] {
        &self.class_names
    }
    fn image_size(&self) -> (usize, usize) {
        (self.side, self.side)
    }
    fn label(&self, index: usize) -> Result<usize, DataError> {
        self.items
            .get(index)
            .map(|i| i.label)
            .ok_or(DataError::Index {
                index,
                len: self.items.len(),
            })
    }
}
