//! The crate's one error: a measure, a parameter or a record that cannot be what it says.

/// A measure or parameter that is unknown or out of range, or a record that contradicts itself.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid {name}: {message}")]
pub struct ParameterError {
    /// What was invalid (`metric`, `threshold`, `--rdm`, ...).
    pub name: &'static str,
    /// Why, naming the value given and the ones allowed.
    pub message: String,
}

impl ParameterError {
    /// An error about `name`.
    pub fn new(name: &'static str, message: impl Into<String>) -> Self {
        ParameterError {
            name,
            message: message.into(),
        }
    }
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, ParameterError>;
