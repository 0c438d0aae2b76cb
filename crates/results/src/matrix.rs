//! `SimilarityMatrix`: a layer x layer table of one measure, serialised as JSON.
//!
//! The CLI writes it, the viz crate draws it, tests read it back. Undefined cells (a layer with
//! zero variance) are `None`, `null` in JSON; never NaN.
//!
//! In JSON the measure is written as every version of repsim has written it: its name as
//! `metric`, its parameters among `parameters` beside those of the computation (`precision`,
//! `batches`, `permutations`, ...). Reading takes the measure's own keys back out into the
//! typed [`Measure`] and refuses an unknown name or a parameter it cannot take.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::measure::Measure;

/// Rows are the layers of model A, columns the layers of model B.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "MatrixRecord", into = "MatrixRecord")]
pub struct SimilarityMatrix {
    /// The measure and its parameters.
    pub measure: Measure,
    /// How the matrix was computed beyond the measure's parameters (`precision`, `batches`,
    /// `permutations`, `seed`, ...).
    pub parameters: BTreeMap<String, serde_json::Value>,
    /// Number of examples the measure saw; `None` when unknown (a hand-made matrix), and then
    /// left out of the JSON and of the drawings, never shown as 0.
    pub n_examples: Option<usize>,
    /// Layer names of model A (one per row).
    pub rows: Vec<String>,
    /// Layer names of model B (one per column).
    pub cols: Vec<String>,
    /// `values[i][j]` compares `rows[i]` with `cols[j]`; `None` where undefined.
    pub values: Vec<Vec<Option<f64>>>,
    /// Human-readable notes: which layers made cells undefined, and why.
    pub warnings: Vec<String>,
    /// Permutation p-values and bootstrap intervals per cell, when they were asked for
    /// (`repsim_similarity::significance`); flattened into the matrix's JSON.
    pub significance: Significance,
}

/// A [`SimilarityMatrix`] as JSON: the measure by name, its parameters merged into
/// `parameters`.
#[derive(Clone, Serialize, Deserialize)]
struct MatrixRecord {
    metric: String,
    #[serde(default)]
    parameters: BTreeMap<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    n_examples: Option<usize>,
    rows: Vec<String>,
    cols: Vec<String>,
    values: Vec<Vec<Option<f64>>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
    #[serde(flatten)]
    significance: Significance,
}

impl From<SimilarityMatrix> for MatrixRecord {
    fn from(m: SimilarityMatrix) -> Self {
        let mut parameters = m.parameters;
        for (key, value) in m.measure.record() {
            parameters.insert(key.to_string(), value);
        }
        MatrixRecord {
            metric: m.measure.name().to_string(),
            parameters,
            n_examples: m.n_examples,
            rows: m.rows,
            cols: m.cols,
            values: m.values,
            warnings: m.warnings,
            significance: m.significance,
        }
    }
}

impl TryFrom<MatrixRecord> for SimilarityMatrix {
    type Error = crate::ParameterError;

    fn try_from(r: MatrixRecord) -> Result<Self, Self::Error> {
        let measure = Measure::from_record(&r.metric, &r.parameters)?;
        let mut parameters = r.parameters;
        for key in measure.parameter_keys() {
            parameters.remove(key);
        }
        Ok(SimilarityMatrix {
            measure,
            parameters,
            n_examples: r.n_examples,
            rows: r.rows,
            cols: r.cols,
            values: r.values,
            warnings: r.warnings,
            significance: r.significance,
        })
    }
}

/// Per-cell uncertainty of a [`SimilarityMatrix`], each a matrix shaped like `values` (`None`
/// where a cell is undefined); every field is left out of the JSON unless computed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Significance {
    /// One-sided permutation p-value, `(1 + #{null at least as similar as observed}) / (1 + P)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_value: Option<Vec<Vec<Option<f64>>>>,
    /// Mean of the permutation null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null_mean: Option<Vec<Vec<Option<f64>>>>,
    /// 95th percentile of the permutation null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null_p95: Option<Vec<Vec<Option<f64>>>>,
    /// The value minus the null mean (`--calibrated`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibrated: Option<Vec<Vec<Option<f64>>>>,
    /// Lower end of the bootstrap interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_low: Option<Vec<Vec<Option<f64>>>>,
    /// Upper end of the bootstrap interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_high: Option<Vec<Vec<Option<f64>>>>,
}

impl SimilarityMatrix {
    /// A matrix from row-major values (`rows.len() * cols.len()` of them).
    pub fn from_row_major(
        measure: Measure,
        rows: Vec<String>,
        cols: Vec<String>,
        values: Vec<Option<f64>>,
        n_examples: usize,
    ) -> Self {
        assert_eq!(
            values.len(),
            rows.len() * cols.len(),
            "values must be rows x cols"
        );
        let values = values
            .chunks(cols.len().max(1))
            .take(rows.len())
            .map(|row| row.to_vec())
            .collect();
        SimilarityMatrix {
            measure,
            parameters: BTreeMap::new(),
            n_examples: Some(n_examples),
            rows,
            cols,
            values,
            warnings: Vec::new(),
            significance: Significance::default(),
        }
    }

    /// Adds a parameter (builder style).
    pub fn with_parameter(mut self, name: &str, value: impl Serialize) -> Self {
        self.set_parameter(name, value);
        self
    }

    /// Sets a parameter in place.
    pub fn set_parameter(&mut self, name: &str, value: impl Serialize) {
        let value = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
        self.parameters.insert(name.to_string(), value);
    }

    /// The value comparing row layer `row` with column layer `col`, by name.
    pub fn get(&self, row: &str, col: &str) -> Option<f64> {
        let i = self.rows.iter().position(|r| r == row)?;
        let j = self.cols.iter().position(|c| c == col)?;
        self.values[i][j]
    }

    /// Whether cell (`row`, `col`) is significant at `level` by its permutation p-value;
    /// `None` without p-values or for an undefined cell.
    pub fn significant(&self, row: usize, col: usize, level: f64) -> Option<bool> {
        let p = self
            .significance
            .p_value
            .as_ref()?
            .get(row)?
            .get(col)
            .copied()??;
        Some(p < level)
    }

    /// Number of (rows, columns).
    pub fn shape(&self) -> (usize, usize) {
        (self.rows.len(), self.cols.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undefined_cells_round_trip_as_json_null() {
        let m = SimilarityMatrix::from_row_major(
            Measure::LINEAR_CKA,
            vec!["a".into(), "b".into()],
            vec!["c".into()],
            vec![Some(0.5), None],
            10,
        )
        .with_parameter("precision", "f32");
        let json = serde_json::to_string(&m).unwrap();
        assert!(json.contains("[0.5],[null]"), "{json}");
        assert!(
            json.starts_with(
                r#"{"metric":"linear_cka","parameters":{"estimator":"biased","precision":"f32"},"n_examples":10"#
            ),
            "{json}"
        );
        let back: SimilarityMatrix = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.get("a", "c"), Some(0.5));
        assert_eq!(back.get("b", "c"), None);
    }

    /// Matrices as the previous versions of repsim wrote them (copied from their files) read
    /// with their measures typed.
    #[test]
    fn files_of_earlier_versions_read() {
        use crate::params::{CcaMeasure, PwccaConvention, RdmComparison, RdmKind, SvdReduction};
        let svcca = r#"{"metric":"svcca","parameters":{"kept_dims_cols":[3],"kept_dims_rows":[2],"precision":"f64","reduction":{"keep":0.99}},"n_examples":500,"rows":["a"],"cols":["b"],"values":[[0.25]]}"#;
        let m: SimilarityMatrix = serde_json::from_str(svcca).unwrap();
        assert_eq!(
            m.measure,
            Measure::Cca(CcaMeasure::Svcca(SvdReduction::Keep(0.99)))
        );
        assert!(m.parameters.contains_key("kept_dims_rows"));
        assert!(!m.parameters.contains_key("reduction"));
        assert_eq!(serde_json::to_string(&m).unwrap(), svcca);
        let pwcca = r#"{"metric":"pwcca","parameters":{"convention":"textbook","precision":"f64"},"rows":["a"],"cols":["b"],"values":[[0.5]]}"#;
        let m: SimilarityMatrix = serde_json::from_str(pwcca).unwrap();
        assert_eq!(
            m.measure,
            Measure::Cca(CcaMeasure::Pwcca(PwccaConvention::Textbook))
        );
        let rsa = r#"{"metric":"rsa","parameters":{"compare":"pearson","rdm":"euclidean"},"rows":["a"],"cols":["b"],"values":[[0.5]]}"#;
        let m: SimilarityMatrix = serde_json::from_str(rsa).unwrap();
        assert_eq!(
            m.measure,
            Measure::Rsa {
                rdm: RdmKind::Euclidean,
                compare: RdmComparison::Pearson
            }
        );
        // Minibatch CKA recorded a descriptive `estimator` beside its batch size: kept.
        let minibatch = r#"{"metric":"minibatch_cka","parameters":{"batch_size":64,"batches":15,"estimator":"unbiased"},"rows":["a"],"cols":["b"],"values":[[0.5]]}"#;
        let m: SimilarityMatrix = serde_json::from_str(minibatch).unwrap();
        assert_eq!(m.measure, Measure::minibatch_cka(64));
        assert_eq!(m.parameters["estimator"], "unbiased");
        assert_eq!(serde_json::to_string(&m).unwrap(), minibatch);
        // A hand-made matrix: the name alone.
        let hand = r#"{"metric":"rbf_cka_debiased","rows":["a"],"cols":["b"],"values":[[0.5]]}"#;
        let m: SimilarityMatrix = serde_json::from_str(hand).unwrap();
        assert_eq!(m.measure.name(), "rbf_cka_debiased");
        let unknown = r#"{"metric":"cka","rows":["a"],"cols":["b"],"values":[[0.5]]}"#;
        let err = serde_json::from_str::<SimilarityMatrix>(unknown)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown metric `cka`"), "{err}");
    }
}
