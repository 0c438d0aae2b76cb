//! Imports a ResNet-18 from a .safetensors file written in torchvision's key layout.

use std::collections::BTreeMap;

use burn::tensor::{Device, Tensor};
use repsim_model::{import_torchvision_resnet, ResNetConfig};
use safetensors::tensor::{Dtype, TensorView};

/// Deterministic pseudo-random values in [-0.5, 0.5).
fn values(count: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..count)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

struct Entry {
    shape: Vec<usize>,
    data: Vec<u8>,
    dtype: Dtype,
}

fn f32_entry(shape: &[usize], seed: u64, positive: bool) -> Entry {
    let n = shape.iter().product();
    let v: Vec<f32> = values(n, seed)
        .into_iter()
        .map(|x| if positive { x + 1.0 } else { x })
        .collect();
    Entry {
        shape: shape.to_vec(),
        data: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        dtype: Dtype::F32,
    }
}

fn add_bn(map: &mut BTreeMap<String, Entry>, prefix: &str, c: usize, seed: &mut u64) {
    for (name, positive) in [
        ("weight", true),
        ("bias", false),
        ("running_mean", false),
        ("running_var", true),
    ] {
        *seed += 1;
        map.insert(format!("{prefix}.{name}"), f32_entry(&[c], *seed, positive));
    }
    map.insert(
        format!("{prefix}.num_batches_tracked"),
        Entry {
            shape: vec![],
            data: 7i64.to_le_bytes().to_vec(),
            dtype: Dtype::I64,
        },
    );
}

/// The state dict of torchvision's `resnet18(num_classes=classes)`, with random values.
fn torchvision_resnet18(classes: usize) -> BTreeMap<String, Entry> {
    let mut map = BTreeMap::new();
    let mut seed = 0u64;
    map.insert(
        "conv1.weight".into(),
        f32_entry(&[64, 3, 7, 7], 1000, false),
    );
    add_bn(&mut map, "bn1", 64, &mut seed);
    let mut cin = 64;
    for (layer, c) in [(1, 64), (2, 128), (3, 256), (4, 512)] {
        for b in 0..2 {
            let p = format!("layer{layer}.{b}");
            let input = if b == 0 { cin } else { c };
            seed += 1;
            map.insert(
                format!("{p}.conv1.weight"),
                f32_entry(&[c, input, 3, 3], seed, false),
            );
            add_bn(&mut map, &format!("{p}.bn1"), c, &mut seed);
            seed += 1;
            map.insert(
                format!("{p}.conv2.weight"),
                f32_entry(&[c, c, 3, 3], seed, false),
            );
            add_bn(&mut map, &format!("{p}.bn2"), c, &mut seed);
            if b == 0 && layer > 1 {
                seed += 1;
                map.insert(
                    format!("{p}.downsample.0.weight"),
                    f32_entry(&[c, input, 1, 1], seed, false),
                );
                add_bn(&mut map, &format!("{p}.downsample.1"), c, &mut seed);
            }
        }
        cin = c;
    }
    map.insert("fc.weight".into(), f32_entry(&[classes, 512], 2000, false));
    map.insert("fc.bias".into(), f32_entry(&[classes], 2001, false));
    map
}

fn floats(entry: &Entry) -> Vec<f32> {
    entry
        .data
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn read<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

#[test]
fn torchvision_resnet18_weights_load_by_name() {
    let classes = 10;
    let state = torchvision_resnet18(classes);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("resnet18.safetensors");
    let views: Vec<(String, TensorView)> = state
        .iter()
        .map(|(k, e)| {
            (
                k.clone(),
                TensorView::new(e.dtype, e.shape.clone(), &e.data).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &path).unwrap();

    let device = Device::flex();
    let model = ResNetConfig::imagenet(18, classes).init(&device).unwrap();
    let (model, report) = import_torchvision_resnet(model, &path).unwrap();
    assert!(report.unused.is_empty(), "unused keys: {:?}", report.unused);
    // Every tensor of the file but the num_batches_tracked counters.
    let expected = state
        .keys()
        .filter(|k| !k.ends_with("num_batches_tracked"))
        .count();
    assert_eq!(report.applied, expected);

    assert_eq!(
        read(model.conv1.weight.val()),
        floats(&state["conv1.weight"])
    );
    assert_eq!(read(model.bn1.gamma.val()), floats(&state["bn1.weight"]));
    assert_eq!(read(model.bn1.beta.val()), floats(&state["bn1.bias"]));
    assert_eq!(
        read(model.bn1.running_mean.value()),
        floats(&state["bn1.running_mean"])
    );
    assert_eq!(
        read(model.layer3[1].conv2.weight.val()),
        floats(&state["layer3.1.conv2.weight"])
    );
    let downsample = model.layer2[0].downsample.as_ref().unwrap();
    assert_eq!(
        read(downsample.conv.weight.val()),
        floats(&state["layer2.0.downsample.0.weight"])
    );
    assert_eq!(
        read(downsample.bn.running_var.value()),
        floats(&state["layer2.0.downsample.1.running_var"])
    );
    // PyTorch stores linear weights (out, in); burn (in, out).
    let fc = floats(&state["fc.weight"]);
    let burn_fc = read(model.fc.weight.val());
    for o in 0..classes {
        for i in 0..512 {
            assert_eq!(burn_fc[i * classes + o], fc[o * 512 + i]);
        }
    }
    let logits = model.forward(Tensor::zeros([1, 3, 64, 64], &device));
    assert_eq!(logits.dims(), [1, classes]);

    // A model of another class count is refused, naming the file.
    let wrong = ResNetConfig::imagenet(18, 1000).init(&device).unwrap();
    let err = import_torchvision_resnet(wrong, &path)
        .unwrap_err()
        .to_string();
    assert!(err.contains("resnet18.safetensors"), "{err}");
}
