//! Reading the JSON that `repsim compare --json` (and the library) writes.

use std::path::Path;

use repsim_results::ResultsMeta;
use repsim_results::SimilarityMatrix;

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
    let json_error = |message: String| VizError::Json {
        path: path.to_path_buf(),
        message,
    };
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        let hint = if ["NaN", "Infinity"].iter().any(|t| text.contains(t)) {
            " (JSON has no NaN or Infinity: write null for an undefined cell)"
        } else {
            ""
        };
        json_error(format!("{e}{hint}"))
    })?;
    // Each matrix on its own, so a refusal names the matrix and the field.
    let matrix = |value: &serde_json::Value, at: String| -> Result<SimilarityMatrix, VizError> {
        let matrix: SimilarityMatrix =
            serde_json::from_value(value.clone()).map_err(|e| json_error(format!("{at}: {e}")))?;
        if matrix.values.len() != matrix.rows.len()
            || matrix.values.iter().any(|r| r.len() != matrix.cols.len())
        {
            return Err(json_error(format!(
                "{at}: `values` must be {} rows of {} values (one per entry of `rows` and `cols`)",
                matrix.rows.len(),
                matrix.cols.len()
            )));
        }
        Ok(matrix)
    };
    let many = |items: &[serde_json::Value], what: &str| {
        items
            .iter()
            .enumerate()
            .map(|(i, v)| matrix(v, format!("{what}[{i}]")))
            .collect::<Result<Vec<_>, _>>()
    };
    let results = match &value {
        serde_json::Value::Object(object) if object.contains_key("results") => {
            let items = object["results"].as_array().ok_or_else(|| {
                json_error("`results` must be an array of similarity matrices".into())
            })?;
            let meta: Option<ResultsMeta> = object
                .get("meta")
                .and_then(|m| serde_json::from_value(m.clone()).ok());
            Results {
                matrices: many(items, "results")?,
                model_a: meta.as_ref().and_then(|m| m.a.clone()),
                model_b: meta.and_then(|m| m.b),
            }
        }
        serde_json::Value::Array(items) => Results {
            matrices: many(items, "matrix")?,
            model_a: None,
            model_b: None,
        },
        serde_json::Value::Object(_) => Results {
            matrices: vec![matrix(&value, "the matrix".into())?],
            model_a: None,
            model_b: None,
        },
        _ => {
            return Err(json_error(
                "expected {\"results\": [...]} as `repsim compare --json` writes, an array of \
                 similarity matrices, or one matrix (with metric, rows, cols, values)"
                    .into(),
            ))
        }
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
    fn a_hand_made_matrix_needs_only_metric_rows_cols_values() {
        let text = r#"{"results": [{"metric": "linear_cka", "rows": ["a"], "cols": ["b", "c"],
            "values": [[0.5, null]]}]}"#;
        let results = parse_results(text, Path::new("hand.json")).unwrap();
        assert_eq!(results.matrices[0].n_examples, None);
        let missing =
            r#"{"results": [{"metric": "linear_cka", "cols": ["b"], "values": [[0.5]]}]}"#;
        let err = parse_results(missing, Path::new("hand.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("results[0]") && err.contains("rows"), "{err}");
        let nan = r#"{"metric": "linear_cka", "rows": ["a"], "cols": ["b"], "values": [[NaN]]}"#;
        let err = parse_results(nan, Path::new("hand.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("null"), "{err}");
        let text_value =
            r#"{"metric": "linear_cka", "rows": ["a"], "cols": ["b"], "values": [["x"]]}"#;
        let err = parse_results(text_value, Path::new("hand.json"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("the matrix") && err.contains("string"),
            "{err}"
        );
        let ragged =
            r#"{"metric": "linear_cka", "rows": ["a"], "cols": ["b", "c"], "values": [[1.0]]}"#;
        let err = parse_results(ragged, Path::new("hand.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("values"), "{err}");
        let unknown = r#"{"metric": "m", "rows": ["a"], "cols": ["b"], "values": [[1.0]]}"#;
        let err = parse_results(unknown, Path::new("hand.json"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("hand.json") && err.contains("unknown metric `m`"),
            "{err}"
        );
    }

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
