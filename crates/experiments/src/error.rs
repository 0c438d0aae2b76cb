//! The one error of the `repsim` crate and its one rule from error to exit code, shared by the
//! command line and the experiments: **2** for bad input the user can fix (a flag, a file, a
//! layer, a value, an unavailable device), **1** for a failure while computing or writing (a
//! device that stopped answering, a full disk, a diverging training). Each workspace crate
//! classifies its own errors (`is_bad_input()`); this module only maps them.

use std::fmt;

/// A failed command or experiment: bad input (exit code 2) or a failure (exit code 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Bad input: the message says what and where.
    Input(String),
    /// Something failed while computing or writing.
    Failure(String),
}

impl Error {
    /// The process exit code: 2 for bad input, 1 for a failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Input(_) => 2,
            Error::Failure(_) => 1,
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        match self {
            Error::Input(m) | Error::Failure(m) => m,
        }
    }

    /// Input when `bad_input`, else a failure.
    pub fn classified(bad_input: bool, message: impl fmt::Display) -> Self {
        if bad_input {
            Error::Input(message.to_string())
        } else {
            Error::Failure(message.to_string())
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Error {}

impl From<repsim_similarity::SimilarityError> for Error {
    fn from(e: repsim_similarity::SimilarityError) -> Self {
        Error::classified(e.is_bad_input(), e)
    }
}

impl From<repsim_similarity::ParameterError> for Error {
    fn from(e: repsim_similarity::ParameterError) -> Self {
        Error::from(repsim_similarity::SimilarityError::from(e))
    }
}

impl From<repsim_model::ModelError> for Error {
    fn from(e: repsim_model::ModelError) -> Self {
        Error::classified(e.is_bad_input(), e)
    }
}

impl From<repsim_data::DataError> for Error {
    /// Every data error names a dataset, file or option the user gave.
    fn from(e: repsim_data::DataError) -> Self {
        Error::Input(e.to_string())
    }
}

impl From<repsim_train::TrainError> for Error {
    fn from(e: repsim_train::TrainError) -> Self {
        Error::classified(e.is_bad_input(), e)
    }
}

impl From<repsim_viz::VizError> for Error {
    fn from(e: repsim_viz::VizError) -> Self {
        Error::classified(e.is_bad_input(), e)
    }
}

impl From<repsim_durable::DurableError> for Error {
    /// A file that could not be written: a failure (a full disk, a read-only directory).
    fn from(e: repsim_durable::DurableError) -> Self {
        Error::Failure(e.to_string())
    }
}

impl From<repsim_train::device::DeviceError> for Error {
    /// A device that is not there: bad input (`--device`).
    fn from(e: repsim_train::device::DeviceError) -> Self {
        Error::Input(e.0)
    }
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn each_crate_error_maps_to_one_code() {
        let viz_read: Error = repsim_viz::VizError::Io {
            path: PathBuf::from("m.json"),
            message: "no such file".into(),
        }
        .into();
        let viz_write: Error = repsim_viz::VizError::Write {
            path: PathBuf::from("m.png"),
            message: "no space left".into(),
        }
        .into();
        assert_eq!((viz_read.exit_code(), viz_write.exit_code()), (2, 1));
        let weights: Error = repsim_model::ModelError::Weights {
            path: PathBuf::from("w.bpk"),
            message: "do not fit".into(),
        }
        .into();
        let train_weights: Error =
            repsim_train::TrainError::Model(repsim_model::ModelError::Weights {
                path: PathBuf::from("w.bpk"),
                message: "do not fit".into(),
            })
            .into();
        assert_eq!(weights.exit_code(), 2);
        assert_eq!(train_weights.exit_code(), 2);
        let disk: Error =
            repsim_durable::DurableError::new(std::path::Path::new("r.json"), "full").into();
        assert_eq!(disk.exit_code(), 1);
        let readback: Error = repsim_similarity::SimilarityError::Readback("lost".into()).into();
        assert_eq!(readback.exit_code(), 1);
    }
}
