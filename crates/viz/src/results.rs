//! Reading the JSON that `repsim compare --json` (and the library) writes.

use std::path::Path;

use repsim_similarity::SimilarityMatrix;
use serde::Deserialize;

use crate::VizError;

/// The matrices of a results file, and the names of the compared inputs when it records them.
#[derive(Debug, Clone)]
pub struct Results {
    /// Every matrix in the file, in file order.
    pub matrices: Vec<SimilarityMatrix>,
    /// What the rows were computed from (`meta.a`), when known.
    pub model_a: Option<String>,
    /// What the columns were computed from (`meta.b`), when known.
    pub model_b: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Document {
    Full {
        #[serde(default)]
        meta: Option<Meta>,
        results: Vec<SimilarityMatrix>,
    },
    Many(Vec<SimilarityMatrix>),
    One(Box<SimilarityMatrix>),
}

#[derive(Deserialize)]
struct Meta {
    a: Option<String>,
    b: Option<String>,
}

/// Reads a results file: `{"meta": ..., "results": [matrix, ...]}` as `repsim compare --json`
/// writes it, a bare array of matrices, or one matrix.
pub fn read_results(path: &Path) -> Result<Results, VizError> {
    let text = std::fs::read_to_string(path).map_err(|e| VizError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    parse_results(&text, path)
}

/// Parses the text of a results file; `path` is only used in messages.
pub fn parse_results(text: &str, path: &Path) -> Result<Results, VizError> {
    if text.trim().is_empty() {
        return Err(VizError::Json {
            path: path.to_path_buf(),
            message: "the file is empty".into(),
        });
    }
    // Parse as a plain value first, so syntax errors carry their line and column.
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| VizError::Json {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let document: Document = serde_json::from_value(value).map_err(|_| VizError::Json {
        path: path.to_path_buf(),
        message: "expected {\"results\": [...]} as `repsim compare --json` writes, an array of \
                  similarity matrices, or one matrix (with metric, rows, cols, values)"
            .into(),
    })?;
    let results = match document {
        Document::Full { meta, results } => Results {
            matrices: results,
            model_a: meta.as_ref().and_then(|m| m.a.clone()),
            model_b: meta.and_then(|m| m.b),
        },
        Document::Many(matrices) => Results {
            matrices,
            model_a: None,
            model_b: None,
        },
        Document::One(matrix) => Results {
            matrices: vec![*matrix],
            model_a: None,
            model_b: None,
        },
    };
    if results.matrices.is_empty() {
        return Err(VizError::Empty(format!(
            "{}: the file holds no similarity matrices",
            path.display()
        )));
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MATRIX: &str = r#"{"metric": "linear_cka", "parameters": {}, "n_examples": 10,
        "rows": ["a", "b"], "cols": ["c"], "values": [[0.5], [null]], "warnings": []}"#;

    #[test]
    fn reads_all_three_shapes() {
        let p = Path::new("r.json");
        let full = format!(r#"{{"meta": {{"a": "x.npz", "b": "y.npz"}}, "results": [{MATRIX}]}}"#);
        let r = parse_results(&full, p).unwrap();
        assert_eq!(r.matrices.len(), 1);
        assert_eq!(r.model_a.as_deref(), Some("x.npz"));
        assert_eq!(r.matrices[0].values[1][0], None);
        assert_eq!(
            parse_results(&format!("[{MATRIX}, {MATRIX}]"), p)
                .unwrap()
                .matrices
                .len(),
            2
        );
        assert_eq!(parse_results(MATRIX, p).unwrap().matrices.len(), 1);
    }

    #[test]
    fn bad_files_name_the_file_and_the_problem() {
        let p = Path::new("bad.json");
        let err = parse_results("", p).unwrap_err().to_string();
        assert!(err.contains("bad.json") && err.contains("empty"), "{err}");
        let err = parse_results("{\"results\": [", p).unwrap_err().to_string();
        assert!(err.contains("bad.json") && err.contains("line 1"), "{err}");
        let err = parse_results("{\"hello\": 1}", p).unwrap_err().to_string();
        assert!(err.contains("not a repsim results file"), "{err}");
        let err = parse_results("{\"results\": []}", p)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no similarity matrices"), "{err}");
    }
}
