//! Learning-rate schedules, as a pure function of the training step: constant, step,
//! multi-step, cosine, each optionally after a linear warm-up.
//!
//! Why not burn-optim's schedulers: in burn 0.22.1 `CosineAnnealingLrScheduler` keeps following
//! the cosine past its last step (the rate rises again), and every burn scheduler refuses an
//! initial rate above 1. A pure function `lr(step)` also makes resuming exact with no state to
//! save beyond the step counter, which the checkpoint holds.

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

/// The shape of the schedule after warm-up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ScheduleKind {
    /// The peak rate throughout.
    Constant,
    /// Multiply by `gamma` every `every` epochs.
    Step {
        /// Epochs between decays.
        every: usize,
        /// Decay factor.
        gamma: f64,
    },
    /// Multiply by `gamma` at each of these epochs (counted from the start of training, as
    /// PyTorch's `MultiStepLR`: milestone 5 means epochs 6 on use the decayed rate).
    MultiStep {
        /// Epochs after which the rate decays.
        milestones: Vec<usize>,
        /// Decay factor.
        gamma: f64,
    },
    /// Cosine from the peak rate down to `min_lr` at the last step (Loshchilov & Hutter 2017,
    /// without restarts); it never rises again.
    Cosine {
        /// The final rate.
        min_lr: f64,
    },
}

/// A schedule: `warmup_epochs` of linear warm-up from `peak / warmup_steps` to the peak, then
/// `kind` over the remaining epochs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleConfig {
    /// What follows the warm-up.
    pub kind: ScheduleKind,
    /// Epochs of linear warm-up (0 for none).
    pub warmup_epochs: usize,
}

impl Default for ScheduleConfig {
    /// Cosine to 0, no warm-up.
    fn default() -> Self {
        ScheduleConfig {
            kind: ScheduleKind::Cosine { min_lr: 0.0 },
            warmup_epochs: 0,
        }
    }
}

impl ScheduleConfig {
    /// `constant`, `cosine`, `step=EVERY[:GAMMA]` or `multistep=E1,E2,...[:GAMMA]` (gamma 0.1
    /// by default), with `warmup_epochs` of warm-up.
    pub fn parse(text: &str, warmup_epochs: usize) -> Result<Self> {
        let bad = |why: &str| {
            TrainError::BadConfig(format!(
                "schedule {text:?}: {why}; use constant, cosine, step=EVERY[:GAMMA] or multistep=E1,E2[:GAMMA]"
            ))
        };
        let (name, rest) = text.split_once('=').unwrap_or((text, ""));
        let (args, gamma) = match rest.split_once(':') {
            Some((a, g)) => (
                a,
                g.parse::<f64>().map_err(|_| bad("gamma is not a number"))?,
            ),
            None => (rest, 0.1),
        };
        let kind = match name {
            "constant" if rest.is_empty() => ScheduleKind::Constant,
            "cosine" if rest.is_empty() => ScheduleKind::Cosine { min_lr: 0.0 },
            "step" => ScheduleKind::Step {
                every: args
                    .parse()
                    .map_err(|_| bad("step needs a number of epochs"))?,
                gamma,
            },
            "multistep" => ScheduleKind::MultiStep {
                milestones: args
                    .split(',')
                    .map(|m| m.trim().parse::<usize>())
                    .collect::<std::result::Result<_, _>>()
                    .map_err(|_| bad("milestones must be whole epochs"))?,
                gamma,
            },
            _ => return Err(bad("unknown schedule")),
        };
        Ok(ScheduleConfig {
            kind,
            warmup_epochs,
        })
    }

    /// Checks the schedule against the number of epochs.
    pub fn validate(&self, epochs: usize) -> Result<()> {
        if self.warmup_epochs >= epochs && !matches!(self.kind, ScheduleKind::Constant) {
            return Err(TrainError::BadConfig(format!(
                "{} warm-up epochs leave none of the {epochs} epochs for the schedule",
                self.warmup_epochs
            )));
        }
        match &self.kind {
            ScheduleKind::Step { every, gamma } => {
                if *every == 0 {
                    return Err(TrainError::BadConfig(
                        "step schedule: every must be >= 1".into(),
                    ));
                }
                check_gamma(*gamma)
            }
            ScheduleKind::MultiStep { milestones, gamma } => {
                if milestones.windows(2).any(|w| w[0] >= w[1]) || milestones.contains(&0) {
                    return Err(TrainError::BadConfig(format!(
                        "multistep milestones must be positive and increasing, got {milestones:?}"
                    )));
                }
                check_gamma(*gamma)
            }
            ScheduleKind::Cosine { min_lr } if !(min_lr.is_finite() && *min_lr >= 0.0) => Err(
                TrainError::BadConfig(format!("cosine min_lr must be >= 0, got {min_lr}")),
            ),
            _ => Ok(()),
        }
    }

    /// The learning rate of 0-based training step `step`, with `steps_per_epoch` steps per
    /// epoch, `epochs` epochs and peak rate `peak`.
    pub fn lr_at(&self, step: usize, steps_per_epoch: usize, epochs: usize, peak: f64) -> f64 {
        let steps_per_epoch = steps_per_epoch.max(1);
        let warmup = self.warmup_epochs * steps_per_epoch;
        if step < warmup {
            return peak * (step + 1) as f64 / warmup as f64;
        }
        let epoch = step / steps_per_epoch;
        match &self.kind {
            ScheduleKind::Constant => peak,
            ScheduleKind::Step { every, gamma } => {
                let after = epoch.saturating_sub(self.warmup_epochs);
                peak * gamma.powi((after / every.max(&1)) as i32)
            }
            ScheduleKind::MultiStep { milestones, gamma } => {
                let passed = milestones.iter().filter(|m| epoch >= **m).count();
                peak * gamma.powi(passed as i32)
            }
            ScheduleKind::Cosine { min_lr } => {
                let total = (epochs * steps_per_epoch).saturating_sub(warmup).max(1);
                // The last step sits at the end of the curve; past it the rate stays at min_lr.
                let t = ((step - warmup) as f64 / (total - 1).max(1) as f64).min(1.0);
                min_lr + 0.5 * (peak - min_lr) * (1.0 + (std::f64::consts::PI * t).cos())
            }
        }
    }
}

fn check_gamma(gamma: f64) -> Result<()> {
    if gamma.is_finite() && gamma > 0.0 && gamma <= 1.0 {
        Ok(())
    } else {
        Err(TrainError::BadConfig(format!(
            "the decay factor gamma must be in (0, 1], got {gamma}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_rises_linearly_then_cosine_falls_to_its_floor_and_stays() {
        let s = ScheduleConfig::parse("cosine", 2).unwrap();
        let lr = |step| s.lr_at(step, 10, 10, 0.1);
        assert!((lr(0) - 0.005).abs() < 1e-12);
        assert!((lr(19) - 0.1).abs() < 1e-12);
        assert!((lr(20) - 0.1).abs() < 1e-12);
        assert!(lr(60) < lr(40));
        assert!(lr(99).abs() < 1e-12);
        // Past the last step it never rises again (burn's cosine would).
        assert!(lr(150).abs() < 1e-12);
        for step in 20..99 {
            assert!(lr(step + 1) <= lr(step) + 1e-15);
        }
    }

    #[test]
    fn step_and_multistep_decay_at_their_epochs() {
        let s = ScheduleConfig::parse("step=3:0.5", 0).unwrap();
        assert_eq!(s.lr_at(29, 10, 10, 1.0), 1.0);
        assert_eq!(s.lr_at(30, 10, 10, 1.0), 0.5);
        assert_eq!(s.lr_at(60, 10, 10, 1.0), 0.25);
        let m = ScheduleConfig::parse("multistep=2,5", 0).unwrap();
        assert_eq!(m.lr_at(19, 10, 10, 1.0), 1.0);
        assert!((m.lr_at(20, 10, 10, 1.0) - 0.1).abs() < 1e-12);
        assert!((m.lr_at(55, 10, 10, 1.0) - 0.01).abs() < 1e-12);
        assert_eq!(
            ScheduleConfig::parse("constant", 0)
                .unwrap()
                .lr_at(7, 1, 2, 2.0),
            2.0
        );
    }

    #[test]
    fn bad_schedules_are_refused() {
        assert!(ScheduleConfig::parse("linear", 0).is_err());
        assert!(ScheduleConfig::parse("step=x", 0).is_err());
        assert!(ScheduleConfig::parse("cosine", 5)
            .unwrap()
            .validate(5)
            .is_err());
        assert!(ScheduleConfig::parse("multistep=5,2", 0)
            .unwrap()
            .validate(9)
            .is_err());
        assert!(ScheduleConfig::parse("step=2:1.5", 0)
            .unwrap()
            .validate(9)
            .is_err());
    }
}
