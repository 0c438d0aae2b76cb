//! The vocabulary of repsim's results, without any computation (serde only, no burn): the
//! measures with their parameters ([`Measure`]), the layer x layer matrices they produce
//! ([`SimilarityMatrix`]), and the results file that holds them ([`ResultsFile`]). The
//! similarity crate computes what is named here; the viz crate draws it without compiling
//! burn.
//!
//! | module | what |
//! | --- | --- |
//! | [`measure`] | [`Measure`]: a measure and its parameters, by name on the command line and in files |
//! | [`params`] | the parameters' types: HSIC estimator, SVCCA reduction, PWCCA convention, RDMs, CKNNA |
//! | [`matrix`] | [`SimilarityMatrix`] and its per-cell [`Significance`] |
//! | [`results_file`] | [`ResultsFile`], what `repsim compare --json` writes |
//! | [`error`] | [`ParameterError`], naming the parameter and the value |
//!
//! ```
//! use repsim_results::{Measure, SimilarityMatrix};
//!
//! let measure: Measure = "rbf_cka:threshold=0.5".parse()?;
//! assert_eq!(measure.name(), "rbf_cka");
//! let matrix = SimilarityMatrix::from_row_major(
//!     measure,
//!     vec!["conv1".into()],
//!     vec!["conv1".into()],
//!     vec![Some(1.0)],
//!     500,
//! );
//! let json = serde_json::to_string(&matrix).unwrap();
//! assert!(json.contains(r#""metric":"rbf_cka""#) && json.contains(r#""threshold":0.5"#));
//! # Ok::<(), repsim_results::ParameterError>(())
//! ```

pub mod error;
pub mod matrix;
pub mod measure;
pub mod params;
pub mod results_file;

pub use error::ParameterError;
pub use matrix::{Significance, SimilarityMatrix};
pub use measure::{Measure, MEASURE_NAMES};
pub use params::{
    CcaMeasure, CknnaParams, HsicEstimator, PwccaConvention, RdmComparison, RdmKind, SvdReduction,
    MIN_EXAMPLES,
};
pub use results_file::{ResultsFile, ResultsMeta};
