//! ONNX Runtime: loading the library, opening models, running them without copies.

mod model;
pub mod providers;
pub mod runtime;
mod session;

pub use model::choose;
pub(crate) use model::open_session;
pub use model::{parse_names, shape_str, ModelInfo, TensorInfo};
pub use providers::{OpenvinoDevice, Provider, ProviderChoice, ProviderList};
pub use session::{InferenceSession, SessionOptions};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "ONNX Runtime library not found. Looked in:\n{searched}\n\
         Fix: run `scripts/setup.sh` (downloads the pinned onnxruntime wheel from PyPI), \
         or put libonnxruntime.so (>= 1.31) next to the lineside binary, \
         or set ORT_DYLIB_PATH=/path/to/libonnxruntime.so"
    )]
    RuntimeMissing { searched: String },
    #[error(
        "could not load ONNX Runtime from {path}: {reason}\n\
         Fix: use libonnxruntime {ver} for this CPU architecture (scripts/setup.sh fetches it)",
        ver = runtime::ORT_VERSION
    )]
    RuntimeLoad { path: PathBuf, reason: String },
    #[error("{0}")]
    Runtime(String),
    #[error("execution provider `{provider}`: {reason}")]
    Provider {
        provider: &'static str,
        reason: String,
    },
    #[error(
        "no provider in [model] providers can run the model ({why})\n\
         Fix: add \"cpu\" at the end of the list (it is always available)"
    )]
    NoProvider { why: String },
    #[error("model file {path} does not exist")]
    ModelMissing { path: PathBuf },
    #[error(
        "model {path} keeps its weights in a separate file, {data}, which does not exist\n\
         Fix: put that file beside the model under that exact name (copy both files together), \
         or re-export the model with its weights embedded"
    )]
    ExternalDataMissing { path: PathBuf, data: PathBuf },
    #[error(
        "could not read model {path}: {reason}\n\
         Fix: check it is an ONNX file (not a .pt/.pth checkpoint or a truncated download)"
    )]
    ModelInvalid { path: PathBuf, reason: String },
    #[error("model {model}: {message}")]
    Contract { model: String, message: String },
    #[error("inference failed on model {model}: {reason}")]
    Run { model: String, reason: String },
}

impl EngineError {
    /// The message for a `[model]`-style key of the scenario file `scenario`: a missing
    /// model also says where relative paths start.
    pub fn in_scenario(&self, scenario: &std::path::Path) -> String {
        match self {
            EngineError::ModelMissing { .. } => format!(
                "{self} (a relative path is relative to the scenario file's folder, {})",
                scenario
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(std::path::Path::new("."))
                    .display()
            ),
            _ => self.to_string(),
        }
    }
}
