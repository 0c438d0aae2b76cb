//! What every command shares: parsing `--device`, and the one way a command ends (its error
//! printed, its exit code by the rule of [`crate::error`]).

use std::process::ExitCode;

use crate::error::Error;

/// Parses a `--device` value (also from `REPSIM_DEVICE`).
pub(crate) use crate::device::parse_device_flag as parse_device;

/// Prints a failure as `error: ...` and turns the result into the process's exit code: 0, 2
/// for bad input, 1 for a failure ([`crate::error`]).
pub fn exit(result: Result<(), Error>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
