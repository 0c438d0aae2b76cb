//! The linear Gram `K = X X^T` of a layer on the flex (CPU) backend, computed in place by
//! faer's lower-triangular matrix product.
//!
//! On flex a tensor already lives in host memory, so its storage can be read without a copy
//! (`Tensor::try_into_primitive::<Flex>`, then the strided `f32` slice). faer's product with a
//! lower-triangular destination does half of the full Gram's `2 m^2 D` FLOPs, and faer's x86
//! kernels run the skinny Gram shape (`m = 256`, `D` in the thousands) at a far higher rate than
//! burn-flex's matmul (the `gemm` crate; see the README's Benchmarks). The upper triangle is
//! then mirrored, so `K` is exactly symmetric.
//!
//! This is the flex-only path behind [`crate::measures::cka::gram::gram`]: every other device (wgpu, an
//! autodiff wrapper, a float type other than `f32`, a view whose rows are not contiguous) keeps
//! the burn-op path, and the two are tested to agree.

use burn::tensor::{DType, Tensor, TensorData};
use burn_flex::Flex;
use faer::linalg::matmul::triangular::{matmul, BlockStructure};
use faer::{Accum, MatMut, MatRef, Par};

/// `X X^T` by faer when `x` is an `f32` flex tensor whose rows are contiguous (any row stride
/// and offset: a minibatch view `narrow(0, start, m)` qualifies); `None` otherwise, for the
/// caller's burn-op path.
pub fn flex_gram(x: &Tensor<2>) -> Option<Tensor<2>> {
    let view = HostView::of(x)?;
    let storage = view.primitive.storage::<f32>();
    let values = storage.get(view.start..view.start + view.len())?;
    let (rows, cols) = (view.rows, view.cols);
    let x_host = MatRef::from_row_major_slice_with_stride(values, rows, cols, view.row_stride);

    let mut out = vec![0.0f32; rows * rows];
    lower_gram(
        x_host,
        MatMut::from_row_major_slice_mut(&mut out, rows, rows),
    );
    mirror_lower_to_upper(&mut out, rows);
    Some(Tensor::from_data(
        TensorData::new(out, [rows, rows]),
        &x.device(),
    ))
}

/// Whether [`flex_gram`] computes `x`'s Gram (rather than returning `None`).
pub fn takes(x: &Tensor<2>) -> bool {
    HostView::of(x).is_some_and(|view| view.start + view.len() <= view.storage_len())
}

/// A flex `f32` matrix with contiguous rows, as its storage and strides.
struct HostView {
    primitive: burn_flex::FlexTensor,
    rows: usize,
    cols: usize,
    row_stride: usize,
    start: usize,
}

impl HostView {
    fn of(x: &Tensor<2>) -> Option<Self> {
        if x.dtype() != DType::F32 {
            return None;
        }
        let primitive = x.clone().try_into_primitive::<Flex>().ok()?;
        let layout = primitive.layout();
        let (rows, cols, row_stride, col_stride) = layout.as_2d_strides()?;
        if rows == 0 || cols == 0 {
            return None;
        }
        let row_stride = if rows == 1 { cols as isize } else { row_stride };
        if (col_stride != 1 && cols > 1) || row_stride < cols as isize {
            return None;
        }
        let start = layout.start_offset();
        Some(HostView {
            primitive,
            rows,
            cols,
            row_stride: row_stride as usize,
            start,
        })
    }

    /// Elements from the first of the view to its last, gaps between rows included.
    fn len(&self) -> usize {
        (self.rows - 1) * self.row_stride + self.cols
    }

    fn storage_len(&self) -> usize {
        self.primitive.storage::<f32>().len()
    }
}

/// The lower triangle (diagonal included) of `x x^T` into `dst`, on rayon's threads.
fn lower_gram(x: MatRef<'_, f32>, dst: MatMut<'_, f32>) {
    matmul(
        dst,
        BlockStructure::TriangularLower,
        Accum::Replace,
        x,
        BlockStructure::Rectangular,
        x.transpose(),
        BlockStructure::Rectangular,
        1.0f32,
        Par::rayon(0),
    );
}

/// Copies the strict lower triangle of a row-major `n x n` matrix onto its upper triangle.
fn mirror_lower_to_upper(values: &mut [f32], n: usize) {
    for i in 0..n {
        for j in 0..i {
            values[j * n + i] = values[i * n + j];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::read_back;
    use crate::testing::random_matrix;
    use burn::tensor::Device;

    fn burn_gram(x: Tensor<2>) -> Vec<f64> {
        read_back(x.clone().matmul(x.transpose())).unwrap()
    }

    fn assert_close(host: &[f64], plain: &[f64], what: &str) {
        assert_eq!(host.len(), plain.len(), "{what}");
        for (k, (a, b)) in host.iter().zip(plain).enumerate() {
            assert!(
                (a - b).abs() <= 1e-4 * b.abs().max(1.0),
                "{what}: entry {k}: faer {a} vs burn {b}"
            );
        }
    }

    #[test]
    fn faer_gram_equals_the_burn_matmul_and_is_symmetric() {
        let device = Device::flex();
        for (m, d) in [(1, 7), (5, 3), (37, 130), (256, 4096)] {
            let x = random_matrix(m, d, (m * d) as u64, &device);
            let host = read_back(flex_gram(&x).expect("flex f32 takes the host path")).unwrap();
            assert_close(&host, &burn_gram(x), &format!("{m} x {d}"));
            for i in 0..m {
                for j in 0..m {
                    assert_eq!(host[i * m + j], host[j * m + i], "{m} x {d}: ({i}, {j})");
                }
            }
        }
    }

    #[test]
    fn row_views_are_read_in_place() {
        // A minibatch is `narrow(0, start, m)` of the whole layer: an offset into its storage.
        let device = Device::flex();
        let whole = random_matrix(40, 33, 9, &device);
        let batch = whole.narrow(0, 12, 16);
        let host = read_back(flex_gram(&batch).unwrap()).unwrap();
        assert_close(&host, &burn_gram(batch), "rows 12..28");
    }

    #[test]
    fn column_views_and_other_devices_take_the_burn_path() {
        let device = Device::flex();
        let x = random_matrix(8, 12, 4, &device);
        // Columns 3..9: rows are contiguous, with a stride of 12 and an offset of 3.
        let columns = x.clone().narrow(1, 3, 6);
        let host = read_back(flex_gram(&columns).unwrap()).unwrap();
        assert_close(&host, &burn_gram(columns), "columns 3..9");
        // A transposed view has a column stride: not read in place.
        assert!(flex_gram(&x.clone().transpose()).is_none());
        assert!(!takes(&x.clone().transpose()) && takes(&x));
        // f64 stays on burn ops.
        assert!(flex_gram(&x.cast(DType::F64)).is_none());
        // An autodiff tensor is not a plain flex primitive.
        let tracked = Tensor::<2>::from_data(
            TensorData::new(vec![1.0f32; 12], [3, 4]),
            &Device::flex().autodiff(),
        );
        assert!(flex_gram(&tracked).is_none());
    }
}
