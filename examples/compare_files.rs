//! Two activation files (`.npy`, `.npz`, or a folder of `.npy`: saved from PyTorch, JAX or
//! burn) compared layer by layer with the library, as `repsim compare` does on the command
//! line. Without arguments, the two networks of Kornblith et al.'s demo in `tests/fixtures/`.
//!
//! `cargo run --example compare_files -- A.npz B.npz linear_cka,svcca`

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use repsim::similarity::{
    read_activations, similarity_matrices, ConvMode, Layer, Measure, SimilarityMatrix,
};

type Error = Box<dyn std::error::Error>;

/// The two demo networks of Kornblith et al. (2019) in the repository's fixtures.
pub fn demo_files() -> (PathBuf, PathBuf) {
    let root = std::env::var("CARGO_MANIFEST_DIR").unwrap_or(".".into());
    let fixtures = PathBuf::from(root).join("tests/fixtures");
    let file = |name: &str| fixtures.join(name);
    (file("kornblith_demo_x.npy"), file("kornblith_demo_y.npy"))
}

fn main() -> Result<(), Error> {
    let (demo_a, demo_b) = demo_files();
    let mut args = std::env::args().skip(1);
    let a = args.next().map_or(demo_a, PathBuf::from);
    let b = args.next().map_or(demo_b, PathBuf::from);
    let measures = args.next().unwrap_or("linear_cka,rbf_cka,cca".into());
    println!("{} vs {}", a.display(), b.display());
    for matrix in compare_files(&a, &b, &measures)? {
        for warning in &matrix.warnings {
            eprintln!("warning: {}: {warning}", matrix.measure);
        }
        for (row, values) in matrix.rows.iter().zip(&matrix.values) {
            for (col, value) in matrix.cols.iter().zip(values) {
                let value = value.map_or("undefined".into(), |v| format!("{v:.6}"));
                println!("{:<12} {row} x {col}: {value}", matrix.measure.name());
            }
        }
    }
    Ok(())
}

/// Every layer of file `a` against every layer of file `b` under `measures` (`NAME[:KEY=VALUE]`,
/// comma-separated).
pub fn compare_files(a: &Path, b: &Path, measures: &str) -> Result<Vec<SimilarityMatrix>, Error> {
    let measures: Vec<Measure> = measures
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let device = Device::flex();
    // Every array of a file is a layer, examples on dim 0; conv maps are flattened.
    let load = |path: &Path| -> Result<Vec<Layer>, Error> {
        read_activations(path)?
            .into_iter()
            .map(|host| Ok(host.into_layer_with(&device, ConvMode::Flatten)?))
            .collect()
    };
    let (layers_a, layers_b) = (load(a)?, load(b)?);
    Ok(similarity_matrices(&measures, &layers_a, &layers_b)?)
}
