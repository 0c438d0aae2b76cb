//! `repsim data --data shapes|cifar10=PATH|cifar100=PATH|folder=PATH`: what a dataset holds
//! (items, classes, class balance), and a preview grid of sample images.

use std::path::PathBuf;

use burn::data::dataset::Dataset;
use repsim_data::{class_counts, DataSpec, ImageDataset, ShapesConfig, Split};
use repsim_viz::{check_output_path, save, ImageGrid, Tile};

use crate::error::Error as CliError;

/// Which dataset, shared by every command that reads one.
#[derive(Debug, Clone, clap::Args)]
pub struct DataArgs {
    /// The dataset: shapes (built in), cifar10=PATH, cifar100=PATH, cifar100-coarse=PATH or
    /// folder=PATH (PATH: the extracted folder or the .tar.gz).
    #[arg(long, default_value = "shapes")]
    pub data: DataSpec,
    /// Image side for shapes and image folders.
    #[arg(long, default_value_t = 32)]
    pub side: usize,
    /// Seed of the shapes dataset.
    #[arg(long, default_value_t = 0)]
    pub data_seed: u64,
}

impl DataArgs {
    /// Opens `split` of the named dataset.
    pub fn open(&self, split: Split) -> Result<repsim_data::AnyImageDataset, CliError> {
        let shapes = ShapesConfig::new()
            .with_side(self.side)
            .with_seed(self.data_seed);
        Ok(self.data.open(split, &shapes)?)
    }
}

/// Arguments of `repsim data`.
#[derive(Debug, clap::Args)]
pub struct DataCommandArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Which split: train or test.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Write a grid of sample images with their labels to this PNG or SVG.
    #[arg(long)]
    pub preview: Option<PathBuf>,
    /// Number of images in the preview (spread over the split).
    #[arg(long, default_value_t = 40)]
    pub count: usize,
}

/// Runs `repsim data`.
pub fn run(args: DataCommandArgs) -> Result<(), CliError> {
    let split: Split = args.split.parse()?;
    if let Some(preview) = &args.preview {
        check_output_path(preview)?;
    }
    let dataset = args.data.open(split)?;
    let names = dataset.class_names().to_vec();
    let (h, w) = dataset.image_size();
    println!("dataset: {} ({split} split)", args.data.data);
    println!("items: {}", dataset.len());
    println!("image size: {h} x {w} x 3");
    println!("classes: {}", names.len());
    let counts = class_counts(&dataset)?;
    let (min, max) = (
        counts.iter().copied().min().unwrap_or(0),
        counts.iter().copied().max().unwrap_or(0),
    );
    println!("class balance: {min} to {max} items per class");
    let width = names.iter().map(|n| n.len()).max().unwrap_or(0);
    for (name, count) in names.iter().zip(&counts) {
        println!("  {name:<width$}  {count}");
    }
    if let Some(path) = &args.preview {
        if dataset.is_empty() {
            return Err(CliError::Input(
                "the dataset is empty: nothing to preview".into(),
            ));
        }
        let count = args.count.clamp(1, 400).min(dataset.len());
        let indices = preview_indices(&dataset, count)?;
        let mut tiles = Vec::with_capacity(indices.len());
        for index in indices {
            let item = dataset
                .get(index)
                .map_err(|e| CliError::Input(format!("item {index}: {e}")))?;
            tiles.push(Tile {
                rgb: item.to_rgb_interleaved(),
                width: item.width,
                height: item.height,
                caption: names
                    .get(item.label)
                    .cloned()
                    .unwrap_or_else(|| item.label.to_string()),
            });
        }
        let count = tiles.len();
        let zoom = (96 / w.max(1)).clamp(1, 8);
        let grid = ImageGrid {
            tiles,
            cols: names.len().clamp(1, 10).min(count),
            title: format!(
                "{} ({split}): {count} of {} images",
                args.data.data,
                dataset.len()
            ),
            zoom,
        };
        save(&grid, path)?;
        status!("wrote {}", path.display());
    }
    Ok(())
}

/// Up to `count` item indices, the first items of each class in turn (class 0, 1, ..., then
/// the second of each), so a preview shows every class side by side.
fn preview_indices(dataset: &impl ImageDataset, count: usize) -> Result<Vec<usize>, CliError> {
    let classes = dataset.class_names().len().max(1);
    let per_class = count.div_ceil(classes);
    let mut buckets: Vec<Vec<usize>> = vec![Vec::new(); classes];
    let mut full = 0;
    for i in 0..dataset.len() {
        let label = dataset.label(i)?;
        if let Some(bucket) = buckets.get_mut(label) {
            if bucket.len() < per_class {
                bucket.push(i);
                if bucket.len() == per_class {
                    full += 1;
                    if full == classes {
                        break;
                    }
                }
            }
        }
    }
    let mut indices = Vec::with_capacity(count);
    for round in 0..per_class {
        for bucket in &buckets {
            if let Some(i) = bucket.get(round) {
                indices.push(*i);
            }
        }
    }
    indices.truncate(count);
    Ok(indices)
}
