//! The Hilbert-Schmidt Independence Criterion of two Gram matrices.
//!
//! - Biased (Gretton et al. 2005, "Measuring statistical dependence with Hilbert-Schmidt
//!   norms"): `HSIC_0(K, L) = tr(K H L H) / (n - 1)^2`.
//! - Unbiased (Song et al. 2012, "Feature selection via dependence maximization", JMLR):
//!
//!   ```text
//!   HSIC_1(K, L) = [ tr(K~ L~) + 1^T K~ 1 1^T L~ 1 / ((n-1)(n-2)) - 2/(n-2) 1^T K~ L~ 1 ]
//!                  / (n (n - 3)),
//!   ```
//!
//!   with `K~` the Gram with its diagonal set to zero; equal to `<U(K), U(L)> / (n (n - 3))`
//!   with U-centred Grams, which is how it is computed here.

use burn::tensor::Tensor;

use crate::centering::{center_gram, u_center_gram};

/// Which HSIC estimator a CKA uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HsicEstimator {
    /// `HSIC_0`, biased (Gretton et al. 2005): plain CKA.
    Biased,
    /// `HSIC_1`, unbiased (Song et al. 2012): debiased CKA.
    Unbiased,
}

impl HsicEstimator {
    /// The fewest examples repsim computes the estimator for: 4 for both. The biased one is
    /// defined from 2, but with 2 or 3 examples every pair of layers looks alike (CKA 1.0 for
    /// any two layers of 2 examples), so it is refused rather than reported.
    pub fn min_examples(self) -> usize {
        crate::conditioning::MIN_EXAMPLES
    }

    /// Centres a Gram matrix the way this estimator needs: `H K H` or U-centring.
    pub fn center(self, gram: Tensor<2>) -> Tensor<2> {
        match self {
            HsicEstimator::Biased => center_gram(gram),
            HsicEstimator::Unbiased => u_center_gram(gram),
        }
    }

    /// The normalisation of `<centred K, centred L>`: `(n-1)^2` or `n (n-3)`.
    pub fn normalizer(self, n: usize) -> f64 {
        let n = n as f64;
        match self {
            HsicEstimator::Biased => (n - 1.0) * (n - 1.0),
            HsicEstimator::Unbiased => n * (n - 3.0),
        }
    }
}

/// Biased HSIC_0 of two Gram matrices (a one-element tensor on the device).
pub fn biased_hsic(k: Tensor<2>, l: Tensor<2>) -> Tensor<1> {
    hsic(k, l, HsicEstimator::Biased)
}

/// Unbiased HSIC_1 (Song et al. 2012) of two Gram matrices; needs `n >= 4`.
pub fn unbiased_hsic(k: Tensor<2>, l: Tensor<2>) -> Tensor<1> {
    hsic(k, l, HsicEstimator::Unbiased)
}

/// HSIC of two Gram matrices with the given estimator.
pub fn hsic(k: Tensor<2>, l: Tensor<2>, estimator: HsicEstimator) -> Tensor<1> {
    let n = k.dims()[0];
    let kc = estimator.center(k);
    let lc = estimator.center(l);
    kc.mul(lc).sum().div_scalar(estimator.normalizer(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gram::linear_gram;
    use crate::layer::read_back;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn unbiased_hsic_matches_the_explicit_formula() {
        let device = Device::flex();
        let n = 7;
        let xs: Vec<f32> = (0..n * 3)
            .map(|i| ((i * 7919 % 23) as f32) / 5.0 - 2.0)
            .collect();
        let ys: Vec<f32> = (0..n * 2)
            .map(|i| ((i * 104729 % 17) as f32) / 3.0)
            .collect();
        let x = Tensor::<2>::from_data(TensorData::new(xs, [n, 3]), &device);
        let y = Tensor::<2>::from_data(TensorData::new(ys, [n, 2]), &device);
        let (k, l) = (linear_gram(x), linear_gram(y));
        let got = read_back(unbiased_hsic(k.clone(), l.clone())).unwrap()[0];
        let want =
            crate::testing::song_unbiased_hsic(&read_back(k).unwrap(), &read_back(l).unwrap(), n);
        assert!(
            (got - want).abs() < 1e-4 * want.abs().max(1.0),
            "{got} vs {want}"
        );
    }
}
