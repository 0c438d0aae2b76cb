//! Reusable analysis of similarity matrices and layer-wise results: block structure (Nguyen,
//! Raghu & Kornblith 2021) and rank correlation (bottom-up convergence, Raghu et al. 2017).
//! Pure functions of numbers, used by the experiments and available to any caller.

use repsim_similarity::SimilarityMatrix;

/// The longest run of consecutive layers whose pairwise values all exceed `threshold`, as
/// (first index, length); undefined cells break a run.
pub fn longest_block(matrix: &SimilarityMatrix, threshold: f64) -> (usize, usize) {
    let n = matrix.rows.len().min(matrix.cols.len());
    let above = |i: usize, j: usize| matrix.values[i][j].is_some_and(|v| v > threshold);
    let mut best = (0, n.min(1));
    for start in 0..n {
        let mut end = start + 1;
        while end < n && (start..end).all(|i| above(i, end) && above(end, i)) {
            end += 1;
        }
        if end - start > best.1 {
            best = (start, end - start);
        }
    }
    best
}

/// Mean of the block's off-diagonal values minus the mean between the block's layers and the
/// others (0 when the block spans every layer).
pub fn block_contrast(matrix: &SimilarityMatrix, (start, len): (usize, usize)) -> f64 {
    let n = matrix.rows.len();
    let inside_range = start..start + len;
    let (mut inside, mut outside) = (Vec::new(), Vec::new());
    for i in inside_range.clone() {
        for j in 0..n {
            match (i == j, inside_range.contains(&j), matrix.values[i][j]) {
                (true, _, _) | (_, _, None) => {}
                (false, true, Some(v)) => inside.push(v),
                (false, false, Some(v)) => outside.push(v),
            }
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    if inside.is_empty() || outside.is_empty() {
        return 0.0;
    }
    mean(&inside) - mean(&outside)
}

/// Spearman's rank correlation of two sequences (average ranks for ties).
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.len() < 3 {
        return None;
    }
    let ranks = |v: &[f64]| {
        let mut order: Vec<usize> = (0..v.len()).collect();
        order.sort_by(|a, b| v[*a].total_cmp(&v[*b]));
        let mut r = vec![0.0; v.len()];
        let mut i = 0;
        while i < order.len() {
            let mut j = i;
            while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
                j += 1;
            }
            for k in i..=j {
                r[order[k]] = (i + j) as f64 / 2.0;
            }
            i = j + 1;
        }
        r
    };
    let (rx, ry) = (ranks(x), ranks(y));
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (mx, my) = (mean(&rx), mean(&ry));
    let cov: f64 = rx.iter().zip(&ry).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = rx.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = ry.iter().map(|b| (b - my).powi(2)).sum();
    (vx > 0.0 && vy > 0.0).then(|| cov / (vx * vy).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_block_is_found() {
        let names: Vec<String> = (0..5).map(|i| format!("l{i}")).collect();
        let v = |i: usize, j: usize| {
            if i == j || (1..4).contains(&i) && (1..4).contains(&j) {
                0.95
            } else {
                0.5
            }
        };
        let values = (0..25).map(|k| Some(v(k / 5, k % 5))).collect();
        let m = SimilarityMatrix::from_row_major(
            repsim_similarity::Measure::LINEAR_CKA,
            names.clone(),
            names,
            values,
            10,
        );
        assert_eq!(longest_block(&m, 0.9), (1, 3));
        // Inside: 0.95 (6 off-diagonal cells); with the other two layers: 0.5.
        assert!((block_contrast(&m, (1, 3)) - 0.45).abs() < 1e-12);
        assert_eq!(block_contrast(&m, (0, 5)), 0.0);
    }

    #[test]
    fn spearman_of_monotone_and_reversed_sequences() {
        assert!(
            (spearman(&[1.0, 2.0, 3.0, 4.0], &[1.0, 5.0, 6.0, 9.0]).unwrap() - 1.0).abs() < 1e-12
        );
        assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]).unwrap() + 1.0).abs() < 1e-12);
        assert!(spearman(&[1.0, 2.0, 3.0], &[1.0, 1.0, 1.0]).is_none());
    }
}
