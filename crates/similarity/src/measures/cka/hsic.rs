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

use crate::measures::cka::centering::{center_gram, u_center_gram};

/// Which HSIC estimator a CKA uses (defined in `repsim-results` with the other parameters).
pub use repsim_results::HsicEstimator;

/// Centres a Gram matrix the way `estimator` needs: `H K H` (biased) or U-centring
/// (unbiased).
pub fn center_for(estimator: HsicEstimator, gram: Tensor<2>) -> Tensor<2> {
    match estimator {
        HsicEstimator::Biased => center_gram(gram),
        HsicEstimator::Unbiased => u_center_gram(gram),
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
    let kc = center_for(estimator, k);
    let lc = center_for(estimator, l);
    kc.mul(lc).sum().div_scalar(estimator.normalizer(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::read_back;
    use crate::measures::cka::gram::linear_gram;
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
