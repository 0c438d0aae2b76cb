//! The results file `repsim compare --json` and `repsim merge --json` write and `repsim plot`
//! and the viz crate read: `{"meta": {...}, "results": [matrix, ...]}`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::matrix::SimilarityMatrix;

/// A results file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResultsFile {
    /// What was compared and how.
    pub meta: ResultsMeta,
    /// One matrix per measure, in the order asked.
    pub results: Vec<SimilarityMatrix>,
}

/// What a results file says about its comparison. Every field is optional when read (a file
/// made by hand, or by an earlier version); keys this version does not know are kept in
/// `other` and written back.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResultsMeta {
    /// The repsim version that wrote the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repsim_version: Option<String>,
    /// What the rows were computed from (a file, a run directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub a: Option<String>,
    /// What the columns were computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub b: Option<String>,
    /// The device the measures ran on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Examples each side holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_examples: Option<usize>,
    /// The measures' names, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<String>,
    /// Minibatch size (and the chunk size streamed comparisons read in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    /// The RBF threshold asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rbf_threshold: Option<f64>,
    /// How conv layers were shaped (`flatten`, `pool=K`, `spatial`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conv: Option<String>,
    /// Layer names of A.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers_a: Option<Vec<String>>,
    /// Their shapes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shapes_a: Option<Vec<Vec<usize>>>,
    /// Layer names of B.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers_b: Option<Vec<String>>,
    /// Their shapes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shapes_b: Option<Vec<Vec<usize>>>,
    /// The float precision of the activations (`f32`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<String>,
    /// Whether the comparison streamed the files one batch of rows at a time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streamed: Option<bool>,
    /// The quantile outliers were clipped at (`--clip-outliers`), when they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_outliers: Option<f64>,
    /// How many shard states were merged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<usize>,
    /// The inputs' identity (size, content fingerprint, row hashes), for streamed and merged
    /// comparisons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<serde_json::Value>,
    /// Keys this version does not know.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_of_the_previous_version_reads_and_writes_back_the_same() {
        let text = r#"{"meta":{"a":"a.npz","b":"b.npz","batch_size":256,"conv":"flatten","device":"flex (CPU)","layers_a":["l1"],"layers_b":["l1"],"metrics":["linear_cka"],"n_examples":10,"precision":"f32","rbf_threshold":1.0,"repsim_version":"0.1.0","shapes_a":[[10,3]],"shapes_b":[[10,3]],"zzz_new":1},"results":[{"metric":"linear_cka","parameters":{"estimator":"biased"},"n_examples":10,"rows":["l1"],"cols":["l1"],"values":[[1.0]]}]}"#;
        let file: ResultsFile = serde_json::from_str(text).unwrap();
        assert_eq!(file.meta.a.as_deref(), Some("a.npz"));
        assert_eq!(file.meta.other["zzz_new"], 1);
        assert_eq!(file.results[0].measure, crate::Measure::LINEAR_CKA);
        let back: serde_json::Value = serde_json::to_value(&file).unwrap();
        assert_eq!(
            back,
            serde_json::from_str::<serde_json::Value>(text).unwrap()
        );
    }
}
