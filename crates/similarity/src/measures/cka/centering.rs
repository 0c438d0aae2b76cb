//! Centring of Gram matrices.
//!
//! - `center_gram`: the double centring `H K H` with `H = I - 11^T / n`, used by the biased
//!   HSIC of Gretton et al. (2005).
//! - `u_center_gram`: the U-centring of Szekely and Rizzo (2014), used by the unbiased HSIC of
//!   Song et al. (2012): `<U(K), U(L)> / (n (n - 3))` is HSIC_1.

use burn::tensor::{Bool, Tensor};

/// Double centring `H K H`: subtract row and column means, add back the grand mean.
pub fn center_gram(gram: Tensor<2>) -> Tensor<2> {
    let column_means = gram.clone().mean_dim(0); // 1 x n
    let row_means = gram.clone().mean_dim(1); // n x 1
    let grand_mean = column_means.clone().mean_dim(1); // 1 x 1
    gram.sub(column_means).sub(row_means).add(grand_mean)
}

/// U-centring (Szekely and Rizzo 2014), as in `simref.center_gram(k, unbiased=True)`:
///
/// ```text
/// U(K)_ij = K_ij - m_i - m_j   for i != j,   U(K)_ii = 0,
/// m = colsum(K0) / (n - 2) - sum(K0) / (2 (n - 1)(n - 2)),   K0 = K with zero diagonal.
/// ```
///
/// Needs `n >= 3`; the unbiased HSIC built on it needs `n >= 4`.
pub fn u_center_gram(gram: Tensor<2>) -> Tensor<2> {
    let n = gram.dims()[0];
    let device = gram.device();
    let off_diagonal = Tensor::<2, Bool>::diag_mask([n, n], 0, &device);
    let on_diagonal = off_diagonal.clone().bool_not();
    let k0 = gram.mask_fill(on_diagonal.clone(), 0.0);
    let means = k0.clone().sum_dim(0).div_scalar((n - 2) as f64); // 1 x n
    let correction = means.clone().sum_dim(1).div_scalar((2 * (n - 1)) as f64); // 1 x 1
    let means = means.sub(correction);
    k0.sub(means.clone())
        .sub(means.transpose())
        .mask_fill(on_diagonal, 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::read_back;
    use burn::tensor::{Device, TensorData};

    fn gram() -> Tensor<2> {
        let values = vec![
            4.0, 1.0, 2.0, 0.5, 1.0, 3.0, 0.0, 1.0, 2.0, 0.0, 5.0, 2.0, 0.5, 1.0, 2.0, 6.0,
        ];
        Tensor::from_data(TensorData::new(values, [4, 4]), &Device::flex())
    }

    #[test]
    fn double_centred_rows_and_columns_sum_to_zero() {
        let c = center_gram(gram());
        for s in read_back(c.clone().sum_dim(0)).unwrap() {
            assert!(s.abs() < 1e-5);
        }
        for s in read_back(c.sum_dim(1)).unwrap() {
            assert!(s.abs() < 1e-5);
        }
    }

    #[test]
    fn u_centred_has_zero_diagonal_and_zero_row_sums() {
        // U-centring makes every row of the off-diagonal part sum to zero.
        let u = read_back(u_center_gram(gram())).unwrap();
        for i in 0..4 {
            assert_eq!(u[i * 5], 0.0);
            let row: f64 = u[i * 4..i * 4 + 4].iter().sum();
            assert!(row.abs() < 1e-5, "row {i} sums to {row}");
        }
    }
}
