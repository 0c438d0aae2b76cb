//! The one error type of the similarity crate.
//!
//! Every error names what it is about: the file, the layer, the value. Nothing in this crate
//! passes a NaN on silently: a measure that cannot be computed is an `Err`, and a matrix cell
//! that is undefined (a layer with zero variance) is `None` with a warning.

use std::path::PathBuf;

/// Errors of the similarity measures and of activation-file input.
#[derive(Debug, thiserror::Error)]
pub enum SimilarityError {
    /// An activation tensor whose rank is below 2 (examples on dim 0, features after).
    #[error("layer `{layer}`: expected examples x features (rank >= 2), got shape {shape:?}")]
    BadRank { layer: String, shape: Vec<usize> },

    /// Two layers that should hold the same examples hold different numbers of them.
    #[error(
        "layer `{layer_a}` has {n_a} examples but layer `{layer_b}` has {n_b}: \
         both sides must hold the same examples in the same order"
    )]
    ExampleCountMismatch {
        layer_a: String,
        n_a: usize,
        layer_b: String,
        n_b: usize,
    },

    /// Too few examples for an estimator (the unbiased HSIC divides by n - 3).
    #[error("{estimator} needs at least {needed} examples, but layer `{layer}` has {n}")]
    TooFewExamples {
        estimator: &'static str,
        needed: usize,
        layer: String,
        n: usize,
    },

    /// A NaN or an infinity in the input activations.
    #[error(
        "layer `{layer}` contains {value} at example {example}, feature {feature} \
         (first bad value of the layer)"
    )]
    NonFinite {
        layer: String,
        value: String,
        example: usize,
        feature: usize,
    },

    /// The inputs were finite but the f32 computation overflowed.
    #[error(
        "layer `{layer}`: the similarity computation overflowed f32 although every input is \
         finite; rescale the activations (largest |value| is {max_abs:e})"
    )]
    Overflow { layer: String, max_abs: f32 },

    /// A layer whose activations do not vary across examples: every similarity with it is
    /// undefined (0 / 0).
    #[error("layer `{layer}` has zero variance across the examples: its similarity is undefined")]
    ZeroVariance { layer: String },

    /// A bad batch size for minibatch CKA.
    #[error("batch size {batch_size} is invalid for {n} examples: {reason}")]
    BadBatchSize {
        batch_size: usize,
        n: usize,
        reason: &'static str,
    },

    /// A parameter outside its domain (a threshold <= 0, an unknown metric name, ...).
    #[error("invalid {name}: {message}")]
    InvalidParameter { name: &'static str, message: String },

    /// Two accumulators that cannot be merged (different layers or batch sizes).
    #[error("cannot merge accumulators: {0}")]
    MergeMismatch(String),

    /// One cell of a matrix (one pair of layers) cannot be computed, though its inputs are
    /// fine: matrices leave the cell undefined with this as a warning.
    #[error("{0}")]
    CellUndefined(String),

    /// Reading a result back from the device failed.
    #[error("reading a result back from the device failed: {0}")]
    Readback(String),

    /// A problem with an activation file or directory.
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },

    /// A file could not be written (a full disk, a read-only directory).
    #[error("{}: {message}", path.display())]
    Write { path: PathBuf, message: String },
}

impl From<repsim_durable::DurableError> for SimilarityError {
    fn from(e: repsim_durable::DurableError) -> Self {
        SimilarityError::Write {
            path: e.path,
            message: e.message,
        }
    }
}

impl SimilarityError {
    /// Whether the error concerns one pair of layers only (a numerically singular
    /// decomposition), so a matrix can leave that cell undefined and go on, rather than bad
    /// input or a device failure, which stop the computation.
    pub fn is_cell_failure(&self) -> bool {
        matches!(
            self,
            SimilarityError::CellUndefined(_)
                | SimilarityError::InvalidParameter {
                    name: "decomposition",
                    ..
                }
        )
    }

    /// Whether the user can fix it by changing the input (a file, a layer, a parameter: exit
    /// code 2), rather than a failure of the device (exit code 1).
    pub fn is_bad_input(&self) -> bool {
        !matches!(
            self,
            SimilarityError::Readback(_) | SimilarityError::Write { .. }
        )
    }

    /// A file error for `path`.
    pub fn file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        SimilarityError::File {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Result alias of the similarity crate.
pub type Result<T> = std::result::Result<T, SimilarityError>;

impl From<repsim_results::ParameterError> for SimilarityError {
    fn from(e: repsim_results::ParameterError) -> Self {
        SimilarityError::InvalidParameter {
            name: e.name,
            message: e.message,
        }
    }
}
