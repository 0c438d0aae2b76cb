//! Refusing, before building it, a model that cannot fit in memory (`describe --width 100000`
//! would otherwise abort on a 360 GB allocation), and warning about one that will be slow.

use repsim_model::{estimate_memory, ModelSpec};
use repsim_similarity::files::{available_memory, human_bytes};

use crate::error::Error as CliError;

/// Checks that `spec` at input `side` fits, for batches of `batch` examples, in the memory
/// available now; `training` counts gradients and optimiser state too. Warns above a quarter
/// of it.
pub(crate) fn check_model_fits(
    spec: &ModelSpec,
    side: usize,
    batch: usize,
    training: bool,
) -> Result<(), CliError> {
    let Some(available) = available_memory() else {
        return Ok(()); // not Linux: nothing to compare with
    };
    let estimate = estimate_memory(spec, side, available / 2)?;
    let what = if training {
        "training"
    } else {
        "a forward pass"
    };
    if estimate.activations_per_example == 0 {
        return Err(CliError::Input(format!(
            "{} has {} parameters ({} as float32), more than half of the {} of memory \
             available: use a smaller width or depth",
            spec.name(),
            estimate.parameters,
            human_bytes(estimate.parameters * 4),
            human_bytes(available)
        )));
    }
    let needed = estimate.bytes(batch, training);
    let detail = format!(
        "{} parameters, about {} activation floats per example at input {side}, batches of {batch}",
        estimate.parameters, estimate.activations_per_example
    );
    if needed > available {
        return Err(CliError::Input(format!(
            "{} needs about {} for {what} ({detail}), but {} of memory is available: use a \
             smaller model, input or batch size",
            spec.name(),
            human_bytes(needed),
            human_bytes(available)
        )));
    }
    if needed > available / 4 {
        eprintln!(
            "warning: {} needs about {} for {what} ({detail}) of the {} available; this will \
             be slow",
            spec.name(),
            human_bytes(needed),
            human_bytes(available)
        );
    }
    Ok(())
}
