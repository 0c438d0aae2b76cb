//! The Tracker inside burn-train's `SupervisedTraining` (feature `burn-train`):
//! `cargo test --workspace --features burn-train --test burn_train`.
#![cfg(feature = "burn-train")]
#![recursion_limit = "256"]

use std::path::Path;
use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::DataLoader;
use burn::data::dataset::Dataset;
use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::Device;
use burn_train::checkpoint::{FileCheckpointer, KeepLastNCheckpoints};
use burn_train::metric::LossMetric;
use burn_train::{Learner, LearningResult, SupervisedTraining};
use repsim::data::{
    data_loader, ChannelStats, ImageBatch, ImageBatcher, LoaderConfig, ShapesConfig, Split,
};
use repsim::model::{ResNet, ResNetConfig};
use repsim::similarity::ConvMode;
use repsim::train::burn_train::{SharedTracker, Supervised, TrackingCheckpointer};
use repsim::train::network::force_initialisation;
use repsim::train::optimizer::build_optimizer;
use repsim::train::{Inputs, OptimizerConfig, Tracker, TrackerConfig};

type Loader = Arc<dyn DataLoader<ImageBatch>>;

fn loaders() -> (Loader, Loader, Inputs) {
    let shapes = ShapesConfig::new()
        .with_side(12)
        .with_train_len(256)
        .with_test_len(64);
    let train = shapes.init(Split::Train).unwrap();
    let test = shapes.init(Split::Test).unwrap();
    let batcher = ImageBatcher::new(ChannelStats::compute(&train, Some(64)).unwrap());
    let config = |shuffle| LoaderConfig {
        batch_size: 64,
        shuffle_seed: shuffle,
        workers: 1,
    };
    let items = (0..32).map(|i| test.get(i).unwrap()).collect();
    let probe = Inputs::Images(batcher.batch(items, &Device::flex()).images);
    (
        data_loader(train, batcher, &config(Some(1)), &Device::flex().autodiff()),
        data_loader(test, batcher, &config(None), &Device::flex()),
        probe,
    )
}

fn resnet(width: usize, device: &Device) -> Supervised<ResNet> {
    let model = Supervised::new(ResNetConfig::cifar(8, width, 10).init(device).unwrap());
    force_initialisation(&model);
    model
}

/// Trains ResNet-8 for `epochs` with the tracking checkpointer around burn-train's file
/// checkpointer; the tracker loads each checkpoint into `probe_model`.
fn train_tracked(
    dir: &Path,
    epochs: usize,
    probe_model: Supervised<ResNet>,
) -> (LearningResult<Supervised<ResNet>>, SharedTracker) {
    let (train, test, probe) = loaders();
    let device = Device::flex().autodiff();
    let tracker =
        SharedTracker::new(Tracker::new(TrackerConfig::new(dir.join("track")), probe).unwrap());
    let checkpoints = dir.join("checkpoint");
    let learner = Learner::new(
        resnet(1, &device),
        build_optimizer(&OptimizerConfig::sgd()),
        burn::optim::lr_scheduler::constant::ConstantLr::new(0.05),
    );
    let result = SupervisedTraining::new(dir, train, test)
        .num_epochs(epochs)
        .with_custom_checkpointers(
            TrackingCheckpointer::new(
                FileCheckpointer::new(&checkpoints, "model"),
                tracker.clone(),
                probe_model,
            ),
            FileCheckpointer::new(&checkpoints, "optim"),
            FileCheckpointer::new(&checkpoints, "scheduler"),
        )
        .with_checkpointing_strategy(KeepLastNCheckpoints::new(epochs))
        .metric_valid_numeric(LossMetric::new())
        .with_application_logger(None)
        .launch(learner);
    (result, tracker)
}

#[test]
fn the_tracker_observes_exactly_what_burn_train_saves() {
    let dir = tempfile::tempdir().unwrap();
    let (result, tracker) = train_tracked(dir.path(), 2, resnet(1, &Device::flex()));
    assert!(result.error.is_none(), "{:?}", result.error);
    assert_eq!(tracker.epochs(), vec![1, 2]);

    // The user's checkpointer still got every save.
    for epoch in [1, 2] {
        let file = dir.path().join(format!("checkpoint/model-{epoch}.bpk"));
        assert!(file.exists(), "{} is missing", file.display());
    }

    // Observing the saved epoch-2 model directly gives the tracker's numbers, bit for bit.
    let (_, _, probe) = loaders();
    let direct_dir = dir.path().join("direct");
    let mut direct = Tracker::new(TrackerConfig::new(&direct_dir), probe).unwrap();
    let record = ModuleRecord::load(dir.path().join("checkpoint/model-2.bpk")).unwrap();
    let saved = resnet(1, &Device::flex()).load_record(record);
    direct.observe(2, &saved).unwrap();
    let through_burn_train = tracker.lock().load_epoch(2).unwrap();
    let by_hand = direct.load_epoch(2).unwrap();
    assert_eq!(through_burn_train.len(), by_hand.len());
    for (a, b) in through_burn_train.iter().zip(&by_hand) {
        assert_eq!(a.name, b.name);
        let a_values = a.matrix.clone().try_into_vec_as::<f32>().unwrap();
        let b_values = b.matrix.clone().try_into_vec_as::<f32>().unwrap();
        assert_eq!(a_values, b_values, "layer {}", a.name);
    }

    // The convergence table: every layer equals itself at the final epoch (PWCCA and CCA are
    // undefined, with a warning, for conv layers wider than the 32 probe images; CKA never).
    let report = tracker.finish().unwrap();
    assert!(!report.convergence.is_empty());
    for table in &report.convergence {
        assert_eq!(table.epochs, vec![1, 2]);
        for (layer, row) in table.matrix.rows.iter().zip(&table.matrix.values) {
            let Some(last) = *row.last().unwrap() else {
                assert_ne!(table.metric, "linear_cka", "{layer}");
                continue;
            };
            assert!(
                (last - 1.0).abs() < 1e-4,
                "{} of {layer} with itself: {last}",
                table.metric
            );
        }
    }
}

#[test]
fn a_probe_model_of_another_shape_stops_the_training_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (result, tracker) = train_tracked(dir.path(), 1, resnet(2, &Device::flex()));
    let error = result.error.expect("the mismatch stops the training");
    let message = error.to_string();
    assert!(
        message.contains("repsim tracker") && message.contains("epoch 1"),
        "{message}"
    );
    assert!(tracker.epochs().is_empty());
    // The user's checkpoint was written before the tracker failed.
    assert!(dir.path().join("checkpoint/model-1.bpk").exists());
}

/// The example's program: a user-defined model with its own `TrainStep`.
#[path = "../examples/track_burn_train.rs"]
#[allow(dead_code, unused_attributes)]
mod example;

#[test]
fn a_user_defined_model_is_tracked_and_keeps_its_parameter_names() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    example::run(&example::Args {
        out: out.clone(),
        epochs: 2,
        train_count: 256,
        width: 4,
        seed: 1,
        overwrite: false,
    })
    .unwrap();
    let report: repsim::train::TrackReport =
        serde_json::from_str(&std::fs::read_to_string(out.join("track/report.json")).unwrap())
            .unwrap();
    assert_eq!(report.index.epochs, vec![1, 2]);
    assert_eq!(
        report.index.layers,
        ["block1", "block2", "block3", "pooled", "logits"]
    );
    // burn-train's checkpoint holds the model's own names (`conv1.weight`, not
    // `model.conv1.weight`): it loads into a bare ConvNet, every tensor present.
    let saved = example::ConvNet::new(4, &Device::flex())
        .try_load_file(out.join("checkpoint/model-2.bpk"))
        .expect("the checkpoint loads into the user's own model");
    // And the tracker's epoch 2 is that model observed through the same closure.
    let tracker_config =
        TrackerConfig::new(out.join("track")).with_conv(ConvMode::Pool { size: 2 });
    let tracked = Tracker::open(tracker_config)
        .unwrap()
        .load_epoch(2)
        .unwrap();
    let probe = example_probe();
    let mut direct = Tracker::new(
        TrackerConfig::new(dir.path().join("direct")).with_conv(ConvMode::Pool { size: 2 }),
        probe,
    )
    .unwrap();
    direct.observe(2, |x| saved.forward_with_layers(x)).unwrap();
    let by_hand = direct.load_epoch(2).unwrap();
    for (a, b) in tracked.iter().zip(&by_hand) {
        assert_eq!(a.name, b.name);
        assert_eq!(
            a.matrix.clone().try_into_vec_as::<f32>().unwrap(),
            b.matrix.clone().try_into_vec_as::<f32>().unwrap(),
            "layer {}",
            a.name
        );
    }
}

/// The example's probe images: the first 500 test shapes at 16 x 16, normalised with its
/// training split's statistics (256 training images).
fn example_probe() -> burn::tensor::Tensor<4> {
    let shapes = ShapesConfig::new()
        .with_side(16)
        .with_train_len(256)
        .with_test_len(1000);
    let train = shapes.init(Split::Train).unwrap();
    let test = shapes.init(Split::Test).unwrap();
    let batcher = ImageBatcher::new(ChannelStats::compute(&train, Some(2000)).unwrap());
    let items = (0..example::PROBE_COUNT)
        .map(|i| test.get(i).unwrap())
        .collect();
    batcher.batch(items, &Device::flex()).images
}
