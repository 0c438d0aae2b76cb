//! Progress of an epoch: an indicatif bar on a terminal (loss, accuracy, examples/s, ETA), and
//! one plain line per epoch for scripts, CI and `--quiet`.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// A bar per epoch when stderr is a terminal, and a line per epoch.
    Auto,
    /// Only the line per epoch.
    Quiet,
    /// Nothing at all (library use, tests).
    Silent,
}

/// The bar of one epoch (hidden unless stderr is a terminal and the mode is `Auto`).
pub struct EpochProgress {
    bar: ProgressBar,
}

impl EpochProgress {
    /// A bar over `steps` steps of epoch `epoch` of `epochs`.
    pub fn new(mode: ProgressMode, epoch: usize, epochs: usize, steps: usize) -> Self {
        let bar = if mode == ProgressMode::Auto && std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(steps as u64);
            let style = ProgressStyle::with_template(
                "epoch {prefix} [{bar:30}] {pos}/{len} {msg} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(format!("{epoch}/{epochs}"));
            bar
        } else {
            ProgressBar::hidden()
        };
        EpochProgress { bar }
    }

    /// Moves to `step` with the running figures.
    pub fn update(&self, step: usize, loss: f64, accuracy: f64, examples_per_second: f64) {
        self.bar.set_position(step as u64);
        self.bar.set_message(format!(
            "loss {loss:.4} acc {:.1}% {examples_per_second:.0}/s",
            100.0 * accuracy
        ));
    }

    /// Shows what the epoch is doing after its steps (evaluation, checkpoint).
    pub fn phase(&self, what: &str) {
        self.bar.set_message(what.to_string());
    }

    /// Removes the bar.
    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}
