//! Batch normalisation (Ioffe & Szegedy 2015) on flex in fused passes, with its backward.
//!
//! Training, per channel `c` over the `M = N * H * W` values of the batch:
//!
//! ```text
//! mean_c = Σ x / M        var_c = Σ (x - mean_c)^2 / M        (biased, as burn's batch_norm_train)
//! x̂ = (x - mean_c) / sqrt(var_c + ε)        y = γ_c x̂ + β_c
//! ```
//!
//! and its gradients, given `dy`:
//!
//! ```text
//! dβ_c = Σ dy        dγ_c = Σ dy x̂        dx = γ_c / sqrt(var_c + ε) * (dy - dβ_c / M - x̂ dγ_c / M)
//! ```
//!
//! In NCHW each `(n, c)` plane is contiguous, so the statistics take one read of `x` (each plane's
//! mean and centred squares from cache, merged across planes in `f64` by Chan et al.'s pairwise
//! formula), the output one read and one write; the backward one read of `x` and `dy` for the two
//! sums, one for `dx`. burn's default (`ModuleOps::batch_norm_train`, which flex does not
//! override) copies the activation with `swap_dims(0, 1)` per statistic and makes about ten
//! elementwise passes. Every sum runs in a fixed order, so a training run stays reproducible bit
//! for bit.

use burn::nn::BatchNorm;
use burn::tensor::Tensor;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_flex::{Flex, FlexTensor};
use rayon::prelude::*;

use super::host::{
    contiguous, flex_tensor, inner, plain_tensor, tracked_tensor, untracked, values, OnFlex,
    TrackedTensor,
};
use super::lanes;
use super::switch::repsim_kernels;

/// The layout the kernels see: `images` x `channels` planes of `plane` contiguous values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Planes {
    /// N.
    pub images: usize,
    /// C.
    pub channels: usize,
    /// H * W (1 for a `[N, C]` input).
    pub plane: usize,
}

impl Planes {
    fn of(shape: &[usize]) -> Self {
        Planes {
            images: shape[0],
            channels: shape[1],
            plane: shape[2..].iter().product(),
        }
    }

    fn count(&self) -> f64 {
        (self.images * self.plane) as f64
    }

    /// Plane `(n, c)` of `x`.
    fn plane<'a>(&self, x: &'a [f32], n: usize, c: usize) -> &'a [f32] {
        let start = (n * self.channels + c) * self.plane;
        &x[start..start + self.plane]
    }
}

/// Each channel's batch mean and biased variance.
pub fn batch_statistics(x: &[f32], planes: Planes) -> (Vec<f32>, Vec<f32>) {
    let per_channel: Vec<(f32, f32)> = (0..planes.channels)
        .into_par_iter()
        .map(|c| {
            // Chan, Golub & LeVeque's merge of (count, mean, M2) over the planes, in f64. Each
            // plane's sum is taken about the channel's first value (a pilot), so that a large
            // common offset does not cost the f32 lanes their digits.
            let (mut count, mut mean, mut m2) = (0f64, 0f64, 0f64);
            let plane_count = planes.plane as f64;
            let pilot = planes.plane(x, 0, c).first().copied().unwrap_or(0.0);
            for n in 0..planes.images {
                let values = planes.plane(x, n, c);
                let offset = lanes::centred_sum(values, pilot) / planes.plane as f32;
                let plane_mean = pilot + offset;
                let plane_m2 = lanes::centred_squares(values, plane_mean) as f64;
                let plane_mean = pilot as f64 + offset as f64;
                let total = count + plane_count;
                let delta = plane_mean - mean;
                mean += delta * plane_count / total;
                m2 += plane_m2 + delta * delta * count * plane_count / total;
                count = total;
            }
            (mean as f32, (m2 / count) as f32)
        })
        .collect();
    per_channel.into_iter().unzip()
}

/// `y = (x - mean_c) scale_c + beta_c`, image by image (centred first: with a large mean,
/// `x scale + (beta - mean scale)` would cancel away digits).
fn centre_and_scale(
    x: &[f32],
    planes: Planes,
    mean: &[f32],
    scale: &[f32],
    beta: &[f32],
) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    let image = planes.channels * planes.plane;
    out.par_chunks_mut(image)
        .zip(x.par_chunks(image))
        .for_each(|(out, x)| {
            for c in 0..planes.channels {
                let range = c * planes.plane..(c + 1) * planes.plane;
                let (m, a, b) = (mean[c], scale[c], beta[c]);
                for (y, &v) in out[range.clone()].iter_mut().zip(&x[range]) {
                    *y = (v - m) * a + b;
                }
            }
        });
    out
}

/// `1 / sqrt(var + ε)` per channel, in `f64` then rounded.
fn inverse_std(variance: &[f32], epsilon: f64) -> Vec<f32> {
    variance
        .iter()
        .map(|&v| (1.0 / (v as f64 + epsilon).sqrt()) as f32)
        .collect()
}

/// Training forward: the normalised output and the batch's mean and biased variance.
pub fn train_forward(
    x: &[f32],
    planes: Planes,
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (mean, variance) = batch_statistics(x, planes);
    let output = normalise(x, planes, gamma, beta, &mean, &variance, epsilon);
    (output, mean, variance)
}

/// `γ (x - mean) / sqrt(var + ε) + β` with given statistics (inference: the running ones).
pub fn normalise(
    x: &[f32],
    planes: Planes,
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    variance: &[f32],
    epsilon: f64,
) -> Vec<f32> {
    let inv_std = inverse_std(variance, epsilon);
    let scale: Vec<f32> = gamma.iter().zip(&inv_std).map(|(g, s)| g * s).collect();
    centre_and_scale(x, planes, mean, &scale, beta)
}

/// The gradients `(dx, dγ, dβ)` of [`train_forward`] given `dy`.
pub fn train_backward(
    x: &[f32],
    dy: &[f32],
    planes: Planes,
    gamma: &[f32],
    mean: &[f32],
    variance: &[f32],
    epsilon: f64,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let inv_std = inverse_std(variance, epsilon);
    // Σ dy and Σ dy (x - mean) per channel; Σ dy x̂ = inv_std Σ dy (x - mean).
    let sums: Vec<(f64, f64)> = (0..planes.channels)
        .into_par_iter()
        .map(|c| {
            let (mut dy_sum, mut dy_centred) = (0f64, 0f64);
            for n in 0..planes.images {
                let (x, dy) = (planes.plane(x, n, c), planes.plane(dy, n, c));
                let s = lanes::sum(dy);
                dy_sum += s as f64;
                dy_centred += lanes::centred_dot(dy, x, mean[c]) as f64;
            }
            (dy_sum, dy_centred)
        })
        .collect();
    let count = planes.count();
    let beta_grad: Vec<f32> = sums.iter().map(|s| s.0 as f32).collect();
    let gamma_grad: Vec<f32> = sums
        .iter()
        .zip(&inv_std)
        .map(|(s, &inv)| (s.1 * inv as f64) as f32)
        .collect();
    // dx = a dy + b (x - mean) + k with a = γ inv_std, b = -γ inv_std^3 Σ dy (x - mean) / M,
    // k = -a Σ dy / M.
    let (mut a, mut b, mut k) = (Vec::new(), Vec::new(), Vec::new());
    for c in 0..planes.channels {
        let inv = inv_std[c] as f64;
        let ac = gamma[c] as f64 * inv;
        a.push(ac as f32);
        b.push((-ac * inv * inv * sums[c].1 / count) as f32);
        k.push((-ac * sums[c].0 / count) as f32);
    }
    let mut dx = vec![0f32; x.len()];
    let image = planes.channels * planes.plane;
    dx.par_chunks_mut(image)
        .zip(x.par_chunks(image).zip(dy.par_chunks(image)))
        .for_each(|(dx, (x, dy))| {
            for c in 0..planes.channels {
                let range = c * planes.plane..(c + 1) * planes.plane;
                let (ac, bc, kc, m) = (a[c], b[c], k[c], mean[c]);
                for ((d, &g), &v) in dx[range.clone()]
                    .iter_mut()
                    .zip(&dy[range.clone()])
                    .zip(&x[range])
                {
                    *d = ac * g + bc * (v - m) + kc;
                }
            }
        });
    (dx, gamma_grad, beta_grad)
}

/// The autodiff node of a fused training batch norm: `x`, `γ` and `β` as parents.
#[derive(Debug)]
struct FusedBatchNormBackward;

/// What the backward keeps: `x`, `γ`, the batch statistics, ε and the layout.
type BackwardState = (FlexTensor, FlexTensor, Vec<f32>, Vec<f32>, f64, Planes);

impl Backward<Flex, 3> for FusedBatchNormBackward {
    type State = BackwardState;

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let dy = contiguous(grads.consume::<Flex>(&ops.node));
        let (x, gamma, mean, variance, epsilon, planes) = ops.state;
        let (dx, gamma_grad, beta_grad) = train_backward(
            values(&x),
            values(&dy),
            planes,
            values(&gamma),
            &mean,
            &variance,
            epsilon,
        );
        let shape = x.layout().shape().to_vec();
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, flex_tensor(dx, shape));
        }
        if let Some(node) = node_gamma {
            grads.register::<Flex>(node.id, flex_tensor(gamma_grad, vec![planes.channels]));
        }
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, flex_tensor(beta_grad, vec![planes.channels]));
        }
    }
}

/// Training forward on autodiff flex, recorded as one node: output, batch mean, variance.
fn tracked_train(
    x: TrackedTensor,
    gamma: TrackedTensor,
    beta: TrackedTensor,
    epsilon: f64,
) -> (TrackedTensor, FlexTensor, FlexTensor) {
    let (x_host, gamma_host, beta_host) = (
        contiguous(inner(&x)),
        contiguous(inner(&gamma)),
        contiguous(inner(&beta)),
    );
    let shape = x_host.layout().shape().to_vec();
    let planes = Planes::of(&shape);
    let (output, mean, variance) = train_forward(
        values(&x_host),
        planes,
        values(&gamma_host),
        values(&beta_host),
        epsilon,
    );
    let output = flex_tensor(output, shape);
    let statistics = (
        flex_tensor(mean.clone(), vec![planes.channels]),
        flex_tensor(variance.clone(), vec![planes.channels]),
    );
    let node = match FusedBatchNormBackward
        .prepare::<NoCheckpointing>([x.node(), gamma.node(), beta.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(
            (x_host, gamma_host, mean, variance, epsilon, planes),
            output,
        ),
        OpsKind::UnTracked(prep) => prep.finish(output),
    };
    (node, statistics.0, statistics.1)
}

/// `bn` applied to `x` as burn's `BatchNorm::forward` does (batch statistics and a running
/// statistics update when `x` is on an autodiff device and the layer trains, the running
/// statistics otherwise), through the fused kernels on flex and burn's own op elsewhere.
pub fn batch_norm<const D: usize>(bn: &BatchNorm, x: Tensor<D>) -> Tensor<D> {
    // An empty batch has no statistics: burn's op decides what that gives.
    if !repsim_kernels() || x.shape().num_elements() == 0 {
        return bn.forward(x);
    }
    let training = x.device().is_autodiff() && bn.training.is_enabled();
    match (OnFlex::of(&x), training) {
        (Some(OnFlex::Tracked(x_flex)), true) => {
            let (Some(OnFlex::Tracked(gamma)), Some(OnFlex::Tracked(beta))) =
                (OnFlex::of(&bn.gamma.val()), OnFlex::of(&bn.beta.val()))
            else {
                return bn.forward(x);
            };
            let device = x.device();
            let (output, mean, variance) = tracked_train(x_flex, gamma, beta, bn.epsilon);
            // As burn's BatchNorm::forward_train: running = (1 - momentum) running + momentum batch.
            let update = |running: Tensor<1>, batch: FlexTensor| {
                let batch = tracked_tensor::<1>(untracked(batch));
                running
                    .mul_scalar(1.0 - bn.momentum)
                    .add(batch.detach().mul_scalar(bn.momentum))
                    .detach()
            };
            let running_mean = bn.running_mean.value_sync().to_device(&device);
            let running_var = bn.running_var.value_sync().to_device(&device);
            bn.running_mean.update(update(running_mean, mean));
            bn.running_var.update(update(running_var, variance));
            tracked_tensor(output)
        }
        (Some(OnFlex::Plain(x_flex)), false) => {
            let plain = |t: Tensor<1>| match OnFlex::of(&t) {
                Some(OnFlex::Plain(t)) => Some(contiguous(t)),
                _ => None,
            };
            let (Some(gamma), Some(beta), Some(mean), Some(variance)) = (
                plain(bn.gamma.val()),
                plain(bn.beta.val()),
                plain(bn.running_mean.value()),
                plain(bn.running_var.value()),
            ) else {
                return bn.forward(x);
            };
            let x_host = contiguous(x_flex);
            let shape = x_host.layout().shape().to_vec();
            let output = normalise(
                values(&x_host),
                Planes::of(&shape),
                values(&gamma),
                values(&beta),
                values(&mean),
                values(&variance),
                bn.epsilon,
            );
            plain_tensor(flex_tensor(output, shape))
        }
        _ => bn.forward(x),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::BatchNormConfig;
    use burn::tensor::{Device, Distribution};

    use crate::kernels::test_support::relative_difference;

    /// Two batch norms of `channels` with the same non-trivial γ, β and running statistics,
    /// sharing nothing (clones would share their running statistics).
    fn twin_layers(channels: usize, device: &Device) -> (BatchNorm, BatchNorm) {
        let random =
            |mean: f64| Tensor::<1>::random([channels], Distribution::Normal(mean, 0.5), device);
        let trainable = |t: Tensor<1>| {
            if device.is_autodiff() {
                t.require_grad()
            } else {
                t
            }
        };
        let (gamma, beta, mean) = (random(1.0), random(0.0), random(0.3));
        let var = random(1.0).abs() + 0.1;
        let build = || {
            let mut bn = BatchNormConfig::new(channels).init(device);
            bn.gamma = bn.gamma.map(|_| trainable(gamma.clone()));
            bn.beta = bn.beta.map(|_| trainable(beta.clone()));
            bn.running_mean.update(mean.clone());
            bn.running_var.update(var.clone());
            bn
        };
        (build(), build())
    }

    /// Shapes the models use, odd sizes, batch 1, a moderate offset.
    fn inputs(device: &Device) -> Vec<Tensor<4>> {
        [[3, 4, 5, 7], [1, 3, 4, 4], [8, 2, 1, 1], [2, 16, 8, 8]]
            .into_iter()
            .map(|shape| Tensor::random(shape, Distribution::Normal(0.0, 1.0), device))
            .chain([Tensor::random(
                [4, 3, 6, 6],
                Distribution::Normal(5.0, 0.5),
                device,
            )])
            .collect()
    }

    /// With a mean 500 standard deviations from zero, the output and the gradients agree with
    /// float64 arithmetic on the same f32 inputs (a sum of squares or an uncentred product
    /// would lose them to cancellation).
    #[test]
    fn a_large_offset_is_normalised_as_in_float64() {
        let planes = Planes {
            images: 4,
            channels: 2,
            plane: 37,
        };
        let len = planes.images * planes.channels * planes.plane;
        let x: Vec<f32> = (0..len)
            .map(|i| 50.0 + ((i * 7919) % 101) as f32 / 500.0 - 0.1)
            .collect();
        let dy: Vec<f32> = (0..len)
            .map(|i| ((i * 31) % 23) as f32 / 11.0 - 1.0)
            .collect();
        let (gamma, beta, epsilon) = ([1.5f32, 0.5], [0.2f32, -0.1], 1e-5);
        let (out, mean, variance) = train_forward(&x, planes, &gamma, &beta, epsilon);
        let (dx, gamma_grad, _) =
            train_backward(&x, &dy, planes, &gamma, &mean, &variance, epsilon);
        for c in 0..2 {
            let indices: Vec<usize> = (0..planes.images)
                .flat_map(|n| (0..planes.plane).map(move |i| (n * 2 + c) * planes.plane + i))
                .collect();
            let m = indices.len() as f64;
            let mu = indices.iter().map(|&i| x[i] as f64).sum::<f64>() / m;
            let var = indices
                .iter()
                .map(|&i| (x[i] as f64 - mu).powi(2))
                .sum::<f64>()
                / m;
            let inv = 1.0 / (var + epsilon).sqrt();
            let xhat = |i: usize| (x[i] as f64 - mu) * inv;
            let dy_sum: f64 = indices.iter().map(|&i| dy[i] as f64).sum();
            let dy_xhat: f64 = indices.iter().map(|&i| dy[i] as f64 * xhat(i)).sum();
            assert!((mean[c] as f64 - mu).abs() <= 1e-6 * mu.abs());
            assert!(
                (variance[c] as f64 - var).abs() <= 1e-4 * var,
                "{} vs {var}",
                variance[c]
            );
            assert!((gamma_grad[c] as f64 - dy_xhat).abs() <= 1e-4 * dy_xhat.abs().max(1.0));
            for &i in &indices {
                let y = gamma[c] as f64 * xhat(i) + beta[c] as f64;
                assert!(
                    (out[i] as f64 - y).abs() <= 1e-4,
                    "output {} vs {y}",
                    out[i]
                );
                let g = gamma[c] as f64 * inv * (dy[i] as f64 - dy_sum / m - xhat(i) * dy_xhat / m);
                assert!(
                    (dx[i] as f64 - g).abs() <= 1e-4 * inv,
                    "dx {} vs {g}",
                    dx[i]
                );
            }
        }
    }

    #[test]
    fn training_forward_gradients_and_running_statistics_match_burns() {
        let device = Device::flex().autodiff();
        for x in inputs(&device) {
            let shape = x.dims();
            let (ours_layer, burns_layer) = twin_layers(shape[1], &device);
            let x = x.require_grad();
            let ours = batch_norm(&ours_layer, x.clone());
            let ours_running = (
                ours_layer.running_mean.value(),
                ours_layer.running_var.value(),
            );
            let burns = burns_layer.forward(x.clone());
            let burns_running = (
                burns_layer.running_mean.value(),
                burns_layer.running_var.value(),
            );
            let d = relative_difference(ours.clone(), burns.clone());
            assert!(d <= 1e-5, "{shape:?}: outputs differ by {d}");
            let d = relative_difference(ours_running.0, burns_running.0)
                .max(relative_difference(ours_running.1, burns_running.1));
            assert!(d <= 1e-5, "{shape:?}: running statistics differ by {d}");
            let weights = burns.random_like(Distribution::Normal(0.0, 1.0));
            let ours = (ours * weights.clone()).sum().backward();
            let burns = (burns * weights).sum().backward();
            let d = relative_difference(
                x.grad(&ours).expect("ours"),
                x.grad(&burns).expect("burn's"),
            );
            assert!(d <= 1e-5, "{shape:?}: input gradients differ by {d}");
            let params = [
                ("gamma", &ours_layer.gamma, &burns_layer.gamma),
                ("beta", &ours_layer.beta, &burns_layer.beta),
            ];
            for (what, a, b) in params {
                let d = relative_difference(
                    a.val().grad(&ours).expect("ours"),
                    b.val().grad(&burns).expect("burn's"),
                );
                assert!(d <= 1e-5, "{shape:?}: {what} gradients differ by {d}");
            }
        }
    }

    #[test]
    fn inference_matches_burns() {
        let device = Device::flex();
        for x in inputs(&device) {
            let (bn, _) = twin_layers(x.dims()[1], &device);
            let d = relative_difference(batch_norm(&bn, x.clone()), bn.forward(x.clone()));
            assert!(d <= 1e-5, "{:?}: outputs differ by {d}", x.dims());
        }
    }

    #[test]
    fn a_two_dimensional_input_trains_as_burns() {
        let device = Device::flex().autodiff();
        let (ours, burns) = twin_layers(5, &device);
        let x = Tensor::<2>::random([7, 5], Distribution::Normal(0.0, 2.0), &device);
        let d = relative_difference(batch_norm(&ours, x.clone()), burns.forward(x));
        assert!(d <= 1e-5, "outputs differ by {d}");
    }
}
