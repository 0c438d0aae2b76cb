//! 2-d convolution (groups 1, dilation 1) on flex by im2col and faer's matrix product, with
//! its input and weight gradients.
//!
//! For image `n`, with `col_n` the `K x P` patch matrix (`K = C_in kh kw` rows, one per input
//! channel and kernel offset; `P = H_out W_out` columns, one per output position; zero where a
//! patch reaches into the padding):
//!
//! ```text
//! y_n = W col_n                   (C_out x P: image n's NCHW output, written in place)
//! dW  = Σ_n dy_n col_n^T          (C_out x K)
//! dx_n = col2im(W^T dy_n)         (each patch column added back where it was read)
//! ```
//!
//! A 1x1 convolution with stride 1 and no padding has `col_n = x_n`, so no patch matrix is
//! built. For a stride-1 convolution whose output keeps the input's size (every 3x3 one of the
//! zoo), a patch row is the input plane shifted by a constant, so it is one contiguous copy
//! (and col2im one contiguous add), and the positions go in chunks of output rows whose patch
//! matrix fits the L2 cache. Images run in parallel on rayon's pool, each thread with its own
//! patch buffer; the weight
//! gradient is summed in fixed groups of images and the groups added in order, so a training
//! run is reproducible bit for bit on any number of threads. burn-flex's own backward goes
//! through `conv_transpose2d` for `dx` and a convolution of the whole feature map for `dW`
//! (see issue 22's profile).

use burn::nn::conv::Conv2d;
use burn::nn::PaddingConfig2d;
use burn::tensor::Tensor;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_flex::{Flex, FlexTensor};
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use super::host::{
    contiguous, flex_tensor, inner, plain_tensor, tracked_tensor, values, OnFlex, TrackedTensor,
};
use super::switch::repsim_kernels;

/// Images per group of the weight gradient's sum (fixed, so the sum's order is too).
const IMAGES_PER_GROUP: usize = 4;

/// The shapes of one convolution.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Geometry {
    /// N.
    pub images: usize,
    /// C_in.
    pub in_channels: usize,
    /// Input height and width.
    pub input: [usize; 2],
    /// C_out.
    pub out_channels: usize,
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Stride along height and width.
    pub stride: [usize; 2],
    /// Zero padding above and left of the input (below and right only shape the output).
    pub pad_start: [usize; 2],
    /// Output height and width.
    pub output: [usize; 2],
}

impl Geometry {
    /// The geometry of `x` (`[N, C_in, H, W]`) under `weight` (`[C_out, C_in, kh, kw]`) with
    /// padding `[(top, bottom), (left, right)]`; `None` when the channels disagree or the
    /// kernel does not fit (burn's op then reports it).
    pub fn new(
        x: &[usize],
        weight: &[usize],
        stride: [usize; 2],
        padding: [(usize, usize); 2],
    ) -> Option<Self> {
        if x.len() != 4 || weight.len() != 4 || x[1] != weight[1] || stride.contains(&0) {
            return None;
        }
        let out = |d: usize| {
            let padded = x[2 + d] + padding[d].0 + padding[d].1;
            padded
                .checked_sub(weight[2 + d])
                .map(|room| room / stride[d] + 1)
        };
        Some(Geometry {
            images: x[0],
            in_channels: x[1],
            input: [x[2], x[3]],
            out_channels: weight[0],
            kernel: [weight[2], weight[3]],
            stride,
            pad_start: [padding[0].0, padding[1].0],
            output: [out(0)?, out(1)?],
        })
    }

    /// `K = C_in kh kw`.
    fn patch_len(&self) -> usize {
        self.in_channels * self.kernel[0] * self.kernel[1]
    }

    /// `P = H_out W_out`.
    fn positions(&self) -> usize {
        self.output[0] * self.output[1]
    }

    fn image_len(&self) -> usize {
        self.in_channels * self.input[0] * self.input[1]
    }

    fn output_len(&self) -> usize {
        self.out_channels * self.positions()
    }

    /// A 1x1 kernel, stride 1, no padding: the patch matrix is the image itself.
    fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1] && self.stride == [1, 1] && self.pad_start == [0, 0]
    }

    /// For kernel offset `k` along dimension `d`: the output positions `[lo, hi)` whose input
    /// position `o stride + k - pad` lies inside the image.
    fn valid_outputs(&self, d: usize, k: usize) -> (usize, usize) {
        let (stride, pad, size) = (self.stride[d], self.pad_start[d], self.input[d]);
        let lo = pad.saturating_sub(k).div_ceil(stride);
        let hi = if size + pad > k {
            ((size + pad - k - 1) / stride + 1).min(self.output[d])
        } else {
            0
        };
        (lo.min(hi), hi)
    }

    /// Stride 1 and an output the input's size ("same" padding, as every 3x3 convolution of
    /// the zoo with stride 1): a patch row is then the input plane shifted by a constant offset
    /// in flattened `H W` order, except for the columns that wrap around a row's edge.
    fn is_same_size(&self) -> bool {
        self.stride == [1, 1] && self.output == self.input
    }

    /// For kernel offset `(ki, kj)` of a [`Self::is_same_size`] convolution: the shift from
    /// output position to input position, the output positions `[lo, hi)` that land inside
    /// the plane, and the output columns that wrap around a row's edge.
    fn shifted(&self, ki: usize, kj: usize) -> (isize, usize, usize, (usize, usize)) {
        let w = self.input[1];
        let plane = (self.input[0] * w) as isize;
        let row_shift = ki as isize - self.pad_start[0] as isize;
        let col_shift = kj as isize - self.pad_start[1] as isize;
        let shift = row_shift * w as isize + col_shift;
        let lo = (-shift).clamp(0, plane) as usize;
        let hi = (plane - shift).clamp(0, plane) as usize;
        let wrapped = if col_shift < 0 {
            (0, (-col_shift as usize).min(w))
        } else {
            (w - (col_shift as usize).min(w), w)
        };
        (shift, lo, hi.max(lo), wrapped)
    }

    /// Output positions per chunk: whole output rows up to [`CHUNK_FLOATS`] of patches for a
    /// [`Self::is_same_size`] convolution, all positions otherwise.
    fn chunk_positions(&self) -> usize {
        if self.is_same_size() {
            let row = self.output[1] * self.patch_len();
            (CHUNK_FLOATS / row.max(1)).max(1) * self.output[1]
        } else {
            self.positions()
        }
    }
}

/// Zeroes columns `[lo, hi)` of every `width`-wide row of `row`. The usual range is one column
/// (a 3x3 kernel's wrapped edge), zeroed by a store: `fill` called a `memset` per row, which was
/// 4% of a ResNet-20 x2 training step on 16 px maps (the profile in the book's benchmarks).
fn zero_columns(row: &mut [f32], width: usize, (lo, hi): (usize, usize)) {
    if lo + 1 == hi {
        for r in row.chunks_exact_mut(width) {
            r[lo] = 0.0;
        }
    } else if lo < hi {
        for r in row.chunks_exact_mut(width) {
            for v in &mut r[lo..hi] {
                *v = 0.0;
            }
        }
    }
}

/// Floats of patch matrix one chunk of output positions may hold: 128 KB, so that a chunk and
/// its gradient stay in a core's L2 cache between the copy and the product.
const CHUNK_FLOATS: usize = 32 * 1024;

/// Columns `[p0, p1)` of image `x`'s patch matrix (`K x P`) into `col` (`K x (p1 - p0)`,
/// row-major). Chunks other than the whole matrix come from [`Geometry::chunk_positions`].
fn im2col(g: &Geometry, x: &[f32], col: &mut [f32], (p0, p1): (usize, usize)) {
    if !g.is_same_size() {
        return im2col_strided(g, x, col);
    }
    // A same-size patch row is the input plane shifted by a constant, its wrapped columns zero.
    let [kh, kw] = g.kernel;
    let (p, w, cp) = (g.positions(), g.input[1], p1 - p0);
    for ci in 0..g.in_channels {
        let channel = &x[ci * p..(ci + 1) * p];
        for ki in 0..kh {
            for kj in 0..kw {
                let (shift, lo, hi, wrapped) = g.shifted(ki, kj);
                let (a, b) = (lo.clamp(p0, p1), hi.clamp(p0, p1));
                let row = (ci * kh + ki) * kw + kj;
                let dst = &mut col[row * cp..(row + 1) * cp];
                if a >= b {
                    dst.fill(0.0);
                    continue;
                }
                dst[..a - p0].fill(0.0);
                dst[b - p0..].fill(0.0);
                let from = (a as isize + shift) as usize;
                dst[a - p0..b - p0].copy_from_slice(&channel[from..from + b - a]);
                zero_columns(dst, w, wrapped);
            }
        }
    }
}

/// The adjoint of [`im2col`] for columns `[p0, p1)`: each entry of `col` added to the input
/// position it was read from, into `dx`. `col` is scratch (its wrapped columns are zeroed).
fn col2im(g: &Geometry, col: &mut [f32], dx: &mut [f32], (p0, p1): (usize, usize)) {
    if !g.is_same_size() {
        return col2im_strided(g, col, dx);
    }
    let [kh, kw] = g.kernel;
    let (p, w, cp) = (g.positions(), g.input[1], p1 - p0);
    for ci in 0..g.in_channels {
        let channel = &mut dx[ci * p..(ci + 1) * p];
        for ki in 0..kh {
            for kj in 0..kw {
                let (shift, lo, hi, wrapped) = g.shifted(ki, kj);
                let (a, b) = (lo.clamp(p0, p1), hi.clamp(p0, p1));
                if a >= b {
                    continue;
                }
                let row = (ci * kh + ki) * kw + kj;
                let src = &mut col[row * cp..(row + 1) * cp];
                // Wrapped columns read padding: they take no gradient.
                zero_columns(src, w, wrapped);
                let from = (a as isize + shift) as usize;
                for (t, &v) in channel[from..from + b - a]
                    .iter_mut()
                    .zip(&src[a - p0..b - p0])
                {
                    *t += v;
                }
            }
        }
    }
}

/// [`im2col`] of the whole matrix for any stride and padding, row by row.
fn im2col_strided(g: &Geometry, x: &[f32], col: &mut [f32]) {
    let [kh, kw] = g.kernel;
    let [h, w] = g.input;
    let out_w = g.output[1];
    let p = g.positions();
    for ci in 0..g.in_channels {
        let channel = &x[ci * h * w..(ci + 1) * h * w];
        for ki in 0..kh {
            let (rows_lo, rows_hi) = g.valid_outputs(0, ki);
            for kj in 0..kw {
                let (cols_lo, cols_hi) = g.valid_outputs(1, kj);
                let row = (ci * kh + ki) * kw + kj;
                let dst = &mut col[row * p..(row + 1) * p];
                dst[..rows_lo * out_w].fill(0.0);
                dst[rows_hi * out_w..].fill(0.0);
                for oh in rows_lo..rows_hi {
                    let ih = oh * g.stride[0] + ki - g.pad_start[0];
                    let src = &channel[ih * w..(ih + 1) * w];
                    let d = &mut dst[oh * out_w..(oh + 1) * out_w];
                    d[..cols_lo].fill(0.0);
                    d[cols_hi..].fill(0.0);
                    if cols_lo < cols_hi {
                        let first = cols_lo * g.stride[1] + kj - g.pad_start[1];
                        if g.stride[1] == 1 {
                            d[cols_lo..cols_hi]
                                .copy_from_slice(&src[first..first + cols_hi - cols_lo]);
                        } else {
                            for (o, v) in d[cols_lo..cols_hi].iter_mut().enumerate() {
                                *v = src[first + o * g.stride[1]];
                            }
                        }
                    }
                }
            }
        }
    }
}

/// [`col2im`] of the whole matrix for any stride and padding, added into `dx`.
fn col2im_strided(g: &Geometry, col: &[f32], dx: &mut [f32]) {
    let [kh, kw] = g.kernel;
    let [h, w] = g.input;
    let out_w = g.output[1];
    let p = g.positions();
    for ci in 0..g.in_channels {
        let channel = &mut dx[ci * h * w..(ci + 1) * h * w];
        for ki in 0..kh {
            let (rows_lo, rows_hi) = g.valid_outputs(0, ki);
            for kj in 0..kw {
                let (cols_lo, cols_hi) = g.valid_outputs(1, kj);
                if cols_lo >= cols_hi {
                    continue;
                }
                let row = (ci * kh + ki) * kw + kj;
                let src = &col[row * p..(row + 1) * p];
                for oh in rows_lo..rows_hi {
                    let ih = oh * g.stride[0] + ki - g.pad_start[0];
                    let d = &mut channel[ih * w..(ih + 1) * w];
                    let s = &src[oh * out_w + cols_lo..oh * out_w + cols_hi];
                    let first = cols_lo * g.stride[1] + kj - g.pad_start[1];
                    if g.stride[1] == 1 {
                        for (t, &v) in d[first..first + s.len()].iter_mut().zip(s) {
                            *t += v;
                        }
                    } else {
                        for (o, &v) in s.iter().enumerate() {
                            d[first + o * g.stride[1]] += v;
                        }
                    }
                }
            }
        }
    }
}

fn row_major(values: &[f32], rows: usize, cols: usize) -> MatRef<'_, f32> {
    MatRef::from_row_major_slice(values, rows, cols)
}

fn row_major_mut(values: &mut [f32], rows: usize, cols: usize) -> MatMut<'_, f32> {
    MatMut::from_row_major_slice_mut(values, rows, cols)
}

/// Columns `[p0, p1)` of a row-major `rows x p` matrix, as a strided view.
fn columns(values: &[f32], rows: usize, p: usize, (p0, p1): (usize, usize)) -> MatRef<'_, f32> {
    MatRef::from_row_major_slice_with_stride(&values[p0..], rows, p1 - p0, p)
}

/// A row-major `rows x (p1 - p0)` product into columns `[p0, p1)` of the row-major
/// `rows x p` matrix `values`: straight in when the chunk is every column, else through
/// `scratch` and one copy per row. Not through a strided view: faer 0.24.4's
/// `MatMut::from_row_major_slice_with_stride_mut` builds its view with the two strides swapped
/// (row stride 1, column stride `row_stride`), so a product into it writes past the slice
/// (seen under valgrind; faer-rs pull request 267, open, fixes it; the `MatRef` version is
/// right, and is what [`columns`] uses).
fn into_columns(
    values: &mut [f32],
    rows: usize,
    p: usize,
    (p0, p1): (usize, usize),
    scratch: &mut Vec<f32>,
    product: impl FnOnce(MatMut<'_, f32>),
) {
    let cp = p1 - p0;
    if cp == p {
        return product(row_major_mut(&mut values[..rows * p], rows, p));
    }
    scratch.resize(rows * cp, 0.0);
    product(row_major_mut(scratch, rows, cp));
    for (row, chunk) in scratch.chunks_exact(cp).enumerate() {
        values[row * p + p0..row * p + p1].copy_from_slice(chunk);
    }
}

/// The chunks `(p0, p1)` of output positions, in order.
fn position_chunks(g: &Geometry) -> impl Iterator<Item = (usize, usize)> {
    let (p, step) = (g.positions(), g.chunk_positions().max(1));
    (0..p).step_by(step).map(move |p0| (p0, (p0 + step).min(p)))
}

/// A patch buffer for one chunk (none for a pointwise convolution).
fn patch_buffer(g: &Geometry) -> Vec<f32> {
    if g.is_pointwise() {
        Vec::new()
    } else {
        vec![0f32; g.patch_len() * g.chunk_positions()]
    }
}

/// The convolution of `x` (`N x C_in x H x W`) with `weight` (`C_out x K`), NCHW out.
pub fn forward(g: &Geometry, x: &[f32], weight: &[f32]) -> Vec<f32> {
    let (k, p) = (g.patch_len(), g.positions());
    let mut out = vec![0f32; g.images * g.output_len()];
    let w = row_major(weight, g.out_channels, k);
    out.par_chunks_mut(g.output_len().max(1))
        .zip(x.par_chunks(g.image_len().max(1)))
        .for_each_init(
            || (patch_buffer(g), Vec::new()),
            |(col, scratch), (y, x)| {
                for chunk in position_chunks(g) {
                    let patches = if g.is_pointwise() {
                        columns(x, k, p, chunk)
                    } else {
                        im2col(g, x, col, chunk);
                        row_major(&col[..k * (chunk.1 - chunk.0)], k, chunk.1 - chunk.0)
                    };
                    into_columns(y, g.out_channels, p, chunk, scratch, |dst| {
                        matmul(dst, Accum::Replace, w, patches, 1.0, Par::Seq)
                    });
                }
            },
        );
    out
}

/// The gradients `(dx, dW)` of [`forward`] given `dy`; `dx` only when `want_input`.
pub fn backward(
    g: &Geometry,
    x: &[f32],
    weight: &[f32],
    dy: &[f32],
    want_input: bool,
) -> (Option<Vec<f32>>, Vec<f32>) {
    let (k, p) = (g.patch_len(), g.positions());
    let w = row_major(weight, g.out_channels, k);
    let mut dx = vec![0f32; if want_input { x.len() } else { 0 }];
    let group_x = IMAGES_PER_GROUP * g.image_len().max(1);
    let group_y = IMAGES_PER_GROUP * g.output_len().max(1);
    let x_groups = x.par_chunks(group_x).zip(dy.par_chunks(group_y));
    // dx's groups line up with x's; without dx, each group gets an empty slice.
    let dx_groups: Vec<&mut [f32]> = if want_input {
        dx.chunks_mut(group_x).collect()
    } else {
        (0..x.len().div_ceil(group_x))
            .map(|_| <&mut [f32]>::default())
            .collect()
    };
    let partials: Vec<Vec<f32>> = x_groups
        .zip(dx_groups.into_par_iter())
        .map_init(
            // Scratch buffers, one set per rayon job rather than per group: every use
            // overwrites what it reads.
            || {
                let dcol = if want_input {
                    patch_buffer(g)
                } else {
                    Vec::new()
                };
                (patch_buffer(g), dcol, Vec::new())
            },
            |(col, dcol, scratch), ((x, dy), dx)| {
                let mut dw = vec![0f32; g.out_channels * k];
                let images = x.len() / g.image_len().max(1);
                for i in 0..images {
                    let x_i = &x[i * g.image_len()..(i + 1) * g.image_len()];
                    let dy_i = &dy[i * g.output_len()..(i + 1) * g.output_len()];
                    for chunk in position_chunks(g) {
                        let cp = chunk.1 - chunk.0;
                        let dy_chunk = columns(dy_i, g.out_channels, p, chunk);
                        let patches = if g.is_pointwise() {
                            columns(x_i, k, p, chunk)
                        } else {
                            im2col(g, x_i, col, chunk);
                            row_major(&col[..k * cp], k, cp)
                        };
                        matmul(
                            row_major_mut(&mut dw, g.out_channels, k),
                            Accum::Add,
                            dy_chunk,
                            patches.transpose(),
                            1.0,
                            Par::Seq,
                        );
                        if !want_input {
                            continue;
                        }
                        let dx_i = &mut dx[i * g.image_len()..(i + 1) * g.image_len()];
                        if g.is_pointwise() {
                            into_columns(dx_i, k, p, chunk, scratch, |dst| {
                                matmul(dst, Accum::Replace, w.transpose(), dy_chunk, 1.0, Par::Seq)
                            });
                        } else {
                            matmul(
                                row_major_mut(&mut dcol[..k * cp], k, cp),
                                Accum::Replace,
                                w.transpose(),
                                dy_chunk,
                                1.0,
                                Par::Seq,
                            );
                            col2im(g, dcol, dx_i, chunk);
                        }
                    }
                }
                dw
            },
        )
        .collect();
    let mut weight_grad = vec![0f32; g.out_channels * k];
    for partial in &partials {
        for (total, v) in weight_grad.iter_mut().zip(partial) {
            *total += v;
        }
    }
    (want_input.then_some(dx), weight_grad)
}

/// The autodiff node of a convolution: `x` and the weight as parents.
#[derive(Debug)]
struct Conv2dBackward;

impl Backward<Flex, 2> for Conv2dBackward {
    /// `x`, the weight, the geometry.
    type State = (FlexTensor, FlexTensor, Geometry);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight] = ops.parents;
        let dy = contiguous(grads.consume::<Flex>(&ops.node));
        let (x, weight, g) = ops.state;
        let (dx, dw) = backward(
            &g,
            values(&x),
            values(&weight),
            values(&dy),
            node_x.is_some(),
        );
        if let (Some(node), Some(dx)) = (node_x, dx) {
            grads.register::<Flex>(node.id, flex_tensor(dx, x.layout().shape().to_vec()));
        }
        if let Some(node) = node_weight {
            grads.register::<Flex>(node.id, flex_tensor(dw, weight.layout().shape().to_vec()));
        }
    }
}

fn output_shape(g: &Geometry) -> Vec<usize> {
    vec![g.images, g.out_channels, g.output[0], g.output[1]]
}

/// The convolution on autodiff flex, recorded as one node.
fn tracked(x: TrackedTensor, weight: TrackedTensor, g: Geometry) -> TrackedTensor {
    let (x_host, w_host) = (contiguous(inner(&x)), contiguous(inner(&weight)));
    let output = flex_tensor(
        forward(&g, values(&x_host), values(&w_host)),
        output_shape(&g),
    );
    match Conv2dBackward
        .prepare::<NoCheckpointing>([x.node(), weight.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish((x_host, w_host, g), output),
        OpsKind::UnTracked(prep) => prep.finish(output),
    }
}

/// `conv` applied to `x` as burn's `Conv2d::forward` does, through the kernels above on flex
/// (groups 1, dilation 1, explicit or no padding) and burn's own op otherwise.
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    if !repsim_kernels()
        || conv.groups != 1
        || conv.dilation != [1, 1]
        || x.shape().num_elements() == 0
    {
        return conv.forward(x);
    }
    let padding = match conv.padding {
        PaddingConfig2d::Valid => [(0, 0), (0, 0)],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
        PaddingConfig2d::Same => return conv.forward(x),
    };
    let weight = conv.weight.val();
    let Some(g) = Geometry::new(&x.dims(), &weight.dims(), conv.stride, padding) else {
        return conv.forward(x);
    };
    let output = match (OnFlex::of(&x), OnFlex::of(&weight)) {
        (Some(OnFlex::Tracked(x)), Some(OnFlex::Tracked(weight))) => {
            tracked_tensor(tracked(x, weight, g))
        }
        (Some(OnFlex::Plain(x)), Some(OnFlex::Plain(weight))) => {
            let (x, weight) = (contiguous(x), contiguous(weight));
            plain_tensor(flex_tensor(
                forward(&g, values(&x), values(&weight)),
                output_shape(&g),
            ))
        }
        _ => return conv.forward(x),
    };
    match &conv.bias {
        Some(bias) => {
            let bias = bias.val();
            let channels = bias.dims()[0];
            output + bias.reshape([1, channels, 1, 1])
        }
        None => output,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::{Device, Distribution};

    use crate::kernels::test_support::relative_difference;

    /// (images, in, out, side h, side w, kernel, stride, padding, bias): every kernel size,
    /// stride and padding the zoo uses, odd sizes, batch 1, the 7x7 ImageNet stem.
    const CASES: [(usize, usize, usize, usize, usize, usize, usize, usize, bool); 13] = [
        (8, 4, 6, 1, 1, 3, 1, 1, false),
        (8, 4, 6, 2, 2, 3, 2, 1, false),
        (8, 4, 6, 2, 2, 1, 2, 0, false),
        (8, 4, 6, 4, 4, 3, 2, 1, false),
        (3, 4, 5, 8, 8, 3, 1, 1, false),
        (2, 3, 6, 9, 7, 3, 2, 1, false),
        (1, 5, 4, 7, 5, 3, 1, 1, true),
        (3, 6, 8, 8, 8, 1, 1, 0, false),
        (2, 6, 8, 9, 9, 1, 2, 0, false),
        (2, 3, 4, 17, 15, 7, 2, 3, false),
        (2, 2, 3, 6, 6, 3, 1, 0, true),
        (1, 3, 2, 5, 6, 2, 2, 0, false),
        (4, 3, 16, 16, 16, 3, 1, 1, false),
    ];

    fn conv(
        case: (usize, usize, usize, usize, usize, usize, usize, usize, bool),
        device: &Device,
    ) -> Conv2d {
        let (_, cin, cout, _, _, k, s, p, bias) = case;
        Conv2dConfig::new([cin, cout], [k, k])
            .with_stride([s, s])
            .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
            .with_bias(bias)
            .init(device)
    }

    #[test]
    fn forward_and_gradients_match_burns_conv2d() {
        let device = Device::flex().autodiff();
        for case in CASES {
            let (n, cin, _, h, w, ..) = case;
            let layer = conv(case, &device);
            let x = Tensor::<4>::random([n, cin, h, w], Distribution::Normal(0.0, 1.0), &device)
                .require_grad();
            let ours = conv2d(&layer, x.clone());
            let burns = layer.forward(x.clone());
            assert_eq!(ours.dims(), burns.dims(), "{case:?}");
            let weights = burns.random_like(Distribution::Normal(0.0, 1.0));
            let forward = relative_difference(ours.clone(), burns.clone());
            assert!(forward <= 1e-5, "{case:?}: outputs differ by {forward}");
            let ours = (ours * weights.clone()).sum().backward();
            let burns = (burns * weights).sum().backward();
            let pairs = [
                ("input", x.grad(&ours), x.grad(&burns)),
                (
                    "weight",
                    layer.weight.val().grad(&ours),
                    layer.weight.val().grad(&burns),
                ),
            ];
            for (what, a, b) in pairs {
                let (a, b) = (a.expect("our gradient"), b.expect("burn's gradient"));
                let d = relative_difference(a, b);
                assert!(d <= 1e-5, "{case:?}: {what} gradients differ by {d}");
            }
            if let Some(bias) = &layer.bias {
                let d = relative_difference(
                    bias.val().grad(&ours).expect("our bias gradient"),
                    bias.val().grad(&burns).expect("burn's bias gradient"),
                );
                assert!(d <= 1e-5, "{case:?}: bias gradients differ by {d}");
            }
        }
    }

    #[test]
    fn inference_matches_burns_conv2d() {
        let device = Device::flex();
        for case in CASES {
            let (n, cin, _, h, w, ..) = case;
            let layer = conv(case, &device);
            let x = Tensor::<4>::random([n, cin, h, w], Distribution::Normal(0.0, 1.0), &device);
            let d = relative_difference(conv2d(&layer, x.clone()), layer.forward(x));
            assert!(d <= 1e-5, "{case:?}: outputs differ by {d}");
        }
    }

    #[test]
    fn a_strided_view_input_is_read_in_order() {
        // A transposed (non-contiguous) input goes through one copy, not a wrong read.
        let device = Device::flex();
        let layer = conv(CASES[0], &device);
        let x = Tensor::<4>::random([3, 4, 8, 8], Distribution::Normal(0.0, 1.0), &device)
            .swap_dims(2, 3);
        let d = relative_difference(conv2d(&layer, x.clone()), layer.forward(x));
        assert!(d <= 1e-5, "outputs differ by {d}");
    }

    #[test]
    fn the_weight_gradient_does_not_depend_on_the_thread_count() {
        let g = Geometry::new(&[9, 3, 6, 6], &[4, 3, 3, 3], [1, 1], [(1, 1), (1, 1)]).unwrap();
        let x: Vec<f32> = (0..9 * 3 * 36)
            .map(|i| ((i * 7919) % 113) as f32 / 57.0 - 1.0)
            .collect();
        let w: Vec<f32> = (0..4 * 27)
            .map(|i| ((i * 31) % 17) as f32 / 9.0 - 1.0)
            .collect();
        let dy: Vec<f32> = (0..9 * 4 * 36)
            .map(|i| ((i * 13) % 29) as f32 / 15.0 - 1.0)
            .collect();
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| backward(&g, &x, &w, &dy, true))
        };
        assert_eq!(run(1), run(3));
    }
}
