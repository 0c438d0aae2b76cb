//! The parameters of the CCA family's measures ([`super`]): which measure, SVCCA's reduction,
//! PWCCA's convention (defined in `repsim-results`, re-exported here), and what a CCA
//! computation returns. This file imports no sibling of the CCA folder, so the measures and the
//! example-space path can both use it.

pub use repsim_results::{CcaMeasure, PwccaConvention, SvdReduction};

/// Canonical correlations of two layers and their mean.
#[derive(Clone, Debug, PartialEq)]
pub struct CcaResult {
    /// The canonical correlations, descending, in [0, 1].
    pub rhos: Vec<f64>,
    /// Their mean.
    pub mean: f64,
    /// Dimensions of each side the correlations were computed in (the SVD-kept ones for SVCCA,
    /// the ranks for CCA).
    pub dims: (usize, usize),
}

/// Largest number of features the CCA family decomposes: its `D x D` decompositions run on the
/// host in f64 (`O(D^3)`; with burn's SVD, which repsim used before faer's, 0.23 s at 512 and
/// about 15 s at 2048), so wider layers are refused with a clear error instead of running for
/// hours.
pub const MAX_CCA_FEATURES: usize = 2048;
