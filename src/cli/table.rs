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
    let mut out = format!("{} ({examples}{rows} x {cols} layers)\n", matrix.metric);
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
        return out;
    }
    let longest = matrix
        .cols
        .iter()
        .map(|c| c.chars().count())
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
    out += &format!("{:<name_width$}", "");
    for col in &matrix.cols {
        out += &format!(" {:>cell$}", shorten(col, cell));
    }
    out.push('\n');
    for (name, row) in matrix.rows.iter().zip(&matrix.values) {
        out += &format!("{:<name_width$}", shorten(name, name_width));
        for value in row {
            match value {
                Some(v) => out += &format!(" {v:>cell$.4}"),
                None => out += &format!(" {:>cell$}", "undefined"),
            }
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
            "linear_cka",
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
        let m =
            SimilarityMatrix::from_row_major("x", names.clone(), names, vec![Some(0.25); 900], 10);
        assert!(render(&m).contains("too large to print"));
    }
}
