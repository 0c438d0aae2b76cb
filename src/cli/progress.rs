//! Progress on stderr for long commands (indicatif): a bar when the length is known, a spinner
//! with the elapsed time otherwise; nothing when stderr is not a terminal (scripts, CI, logs)
//! or with `repsim -q`. The bars draw no colours.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Whether progress may be drawn: stderr is a terminal and `-q` was not given.
fn drawn() -> bool {
    std::io::stderr().is_terminal()
        && crate::logging::verbosity() > crate::logging::Verbosity::Quiet
}

/// A bar of `len` steps named `what`, hidden unless [`drawn`].
pub(crate) fn bar(len: u64, what: &str) -> ProgressBar {
    if !drawn() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// A spinner showing `what` and the elapsed time, ticking on its own, hidden unless
/// [`drawn`].
pub(crate) fn spinner(what: &str) -> ProgressBar {
    if !drawn() {
        return ProgressBar::hidden();
    }
    let spinner = ProgressBar::new_spinner();
    spinner.set_style(
        ProgressStyle::with_template("{spinner} {msg} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    spinner.set_message(what.to_string());
    spinner.enable_steady_tick(Duration::from_millis(200));
    spinner
}
