//! Saving and loading weights in burn's own burnpack format (through burn-store), and
//! importing torchvision ResNet weights from a `.safetensors` file.

use std::path::Path;

use burn::module::Module;
use burn::store::{
    ApplyResult, BurnpackStore, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore,
};

use crate::{ModelError, ResNet};

fn weights_error(path: &Path, message: impl std::fmt::Display) -> ModelError {
    ModelError::Weights {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// Saves `model`'s parameters and batch-norm statistics to `path` (burnpack format), through
/// repsim's atomic writer (a temporary beside `path`, fsynced and renamed into place), so a
/// failure or a kill leaves the previous file or nothing, never half a file.
pub fn save_weights<M: Module>(model: &M, path: &Path) -> Result<(), ModelError> {
    let dir = repsim_durable::parent_dir(path);
    if !dir.is_dir() {
        return Err(weights_error(
            path,
            format!("the directory {} does not exist", dir.display()),
        ));
    }
    repsim_durable::write_via(path, |temporary| {
        let mut store = BurnpackStore::from_file(temporary)
            .auto_extension(false)
            .overwrite(true);
        model.save_into(&mut store).map_err(|e| ModelError::Write {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    })
}

/// Loads weights saved by [`save_weights`] into `model`, which must have the same
/// architecture: every tensor must be present with the same shape.
pub fn load_weights<M: Module>(mut model: M, path: &Path) -> Result<M, ModelError> {
    if !path.is_file() {
        return Err(weights_error(path, "no such file"));
    }
    // Validation off: misfits come back in the result, and `check_applied` names them
    // (burn-store's own message is a Debug dump of every tensor).
    let mut store = BurnpackStore::from_file(path)
        .auto_extension(false)
        .allow_partial(true)
        .validate(false);
    let result = model
        .load_from(&mut store)
        .map_err(|e| weights_error(path, e))?;
    check_applied(
        path,
        &result,
        "do not fit this model",
        ": was it saved from another architecture?",
    )?;
    Ok(model)
}

/// Refuses a load that left tensors unfitted (`errors`: wrong shapes) or unfilled (`missing`).
fn check_applied(
    path: &Path,
    result: &ApplyResult,
    misfit: &str,
    missing_hint: &str,
) -> Result<(), ModelError> {
    if !result.errors.is_empty() {
        return Err(weights_error(
            path,
            format!(
                "{} tensors {misfit}{missing_hint} {}",
                result.errors.len(),
                result
                    .errors
                    .iter()
                    .take(3)
                    .map(describe_misfit)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ));
    }
    if !result.missing.is_empty() {
        let names: Vec<&str> = result
            .missing
            .iter()
            .take(5)
            .map(|(p, _)| p.as_str())
            .collect();
        return Err(weights_error(
            path,
            format!(
                "the file lacks {} of the model's tensors, e.g. {}{missing_hint}",
                result.missing.len(),
                names.join(", ")
            ),
        ));
    }
    Ok(())
}

/// `tensor `conv1.weight`: the model has shape [16, 3, 3, 3], the file [32, 3, 3, 3]`.
fn describe_misfit(error: &burn::store::ApplyError) -> String {
    use burn::store::ApplyError;
    match error {
        ApplyError::ShapeMismatch {
            path,
            expected,
            found,
        } => format!(
            "tensor `{path}`: the model has shape {:?}, the file {:?}",
            expected.as_slice(),
            found.as_slice()
        ),
        ApplyError::DTypeMismatch {
            path,
            expected,
            found,
        } => format!("tensor `{path}`: the model has dtype {expected:?}, the file {found:?}"),
        other => other.to_string(),
    }
}

/// What an import took from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// Tensors loaded.
    pub applied: usize,
    /// Keys of the file that the model does not use (beyond `num_batches_tracked`).
    pub unused: Vec<String>,
}

/// Loads torchvision ResNet weights (`model.state_dict()` saved with
/// `safetensors.torch.save_file`) into `model`, a ResNet of the same depth, width and class
/// count. torchvision's names are used as they are: `conv1.weight`, `bn1.running_mean`,
/// `layer2.0.downsample.0.weight`, `fc.weight`, ...; linear weights are transposed and
/// batch-norm `weight`/`bias` become `gamma`/`beta`. `num_batches_tracked` is ignored.
pub fn import_torchvision_resnet(
    mut model: ResNet,
    path: &Path,
) -> Result<(ResNet, ImportReport), ModelError> {
    if !path.is_file() {
        return Err(weights_error(path, "no such file"));
    }
    let mut store = SafetensorsStore::from_file(path)
        .with_from_adapter(PyTorchToBurnAdapter)
        .with_key_remapping(r"\.downsample\.0\.", ".downsample.conv.")
        .with_key_remapping(r"\.downsample\.1\.", ".downsample.bn.")
        .allow_partial(true);
    let result = model
        .load_from(&mut store)
        .map_err(|e| weights_error(path, e))?;
    check_applied(
        path,
        &result,
        "do not fit this ResNet (a different depth, width or class count?)",
        "",
    )?;
    let unused: Vec<String> = result
        .unused
        .into_iter()
        .filter(|k| !k.ends_with("num_batches_tracked"))
        .collect();
    Ok((
        model,
        ImportReport {
            applied: result.applied.len(),
            unused,
        },
    ))
}
