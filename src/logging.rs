//! Where the library's messages go in repsim's own programs. The library prints nothing: the
//! training loop, the Tracker and the experiments send progress lines (`log::info!`) and
//! warnings (`log::warn!`) through the `log` facade, and return their warnings as well. The
//! `repsim` binary and the examples install [`StdLogger`], which prints repsim's info lines to
//! stdout as they are and its warnings to stderr as `warning: ...`; a program embedding repsim
//! installs the logger of its choice, or none.

use std::io::Write;

/// repsim's messages on the terminal: info to stdout, warnings and errors to stderr. Messages
/// of other crates (burn, wgpu) are left out.
pub struct StdLogger;

static LOGGER: StdLogger = StdLogger;

impl log::Log for StdLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.target().starts_with("repsim") && metadata.level() <= log::Level::Info
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
            _ => eprintln!("error: {}", record.args()),
        }
    }

    fn flush(&self) {
        let _ = std::io::stdout().flush();
    }
}

/// Installs [`StdLogger`] as the process's logger (once; a logger already installed is kept).
pub fn init() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}
