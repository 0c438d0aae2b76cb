//! The Tracker inside the training loop, as a hook the loop calls after each step and each
//! epoch: the loop ([`crate::trainer`]) never names the Tracker. The hook opens the run's
//! `track/` folder (cleared when training starts from scratch; kept, with its index, when
//! resuming), forgets observations past the checkpoint resumed from, observes at
//! initialisation, and afterwards whenever [`TrackEpochs`] says so. Every observation is written
//! before the epoch's checkpoint, so a process killed in between resumes from the previous
//! checkpoint, trains again and observes again.

use std::path::Path;

use burn::tensor::Device;

use crate::datasets::RunData;
use crate::error::{Result, TrainError};
use crate::network::Network;
use crate::progress::EpochProgress;
use crate::run_dir::prepare_track_dir;
use crate::run_options::{TrackEpochs, TrackOptions};
use crate::tracker::{TimeUnit, Tracker};

/// The Tracker of a run and when it observes.
pub(crate) struct TrackHook {
    tracker: Tracker,
    when: TrackEpochs,
    epochs: usize,
}

/// Where a run starts: the first epoch it trains and the optimisation steps already done.
pub(crate) struct StartingPoint {
    pub(crate) first_epoch: usize,
    pub(crate) step: usize,
    pub(crate) epochs: usize,
}

impl TrackHook {
    /// The hook of `track` for the run in `out` (its probe: the first `probe_count` test
    /// examples of `data` on `device`), observing `model` at initialisation when the run
    /// starts from scratch.
    pub(crate) fn start<M: Network>(
        track: &TrackOptions,
        out: &Path,
        data: &RunData,
        device: &Device,
        start: &StartingPoint,
        model: &M,
    ) -> Result<Self> {
        let probe = data
            .test_batches(track.probe_count, device)
            .next()
            .ok_or_else(|| TrainError::BadConfig("the test split is empty".into()))??;
        let mut config = track.tracker.clone().with_unit(track.epochs.unit());
        config.dir = out.join("track");
        prepare_track_dir(&config.dir, start.first_epoch)?;
        let mut tracker = Tracker::new(config, probe.inputs)?;
        // What the resumed checkpoint holds: its epoch, or its step count.
        tracker.forget_after(match track.epochs.unit() {
            TimeUnit::Epoch => start.first_epoch - 1,
            TimeUnit::Step => start.step,
        })?;
        if start.first_epoch == 1 && track.epochs.contains(0, start.epochs) {
            tracker.observe(0, model)?;
        }
        Ok(TrackHook {
            tracker,
            when: track.epochs.clone(),
            epochs: start.epochs,
        })
    }

    /// After optimisation step `step` (counted from 1 over the run): the mid-epoch
    /// observations of `steps=K`.
    pub(crate) fn after_step<M: Network>(&mut self, step: usize, model: &M) -> Result<()> {
        if self.when.at_step(step) {
            self.tracker.observe(step, model)?;
        }
        Ok(())
    }

    /// After `epoch` (its last step `step`), before its checkpoint: the epoch's observation,
    /// or with `steps=K` the trained model when the last step is not a multiple of K.
    pub(crate) fn after_epoch<M: Network>(
        &mut self,
        epoch: usize,
        step: usize,
        model: &M,
        progress: &EpochProgress,
    ) -> Result<()> {
        if self.when.contains(epoch, self.epochs) {
            progress.phase("tracking");
            self.tracker.observe(epoch, model)?;
        } else if self.when.unit() == TimeUnit::Step
            && epoch == self.epochs
            && !self.when.at_step(step)
        {
            progress.phase("tracking");
            self.tracker.observe(step, model)?;
        }
        Ok(())
    }

    /// What the Tracker warned about.
    pub(crate) fn warnings(&self) -> Vec<String> {
        self.tracker.warnings().to_vec()
    }
}
