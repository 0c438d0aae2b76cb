//! Naming a dataset on the command line: `shapes`, `cifar10=PATH`, `cifar100=PATH`,
//! `cifar100-coarse=PATH` or `folder=PATH`, opened as one [`AnyImageDataset`].

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use burn::data::dataset::{Dataset, DatasetError};

use crate::{
    Cifar100Labels, CifarDataset, DataError, ImageDataset, ImageFolder, ImageItem, ShapesConfig,
    ShapesDataset, Split,
};

/// A dataset named on the command line.
#[derive(Debug, Clone, PartialEq)]
pub enum DataSpec {
    /// The built-in synthetic shapes.
    Shapes,
    /// CIFAR-10 from a folder or .tar.gz.
    Cifar10(PathBuf),
    /// CIFAR-100 (fine or coarse labels) from a folder or .tar.gz.
    Cifar100(PathBuf, Cifar100Labels),
    /// An image folder `root/<class>/*.png|jpg`.
    Folder(PathBuf),
}

impl FromStr for DataSpec {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, path) = match s.split_once('=') {
            Some((k, p)) => (k, Some(PathBuf::from(p))),
            None => (s, None),
        };
        let need_path = |path: Option<PathBuf>| {
            path.filter(|p| !p.as_os_str().is_empty())
                .ok_or_else(|| DataError::BadOption(format!("{kind} needs a path: {kind}=PATH")))
        };
        match kind {
            "shapes" if path.is_none() => Ok(DataSpec::Shapes),
            "shapes" => Err(DataError::BadOption("shapes is built in and takes no path".into())),
            "cifar10" => Ok(DataSpec::Cifar10(need_path(path)?)),
            "cifar100" => Ok(DataSpec::Cifar100(need_path(path)?, Cifar100Labels::Fine)),
            "cifar100-coarse" => Ok(DataSpec::Cifar100(need_path(path)?, Cifar100Labels::Coarse)),
            "folder" => Ok(DataSpec::Folder(need_path(path)?)),
            other => Err(DataError::BadOption(format!(
                "unknown dataset {other:?}; use shapes, cifar10=PATH, cifar100=PATH, cifar100-coarse=PATH or folder=PATH"
            ))),
        }
    }
}

impl fmt::Display for DataSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataSpec::Shapes => write!(f, "shapes"),
            DataSpec::Cifar10(p) => write!(f, "cifar10={}", p.display()),
            DataSpec::Cifar100(p, Cifar100Labels::Fine) => write!(f, "cifar100={}", p.display()),
            DataSpec::Cifar100(p, Cifar100Labels::Coarse) => {
                write!(f, "cifar100-coarse={}", p.display())
            }
            DataSpec::Folder(p) => write!(f, "folder={}", p.display()),
        }
    }
}

impl DataSpec {
    /// Opens `split`. `shapes` uses `shapes` (its side, seed and sizes); image folders are
    /// decoded at `shapes.side` pixels too, so every dataset of one run has one image size.
    pub fn open(&self, split: Split, shapes: &ShapesConfig) -> Result<AnyImageDataset, DataError> {
        Ok(match self {
            DataSpec::Shapes => AnyImageDataset::Shapes(shapes.init(split)?),
            DataSpec::Cifar10(p) => AnyImageDataset::Cifar(CifarDataset::cifar10(p, split)?),
            DataSpec::Cifar100(p, which) => {
                AnyImageDataset::Cifar(CifarDataset::cifar100(p, split, *which)?)
            }
            DataSpec::Folder(p) => AnyImageDataset::Folder(ImageFolder::open(p, shapes.side)?),
        })
    }
}

/// One of repsim's image datasets.
#[derive(Debug, Clone)]
pub enum AnyImageDataset {
    /// Built-in shapes.
    Shapes(ShapesDataset),
    /// CIFAR-10 or CIFAR-100.
    Cifar(CifarDataset),
    /// An image folder.
    Folder(ImageFolder),
}

impl AnyImageDataset {
    fn inner(&self) -> &dyn ImageDataset {
        match self {
            AnyImageDataset::Shapes(d) => d,
            AnyImageDataset::Cifar(d) => d,
            AnyImageDataset::Folder(d) => d,
        }
    }
}

impl Dataset<ImageItem> for AnyImageDataset {
    fn get(&self, index: usize) -> Result<ImageItem, DatasetError> {
        self.inner().get(index)
    }
    fn len(&self) -> usize {
        self.inner().len()
    }
}

impl ImageDataset for AnyImageDataset {
    fn class_names(&self) -> &[String] {
        self.inner().class_names()
    }
    fn image_size(&self) -> (usize, usize) {
        self.inner().image_size()
    }
    fn label(&self, index: usize) -> Result<usize, DataError> {
        self.inner().label(index)
    }
}

/// How many items of each class `dataset` holds, indexed by label.
pub fn class_counts(dataset: &impl ImageDataset) -> Result<Vec<usize>, DataError> {
    let mut counts = vec![0usize; dataset.class_names().len()];
    for i in 0..dataset.len() {
        let label = dataset.label(i)?;
        if let Some(c) = counts.get_mut(label) {
            *c += 1;
        }
    }
    Ok(counts)
}
