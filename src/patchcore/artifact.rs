//! The fitted-model file (`*.lspc`): a JSON header that says everything needed to use the
//! bank correctly, followed by the bank itself. Layout and fields:
//! `docs/patchcore.md#artifact-format-lspc-version-1`.
//!
//! ```text
//! offset 0   8 bytes  magic "LSPATCH\0"
//! offset 8   u32 LE   format version (1)
//! offset 12  u32 LE   header length in bytes (N)
//! offset 16  N bytes  header, UTF-8 JSON
//!            zero padding to the next multiple of 64
//!            bank: rows x dim f32 little-endian, row-major
//! ```

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::knn::MemoryBank;
use crate::preprocess::{ColorOrder, Fit, Interpolation};

pub const MAGIC: &[u8; 8] = b"LSPATCH\0";
pub const VERSION: u32 = 1;
const ALIGN: usize = 64;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ArtifactHeader {
    /// Always "lineside-patchcore".
    pub format: String,
    pub version: u32,
    /// UTC, RFC 3339.
    pub created: String,
    pub backbone: BackboneRef,
    pub preprocess: PreprocessRef,
    pub features: FeaturesRef,
    pub bank: BankRef,
    pub coreset: CoresetRef,
    pub scoring: ScoringRef,
    pub thresholds: Thresholds,
    pub training: TrainingRef,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BackboneRef {
    /// File name of the ONNX feature extractor the bank was built with.
    pub file: String,
    /// sha256 of that file: a different backbone gives meaningless distances.
    pub sha256: String,
    /// The two outputs read: stride 8 and stride 16.
    pub outputs: [String; 2],
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PreprocessRef {
    pub width: usize,
    pub height: usize,
    pub color: ColorOrder,
    pub fit: Fit,
    pub interpolation: Interpolation,
    /// x = (v * scale - mean) / std
    pub scale: f32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FeaturesRef {
    /// Patch grid (the stride-8 map).
    pub map_width: usize,
    pub map_height: usize,
    pub stride: usize,
    pub channels: [usize; 2],
    pub dim: usize,
    /// Local neighbourhood averaged around each patch (3 = 3x3).
    pub pool: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BankRef {
    pub rows: usize,
    pub dim: usize,
    pub dtype: String,
    /// Byte offset of the bank from the start of the file.
    pub offset: usize,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CoresetRef {
    pub ratio: f32,
    pub projection_dim: usize,
    pub seed: u64,
    /// Training patches the coreset was chosen from.
    pub patches: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ScoringRef {
    /// "max_patch_distance": the image score is the largest nearest-neighbour distance.
    pub image_score: String,
    pub blur_sigma: f32,
}

/// Raw-distance statistics that map scores to anomalib's normalised scale:
/// `clamp((x - threshold) / (max - min) + 0.5, 0, 1)`, so the threshold becomes 0.5.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Normalisation {
    pub threshold: f32,
    pub min: f32,
    pub max: f32,
}

impl Normalisation {
    /// The normalised value before clamping (keeps ranking for metrics).
    pub fn apply_unclamped(&self, x: f32) -> f32 {
        (x - self.threshold) / (self.max - self.min).max(f32::EPSILON) + 0.5
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Thresholds {
    pub image: Normalisation,
    pub pixel: Normalisation,
    /// How the thresholds were chosen.
    pub method: String,
    pub calibration_images: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrainingRef {
    pub train_dir: String,
    pub images: usize,
    pub holdout_images: usize,
    pub seconds: f64,
    pub lineside_version: String,
}

/// A loaded artifact: header plus bank.
#[derive(Debug)]
pub struct Artifact {
    pub path: PathBuf,
    /// sha256 of the whole file (the model id's hash in defect logs).
    pub sha256: String,
    pub header: ArtifactHeader,
    pub bank: MemoryBank,
}

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("cannot read fitted model {path}: {source}\nFix: run `lineside fit <scenario>` to create it")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is not a lineside PatchCore model ({reason}); re-create it with `lineside fit`"
    )]
    Format { path: PathBuf, reason: String },
    #[error("cannot write fitted model {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Artifact {
    pub fn load(path: &Path) -> Result<Artifact, ArtifactError> {
        let io = |source| ArtifactError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(io)?;
        Self::from_bytes(path, &bytes)
    }

    /// Parses an artifact already in memory (`path` names it in errors); every size in
    /// the file is checked before it is used, so any bytes give an error, never a panic.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Artifact, ArtifactError> {
        let bad = |reason: String| ArtifactError::Format {
            path: path.to_path_buf(),
            reason,
        };
        if bytes.len() < 16 || &bytes[..8] != MAGIC {
            return Err(bad("wrong magic bytes".into()));
        }
        let u32_at =
            |o: usize| u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
        let version = u32_at(8);
        if version != VERSION {
            return Err(bad(format!(
                "format version {version}; this lineside reads version {VERSION}"
            )));
        }
        let hlen = u32_at(12) as usize;
        let hjson = bytes
            .get(16..16 + hlen)
            .ok_or_else(|| bad("truncated header".into()))?;
        let header: ArtifactHeader =
            serde_json::from_slice(hjson).map_err(|e| bad(format!("header: {e}")))?;
        let b = &header.bank;
        if b.dtype != "f32le" || b.dim != header.features.dim || b.dim == 0 || b.rows == 0 {
            return Err(bad(format!(
                "bank dtype {} dim {} rows {} does not match features dim {}",
                b.dtype, b.dim, b.rows, header.features.dim
            )));
        }
        // rows and dim come from the file: checked, so a huge count is an error, not a wrap.
        let need = b
            .rows
            .checked_mul(b.dim)
            .and_then(|n| n.checked_mul(4))
            .ok_or_else(|| {
                bad(format!(
                    "bank of {} x {} floats is impossibly large",
                    b.rows, b.dim
                ))
            })?;
        let raw = b
            .offset
            .checked_add(need)
            .and_then(|end| bytes.get(b.offset..end))
            .ok_or_else(|| bad(format!("bank truncated: need {need} bytes at {}", b.offset)))?;
        let bank_sha = hex::encode(Sha256::digest(raw));
        if bank_sha != b.sha256 {
            return Err(bad("bank checksum mismatch (file damaged)".into()));
        }
        let data: Vec<f32> = raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(Artifact {
            path: path.to_path_buf(),
            sha256: hex::encode(Sha256::digest(bytes)),
            bank: MemoryBank::new(data, b.dim),
            header,
        })
    }

    /// Writes header + bank; fills in the bank's offset and checksum. Writes to a
    /// temporary file first so a crash never leaves a half-written model behind.
    pub fn write(
        path: &Path,
        header: &mut ArtifactHeader,
        bank: &[f32],
    ) -> Result<String, ArtifactError> {
        let werr = |source| ArtifactError::Write {
            path: path.to_path_buf(),
            source,
        };
        let mut raw = Vec::with_capacity(bank.len() * 4);
        for v in bank {
            raw.extend_from_slice(&v.to_le_bytes());
        }
        header.bank.sha256 = hex::encode(Sha256::digest(&raw));
        // The offset depends on the header length, which depends on the offset's digits:
        // iterate until stable (at most twice).
        let mut json = Vec::new();
        for _ in 0..3 {
            json = serde_json::to_vec_pretty(header).map_err(|e| werr(std::io::Error::other(e)))?;
            let offset = (16 + json.len()).div_ceil(ALIGN) * ALIGN;
            if header.bank.offset == offset {
                break;
            }
            header.bank.offset = offset;
        }
        let mut bytes = Vec::with_capacity(header.bank.offset + raw.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        bytes.extend_from_slice(&(json.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&json);
        bytes.resize(header.bank.offset, 0);
        bytes.extend_from_slice(&raw);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(werr)?;
        }
        let tmp = path.with_extension("lspc.tmp");
        std::fs::File::create(&tmp)
            .and_then(|mut f| f.write_all(&bytes).and_then(|_| f.sync_all()))
            .map_err(werr)?;
        std::fs::rename(&tmp, path).map_err(werr)?;
        Ok(hex::encode(Sha256::digest(&bytes)))
    }

    /// The model id used in defect logs: the file stem.
    pub fn id(&self) -> String {
        self.path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "patchcore".into())
    }
}
