//! The resampling statistics behind the experiments' findings: the spread of a number over
//! seeds, percentile bootstrap intervals (Efron & Tibshirani 1993, ch. 13) of a mean and of
//! Spearman's rank correlation, and the two-group permutation test on pairwise distances
//! (the test of Morcos et al. 2018's claim that memorising networks differ more from each other
//! than generalising ones).
//!
//! Every draw comes from a seeded ChaCha8 stream, so a rerun gives the same intervals and
//! p-values. Quantiles interpolate linearly between order statistics (numpy's default), as in
//! `compare --bootstrap`.

use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use repsim_similarity::significance::quantile;
use serde::{Deserialize, Serialize};

use crate::analysis::spearman;

/// A two-sided percentile interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Lower end.
    pub low: f64,
    /// Upper end.
    pub high: f64,
}

impl Interval {
    /// Whether the interval lies wholly above or wholly below `value`.
    pub fn excludes(&self, value: f64) -> bool {
        self.low > value || self.high < value
    }
}

/// The percentile interval at `confidence` of `draws` (unsorted); `None` without draws.
pub fn percentile_interval(mut draws: Vec<f64>, confidence: f64) -> Option<Interval> {
    draws.retain(|v| v.is_finite());
    if draws.is_empty() {
        return None;
    }
    draws.sort_by(f64::total_cmp);
    let tail = (1.0 - confidence) / 2.0;
    Some(Interval {
        low: quantile(&draws, tail),
        high: quantile(&draws, 1.0 - tail),
    })
}

/// The mean and the sample standard deviation (`n - 1` in the denominator; `None` for fewer
/// than two values) of `values`. `None` for no values.
pub fn mean_sd(values: &[f64]) -> Option<(f64, Option<f64>)> {
    if values.is_empty() {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let sd = (values.len() >= 2)
        .then(|| (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
    Some((mean, sd))
}

/// The percentile bootstrap interval of the mean of `values`: `resamples` resamples of the
/// values with replacement. `None` for fewer than two values.
pub fn bootstrap_mean(
    values: &[f64],
    resamples: usize,
    confidence: f64,
    seed: u64,
) -> Option<Interval> {
    let n = values.len();
    if n < 2 {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let draws = (0..resamples)
        .map(|_| (0..n).map(|_| values[rng.random_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    percentile_interval(draws, confidence)
}

/// The percentile bootstrap interval of Spearman's rank correlation of `(x, y)`: `resamples`
/// resamples of the pairs with replacement (ties within a resample take average ranks). A
/// resample whose ranks are all tied has no correlation and is left out; `None` when fewer
/// than half the resamples are defined, or for fewer than three pairs.
pub fn bootstrap_spearman(
    x: &[f64],
    y: &[f64],
    resamples: usize,
    confidence: f64,
    seed: u64,
) -> Option<Interval> {
    let n = x.len();
    if n < 3 || y.len() != n {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut xs, mut ys) = (vec![0.0; n], vec![0.0; n]);
    let mut draws = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        for k in 0..n {
            let i = rng.random_range(0..n);
            xs[k] = x[i];
            ys[k] = y[i];
        }
        if let Some(r) = spearman(&xs, &ys) {
            draws.push(r);
        }
    }
    if 2 * draws.len() < resamples {
        return None;
    }
    percentile_interval(draws, confidence)
}

/// The result of a two-group permutation test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PermutationTest {
    /// The observed statistic: mean distance within the second group minus mean distance
    /// within the first.
    pub statistic: f64,
    /// The one-sided p-value: the share of group assignments (the observed one included)
    /// whose statistic is at least the observed one.
    pub p_value: f64,
    /// How many assignments were evaluated.
    pub assignments: usize,
    /// Whether every assignment was enumerated (else a seeded random sample of them).
    pub exact: bool,
}

/// Assignments beyond which [`two_group_permutation`] samples instead of enumerating.
const MAX_ENUMERATED: usize = 20_000;

/// The two-group permutation test of "the members of the second group are further apart from
/// each other than those of the first": networks `0..first` form the first group and
/// `first..n` the second; `distance(i, j)` (for `i < j`) is the distance of a pair, `None`
/// where undefined (left out of the means).
///
/// The statistic is `mean_{i<j in second} d(i, j) - mean_{i<j in first} d(i, j)`; under the
/// null hypothesis that the networks are exchangeable between the groups, every assignment of
/// `n - first` networks to the second group is equally likely, so the p-value is the share of
/// assignments whose statistic is at least the observed one. With groups of 3 there are 20
/// assignments and the smallest p-value is 1/20 = 0.05; groups of 5 give 252 (1/252 = 0.004).
/// Assignments are enumerated up to 20,000 and sampled (seeded) beyond.
///
/// The test is valid for any difference between the groups but built to detect a larger
/// spread in the second: a shift of the groups apart with equal spread gives mixed assignments
/// larger distances on both sides and no small p-value. `None` when a group has no defined
/// pair.
pub fn two_group_permutation(
    n: usize,
    first: usize,
    distance: impl Fn(usize, usize) -> Option<f64>,
    seed: u64,
) -> Option<PermutationTest> {
    if first < 2 || n < first + 2 {
        return None;
    }
    let mut d = vec![None; n * n];
    for i in 0..n {
        for j in i + 1..n {
            let v = distance(i, j).filter(|v| v.is_finite());
            d[i * n + j] = v;
            d[j * n + i] = v;
        }
    }
    let statistic = |second: &[bool]| -> Option<f64> {
        let (mut sums, mut counts) = ([0.0; 2], [0usize; 2]);
        for i in 0..n {
            for j in i + 1..n {
                if second[i] == second[j] {
                    if let Some(v) = d[i * n + j] {
                        let g = usize::from(second[i]);
                        sums[g] += v;
                        counts[g] += 1;
                    }
                }
            }
        }
        (counts[0] > 0 && counts[1] > 0)
            .then(|| sums[1] / counts[1] as f64 - sums[0] / counts[0] as f64)
    };
    let observed_groups: Vec<bool> = (0..n).map(|i| i >= first).collect();
    let observed = statistic(&observed_groups)?;
    let tolerance = 1e-12 * observed.abs().max(1.0);
    let k = n - first;
    let total = binomial(n, k);
    let mut members = vec![false; n];
    let (mut at_least, mut assignments) = (0usize, 0usize);
    let mut count = |members: &[bool]| {
        if let Some(t) = statistic(members) {
            assignments += 1;
            at_least += usize::from(t >= observed - tolerance);
        }
    };
    let exact = total.is_some_and(|t| t <= MAX_ENUMERATED);
    if exact {
        // Every k-subset of 0..n, in lexicographic order.
        let mut subset: Vec<usize> = (0..k).collect();
        loop {
            members.iter_mut().for_each(|m| *m = false);
            subset.iter().for_each(|&i| members[i] = true);
            count(&members);
            let Some(i) = (0..k).rev().find(|&i| subset[i] < n - k + i) else {
                break;
            };
            subset[i] += 1;
            for j in i + 1..k {
                subset[j] = subset[j - 1] + 1;
            }
        }
    } else {
        count(&observed_groups);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for _ in 1..MAX_ENUMERATED {
            members.iter_mut().for_each(|m| *m = false);
            sample(&mut rng, n, k)
                .into_iter()
                .for_each(|i| members[i] = true);
            count(&members);
        }
    }
    Some(PermutationTest {
        statistic: observed,
        p_value: at_least as f64 / assignments.max(1) as f64,
        assignments,
        exact,
    })
}

/// A one-sided permutation test of Spearman's rank correlation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SpearmanTest {
    /// The observed correlation.
    pub rho: f64,
    /// The share of orderings of `y` (the observed one included) whose correlation with `x` is
    /// at least the observed one: the p-value against "no positive association".
    pub p_value: f64,
    /// How many orderings were evaluated.
    pub permutations: usize,
    /// Whether every ordering was enumerated (else a seeded random sample, the observed one
    /// counted in).
    pub exact: bool,
}

/// Orderings beyond which [`permutation_spearman`] samples: 7! = 5,040 are enumerated.
const MAX_EXACT_ORDERINGS_N: usize = 7;

/// Spearman's correlation of `(x, y)` and its one-sided permutation p-value: `y` is reordered
/// against `x` in every way (n <= 7) or in 20,000 seeded random ways (the observed order counted
/// as one of them), and p is the share of orderings whose correlation is at least the observed
/// one. Under no association every ordering is equally likely, so p is valid for any
/// distribution of the values. `None` for fewer than three pairs or no defined correlation.
pub fn permutation_spearman(x: &[f64], y: &[f64], seed: u64) -> Option<SpearmanTest> {
    let n = x.len();
    if n < 3 || y.len() != n {
        return None;
    }
    let observed = spearman(x, y)?;
    let tolerance = 1e-12;
    let mut permuted = y.to_vec();
    let (mut at_least, mut total) = (0usize, 0usize);
    let mut count = |order: &[f64]| {
        if let Some(r) = spearman(x, order) {
            total += 1;
            at_least += usize::from(r >= observed - tolerance);
        }
    };
    let exact = n <= MAX_EXACT_ORDERINGS_N;
    if exact {
        // Heap's algorithm: every ordering of y once.
        let mut c = vec![0usize; n];
        count(&permuted);
        let mut i = 0;
        while i < n {
            if c[i] < i {
                if i % 2 == 0 {
                    permuted.swap(0, i);
                } else {
                    permuted.swap(c[i], i);
                }
                count(&permuted);
                c[i] += 1;
                i = 0;
            } else {
                c[i] = 0;
                i += 1;
            }
        }
    } else {
        count(y);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for _ in 1..MAX_ENUMERATED {
            for k in (1..n).rev() {
                permuted.swap(k, rng.random_range(0..=k));
            }
            count(&permuted);
        }
    }
    Some(SpearmanTest {
        rho: observed,
        p_value: at_least as f64 / total.max(1) as f64,
        permutations: total,
        exact,
    })
}

/// Holm's step-down adjustment of `p_values` for testing them together (Holm 1979): with the
/// `m` defined p-values in increasing order `p_(1) <= .. <= p_(m)`, the adjusted value of
/// `p_(i)` is `max_{j <= i} min(1, (m - j + 1) p_(j))`. Rejecting where the adjusted p is at
/// most `alpha` keeps the chance of any false rejection among the `m` tests at most `alpha`
/// (the family-wise error rate), under any dependence between the tests; it rejects everything
/// Bonferroni (`m p`) does and sometimes more. Undefined entries (`None`) stay undefined and do
/// not count in `m`; the order of the result is the order of the input.
pub fn holm(p_values: &[Option<f64>]) -> Vec<Option<f64>> {
    let mut defined: Vec<(usize, f64)> = p_values
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.map(|p| (i, p)))
        .collect();
    defined.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    let m = defined.len();
    let mut adjusted = vec![None; p_values.len()];
    let mut running = 0.0f64;
    for (rank, (index, p)) in defined.into_iter().enumerate() {
        running = running.max(((m - rank) as f64 * p).min(1.0));
        adjusted[index] = Some(running);
    }
    adjusted
}

/// `n` choose `k`, `None` when it overflows: the number of assignments
/// [`two_group_permutation`] has for groups of `k` among `n`.
pub fn binomial(n: usize, k: usize) -> Option<usize> {
    let k = k.min(n - k);
    let mut value: usize = 1;
    for i in 0..k {
        value = value.checked_mul(n - i)? / (i + 1);
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    #[test]
    fn permutation_spearman_counts_orderings_as_by_hand() {
        // x and y in the same order: of the 4! = 24 orderings of y only the observed one has
        // rho = 1, so p = 1/24.
        let t = super::permutation_spearman(&[1.0, 2.0, 3.0, 4.0], &[10.0, 20.0, 30.0, 40.0], 0)
            .unwrap();
        assert!((t.rho - 1.0).abs() < 1e-12);
        assert_eq!((t.permutations, t.exact), (24, true));
        assert!((t.p_value - 1.0 / 24.0).abs() < 1e-15);
        // y = (1, 3, 2, 4) against x = (1, 2, 3, 4): rho = 1 - 6 * 2 / (4 * 15) = 0.8, reached
        // by the identity (rho 1) and by the three orderings one swap of neighbours away
        // (rho 0.8 each): 4 of 24.
        let t =
            super::permutation_spearman(&[1.0, 2.0, 3.0, 4.0], &[1.0, 3.0, 2.0, 4.0], 0).unwrap();
        assert!((t.rho - 0.8).abs() < 1e-12, "{}", t.rho);
        assert!((t.p_value - 4.0 / 24.0).abs() < 1e-15, "{}", t.p_value);
        // Reversed: every ordering is at least -1.
        let t = super::permutation_spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0], 0).unwrap();
        assert_eq!(t.p_value, 1.0);
        // Past 7 pairs: sampled, seeded, the observed order counted in.
        let x: Vec<f64> = (0..9).map(f64::from).collect();
        let t = super::permutation_spearman(&x, &x, 5).unwrap();
        assert!(!t.exact && t.permutations == 20_000);
        assert!(t.p_value >= 1.0 / 20_000.0 && t.p_value < 0.001);
        assert_eq!(super::permutation_spearman(&x, &x, 5), Some(t));
        assert!(super::permutation_spearman(&[1.0, 2.0], &[1.0, 2.0], 0).is_none());
    }

    #[test]
    fn holm_adjusts_as_by_hand() {
        // Sorted: 0.005 (x4 = 0.02), 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04,
        // raised to the running maximum 0.06); an undefined entry stays undefined.
        let adjusted = super::holm(&[Some(0.01), Some(0.04), None, Some(0.03), Some(0.005)]);
        let expected = [Some(0.03), Some(0.06), None, Some(0.06), Some(0.02)];
        for (a, e) in adjusted.iter().zip(expected) {
            match (a, e) {
                (Some(a), Some(e)) => assert!((a - e).abs() < 1e-15, "{a} vs {e}"),
                (None, None) => {}
                other => panic!("{other:?}"),
            }
        }
        // Six layers at 1/70 (the smallest p of groups of 4): 6/70 = 0.086 each, and capped
        // at 1.
        let six = super::holm(&[Some(1.0 / 70.0); 6]);
        assert!(six.iter().all(|p| (p.unwrap() - 6.0 / 70.0).abs() < 1e-15));
        assert_eq!(
            super::holm(&[Some(0.5), Some(0.6)]),
            vec![Some(1.0), Some(1.0)]
        );
        assert!(super::holm(&[]).is_empty());
    }

    use super::*;

    #[test]
    fn mean_and_sd_match_the_textbook() {
        let (mean, sd) = mean_sd(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(mean, 2.5);
        assert!((sd.unwrap() - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(mean_sd(&[2.0]), Some((2.0, None)));
        assert_eq!(mean_sd(&[]), None);
    }

    #[test]
    fn binomials_count_subsets() {
        assert_eq!(binomial(6, 3), Some(20));
        assert_eq!(binomial(10, 5), Some(252));
        assert_eq!(binomial(4, 0), Some(1));
        assert_eq!(binomial(200, 100), None);
    }

    #[test]
    fn the_bootstrap_interval_of_a_mean_covers_it_and_shrinks_with_n() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let draw = |rng: &mut ChaCha8Rng, n: usize| -> Vec<f64> {
            (0..n).map(|_| rng.random::<f64>()).collect()
        };
        let mut covered = 0;
        for t in 0..40 {
            let v = draw(&mut rng, 100);
            let i = bootstrap_mean(&v, 1000, 0.95, t).unwrap();
            covered += usize::from(!i.excludes(0.5));
        }
        // Nominal 95%: 38 of 40 expected; 33 is below that with probability < 0.1%.
        assert!(
            covered >= 33,
            "covered the true mean in {covered} of 40 draws"
        );
        let small = bootstrap_mean(&draw(&mut rng, 50), 1000, 0.95, 1).unwrap();
        let large = bootstrap_mean(&draw(&mut rng, 5000), 1000, 0.95, 1).unwrap();
        assert!(large.high - large.low < 0.3 * (small.high - small.low));
        assert_eq!(bootstrap_mean(&[1.0], 100, 0.95, 0), None);
        // Seeded: the same interval twice.
        let v = draw(&mut rng, 30);
        assert_eq!(
            bootstrap_mean(&v, 200, 0.9, 3),
            bootstrap_mean(&v, 200, 0.9, 3)
        );
    }

    #[test]
    fn spearman_intervals_exclude_zero_only_for_a_clear_order() {
        let x: Vec<f64> = (0..12).map(f64::from).collect();
        let rising: Vec<f64> = x.iter().map(|v| v + 0.1 * (v * 7.0).sin()).collect();
        let i = bootstrap_spearman(&x, &rising, 1000, 0.95, 0).unwrap();
        assert!(i.low > 0.5, "{i:?}");
        // No order: a zig-zag with no trend.
        let flat: Vec<f64> = x.iter().map(|v| (v * 2.3).sin()).collect();
        let i = bootstrap_spearman(&x, &flat, 1000, 0.95, 0).unwrap();
        assert!(!i.excludes(0.0), "{i:?}");
        assert_eq!(bootstrap_spearman(&x[..2], &flat[..2], 100, 0.95, 0), None);
        // All tied: never defined.
        assert_eq!(bootstrap_spearman(&x, &[1.0; 12], 100, 0.95, 0), None);
    }

    /// Distances of two groups: networks `first..` are `spread` times as far apart from each
    /// other as the rest.
    fn spread_distances(first: usize, spread: f64) -> impl Fn(usize, usize) -> Option<f64> {
        move |i, j| {
            let base = 1.0 + 0.01 * ((i * 7 + j * 3) % 5) as f64;
            Some(if i >= first && j >= first {
                spread * base
            } else {
                base
            })
        }
    }

    #[test]
    fn the_permutation_test_is_exact_for_small_groups() {
        // Groups of 3: 20 assignments; the observed one is the most extreme.
        let t = two_group_permutation(6, 3, spread_distances(3, 2.0), 0).unwrap();
        assert!(t.exact);
        assert_eq!(t.assignments, 20);
        assert_eq!(t.p_value, 1.0 / 20.0);
        assert!(t.statistic > 0.9);
        // Groups of 5: 252 assignments.
        let t = two_group_permutation(10, 5, spread_distances(5, 2.0), 0).unwrap();
        assert_eq!((t.assignments, t.p_value), (252, 1.0 / 252.0));
        // The first group more spread: the one-sided p-value is large.
        let t = two_group_permutation(10, 5, spread_distances(5, 0.5), 0).unwrap();
        assert!(t.p_value > 0.9, "{t:?}");
        // Groups too small, or no defined pair: no test.
        assert!(two_group_permutation(3, 1, spread_distances(1, 2.0), 0).is_none());
        assert!(two_group_permutation(6, 3, |_, _| None, 0).is_none());
    }

    #[test]
    fn permutation_p_values_are_uniform_for_exchangeable_networks() {
        // 14 networks, 7 per group (3,432 assignments, enumerated), distances from random
        // points: the p-value should be uniform; its mean near 0.5 and about 5% below 0.05.
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let (mut small, mut sum) = (0, 0.0);
        let trials = 200;
        for _ in 0..trials {
            let points: Vec<[f64; 3]> = (0..14).map(|_| rng.random()).collect();
            let t = two_group_permutation(
                14,
                7,
                |i, j| {
                    Some(
                        (0..3)
                            .map(|k| (points[i][k] - points[j][k]).powi(2))
                            .sum::<f64>()
                            .sqrt(),
                    )
                },
                0,
            )
            .unwrap();
            sum += t.p_value;
            small += usize::from(t.p_value <= 0.05);
        }
        let mean = sum / trials as f64;
        assert!((0.4..0.6).contains(&mean), "mean p-value {mean}");
        // Binomial(200, 0.05): 10 expected; more than 22 has probability < 0.1%.
        assert!(small <= 22, "{small} of {trials} p-values <= 0.05");
    }

    #[test]
    fn large_groups_are_sampled_and_seeded() {
        let t = two_group_permutation(30, 15, spread_distances(15, 1.5), 4).unwrap();
        assert!(!t.exact);
        assert_eq!(t.assignments, MAX_ENUMERATED);
        assert_eq!(t.p_value, 1.0 / MAX_ENUMERATED as f64);
        assert_eq!(
            two_group_permutation(30, 15, spread_distances(15, 1.01), 4),
            two_group_permutation(30, 15, spread_distances(15, 1.01), 4)
        );
    }
}
