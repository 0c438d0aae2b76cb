//! [`Measure`], a measure with its parameters (defined in `repsim-results`, which names it on
//! the command line and in files), and the entry points that compute a layer x layer matrix
//! for any of them on whole-data layers (used by the CLI, the Tracker, the experiments, the
//! benchmarks and users who pick measures at run time); batch by batch, the same measures go
//! through [`crate::stream::comparison::Comparison`].

pub use repsim_results::measure::{Measure, MEASURE_NAMES};

/// Checks a minibatch size against the number of examples (defined with minibatch CKA).
pub use crate::measures::cka::minibatch::check_batch_size;

/// The whole-data entry points, which feed the one comparison driver
/// ([`crate::stream::comparison::Comparison`]).
pub use crate::stream::comparison::{minibatch_cka_matrix, similarity_matrices, similarity_matrix};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_sizes_are_checked() {
        assert!(check_batch_size(256, 1000).is_ok());
        assert!(check_batch_size(2048, 1000)
            .unwrap_err()
            .to_string()
            .contains("larger"));
        assert!(check_batch_size(3, 1000).is_err());
    }
}
