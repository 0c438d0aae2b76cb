//! Errors of training and tracking. [`TrainError::is_bad_input`] separates what the user can fix
//! (a flag, a file, a directory: exit code 2) from failures while computing (exit code 1).

use std::path::PathBuf;

/// What can go wrong while training or tracking.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A configuration value is out of range or inconsistent.
    #[error("bad configuration: {0}")]
    BadConfig(String),
    /// The output directory cannot be used as asked.
    #[error("run directory {path}: {message}")]
    RunDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// `--resume` with a configuration that differs from the run's.
    #[error("cannot resume {path}: its config.json differs at `{field}` (run: {run}, now: {now}); resume with the run's settings or start a new run")]
    ConfigMismatch {
        /// The run directory.
        path: PathBuf,
        /// The first differing field, as a dotted path.
        field: String,
        /// The run's value.
        run: String,
        /// The value asked for now.
        now: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The loss became NaN or infinite.
    #[error("the training loss became {value} at epoch {epoch}, step {step} (of the epoch); stopped, the last complete checkpoint is kept (lower the learning rate or add warm-up)")]
    NonFiniteLoss {
        /// 1-based epoch.
        epoch: usize,
        /// 1-based step within the epoch.
        step: usize,
        /// The loss read back.
        value: f64,
    },
    /// The weights or the test loss became NaN or infinite during an epoch (seen after its
    /// last step, before anything of it is saved).
    #[error("the training diverged in epoch {epoch}: {what}; stopped before saving it, the last complete checkpoint is kept (lower the learning rate or add warm-up)")]
    Diverged {
        /// 1-based epoch.
        epoch: usize,
        /// What is non-finite.
        what: String,
    },
    /// A model error (bad architecture, weights that do not fit).
    #[error(transparent)]
    Model(#[from] repsim_model::ModelError),
    /// A data error (missing dataset, bad option).
    #[error(transparent)]
    Data(#[from] repsim_data::DataError),
    /// A similarity error (in the Tracker).
    #[error(transparent)]
    Similarity(#[from] repsim_similarity::SimilarityError),
    /// Something failed while computing (a device read-back, a thread).
    #[error("{0}")]
    Failed(String),
}

impl From<repsim_durable::DurableError> for TrainError {
    fn from(e: repsim_durable::DurableError) -> Self {
        TrainError::File {
            path: e.path,
            message: e.message,
        }
    }
}

impl TrainError {
    /// A file error.
    pub fn file(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Self {
        TrainError::File {
            path: path.into(),
            message: message.to_string(),
        }
    }

    /// Whether the user can fix it by changing the input (exit code 2), rather than a failure
    /// while computing (exit code 1).
    pub fn is_bad_input(&self) -> bool {
        match self {
            TrainError::BadConfig(_)
            | TrainError::RunDir { .. }
            | TrainError::ConfigMismatch { .. }
            | TrainError::Data(_) => true,
            TrainError::Model(e) => e.is_bad_input(),
            TrainError::Similarity(_)
            | TrainError::File { .. }
            | TrainError::NonFiniteLoss { .. }
            | TrainError::Diverged { .. }
            | TrainError::Failed(_) => false,
        }
    }
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, TrainError>;
