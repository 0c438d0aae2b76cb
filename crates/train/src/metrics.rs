//! One line of `metrics.jsonl` per epoch.

use serde::{Deserialize, Serialize};

/// What an epoch measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training cross-entropy over the epoch's steps (with the weights of each step).
    pub train_loss: f64,
    /// Training accuracy over the epoch (next-token accuracy for language models), 0 to 1.
    pub train_accuracy: f64,
    /// Test cross-entropy with the batch-norm running statistics.
    pub test_loss: f64,
    /// Test accuracy, 0 to 1.
    pub test_accuracy: f64,
    /// Test perplexity `exp(test_loss)`, for language models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_perplexity: Option<f64>,
    /// Learning rate of the epoch's last step.
    pub lr: f64,
    /// Training examples (images, or text windows) per second.
    pub examples_per_second: f64,
    /// Wall time of the epoch (training, evaluation, checkpoint), seconds.
    pub seconds: f64,
}
