//! Sums over a slice in eight `f32` lanes, the shape the compiler turns into SIMD adds: a
//! single running sum is one dependent add per element, eight lanes are one vector add per
//! eight. The lanes are combined in a fixed order, so a sum is the same on every run.

const LANES: usize = 8;

/// `Σ f(a_i)` over `a`, in eight lanes.
fn lane_sum_by(a: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = a.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (lane, &v) in acc.iter_mut().zip(chunk) {
            *lane += f(v);
        }
    }
    let mut total = acc.iter().sum::<f32>();
    for &v in tail {
        total += f(v);
    }
    total
}

/// `Σ a_i`.
pub fn sum(a: &[f32]) -> f32 {
    lane_sum_by(a, |v| v)
}

/// `Σ (a_i - centre)`.
pub fn centred_sum(a: &[f32], centre: f32) -> f32 {
    lane_sum_by(a, |v| v - centre)
}

/// `Σ (a_i - centre)^2`.
pub fn centred_squares(a: &[f32], centre: f32) -> f32 {
    lane_sum_by(a, |v| (v - centre) * (v - centre))
}

/// `Σ a_i (b_i - centre)` (`a` and `b` of one length): centred before the product, so a large
/// common offset of `b` does not cancel away the sum's digits.
pub fn centred_dot(a: &[f32], b: &[f32], centre: f32) -> f32 {
    let mut acc = [0f32; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (a_tail, b_tail) = (a_chunks.remainder(), b_chunks.remainder());
    for (x, y) in a_chunks.zip(b_chunks) {
        for ((lane, &p), &q) in acc.iter_mut().zip(x).zip(y) {
            *lane += p * (q - centre);
        }
    }
    let mut total = acc.iter().sum::<f32>();
    for (&p, &q) in a_tail.iter().zip(b_tail) {
        total += p * (q - centre);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_sums_match_plain_sums() {
        for len in [0usize, 1, 7, 8, 9, 100, 1027] {
            let a: Vec<f32> = (0..len).map(|i| ((i * 37) % 11) as f32 - 5.0).collect();
            let b: Vec<f32> = (0..len).map(|i| ((i * 13) % 7) as f32 * 0.5).collect();
            let plain: f32 = a.iter().sum();
            assert_eq!(sum(&a), plain, "len {len}");
            let mean = if len > 0 { plain / len as f32 } else { 0.0 };
            let squares: f64 = a.iter().map(|&v| ((v - mean) as f64).powi(2)).sum();
            assert!((centred_squares(&a, mean) as f64 - squares).abs() <= 1e-4 * squares.max(1.0));
            let products: f32 = a.iter().zip(&b).map(|(p, q)| p * (q - 1.0)).sum();
            assert_eq!(centred_dot(&a, &b, 1.0), products, "len {len}");
        }
    }
}
