//! Execution providers: which ONNX Runtime backend runs a model (`[model] providers`).
//!
//! The list is tried in order when a scenario is planned; the first provider that is
//! available and opens the model is used by every worker. Each one skipped is named, with
//! the reason, in one warning. CPU is ONNX Runtime's own and always available.
//!
//! OpenVINO comes as an ONNX Runtime *plugin* library (`onnxruntime-ep-openvino` on PyPI,
//! unpacked by `scripts/setup.sh`), registered once per process and selected through the
//! `OrtEpDevice`s it offers. CUDA and TensorRT are the provider-bridge libraries of an ONNX
//! Runtime GPU build (`libonnxruntime_providers_cuda.so` / `_tensorrt.so` beside
//! `libonnxruntime.so`), appended by name.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::ep::ExecutionProvider;
use ort::memory::DeviceType;
use ort::session::builder::SessionBuilder;
use serde::Serialize;

use super::runtime;

/// One execution provider lineside knows how to configure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Cpu,
    Openvino,
    Cuda,
    Tensorrt,
}

impl Provider {
    pub const ALL: [Provider; 4] = [
        Provider::Openvino,
        Provider::Cuda,
        Provider::Tensorrt,
        Provider::Cpu,
    ];

    /// The name used in scenario files, records and messages.
    pub fn name(self) -> &'static str {
        match self {
            Provider::Cpu => "cpu",
            Provider::Openvino => "openvino",
            Provider::Cuda => "cuda",
            Provider::Tensorrt => "tensorrt",
        }
    }

    pub fn parse(s: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|p| p.name() == s)
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The OpenVINO device a session runs on (`[model.openvino] device_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum OpenvinoDevice {
    #[default]
    #[serde(rename = "CPU")]
    Cpu,
    #[serde(rename = "GPU")]
    Gpu,
    #[serde(rename = "NPU")]
    Npu,
}

impl OpenvinoDevice {
    pub const NAMES: &'static str = "\"CPU\", \"GPU\" or \"NPU\"";

    pub fn parse(s: &str) -> Option<OpenvinoDevice> {
        match s {
            "CPU" => Some(OpenvinoDevice::Cpu),
            "GPU" => Some(OpenvinoDevice::Gpu),
            "NPU" => Some(OpenvinoDevice::Npu),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            OpenvinoDevice::Cpu => "CPU",
            OpenvinoDevice::Gpu => "GPU",
            OpenvinoDevice::Npu => "NPU",
        }
    }

    fn hardware(self) -> DeviceType {
        match self {
            OpenvinoDevice::Cpu => DeviceType::CPU,
            OpenvinoDevice::Gpu => DeviceType::GPU,
            OpenvinoDevice::Npu => DeviceType::NPU,
        }
    }
}

/// `[model] providers` and the per-provider options, as checked from the scenario file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderList {
    pub order: Vec<Provider>,
    pub openvino_device: OpenvinoDevice,
}

impl Default for ProviderList {
    fn default() -> Self {
        ProviderList {
            order: vec![Provider::Cpu],
            openvino_device: OpenvinoDevice::Cpu,
        }
    }
}

/// A provider that was passed over, and why (library missing, no device, model refused).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub provider: Provider,
    pub reason: String,
}

/// What runs the model: the provider chosen from the list and those passed over before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderChoice {
    pub provider: Provider,
    pub openvino_device: OpenvinoDevice,
    pub skipped: Vec<Skipped>,
}

impl ProviderChoice {
    /// The CPU provider, nothing skipped: the default.
    pub fn cpu() -> ProviderChoice {
        ProviderChoice {
            provider: Provider::Cpu,
            openvino_device: OpenvinoDevice::Cpu,
            skipped: Vec::new(),
        }
    }

    /// The one warning for this choice, if any provider was passed over.
    pub fn warning(&self) -> Option<String> {
        if self.skipped.is_empty() {
            return None;
        }
        let why = self
            .skipped
            .iter()
            .map(|s| format!("`{}`: {}", s.provider, s.reason))
            .collect::<Vec<_>>()
            .join("; ");
        Some(format!(
            "[model] providers: running on `{}` instead of {} ({why})",
            self.provider,
            self.skipped
                .iter()
                .map(|s| format!("`{}`", s.provider))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }

    /// "openvino (CPU)" or "cpu", for startup lines and `validate`.
    pub fn label(&self) -> String {
        match self.provider {
            Provider::Openvino => format!("openvino ({})", self.openvino_device.name()),
            p => p.name().to_string(),
        }
    }
}

/// Adds `provider` to a session being built. CPU adds nothing: ONNX Runtime always has it.
pub(crate) fn attach(
    builder: SessionBuilder,
    provider: Provider,
    ov_device: OpenvinoDevice,
    intra_threads: usize,
) -> Result<SessionBuilder, String> {
    match provider {
        Provider::Cpu => Ok(builder),
        Provider::Cuda => builder
            .with_execution_providers([ort::ep::CUDA::default().build().error_on_failure()])
            .map_err(|e| bridge_error("CUDA", "libonnxruntime_providers_cuda.so", &e.to_string())),
        Provider::Tensorrt => builder
            .with_execution_providers([ort::ep::TensorRT::default().build().error_on_failure()])
            .map_err(|e| {
                bridge_error(
                    "TensorRT",
                    "libonnxruntime_providers_tensorrt.so",
                    &e.to_string(),
                )
            }),
        Provider::Openvino => attach_openvino(builder, ov_device, intra_threads),
    }
}

fn bridge_error(what: &str, lib: &str, reason: &str) -> String {
    let available = match what {
        "CUDA" => ort::ep::CUDA::is_available().unwrap_or(false),
        _ => ort::ep::TensorRT::is_available().unwrap_or(false),
    };
    if available {
        format!("{what} refused the session: {reason}")
    } else {
        format!(
            "this ONNX Runtime was built without {what} (needs an onnxruntime-gpu build with {lib} beside libonnxruntime.so): {reason}"
        )
    }
}

/// The OpenVINO plugin's file name, as the `onnxruntime-ep-openvino` wheel ships it.
pub const OPENVINO_PLUGIN: &str = "libonnxruntime_providers_openvino_plugin.so";
/// The wheel version scripts/setup.sh unpacks (built against ONNX Runtime >= 1.23).
pub const OPENVINO_EP_VERSION: &str = "1.8.1";
/// Overrides the plugin search: the full path of the plugin library.
pub const OPENVINO_ENV: &str = "LINESIDE_OPENVINO_EP";
/// The execution provider name the plugin's (non-meta) factory registers.
const OPENVINO_EP_NAME: &str = "OpenVINOExecutionProvider";

/// Every place the OpenVINO plugin is looked for, in order (after `LINESIDE_OPENVINO_EP`).
pub fn openvino_candidates() -> Vec<PathBuf> {
    let arch_dir = format!("{OPENVINO_EP_VERSION}-{}", std::env::consts::ARCH);
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            dirs.push(dir.join("openvino-ep"));
            dirs.push(dir.join("lib/openvino-ep"));
            dirs.push(dir.join("../lib/openvino-ep"));
        }
    }
    if let Some(cache) = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
    {
        dirs.push(cache.join("lineside/openvino-ep").join(&arch_dir));
    }
    dirs.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(".cache/openvino-ep")
            .join(&arch_dir),
    );
    dirs.into_iter().map(|d| d.join(OPENVINO_PLUGIN)).collect()
}

fn locate_openvino() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os(OPENVINO_ENV) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!(
                "plugin library not found: {OPENVINO_ENV}={} is no file",
                p.display()
            ))
        };
    }
    let candidates = openvino_candidates();
    candidates.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
        format!(
            "plugin library {OPENVINO_PLUGIN} not found (looked in {}; scripts/setup.sh unpacks it on x86-64, or set {OPENVINO_ENV})",
            candidates
                .iter()
                .filter_map(|p| p.parent())
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// The plugin is registered with the environment once per process; later sessions reuse it.
static OPENVINO_REGISTERED: OnceLock<Result<PathBuf, String>> = OnceLock::new();

fn register_openvino() -> Result<&'static Path, String> {
    let registered = OPENVINO_REGISTERED.get_or_init(|| {
        let path = locate_openvino()?;
        let env = runtime::environment().map_err(|e| e.to_string())?;
        env.register_ep_library("lineside-openvino", &path)
            .map_err(|e| format!("could not load plugin {}: {e}", path.display()))?;
        tracing::info!("registered the OpenVINO plugin {}", path.display());
        Ok(path)
    });
    match registered {
        Ok(p) => Ok(p.as_path()),
        Err(e) => Err(e.clone()),
    }
}

/// The path of the OpenVINO plugin this process registered, if it registered one.
pub fn openvino_plugin_path() -> Option<&'static Path> {
    OPENVINO_REGISTERED
        .get()
        .and_then(|r| r.as_ref().ok())
        .map(PathBuf::as_path)
}

fn attach_openvino(
    builder: SessionBuilder,
    device: OpenvinoDevice,
    intra_threads: usize,
) -> Result<SessionBuilder, String> {
    register_openvino()?;
    let env = runtime::environment().map_err(|e| e.to_string())?;
    let wanted = device.hardware();
    let devices: Vec<_> = env
        .devices()
        .filter(|d| d.ep().is_ok_and(|n| n == OPENVINO_EP_NAME))
        .filter(|d| d.hardware_device().ty() == wanted)
        .collect();
    if devices.is_empty() {
        // The plugin offers only Intel hardware (it checks the vendor id ONNX Runtime
        // reports); say which vendor this box has, the usual reason on AMD and Arm.
        let vendors = env
            .devices()
            .filter(|d| d.hardware_device().ty() == wanted)
            .filter_map(|d| d.hardware_device().vendor().ok())
            .collect::<Vec<_>>();
        let here = if vendors.is_empty() {
            "none found".to_string()
        } else {
            vendors.join(", ")
        };
        return Err(format!(
            "device not present: OpenVINO offers no {} device here (the plugin serves Intel devices only; {} here: {here})",
            device.name(),
            device.name()
        ));
    }
    // OpenVINO's CPU device runs its own thread pool, sized to every core unless told:
    // with one session per worker that would oversubscribe the box, so each session gets
    // its `intra_threads` (the plugin reads OpenVINO properties from `load_config` JSON).
    let mut options = Vec::new();
    if device == OpenvinoDevice::Cpu {
        options.push((
            format!("{OPENVINO_EP_NAME}.load_config"),
            format!(
                "{{\"CPU\": {{\"INFERENCE_NUM_THREADS\": \"{}\"}}}}",
                intra_threads.max(1)
            ),
        ));
    }
    builder
        .with_devices(devices.into_iter().take(1), Some(&options))
        .map_err(|e| format!("OpenVINO refused the session options: {e}"))
}
