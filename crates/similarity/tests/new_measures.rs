//! The neighbourhood, RSA and shape measures (mutual_knn, cknna, rsa, shape_angular) against
//! the float64 reference `shared/reference/simref.py` on the fixtures and on deterministic
//! data (`tests/reference/new_measures.py` prints every expected value below), and their
//! invariances: kNN measures under row scaling and a shared rotation, RSA (Spearman) under
//! monotone maps of the RDM, the shape distance symmetric, zero on rotated copies and a metric.

mod common;

use burn::tensor::{Device, Tensor, TensorData};
use common::{assert_close, fixture};
use repsim_similarity::cknna::{cknna, CknnaParams};
use repsim_similarity::mutual_knn::mutual_knn;
use repsim_similarity::rsa::{rdm_correlation, rdm_vector, rsa, RdmComparison, RdmKind};
use repsim_similarity::shape_metric::{shape_angular, shape_angular_with};
use repsim_similarity::{similarity_matrix, HsicEstimator, Layer, Measure};

/// The formula data of `new_measures.py`: float32 values of a smooth function.
fn formula(n: usize, d: usize, seed: f64, device: &Device) -> Layer {
    let values: Vec<f32> = (0..n * d)
        .map(|p| {
            let (i, j) = ((p / d) as f64, (p % d) as f64);
            ((0.7 * i + 1.3 * j + seed).sin() * (0.011 * i * j + 0.5 * seed).cos()
                + 0.1 * (3.1 * i * (seed + 1.0)).sin()) as f32
        })
        .collect();
    Layer::new(
        "f",
        Tensor::<2>::from_data(TensorData::new(values, [n, d]), device),
    )
    .unwrap()
}

fn fixture_layer(name: &str, device: &Device) -> Layer {
    Layer::new(name, fixture(name, device)).unwrap()
}

fn options(normalize: bool, estimator: HsicEstimator) -> CknnaParams {
    CknnaParams {
        k: 10,
        estimator,
        normalize,
        eps: 0.0,
    }
}

/// Every measure of one case against the reference values, in the script's order.
fn check_case(name: &str, x: &Layer, y: &Layer, expected: [f64; 11]) {
    let got = [
        mutual_knn(x, y, 10).unwrap(),
        cknna(x, y, &options(false, HsicEstimator::Unbiased))
            .unwrap()
            .unwrap(),
        cknna(x, y, &options(true, HsicEstimator::Unbiased))
            .unwrap()
            .unwrap(),
        cknna(x, y, &options(true, HsicEstimator::Biased))
            .unwrap()
            .unwrap(),
        rsa(x, y, RdmKind::Correlation, RdmComparison::Spearman)
            .unwrap()
            .unwrap(),
        rsa(x, y, RdmKind::Correlation, RdmComparison::Pearson)
            .unwrap()
            .unwrap(),
        rsa(x, y, RdmKind::Euclidean, RdmComparison::Spearman)
            .unwrap()
            .unwrap(),
        rsa(x, y, RdmKind::Euclidean, RdmComparison::Pearson)
            .unwrap()
            .unwrap(),
        shape_angular(x, y, 1.0).unwrap(),
        shape_angular(x, y, 0.5).unwrap(),
        shape_angular(x, y, 0.0).unwrap(),
    ];
    let names = [
        "mutual_knn",
        "cknna",
        "cknna normalized",
        "cknna biased normalized",
        "rsa",
        "rsa pearson",
        "rsa euclidean",
        "rsa euclidean pearson",
        "shape alpha 1",
        "shape alpha 0.5",
        "shape alpha 0",
    ];
    for ((measure, got), want) in names.iter().zip(got).zip(expected) {
        // kNN measures count shared neighbours: exact (1e-12) where no near-tie flips a set.
        let tolerance = if measure.starts_with("mutual") {
            1e-12
        } else {
            1e-5
        };
        assert_close(&format!("{name}: {measure}"), got, want, tolerance);
    }
}

#[test]
fn deterministic_data_against_simref() {
    let device = Device::flex();
    check_case(
        "formula",
        &formula(300, 12, 1.0, &device),
        &formula(300, 7, 2.0, &device),
        [
            0.472666666667,
            0.493200764593,
            0.524385903516,
            0.61056564836,
            0.106677953431,
            0.208248287858,
            0.180726741069,
            0.278364563694,
            1.13454167763,
            1.13273925507,
            1.12514678751,
        ],
    );
}

#[test]
fn kornblith_demo_against_simref() {
    let device = Device::flex();
    check_case(
        "demo",
        &fixture_layer("kornblith_demo_x.npy", &device),
        &fixture_layer("kornblith_demo_y.npy", &device),
        [
            0.279,
            0.305932406634,
            0.311153267218,
            0.514172131817,
            0.472439673763,
            0.485146142771,
            0.492964696698,
            0.506585597751,
            0.743276476121,
            0.742966091678,
            0.750989603237,
        ],
    );
}

#[test]
fn svhn_against_simref() {
    let device = Device::flex();
    check_case(
        "svhn",
        &fixture_layer("svcca_svhn_model0_layer6.npy", &device),
        &fixture_layer("svcca_svhn_model1_layer6.npy", &device),
        [
            0.558,
            0.591308564695,
            0.586578732387,
            0.700762325648,
            0.824271778009,
            0.860863468751,
            0.846927490499,
            0.860421952231,
            0.666502429715,
            0.672792559412,
            0.990607073971,
        ],
    );
}

/// The README's MNIST values (`tests/fixtures/README.md`, n = 10,000): mutual kNN and CKNNA
/// (rows normalised, without the authors' +1e-6).
#[test]
fn mnist_knn_measures_at_ten_thousand_examples() {
    let device = Device::flex();
    let x = fixture_layer("svcca_mnist_model0_layer4.npy", &device);
    let y = fixture_layer("svcca_mnist_model1_layer4.npy", &device);
    assert_close(
        "mnist mutual_knn",
        mutual_knn(&x, &y, 10).unwrap(),
        0.05026,
        1e-12,
    );
    assert_close(
        "mnist cknna normalized",
        cknna(&x, &y, &options(true, HsicEstimator::Unbiased))
            .unwrap()
            .unwrap(),
        0.0423093,
        1e-6,
    );
}

/// An orthogonal matrix (a product of Givens rotations).
fn rotation(d: usize, device: &Device) -> Tensor<2> {
    let mut q = vec![0.0f32; d * d];
    for i in 0..d {
        q[i * d + i] = 1.0;
    }
    for (a, b, angle) in [(0usize, 1usize, 0.3f32), (1, 2, 1.1), (0, d - 1, -0.7)] {
        let (c, s) = (angle.cos(), angle.sin());
        for row in 0..d {
            let (x, y) = (q[row * d + a], q[row * d + b]);
            q[row * d + a] = c * x - s * y;
            q[row * d + b] = s * x + c * y;
        }
    }
    Tensor::from_data(TensorData::new(q, [d, d]), device)
}

#[test]
fn knn_measures_are_invariant_to_row_scaling_and_a_shared_rotation() {
    let device = Device::flex();
    let x = formula(200, 6, 3.0, &device);
    let y = formula(200, 9, 4.0, &device);
    // Each row scaled by its own positive factor, then the features rotated.
    let scales: Vec<f32> = (0..200).map(|i| 0.5 + (i % 7) as f32).collect();
    let scale = Tensor::<2>::from_data(TensorData::new(scales, [200, 1]), &device);
    let moved = Layer::new(
        "moved",
        x.matrix.clone().mul(scale).matmul(rotation(6, &device)),
    )
    .unwrap();
    assert_eq!(
        mutual_knn(&x, &y, 10).unwrap(),
        mutual_knn(&moved, &y, 10).unwrap()
    );
    let normalized = options(true, HsicEstimator::Unbiased);
    assert_close(
        "cknna (rows normalised) under row scaling and rotation",
        cknna(&moved, &y, &normalized).unwrap().unwrap(),
        cknna(&x, &y, &normalized).unwrap().unwrap(),
        1e-9,
    );
    // On the features as given, CKNNA is invariant to a shared rotation and a global scale.
    let rotated = Layer::new(
        "r",
        x.matrix
            .clone()
            .mul_scalar(3.0)
            .matmul(rotation(6, &device)),
    )
    .unwrap();
    let given = options(false, HsicEstimator::Unbiased);
    assert_close(
        "cknna under rotation and a global scale",
        cknna(&rotated, &y, &given).unwrap().unwrap(),
        cknna(&x, &y, &given).unwrap().unwrap(),
        1e-6,
    );
}

#[test]
fn rsa_with_spearman_ignores_monotone_maps_of_the_rdm() {
    let device = Device::flex();
    let a = rdm_vector(&formula(60, 5, 5.0, &device), RdmKind::Euclidean).unwrap();
    let b = rdm_vector(&formula(60, 8, 6.0, &device), RdmKind::Correlation).unwrap();
    let spearman = rdm_correlation(&a, &b, RdmComparison::Spearman).unwrap();
    let mapped: Vec<f64> = a.iter().map(|d| (3.0 * d).exp() + d.powi(3)).collect();
    assert_close(
        "spearman of a monotone map",
        rdm_correlation(&mapped, &b, RdmComparison::Spearman).unwrap(),
        spearman,
        1e-12,
    );
    // Pearson is not invariant to it.
    let pearson = rdm_correlation(&a, &b, RdmComparison::Pearson).unwrap();
    let mapped_pearson = rdm_correlation(&mapped, &b, RdmComparison::Pearson).unwrap();
    assert!(
        (pearson - mapped_pearson).abs() > 1e-3,
        "{pearson} {mapped_pearson}"
    );
}

#[test]
fn the_shape_distance_is_a_metric() {
    let device = Device::flex();
    let layers: Vec<Layer> = (0..4)
        .map(|s| formula(80, 6, s as f64 * 1.7, &device))
        .collect();
    for alpha in [1.0, 0.5, 0.0] {
        for x in &layers {
            // Zero on a rotated (and translated) copy.
            let copy = Layer::new(
                "copy",
                x.matrix
                    .clone()
                    .matmul(rotation(6, &device))
                    .add_scalar(2.5),
            )
            .unwrap();
            // The copy is rounded to float32 (relative 1e-7), and arccos near 1 turns a cosine
            // of 1 - e into an angle of sqrt(2 e): a few 1e-4 radians.
            let angle = shape_angular(x, &copy, alpha).unwrap();
            assert!(angle < 2e-3, "alpha {alpha}: {angle}");
            for y in &layers {
                let (xy, yx) = (
                    shape_angular(x, y, alpha).unwrap(),
                    shape_angular(y, x, alpha).unwrap(),
                );
                assert!((xy - yx).abs() < 1e-10, "symmetric at alpha {alpha}");
                for z in &layers {
                    let xz = shape_angular(x, z, alpha).unwrap();
                    let zy = shape_angular(z, y, alpha).unwrap();
                    assert!(
                        xy <= xz + zy + 1e-10,
                        "triangle inequality at alpha {alpha}"
                    );
                }
            }
        }
    }
    // alpha = 1 is Procrustes' angle: cos theta = 1 - procrustes / 2.
    let (x, y) = (&layers[0], &layers[1]);
    let procrustes = similarity_matrix(&Measure::PROCRUSTES, &[x.clone()], &[y.clone()])
        .unwrap()
        .values[0][0]
        .unwrap();
    assert_close(
        "cos of the angle at alpha 1",
        shape_angular(x, y, 1.0).unwrap().cos(),
        1.0 - procrustes / 2.0,
        1e-6,
    );
}

#[test]
fn the_matrices_equal_pairwise_calls_and_bad_parameters_are_refused() {
    let device = Device::flex();
    let a = [formula(50, 4, 1.0, &device), formula(50, 6, 2.0, &device)];
    let b = [formula(50, 5, 3.0, &device)];
    for (name, pair) in [
        ("mutual_knn", mutual_knn(&a[1], &b[0], 10).unwrap()),
        (
            "cknna",
            cknna(&a[1], &b[0], &CknnaParams::default())
                .unwrap()
                .unwrap(),
        ),
        (
            "rsa",
            rsa(&a[1], &b[0], RdmKind::Correlation, RdmComparison::Spearman)
                .unwrap()
                .unwrap(),
        ),
        ("shape_angular", shape_angular(&a[1], &b[0], 1.0).unwrap()),
    ] {
        let metric = Measure::from_name(name).unwrap();
        let matrix = similarity_matrix(&metric, &a, &b).unwrap();
        assert_eq!(matrix.values[1][0], Some(pair), "{metric}");
        assert_eq!(matrix.measure, metric);
    }
    let error = similarity_matrix(&Measure::MutualKnn { k: 50 }, &a, &b)
        .unwrap_err()
        .to_string();
    assert!(error.contains("k = 50"), "{error}");
    let alpha = Measure::ShapeAngular {
        alpha: 1.5,
        centered: true,
    };
    assert!(similarity_matrix(&alpha, &a, &b).is_err());
}

/// The peers' own values, computed by their code on the fixtures (float64 of the float32
/// files) and written down here: rsatoolbox 0.3.2 (`calc_rdm` with `euclidean`, which is
/// d^2/D, and `correlation`; `compare` with `cosine`, `corr`, `spearman`, `rho-a`, `tau-a`),
/// netrep (`LinearMetric(alpha, center_columns, zero_pad=True, score_method="angular")`, from
/// its repository, ahwillia/netrep) and platonic-rep's CKNNA with its `+1e-6`
/// (`tests/fixtures/README.md`).
mod peers {
    use super::*;

    /// rsatoolbox's five comparisons on its two RDMs, in the order above.
    const COMPARISONS: [RdmComparison; 5] = [
        RdmComparison::Cosine,
        RdmComparison::Pearson,
        RdmComparison::Spearman,
        RdmComparison::RhoA,
        RdmComparison::TauA,
    ];

    fn rsa_case(name: &str, x: &Layer, y: &Layer, msd: [f64; 5], correlation: [f64; 5]) {
        for (kind, values) in [
            (RdmKind::MeanSquaredDifference, msd),
            (RdmKind::Correlation, correlation),
        ] {
            for (compare, want) in COMPARISONS.into_iter().zip(values) {
                let got = rsa(x, y, kind, compare).unwrap().unwrap();
                // rsatoolbox forms distances from |x|^2 + |y|^2 - 2 x.y, repsim from the
                // differences: they part at 1e-9, and the order of two near-equal distances
                // may swap, which moves a rank statistic by up to 1e-7.
                let tolerance = match compare {
                    RdmComparison::Cosine | RdmComparison::Pearson => 1e-8,
                    _ => 1e-6,
                };
                assert_close(&format!("{name}: {kind} {compare}"), got, want, tolerance);
            }
        }
    }

    #[test]
    fn rsa_comparisons_match_rsatoolbox() {
        let device = Device::flex();
        rsa_case(
            "demo",
            &fixture_layer("kornblith_demo_x.npy", &device),
            &fixture_layer("kornblith_demo_y.npy", &device),
            [
                0.9277705489524429,
                0.5062321116301346,
                0.4929646966980302,
                0.4929646966980302,
                0.34015475016889446,
            ],
            [
                0.948574827978933,
                0.4851461427711329,
                0.47243967376304735,
                0.4724396737630473,
                0.3250701396670279,
            ],
        );
        rsa_case(
            "svhn",
            &fixture_layer("svcca_svhn_model0_layer6.npy", &device),
            &fixture_layer("svcca_svhn_model1_layer6.npy", &device),
            [
                0.990008175855402,
                0.8581819349535066,
                0.8469274904989473,
                0.8469274904989474,
                0.6582077710414383,
            ],
            [
                0.9964054738766995,
                0.8608634687510097,
                0.8242717780089207,
                0.8242717780089208,
                0.6331153084980741,
            ],
        );
        // A categorical model RDM (three classes, one-hot, and a constant column) against the
        // demo's y: its RDM is full of ties, where rho-a and tau-a part from Spearman.
        let n = 100;
        let mut values = vec![0f32; n * 4];
        for i in 0..n {
            values[i * 4 + i % 3] = 1.0;
            values[i * 4 + 3] = 0.5;
        }
        let categories = Layer::new(
            "categories",
            Tensor::<2>::from_data(TensorData::new(values, [n, 4]), &device),
        )
        .unwrap();
        rsa_case(
            "categories",
            &categories,
            &fixture_layer("kornblith_demo_y.npy", &device),
            [
                0.7579165198217775,
                0.009880052037445545,
                0.018933813822349183,
                0.015380349571690625,
                0.010255637808678827,
            ],
            [
                0.7827609996149364,
                0.026860132030564327,
                0.028880400260423576,
                0.023460178490365413,
                0.01564327861357564,
            ],
        );
    }

    #[test]
    fn the_shape_metric_matches_netrep_centred_and_not() {
        let device = Device::flex();
        for (name, a, b, centred, uncentred) in [
            (
                "demo",
                "kornblith_demo_x.npy",
                "kornblith_demo_y.npy",
                [0.7432764761208089, 0.7429660916775279, 0.7509896032371814],
                [0.7444608461220622, 0.7442546398886735, 0.7531964480265112],
            ),
            (
                "svhn",
                "svcca_svhn_model0_layer6.npy",
                "svcca_svhn_model1_layer6.npy",
                [0.6665024297151393, 0.6727925594116183, 0.9906070739711658],
                [0.5596110332395734, 0.567183799777915, 0.9896961889563323],
            ),
        ] {
            let (x, y) = (fixture_layer(a, &device), fixture_layer(b, &device));
            for (centered, values) in [(true, centred), (false, uncentred)] {
                for (alpha, want) in [1.0, 0.5, 0.0].into_iter().zip(values) {
                    let got = shape_angular_with(&x, &y, alpha, centered).unwrap();
                    assert_close(
                        &format!("{name}: alpha {alpha}, centred {centered}"),
                        got,
                        want,
                        1e-8,
                    );
                }
            }
        }
    }

    #[test]
    fn cknna_with_the_authors_eps_gives_their_values() {
        let device = Device::flex();
        for (a, b, want) in [
            ("kornblith_demo_x.npy", "kornblith_demo_y.npy", 0.311141),
            (
                "svcca_svhn_model0_layer6.npy",
                "svcca_svhn_model1_layer6.npy",
                0.586353,
            ),
        ] {
            let (x, y) = (fixture_layer(a, &device), fixture_layer(b, &device));
            let authors = CknnaParams {
                eps: 1e-6,
                ..CknnaParams::default()
            };
            // Six digits, as the fixtures' table gives them.
            assert_close(a, cknna(&x, &y, &authors).unwrap().unwrap(), want, 6e-7);
        }
        // The default normalises rows (the authors' pipeline, and mutual_knn's convention).
        assert!(CknnaParams::default().normalize);
        assert_eq!(
            Measure::from_name("cknna").unwrap(),
            Measure::Cknna(CknnaParams::default())
        );
    }

    /// platonic-rep's `remove_outliers(feats, q)` (its `metrics.py`, run on float64 torch
    /// tensors of the fixtures), and its mutual kNN and CKNNA (with the `+1e-6`) of the demo
    /// clipped at 0.95 and rows normalised, as its `measure_alignment.py` prepares features.
    #[test]
    fn outlier_clipping_matches_platonic_rep() {
        use repsim_similarity::outliers::{clip_outliers, outlier_threshold};
        let device = Device::flex();
        let x = fixture_layer("kornblith_demo_x.npy", &device);
        let svhn = fixture_layer("svcca_svhn_model0_layer6.npy", &device);
        for (name, layer, q, want) in [
            ("demo", &x, 0.95, 1.6566986402099304),
            ("demo", &x, 0.5, 0.703976027276697),
            ("svhn", &svhn, 0.95, 4.111321868658063),
            ("svhn", &svhn, 0.5, 0.04969598482421134),
        ] {
            let got = outlier_threshold(layer, q).unwrap();
            // The demo's file holds float64, which repsim holds as float32 (1e-8 apart).
            assert_close(&format!("{name} threshold at {q}"), got, want, 1e-8);
        }
        let y = fixture_layer("kornblith_demo_y.npy", &device);
        let (xc, yc) = (
            clip_outliers(&x, 0.95).unwrap(),
            clip_outliers(&y, 0.95).unwrap(),
        );
        assert_close(
            "mutual_knn of the clipped demo",
            mutual_knn(&xc, &yc, 10).unwrap(),
            0.289000004529953,
            1e-7,
        );
        let authors = CknnaParams {
            eps: 1e-6,
            ..CknnaParams::default()
        };
        assert_close(
            "cknna of the clipped demo",
            cknna(&xc, &yc, &authors).unwrap().unwrap(),
            0.3125481878403961,
            1e-6,
        );
    }

    /// On independent Gaussian data (k = 10, rows normalised), platonic-rep's biased CKNNA
    /// reads 0.36 at n = 100 (10 features), 0.59 at n = 500 (64) and 0.79 at n = 1,000 (200),
    /// three draws each within 0.005, where its unbiased CKNNA reads 0.01-0.09: repsim's
    /// estimators read the same on data of their own draw.
    #[test]
    fn biased_cknna_reads_high_on_independent_data() {
        use repsim_similarity::testing::random_matrix;
        let device = Device::flex();
        let layer = |seed| Layer::new("g", random_matrix(500, 64, seed, &device)).unwrap();
        let (x, y) = (layer(1), layer(2));
        let biased = CknnaParams {
            estimator: HsicEstimator::Biased,
            ..CknnaParams::default()
        };
        let high = cknna(&x, &y, &biased).unwrap().unwrap();
        assert!((0.57..0.62).contains(&high), "biased: {high}");
        let low = cknna(&x, &y, &CknnaParams::default()).unwrap().unwrap();
        assert!(low.abs() < 0.05, "unbiased: {low}");
    }
}
