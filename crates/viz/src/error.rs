//! Errors of the drawing crate: every one names the file, matrix or value at fault.

use std::path::PathBuf;

/// What went wrong while reading results or drawing them.
#[derive(Debug, thiserror::Error)]
pub enum VizError {
    /// A file could not be read, or an output path cannot be used (no such directory).
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        message: String,
    },
    /// A figure could not be written (a full disk, a read-only directory).
    #[error("{path}: cannot write: {message}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        message: String,
    },
    /// A results file is not the JSON repsim writes.
    #[error("{path}: not a repsim results file: {message}")]
    Json {
        /// The file.
        path: PathBuf,
        /// What the JSON parser said, with line and column.
        message: String,
    },
    /// Nothing to draw: no matrices, or a matrix without rows or columns.
    #[error("{0}")]
    Empty(String),
    /// A value that cannot be drawn (NaN or infinite, or rows of unequal length).
    #[error("{0}")]
    BadValue(String),
    /// The output file's extension names no format repsim can write.
    #[error("{path}: unknown image format {extension:?}; use .png or .svg")]
    UnknownFormat {
        /// The output file.
        path: PathBuf,
        /// Its extension (empty when it has none).
        extension: String,
    },
    /// A drawing option out of range (size, DPI, value range, grid shape).
    #[error("{0}")]
    BadOption(String),
    /// The drawing backend failed (a font could not be laid out, a buffer was too small).
    #[error("drawing failed: {0}")]
    Draw(String),
}

impl From<repsim_durable::DurableError> for VizError {
    fn from(e: repsim_durable::DurableError) -> Self {
        VizError::Write {
            path: e.path,
            message: e.message,
        }
    }
}

impl VizError {
    /// Whether the user can fix it by changing the input (a file, a matrix, an option: exit
    /// code 2), rather than a failure while drawing or writing (exit code 1).
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, VizError::Write { .. } | VizError::Draw(_))
    }

    pub(crate) fn draw(e: impl std::fmt::Display) -> Self {
        VizError::Draw(e.to_string())
    }
}
