//! Finding and loading the ONNX Runtime shared library.
//!
//! lineside links nothing at build time (`ort` with `load-dynamic`): one binary runs with
//! whichever `libonnxruntime.so` sits beside it. The search order is documented in the
//! README and reported verbatim when nothing is found.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::EngineError;

/// The ONNX Runtime release lineside is built and tested against (`api-31` needs >= 1.31).
pub const ORT_VERSION: &str = "1.32.0";

fn lib_names() -> [String; 2] {
    [
        format!("libonnxruntime.so.{ORT_VERSION}"),
        "libonnxruntime.so".to_string(),
    ]
}

/// Every place the library is looked for, in order.
pub fn candidate_paths() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            dirs.push(dir.to_path_buf());
            dirs.push(dir.join("lib"));
            dirs.push(dir.join("../lib"));
        }
    }
    let arch_dir = format!("{ORT_VERSION}-{}", std::env::consts::ARCH);
    if let Some(cache) = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
    {
        dirs.push(cache.join("lineside/onnxruntime").join(&arch_dir));
    }
    // The project's own cache, filled by scripts/setup.sh (development checkouts).
    dirs.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(".cache/onnxruntime")
            .join(&arch_dir),
    );
    let mut out = Vec::new();
    for d in dirs {
        for n in lib_names() {
            out.push(d.join(n));
        }
    }
    out
}

/// Resolves the library path: `ORT_DYLIB_PATH` wins, then [`candidate_paths`].
pub fn locate() -> Result<PathBuf, EngineError> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        return Err(EngineError::RuntimeMissing {
            searched: format!("ORT_DYLIB_PATH={} (no such file)", p.display()),
        });
    }
    let candidates = candidate_paths();
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    let searched = candidates
        .iter()
        .map(|p| format!("  {}", p.display()))
        .collect::<Vec<_>>()
        .join("\n");
    Err(EngineError::RuntimeMissing {
        searched: format!("ORT_DYLIB_PATH (unset)\n{searched}"),
    })
}

/// ONNX Runtime (1.29+, non-Windows) sends 1DS telemetry and keeps a device id, an event
/// queue (`~/.cache/Microsoft/DeveloperTools/.onnxruntime/onnxruntime.db`) and a session
/// file (`$TMPDIR/.ses`). `DisableTelemetryEvents` (`with_telemetry(false)`) only runs
/// after the environment exists, when all three are already written; this variable, read
/// when the environment is created, stops all of it.
pub const TELEMETRY_OFF_VAR: &str = "ORT_DISABLE_TELEMETRY";

/// Turns ONNX Runtime's telemetry off for this process. Call it first thing in `main`,
/// before any thread starts: setting an environment variable races with threads that
/// read the environment.
pub fn disable_telemetry() {
    std::env::set_var(TELEMETRY_OFF_VAR, "1");
}

static ENVIRONMENT: OnceLock<Result<(PathBuf, ort::environment::Environment), String>> =
    OnceLock::new();

/// Loads ONNX Runtime once per process and returns the shared environment.
pub fn environment() -> Result<&'static ort::environment::Environment, EngineError> {
    let loaded = ENVIRONMENT.get_or_init(|| {
        if std::env::var_os(TELEMETRY_OFF_VAR).is_none_or(|v| v != "1") {
            // A library user that did not call `disable_telemetry` at start.
            tracing::warn!(
                "{TELEMETRY_OFF_VAR} is not 1: ONNX Runtime may store and send telemetry from this process"
            );
        }
        let path = locate().map_err(|e| e.to_string())?;
        // Which copy was found matters on a box with several (bundle, cache, system).
        tracing::info!("loading ONNX Runtime from {}", path.display());
        let builder = ort::init_from(&path).map_err(|e| {
            EngineError::RuntimeLoad {
                path: path.clone(),
                reason: e.to_string(),
            }
            .to_string()
        })?;
        let env = builder
            .with_name("lineside")
            .with_telemetry(false)
            .build()
            .map_err(|e| {
                EngineError::RuntimeLoad {
                    path: path.clone(),
                    reason: e.to_string(),
                }
                .to_string()
            })?;
        Ok((path, env))
    });
    match loaded {
        Ok((_, env)) => Ok(env),
        Err(msg) => Err(EngineError::Runtime(msg.clone())),
    }
}

/// The path of the library the process loaded, if it loaded one.
pub fn loaded_path() -> Option<&'static Path> {
    ENVIRONMENT
        .get()
        .and_then(|r| r.as_ref().ok())
        .map(|(p, _)| p.as_path())
}
