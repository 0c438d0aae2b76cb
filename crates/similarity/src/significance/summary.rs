//! Summaries of null and bootstrap draws: quantiles and the permutation p-value.

/// The `q`-quantile of sorted values, linearly interpolated (numpy's default).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let position = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (below, above) = (position.floor() as usize, position.ceil() as usize);
    let fraction = position - below as f64;
    sorted[below] + fraction * (sorted[above] - sorted[below])
}

/// The one-sided permutation p-value of `observed` against `null` (see [`super`]): the count
/// is of draws at least as similar as `observed` (for a `distance`, at most as far).
pub fn p_value(observed: f64, null: &[f64], distance: bool) -> f64 {
    let extreme = null
        .iter()
        .filter(|&&v| {
            if distance {
                v <= observed
            } else {
                v >= observed
            }
        })
        .count();
    (1 + extreme) as f64 / (1 + null.len()) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&v, 1.0), 4.0);
        assert!((quantile(&v, 0.5) - 2.5).abs() < 1e-12);
        assert!((quantile(&v, 0.95) - 3.85).abs() < 1e-12);
    }

    #[test]
    fn p_values_count_the_observed_draw_and_face_the_right_way() {
        let null = [0.1, 0.2, 0.3, 0.9];
        assert_eq!(p_value(0.5, &null, false), 2.0 / 5.0);
        assert_eq!(p_value(0.95, &null, false), 1.0 / 5.0);
        assert_eq!(p_value(0.15, &null, true), 2.0 / 5.0);
        assert_eq!(p_value(0.0, &[], false), 1.0);
    }
}
