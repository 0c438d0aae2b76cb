//! Recurrent networks from burn-nn's cells: stacked LSTM (Hochreiter & Schmidhuber 1997), GRU
//! (Cho et al. 2014) or vanilla tanh RNN layers, with a sequence-classification head (the
//! last step's state) or a next-token language-model head (every step), as in the PWCCA
//! paper's LSTM language models (Morcos et al. 2018). Each layer records `lstm.layerK` (or
//! `gru.`/`rnn.`) as a (N, T, hidden) sequence; `Activations::into_matrices` reduces time.

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::nn::{Gru, GruConfig, Lstm, LstmConfig, Rnn, RnnConfig as BasicRnnConfig};
use burn::tensor::{Device, Int, Tensor};

use crate::probe::{Level, Recorder};
use crate::{Activations, ModelError, Probe};

/// The recurrent cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CellKind {
    /// Long short-term memory.
    Lstm,
    /// Gated recurrent unit.
    Gru,
    /// Elman RNN with tanh.
    Rnn,
}

impl CellKind {
    /// `lstm`, `gru` or `rnn`: the prefix of layer names.
    pub fn name(self) -> &'static str {
        match self {
            CellKind::Lstm => "lstm",
            CellKind::Gru => "gru",
            CellKind::Rnn => "rnn",
        }
    }
}

impl std::str::FromStr for CellKind {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "lstm" => Ok(CellKind::Lstm),
            "gru" => Ok(CellKind::Gru),
            "rnn" => Ok(CellKind::Rnn),
            other => Err(ModelError::BadConfig(format!(
                "unknown cell {other:?}; use lstm, gru or rnn"
            ))),
        }
    }
}

/// A stack of recurrent layers.
#[derive(burn::config::Config, Debug, PartialEq)]
pub struct RecurrentConfig {
    /// The cell type.
    pub cell: CellKind,
    /// Features per input step.
    pub input_size: usize,
    /// Hidden units per layer.
    #[config(default = 128)]
    pub hidden: usize,
    /// Number of stacked layers.
    #[config(default = 2)]
    pub layers: usize,
}

impl RecurrentConfig {
    fn check(&self) -> Result<(), ModelError> {
        if self.input_size == 0 || self.hidden == 0 || self.layers == 0 || self.layers > 64 {
            return Err(ModelError::BadConfig(format!(
                "a recurrent stack needs input size >= 1, hidden >= 1 and 1-64 layers; got {}, {}, {}",
                self.input_size, self.hidden, self.layers
            )));
        }
        Ok(())
    }

    /// Builds the stack on `device`.
    pub fn init(&self, device: &Device) -> Result<RecurrentStack, ModelError> {
        self.check()?;
        let layers = (0..self.layers)
            .map(|i| {
                let d_input = if i == 0 { self.input_size } else { self.hidden };
                match self.cell {
                    CellKind::Lstm => RecurrentLayer {
                        lstm: Some(LstmConfig::new(d_input, self.hidden, true).init(device)),
                        gru: None,
                        rnn: None,
                    },
                    CellKind::Gru => RecurrentLayer {
                        lstm: None,
                        gru: Some(GruConfig::new(d_input, self.hidden, true).init(device)),
                        rnn: None,
                    },
                    CellKind::Rnn => RecurrentLayer {
                        lstm: None,
                        gru: None,
                        rnn: Some(BasicRnnConfig::new(d_input, self.hidden, true).init(device)),
                    },
                }
            })
            .collect();
        Ok(RecurrentStack {
            layers,
            cell: self.cell,
            input_size: self.input_size,
        })
    }
}

/// One recurrent layer: exactly one of the cells is present.
#[derive(Module, Debug)]
pub struct RecurrentLayer {
    /// An LSTM layer.
    pub lstm: Option<Lstm>,
    /// A GRU layer.
    pub gru: Option<Gru>,
    /// A vanilla RNN layer.
    pub rnn: Option<Rnn>,
}

impl RecurrentLayer {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        if let Some(lstm) = &self.lstm {
            lstm.forward(x, None).0
        } else if let Some(gru) = &self.gru {
            gru.forward(x, None)
        } else if let Some(rnn) = &self.rnn {
            rnn.forward(x, None).0
        } else {
            x
        }
    }
}

/// Stacked recurrent layers, batch first: (N, T, F) -> (N, T, hidden).
#[derive(Module, Debug)]
pub struct RecurrentStack {
    /// The layers, bottom first.
    pub layers: Vec<RecurrentLayer>,
    /// The cell type (for names).
    #[module(skip)]
    pub cell: CellKind,
    /// Features per input step.
    #[module(skip)]
    pub input_size: usize,
}

impl RecurrentStack {
    fn forward(&self, mut x: Tensor<3>, rec: &mut Recorder) -> Tensor<3> {
        let prefix = self.cell.name();
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(x);
            rec.sequence(Level::Block, || format!("{prefix}.layer{}", i + 1), &x);
        }
        x
    }
}

/// A sequence classifier: recurrent stack, then a linear head on the last step.
#[derive(burn::config::Config, Debug, PartialEq)]
pub struct RnnClassifierConfig {
    /// The recurrent stack (input size: features per step, e.g. 96 for rows of 32x32 RGB).
    pub recurrent: RecurrentConfig,
    /// Number of classes.
    #[config(default = 10)]
    pub classes: usize,
}

impl RnnClassifierConfig {
    /// Builds the classifier on `device`.
    pub fn init(&self, device: &Device) -> Result<RnnClassifier, ModelError> {
        if self.classes == 0 {
            return Err(ModelError::BadConfig("classes must be at least 1".into()));
        }
        Ok(RnnClassifier {
            recurrent: self.recurrent.init(device)?,
            head: LinearConfig::new(self.recurrent.hidden, self.classes).init(device),
        })
    }
}

/// Recurrent sequence classifier.
#[derive(Module, Debug)]
pub struct RnnClassifier {
    /// The stack.
    pub recurrent: RecurrentStack,
    /// Linear head on the last step.
    pub head: Linear,
}

impl RnnClassifier {
    /// Logits (N, classes) of sequences (N, T, F).
    pub fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        self.forward_recorded(x, &mut Recorder::disabled())
    }

    /// Logits and the activations `probe` asks for.
    pub fn forward_probed(
        &self,
        x: Tensor<3>,
        probe: &Probe,
    ) -> Result<(Tensor<2>, Activations), ModelError> {
        let [n, t, f] = x.dims();
        let expected = self.recurrent.input_size;
        if n == 0 || t == 0 || f != expected {
            let hint = if f != expected && f % 3 == 0 {
                format!(
                    " (images of width {} read as rows give {f} features per step)",
                    f / 3
                )
            } else {
                String::new()
            };
            return Err(ModelError::BadInput(format!(
                "expected sequences (N >= 1, T >= 1, {expected}), got {:?}{hint}",
                x.dims()
            )));
        }
        let mut rec = Recorder::new(probe);
        let logits = self.forward_recorded(x, &mut rec);
        Ok((logits, rec.finish()?))
    }

    fn forward_recorded(&self, x: Tensor<3>, rec: &mut Recorder) -> Tensor<2> {
        let h = self.recurrent.forward(x, rec);
        let [n, t, f] = h.dims();
        let last = h.slice([0..n, t - 1..t, 0..f]).reshape([n, f]);
        let logits = self.head.forward(last);
        rec.vector(Level::Block, || "logits".into(), &logits);
        logits
    }
}

/// A character (or token) language model: embedding, recurrent stack, linear head on every
/// step predicting the next token.
#[derive(burn::config::Config, Debug, PartialEq)]
pub struct RnnLanguageModelConfig {
    /// Vocabulary size.
    pub vocab: usize,
    /// Embedding width.
    #[config(default = 64)]
    pub embedding: usize,
    /// Cell type.
    #[config(default = "CellKind::Lstm")]
    pub cell: CellKind,
    /// Hidden units per layer.
    #[config(default = 128)]
    pub hidden: usize,
    /// Number of stacked layers.
    #[config(default = 2)]
    pub layers: usize,
}

impl RnnLanguageModelConfig {
    /// Builds the language model on `device`.
    pub fn init(&self, device: &Device) -> Result<RnnLanguageModel, ModelError> {
        if self.vocab == 0 || self.embedding == 0 {
            return Err(ModelError::BadConfig(format!(
                "a language model needs a vocabulary and an embedding width of at least 1; got {} and {}",
                self.vocab, self.embedding
            )));
        }
        let recurrent = RecurrentConfig::new(self.cell, self.embedding)
            .with_hidden(self.hidden)
            .with_layers(self.layers);
        Ok(RnnLanguageModel {
            embedding: EmbeddingConfig::new(self.vocab, self.embedding).init(device),
            recurrent: recurrent.init(device)?,
            head: LinearConfig::new(self.hidden, self.vocab).init(device),
        })
    }
}

/// Recurrent next-token language model.
#[derive(Module, Debug)]
pub struct RnnLanguageModel {
    /// Token embedding.
    pub embedding: Embedding,
    /// The stack.
    pub recurrent: RecurrentStack,
    /// Next-token head, applied at every step.
    pub head: Linear,
}

impl RnnLanguageModel {
    /// Next-token logits (N, L, vocab) of token ids (N, L).
    pub fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        self.forward_recorded(tokens, &mut Recorder::disabled())
    }

    /// Logits and the activations `probe` asks for (`embedding`, each layer, `logits`).
    pub fn forward_probed(
        &self,
        tokens: Tensor<2, Int>,
        probe: &Probe,
    ) -> Result<(Tensor<3>, Activations), ModelError> {
        let [n, l] = tokens.dims();
        if n == 0 || l == 0 {
            return Err(ModelError::BadInput(format!(
                "expected token ids (N >= 1, L >= 1), got ({n}, {l})"
            )));
        }
        let mut rec = Recorder::new(probe);
        let logits = self.forward_recorded(tokens, &mut rec);
        Ok((logits, rec.finish()?))
    }

    fn forward_recorded(&self, tokens: Tensor<2, Int>, rec: &mut Recorder) -> Tensor<3> {
        let x = self.embedding.forward(tokens);
        rec.sequence(Level::Inner, || "embedding".into(), &x);
        let h = self.recurrent.forward(x, rec);
        let logits = self.head.forward(h);
        rec.sequence(Level::Block, || "logits".into(), &logits);
        logits
    }
}
