//! [`Measure`]: a similarity measure with its parameters, the one value that names a measure
//! everywhere in repsim (the command line, the library, matrices, results and shard files).
//!
//! On the command line a measure is its name, optionally followed by `:key=value` pairs:
//! `rbf_cka:threshold=0.5`, `svcca:dims=20`, `cknna:k=20:normalize_rows=false`. In files it is
//! the name plus its parameters as JSON ([`Measure::record`], [`Measure::from_record`]), the
//! layout every version of repsim has written into `SimilarityMatrix`'s `metric` and
//! `parameters`.
//!
//! Adding a measure: one variant here (its name, title, parameters and their checks), one
//! module in `repsim-similarity` computing it, and its tests; `similarity_matrix` dispatches on
//! the variant.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ParameterError, Result};
use crate::params::{
    CcaMeasure, CknnaParams, HsicEstimator, PwccaConvention, RdmComparison, RdmKind, SvdReduction,
    DEFAULT_K, MIN_EXAMPLES,
};

/// A similarity measure and its parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Measure {
    /// Linear CKA (Kornblith et al. 2019) with the biased HSIC (`linear_cka`) or the unbiased
    /// one of Song et al. 2012 (`linear_cka_debiased`).
    LinearCka {
        /// The HSIC estimator.
        estimator: HsicEstimator,
    },
    /// RBF-kernel CKA (Kornblith et al. 2019), bandwidth `threshold * sqrt(median squared
    /// distance)`; `rbf_cka` or `rbf_cka_debiased`.
    RbfCka {
        /// The bandwidth's multiple of the median distance (positive).
        threshold: f64,
        /// The HSIC estimator.
        estimator: HsicEstimator,
    },
    /// Minibatch linear CKA with the unbiased HSIC per batch (Nguyen et al. 2021).
    MinibatchCka {
        /// Examples per batch (Nguyen et al. use 256); at least 4.
        batch_size: usize,
    },
    /// The CCA family: mean CCA, SVCCA (Raghu et al. 2017), PWCCA (Morcos et al. 2018),
    /// Procrustes distance (Ding et al. 2021).
    Cca(CcaMeasure),
    /// Mutual k-nearest-neighbour alignment (Huh et al. 2024).
    MutualKnn {
        /// Neighbours per example.
        k: usize,
    },
    /// CKA over the pairs that are nearest neighbours in both layers (Huh et al. 2024).
    Cknna(CknnaParams),
    /// Rank or linear correlation of representational dissimilarity matrices (Kriegeskorte
    /// et al. 2008).
    Rsa {
        /// The dissimilarity of two examples.
        rdm: RdmKind,
        /// How two RDMs are compared.
        compare: RdmComparison,
    },
    /// The angular shape distance (Williams et al. 2021); 0 = the same shape.
    ShapeAngular {
        /// Partial whitening in [0, 1]: 1 none (Procrustes), 0 full (CCA).
        alpha: f64,
        /// Centre each feature first (the default; netrep's `center_columns`); off, the
        /// activations as given, translations included in the shape.
        centered: bool,
    },
}

/// Every measure's name, in the order the CLI lists them.
pub const MEASURE_NAMES: [&str; 13] = [
    "linear_cka",
    "linear_cka_debiased",
    "rbf_cka",
    "rbf_cka_debiased",
    "minibatch_cka",
    "cca",
    "svcca",
    "pwcca",
    "procrustes",
    "mutual_knn",
    "cknna",
    "rsa",
    "shape_angular",
];

impl Measure {
    /// Linear CKA, biased HSIC.
    pub const LINEAR_CKA: Measure = Measure::LinearCka {
        estimator: HsicEstimator::Biased,
    };
    /// Linear CKA, unbiased HSIC.
    pub const LINEAR_CKA_DEBIASED: Measure = Measure::LinearCka {
        estimator: HsicEstimator::Unbiased,
    };
    /// Mean CCA.
    pub const CCA: Measure = Measure::Cca(CcaMeasure::Cca);
    /// PWCCA with the SVCCA authors' weights.
    pub const PWCCA: Measure = Measure::Cca(CcaMeasure::Pwcca(PwccaConvention::Google));
    /// Procrustes distance.
    pub const PROCRUSTES: Measure = Measure::Cca(CcaMeasure::Procrustes);

    /// SVCCA keeping 99% of each side's variance.
    pub fn svcca() -> Measure {
        Measure::Cca(CcaMeasure::Svcca(SvdReduction::default()))
    }

    /// Minibatch CKA with batches of `batch_size`.
    pub fn minibatch_cka(batch_size: usize) -> Measure {
        Measure::MinibatchCka { batch_size }
    }

    /// The measure called `name`, with every parameter at its default.
    pub fn from_name(name: &str) -> Result<Measure> {
        Ok(match name {
            "linear_cka" => Measure::LINEAR_CKA,
            "linear_cka_debiased" => Measure::LINEAR_CKA_DEBIASED,
            "rbf_cka" | "rbf_cka_debiased" => Measure::RbfCka {
                threshold: 1.0,
                estimator: if name == "rbf_cka" {
                    HsicEstimator::Biased
                } else {
                    HsicEstimator::Unbiased
                },
            },
            "minibatch_cka" => Measure::MinibatchCka { batch_size: 256 },
            "cca" => Measure::CCA,
            "svcca" => Measure::svcca(),
            "pwcca" => Measure::PWCCA,
            "procrustes" => Measure::PROCRUSTES,
            "mutual_knn" => Measure::MutualKnn { k: DEFAULT_K },
            "cknna" => Measure::Cknna(CknnaParams::default()),
            "rsa" => Measure::Rsa {
                rdm: RdmKind::default(),
                compare: RdmComparison::default(),
            },
            "shape_angular" => Measure::ShapeAngular {
                alpha: 1.0,
                centered: true,
            },
            other => {
                return Err(ParameterError::new(
                    "metric",
                    format!(
                        "unknown metric `{other}`; known metrics: {}",
                        MEASURE_NAMES.join(", ")
                    ),
                ))
            }
        })
    }

    /// The measure's name (`linear_cka`, `rbf_cka_debiased`, ...), as on the command line and
    /// in file names.
    pub fn name(&self) -> &'static str {
        match self {
            Measure::LinearCka {
                estimator: HsicEstimator::Biased,
            } => "linear_cka",
            Measure::LinearCka { .. } => "linear_cka_debiased",
            Measure::RbfCka {
                estimator: HsicEstimator::Biased,
                ..
            } => "rbf_cka",
            Measure::RbfCka { .. } => "rbf_cka_debiased",
            Measure::MinibatchCka { .. } => "minibatch_cka",
            Measure::Cca(measure) => measure.name(),
            Measure::MutualKnn { .. } => "mutual_knn",
            Measure::Cknna(_) => "cknna",
            Measure::Rsa { .. } => "rsa",
            Measure::ShapeAngular { .. } => "shape_angular",
        }
    }

    /// A readable title for figures (`Linear CKA`, `Procrustes distance (0 = same)`).
    pub fn title(&self) -> &'static str {
        match self.name() {
            "linear_cka" => "Linear CKA",
            "linear_cka_debiased" => "Linear CKA (debiased)",
            "rbf_cka" => "RBF CKA",
            "rbf_cka_debiased" => "RBF CKA (debiased)",
            "minibatch_cka" => "Minibatch CKA",
            "cca" => "Mean CCA",
            "svcca" => "SVCCA",
            "pwcca" => "PWCCA",
            "procrustes" => "Procrustes distance (0 = same)",
            "shape_angular" => "Angular shape distance (0 = same)",
            "mutual_knn" => "Mutual kNN alignment",
            "cknna" => "CKNNA",
            _ => "RSA (RDM correlation)",
        }
    }

    /// Whether the measure is a distance (0 = the same), so that smaller is more similar.
    pub fn is_distance(&self) -> bool {
        matches!(
            self,
            Measure::Cca(CcaMeasure::Procrustes) | Measure::ShapeAngular { .. }
        )
    }

    /// The fewest examples repsim computes the measure for: 4 for every measure.
    pub fn min_examples(&self) -> usize {
        MIN_EXAMPLES
    }

    /// The CCA-family measure, if this is one.
    pub fn cca_measure(&self) -> Option<CcaMeasure> {
        match self {
            Measure::Cca(measure) => Some(*measure),
            _ => None,
        }
    }

    /// Refuses parameters outside their domain, naming the parameter and the value.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Measure::RbfCka { threshold, .. } if !(threshold.is_finite() && threshold > 0.0) => {
                Err(ParameterError::new(
                    "threshold",
                    format!("the RBF bandwidth threshold must be a positive number, got {threshold}"),
                ))
            }
            Measure::MinibatchCka { batch_size } if batch_size < MIN_EXAMPLES => {
                Err(ParameterError::new(
                    "batch_size",
                    format!(
                        "minibatch CKA's batch size must be at least {MIN_EXAMPLES} (the unbiased HSIC of each batch), got {batch_size}"
                    ),
                ))
            }
            Measure::Cca(CcaMeasure::Svcca(reduction)) => reduction.validate(),
            Measure::MutualKnn { k: 0 } | Measure::Cknna(CknnaParams { k: 0, .. }) => Err(
                ParameterError::new("k", "the number of neighbours must be at least 1, got 0"),
            ),
            Measure::Cknna(CknnaParams { eps, .. }) if !(eps.is_finite() && eps >= 0.0) => Err(
                ParameterError::new("eps", format!("must be a number >= 0, got {eps}")),
            ),
            Measure::ShapeAngular { alpha, .. } if !(0.0..=1.0).contains(&alpha) => Err(
                ParameterError::new("alpha", format!("must be in [0, 1], got {alpha}")),
            ),
            _ => Ok(()),
        }
    }

    /// The parameters as files record them, beside the name: the keys every version of repsim
    /// has written (`estimator`, `threshold`, `batch_size`, `reduction`, `convention`, `k`,
    /// `normalize_rows`, `rdm`, `compare`, `alpha`).
    pub fn record(&self) -> Vec<(&'static str, Value)> {
        let json = |v: &dyn erased::ToJson| v.to_json();
        match self {
            Measure::LinearCka { estimator } => vec![("estimator", json(estimator))],
            Measure::RbfCka {
                threshold,
                estimator,
            } => vec![
                ("estimator", json(estimator)),
                ("threshold", json(threshold)),
            ],
            Measure::MinibatchCka { batch_size } => vec![("batch_size", json(batch_size))],
            Measure::Cca(CcaMeasure::Svcca(reduction)) => vec![("reduction", json(reduction))],
            Measure::Cca(CcaMeasure::Pwcca(convention)) => vec![("convention", json(convention))],
            Measure::Cca(_) => Vec::new(),
            Measure::MutualKnn { k } => vec![("k", json(k))],
            Measure::Cknna(p) => vec![
                ("k", json(&p.k)),
                ("estimator", json(&p.estimator)),
                ("normalize_rows", json(&p.normalize)),
                ("eps", json(&p.eps)),
            ],
            Measure::Rsa { rdm, compare } => {
                vec![("rdm", json(rdm)), ("compare", json(compare))]
            }
            Measure::ShapeAngular { alpha, centered } => {
                vec![("alpha", json(alpha)), ("centered", json(centered))]
            }
        }
    }

    /// The keys [`Measure::record`] writes for this measure.
    pub fn parameter_keys(&self) -> Vec<&'static str> {
        self.record().into_iter().map(|(key, _)| key).collect()
    }

    /// The measure `name` with the parameters a file records for it (a key left out reads as
    /// its default; keys of other measures' or of the computation, such as `precision`, are
    /// not read). Refuses an unknown name, a value of the wrong type or domain, and a record
    /// that contradicts its name (`linear_cka` with the unbiased estimator).
    pub fn from_record(name: &str, parameters: &BTreeMap<String, Value>) -> Result<Measure> {
        let mut measure = Measure::from_name(name)?;
        for key in measure.parameter_keys() {
            if let Some(value) = parameters.get(key) {
                measure.set_json(key, value)?;
            }
        }
        if measure.name() != name {
            return Err(ParameterError::new(
                "metric",
                format!(
                    "`{name}` is recorded with parameters of {} ({:?})",
                    measure.name(),
                    measure.record()
                ),
            ));
        }
        measure.validate()?;
        Ok(measure)
    }

    /// Sets parameter `key` from text (the command line's `name:key=value`). Returns whether
    /// the measure has such a parameter; refuses a value it cannot take, naming both.
    pub fn set_parameter(&mut self, key: &str, text: &str) -> Result<bool> {
        let value = match key {
            // SVCCA's reduction from its two spellings.
            "keep" => serde_json::json!({ "keep": parse_number("keep", text)? }),
            "dims" => serde_json::json!({ "dims": parse_number("dims", text)? }),
            _ => serde_json::from_str::<Value>(text).unwrap_or_else(|_| Value::String(text.into())),
        };
        let key = if matches!(key, "keep" | "dims") {
            "reduction"
        } else {
            key
        };
        if !self.parameter_keys().contains(&key) {
            return Ok(false);
        }
        self.set_json(key, &value)?;
        Ok(true)
    }

    fn set_json(&mut self, key: &str, value: &Value) -> Result<()> {
        fn read<T: serde::de::DeserializeOwned>(key: &'static str, value: &Value) -> Result<T> {
            serde_json::from_value(value.clone())
                .map_err(|e| ParameterError::new(key, format!("{value} is not valid here: {e}")))
        }
        match (self, key) {
            (Measure::LinearCka { estimator }, "estimator") => {
                *estimator = read("estimator", value)?
            }
            (Measure::RbfCka { estimator, .. }, "estimator") => {
                *estimator = read("estimator", value)?
            }
            (Measure::RbfCka { threshold, .. }, "threshold") => {
                *threshold = read("threshold", value)?
            }
            (Measure::MinibatchCka { batch_size }, "batch_size") => {
                *batch_size = read("batch_size", value)?
            }
            (Measure::Cca(CcaMeasure::Svcca(reduction)), "reduction") => {
                *reduction = read("reduction", value)?
            }
            (Measure::Cca(CcaMeasure::Pwcca(convention)), "convention") => {
                *convention = read("convention", value)?
            }
            (Measure::MutualKnn { k }, "k") => *k = read("k", value)?,
            (Measure::Cknna(p), "k") => p.k = read("k", value)?,
            (Measure::Cknna(p), "estimator") => p.estimator = read("estimator", value)?,
            (Measure::Cknna(p), "normalize_rows") => p.normalize = read("normalize_rows", value)?,
            (Measure::Cknna(p), "eps") => p.eps = read("eps", value)?,
            (Measure::Rsa { rdm, .. }, "rdm") => *rdm = read("rdm", value)?,
            (Measure::Rsa { compare, .. }, "compare") => *compare = read("compare", value)?,
            (Measure::ShapeAngular { alpha, .. }, "alpha") => *alpha = read("alpha", value)?,
            (Measure::ShapeAngular { centered, .. }, "centered") => {
                *centered = read("centered", value)?
            }
            (measure, key) => {
                return Err(ParameterError::new(
                    "parameter",
                    format!(
                        "{} has no parameter `{key}` (it has: {})",
                        measure.name(),
                        describe_keys(measure)
                    ),
                ))
            }
        }
        Ok(())
    }

    /// A measure from its command-line spelling, `name[:key=value]...`, with `defaults`
    /// (`key`, text) applied first where the measure has the key (the CLI's flags such as
    /// `--batch-size`), then the spelling's own pairs (a key the measure lacks is refused),
    /// then [`Measure::validate`].
    pub fn from_spec(spec: &str, defaults: &[(&str, String)]) -> Result<Measure> {
        let mut parts = spec.trim().split(':');
        let name = parts.next().unwrap_or_default();
        let mut measure = Measure::from_name(name)?;
        for (key, text) in defaults {
            measure.set_parameter(key, text)?;
        }
        for pair in parts {
            let Some((key, text)) = pair.split_once('=') else {
                return Err(ParameterError::new(
                    "metric",
                    format!("`{pair}` in `{spec}` is not key=value"),
                ));
            };
            if !measure.set_parameter(key.trim(), text.trim())? {
                return Err(ParameterError::new(
                    "metric",
                    format!(
                        "`{spec}`: {name} has no parameter `{}` (it has: {})",
                        key.trim(),
                        describe_keys(&measure)
                    ),
                ));
            }
        }
        if measure.name() != name {
            return Err(ParameterError::new(
                "metric",
                format!("`{spec}` is {}: write that name instead", measure.name()),
            ));
        }
        measure.validate()?;
        Ok(measure)
    }

    /// The full spelling, `name:key=value...`, that [`Measure::from_spec`] reads back.
    pub fn spec(&self) -> String {
        let mut spec = self.name().to_string();
        for (key, value) in self.record() {
            let text = match (key, &value) {
                ("reduction", Value::Object(map)) => {
                    for (k, v) in map {
                        spec += &format!(":{k}={v}");
                    }
                    continue;
                }
                (_, Value::String(s)) => s.clone(),
                (_, other) => other.to_string(),
            };
            spec += &format!(":{key}={text}");
        }
        spec
    }
}

fn describe_keys(measure: &Measure) -> String {
    let keys: Vec<&str> = measure
        .parameter_keys()
        .into_iter()
        .flat_map(|k| {
            if k == "reduction" {
                vec!["keep", "dims"]
            } else {
                vec![k]
            }
        })
        .collect();
    if keys.is_empty() {
        "none".into()
    } else {
        keys.join(", ")
    }
}

fn parse_number(key: &'static str, text: &str) -> Result<Value> {
    serde_json::from_str::<Value>(text)
        .ok()
        .filter(Value::is_number)
        .ok_or_else(|| ParameterError::new(key, format!("`{text}` is not a number")))
}

/// Serialising any parameter to JSON without naming its type at each call.
mod erased {
    pub trait ToJson {
        fn to_json(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> ToJson for T {
        fn to_json(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
        }
    }
}

impl fmt::Display for Measure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Measure {
    type Err = ParameterError;

    /// `name[:key=value]...`; see [`Measure::from_spec`].
    fn from_str(s: &str) -> Result<Self> {
        Measure::from_spec(s, &[])
    }
}

/// A measure on its own in JSON: `{"name": "svcca", "reduction": {"keep": 0.99}}`.
#[derive(Serialize, Deserialize)]
struct MeasureObject {
    name: String,
    #[serde(flatten)]
    parameters: BTreeMap<String, Value>,
}

impl Serialize for Measure {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        MeasureObject {
            name: self.name().into(),
            parameters: self
                .record()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Measure {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        let object = MeasureObject::deserialize(deserializer)?;
        let measure = Measure::from_record(&object.name, &object.parameters)
            .map_err(serde::de::Error::custom)?;
        let known = measure.parameter_keys();
        if let Some(extra) = object
            .parameters
            .keys()
            .find(|k| !known.contains(&k.as_str()))
        {
            return Err(serde::de::Error::custom(format!(
                "{} has no parameter `{extra}`",
                measure.name()
            )));
        }
        Ok(measure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_reads_back_with_defaults_and_unknown_names_list_the_known_ones() {
        for name in MEASURE_NAMES {
            let measure = Measure::from_name(name).unwrap();
            assert_eq!(measure.name(), name);
            assert_eq!(name.parse::<Measure>().unwrap(), measure);
            assert_eq!(
                measure.spec().parse::<Measure>().unwrap(),
                measure,
                "{}",
                measure.spec()
            );
            measure.validate().unwrap();
        }
        let err = "cka".parse::<Measure>().unwrap_err().to_string();
        assert!(
            err.contains("`cka`") && err.contains("minibatch_cka"),
            "{err}"
        );
    }

    #[test]
    fn specs_set_parameters_and_name_what_is_wrong() {
        assert_eq!(
            "rbf_cka:threshold=0.5".parse::<Measure>().unwrap(),
            Measure::RbfCka {
                threshold: 0.5,
                estimator: HsicEstimator::Biased
            }
        );
        assert_eq!(
            "svcca:dims=20".parse::<Measure>().unwrap(),
            Measure::Cca(CcaMeasure::Svcca(SvdReduction::Dims(20)))
        );
        assert_eq!(
            "pwcca:convention=textbook".parse::<Measure>().unwrap(),
            Measure::Cca(CcaMeasure::Pwcca(PwccaConvention::Textbook))
        );
        let err = |s: &str| s.parse::<Measure>().unwrap_err().to_string();
        assert!(err("rbf_cka:threshold=0").contains("positive number, got 0"));
        assert!(err("rbf_cka:threshold=abc").contains("threshold"));
        assert!(err("svcca:keep=1.5").contains("(0, 1], got 1.5"));
        assert!(err("cca:k=3").contains("cca has no parameter `k` (it has: none)"));
        assert!(err("minibatch_cka:batch_size=2").contains("at least 4"));
        assert!(err("shape_angular:alpha=2").contains("[0, 1], got 2"));
        assert!(err("mutual_knn:k=0").contains("at least 1"));
        assert!(err("rsa:rdm=cosine").contains("rdm"));
        assert!(err("cknna:eps=-1").contains(">= 0, got -1"));
        assert_eq!(
            "rsa:rdm=mean_squared_difference:compare=tau_a"
                .parse::<Measure>()
                .unwrap(),
            Measure::Rsa {
                rdm: RdmKind::MeanSquaredDifference,
                compare: RdmComparison::TauA
            }
        );
        assert!(err("linear_cka:estimator=unbiased").contains("linear_cka_debiased"));
        assert!(err("rsa:rdm").contains("not key=value"));
        // Flags apply where the measure has the key, and the spelling's pairs win.
        let defaults = [
            ("batch_size", "64".to_string()),
            ("threshold", "2".to_string()),
        ];
        assert_eq!(
            Measure::from_spec("minibatch_cka", &defaults).unwrap(),
            Measure::minibatch_cka(64)
        );
        assert_eq!(
            Measure::from_spec("minibatch_cka:batch_size=32", &defaults).unwrap(),
            Measure::minibatch_cka(32)
        );
        assert_eq!(Measure::from_spec("cca", &defaults).unwrap(), Measure::CCA);
    }

    #[test]
    fn records_read_back_and_contradictions_are_refused() {
        for name in MEASURE_NAMES {
            let measure = Measure::from_name(name).unwrap();
            let record: BTreeMap<String, Value> = measure
                .record()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            assert_eq!(Measure::from_record(name, &record).unwrap(), measure);
            let json = serde_json::to_string(&measure).unwrap();
            assert_eq!(
                serde_json::from_str::<Measure>(&json).unwrap(),
                measure,
                "{json}"
            );
        }
        let record: BTreeMap<String, Value> =
            [("estimator".to_string(), Value::from("unbiased"))].into();
        assert!(Measure::from_record("linear_cka", &record).is_err());
        let record: BTreeMap<String, Value> = [("threshold".to_string(), Value::from(-1.0))].into();
        assert!(Measure::from_record("rbf_cka", &record)
            .unwrap_err()
            .to_string()
            .contains("-1"));
        assert!(serde_json::from_str::<Measure>(r#"{"name":"cca","k":3}"#).is_err());
        assert_eq!(
            serde_json::to_string(&Measure::svcca()).unwrap(),
            r#"{"name":"svcca","reduction":{"keep":0.99}}"#
        );
    }

    #[test]
    fn distances_and_titles() {
        let distances: Vec<&str> = MEASURE_NAMES
            .into_iter()
            .filter(|n| Measure::from_name(n).unwrap().is_distance())
            .collect();
        assert_eq!(distances, ["procrustes", "shape_angular"]);
        assert_eq!(Measure::LINEAR_CKA.title(), "Linear CKA");
        assert_eq!(
            Measure::from_name("rsa").unwrap().title(),
            "RSA (RDM correlation)"
        );
    }
}
