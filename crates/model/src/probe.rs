//! Named activation capture. burn has no forward hooks, so every model threads a [`Recorder`]
//! through its forward pass and names each intermediate tensor by a stable path
//! (`stage2.block3.conv1`). With [`Probe::None`] the recorder does nothing: names are never
//! even formatted, and nothing is kept.

use burn::tensor::Tensor;

/// Which activations `forward_probed` returns.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Probe {
    /// Nothing (what plain `forward` uses).
    None,
    /// The outputs of the units compared in the papers: the stem, every residual block (or
    /// conv layer, or RNN layer), the pooled features and the logits.
    #[default]
    Blocks,
    /// Every intermediate tensor: each conv, batch norm, ReLU, residual add, pool and linear
    /// output.
    All,
    /// Exactly these names (from `Blocks` or `All`), in forward order.
    Names(Vec<String>),
}

impl std::str::FromStr for Probe {
    type Err = crate::ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "blocks" => Ok(Probe::Blocks),
            "all" => Ok(Probe::All),
            "none" => Ok(Probe::None),
            other if other.starts_with("names=") => {
                let names: Vec<String> = other["names=".len()..]
                    .split(',')
                    .map(|n| n.trim().to_string())
                    .filter(|n| !n.is_empty())
                    .collect();
                if names.is_empty() {
                    return Err(crate::ModelError::BadConfig(
                        "names= lists no layer: give at least one name (names=a,b,c; see \
                         `repsim describe` for a model's layer names)"
                            .into(),
                    ));
                }
                Ok(Probe::Names(names))
            }
            other => Err(crate::ModelError::BadConfig(format!(
                "unknown probe {other:?}; use blocks, all, or names=a,b,c"
            ))),
        }
    }
}

/// One captured activation, at its natural rank; examples are always on dim 0.
#[derive(Debug, Clone)]
pub enum ActivationTensor {
    /// (N, C, H, W) feature maps.
    Map(Tensor<4>),
    /// (N, T, F) sequences.
    Sequence(Tensor<3>),
    /// (N, F) vectors.
    Vector(Tensor<2>),
}

impl ActivationTensor {
    /// This activation as an (examples, features) matrix: a map or vector flattened past dim 0,
    /// a sequence reduced over time by `time`.
    pub fn into_matrix(self, time: TimeReduction) -> Tensor<2> {
        match self {
            ActivationTensor::Map(t) => {
                let [n, c, h, w] = t.dims();
                t.reshape([n, c * h * w])
            }
            ActivationTensor::Vector(t) => t,
            ActivationTensor::Sequence(t) => {
                let [n, steps, f] = t.dims();
                match time {
                    TimeReduction::Last => t.slice([0..n, steps - 1..steps, 0..f]).reshape([n, f]),
                    TimeReduction::Mean => t.mean_dim(1).reshape([n, f]),
                    TimeReduction::Steps => t.reshape([n * steps, f]),
                }
            }
        }
    }

    /// The shape.
    pub fn dims(&self) -> Vec<usize> {
        match self {
            ActivationTensor::Map(t) => t.dims().to_vec(),
            ActivationTensor::Sequence(t) => t.dims().to_vec(),
            ActivationTensor::Vector(t) => t.dims().to_vec(),
        }
    }
}

/// A tensor of any rank as an activation, examples on dim 0: rank 4 is a feature map
/// `(N, C, H, W)`, rank 3 a sequence `(N, T, F)`, rank 2 a vector per example; rank 1 becomes
/// one feature per example `(N, 1)`, and ranks 5 and 6 are flattened past dim 0.
impl From<Tensor<4>> for ActivationTensor {
    fn from(t: Tensor<4>) -> Self {
        ActivationTensor::Map(t)
    }
}

impl From<Tensor<3>> for ActivationTensor {
    fn from(t: Tensor<3>) -> Self {
        ActivationTensor::Sequence(t)
    }
}

impl From<Tensor<2>> for ActivationTensor {
    fn from(t: Tensor<2>) -> Self {
        ActivationTensor::Vector(t)
    }
}

impl From<Tensor<1>> for ActivationTensor {
    fn from(t: Tensor<1>) -> Self {
        let [n] = t.dims();
        ActivationTensor::Vector(t.reshape([n, 1]))
    }
}

macro_rules! flattened_activation {
    ($rank:literal) => {
        impl From<Tensor<$rank>> for ActivationTensor {
            fn from(t: Tensor<$rank>) -> Self {
                let dims = t.dims();
                let features = dims[1..].iter().product::<usize>();
                ActivationTensor::Vector(t.reshape([dims[0], features]))
            }
        }
    };
}
flattened_activation!(5);
flattened_activation!(6);

/// How a sequence activation (N, T, F) becomes one row per example for similarity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum TimeReduction {
    /// The last step's features (N, F).
    #[default]
    Last,
    /// The mean over time (N, F).
    Mean,
    /// Every step as its own sample (N * T, F), as the PWCCA paper does for LSTMs.
    Steps,
}

impl std::str::FromStr for TimeReduction {
    type Err = crate::ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "last" => Ok(TimeReduction::Last),
            "mean" => Ok(TimeReduction::Mean),
            "steps" => Ok(TimeReduction::Steps),
            other => Err(crate::ModelError::BadConfig(format!(
                "unknown time reduction {other:?}; use last, mean or steps"
            ))),
        }
    }
}

/// The activations of one forward pass: (name, tensor) in forward order.
#[derive(Debug, Clone, Default)]
pub struct Activations {
    entries: Vec<(String, ActivationTensor)>,
}

impl Activations {
    /// The names, in forward order.
    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// The (name, tensor) pairs.
    pub fn iter(&self) -> impl Iterator<Item = &(String, ActivationTensor)> {
        self.entries.iter()
    }

    /// The activation named `name`.
    pub fn get(&self, name: &str) -> Option<&ActivationTensor> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// Number of activations.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing was captured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every activation as an (examples, features) matrix: maps and vectors flattened past
    /// dim 0, sequences reduced over time by `time`.
    pub fn into_matrices(self, time: TimeReduction) -> Vec<(String, Tensor<2>)> {
        self.entries
            .into_iter()
            .map(|(name, t)| (name, t.into_matrix(time)))
            .collect()
    }

    /// No activations yet (to fill with [`Activations::with`]).
    pub fn new() -> Self {
        Activations::default()
    }

    /// These activations and one more, `name` after the others: for a hand-written model's
    /// `forward_with_layers`, e.g.
    /// `Activations::new().with("conv1", x1.clone()).with("fc", logits.clone())`.
    pub fn with(mut self, name: impl Into<String>, tensor: impl Into<ActivationTensor>) -> Self {
        self.entries.push((name.into(), tensor.into()));
        self
    }

    /// The (name, tensor) pairs, consumed.
    pub fn into_entries(self) -> Vec<(String, ActivationTensor)> {
        self.entries
    }

    pub(crate) fn push(&mut self, name: String, tensor: ActivationTensor) {
        self.entries.push((name, tensor));
    }

    /// Appends an activation (for callers assembling their own lists, e.g. to reduce one
    /// sequence over time with [`Activations::into_matrices`]).
    pub fn push_sequence(&mut self, name: &str, tensor: ActivationTensor) {
        self.entries.push((name.to_string(), tensor));
    }
}

impl<N: Into<String>, T: Into<ActivationTensor>> FromIterator<(N, T)> for Activations {
    fn from_iter<I: IntoIterator<Item = (N, T)>>(iter: I) -> Self {
        Activations {
            entries: iter
                .into_iter()
                .map(|(n, t)| (n.into(), t.into()))
                .collect(),
        }
    }
}

/// Collects activations during a forward pass according to a [`Probe`].
#[derive(Debug)]
pub struct Recorder<'p> {
    probe: &'p Probe,
    activations: Activations,
}

/// Whether a name is a block-level one (kept by [`Probe::Blocks`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Block,
    Inner,
}

static NO_PROBE: Probe = Probe::None;

impl<'p> Recorder<'p> {
    /// A recorder for `probe`.
    pub fn new(probe: &'p Probe) -> Self {
        Self {
            probe,
            activations: Activations::default(),
        }
    }

    /// A recorder that records nothing.
    pub fn disabled() -> Recorder<'static> {
        Recorder::new(&NO_PROBE)
    }

    /// Whether anything may be recorded (so callers can skip building name prefixes).
    pub fn is_active(&self) -> bool {
        !matches!(self.probe, Probe::None)
    }

    fn wants(&self, level: Level, name: impl FnOnce() -> String) -> Option<String> {
        match self.probe {
            Probe::None => None,
            Probe::Blocks if level == Level::Inner => None,
            Probe::Blocks | Probe::All => Some(name()),
            Probe::Names(names) => {
                let name = name();
                names.contains(&name).then_some(name)
            }
        }
    }

    /// Records a feature map.
    pub(crate) fn map(&mut self, level: Level, name: impl FnOnce() -> String, t: &Tensor<4>) {
        if let Some(name) = self.wants(level, name) {
            self.activations
                .push(name, ActivationTensor::Map(t.clone()));
        }
    }

    /// Records a vector per example.
    pub(crate) fn vector(&mut self, level: Level, name: impl FnOnce() -> String, t: &Tensor<2>) {
        if let Some(name) = self.wants(level, name) {
            self.activations
                .push(name, ActivationTensor::Vector(t.clone()));
        }
    }

    /// Records a sequence.
    pub(crate) fn sequence(&mut self, level: Level, name: impl FnOnce() -> String, t: &Tensor<3>) {
        if let Some(name) = self.wants(level, name) {
            self.activations
                .push(name, ActivationTensor::Sequence(t.clone()));
        }
    }

    /// The activations recorded, checking that every name asked for by [`Probe::Names`] was
    /// found.
    pub fn finish(self) -> Result<Activations, crate::ModelError> {
        if let Probe::Names(names) = self.probe {
            let found = self.activations.names();
            let missing: Vec<&String> = names
                .iter()
                .filter(|n| !found.contains(&n.as_str()))
                .collect();
            if !missing.is_empty() {
                return Err(crate::ModelError::UnknownLayer(format!(
                    "{} (run `repsim describe --probe all` to list the names)",
                    missing
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        Ok(self.activations)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    #[test]
    fn tensors_of_any_rank_become_activations() {
        let device = Device::flex();
        let acts = Activations::new()
            .with("map", Tensor::<4>::zeros([5, 2, 3, 3], &device))
            .with("seq", Tensor::<3>::zeros([5, 4, 6], &device))
            .with("vec", Tensor::<2>::zeros([5, 7], &device))
            .with("scalar", Tensor::<1>::zeros([5], &device))
            .with("five", Tensor::<5>::zeros([5, 2, 2, 2, 2], &device));
        assert_eq!(acts.names(), ["map", "seq", "vec", "scalar", "five"]);
        let shapes: Vec<Vec<usize>> = acts.iter().map(|(_, t)| t.dims()).collect();
        assert_eq!(
            shapes,
            [
                vec![5, 2, 3, 3],
                vec![5, 4, 6],
                vec![5, 7],
                vec![5, 1],
                vec![5, 16]
            ]
        );
        let collected: Activations = vec![("a", Tensor::<2>::zeros([3, 2], &device))]
            .into_iter()
            .collect();
        assert_eq!(collected.names(), ["a"]);
    }

    #[test]
    fn probes_parse() {
        assert_eq!("blocks".parse::<Probe>().unwrap(), Probe::Blocks);
        assert_eq!("all".parse::<Probe>().unwrap(), Probe::All);
        assert_eq!(
            "names=stem, pool".parse::<Probe>().unwrap(),
            Probe::Names(vec!["stem".into(), "pool".into()])
        );
        assert!("every".parse::<Probe>().is_err());
        assert!("names=".parse::<Probe>().is_err());
        assert!("names= , ".parse::<Probe>().is_err());
        assert_eq!(
            "steps".parse::<TimeReduction>().unwrap(),
            TimeReduction::Steps
        );
        assert!("first".parse::<TimeReduction>().is_err());
    }

    #[test]
    fn recorders_keep_what_their_probe_asks_for() {
        let t = Tensor::<2>::zeros([2, 3], &Device::flex());
        let record = |probe: &Probe| {
            let mut rec = Recorder::new(probe);
            rec.vector(Level::Inner, || "a.conv".into(), &t);
            rec.vector(Level::Block, || "a".into(), &t);
            rec.finish().map(|acts| {
                acts.names()
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(record(&Probe::All).unwrap(), ["a.conv", "a"]);
        assert_eq!(record(&Probe::Blocks).unwrap(), ["a"]);
        assert!(record(&Probe::None).unwrap().is_empty());
        assert_eq!(
            record(&Probe::Names(vec!["a.conv".into()])).unwrap(),
            ["a.conv"]
        );
        assert!(record(&Probe::Names(vec!["b".into()])).is_err());
        // A disabled recorder never even builds the names.
        let mut rec = Recorder::disabled();
        rec.vector(Level::Block, || panic!("name built"), &t);
        assert!(!rec.is_active());
    }
}
