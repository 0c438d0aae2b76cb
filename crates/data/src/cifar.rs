//! CIFAR-10 and CIFAR-100, binary version, as distributed by their authors
//! (Krizhevsky 2009, <https://www.cs.toronto.edu/~kriz/cifar.html>).
//!
//! CIFAR-10: `cifar-10-batches-bin/data_batch_{1..5}.bin` and `test_batch.bin`, records of
//! 1 label byte + 3072 pixel bytes. CIFAR-100: `cifar-100-binary/train.bin` and `test.bin`,
//! records of a coarse label byte, a fine label byte and 3072 pixel bytes. Pixels are the red
//! plane, then green, then blue, each 32 x 32 row-major. Read from the extracted folder or
//! straight from the `.tar.gz`; each file is read whole, never record by record.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use burn::data::dataset::{Dataset, DatasetError};

use crate::{DataError, ImageDataset, ImageItem, Split};

/// Side of a CIFAR image.
pub const CIFAR_SIDE: usize = 32;
const IMAGE_BYTES: usize = 3 * CIFAR_SIDE * CIFAR_SIDE;

/// The published CIFAR-10 class names, used when `batches.meta.txt` is absent.
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Which labels of CIFAR-100 to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cifar100Labels {
    /// The 100 fine classes.
    #[default]
    Fine,
    /// The 20 superclasses.
    Coarse,
}

/// A split of CIFAR-10 or CIFAR-100 held in memory (10,000 test images take 30 MB).
#[derive(Debug, Clone)]
pub struct CifarDataset {
    pixels: Vec<u8>,
    labels: Vec<u8>,
    class_names: Vec<String>,
    source: PathBuf,
}

/// Where the files come from: a folder, or the members of an archive read into memory.
enum Source {
    Folder(PathBuf),
    Archive {
        path: PathBuf,
        members: HashMap<String, Vec<u8>>,
    },
}

impl Source {
    /// Opens `path`: a `.tar.gz`/`.tgz` archive, or a folder holding the files (directly or in
    /// the archive's own sub-folder `subfolder`). `wanted` are the file names to pull out of
    /// an archive.
    fn open(path: &Path, subfolder: &str, wanted: &[&str]) -> Result<Self, DataError> {
        if !path.exists() {
            return Err(DataError::Missing {
                path: path.to_path_buf(),
                what: "dataset (no such file or folder)".into(),
            });
        }
        if path.is_dir() {
            let nested = path.join(subfolder);
            let folder = if nested.is_dir() {
                nested
            } else {
                path.to_path_buf()
            };
            return Ok(Source::Folder(folder));
        }
        let name = path.to_string_lossy().to_ascii_lowercase();
        if !(name.ends_with(".tar.gz") || name.ends_with(".tgz")) {
            return Err(DataError::BadOption(format!(
                "{}: expected the dataset's folder or its .tar.gz archive",
                path.display()
            )));
        }
        let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
        let corrupt = |e: std::io::Error| DataError::Format {
            path: path.to_path_buf(),
            message: format!("not a readable .tar.gz archive (truncated or corrupt?): {e}"),
        };
        let mut archive =
            tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)));
        let mut members = HashMap::new();
        for entry in archive.entries().map_err(corrupt)? {
            let mut entry = entry.map_err(corrupt)?;
            let entry_path = entry.path().map_err(corrupt)?.into_owned();
            let Some(file_name) = entry_path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if wanted.contains(&file_name) {
                let mut bytes = Vec::with_capacity(entry.size() as usize);
                entry.read_to_end(&mut bytes).map_err(corrupt)?;
                members.insert(file_name.to_string(), bytes);
            }
        }
        Ok(Source::Archive {
            path: path.to_path_buf(),
            members,
        })
    }

    /// The bytes of file `name` and a path naming it in messages; `None` when absent.
    fn read(&self, name: &str) -> Result<Option<(Vec<u8>, PathBuf)>, DataError> {
        match self {
            Source::Folder(folder) => {
                let path = folder.join(name);
                if !path.is_file() {
                    return Ok(None);
                }
                let bytes = std::fs::read(&path).map_err(|e| DataError::io(&path, e))?;
                Ok(Some((bytes, path)))
            }
            Source::Archive { path, members } => Ok(members.get(name).map(|b| {
                (
                    b.clone(),
                    PathBuf::from(format!("{}:{name}", path.display())),
                )
            })),
        }
    }

    fn location(&self) -> &Path {
        match self {
            Source::Folder(p) => p,
            Source::Archive { path, .. } => path,
        }
    }

    fn required(&self, name: &str) -> Result<(Vec<u8>, PathBuf), DataError> {
        self.read(name)?.ok_or_else(|| DataError::Missing {
            path: self.location().to_path_buf(),
            what: name.to_string(),
        })
    }
}

/// Parses the records of one binary file into `pixels` and `labels`. `label_bytes` is 1
/// (CIFAR-10) or 2 (CIFAR-100); `label_index` picks which byte is the label.
fn parse_records(
    bytes: &[u8],
    path: &Path,
    label_bytes: usize,
    label_index: usize,
    classes: usize,
    pixels: &mut Vec<u8>,
    labels: &mut Vec<u8>,
) -> Result<(), DataError> {
    let record = label_bytes + IMAGE_BYTES;
    if bytes.is_empty() || !bytes.len().is_multiple_of(record) {
        return Err(DataError::Format {
            path: path.to_path_buf(),
            message: format!(
                "{} bytes is not a whole number of {record}-byte records ({} whole records and {} bytes over)",
                bytes.len(),
                bytes.len() / record,
                bytes.len() % record
            ),
        });
    }
    let count = bytes.len() / record;
    pixels.reserve(count * IMAGE_BYTES);
    labels.reserve(count);
    for (i, chunk) in bytes.chunks_exact(record).enumerate() {
        let label = chunk[label_index] as usize;
        if label >= classes {
            return Err(DataError::LabelOutOfRange {
                path: path.to_path_buf(),
                record: i,
                offset: i * record + label_index,
                label,
                classes,
            });
        }
        labels.push(label as u8);
        pixels.extend_from_slice(&chunk[label_bytes..]);
    }
    Ok(())
}

/// Reads a class-name file (one name per line); `None` when the source lacks it.
fn class_names(
    source: &Source,
    name: &str,
    expected: usize,
) -> Result<Option<Vec<String>>, DataError> {
    let Some((bytes, path)) = source.read(name)? else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&bytes);
    let names: Vec<String> = text
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    if names.len() != expected {
        return Err(DataError::Format {
            path,
            message: format!("expected {expected} class names, found {}", names.len()),
        });
    }
    Ok(Some(names))
}

impl CifarDataset {
    /// CIFAR-10's `split` from `path`: the `cifar-10-batches-bin` folder, its parent, or
    /// `cifar-10-binary.tar.gz`.
    pub fn cifar10(path: &Path, split: Split) -> Result<Self, DataError> {
        let files: Vec<String> = match split {
            Split::Train => (1..=5).map(|i| format!("data_batch_{i}.bin")).collect(),
            Split::Test => vec!["test_batch.bin".into()],
        };
        let mut wanted: Vec<&str> = files.iter().map(String::as_str).collect();
        wanted.push("batches.meta.txt");
        let source = Source::open(path, "cifar-10-batches-bin", &wanted)?;
        let (mut pixels, mut labels) = (Vec::new(), Vec::new());
        for file in &files {
            let (bytes, file_path) = source.required(file)?;
            parse_records(&bytes, &file_path, 1, 0, 10, &mut pixels, &mut labels)?;
        }
        let class_names = class_names(&source, "batches.meta.txt", 10)?
            .unwrap_or_else(|| CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect());
        Ok(Self {
            pixels,
            labels,
            class_names,
            source: path.to_path_buf(),
        })
    }

    /// CIFAR-100's `split` from `path`: the `cifar-100-binary` folder, its parent, or
    /// `cifar-100-binary.tar.gz`, with fine (100) or coarse (20) labels.
    pub fn cifar100(path: &Path, split: Split, which: Cifar100Labels) -> Result<Self, DataError> {
        let file = match split {
            Split::Train => "train.bin",
            Split::Test => "test.bin",
        };
        let (names_file, classes, label_index) = match which {
            Cifar100Labels::Fine => ("fine_label_names.txt", 100, 1),
            Cifar100Labels::Coarse => ("coarse_label_names.txt", 20, 0),
        };
        let source = Source::open(path, "cifar-100-binary", &[file, names_file])?;
        let (bytes, file_path) = source.required(file)?;
        let (mut pixels, mut labels) = (Vec::new(), Vec::new());
        // Both label bytes are checked: a bad coarse label is as wrong as a bad fine one.
        let other_index = 1 - label_index;
        let other_classes = if label_index == 1 { 20 } else { 100 };
        parse_records(
            &bytes,
            &file_path,
            2,
            other_index,
            other_classes,
            &mut Vec::new(),
            &mut Vec::new(),
        )?;
        parse_records(
            &bytes,
            &file_path,
            2,
            label_index,
            classes,
            &mut pixels,
            &mut labels,
        )?;
        let class_names = class_names(&source, names_file, classes)?
            .unwrap_or_else(|| (0..classes).map(|i| format!("class_{i:02}")).collect());
        Ok(Self {
            pixels,
            labels,
            class_names,
            source: path.to_path_buf(),
        })
    }

    /// Where the dataset was read from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// All labels, in item order.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }
}

impl Dataset<ImageItem> for CifarDataset {
    fn get(&self, index: usize) -> Result<ImageItem, DatasetError> {
        if index >= self.labels.len() {
            return Err(DataError::Index {
                index,
                len: self.labels.len(),
            }
            .into());
        }
        Ok(ImageItem {
            pixels: self.pixels[index * IMAGE_BYTES..(index + 1) * IMAGE_BYTES].to_vec(),
            height: CIFAR_SIDE,
            width: CIFAR_SIDE,
            label: self.labels[index] as usize,
        })
    }

    fn len(&self) -> usize {
        self.labels.len()
    }
}

impl ImageDataset for CifarDataset {
    fn class_names(&self) -> &[String] {
        &self.class_names
    }
    fn image_size(&self) -> (usize, usize) {
        (CIFAR_SIDE, CIFAR_SIDE)
    }
    fn label(&self, index: usize) -> Result<usize, DataError> {
        self.labels
            .get(index)
            .map(|l| *l as usize)
            .ok_or(DataError::Index {
                index,
                len: self.labels.len(),
            })
    }
}
