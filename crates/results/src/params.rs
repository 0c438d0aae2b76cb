//! The parameters the measures carry ([`crate::Measure`]): the HSIC estimator, SVCCA's
//! reduction, PWCCA's convention, the CCA family's measures, RSA's dissimilarity and
//! comparison, CKNNA's options. Each spells itself on the command line and in files as it
//! always has (`biased`, `google`, `{"keep": 0.99}`, ...).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{ParameterError, Result};

/// The fewest examples repsim computes any measure for: with 2 or 3 examples any two layers
/// look alike (two points always lie on a line).
pub const MIN_EXAMPLES: usize = 4;

/// Which HSIC estimator a CKA uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HsicEstimator {
    /// `HSIC_0`, biased (Gretton et al. 2005): plain CKA.
    Biased,
    /// `HSIC_1`, unbiased (Song et al. 2012): debiased CKA.
    Unbiased,
}

impl HsicEstimator {
    /// The fewest examples repsim computes the estimator for: 4 for both. The biased one is
    /// defined from 2, but with 2 or 3 examples every pair of layers looks alike (CKA 1.0 for
    /// any two layers of 2 examples), so it is refused rather than reported.
    pub fn min_examples(self) -> usize {
        MIN_EXAMPLES
    }

    /// The normalisation of `<centred K, centred L>`: `(n-1)^2` or `n (n-3)`.
    pub fn normalizer(self, n: usize) -> f64 {
        let n = n as f64;
        match self {
            HsicEstimator::Biased => (n - 1.0) * (n - 1.0),
            HsicEstimator::Unbiased => n * (n - 3.0),
        }
    }
}

impl FromStr for HsicEstimator {
    type Err = ParameterError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "biased" => Ok(HsicEstimator::Biased),
            "unbiased" => Ok(HsicEstimator::Unbiased),
            other => Err(ParameterError::new(
                "estimator",
                format!("unknown estimator `{other}`; choose biased or unbiased"),
            )),
        }
    }
}

impl fmt::Display for HsicEstimator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HsicEstimator::Biased => "biased",
            HsicEstimator::Unbiased => "unbiased",
        })
    }
}

/// Whose PWCCA weights to compute (see `repsim_similarity::cca`).
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
    type Err = ParameterError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "google" => Ok(PwccaConvention::Google),
            "textbook" => Ok(PwccaConvention::Textbook),
            other => Err(ParameterError::new(
                "PWCCA convention",
                format!("unknown convention `{other}`; choose google or textbook"),
            )),
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

    /// Refuses a fraction outside (0, 1] and 0 dimensions.
    pub fn validate(self) -> Result<()> {
        match self {
            SvdReduction::Keep(f) if !(f > 0.0 && f <= 1.0) => Err(ParameterError::new(
                "SVD keep fraction",
                format!("must be in (0, 1], got {f}"),
            )),
            SvdReduction::Dims(0) => {
                Err(ParameterError::new("SVD dimensions", "must be at least 1"))
            }
            _ => Ok(()),
        }
    }
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

    /// CCA and PWCCA invert each side's covariance, so they need more examples than features.
    pub fn needs_more_examples_than_features(self) -> bool {
        matches!(self, CcaMeasure::Cca | CcaMeasure::Pwcca(_))
    }
}

/// How an RDM measures the dissimilarity of two examples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RdmKind {
    /// `1 - Pearson r` of the two example vectors.
    #[default]
    Correlation,
    /// `||x_i - x_j||_2`, the plain distance.
    Euclidean,
    /// `||x_i - x_j||^2 / D`, the mean squared difference over the `D` features: what
    /// rsatoolbox calls "euclidean" (the same Spearman value as [`RdmKind::Euclidean`], another
    /// Pearson value).
    MeanSquaredDifference,
}

impl RdmKind {
    /// Every kind, in the order the CLI lists them.
    pub const ALL: [RdmKind; 3] = [
        RdmKind::Correlation,
        RdmKind::Euclidean,
        RdmKind::MeanSquaredDifference,
    ];
}

/// How two RDMs are compared (over their upper triangles, `m` entries each).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RdmComparison {
    /// Spearman's rank correlation (Pearson's of average ranks, ties sharing their mean rank).
    #[default]
    Spearman,
    /// Pearson's correlation of the dissimilarities.
    Pearson,
    /// The cosine of the two vectors of dissimilarities, uncentred (rsatoolbox's default).
    Cosine,
    /// Spearman's rho-a (Nili et al. 2014): `12 sum (r_a - mean)(r_b - mean) / (m^3 - m)` over
    /// average ranks; Spearman's value without ties, smaller with them.
    RhoA,
    /// Kendall's tau-a (Nili et al. 2014): (concordant - discordant pairs) / (m (m - 1) / 2),
    /// tied pairs counting as neither.
    TauA,
}

impl RdmComparison {
    /// Every comparison, in the order the CLI lists them.
    pub const ALL: [RdmComparison; 5] = [
        RdmComparison::Spearman,
        RdmComparison::Pearson,
        RdmComparison::Cosine,
        RdmComparison::RhoA,
        RdmComparison::TauA,
    ];
}

impl FromStr for RdmKind {
    type Err = ParameterError;
    fn from_str(s: &str) -> Result<Self> {
        RdmKind::ALL
            .into_iter()
            .find(|k| k.to_string() == s)
            .ok_or_else(|| {
                ParameterError::new(
                    "--rdm",
                    format!(
                        "unknown RDM {s:?}; use correlation, euclidean or mean_squared_difference (rsatoolbox's \"euclidean\")"
                    ),
                )
            })
    }
}

impl fmt::Display for RdmKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RdmKind::Correlation => "correlation",
            RdmKind::Euclidean => "euclidean",
            RdmKind::MeanSquaredDifference => "mean_squared_difference",
        })
    }
}

impl FromStr for RdmComparison {
    type Err = ParameterError;
    fn from_str(s: &str) -> Result<Self> {
        // rsatoolbox spells the two a-variants with a hyphen.
        let s = s.replace('-', "_");
        RdmComparison::ALL
            .into_iter()
            .find(|c| c.to_string() == s)
            .ok_or_else(|| {
                ParameterError::new(
                    "--rsa-compare",
                    format!(
                        "unknown comparison {s:?}; use spearman, pearson, cosine, rho_a or tau_a"
                    ),
                )
            })
    }
}

impl fmt::Display for RdmComparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RdmComparison::Spearman => "spearman",
            RdmComparison::Pearson => "pearson",
            RdmComparison::Cosine => "cosine",
            RdmComparison::RhoA => "rho_a",
            RdmComparison::TauA => "tau_a",
        })
    }
}

/// The parameters of CKNNA (Huh et al. 2024).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CknnaParams {
    /// Neighbours per example (the paper's 10).
    pub k: usize,
    /// The HSIC estimator (unbiased: the diagonal excluded from the neighbours).
    pub estimator: HsicEstimator,
    /// Divide rows by their L2 norm first: the authors' pipeline, and the default (as for
    /// mutual kNN); off, the features as given.
    pub normalize: bool,
    /// Added to the denominator, as the authors add 1e-6; 0 by default (the score is then
    /// scale-free: the unbiased HSIC of unit-norm rows is `O(k / n)`, so 1e-6 moves it by
    /// 1.4e-4 at n = 500 and 1.4e-3 at n = 5,000).
    pub eps: f64,
}

impl Default for CknnaParams {
    fn default() -> Self {
        CknnaParams {
            k: DEFAULT_K,
            estimator: HsicEstimator::Unbiased,
            normalize: true,
            eps: 0.0,
        }
    }
}

/// The default number of neighbours of the kNN measures (Huh et al. 2024's).
pub const DEFAULT_K: usize = 10;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for e in [HsicEstimator::Biased, HsicEstimator::Unbiased] {
            assert_eq!(e.to_string().parse::<HsicEstimator>().unwrap(), e);
        }
        for c in [PwccaConvention::Google, PwccaConvention::Textbook] {
            assert_eq!(c.to_string().parse::<PwccaConvention>().unwrap(), c);
        }
        for r in RdmKind::ALL {
            assert_eq!(r.to_string().parse::<RdmKind>().unwrap(), r);
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{r}\""));
        }
        for r in RdmComparison::ALL {
            assert_eq!(r.to_string().parse::<RdmComparison>().unwrap(), r);
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{r}\""));
        }
        assert_eq!(
            "rho-a".parse::<RdmComparison>().unwrap(),
            RdmComparison::RhoA
        );
        assert_eq!(
            "tau-a".parse::<RdmComparison>().unwrap(),
            RdmComparison::TauA
        );
        let err = "lapack".parse::<PwccaConvention>().unwrap_err().to_string();
        assert!(
            err.contains("`lapack`") && err.contains("textbook"),
            "{err}"
        );
    }

    #[test]
    fn reductions_are_validated_and_keep_the_numpy_count() {
        assert!(SvdReduction::Keep(0.0).validate().is_err());
        assert!(SvdReduction::Keep(1.5).validate().is_err());
        assert!(SvdReduction::Dims(0).validate().is_err());
        assert!(SvdReduction::Keep(0.99).validate().is_ok());
        // 50%, 30%, 20%: 0.8 is reached at the second direction.
        assert_eq!(SvdReduction::Keep(0.8).kept(&[5.0, 3.0, 2.0], 3), 2);
        assert_eq!(SvdReduction::Dims(7).kept(&[5.0, 3.0, 2.0], 3), 3);
    }
}
