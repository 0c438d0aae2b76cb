//! Properties every CKA must have, on random data (flex backend).

use burn::tensor::{Device, Tensor};
use repsim_similarity::testing::{orthogonal, random_matrix};
use repsim_similarity::{
    linear_cka, linear_cka_debiased, linear_cka_matrix, rbf_cka, rbf_cka_debiased, HsicEstimator,
    Layer, MinibatchCka,
};

type Measure = fn(&Tensor<2>, &Tensor<2>) -> f64;

fn measures() -> Vec<(&'static str, Measure)> {
    vec![
        ("linear", |x, y| linear_cka(x, y).unwrap()),
        ("linear debiased", |x, y| linear_cka_debiased(x, y).unwrap()),
        ("rbf", |x, y| rbf_cka(x, y, 1.0).unwrap()),
        ("rbf debiased", |x, y| rbf_cka_debiased(x, y, 0.5).unwrap()),
    ]
}

/// Pairs of related random layers: few features (feature-space path) and many (Gram path).
fn pairs(device: &Device) -> Vec<(Tensor<2>, Tensor<2>)> {
    [(40, 6, 9), (24, 50, 30)]
        .into_iter()
        .enumerate()
        .map(|(s, (n, dx, dy))| {
            let x = random_matrix(n, dx, 100 + s as u64, device);
            let mix = random_matrix(dx, dy, 200 + s as u64, device);
            let noise = random_matrix(n, dy, 300 + s as u64, device);
            let y = x.clone().matmul(mix).add(noise.mul_scalar(2.0));
            (x, y)
        })
        .collect()
}

#[test]
fn cka_of_a_layer_with_itself_is_one() {
    let device = Device::flex();
    for (x, _) in pairs(&device) {
        for (name, measure) in measures() {
            let v = measure(&x, &x);
            assert!((v - 1.0).abs() < 1e-5, "{name}: CKA(X, X) = {v}");
        }
    }
}

#[test]
fn cka_is_symmetric() {
    let device = Device::flex();
    for (x, y) in pairs(&device) {
        for (name, measure) in measures() {
            let (xy, yx) = (measure(&x, &y), measure(&y, &x));
            assert!((xy - yx).abs() < 1e-5, "{name}: {xy} vs {yx}");
        }
    }
}

#[test]
fn cka_is_invariant_to_orthogonal_maps_and_isotropic_scaling() {
    let device = Device::flex();
    for (x, y) in pairs(&device) {
        let q = orthogonal(x.dims()[1], 7, &device);
        let rotated_scaled = x.clone().matmul(q).mul_scalar(3.7);
        for (name, measure) in measures() {
            let (before, after) = (measure(&x, &y), measure(&rotated_scaled, &y));
            assert!((before - after).abs() < 1e-4, "{name}: {before} vs {after}");
        }
    }
}

#[test]
fn biased_cka_lies_in_zero_one() {
    let device = Device::flex();
    for seed in 0..6 {
        let x = random_matrix(30, 5 + seed as usize, seed, &device);
        let y = random_matrix(30, 40, seed + 50, &device);
        for v in [linear_cka(&x, &y).unwrap(), rbf_cka(&x, &y, 1.0).unwrap()] {
            assert!((0.0..=1.0 + 1e-6).contains(&v), "{v}");
        }
    }
}

#[test]
fn matrix_entries_equal_pairwise_calls() {
    let device = Device::flex();
    let xs: Vec<Tensor<2>> = vec![
        random_matrix(36, 4, 1, &device),
        random_matrix(36, 60, 2, &device),
        random_matrix(36, 10, 3, &device).abs(),
    ];
    let layers: Vec<Layer> = xs
        .iter()
        .enumerate()
        .map(|(i, x)| Layer::new(format!("l{i}"), x.clone()).unwrap())
        .collect();
    for estimator in [HsicEstimator::Biased, HsicEstimator::Unbiased] {
        let other = linear_cka_matrix(&layers[1..], &layers, estimator).unwrap();
        let itself = linear_cka_matrix(&layers, &layers, estimator).unwrap();
        for i in 0..3 {
            for j in 0..3 {
                let pair = match estimator {
                    HsicEstimator::Biased => linear_cka(&xs[i], &xs[j]).unwrap(),
                    HsicEstimator::Unbiased => linear_cka_debiased(&xs[i], &xs[j]).unwrap(),
                };
                assert!(
                    (itself.values[i][j].unwrap() - pair).abs() < 1e-5,
                    "{estimator:?} [{i}][{j}]"
                );
                if i > 0 {
                    assert!((other.values[i - 1][j].unwrap() - pair).abs() < 1e-5);
                }
            }
        }
    }
}

#[test]
fn minibatch_with_one_batch_equals_debiased_cka() {
    let device = Device::flex();
    for (x, y) in pairs(&device) {
        let mut cka = MinibatchCka::new();
        cka.update(
            &[Layer::new("x", x.clone()).unwrap()],
            &[Layer::new("y", y.clone()).unwrap()],
        )
        .unwrap();
        let (mb, debiased) = (
            cka.finish().unwrap().values[0][0].unwrap(),
            linear_cka_debiased(&x, &y).unwrap(),
        );
        assert!((mb - debiased).abs() < 1e-4, "{mb} vs {debiased}");
    }
}
