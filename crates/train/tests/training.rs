//! Training end to end on flex, small: learning, determinism, resume, faults, random labels,
//! and the Tracker against a direct computation.

use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use repsim_model::{load_weights, ModelSpec, PlainCnnConfig, Probe};
use repsim_similarity::{linear_cka, svcca, Measure, SvdReduction};
use repsim_train::checkpoint::{checkpoint_dir, MODEL};
use repsim_train::datasets::RunData;
use repsim_train::{
    train, DataConfig, Inputs, Network, OptimizerConfig, ProgressMode, RunOptions, ScheduleConfig,
    TrackEpochs, TrackOptions, TrackerConfig, TrainConfig, TrainError,
};

fn small_cnn() -> ModelSpec {
    ModelSpec::Cnn(
        PlainCnnConfig::new()
            .with_depth(3)
            .with_width(8)
            .with_classes(10),
    )
}

fn config(train_count: usize, epochs: usize) -> TrainConfig {
    TrainConfig {
        model: small_cnn(),
        data: DataConfig {
            dataset: "shapes".into(),
            side: 16,
            train_count: Some(train_count),
            test_count: Some(300),
            random_labels: 0.0,
            augment: true,
            data_seed: 0,
            window: 32,
            train_repeats: 1,
        },
        optimizer: OptimizerConfig::sgd(),
        schedule: ScheduleConfig::parse("cosine", 0).unwrap(),
        lr: 0.05,
        epochs,
        batch_size: 64,
        seed: 7,
    }
}

fn options() -> RunOptions {
    let mut o = RunOptions::new(Device::flex());
    o.progress = ProgressMode::Silent;
    o
}

/// Every float tensor of a model (parameters and batch-norm statistics), in visit order.
fn values_of<M: Module>(model: &M) -> Vec<f32> {
    struct Collect(Vec<f32>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.extend(param.val().try_into_vec_as::<f32>().unwrap());
        }
    }
    let mut c = Collect(Vec::new());
    model.visit(&mut c);
    c.0
}

fn weights(spec: &ModelSpec, path: &Path) -> Vec<f32> {
    let device = Device::flex();
    let model = match spec.init(&device).unwrap() {
        repsim_model::AnyModel::Cnn(m) => m,
        _ => unreachable!(),
    };
    values_of(&load_weights(model, path).unwrap())
}

#[test]
fn a_small_cnn_learns_shapes_well_above_chance_and_runs_are_bitwise_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(3000, 4);
    c.model = ModelSpec::Cnn(
        PlainCnnConfig::new()
            .with_depth(4)
            .with_width(16)
            .with_classes(10),
    );
    let first = train(&c, &dir.path().join("a"), &options()).unwrap();
    let last = first.metrics.last().unwrap();
    assert_eq!(first.metrics.len(), 4);
    assert!(
        last.test_accuracy > 0.3,
        "test accuracy {} (chance 0.1)",
        last.test_accuracy
    );
    assert!(first.metrics[3].train_loss < first.metrics[0].train_loss);
    // metrics.jsonl has one line per epoch.
    let lines = repsim_train::read_metrics(&dir.path().join("a")).unwrap();
    assert_eq!(lines.len(), 4);
    for (line, m) in lines.iter().zip(&first.metrics) {
        assert_eq!(line.epoch, m.epoch);
        assert!((line.test_accuracy - m.test_accuracy).abs() < 1e-12);
    }
    // The same config and seed: the same weights, bit for bit.
    let second = train(&c, &dir.path().join("b"), &options()).unwrap();
    let (wa, wb) = (
        weights(&c.model, first.final_weights.as_ref().unwrap()),
        weights(&c.model, second.final_weights.as_ref().unwrap()),
    );
    assert!(wa == wb, "two runs of one config differ");
    // Another seed: other weights.
    let mut other = c.clone();
    other.seed = 8;
    let third = train(&other, &dir.path().join("c"), &options()).unwrap();
    assert!(weights(&c.model, third.final_weights.as_ref().unwrap()) != wa);
}

#[test]
fn resuming_after_an_interruption_gives_the_uninterrupted_weights_bitwise() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(600, 2);
    c.optimizer = OptimizerConfig::sgd(); // momentum state must survive the checkpoint
    let straight = train(&c, &dir.path().join("straight"), &options()).unwrap();

    let run = dir.path().join("resumed");
    let mut stop = options();
    stop.stop_after = Some(1);
    let half = train(&c, &run, &stop).unwrap();
    assert!(half.final_weights.is_none());
    // Without --resume a non-empty directory is refused before training.
    let refused = train(&c, &run, &options()).unwrap_err();
    assert!(matches!(refused, TrainError::RunDir { .. }), "{refused}");
    let mut resume = options();
    resume.resume = true;
    let rest = train(&c, &run, &resume).unwrap();
    assert_eq!(rest.resumed_from, Some(1));
    assert_eq!(rest.metrics.len(), 2);
    assert!(
        weights(&c.model, &run.join("model.bpk"))
            == weights(&c.model, straight.final_weights.as_ref().unwrap()),
        "1 epoch + resume for 1 differs from 2 epochs"
    );
    // Resuming with another config is refused, naming the field.
    let mut changed = c.clone();
    changed.lr = 0.1;
    let err = train(&changed, &run, &resume).unwrap_err();
    assert!(err.to_string().contains("`lr`"), "{err}");
}

#[test]
fn a_corrupt_newest_checkpoint_is_skipped_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(300, 3);
    let run = dir.path().join("run");
    let mut stop = options();
    stop.stop_after = Some(2);
    train(&c, &run, &stop).unwrap();
    let newest = checkpoint_dir(&run.join("checkpoints"), 2).join(MODEL);
    let bytes = std::fs::read(&newest).unwrap();
    std::fs::write(&newest, &bytes[..bytes.len() / 2]).unwrap();
    let mut resume = options();
    resume.resume = true;
    let summary = train(&c, &run, &resume).unwrap();
    assert_eq!(summary.resumed_from, Some(1));
    assert!(
        summary.warnings.iter().any(|w| w.contains("epoch 2")),
        "{:?}",
        summary.warnings
    );
    assert_eq!(summary.metrics.len(), 3);
}

#[test]
fn a_diverging_run_stops_naming_the_epoch_and_step_and_keeps_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(300, 3);
    c.lr = 1e30;
    c.schedule = ScheduleConfig::parse("constant", 0).unwrap();
    let err = train(&c, &dir.path().join("run"), &options()).unwrap_err();
    match err {
        TrainError::NonFiniteLoss { epoch, step, .. } => assert!(epoch == 1 && step >= 1),
        other => panic!("expected a non-finite loss, got {other}"),
    }
}

#[test]
fn bad_values_fail_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(300, 0);
    assert!(train(&c, &dir.path().join("a"), &options())
        .unwrap_err()
        .is_bad_input());
    c.epochs = 1;
    let mut o = options();
    o.track = Some(TrackOptions {
        tracker: TrackerConfig::new(dir.path().join("unused")),
        epochs: TrackEpochs::Every,
        probe_count: 301,
    });
    let err = train(&c, &dir.path().join("b"), &o).unwrap_err();
    assert!(
        err.to_string().contains("larger than the test split"),
        "{err}"
    );
    assert!(err.is_bad_input());
    // A file where the run directory should be.
    std::fs::write(dir.path().join("file"), b"x").unwrap();
    assert!(train(&c, &dir.path().join("file"), &options())
        .unwrap_err()
        .is_bad_input());
}

#[test]
fn random_labels_are_memorised_while_test_accuracy_stays_near_chance() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(200, 25);
    c.model = ModelSpec::Cnn(
        PlainCnnConfig::new()
            .with_depth(3)
            .with_width(16)
            .with_classes(10),
    );
    c.data.random_labels = 1.0;
    c.data.augment = false;
    c.optimizer = OptimizerConfig::adam();
    c.lr = 3e-3;
    c.batch_size = 50;
    let summary = train(&c, &dir.path().join("run"), &options()).unwrap();
    let last = summary.metrics.last().unwrap();
    assert!(
        last.train_accuracy > 0.3,
        "train accuracy {} on random labels",
        last.train_accuracy
    );
    assert!(
        last.test_accuracy < 0.2,
        "test accuracy {} on true labels",
        last.test_accuracy
    );
}

#[test]
fn the_tracker_matches_a_direct_computation_from_the_stored_weights() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(600, 3);
    let run = dir.path().join("run");
    let mut o = options();
    o.keep_epochs = vec![1, 2, 3];
    o.track = Some(TrackOptions {
        tracker: TrackerConfig::new(run.join("track")).with_measures(vec![
            Measure::svcca(),
            Measure::LINEAR_CKA,
            Measure::PWCCA,
        ]),
        epochs: TrackEpochs::Every,
        probe_count: 200,
    });
    train(&c, &run, &o).unwrap();
    let mut tracker =
        repsim_train::Tracker::open(TrackerConfig::new(run.join("track")).with_measures(vec![
            Measure::svcca(),
            Measure::LINEAR_CKA,
            Measure::PWCCA,
        ]))
        .unwrap();
    let report = tracker.finish().unwrap();
    assert_eq!(report.index.epochs, vec![0, 1, 2, 3]);
    let layers = report.index.layers.clone();
    assert!(layers.len() >= 4, "{layers:?}");
    for table in &report.convergence {
        assert_eq!(table.matrix.shape(), (layers.len(), 4));
        for (layer, row) in layers.iter().zip(&table.matrix.values) {
            if let Some(last) = row[3] {
                assert!(
                    (last - 1.0).abs() < 1e-4,
                    "{} of {layer} with itself: {last}",
                    table.metric
                );
            }
        }
    }
    // Conv layers have more features than the 200 probe images: PWCCA is undefined there,
    // with a warning, and defined for the narrow layers.
    let pwcca = &report.convergence[2];
    assert!(pwcca.matrix.values.iter().any(|r| r[1].is_none()));
    assert!(pwcca.matrix.values.iter().any(|r| r[1].is_some()));
    assert!(
        report.warnings.iter().any(|w| w.contains("pwcca")),
        "{:?}",
        report.warnings
    );

    // Direct: epoch-1 and epoch-3 weights, probed on the same 200 test images.
    let data = RunData::open(&c.data, c.seed).unwrap();
    let probe = data
        .test_batches(200, &Device::flex())
        .next()
        .unwrap()
        .unwrap();
    let probe_images = match &probe.inputs {
        Inputs::Images(x) => x.clone(),
        _ => unreachable!(),
    };
    let load = |path: &Path| {
        let model = match c.model.init(&Device::flex()).unwrap() {
            repsim_model::AnyModel::Cnn(m) => m,
            _ => unreachable!(),
        };
        load_weights(model, path).unwrap()
    };
    let at1 = load(&checkpoint_dir(&run.join("checkpoints"), 1).join(MODEL));
    let at3 = load(&run.join("model.bpk"));
    let acts = |m: &repsim_model::PlainCnn| {
        m.activations(Inputs::Images(probe_images.clone()), &Probe::Blocks)
            .unwrap()
            .into_matrices(Default::default())
    };
    let (a1, a3) = (acts(&at1), acts(&at3));
    for (i, layer) in layers.iter().enumerate() {
        assert_eq!(&a1[i].0, layer);
        let direct_cka = linear_cka(&a1[i].1, &a3[i].1).unwrap();
        let tracked = report.convergence[1].matrix.values[i][1].unwrap();
        assert!(
            (direct_cka - tracked).abs() < 1e-4,
            "{layer}: CKA {direct_cka} vs tracked {tracked}"
        );
        let direct_svcca = svcca(&a1[i].1, &a3[i].1, SvdReduction::default());
        if let (Ok(direct), Some(tracked)) =
            (direct_svcca, report.convergence[0].matrix.values[i][1])
        {
            assert!(
                (direct.mean - tracked).abs() < 1e-3,
                "{layer}: SVCCA {} vs tracked {tracked}",
                direct.mean
            );
        }
    }
    // The layer x layer matrix at an epoch and one layer's epoch x epoch matrix.
    let lxl = tracker.layer_matrix(3, &Measure::LINEAR_CKA).unwrap();
    assert_eq!(lxl.shape(), (layers.len(), layers.len()));
    let exe = tracker
        .epoch_matrix(&layers[0], &Measure::LINEAR_CKA)
        .unwrap();
    assert_eq!(exe.shape(), (4, 4));
}

#[test]
fn a_second_process_training_into_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    // A lock held by a live process (this one, through its own lock handle, as a stand-in
    // for another).
    let lock = dir.path().join(".run.lock");
    let held = repsim_durable::DirLock::acquire(&lock).unwrap();
    let err = train(&config(300, 1), &run, &options()).unwrap_err();
    assert!(err.to_string().contains("another process (PID"), "{err}");
    drop(held);
    // A lock file left by a process that no longer runs is taken over, and removed at the end.
    std::fs::write(&lock, "4194304").unwrap();
    train(&config(300, 1), &run, &options()).unwrap();
    assert!(!lock.exists());
}

#[test]
fn a_character_language_model_trains_on_the_built_in_text() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(300, 2);
    c.model = ModelSpec::RnnLanguageModel(
        repsim_model::RnnLanguageModelConfig::new(1)
            .with_hidden(48)
            .with_layers(1),
    );
    c.data.dataset = "text".into();
    c.data.test_count = Some(40);
    c.optimizer = OptimizerConfig::adam();
    c.lr = 3e-3;
    let data = RunData::open(&c.data, c.seed).unwrap();
    repsim_train::fit_model_to_data(&mut c.model, &data);
    let summary = train(&c, &dir.path().join("lm"), &options()).unwrap();
    let (first, last) = (&summary.metrics[0], summary.metrics.last().unwrap());
    let perplexity = last
        .test_perplexity
        .expect("a language model reports perplexity");
    assert!(
        perplexity.is_finite() && perplexity < data.num_classes() as f64,
        "perplexity {perplexity}"
    );
    assert!(last.train_loss < first.train_loss + 1e-9);
    // An image model on text is refused before training.
    let mut wrong = c.clone();
    wrong.model = small_cnn();
    assert!(train(&wrong, &dir.path().join("x"), &options())
        .unwrap_err()
        .is_bad_input());
}

/// `steps=K`: observations at initialisation, every K optimisation steps and after the last,
/// labelled by the step; observing leaves the training itself unchanged, and a run stopped
/// after its first epoch and resumed observes exactly what an uninterrupted run does.
#[test]
fn tracking_every_k_steps_is_resumable_and_changes_no_weight() {
    let dir = tempfile::tempdir().unwrap();
    // 600 images in batches of 64: 10 steps per epoch, 20 in all.
    let c = config(600, 2);
    let tracked = |run: &Path| {
        let mut o = options();
        o.track = Some(TrackOptions {
            tracker: TrackerConfig::new(run.join("track"))
                .with_measures(vec![Measure::LINEAR_CKA, Measure::svcca()]),
            epochs: TrackEpochs::parse("steps=3").unwrap(),
            probe_count: 100,
        });
        o
    };
    let untracked = train(&c, &dir.path().join("untracked"), &options()).unwrap();
    let straight_dir = dir.path().join("straight");
    let straight = train(&c, &straight_dir, &tracked(&straight_dir)).unwrap();
    assert!(
        weights(&c.model, straight.final_weights.as_ref().unwrap())
            == weights(&c.model, untracked.final_weights.as_ref().unwrap()),
        "observing every 3 steps changed the trained weights"
    );
    let open = |run: &Path| {
        repsim_train::Tracker::open(
            TrackerConfig::new(run.join("track"))
                .with_measures(vec![Measure::LINEAR_CKA, Measure::svcca()]),
        )
        .unwrap()
        .finish()
        .unwrap()
    };
    let report = open(&straight_dir);
    // Every third step, then the last (20 is not a multiple of 3).
    assert_eq!(report.index.epochs, vec![0, 3, 6, 9, 12, 15, 18, 20]);
    assert_eq!(report.index.unit, repsim_train::TimeUnit::Step);
    assert!(straight_dir.join("track/step-0003.npz").is_file());
    assert!(!straight_dir.join("track/epoch-0001.npz").exists());
    for table in &report.convergence {
        assert_eq!(table.final_epoch, 20);
        assert_eq!(table.matrix.cols[1], "step 3");
        // The last observation against itself: 1 for every defined layer.
        for row in &table.matrix.values {
            if let Some(last) = row.last().copied().flatten() {
                assert!((last - 1.0).abs() < 1e-6, "{last}");
            }
        }
    }

    // Stopped after epoch 1 (step 10: observed 0, 3, 6, 9), then resumed.
    let resumed_dir = dir.path().join("resumed");
    let mut stop = tracked(&resumed_dir);
    stop.stop_after = Some(1);
    train(&c, &resumed_dir, &stop).unwrap();
    let mut resume = tracked(&resumed_dir);
    resume.resume = true;
    train(&c, &resumed_dir, &resume).unwrap();
    let resumed = open(&resumed_dir);
    assert_eq!(resumed.index.epochs, report.index.epochs);
    for (a, b) in resumed.convergence.iter().zip(&report.convergence) {
        assert_eq!(a.matrix.values, b.matrix.values, "{}", a.metric);
    }
    // Resuming with epoch observations is refused, naming what differs.
    let mut other = options();
    other.resume = true;
    other.track = Some(TrackOptions {
        tracker: TrackerConfig::new(resumed_dir.join("track")),
        epochs: TrackEpochs::Every,
        probe_count: 100,
    });
    let err = train(&c, &resumed_dir, &other).unwrap_err();
    assert!(err.to_string().contains("track"), "{err}");
    assert!(TrackEpochs::parse("steps=0").is_err());
    assert!(TrackEpochs::parse("steps=x").is_err());
}
