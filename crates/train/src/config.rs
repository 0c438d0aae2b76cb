//! What a training run is: [`TrainConfig`] (model, data, optimiser, schedule, seed), serialised
//! to the run's `config.json`. Two runs with equal configs on the same device and machine give
//! the same weights, bit for bit (see the crate docs); `--resume` refuses a config that differs
//! from the run's, naming the first field that does ([`first_difference`]).

use repsim_model::ModelSpec;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::schedule::ScheduleConfig;

/// The data a run trains and evaluates on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataConfig {
    /// `shapes` (built in), `cifar10=PATH`, `cifar100=PATH`, `cifar100-coarse=PATH`,
    /// `folder=PATH` (images), or `text` (built-in synthetic text) / `text=PATH` (a UTF-8 file)
    /// for language models.
    pub dataset: String,
    /// Image side of `shapes` and image folders (CIFAR is always 32).
    pub side: usize,
    /// Training examples: the first N of the split (for `shapes` and `text`, N are generated).
    /// `None`: the whole split (`shapes`: 50,000).
    pub train_count: Option<usize>,
    /// Test examples, likewise (`shapes`: 10,000).
    pub test_count: Option<usize>,
    /// Fraction of training labels replaced by random ones (0 to 1; 1 for memorisation).
    pub random_labels: f64,
    /// Random crops (padding side/8, 4 at 32 px) and horizontal flips of training images.
    pub augment: bool,
    /// Seed of the generated data (`shapes`, `text`) and of the random labels.
    pub data_seed: u64,
    /// Characters per window of a language model's text.
    pub window: usize,
    /// How many times each training image is seen per epoch (1: once). A training set of N
    /// images repeated k times gives epochs of k x N images (each copy augmented on its own), so
    /// a small set can be trained for as many steps as a large one with as few evaluations and
    /// checkpoints per step. Images only. Left out of `config.json` when 1.
    #[serde(default = "once", skip_serializing_if = "is_once")]
    pub train_repeats: usize,
}

impl DataConfig {
    /// Whether the data is a language model's text (`text` or `text=PATH`).
    pub fn is_text(&self) -> bool {
        self.dataset == "text" || self.dataset.starts_with("text=")
    }

    /// [`Self::train_repeats`] is at least 1, and 1 for text (only images are repeated).
    pub(crate) fn check_train_repeats(&self) -> Result<()> {
        if self.train_repeats == 0 {
            return Err(TrainError::BadConfig(
                "--train-repeats must be at least 1 (each image seen once per epoch), got 0".into(),
            ));
        }
        if self.train_repeats > 1 && self.is_text() {
            return Err(TrainError::BadConfig(format!(
                "--train-repeats {} repeats training images; a language model's text is not repeated",
                self.train_repeats
            )));
        }
        Ok(())
    }
}

fn once() -> usize {
    1
}

fn is_once(times: &usize) -> bool {
    *times == 1
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            dataset: "shapes".into(),
            side: 16,
            train_count: Some(10_000),
            test_count: Some(2_000),
            random_labels: 0.0,
            augment: true,
            data_seed: 0,
            window: 64,
            train_repeats: 1,
        }
    }
}

/// The optimiser. Defaults are PyTorch's, stated here because burn's differ: burn's SGD
/// momentum has `dampening = 0.1` (PyTorch 0: repsim sets 0), Adam's epsilon is 1e-5 (PyTorch
/// 1e-8: repsim uses 1e-8), AdamW's weight decay 1e-4 (PyTorch 1e-2: repsim uses 1e-2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OptimizerConfig {
    /// SGD with (optionally Nesterov) momentum, dampening 0, and L2 weight decay.
    Sgd {
        /// Momentum factor (0 for plain SGD).
        momentum: f64,
        /// Nesterov momentum.
        nesterov: bool,
        /// L2 penalty added to the gradient.
        weight_decay: f64,
    },
    /// Adam (Kingma & Ba 2015) with L2 weight decay added to the gradient.
    Adam {
        /// First-moment decay.
        beta1: f64,
        /// Second-moment decay.
        beta2: f64,
        /// Denominator epsilon.
        epsilon: f64,
        /// L2 penalty added to the gradient.
        weight_decay: f64,
    },
    /// AdamW (Loshchilov & Hutter 2019): decoupled weight decay.
    #[serde(rename = "adamw")]
    AdamW {
        /// First-moment decay.
        beta1: f64,
        /// Second-moment decay.
        beta2: f64,
        /// Denominator epsilon.
        epsilon: f64,
        /// Decoupled weight decay.
        weight_decay: f64,
    },
}

impl OptimizerConfig {
    /// SGD, momentum 0.9, dampening 0, weight decay 5e-4 (He et al. 2016's CIFAR recipe).
    pub fn sgd() -> Self {
        OptimizerConfig::Sgd {
            momentum: 0.9,
            nesterov: false,
            weight_decay: 5e-4,
        }
    }

    /// Adam with PyTorch's defaults (betas 0.9, 0.999; epsilon 1e-8; no weight decay).
    pub fn adam() -> Self {
        OptimizerConfig::Adam {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.0,
        }
    }

    /// AdamW with PyTorch's defaults (betas 0.9, 0.999; epsilon 1e-8; weight decay 1e-2).
    pub fn adamw() -> Self {
        OptimizerConfig::AdamW {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: 1e-2,
        }
    }

    /// The optimiser named `sgd`, `adam` or `adamw`, with its defaults.
    pub fn by_name(name: &str) -> Result<Self> {
        match name {
            "sgd" => Ok(Self::sgd()),
            "adam" => Ok(Self::adam()),
            "adamw" => Ok(Self::adamw()),
            other => Err(TrainError::BadConfig(format!(
                "unknown optimizer {other:?}; use sgd, adam or adamw"
            ))),
        }
    }

    fn validate(&self) -> Result<()> {
        let check = |name: &str, value: f64, low: f64, high: f64| {
            if value.is_finite() && value >= low && value < high {
                Ok(())
            } else {
                Err(TrainError::BadConfig(format!(
                    "optimizer {name} must be in [{low}, {high}), got {value}"
                )))
            }
        };
        match self {
            OptimizerConfig::Sgd {
                momentum,
                weight_decay,
                ..
            } => {
                check("momentum", *momentum, 0.0, 1.0)?;
                check("weight decay", *weight_decay, 0.0, 1.0)
            }
            OptimizerConfig::Adam {
                beta1,
                beta2,
                epsilon,
                weight_decay,
            }
            | OptimizerConfig::AdamW {
                beta1,
                beta2,
                epsilon,
                weight_decay,
            } => {
                check("beta1", *beta1, 0.0, 1.0)?;
                check("beta2", *beta2, 0.0, 1.0)?;
                check("epsilon", *epsilon, f64::MIN_POSITIVE, 1.0)?;
                check("weight decay", *weight_decay, 0.0, 1.0)
            }
        }
    }
}

/// Everything that fixes a run's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// The network.
    pub model: ModelSpec,
    /// The data.
    pub data: DataConfig,
    /// The optimiser.
    pub optimizer: OptimizerConfig,
    /// The learning-rate schedule.
    pub schedule: ScheduleConfig,
    /// Peak learning rate.
    pub lr: f64,
    /// Number of epochs.
    pub epochs: usize,
    /// Examples per training step.
    pub batch_size: usize,
    /// Seed of the initialisation, the shuffles, the augmentation and burn's RNG.
    pub seed: u64,
}

impl TrainConfig {
    /// A config with repsim's defaults around `model`: shapes 16 px (10,000 train / 2,000 test
    /// images), SGD (momentum 0.9, weight decay 5e-4), lr 0.05, cosine schedule, 10 epochs,
    /// batch 128, seed 0.
    pub fn new(model: ModelSpec) -> Self {
        TrainConfig {
            model,
            data: DataConfig::default(),
            optimizer: OptimizerConfig::sgd(),
            schedule: ScheduleConfig::default(),
            lr: 0.05,
            epochs: 10,
            batch_size: 128,
            seed: 0,
        }
    }

    /// Checks every value that can be checked without building the model or opening the data.
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(TrainError::BadConfig(
                "epochs must be at least 1, got 0".into(),
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(TrainError::BadConfig(format!(
                "the learning rate must be positive and finite, got {}",
                self.lr
            )));
        }
        if self.batch_size == 0 {
            return Err(TrainError::BadConfig(
                "the batch size must be at least 1, got 0".into(),
            ));
        }
        let fraction = self.data.random_labels;
        if !(fraction.is_finite() && (0.0..=1.0).contains(&fraction)) {
            return Err(TrainError::BadConfig(format!(
                "the random-label fraction must be in [0, 1], got {fraction}"
            )));
        }
        if self.data.train_count == Some(0) || self.data.test_count == Some(0) {
            return Err(TrainError::BadConfig(
                "train and test counts must be at least 1".into(),
            ));
        }
        self.data.check_train_repeats()?;
        self.optimizer.validate()?;
        self.schedule.validate(self.epochs)
    }
}

/// The first field where two JSON values differ, as (dotted path, left, right).
pub fn first_difference(
    left: &serde_json::Value,
    right: &serde_json::Value,
) -> Option<(String, String, String)> {
    use serde_json::Value;
    fn walk(path: &str, a: &Value, b: &Value) -> Option<(String, String, String)> {
        let join = |key: &str| {
            if path.is_empty() {
                key.to_string()
            } else {
                format!("{path}.{key}")
            }
        };
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
                keys.sort();
                keys.dedup();
                keys.into_iter().find_map(|k| {
                    walk(
                        &join(k),
                        x.get(k).unwrap_or(&Value::Null),
                        y.get(k).unwrap_or(&Value::Null),
                    )
                })
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
                .iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (p, q))| walk(&join(&i.to_string()), p, q)),
            // JSON numbers read back may differ from the written f64 in the last bit.
            (Value::Number(x), Value::Number(y))
                if x.as_f64().zip(y.as_f64()).is_some_and(|(x, y)| {
                    x == y || (x - y).abs() <= 1e-12 * x.abs().max(y.abs())
                }) =>
            {
                None
            }
            _ if a == b => None,
            _ => Some((
                if path.is_empty() {
                    "(root)".into()
                } else {
                    path.to_string()
                },
                a.to_string(),
                b.to_string(),
            )),
        }
    }
    walk("", left, right)
}

#[cfg(test)]
mod tests {
    use super::*;
    use repsim_model::ResNetConfig;

    #[test]
    fn the_first_differing_field_is_named() {
        let a = TrainConfig::new(ModelSpec::Resnet(ResNetConfig::cifar(8, 1, 10)));
        let mut b = a.clone();
        b.lr = 0.1;
        b.data.side = 24;
        let (field, run, now) = first_difference(
            &serde_json::to_value(&a).unwrap(),
            &serde_json::to_value(&b).unwrap(),
        )
        .unwrap();
        assert_eq!(field, "data.side");
        assert_eq!((run.as_str(), now.as_str()), ("16", "24"));
        assert!(first_difference(
            &serde_json::to_value(&a).unwrap(),
            &serde_json::to_value(&a).unwrap()
        )
        .is_none());
    }

    #[test]
    fn bad_values_are_refused_with_their_value() {
        let good = TrainConfig::new(ModelSpec::Resnet(ResNetConfig::cifar(8, 1, 10)));
        good.validate().unwrap();
        let mut c = good.clone();
        c.epochs = 0;
        assert!(c.validate().unwrap_err().to_string().contains("epochs"));
        let mut c = good.clone();
        c.lr = -0.1;
        assert!(c.validate().unwrap_err().to_string().contains("-0.1"));
        let mut c = good.clone();
        c.data.random_labels = 1.5;
        assert!(c.validate().unwrap_err().to_string().contains("1.5"));
        let mut c = good;
        c.optimizer = OptimizerConfig::Sgd {
            momentum: 1.2,
            nesterov: false,
            weight_decay: 0.0,
        };
        assert!(c.validate().unwrap_err().to_string().contains("momentum"));
        assert!(OptimizerConfig::by_name("rmsprop").is_err());
    }
}
