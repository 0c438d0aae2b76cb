//! Device selection: `auto | flex | wgpu | vulkan`.
//!
//! - `auto`: the first wgpu adapter that is a real GPU (discrete, integrated or virtual), on
//!   the first graphics API that has one (Vulkan, then Metal, then DX12); otherwise the `flex`
//!   CPU backend. A software adapter (lavapipe, llvmpipe, WARP) is never chosen by `auto`.
//! - `flex`: burn's pure-Rust CPU backend (multi-threaded, SIMD).
//! - `wgpu`: the best wgpu adapter on any of those APIs, a real GPU first, otherwise a
//!   software adapter: this is how tests run the GPU code paths on machines without a GPU.
//! - `vulkan`: like `wgpu`, pinned to the Vulkan API.
//!
//! The choice comes from `--device` or the `REPSIM_DEVICE` environment variable, and the chosen
//! device is printed on every run.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use burn::tensor::wgpu::{wgpu, WgpuBackend};
use burn::tensor::{Device, DeviceKind};

/// Gives Mesa's Vulkan drivers a runtime directory on a headless machine.
///
/// Without `XDG_RUNTIME_DIR`, every adapter probe prints `error: XDG_RUNTIME_DIR is invalid or
/// not set in the environment` (libwayland, loaded by Mesa's window-system code), which reads
/// like repsim's own error. When it is unset or not a directory, it is pointed at a private
/// directory under the temporary directory. It changes the process's environment, so the
/// library never calls it: the `repsim` binary and the examples call it at the start of `main`,
/// before any thread runs, and an embedding program may.
pub fn quiet_headless_vulkan() {
    static DONE: std::sync::Once = std::sync::Once::new();
    DONE.call_once(|| {
        let valid = std::env::var_os("XDG_RUNTIME_DIR")
            .map(|d| std::path::Path::new(&d).is_dir())
            .unwrap_or(false);
        if valid {
            return;
        }
        let user = std::env::var("USER").unwrap_or_else(|_| "user".into());
        let dir = std::env::temp_dir().join(format!("repsim-runtime-{user}"));
        let created = std::fs::create_dir_all(&dir).is_ok() && {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).is_ok()
            }
            #[cfg(not(unix))]
            {
                true
            }
        };
        if created {
            std::env::set_var("XDG_RUNTIME_DIR", &dir);
        }
    });
}

/// Which device to run on, as named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum DeviceChoice {
    /// A hardware GPU through wgpu when there is one, otherwise flex.
    #[default]
    Auto,
    /// burn's pure-Rust CPU backend.
    Flex,
    /// wgpu on any graphics API, software adapters included.
    Wgpu,
    /// wgpu on Vulkan, software adapters included.
    Vulkan,
}

impl DeviceChoice {
    /// Every choice, by name.
    pub const ALL: [DeviceChoice; 4] = [
        DeviceChoice::Auto,
        DeviceChoice::Flex,
        DeviceChoice::Wgpu,
        DeviceChoice::Vulkan,
    ];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            DeviceChoice::Auto => "auto",
            DeviceChoice::Flex => "flex",
            DeviceChoice::Wgpu => "wgpu",
            DeviceChoice::Vulkan => "vulkan",
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses a `--device` value (clap's value parser; also from `REPSIM_DEVICE`).
pub fn parse_device_flag(s: &str) -> Result<DeviceChoice, String> {
    s.parse().map_err(|e: DeviceError| e.0)
}

impl FromStr for DeviceChoice {
    type Err = DeviceError;

    fn from_str(s: &str) -> Result<Self, DeviceError> {
        let lower = s.trim().to_ascii_lowercase();
        if lower == "cuda" {
            return Err(DeviceError(
                "`cuda` is not built into repsim: burn's CUDA backend downloads LLVM when it is \
                 built, which fails offline; on an NVIDIA GPU use `vulkan` or `wgpu` (no CUDA \
                 needed)"
                    .into(),
            ));
        }
        DeviceChoice::ALL
            .into_iter()
            .find(|c| c.name() == lower)
            .ok_or_else(|| {
                DeviceError(format!(
                    "unknown device `{s}`; choose one of: auto, flex, wgpu, vulkan"
                ))
            })
    }
}

/// A device that could not be selected, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceError(pub String);

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DeviceError {}

/// What a wgpu adapter is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterSummary {
    /// The adapter's name (`NVIDIA H100 80GB HBM3`, `llvmpipe (LLVM 15.0.6, 256 bits)`).
    pub name: String,
    /// The graphics API (`Vulkan`, `Metal`, `Dx12`).
    pub api: String,
    /// `discrete GPU`, `integrated GPU`, `virtual GPU`, `software (CPU)` or `other`.
    pub kind: &'static str,
    /// The driver and its version, where reported.
    pub driver: String,
    /// Whether it is a real GPU (`auto` only takes these).
    pub is_hardware_gpu: bool,
}

/// A selected device and what it is.
#[derive(Clone, Debug)]
pub struct SelectedDevice {
    /// The burn device tensors are created on.
    pub device: Device,
    /// What was asked for.
    pub choice: DeviceChoice,
    /// The wgpu adapter, or `None` for flex.
    pub adapter: Option<AdapterSummary>,
}

impl SelectedDevice {
    /// Whether the device is burn's flex CPU backend.
    pub fn is_flex(&self) -> bool {
        self.adapter.is_none()
    }
}

impl fmt::Display for SelectedDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.adapter {
            None => {
                let threads = flex_threads();
                let plural = if threads == 1 { "" } else { "s" };
                write!(f, "flex (CPU, pure Rust; {threads} thread{plural})")
            }
            Some(a) => write!(
                f,
                "wgpu/{}: {} ({}; driver {})",
                a.api, a.name, a.kind, a.driver
            ),
        }
    }
}

/// The threads flex runs on: rayon's global pool, which flex's ops and repsim's kernels use
/// (all cores, or `RAYON_NUM_THREADS`).
pub fn flex_threads() -> usize {
    rayon::current_num_threads()
}

/// The graphics APIs `auto` and `wgpu` look at, in order.
fn apis_for(choice: DeviceChoice) -> Vec<wgpu::Backend> {
    match choice {
        DeviceChoice::Vulkan => vec![wgpu::Backend::Vulkan],
        _ => vec![
            wgpu::Backend::Vulkan,
            wgpu::Backend::Metal,
            wgpu::Backend::Dx12,
        ],
    }
}

fn summarize(info: &wgpu::AdapterInfo) -> AdapterSummary {
    let kind = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => "discrete GPU",
        wgpu::DeviceType::IntegratedGpu => "integrated GPU",
        wgpu::DeviceType::VirtualGpu => "virtual GPU",
        wgpu::DeviceType::Cpu => "software (CPU)",
        wgpu::DeviceType::Other => "other",
    };
    let driver = format!("{} {}", info.driver, info.driver_info)
        .trim()
        .to_string();
    AdapterSummary {
        name: info.name.clone(),
        api: format!("{:?}", info.backend),
        kind,
        driver: if driver.is_empty() {
            "unknown".into()
        } else {
            driver
        },
        is_hardware_gpu: matches!(
            info.device_type,
            wgpu::DeviceType::DiscreteGpu
                | wgpu::DeviceType::IntegratedGpu
                | wgpu::DeviceType::VirtualGpu
        ),
    }
}

/// Serialises every use of the Vulkan loader from this module (it is not safe to create and
/// drop instances on several threads at once), and keeps each selection so a runtime is only
/// initialised once per process.
static SELECTIONS: Mutex<Vec<(DeviceChoice, SelectedDevice)>> = Mutex::new(Vec::new());

/// The adapters of one graphics API, in wgpu's enumeration order.
fn probe(api: wgpu::Backend) -> Vec<wgpu::AdapterInfo> {
    let backends = wgpu::Backends::from(api);
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    pollster::block_on(instance.enumerate_adapters(backends))
        .iter()
        .map(|a| a.get_info())
        .collect()
}

/// Every wgpu adapter on this machine (Vulkan, Metal, DX12), for `repsim devices`.
pub fn list_adapters() -> Vec<AdapterSummary> {
    let _guard = SELECTIONS.lock().unwrap_or_else(|e| e.into_inner());
    apis_for(DeviceChoice::Wgpu)
        .into_iter()
        .flat_map(|api| probe(api).iter().map(summarize).collect::<Vec<_>>())
        .collect()
}

/// Selects (and initialises) the device for `choice`; repeated calls return the same device.
pub fn select_device(choice: DeviceChoice) -> Result<SelectedDevice, DeviceError> {
    let mut selections = SELECTIONS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, selected)) = selections.iter().find(|(c, _)| *c == choice) {
        return Ok(selected.clone());
    }
    let selected = match choice {
        DeviceChoice::Flex => flex(choice),
        DeviceChoice::Auto => match find_adapter(choice, true) {
            Some(found) => init_wgpu(choice, found, &selections)?,
            None => flex(choice),
        },
        DeviceChoice::Wgpu | DeviceChoice::Vulkan => {
            let found = find_adapter(choice, true)
                .or_else(|| find_adapter(choice, false))
                .ok_or_else(|| {
                    DeviceError(format!(
                        "no {} adapter found. Install your GPU's Vulkan driver, or for a software \
                         adapter on a machine without a GPU: apt-get install mesa-vulkan-drivers",
                        if choice == DeviceChoice::Vulkan {
                            "Vulkan"
                        } else {
                            "wgpu (Vulkan, Metal or DX12)"
                        }
                    ))
                })?;
            init_wgpu(choice, found, &selections)?
        }
    };
    selections.push((choice, selected.clone()));
    Ok(selected)
}

fn flex(choice: DeviceChoice) -> SelectedDevice {
    SelectedDevice {
        device: Device::flex(),
        choice,
        adapter: None,
    }
}

/// An adapter found for a choice: its API, burn's selector for it, and what it is.
struct FoundAdapter {
    api: wgpu::Backend,
    kind: DeviceKind,
    summary: AdapterSummary,
}

/// The first adapter that is a hardware GPU (or, with `hardware` false, any adapter), with the
/// per-type index burn's `DeviceKind` counts by.
fn find_adapter(choice: DeviceChoice, hardware: bool) -> Option<FoundAdapter> {
    for api in apis_for(choice) {
        let adapters = probe(api);
        for (position, info) in adapters.iter().enumerate() {
            let summary = summarize(info);
            if hardware != summary.is_hardware_gpu {
                continue;
            }
            let same_type = adapters[..position]
                .iter()
                .filter(|other| other.device_type == info.device_type)
                .count();
            let kind = match info.device_type {
                wgpu::DeviceType::DiscreteGpu => DeviceKind::DiscreteGpu(same_type),
                wgpu::DeviceType::IntegratedGpu => DeviceKind::IntegratedGpu(same_type),
                wgpu::DeviceType::VirtualGpu => DeviceKind::VirtualGpu(same_type),
                wgpu::DeviceType::Cpu => DeviceKind::Cpu,
                wgpu::DeviceType::Other => continue,
            };
            return Some(FoundAdapter { api, kind, summary });
        }
    }
    None
}

fn init_wgpu(
    choice: DeviceChoice,
    found: FoundAdapter,
    selections: &[(DeviceChoice, SelectedDevice)],
) -> Result<SelectedDevice, DeviceError> {
    // Another choice may already have initialised this very adapter: reuse its device.
    if let Some((_, earlier)) = selections
        .iter()
        .find(|(_, s)| s.adapter.as_ref() == Some(&found.summary))
    {
        return Ok(SelectedDevice {
            choice,
            ..earlier.clone()
        });
    }
    let api = match found.api {
        wgpu::Backend::Vulkan => WgpuBackend::Vulkan,
        wgpu::Backend::Metal => WgpuBackend::Metal,
        wgpu::Backend::Dx12 => WgpuBackend::Dx12,
        _ => WgpuBackend::Auto,
    };
    let device = Device::wgpu_options()
        .device_kind(found.kind)
        .graphics_api(api)
        .init()
        .map_err(|e| DeviceError(format!("cannot start {}: {e}", found.summary.name)))?;
    Ok(SelectedDevice {
        device,
        choice,
        adapter: Some(found.summary),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_unknown_names_are_errors() {
        for choice in DeviceChoice::ALL {
            assert_eq!(choice.name().parse::<DeviceChoice>().unwrap(), choice);
        }
        assert_eq!("FLEX".parse::<DeviceChoice>().unwrap(), DeviceChoice::Flex);
        assert!("tpu"
            .parse::<DeviceChoice>()
            .unwrap_err()
            .0
            .contains("auto, flex"));
        assert!("cuda"
            .parse::<DeviceChoice>()
            .unwrap_err()
            .0
            .contains("vulkan"));
    }

    #[test]
    fn auto_never_picks_a_software_adapter() {
        let selected = select_device(DeviceChoice::Auto).unwrap();
        if let Some(adapter) = &selected.adapter {
            assert!(adapter.is_hardware_gpu, "auto chose {adapter:?}");
        }
        let flex = select_device(DeviceChoice::Flex).unwrap();
        assert!(flex.is_flex());
        assert!(flex.to_string().starts_with("flex"));
    }
}
