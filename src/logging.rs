//! Where the library's messages go in repsim's own programs. The library prints nothing: the
//! training loop, the Tracker and the experiments send progress lines (`log::info!`) and
//! warnings (`log::warn!`) through the `log` facade, and return their warnings as well. The
//! `repsim` binary and the examples install [`StdLogger`], which prints repsim's info lines to
//! stdout as they are and its warnings to stderr as `warning: ...`; a program embedding repsim
//! installs the logger of its choice, or none.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};

/// How much repsim's programs say (`repsim -q`, the default, `-v`, `-vv`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// Warnings and errors only: no progress bars, no status or progress lines.
    Quiet,
    /// repsim's progress and status lines, and progress bars on a terminal.
    Normal,
    /// Also repsim's debug messages (on stderr).
    Verbose,
    /// Also every message of the crates underneath (burn, wgpu, cubecl), on stderr.
    Everything,
}

static VERBOSITY: AtomicU8 = AtomicU8::new(Verbosity::Normal as u8);

/// The process's verbosity (set once by the program; [`Verbosity::Normal`] until then).
pub fn verbosity() -> Verbosity {
    match VERBOSITY.load(Ordering::Relaxed) {
        0 => Verbosity::Quiet,
        1 => Verbosity::Normal,
        2 => Verbosity::Verbose,
        _ => Verbosity::Everything,
    }
}

/// Sets the process's verbosity and the `log` level that goes with it.
pub fn set_verbosity(verbosity: Verbosity) {
    VERBOSITY.store(verbosity as u8, Ordering::Relaxed);
    log::set_max_level(match verbosity {
        Verbosity::Quiet => log::LevelFilter::Warn,
        Verbosity::Normal => log::LevelFilter::Info,
        Verbosity::Verbose => log::LevelFilter::Debug,
        Verbosity::Everything => log::LevelFilter::Trace,
    });
}

/// repsim's messages on the terminal: info to stdout, warnings, errors and debug messages to
/// stderr, as far as [`verbosity`] lets them through. Messages of other crates (burn, wgpu)
/// are left out below [`Verbosity::Everything`].
pub struct StdLogger;

static LOGGER: StdLogger = StdLogger;

impl log::Log for StdLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        let ours = metadata.target().starts_with("repsim");
        metadata.level() <= log::max_level() && (ours || verbosity() == Verbosity::Everything)
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        match record.level() {
            log::Level::Info => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{}", record.args());
            }
            log::Level::Warn => eprintln!("warning: {}", record.args()),
            log::Level::Error => eprintln!("error: {}", record.args()),
            level => eprintln!(
                "{}: {}: {}",
                level.as_str().to_lowercase(),
                record.target(),
                record.args()
            ),
        }
    }

    fn flush(&self) {
        let _ = std::io::stdout().flush();
    }
}

/// Installs [`StdLogger`] as the process's logger (once; a logger already installed is kept),
/// at the current [`verbosity`].
pub fn init() {
    if log::set_logger(&LOGGER).is_ok() {
        set_verbosity(verbosity());
    }
}
