//! `SimilarityMatrix`: a layer x layer table of one measure, serialised as JSON.
//!
//! The CLI writes it, the viz crate draws it, tests read it back. Undefined cells (a layer with
//! zero variance) are `None`, `null` in JSON; never NaN.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Rows are the layers of model A, columns the layers of model B.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimilarityMatrix {
    /// The measure, by its CLI name (`linear_cka`, `minibatch_cka`, ...).
    pub metric: String,
    /// The measure's parameters (threshold, batch size, estimator, ...).
    #[serde(default)]
    pub parameters: BTreeMap<String, serde_json::Value>,
    /// Number of examples the measure saw; `None` when unknown (a hand-made matrix), and then
    /// left out of the JSON and of the drawings, never shown as 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_examples: Option<usize>,
    /// Layer names of model A (one per row).
    pub rows: Vec<String>,
    /// Layer names of model B (one per column).
    pub cols: Vec<String>,
    /// `values[i][j]` compares `rows[i]` with `cols[j]`; `None` where undefined.
    pub values: Vec<Vec<Option<f64>>>,
    /// Human-readable notes: which layers made cells undefined, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Permutation p-values and bootstrap intervals per cell, when they were asked for
    /// (`crate::significance`); flattened into the matrix's JSON.
    #[serde(flatten)]
    pub significance: Significance,
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
        metric: impl Into<String>,
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
            metric: metric.into(),
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
            "linear_cka",
            vec!["a".into(), "b".into()],
            vec!["c".into()],
            vec![Some(0.5), None],
            10,
        )
        .with_parameter("estimator", "biased");
        let json = serde_json::to_string(&m).unwrap();
        assert!(json.contains("[0.5],[null]"), "{json}");
        let back: SimilarityMatrix = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.get("a", "c"), Some(0.5));
        assert_eq!(back.get("b", "c"), None);
    }
}
