//! The wgpu code paths, on whatever wgpu adapter the machine has: a real GPU, or the
//! software Vulkan adapter (lavapipe, from mesa-vulkan-drivers) on machines without one.
//!
//! With no adapter at all the tests say so and pass, unless `REPSIM_REQUIRE_WGPU=1` (set by
//! `.ci/run`, which installs lavapipe), where a missing adapter fails them.

use std::path::PathBuf;

use burn::tensor::Device;
use repsim::device::{select_device, DeviceChoice};
use repsim::similarity::{
    linear_cka, linear_cka_debiased, linear_cka_matrix, rbf_cka, read_activations, HsicEstimator,
    Layer, MinibatchCka,
};

fn fixtures() -> PathBuf {
    std::env::var_os("REPSIM_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures"))
}

fn wgpu_device() -> Option<Device> {
    match select_device(DeviceChoice::Wgpu) {
        Ok(selected) => {
            eprintln!("wgpu tests run on {selected}");
            Some(selected.device)
        }
        Err(e) if std::env::var("REPSIM_REQUIRE_WGPU").as_deref() != Ok("1") => {
            eprintln!("no wgpu adapter, wgpu tests not run: {e}");
            None
        }
        Err(e) => panic!("REPSIM_REQUIRE_WGPU=1 but no wgpu adapter: {e}"),
    }
}

fn load(name: &str, device: &Device) -> burn::tensor::Tensor<2> {
    read_activations(&fixtures().join(name))
        .unwrap()
        .remove(0)
        .into_layer(device)
        .matrix
}

/// Conditioning runs on the GPU path too: a tiny scale or a large offset does not change CKA.
#[test]
fn tiny_and_offset_layers_on_wgpu() {
    let Some(device) = wgpu_device() else { return };
    let x = load("kornblith_demo_x.npy", &device);
    let y = load("kornblith_demo_y.npy", &device);
    for (what, x) in [
        ("x * 1e-20", x.clone().mul_scalar(1e-20)),
        ("x + 1e4", x.clone().add_scalar(1e4)),
        ("x * 1e20", x.mul_scalar(1e20)),
    ] {
        let linear = linear_cka(&x, &y).unwrap();
        assert!(
            (linear - 0.557613).abs() < 1e-4,
            "linear CKA of {what}: {linear}"
        );
        let rbf = rbf_cka(&x, &y, 0.5).unwrap();
        assert!((rbf - 0.654831).abs() < 1e-4, "RBF CKA of {what}: {rbf}");
    }
}

#[test]
fn reference_values_and_flex_agreement_on_wgpu() {
    let Some(device) = wgpu_device() else { return };
    let x = load("kornblith_demo_x.npy", &device);
    let y = load("kornblith_demo_y.npy", &device);
    for (what, got, want) in [
        ("linear CKA", linear_cka(&x, &y).unwrap(), 0.557613),
        (
            "debiased linear CKA",
            linear_cka_debiased(&x, &y).unwrap(),
            0.513456,
        ),
        ("RBF CKA", rbf_cka(&x, &y, 0.5).unwrap(), 0.654831),
    ] {
        assert!((got - want).abs() < 1e-4, "{what} on wgpu: {got} vs {want}");
    }
    let a = load("svcca_svhn_model0_layer6.npy", &device);
    let b = load("svcca_svhn_model1_layer6.npy", &device);
    let svhn = linear_cka(&a, &b).unwrap();
    assert!(
        (svhn - 0.872379).abs() < 1e-4,
        "SVHN linear CKA on wgpu: {svhn}"
    );

    // Minibatch CKA over 4 batches of 250 and the Gram-space whole-data path, against flex.
    let flex = Device::flex();
    let layers = |device: &Device| {
        vec![
            Layer::new("svhn0", load("svcca_svhn_model0_layer6.npy", device)).unwrap(),
            Layer::new("svhn1", load("svcca_svhn_model1_layer6.npy", device)).unwrap(),
        ]
    };
    let minibatch = |layers: &[Layer]| {
        let mut cka = MinibatchCka::new();
        for s in 0..4 {
            let batch: Vec<Layer> = layers.iter().map(|l| l.rows(s * 250, 250)).collect();
            cka.update(&batch, &batch).unwrap();
        }
        cka.finish().unwrap()
    };
    let (on_gpu, on_cpu) = (minibatch(&layers(&device)), minibatch(&layers(&flex)));
    let gram_gpu = linear_cka_matrix(
        &layers(&device)[..1],
        &layers(&device),
        HsicEstimator::Unbiased,
    )
    .unwrap();
    for j in 0..2 {
        let (g, c) = (on_gpu.values[0][j].unwrap(), on_cpu.values[0][j].unwrap());
        assert!(
            (g - c).abs() < 1e-4,
            "minibatch [0][{j}]: wgpu {g} vs flex {c}"
        );
    }
    assert!((gram_gpu.values[0][1].unwrap() - 0.867853).abs() < 1e-4);
}

#[test]
fn cli_runs_on_wgpu_when_named() {
    if wgpu_device().is_none() {
        return;
    }
    let f = fixtures();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_repsim"))
        .args([
            "compare",
            f.join("kornblith_demo_x.npy").to_str().unwrap(),
            f.join("kornblith_demo_y.npy").to_str().unwrap(),
            "--device",
            "wgpu",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("device: wgpu/"), "{err}");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("0.557"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

#[test]
fn cca_family_on_wgpu_matches_flex() {
    use repsim::similarity::{
        cca, procrustes_distance, pwcca, svcca, PwccaConvention, SvdReduction,
    };
    let Some(device) = wgpu_device() else { return };
    let flex = Device::flex();
    for (a, b) in [
        ("kornblith_demo_x.npy", "kornblith_demo_y.npy"),
        (
            "svcca_svhn_model0_layer6.npy",
            "svcca_svhn_model1_layer6.npy",
        ),
    ] {
        let (xg, yg) = (load(a, &device), load(b, &device));
        let (xc, yc) = (load(a, &flex), load(b, &flex));
        let pairs = [
            (
                "cca",
                cca(&xg, &yg).unwrap().mean,
                cca(&xc, &yc).unwrap().mean,
            ),
            (
                "svcca",
                svcca(&xg, &yg, SvdReduction::Keep(0.99)).unwrap().mean,
                svcca(&xc, &yc, SvdReduction::Keep(0.99)).unwrap().mean,
            ),
            (
                "pwcca textbook",
                pwcca(&xg, &yg, PwccaConvention::Textbook).unwrap(),
                pwcca(&xc, &yc, PwccaConvention::Textbook).unwrap(),
            ),
            (
                "procrustes",
                procrustes_distance(&xg, &yg).unwrap(),
                procrustes_distance(&xc, &yc).unwrap(),
            ),
        ];
        for (what, on_gpu, on_cpu) in pairs {
            // wgpu computes the statistics in f32, flex in f64.
            assert!(
                (on_gpu - on_cpu).abs() < 5e-4,
                "{what} on {a}: wgpu {on_gpu} vs flex {on_cpu}"
            );
        }
    }
    let mean = cca(
        &load("kornblith_demo_x.npy", &device),
        &load("kornblith_demo_y.npy", &device),
    )
    .unwrap()
    .mean;
    assert!((mean - 0.731014).abs() < 1e-4, "mean CCA on wgpu: {mean}");
}

/// A small ResNet gives the same logits and activations on wgpu as on flex, with the same
/// weights (saved on flex, loaded on wgpu); batches from the data crate land on wgpu.
#[test]
fn small_resnet_on_wgpu_matches_flex() {
    use burn::data::dataloader::batcher::Batcher;
    use burn::data::dataset::Dataset;
    use repsim::data::{ChannelStats, ImageBatcher, ShapesConfig, Split};
    use repsim::model::{load_weights, save_weights, Probe, ResNetConfig};

    let Some(device) = wgpu_device() else { return };
    let flex = Device::flex();
    let config = ResNetConfig::cifar(8, 1, 10);
    let on_flex = config.init(&flex).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r8.bpk");
    save_weights(&on_flex, &path).unwrap();
    let on_wgpu = load_weights(config.init(&device).unwrap(), &path).unwrap();

    let shapes = ShapesConfig::new()
        .with_side(16)
        .with_test_len(8)
        .init(Split::Test)
        .unwrap();
    let items: Vec<_> = (0..8).map(|i| shapes.get(i).unwrap()).collect();
    let batcher = ImageBatcher::new(ChannelStats::IDENTITY);
    let x_flex = batcher.batch(items.clone(), &flex).images;
    let x_wgpu = batcher.batch(items, &device).images;
    let (logits_flex, acts_flex) = on_flex.forward_probed(x_flex, &Probe::Blocks).unwrap();
    let (logits_wgpu, acts_wgpu) = on_wgpu.forward_probed(x_wgpu, &Probe::Blocks).unwrap();
    assert_eq!(acts_flex.names(), acts_wgpu.names());
    let a: Vec<f32> = logits_flex.into_data().try_to_vec().unwrap();
    let b: Vec<f32> = logits_wgpu.into_data().try_to_vec().unwrap();
    let scale = a.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-3);
    let diff = a
        .iter()
        .zip(&b)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(
        diff / scale < 1e-3,
        "logits differ by {diff} (scale {scale})"
    );
}
