//! The parameters of the CCA family's measures ([`super`]): which measure, SVCCA's reduction,
//! PWCCA's convention, and what a CCA computation returns. This file imports no sibling of the
//! CCA folder, so the measures and the example-space path can both use it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Result, SimilarityError};

/// Whose PWCCA weights to compute (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PwccaConvention {
    /// As the SVCCA authors' reference code computes it.
    #[default]
    Google,
    /// Projections of the canonical variates on the centred features.
    Textbook,
}

impl FromStr for PwccaConvention {
    type Err = SimilarityError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "google" => Ok(PwccaConvention::Google),
            "textbook" => Ok(PwccaConvention::Textbook),
            other => Err(SimilarityError::InvalidParameter {
                name: "PWCCA convention",
                message: format!("unknown convention `{other}`; choose google or textbook"),
            }),
        }
    }
}

impl fmt::Display for PwccaConvention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PwccaConvention::Google => "google",
            PwccaConvention::Textbook => "textbook",
        })
    }
}

/// How SVCCA reduces each side before CCA.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SvdReduction {
    /// The fewest top singular directions explaining this fraction of the variance.
    Keep(f64),
    /// This many top singular directions (or all, if the layer has fewer).
    Dims(usize),
}

impl Default for SvdReduction {
    fn default() -> Self {
        SvdReduction::Keep(0.99)
    }
}

impl SvdReduction {
    /// The number of directions kept from descending eigenvalues (of `Xc^T Xc`), at most
    /// `rank`. `Keep(t)` keeps `k` with `k - 1` the first index where the cumulative variance
    /// fraction reaches `t` (numpy's `searchsorted(cumsum / total, t) + 1`).
    pub fn kept(self, eigenvalues: &[f64], rank: usize) -> usize {
        let k = match self {
            SvdReduction::Dims(k) => k,
            SvdReduction::Keep(fraction) => {
                let total: f64 = eigenvalues.iter().sum();
                let mut cumulative = 0.0;
                let mut k = eigenvalues.len();
                for (i, v) in eigenvalues.iter().enumerate() {
                    cumulative += v;
                    if cumulative / total >= fraction {
                        k = i + 1;
                        break;
                    }
                }
                k
            }
        };
        k.clamp(1, rank.max(1))
    }

    pub(crate) fn check(self) -> Result<()> {
        match self {
            SvdReduction::Keep(f) if !(f > 0.0 && f <= 1.0) => {
                Err(SimilarityError::InvalidParameter {
                    name: "SVD keep fraction",
                    message: format!("must be in (0, 1], got {f}"),
                })
            }
            SvdReduction::Dims(0) => Err(SimilarityError::InvalidParameter {
                name: "SVD dimensions",
                message: "must be at least 1".into(),
            }),
            _ => Ok(()),
        }
    }
}

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

/// A measure of the CCA family with its parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CcaMeasure {
    /// Mean canonical correlation.
    Cca,
    /// Mean canonical correlation after SVD reduction.
    Svcca(SvdReduction),
    /// Projection-weighted mean canonical correlation.
    Pwcca(PwccaConvention),
    /// Orthogonal Procrustes distance.
    Procrustes,
}

impl CcaMeasure {
    /// The CLI name of the measure.
    pub fn name(self) -> &'static str {
        match self {
            CcaMeasure::Cca => "cca",
            CcaMeasure::Svcca(_) => "svcca",
            CcaMeasure::Pwcca(_) => "pwcca",
            CcaMeasure::Procrustes => "procrustes",
        }
    }

    pub(crate) fn needs_more_examples_than_features(self) -> bool {
        matches!(self, CcaMeasure::Cca | CcaMeasure::Pwcca(_))
    }
}

/// Largest number of features the CCA family decomposes: its `D x D` decompositions run on the
/// host in f64 (`O(D^3)`; with burn's SVD, which repsim used before faer's, 0.23 s at 512 and
/// about 15 s at 2048), so wider layers are refused with a clear error instead of running for
/// hours.
pub const MAX_CCA_FEATURES: usize = 2048;
