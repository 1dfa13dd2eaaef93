//! What a model file is: its identity, inputs, outputs and metadata, read once.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use ort::session::Session;
use ort::value::{TensorElementType, ValueType};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::providers::{self, OpenvinoDevice, Provider, ProviderChoice, ProviderList};
use super::{runtime, EngineError};

/// One input or output of a model. Dynamic dimensions are `-1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TensorInfo {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<i64>,
    /// Names of symbolic dimensions ("batch", "height"), empty where fixed.
    pub dim_names: Vec<String>,
}

impl TensorInfo {
    pub fn is_float32(&self) -> bool {
        self.dtype == "float32"
    }

    /// The shape if every dimension is fixed.
    pub fn fixed_shape(&self) -> Option<Vec<usize>> {
        self.shape
            .iter()
            .map(|&d| usize::try_from(d).ok())
            .collect()
    }
}

/// A model file as lineside sees it.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    /// File stem, used as the model id in defect logs.
    pub id: String,
    pub path: PathBuf,
    pub sha256: String,
    pub inputs: Vec<TensorInfo>,
    pub outputs: Vec<TensorInfo>,
    pub producer: Option<String>,
    /// Custom metadata (`names`, `stride`, ...), as written by the exporter.
    pub metadata: BTreeMap<String, String>,
}

impl ModelInfo {
    /// Loads the model once to read its signature. Fails with a message that says what to do.
    pub fn load(path: &Path) -> Result<ModelInfo, EngineError> {
        let session = open_session(path, 1)?;
        Self::from_session(path, &session)
    }

    pub(crate) fn from_session(path: &Path, session: &Session) -> Result<ModelInfo, EngineError> {
        let invalid = |reason: String| EngineError::ModelInvalid {
            path: path.to_path_buf(),
            reason,
        };
        let mut metadata = BTreeMap::new();
        let mut producer = None;
        if let Ok(meta) = session.metadata() {
            producer = meta.producer();
            for key in meta.custom_keys().unwrap_or_default() {
                if let Some(v) = meta.custom(&key) {
                    metadata.insert(key, v);
                }
            }
        }
        Ok(ModelInfo {
            id: path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "model".into()),
            path: path.to_path_buf(),
            sha256: file_sha256(path).map_err(|e| invalid(e.to_string()))?,
            inputs: session.inputs().iter().map(outlet_info).collect(),
            outputs: session.outputs().iter().map(outlet_info).collect(),
            producer,
            metadata,
        })
    }

    pub fn output(&self, name: &str) -> Option<&TensorInfo> {
        self.outputs.iter().find(|o| o.name == name)
    }

    pub fn output_names(&self) -> String {
        self.outputs
            .iter()
            .map(|o| format!("`{}`", o.name))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// "`name` dtype [shape], ..." for every output, for error messages.
    pub fn outputs_str(&self) -> String {
        self.outputs
            .iter()
            .map(|o| format!("`{}` {} {}", o.name, o.dtype, shape_str(&o.shape)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A tensor shape as `[1, 3, ?, ?]` (dynamic dimensions as `?`), for messages.
pub fn shape_str(s: &[i64]) -> String {
    let dims: Vec<String> = s
        .iter()
        .map(|d| {
            if *d < 0 {
                "?".to_string()
            } else {
                d.to_string()
            }
        })
        .collect();
    format!("[{}]", dims.join(", "))
}

fn outlet_info(o: &ort::value::Outlet) -> TensorInfo {
    match o.dtype() {
        ValueType::Tensor {
            ty,
            shape,
            dimension_symbols,
        } => TensorInfo {
            name: o.name().to_string(),
            dtype: dtype_name(*ty).to_string(),
            shape: shape.to_vec(),
            dim_names: dimension_symbols.iter().map(|s| s.to_string()).collect(),
        },
        other => TensorInfo {
            name: o.name().to_string(),
            dtype: format!("{other:?}"),
            shape: Vec::new(),
            dim_names: Vec::new(),
        },
    }
}

fn dtype_name(t: TensorElementType) -> &'static str {
    match t {
        TensorElementType::Float32 => "float32",
        TensorElementType::Float64 => "float64",
        TensorElementType::Float16 => "float16",
        TensorElementType::Uint8 => "uint8",
        TensorElementType::Int8 => "int8",
        TensorElementType::Int32 => "int32",
        TensorElementType::Int64 => "int64",
        TensorElementType::Bool => "bool",
        _ => "other",
    }
}

/// Opens a session on a model file, with errors that separate "missing" from "not a model".
pub(crate) fn open_session(path: &Path, intra_threads: usize) -> Result<Session, EngineError> {
    open_session_on(path, intra_threads, Provider::Cpu, OpenvinoDevice::Cpu)
}

/// Opens a session that runs on `provider`. A provider that cannot be attached (library
/// missing, no device) is an [`EngineError::Provider`]; [`choose`] turns that into a
/// fallback, a worker opening with an already chosen provider reports it.
pub(crate) fn open_session_on(
    path: &Path,
    intra_threads: usize,
    provider: Provider,
    ov_device: OpenvinoDevice,
) -> Result<Session, EngineError> {
    if !path.is_file() {
        return Err(EngineError::ModelMissing {
            path: path.to_path_buf(),
        });
    }
    let env = runtime::environment()?;
    let builder = Session::builder(env)
        .and_then(|b| Ok(b.with_intra_threads(intra_threads.max(1))?))
        .and_then(|b| Ok(b.with_inter_threads(1)?))
        // Spinning threads burn a core between frames; on a shared line box that steals
        // time from the other scenarios' workers.
        .and_then(|b| Ok(b.with_intra_op_spinning(false)?))
        .map_err(|e| load_error(path, e.to_string()))?;
    let mut builder =
        providers::attach(builder, provider, ov_device, intra_threads).map_err(|reason| {
            EngineError::Provider {
                provider: provider.name(),
                reason,
            }
        })?;
    // Loading by path (not bytes) lets models with external `.onnx.data` weights load.
    builder.commit_from_file(path).map_err(|e| {
        if provider == Provider::Cpu {
            load_error(path, e.to_string())
        } else {
            // The CPU session already opened this file (`ModelInfo::load`): the provider
            // refused the model.
            EngineError::Provider {
                provider: provider.name(),
                reason: format!("refused the model: {e}"),
            }
        }
    })
}

/// Tries `list` in order on the model at `path` and returns the first provider that opens
/// it, with every provider passed over and why. Logs one warning when any was passed over.
/// The CPU provider needs no trial: [`ModelInfo::load`] opened the model on it already.
pub fn choose(
    path: &Path,
    list: &ProviderList,
    intra_threads: usize,
) -> Result<ProviderChoice, EngineError> {
    let mut skipped = Vec::new();
    for &provider in &list.order {
        let opened = match provider {
            Provider::Cpu => Ok(()),
            p => open_session_on(path, intra_threads, p, list.openvino_device).map(drop),
        };
        match opened {
            Ok(()) => {
                let choice = ProviderChoice {
                    provider,
                    openvino_device: list.openvino_device,
                    skipped,
                };
                if let Some(w) = choice.warning() {
                    tracing::warn!("{}: {w}", path.display());
                }
                return Ok(choice);
            }
            Err(EngineError::Provider { reason, .. }) => {
                skipped.push(providers::Skipped { provider, reason })
            }
            Err(e) => return Err(e),
        }
    }
    let why = skipped
        .iter()
        .map(|s| format!("`{}`: {}", s.provider, s.reason))
        .collect::<Vec<_>>()
        .join("; ");
    Err(EngineError::NoProvider { why })
}

/// ONNX Runtime names a missing external-weights file in its message; say that, not
/// "is it an ONNX file?".
fn load_error(path: &Path, reason: String) -> EngineError {
    const MISSING: &str = "External data path does not exist: ";
    if let Some(rest) = reason.split_once(MISSING).map(|(_, r)| r) {
        let quoted = rest.trim_start().trim_start_matches('"');
        let data = quoted.split('"').next().unwrap_or(quoted).trim();
        if !data.is_empty() {
            return EngineError::ExternalDataMissing {
                path: path.to_path_buf(),
                data: PathBuf::from(data),
            };
        }
    }
    EngineError::ModelInvalid {
        path: path.to_path_buf(),
        reason,
    }
}

fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

impl ModelInfo {
    /// Class names from the `names` metadata that Ultralytics and lineside's own exports
    /// write: a Python dict literal `{0: 'person', 1: 'bicycle'}` (or a list literal).
    pub fn class_names(&self) -> Option<Vec<String>> {
        parse_names(self.metadata.get("names")?)
    }

    /// Per-channel `mean` and `std` from the `preprocess` metadata (a JSON object) that
    /// lineside's backbone exports carry; `None` when absent or not three numbers each.
    pub fn normalisation(&self) -> Option<([f32; 3], [f32; 3])> {
        parse_normalisation(self.metadata.get("preprocess")?)
    }
}

/// `{"mean": [a, b, c], "std": [d, e, f], ...}` → the two triples.
pub fn parse_normalisation(json: &str) -> Option<([f32; 3], [f32; 3])> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let triple = |key: &str| -> Option<[f32; 3]> {
        let list = v.get(key)?.as_array()?;
        let mut out = [0.0f32; 3];
        if list.len() != 3 {
            return None;
        }
        for (o, x) in out.iter_mut().zip(list) {
            *o = x.as_f64().filter(|x| x.is_finite())? as f32;
        }
        Some(out)
    };
    Some((triple("mean")?, triple("std")?))
}

/// Parses `{0: 'a', 1: "b"}` or `['a', 'b']` into names ordered by index.
pub fn parse_names(s: &str) -> Option<Vec<String>> {
    let s = s.trim();
    let body = s
        .strip_prefix('{')
        .and_then(|b| b.strip_suffix('}'))
        .or_else(|| s.strip_prefix('[').and_then(|b| b.strip_suffix(']')))?;
    let mut names: Vec<(usize, String)> = Vec::new();
    let mut rest = body;
    let mut next_index = 0usize;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        if rest.is_empty() {
            break;
        }
        let mut index = next_index;
        if let Some(colon) = rest.find(':') {
            let (k, v) = rest.split_at(colon);
            if let Ok(i) = k.trim().parse::<usize>() {
                index = i;
                rest = v[1..].trim_start();
            }
        }
        let quote = rest.chars().next()?;
        if quote != '\'' && quote != '"' {
            return None;
        }
        let end = rest[1..].find(quote)? + 1;
        names.push((index, rest[1..end].to_string()));
        rest = &rest[end + 1..];
        next_index = index + 1;
    }
    names.sort_by_key(|(i, _)| *i);
    if names.iter().enumerate().any(|(i, (k, _))| i != *k) {
        return None;
    }
    Some(names.into_iter().map(|(_, n)| n).collect())
}

#[cfg(test)]
mod tests {
    use super::{parse_names, parse_normalisation};

    #[test]
    fn item_12_reads_the_backbone_normalisation_from_preprocess_metadata() {
        let json =
            r#"{"color": "RGB", "mean": [0.498, 0.498, 0.498], "std": [0.502, 0.502, 0.502]}"#;
        assert_eq!(parse_normalisation(json), Some(([0.498; 3], [0.502; 3])));
        for bad in [
            "",
            "{}",
            r#"{"mean": [0.5], "std": [0.5, 0.5, 0.5]}"#,
            r#"{"mean": [0.5, 0.5, "x"], "std": [1, 1, 1]}"#,
        ] {
            assert_eq!(parse_normalisation(bad), None, "{bad}");
        }
    }

    #[test]
    fn parses_ultralytics_names_metadata() {
        assert_eq!(
            parse_names("{0: 'person', 1: \"bi, cycle\"}").unwrap(),
            ["person", "bi, cycle"]
        );
        assert_eq!(parse_names("['a', 'b']").unwrap(), ["a", "b"]);
        assert!(
            parse_names("{0: 'a', 2: 'b'}").is_none(),
            "gaps are refused"
        );
    }
}
