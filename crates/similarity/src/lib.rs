#![recursion_limit = "256"]
//! Representational similarity measures as burn tensor ops.
//!
//! Inputs are activations with the examples on dim 0 (any rank >= 2; everything past dim 0 is
//! flattened into features), on whatever device they live on: the heavy work (Grams, matmuls,
//! centring, reductions) runs there, and only a few scalars per layer pair are read back.
//!
//! | module | what |
//! | --- | --- |
//! | [`measure`] | [`Measure`], a measure with its parameters (from `repsim-results`); one entry point for a layer x layer matrix |
//! | [`measures`] | the measures by family: |
//! | [`measures::cka`] | Grams (`gram`; flex's faer product in `host_gram`), centring, biased (Gretton et al. 2005) and unbiased (Song et al. 2012) HSIC, linear CKA, CKA of any Grams and RBF CKA, minibatch CKA (Nguyen et al. 2021), mergeable, serde |
//! | [`measures::covariance`] | the covariance statistics the CCA family is computed from |
//! | [`measures::cca`] | CCA, SVCCA, PWCCA (google and textbook conventions), Procrustes distance; `cca::params` (the measures' parameters), `cca::example_space` (SVCCA and Procrustes for layers with more features than examples) |
//! | [`measures::neighbours`] | each example's k nearest neighbours; mutual kNN and CKNNA (Huh et al. 2024) |
//! | [`measures::rsa`] | representational similarity analysis (Kriegeskorte et al. 2008; Nili et al. 2014's rho-a and tau-a) |
//! | [`measures::shape_metric`] | the angular shape metric (Williams et al. 2021) |
//! | [`significance`] | permutation p-values and bootstrap intervals for every cell of every measure |
//! | [`io`] | `.npy`, `.npz` and directories of `.npy` files whole (`files`) or by row ranges in place (`row_source`, files larger than memory); convolutional layers (`conv`: flatten, spatial-as-samples, average pooling) |
//! | [`stream`] | the one comparison driver, fed batch by batch by every path (`comparison`: minibatch CKA's sums, feature-space sums or layers gathered on the device, per measure); the CCA family over batches of examples in `O(D^2)` memory (`covariance_stream`); sharded comparisons: state files with content identity and checksums, exact merges (`shard`) |
//! | [`conditioning`] | centring and scaling a layer before float32 work; at least 4 examples |
//! | [`principal`] | a layer's first principal component: explained variance, removal (Nguyen et al. 2021) |
//! | [`outliers`] | clipping outlying activations before a comparison (platonic-rep's `remove_outliers`) |
//! | [`matrix`] | [`SimilarityMatrix`], the JSON the CLI, viz and tests share (from `repsim-results`) |
//! | [`layer`] | [`Layer`], a layer's activations as examples x features on the device |
//! | [`error`] | the crate's one error type, naming the file, layer or value |
//! | [`testing`] | seeded random matrices and reference computations the tests (and downstream tests) share |
//!
//! The modules are also at the flat paths of earlier versions (`repsim_similarity::linear_cka`,
//! `::files`, `::shard`, ...), re-exported.
//!
//! ```no_run
//! use burn::tensor::{Device, Tensor};
//! use repsim_similarity::{linear_cka, Layer, MinibatchCka};
//!
//! let device = Device::flex();
//! let x = Tensor::<4>::ones([64, 8, 4, 4], &device); // a conv layer, N x C x H x W
//! let y = Tensor::<2>::ones([64, 10], &device); // logits
//! let cka = linear_cka(&x, &y); // Err(ZeroVariance) here: constant activations
//! ```

pub mod conditioning;
pub mod error;
pub mod io;
pub mod layer;
/// [`SimilarityMatrix`] (defined in `repsim-results`, which the viz crate reads without burn).
pub use repsim_results::matrix;
pub mod measure;
pub mod measures;
pub mod outliers;
pub mod principal;
mod sides;
pub mod significance;
pub mod stream;
#[doc(hidden)]
pub mod testing;

// The modules at the flat paths of earlier versions (`repsim_similarity::linear_cka::...`).
pub use io::{conv, files, row_source};
pub use measures::cka::{centering, gram, host_gram, hsic, kernel_cka, linear_cka, minibatch};
pub use measures::neighbours::{cknna, mutual_knn};
pub use measures::{cca, covariance, neighbours, rsa, shape_metric};
pub use stream::comparison::{Comparison, ShortLastBatch, WholeData};
pub use stream::{comparison, covariance_stream, shard};

pub use cca::example_space;
pub use cca::{
    cca, cca_family_matrix, procrustes_distance, pwcca, svcca, CcaMeasure, CcaResult,
    PwccaConvention, SvdReduction,
};
pub use conv::{conv_layer, ConvMode};
pub use covariance_stream::CovarianceAccumulator;
pub use error::{Result, SimilarityError};
pub use example_space::{centred_gram, coordinates_from_centred_gram, example_space_coordinates};
pub use files::{read_activations, HostLayer};
pub use hsic::{biased_hsic, unbiased_hsic, HsicEstimator};
pub use kernel_cka::{cka_from_grams, rbf_cka, rbf_cka_debiased, rbf_cka_matrix};
pub use layer::Layer;
pub use linear_cka::{linear_cka, linear_cka_debiased, linear_cka_matrix};
pub use matrix::{Significance, SimilarityMatrix};
pub use measure::{
    minibatch_cka_matrix, similarity_matrices, similarity_matrix, Measure, MEASURE_NAMES,
};
pub use minibatch::{MinibatchCka, MinibatchCkaState};
pub use principal::{first_component, FirstComponent};
pub use repsim_results::{
    CknnaParams, ParameterError, RdmComparison, RdmKind, ResultsFile, ResultsMeta,
};
pub use row_source::{RowSource, Xxh3};
pub use significance::{assess, SignificanceOptions};
