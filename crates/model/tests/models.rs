//! Shapes, parameter counts, names and weights of every model family, on flex.

use burn::tensor::{Device, Distribution, Int, Tensor};
use repsim_model::*;

fn device() -> Device {
    Device::flex()
}

fn images(n: usize, side: usize) -> Tensor<4> {
    Tensor::random(
        [n, 3, side, side],
        Distribution::Normal(0.0, 1.0),
        &device(),
    )
}

fn max_abs_diff(a: Tensor<2>, b: Tensor<2>) -> f32 {
    (a - b).abs().max().into_scalar::<f32>()
}

#[test]
fn cifar_resnet20_has_the_published_parameter_counts() {
    let projection = ResNetConfig::cifar(20, 1, 10).init(&device()).unwrap();
    assert_eq!(count_parameters(&projection), 272_474);
    let zero_pad = ResNetConfig::cifar(20, 1, 10)
        .with_shortcut(Shortcut::ZeroPad)
        .init(&device())
        .unwrap();
    assert_eq!(count_parameters(&zero_pad), 269_722);
}

/// Parameters of a CIFAR ResNet with basic blocks and projection shortcuts, by the formula:
/// stem conv + BN, per block two 3x3 convs + two BNs, a 1x1 projection + BN where the shape
/// changes, and the classifier.
fn cifar_basic_formula(depth: usize, k: usize, classes: usize) -> usize {
    let n = (depth - 2) / 6;
    let widths = [16 * k, 32 * k, 64 * k];
    let mut total = 3 * 9 * 16 * k + 2 * 16 * k;
    let mut cin = 16 * k;
    for &c in &widths {
        for b in 0..n {
            let input = if b == 0 { cin } else { c };
            total += input * 9 * c + 2 * c + c * 9 * c + 2 * c;
            if b == 0 && input != c {
                total += input * c + 2 * c;
            }
        }
        cin = c;
    }
    total + 64 * k * classes + classes
}

/// The same for bottleneck blocks (9n+2): 1x1 reduce, 3x3, 1x1 expand by 4, each with a BN.
fn cifar_bottleneck_formula(depth: usize, k: usize, classes: usize) -> usize {
    let n = (depth - 2) / 9;
    let mut total = 3 * 9 * 16 * k + 2 * 16 * k;
    let mut cin = 16 * k;
    for p in [16 * k, 32 * k, 64 * k] {
        let out = 4 * p;
        for b in 0..n {
            let input = if b == 0 { cin } else { out };
            total += input * p + 2 * p + 9 * p * p + 2 * p + p * out + 2 * out;
            if b == 0 {
                total += input * out + 2 * out;
            }
        }
        cin = out;
    }
    total + 256 * k * classes + classes
}

#[test]
fn deeper_and_wider_cifar_resnets_follow_the_formula() {
    for (depth, k) in [(8, 1), (32, 1), (56, 2), (14, 4), (110, 1)] {
        let model = ResNetConfig::cifar(depth, k, 10).init(&device()).unwrap();
        assert_eq!(
            count_parameters(&model),
            cifar_basic_formula(depth, k, 10),
            "ResNet-{depth} x{k}"
        );
    }
    assert_eq!(cifar_basic_formula(20, 1, 10), 272_474);
    // Bottleneck (9n+2): ResNet-29 has n = 3 bottlenecks per stage.
    for (depth, k) in [(29, 1), (20, 2)] {
        let model = ResNetConfig::cifar(depth, k, 10)
            .with_block(Some(BlockKind::Bottleneck))
            .init(&device())
            .unwrap();
        assert_eq!(
            count_parameters(&model),
            cifar_bottleneck_formula(depth, k, 10),
            "bottleneck ResNet-{depth} x{k}"
        );
    }
    assert!(ResNetConfig::cifar(21, 1, 10).init(&device()).is_err());
    assert!(ResNetConfig::cifar(20, 0, 10).init(&device()).is_err());
}

#[test]
fn imagenet_resnets_match_torchvision_parameter_counts() {
    for (depth, params) in [
        (18, 11_689_512),
        (34, 21_797_672),
        (50, 25_557_032),
        (101, 44_549_160),
        (152, 60_192_808),
    ] {
        let model = ResNetConfig::imagenet(depth, 1000).init(&device()).unwrap();
        assert_eq!(count_parameters(&model), params, "ResNet-{depth}");
    }
    assert!(ResNetConfig::imagenet(20, 1000).init(&device()).is_err());
}

#[test]
fn resnet20_activation_names_and_shapes() {
    let model = ResNetConfig::cifar(20, 1, 10).init(&device()).unwrap();
    let (logits, blocks) = model.forward_probed(images(2, 32), &Probe::Blocks).unwrap();
    assert_eq!(logits.dims(), [2, 10]);
    let mut expected = vec!["stem".to_string()];
    for s in 1..=3 {
        for b in 1..=3 {
            expected.push(format!("stage{s}.block{b}.out"));
        }
    }
    expected.extend(["pool".into(), "logits".into()]);
    assert_eq!(blocks.names(), expected);
    assert_eq!(blocks.get("stem").unwrap().dims(), vec![2, 16, 32, 32]);
    assert_eq!(
        blocks.get("stage2.block1.out").unwrap().dims(),
        vec![2, 32, 16, 16]
    );
    assert_eq!(
        blocks.get("stage3.block3.out").unwrap().dims(),
        vec![2, 64, 8, 8]
    );
    assert_eq!(blocks.get("pool").unwrap().dims(), vec![2, 64]);

    let (_, all) = model.forward_probed(images(2, 32), &Probe::All).unwrap();
    // Stem: conv, bn, stem. Nine blocks of 7 (conv1, bn1, relu1, conv2, bn2, add, out) and two
    // projections of 2. Then pool and logits.
    assert_eq!(all.len(), 3 + 9 * 7 + 2 * 2 + 2);
    let names = all.names();
    assert_eq!(
        &names[..6],
        &[
            "stem.conv",
            "stem.bn",
            "stem",
            "stage1.block1.conv1",
            "stage1.block1.bn1",
            "stage1.block1.relu1"
        ]
    );
    assert!(names.contains(&"stage2.block1.shortcut.conv"));
    assert!(!names.contains(&"stage2.block2.shortcut.conv"));
    for name in blocks.names() {
        assert!(names.contains(&name), "{name} is in Blocks but not All");
    }
    let position = |n: &str| names.iter().position(|x| *x == n).unwrap();
    assert!(position("stage1.block3.out") < position("stage2.block1.conv1"));
}

#[test]
fn probing_does_not_change_the_output() {
    let model = ResNetConfig::cifar(8, 1, 10).init(&device()).unwrap();
    let x = images(3, 16);
    let plain = model.forward(x.clone());
    for probe in [
        Probe::None,
        Probe::Blocks,
        Probe::All,
        Probe::Names(vec!["stage2.block1.out".into()]),
    ] {
        let (probed, _) = model.forward_probed(x.clone(), &probe).unwrap();
        assert_eq!(max_abs_diff(plain.clone(), probed), 0.0, "{probe:?}");
    }
    let (_, named) = model
        .forward_probed(
            x.clone(),
            &Probe::Names(vec!["stage3.block1.out".into(), "stem".into()]),
        )
        .unwrap();
    assert_eq!(
        named.names(),
        vec!["stem", "stage3.block1.out"],
        "forward order, not request order"
    );
    let err = model
        .forward_probed(x, &Probe::Names(vec!["stage9.block1.out".into()]))
        .unwrap_err();
    assert!(err.to_string().contains("stage9.block1.out"), "{err}");
}

#[test]
fn zero_pad_shortcut_runs_and_projection_names_disappear() {
    let model = ResNetConfig::cifar(8, 2, 10)
        .with_shortcut(Shortcut::ZeroPad)
        .init(&device())
        .unwrap();
    let (logits, all) = model.forward_probed(images(2, 16), &Probe::All).unwrap();
    assert_eq!(logits.dims(), [2, 10]);
    assert!(all.names().iter().all(|n| !n.contains("shortcut")));
    assert_eq!(
        all.get("stage3.block1.out").unwrap().dims(),
        vec![2, 128, 4, 4]
    );
}

#[test]
fn imagenet_layout_with_either_stem() {
    let r18 = ResNetConfig::imagenet(18, 10).init(&device()).unwrap();
    let (logits, acts) = r18.forward_probed(images(1, 64), &Probe::Blocks).unwrap();
    assert_eq!(logits.dims(), [1, 10]);
    assert_eq!(acts.get("stem").unwrap().dims(), vec![1, 64, 16, 16]);
    assert_eq!(
        acts.get("stage4.block2.out").unwrap().dims(),
        vec![1, 512, 2, 2]
    );
    let r50 = ResNetConfig::imagenet(50, 10)
        .with_stem(Some(Stem::Cifar))
        .init(&device())
        .unwrap();
    let (_, acts) = r50.forward_probed(images(1, 32), &Probe::Blocks).unwrap();
    assert_eq!(acts.get("stem").unwrap().dims(), vec![1, 64, 32, 32]);
    assert_eq!(
        acts.get("stage1.block1.out").unwrap().dims(),
        vec![1, 256, 32, 32]
    );
    assert_eq!(
        acts.get("stage4.block3.out").unwrap().dims(),
        vec![1, 2048, 4, 4]
    );
    assert_eq!(acts.len(), 1 + 16 + 2);
}

#[test]
fn plain_cnns_and_the_svcca_net() {
    let cnn = PlainCnnConfig::new()
        .with_depth(4)
        .with_width(8)
        .init(&device())
        .unwrap();
    let (logits, acts) = cnn.forward_probed(images(2, 16), &Probe::Blocks).unwrap();
    assert_eq!(logits.dims(), [2, 10]);
    assert_eq!(
        acts.names(),
        vec!["layer1", "layer2", "layer3", "layer4", "pool", "logits"]
    );
    assert_eq!(acts.get("layer3").unwrap().dims(), vec![2, 16, 8, 8]);
    let (_, all) = cnn.forward_probed(images(2, 16), &Probe::All).unwrap();
    assert!(all.names().contains(&"layer2.pool"));
    let deep = PlainCnnConfig::new()
        .with_depth(10)
        .with_width(4)
        .init(&device())
        .unwrap();
    let err = deep
        .forward_probed(images(1, 8), &Probe::Blocks)
        .unwrap_err()
        .to_string();
    assert!(err.contains("at least 16 x 16"), "{err}");

    let svcca = SvccaConvNetConfig::new().init(&device()).unwrap();
    // conv 3*9*32+32, conv 32*9*64+64, BN 128, fc 4096*200+200, fc 200*10+10.
    assert_eq!(
        count_parameters(&svcca),
        896 + 18_496 + 128 + 819_400 + 2_010
    );
    let (logits, all) = svcca.forward_probed(images(2, 32), &Probe::All).unwrap();
    assert_eq!(logits.dims(), [2, 10]);
    assert_eq!(
        all.names(),
        vec!["conv1", "pool1", "conv2", "pool2", "bn", "fc1", "logits"]
    );
    assert_eq!(all.get("pool2").unwrap().dims(), vec![2, 64, 8, 8]);
    let err = svcca
        .forward_probed(images(2, 16), &Probe::Blocks)
        .unwrap_err()
        .to_string();
    assert!(err.contains("4096 features"), "{err}");
}

#[test]
fn recurrent_classifiers_and_language_models() {
    for cell in [CellKind::Lstm, CellKind::Gru, CellKind::Rnn] {
        let config = RnnClassifierConfig::new(
            RecurrentConfig::new(cell, 96)
                .with_hidden(16)
                .with_layers(2),
        );
        let model = config.init(&device()).unwrap();
        let x = Tensor::<3>::random([3, 32, 96], Distribution::Normal(0.0, 1.0), &device());
        let (logits, acts) = model.forward_probed(x.clone(), &Probe::Blocks).unwrap();
        assert_eq!(logits.dims(), [3, 10]);
        let prefix = cell.name();
        assert_eq!(
            acts.names(),
            vec![
                format!("{prefix}.layer1"),
                format!("{prefix}.layer2"),
                "logits".into()
            ]
        );
        assert_eq!(
            acts.get(&format!("{prefix}.layer2")).unwrap().dims(),
            vec![3, 32, 16]
        );
        assert_eq!(max_abs_diff(model.forward(x), logits), 0.0);
        let wrong = Tensor::<3>::zeros([1, 16, 48], &device());
        let err = model
            .forward_probed(wrong, &Probe::Blocks)
            .unwrap_err()
            .to_string();
        assert!(err.contains("96") && err.contains("width 16"), "{err}");
        let matrices = acts.clone().into_matrices(TimeReduction::Steps);
        assert_eq!(matrices[0].1.dims(), [96, 16]);
        let matrices = acts.into_matrices(TimeReduction::Last);
        assert_eq!(matrices[1].1.dims(), [3, 16]);
    }
    let lm = RnnLanguageModelConfig::new(30)
        .with_hidden(16)
        .with_embedding(8)
        .init(&device())
        .unwrap();
    let tokens = Tensor::<2, Int>::zeros([2, 12], &device());
    let (logits, acts) = lm.forward_probed(tokens, &Probe::All).unwrap();
    assert_eq!(logits.dims(), [2, 12, 30]);
    assert_eq!(
        acts.names(),
        vec!["embedding", "lstm.layer1", "lstm.layer2", "logits"]
    );
}

#[test]
fn mean_time_reduction_averages_steps() {
    let model = RnnClassifierConfig::new(
        RecurrentConfig::new(CellKind::Gru, 4)
            .with_hidden(5)
            .with_layers(1),
    )
    .init(&device())
    .unwrap();
    let x = Tensor::<3>::random([2, 6, 4], Distribution::Normal(0.0, 1.0), &device());
    let (_, acts) = model.forward_probed(x, &Probe::Blocks).unwrap();
    let ActivationTensor::Sequence(seq) = acts.get("gru.layer1").unwrap().clone() else {
        panic!("a sequence")
    };
    let mean = acts.into_matrices(TimeReduction::Mean).remove(0).1;
    let expected = seq.mean_dim(1).reshape([2, 5]);
    assert!(max_abs_diff(mean, expected) < 1e-6);
}

#[test]
fn describe_lists_every_probed_layer() {
    let spec = ModelSpec::Resnet(ResNetConfig::cifar(20, 1, 10));
    let model = spec.init(&device()).unwrap();
    let d = model
        .describe(&spec, &spec.input_shape(2, 32), &Probe::Blocks, &device())
        .unwrap();
    assert_eq!(d.name, "resnet20");
    assert_eq!(d.parameters, 272_474);
    assert_eq!(d.layers.len(), 12);
    assert_eq!(d.layers[1].shape, vec![2, 16, 32, 32]);
    let json = serde_json::to_string(&d).unwrap();
    let back: Description = serde_json::from_str(&json).unwrap();
    assert_eq!(back, d);
    let err = model
        .describe(&spec, &[2, 3, 4, 4], &Probe::Blocks, &device())
        .unwrap_err();
    assert!(err.to_string().contains("at least 8"), "{err}");
}

#[test]
fn weights_round_trip_gives_identical_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("resnet8.bpk");
    let config = ResNetConfig::cifar(8, 1, 10);
    let model = config.init(&device()).unwrap();
    save_weights(&model, &path).unwrap();
    let fresh = config.init(&device()).unwrap();
    let x = images(2, 16);
    assert!(
        max_abs_diff(model.forward(x.clone()), fresh.forward(x.clone())) > 0.0,
        "two inits differ"
    );
    let loaded = load_weights(fresh, &path).unwrap();
    assert_eq!(
        max_abs_diff(model.forward(x.clone()), loaded.forward(x)),
        0.0
    );
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "no temporary file remains: {names:?}");

    // Another architecture is refused, by name.
    let other = ResNetConfig::cifar(14, 1, 10).init(&device()).unwrap();
    let err = load_weights(other, &path).unwrap_err().to_string();
    assert!(err.contains("resnet8.bpk"), "{err}");
    // Another width: the tensor, the model's shape and the file's, not a Debug dump.
    let wider = ResNetConfig::cifar(8, 2, 10).init(&device()).unwrap();
    let err = load_weights(wider, &path).unwrap_err().to_string();
    assert!(
        err.contains("tensor `")
            && err.contains("the model has shape [")
            && !err.contains("ShapeMismatch"),
        "{err}"
    );
    let err = load_weights(
        config.init(&device()).unwrap(),
        &dir.path().join("missing.bpk"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("no such file"), "{err}");
}
