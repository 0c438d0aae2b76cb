#![recursion_limit = "256"]
//! Representational similarity measures as burn tensor ops.
//!
//! Inputs are activations with the examples on dim 0 (any rank >= 2; everything past dim 0 is
//! flattened into features), on whatever device they live on: the heavy work (Grams, matmuls,
//! centring, reductions) runs there, and only a few scalars per layer pair are read back.
//!
//! | module | what |
//! | --- | --- |
//! | [`conditioning`] | centring and scaling a layer before float32 work; at least 4 examples |
//! | [`gram`] | linear and RBF Gram matrices |
//! | [`host_gram`] | the flex-only linear Gram: faer's triangular product on the tensor's storage |
//! | [`centering`] | `H K H` and U-centring |
//! | [`hsic`] | biased (Gretton et al. 2005) and unbiased (Song et al. 2012) HSIC |
//! | [`linear_cka`] | linear CKA, biased and debiased, one pair or a whole matrix |
//! | [`kernel_cka`] | CKA of any Grams; RBF CKA |
//! | [`covariance`] | covariance statistics the CCA family is computed from |
//! | [`cca`] | CCA, SVCCA, PWCCA (google and textbook conventions), Procrustes distance; `cca::params` (the measures' parameters), `cca::example_space` (SVCCA and Procrustes for layers with more features than examples) |
//! | [`covariance_stream`] | streaming the CCA family over batches of examples in `O(D^2)` memory |
//! | [`principal`] | a layer's first principal component: explained variance, removal (Nguyen et al. 2021) |
//! | [`minibatch`] | minibatch CKA accumulator (Nguyen et al. 2021), mergeable, serde |
//! | [`measure`] | [`Measure`], a measure with its parameters (from `repsim-results`); one entry point for a layer x layer matrix |
//! | [`significance`] | permutation p-values and bootstrap intervals for every cell of every measure |
//! | [`matrix`] | [`SimilarityMatrix`], the JSON the CLI, viz and tests share (from `repsim-results`) |
//! | [`conv`] | convolutional layers: flatten, spatial-as-samples, average pooling |
//! | [`files`] | `.npy`, `.npz` and directories of `.npy` activation files |
//! | [`row_source`] | row ranges of activation files read in place (files larger than memory) |
//! | [`shard`] | sharded comparisons: state files with content identity and checksums, exact merges |
//! | [`outliers`] | clipping outlying activations before a comparison (platonic-rep's `remove_outliers`) |
//! | [`neighbours`] | each example's k nearest neighbours under a layer's linear kernel |
//! | [`mutual_knn`] | mutual k-nearest-neighbour alignment (Huh et al. 2024) |
//! | [`cknna`] | CKNNA, CKA over mutual-neighbour pairs (Huh et al. 2024) |
//! | [`rsa`] | representational similarity analysis (Kriegeskorte et al. 2008) |
//! | [`shape_metric`] | the angular shape metric (Williams et al. 2021) |
//! | [`layer`] | [`Layer`], a layer's activations as examples x features on the device |
//! | [`error`] | the crate's one error type, naming the file, layer or value |
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

pub mod cca;
pub mod centering;
pub mod cknna;
pub mod conditioning;
pub mod conv;
pub mod covariance;
pub mod covariance_stream;
pub mod error;
pub mod files;
pub mod gram;
pub mod host_gram;
pub mod hsic;
pub mod kernel_cka;
pub mod layer;
pub mod linear_cka;
/// [`SimilarityMatrix`] (defined in `repsim-results`, which the viz crate reads without burn).
pub use repsim_results::matrix;
pub mod measure;
pub mod minibatch;
pub mod mutual_knn;
pub mod neighbours;
pub mod outliers;
pub mod principal;
pub mod row_source;
pub mod rsa;
pub mod shape_metric;
pub mod shard;
mod sides;
pub mod significance;
#[doc(hidden)]
pub mod testing;

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
