//! Errors of the model crate.

/// What went wrong building, running, saving or loading a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A configuration no model can be built from (the message names the field and value).
    #[error("{0}")]
    BadConfig(String),
    /// An input of the wrong shape.
    #[error("{0}")]
    BadInput(String),
    /// `Probe::Names` asked for layers the model does not have.
    #[error("no layer named {0}")]
    UnknownLayer(String),
    /// Weights could not be loaded (no such file, another architecture), or their directory
    /// does not exist.
    #[error("{path}: {message}")]
    Weights {
        /// The weights file.
        path: std::path::PathBuf,
        /// What failed.
        message: String,
    },
    /// Weights could not be written (a full disk, a read-only directory).
    #[error("{path}: cannot write the weights: {message}")]
    Write {
        /// The weights file.
        path: std::path::PathBuf,
        /// What failed.
        message: String,
    },
}

impl From<repsim_durable::DurableError> for ModelError {
    fn from(e: repsim_durable::DurableError) -> Self {
        ModelError::Write {
            path: e.path,
            message: e.message,
        }
    }
}

impl ModelError {
    /// Whether the user can fix it by changing the input (a flag, a file: exit code 2), rather
    /// than a failure while computing or writing (exit code 1).
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, ModelError::Write { .. })
    }
}
