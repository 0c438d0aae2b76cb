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
    /// Weights could not be saved or loaded.
    #[error("{path}: {message}")]
    Weights {
        /// The weights file.
        path: std::path::PathBuf,
        /// What failed.
        message: String,
    },
}
