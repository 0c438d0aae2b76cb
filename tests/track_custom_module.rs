//! The custom-module example as client code: a hand-written burn module, a plain burn loop,
//! the Tracker in two lines. Its convergence tables must equal a direct computation from the
//! weights the loop saved at every epoch.

#[path = "../examples/track_custom_module.rs"]
#[allow(dead_code)]
mod example;

use burn::module::Module;
use burn::tensor::Device;
use repsim::similarity::{linear_cka, Layer, Measure};

#[test]
fn the_trackers_tables_equal_a_direct_computation_from_the_saved_weights() {
    let dir = tempfile::tempdir().unwrap();
    let args = example::Args {
        out: dir.path().join("run"),
        epochs: 3,
        train_count: 512,
        seed: 3,
    };
    let example::Outcome {
        report,
        first_vs_last,
    } = example::run(&args).unwrap();
    // compare(): the epoch-1 model against the last, every layer of each.
    assert_eq!(first_vs_last.rows, first_vs_last.cols);
    assert_eq!(first_vs_last.rows.len(), 4);
    assert_eq!(first_vs_last.n_examples, Some(example::PROBE_COUNT));
    assert_eq!(report.index.epochs, [1, 2, 3]);
    assert_eq!(report.index.layers, ["conv1", "conv2", "pooled", "logits"]);
    assert_eq!(report.index.n_examples, example::PROBE_COUNT);

    // The same probe images, each epoch's saved weights, every layer computed directly.
    let (_, _, probe) = example::data(args.train_count, &Device::flex()).unwrap();
    let layers_at = |epoch: usize| -> Vec<Layer> {
        let model = example::SmallNet::new(&Device::flex())
            .try_load_file(example::weights_path(&args.out, epoch))
            .unwrap();
        model
            .forward_with_layers(probe.clone())
            .into_iter()
            .map(|(name, t)| Layer::new(name, t).unwrap())
            .collect()
    };
    let per_epoch: Vec<Vec<Layer>> = (1..=3).map(layers_at).collect();
    let table = |metric: &str| {
        report
            .convergence
            .iter()
            .find(|t| t.metric == metric)
            .unwrap_or_else(|| panic!("no {metric} table"))
    };
    for (l, name) in report.index.layers.iter().enumerate() {
        for (e, epoch_layers) in per_epoch.iter().enumerate() {
            let last = &per_epoch[2][l];
            let direct = linear_cka(&epoch_layers[l].matrix, &last.matrix).unwrap();
            let tracked = table("linear_cka").matrix.values[l][e].unwrap();
            assert!(
                (direct - tracked).abs() < 1e-5,
                "linear CKA of {name} at epoch {}: tracked {tracked}, direct {direct}",
                e + 1
            );
            let svcca = repsim::similarity::similarity_matrix(
                &Measure::svcca(),
                std::slice::from_ref(&epoch_layers[l]),
                std::slice::from_ref(last),
            )
            .unwrap()
            .values[0][0]
                .unwrap();
            let tracked = table("svcca").matrix.values[l][e].unwrap();
            assert!(
                (svcca - tracked).abs() < 1e-4,
                "SVCCA of {name} at epoch {}: tracked {tracked}, direct {svcca}",
                e + 1
            );
        }
        // Each layer at the last epoch against itself.
        let last = table("linear_cka").matrix.values[l][2].unwrap();
        assert!((last - 1.0).abs() < 1e-5, "{name}: {last}");
    }
    // The loop's saved weights and the tracker's files are all there.
    for epoch in 1..=3 {
        assert!(example::weights_path(&args.out, epoch).is_file());
        assert!(args
            .out
            .join(format!("track/epoch-{epoch:04}.npz"))
            .is_file());
    }
}
