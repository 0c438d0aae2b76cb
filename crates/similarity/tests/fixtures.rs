//! The reference values of `shared/fixtures/README.md` (float64 numpy, checked against the
//! published implementations), through the library on the flex CPU backend.

mod common;

use burn::tensor::Device;
use common::{assert_close, fixture};
use repsim_similarity::gram::linear_gram;
use repsim_similarity::{
    cka_from_grams, linear_cka, linear_cka_debiased, rbf_cka, HsicEstimator, Layer, MinibatchCka,
};

const TOLERANCE: f64 = 1e-4;

#[test]
fn kornblith_demo_linear_rbf_and_debiased() {
    let device = Device::flex();
    let x = fixture("kornblith_demo_x.npy", &device);
    let y = fixture("kornblith_demo_y.npy", &device);
    assert_close(
        "linear CKA",
        linear_cka(&x, &y).unwrap(),
        0.557613,
        TOLERANCE,
    );
    assert_close(
        "RBF CKA t=0.5",
        rbf_cka(&x, &y, 0.5).unwrap(),
        0.654831,
        TOLERANCE,
    );
    assert_close(
        "debiased linear CKA",
        linear_cka_debiased(&x, &y).unwrap(),
        0.513456,
        TOLERANCE,
    );
    // The same values through explicit n x n Grams (the Gram-space path).
    let (k, l) = (linear_gram(x.clone()), linear_gram(y.clone()));
    assert_close(
        "linear CKA from Grams",
        cka_from_grams(k.clone(), l.clone(), HsicEstimator::Biased).unwrap(),
        0.557613,
        TOLERANCE,
    );
    assert_close(
        "debiased CKA from Grams",
        cka_from_grams(k, l, HsicEstimator::Unbiased).unwrap(),
        0.513456,
        TOLERANCE,
    );
    // Minibatch CKA with one batch of all 100 examples is debiased linear CKA.
    let mut cka = MinibatchCka::new();
    cka.update(
        &[Layer::new("x", x).unwrap()],
        &[Layer::new("y", y).unwrap()],
    )
    .unwrap();
    assert_close(
        "minibatch CKA, one batch",
        cka.finish().unwrap().values[0][0].unwrap(),
        0.513456,
        TOLERANCE,
    );
}

#[test]
fn svcca_mnist_logits_linear_cka() {
    let device = Device::flex();
    let a = fixture("svcca_mnist_model0_layer4.npy", &device);
    let b = fixture("svcca_mnist_model1_layer4.npy", &device);
    assert_close(
        "MNIST linear CKA",
        linear_cka(&a, &b).unwrap(),
        0.437452,
        TOLERANCE,
    );
}

#[test]
fn svcca_svhn_fc_linear_and_debiased() {
    let device = Device::flex();
    let a = fixture("svcca_svhn_model0_layer6.npy", &device);
    let b = fixture("svcca_svhn_model1_layer6.npy", &device);
    assert_close(
        "SVHN linear CKA",
        linear_cka(&a, &b).unwrap(),
        0.872379,
        TOLERANCE,
    );
    assert_close(
        "SVHN debiased CKA",
        linear_cka_debiased(&a, &b).unwrap(),
        0.867853,
        TOLERANCE,
    );
}
