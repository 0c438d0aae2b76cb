//! Errors of the data crate: each names the file (and the record offset where there is one).

use std::path::PathBuf;

/// What went wrong while opening or reading a dataset.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file or folder could not be read.
    #[error("{path}: {message}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the operating system said.
        message: String,
    },
    /// A file a dataset needs is not there.
    #[error("{path}: missing {what}")]
    Missing {
        /// Where it was looked for.
        path: PathBuf,
        /// What is missing (e.g. `data_batch_3.bin`).
        what: String,
    },
    /// A file does not have the layout of its format.
    #[error("{path}: {message}")]
    Format {
        /// The file (for an archive: `archive.tar.gz:member`).
        path: PathBuf,
        /// What is wrong, with the byte offset where there is one.
        message: String,
    },
    /// A label byte that names no class.
    #[error("{path}: record {record} (byte offset {offset}) has label {label}, but the dataset has {classes} classes")]
    LabelOutOfRange {
        /// The file.
        path: PathBuf,
        /// The record's index in the file.
        record: usize,
        /// The byte offset of the label.
        offset: usize,
        /// The label read.
        label: usize,
        /// The number of classes.
        classes: usize,
    },
    /// An image that cannot be decoded.
    #[error("{path}: cannot decode image: {message}")]
    Image {
        /// The image file.
        path: PathBuf,
        /// What the decoder said.
        message: String,
    },
    /// An option out of range, or an unknown dataset name.
    #[error("{0}")]
    BadOption(String),
    /// An index past the end of a dataset.
    #[error("index {index} is out of range for a dataset of {len} items")]
    Index {
        /// The index asked for.
        index: usize,
        /// The dataset's length.
        len: usize,
    },
}

impl DataError {
    pub(crate) fn io(path: impl Into<PathBuf>, e: impl std::fmt::Display) -> Self {
        DataError::Io {
            path: path.into(),
            message: e.to_string(),
        }
    }
}

impl From<DataError> for burn::data::dataset::DatasetError {
    fn from(e: DataError) -> Self {
        burn::data::dataset::DatasetError::new(e)
    }
}
