//! Cross-entropy of logits against class indices, averaged over the batch, with the same bits
//! on every CPU.
//!
//! For logits `z` (`N x C`) and targets `y`:
//!
//! ```text
//! m_i = max_c z_ic,   e_ic = exp(z_ic - m_i),   s_i = Σ_c e_ic     (c in index order)
//! loss = -(1/N) Σ_i (z_{i y_i} - m_i - ln s_i)                      (i in index order)
//! ∂loss/∂z_ic = e_ic / s_i · (1/N) - [c = y_i] (1/N)
//! ```
//!
//! This is burn's `CrossEntropyLoss` (no weights, smoothing or padding): the same operations in
//! the same order, the gradient rounded as burn-autodiff's chain of `log_softmax`, `gather`,
//! `mean` and `neg` rounds it. What differs is how the sums run. burn-flex adds a row of
//! logits with SIMD whose lane count is chosen when the program runs (8 with AVX2, 16 with
//! AVX-512), so the order of the additions, and with it the last bit of `s_i`, follows the CPU,
//! and a training run reaches other weights on an AVX-512 machine than on an AVX2 one (the
//! book's *Results across CPUs*). Here the sums run in index order on every CPU, which is also
//! the order of burn's AVX-512 path for rows shorter than 16 classes: on such a machine a
//! 10-class training run keeps the weights it had with burn's loss, bit for bit. The loss value
//! itself is the mean in index order, so its last digit can differ from burn's.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Int, Tensor};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_flex::{Flex, FlexTensor};

use super::host::{contiguous, flex_tensor, inner, plain_tensor, tracked_tensor, values, OnFlex};
use super::switch::repsim_kernels;

/// What the backward pass needs: each row's exponentials and their sum, the targets.
#[derive(Debug, Clone)]
struct Softmax {
    /// `e_ic`, row-major `N x C`.
    exponentials: Vec<f32>,
    /// `s_i`.
    sums: Vec<f32>,
    /// `y_i`.
    targets: Vec<usize>,
    classes: usize,
}

/// The loss and what its gradient needs, for row-major logits `N x classes` (`N > 0`).
fn forward(logits: &[f32], targets: Vec<usize>, classes: usize) -> (f32, Softmax) {
    let rows = targets.len();
    let mut exponentials = vec![0f32; logits.len()];
    let mut sums = Vec::with_capacity(rows);
    let mut total = 0f32;
    for ((row, e), &target) in logits
        .chunks_exact(classes)
        .zip(exponentials.chunks_exact_mut(classes))
        .zip(&targets)
    {
        // The largest logit, NaN when any is NaN (as burn's max_dim).
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| {
            if v.is_nan() || m.is_nan() {
                f32::NAN
            } else {
                m.max(v)
            }
        });
        let mut sum = 0f32;
        for (e, &z) in e.iter_mut().zip(row) {
            *e = (z - max).exp();
            sum += *e;
        }
        sums.push(sum);
        total += (row[target] - max) - sum.ln();
    }
    let loss = -(total / rows as f32);
    let softmax = Softmax {
        exponentials,
        sums,
        targets,
        classes,
    };
    (loss, softmax)
}

/// `∂loss/∂z` given the gradient `upstream` of the loss, rounded as burn-autodiff's chain
/// rounds it: `d = fl(1/N) · -upstream` (neg, then mean), `-d · (1 / s_i) · e_ic` (log, sum,
/// exp), plus `d` at the target (gather).
fn backward(softmax: &Softmax, upstream: f32) -> Vec<f32> {
    let rows = softmax.targets.len();
    let d = (1f64 / rows as f64) as f32 * -upstream;
    let mut grad = vec![0f32; softmax.exponentials.len()];
    for (i, (g, e)) in grad
        .chunks_exact_mut(softmax.classes)
        .zip(softmax.exponentials.chunks_exact(softmax.classes))
        .enumerate()
    {
        let per_sum = -d * (1.0 / softmax.sums[i]);
        for (c, (g, &e)) in g.iter_mut().zip(e).enumerate() {
            let at_target = if c == softmax.targets[i] { d } else { 0.0 };
            *g = at_target + per_sum * e;
        }
    }
    grad
}

/// The autodiff node of the loss: the logits as parent.
#[derive(Debug)]
struct CrossEntropyBackward;

impl Backward<Flex, 1> for CrossEntropyBackward {
    /// The softmax of the forward pass and the logits' shape.
    type State = (Softmax, Vec<usize>);

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node_logits] = ops.parents;
        let upstream = contiguous(grads.consume::<Flex>(&ops.node));
        let (softmax, shape) = ops.state;
        if let Some(node) = node_logits {
            let grad = backward(&softmax, values(&upstream)[0]);
            grads.register::<Flex>(node.id, flex_tensor(grad, shape));
        }
    }
}

/// The targets as class indices, `None` when one is outside `0..classes` (burn's loss then
/// decides what that gives).
fn class_indices(targets: &Tensor<1, Int>, classes: usize) -> Option<Vec<usize>> {
    let values = targets
        .to_data()
        .convert::<i64>()
        .try_into_vec::<i64>()
        .ok()?;
    values
        .into_iter()
        .map(|t| usize::try_from(t).ok().filter(|&t| t < classes))
        .collect()
}

/// burn's `CrossEntropyLoss::forward(logits, targets)` (its default configuration): one element,
/// the mean over the batch. On flex in `f32` it runs the kernel above (one autodiff node under
/// autodiff), elsewhere, or for an empty batch or an out-of-range target, burn's loss.
pub fn cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    let [rows, classes] = logits.dims();
    let burns = |logits: Tensor<2>, targets| {
        CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits, targets)
    };
    if !repsim_kernels() || rows == 0 || classes == 0 || targets.dims() != [rows] {
        return burns(logits, targets);
    }
    let Some(z) = OnFlex::of(&logits) else {
        return burns(logits, targets);
    };
    let Some(indices) = class_indices(&targets, classes) else {
        return burns(logits, targets);
    };
    match z {
        OnFlex::Plain(z) => {
            let (loss, _) = forward(values(&contiguous(z)), indices, classes);
            plain_tensor(flex_tensor(vec![loss], vec![1]))
        }
        OnFlex::Tracked(z) => {
            let host: FlexTensor = contiguous(inner(&z));
            let (loss, softmax) = forward(values(&host), indices, classes);
            let output = flex_tensor(vec![loss], vec![1]);
            let tracked = match CrossEntropyBackward
                .prepare::<NoCheckpointing>([z.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => prep.finish((softmax, vec![rows, classes]), output),
                OpsKind::UnTracked(prep) => prep.finish(output),
            };
            tracked_tensor(tracked)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution, TensorData};

    fn targets(rows: usize, classes: usize, device: &Device) -> Tensor<1, Int> {
        let values: Vec<i64> = (0..rows).map(|i| ((i * 7 + 3) % classes) as i64).collect();
        Tensor::from_data(TensorData::new(values, [rows]), device)
    }

    fn read(t: Tensor<2>) -> Vec<f32> {
        t.into_data().try_into_vec::<f32>().unwrap()
    }

    /// Against burn's loss: the value to 1e-6 and the gradient to 1e-6 relative, for batches
    /// that divide evenly and not, few and many classes, large logits.
    #[test]
    fn loss_and_gradient_match_burns_cross_entropy() {
        let device = Device::flex().autodiff();
        for (rows, classes, scale) in [(64, 10, 1.0), (40, 10, 3.0), (7, 3, 30.0), (33, 100, 1.0)] {
            let z = Tensor::<2>::random([rows, classes], Distribution::Normal(0.0, scale), &device)
                .require_grad();
            let t = targets(rows, classes, &device);
            let ours = cross_entropy(z.clone(), t.clone());
            let burns = CrossEntropyLossConfig::new()
                .init(&device)
                .forward(z.clone(), t);
            let (a, b) = (
                ours.clone().into_scalar::<f32>(),
                burns.clone().into_scalar::<f32>(),
            );
            assert!(
                (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                "{rows}x{classes}: {a} {b}"
            );
            let grad_ours = read(z.grad(&ours.backward()).unwrap());
            let grad_burns = read(z.grad(&burns.backward()).unwrap());
            let largest = grad_burns.iter().fold(0f32, |m, v| m.max(v.abs()));
            for (x, y) in grad_ours.iter().zip(&grad_burns) {
                assert!((x - y).abs() <= 1e-6 * largest, "{rows}x{classes}: {x} {y}");
            }
        }
    }

    /// Fewer than 16 classes: the gradient is burn's to the bit (burn's sums run in index order
    /// there on AVX-512, and the chain of roundings is the same), whatever the CPU runs here;
    /// with AVX2 burn's own sum of 10 classes is another order, so the comparison is made with
    /// sums in index order on both sides: burn's ops fed one class at a time.
    #[test]
    fn gradient_rounds_as_burns_chain_of_ops() {
        let device = Device::flex().autodiff();
        let (rows, classes) = (40, 10);
        let z = Tensor::<2>::random([rows, classes], Distribution::Normal(0.0, 2.0), &device)
            .require_grad();
        let t = targets(rows, classes, &device);
        // burn's log_softmax written out, the row sum one class at a time.
        let max = z.clone().detach().max_dim(1);
        let shifted = z.clone() - max;
        let exp = shifted.clone().exp();
        let sum = (1..classes).fold(exp.clone().narrow(1, 0, 1), |s, c| {
            s + exp.clone().narrow(1, c, 1)
        });
        let log_softmax = shifted - sum.log();
        let picked = log_softmax
            .gather(1, t.clone().reshape([rows, 1]))
            .reshape([rows]);
        let burns = picked.mean().neg();
        let ours = cross_entropy(z.clone(), t);
        assert_eq!(
            read(z.grad(&ours.backward()).unwrap()),
            read(z.grad(&burns.backward()).unwrap())
        );
    }

    #[test]
    fn plain_flex_gives_the_autodiff_value_and_nan_propagates() {
        let (rows, classes) = (9, 4);
        let values: Vec<f32> = (0..rows * classes)
            .map(|i| (i as f32 * 0.37).sin())
            .collect();
        let z = |device: &Device| {
            Tensor::<2>::from_data(TensorData::new(values.clone(), [rows, classes]), device)
        };
        let plain = Device::flex();
        let tracked = plain.clone().autodiff();
        let a = cross_entropy(z(&plain), targets(rows, classes, &plain)).into_scalar::<f32>();
        let b = cross_entropy(z(&tracked), targets(rows, classes, &tracked)).into_scalar::<f32>();
        assert_eq!(a.to_bits(), b.to_bits());
        let mut with_nan = values.clone();
        with_nan[5] = f32::NAN;
        let z = Tensor::<2>::from_data(TensorData::new(with_nan, [rows, classes]), &plain);
        assert!(cross_entropy(z, targets(rows, classes, &plain))
            .into_scalar::<f32>()
            .is_nan());
    }

    /// A target outside the classes is burn's loss's to judge (no kernel, no wrong index).
    #[test]
    fn an_out_of_range_target_is_left_to_burn() {
        let device = Device::flex();
        let t = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 5], [2]), &device);
        assert_eq!(class_indices(&t, 5), None);
        assert_eq!(class_indices(&t, 6), Some(vec![0, 5]));
    }
}
