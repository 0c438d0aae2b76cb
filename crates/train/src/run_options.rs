//! How a training runs, as opposed to what it trains ([`crate::TrainConfig`]): the device,
//! resume or overwrite, progress, which checkpoints are kept, and what the Tracker observes and
//! when. Nothing here changes the trained weights.

use burn::tensor::Device;

use crate::error::{Result, TrainError};
use crate::progress::ProgressMode;
use crate::tracker::{TimeUnit, TrackerConfig};

/// When the Tracker observes the model during training.
#[derive(Debug, Clone, PartialEq)]
pub enum TrackEpochs {
    /// At initialisation (epoch 0) and after every epoch.
    Every,
    /// After these epochs (0: at initialisation); the last epoch is always added.
    These(Vec<usize>),
    /// At initialisation (step 0), after every `k` optimisation steps, and after the last
    /// step: the resolution at which early layers converge (Raghu et al. 2017). Observations are
    /// labelled by the optimisation step ([`crate::TimeUnit::Step`]).
    EverySteps(usize),
}

impl TrackEpochs {
    /// `every-epoch`, a list like `0,1,2,4,8`, or `steps=K` (every K optimisation steps).
    pub fn parse(text: &str) -> Result<Self> {
        if text == "every-epoch" {
            return Ok(TrackEpochs::Every);
        }
        if let Some(k) = text.strip_prefix("steps=") {
            return match k.trim().parse::<usize>() {
                Ok(k) if k >= 1 => Ok(TrackEpochs::EverySteps(k)),
                _ => Err(TrainError::BadConfig(format!(
                    "--track {text:?}: steps=K takes a whole number of optimisation steps of at least 1"
                ))),
            };
        }
        text.split(',')
            .map(|e| e.trim().parse::<usize>())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map(TrackEpochs::These)
            .map_err(|_| {
                TrainError::BadConfig(format!(
                    "--track {text:?}: use every-epoch, a list of epochs like 0,1,2,4,8, or steps=K"
                ))
            })
    }

    /// Whether the model is observed at the end of `epoch` (0: at initialisation).
    pub(crate) fn contains(&self, epoch: usize, last: usize) -> bool {
        match self {
            TrackEpochs::Every => true,
            TrackEpochs::These(list) => epoch == last || list.contains(&epoch),
            TrackEpochs::EverySteps(_) => epoch == 0,
        }
    }

    /// Whether the model is observed after optimisation step `step` (counted from 1 over the
    /// whole run) in the middle of an epoch.
    pub(crate) fn at_step(&self, step: usize) -> bool {
        matches!(self, TrackEpochs::EverySteps(k) if step % k == 0)
    }

    /// What the observation labels count.
    pub(crate) fn unit(&self) -> TimeUnit {
        match self {
            TrackEpochs::EverySteps(_) => TimeUnit::Step,
            _ => TimeUnit::Epoch,
        }
    }
}

/// Tracking during training: what to observe, and when.
#[derive(Debug, Clone)]
pub struct TrackOptions {
    /// The Tracker's settings (its directory is replaced by `RUN/track`).
    pub tracker: TrackerConfig,
    /// When to observe.
    pub epochs: TrackEpochs,
    /// Test examples probed (the first N of the test split).
    pub probe_count: usize,
}

/// How to run (nothing here changes the result).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The device (plain; training uses its autodiff form).
    pub device: Device,
    /// Continue from the newest complete checkpoint.
    pub resume: bool,
    /// Replace an existing run.
    pub overwrite: bool,
    /// Progress display.
    pub progress: ProgressMode,
    /// Checkpoints kept besides `keep_epochs`.
    pub keep_last: usize,
    /// Epochs whose checkpoints are never removed.
    pub keep_epochs: Vec<usize>,
    /// Tracking during training.
    pub track: Option<TrackOptions>,
    /// Stop after this epoch as if interrupted (tests of resume); `None` runs to the end.
    pub stop_after: Option<usize>,
}

impl RunOptions {
    /// Defaults on `device`: no resume, a bar per epoch, the last 2 checkpoints kept.
    pub fn new(device: Device) -> Self {
        RunOptions {
            device,
            resume: false,
            overwrite: false,
            progress: ProgressMode::Auto,
            keep_last: 2,
            keep_epochs: Vec::new(),
            track: None,
            stop_after: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn track_epochs_parse() {
        assert_eq!(
            TrackEpochs::parse("every-epoch").unwrap(),
            TrackEpochs::Every
        );
        let these = TrackEpochs::parse("0,1,4").unwrap();
        assert!(these.contains(4, 9) && these.contains(9, 9) && !these.contains(5, 9));
        assert!(TrackEpochs::parse("1,x").is_err());
    }
}
