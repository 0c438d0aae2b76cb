//! Plain-text rendering of a `SimilarityMatrix` for the terminal.

use repsim_similarity::SimilarityMatrix;

/// Largest matrix printed cell by cell; bigger ones get a summary.
pub const MAX_TABLE_ROWS: usize = 24;
/// Largest number of columns printed cell by cell.
pub const MAX_TABLE_COLS: usize = 12;

const NAME_WIDTH: usize = 24;
const MIN_CELL_WIDTH: usize = 10;
const MAX_CELL_WIDTH: usize = 24;

/// The matrix as an aligned table, or a summary line when it is too big to read.
pub fn render(matrix: &SimilarityMatrix) -> String {
    let (rows, cols) = matrix.shape();
    let examples = matrix
        .n_examples
        .map_or(String::new(), |n| format!("{n} examples, "));
    let mut out = format!("{} ({examples}{rows} x {cols} layers)\n", matrix.measure);
    if rows > MAX_TABLE_ROWS || cols > MAX_TABLE_COLS {
        let defined: Vec<f64> = matrix.values.iter().flatten().flatten().copied().collect();
        let (min, max) = defined
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        let mean = defined.iter().sum::<f64>() / defined.len().max(1) as f64;
        out += &format!(
            "  too large to print: {} defined cells, min {min:.4}, mean {mean:.4}, max {max:.4}; write it with --json\n",
            defined.len()
        );
        if matrix.significance.p_value.is_some() {
            let (rows, cols) = matrix.shape();
            let significant = (0..rows * cols)
                .filter(|c| {
                    matrix.significant(c / cols, c % cols, SIGNIFICANCE_LEVEL) == Some(true)
                })
                .count();
            out += &format!(
                "  {significant} of {} defined cells have p < {SIGNIFICANCE_LEVEL} (permutation test)\n",
                defined.len()
            );
        }
        return out;
    }
    out += &cells(matrix, &matrix.values, |row, col, value| {
        let star = match matrix.significant(row, col, SIGNIFICANCE_LEVEL) {
            Some(true) => "*",
            Some(false) => " ",
            None if matrix.significance.p_value.is_some() => " ",
            None => "",
        };
        format!("{value:.4}{star}")
    });
    out += &significance_tables(matrix);
    out
}

/// The legend of the `*` marks and the tables of intervals and calibrated values, when the
/// matrix has them.
fn significance_tables(matrix: &SimilarityMatrix) -> String {
    let mut out = String::new();
    let s = &matrix.significance;
    if s.p_value.is_some() {
        out += &format!(
            "  * p < {SIGNIFICANCE_LEVEL} ({} permutations of {}; one-sided, {})\n",
            matrix
                .parameters
                .get("permutations")
                .map_or("?".into(), |v| v.to_string()),
            matrix
                .parameters
                .get("permuted")
                .and_then(|v| v.as_str())
                .unwrap_or("examples"),
            if matrix.measure.is_distance() {
                "smaller distance than the null"
            } else {
                "more similar than the null"
            }
        );
    }
    if let (Some(low), Some(high)) = (&s.ci_low, &s.ci_high) {
        let level = matrix
            .parameters
            .get("ci")
            .and_then(|v| v.as_f64())
            .map_or("?".into(), |c| format!("{}", c * 100.0));
        let resampled = matrix
            .parameters
            .get("resampled")
            .and_then(|v| v.as_str())
            .unwrap_or("?");
        out += &format!("{level}% bootstrap interval ({resampled})\n");
        let joined: Vec<Vec<Option<(f64, f64)>>> = low
            .iter()
            .zip(high)
            .map(|(l, h)| l.iter().zip(h).map(|(l, h)| l.zip(*h)).collect())
            .collect();
        out += &cells(matrix, &joined, |_, _, (l, h)| format!("{l:.3}..{h:.3}"));
    }
    if let Some(calibrated) = &s.calibrated {
        out += "value minus the permutation null's mean (calibrated)\n";
        out += &cells(matrix, calibrated, |_, _, v| format!("{v:+.4}"));
    }
    out
}

/// The p-value below which a cell gets a `*`.
pub const SIGNIFICANCE_LEVEL: f64 = 0.05;

/// One table of `values` under the matrix's layer names, each defined cell written by
/// `format` (given its row and column), the others "undefined".
fn cells<T: Copy>(
    matrix: &SimilarityMatrix,
    values: &[Vec<Option<T>>],
    format: impl Fn(usize, usize, T) -> String,
) -> String {
    let texts: Vec<Vec<String>> = values
        .iter()
        .enumerate()
        .map(|(i, row)| {
            row.iter()
                .enumerate()
                .map(|(j, v)| v.map_or_else(|| "undefined".to_string(), |v| format(i, j, v)))
                .collect()
        })
        .collect();
    let longest = matrix
        .cols
        .iter()
        .map(|c| c.chars().count())
        .chain(texts.iter().flatten().map(|t| t.chars().count()))
        .max()
        .unwrap_or(0);
    let cell = longest.clamp(MIN_CELL_WIDTH, MAX_CELL_WIDTH);
    let name_width = matrix
        .rows
        .iter()
        .map(|r| r.chars().count())
        .max()
        .unwrap_or(0)
        .min(NAME_WIDTH);
    let mut out = format!("{:<name_width$}", "");
    for col in &matrix.cols {
        out += &format!(" {:>cell$}", shorten(col, cell));
    }
    out.push('\n');
    for (name, row) in matrix.rows.iter().zip(&texts) {
        out += &format!("{:<name_width$}", shorten(name, name_width));
        for text in row {
            out += &format!(" {text:>cell$}");
        }
        out.push('\n');
    }
    out
}

/// Keeps the end of a long name (the most specific part of `stage3.block5.conv2`).
fn shorten(name: &str, width: usize) -> String {
    let chars: Vec<char> = name.chars().collect();
    if chars.len() <= width {
        name.to_string()
    } else {
        let tail: String = chars[chars.len() - (width - 1)..].iter().collect();
        format!("…{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_matrices_print_every_cell_and_undefined_ones_say_so() {
        let m = SimilarityMatrix::from_row_major(
            repsim_similarity::Measure::LINEAR_CKA,
            vec!["a".into(), "stage3.block5.conv2.long.name".into()],
            vec!["c".into()],
            vec![Some(0.5), None],
            100,
        );
        let text = render(&m);
        assert!(text.contains("0.5000"), "{text}");
        assert!(text.contains("undefined"), "{text}");
        assert!(text.contains("…"), "{text}");
    }

    #[test]
    fn large_matrices_get_a_summary() {
        let names: Vec<String> = (0..30).map(|i| format!("l{i}")).collect();
        let m = SimilarityMatrix::from_row_major(
            repsim_similarity::Measure::LINEAR_CKA,
            names.clone(),
            names,
            vec![Some(0.25); 900],
            10,
        );
        assert!(render(&m).contains("too large to print"));
    }

    #[test]
    fn significant_cells_are_starred_and_intervals_printed() {
        let mut m = SimilarityMatrix::from_row_major(
            repsim_similarity::Measure::LINEAR_CKA,
            vec!["a".into(), "b".into()],
            vec!["c".into()],
            vec![Some(0.9), Some(0.2)],
            100,
        )
        .with_parameter("permutations", 99)
        .with_parameter("ci", 0.95)
        .with_parameter("resampled", "half-samples");
        m.significance.p_value = Some(vec![vec![Some(0.01)], vec![Some(0.4)]]);
        m.significance.ci_low = Some(vec![vec![Some(0.85)], vec![Some(0.1)]]);
        m.significance.ci_high = Some(vec![vec![Some(0.95)], vec![Some(0.3)]]);
        let text = render(&m);
        assert!(text.contains("0.9000*"), "{text}");
        assert!(text.contains("0.2000 "), "{text}");
        assert!(!text.contains("0.2000*"), "{text}");
        assert!(text.contains("99 permutations"), "{text}");
        assert!(
            text.contains("95% bootstrap interval (half-samples)"),
            "{text}"
        );
        assert!(text.contains("0.850..0.950"), "{text}");
    }
}
