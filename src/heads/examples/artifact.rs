//! The teach-by-example model file (`*.lsex`): a JSON header that says how embeddings are
//! made and which class each row belongs to, then the training embeddings themselves.
//! Layout and fields: `docs/examples.md#artifact-format-lsex-version-1`.
//!
//! ```text
//! offset 0   8 bytes  magic "LSEXMPL\0"
//! offset 8   u32 LE   format version (1)
//! offset 12  u32 LE   header length in bytes (N)
//! offset 16  N bytes  header, UTF-8 JSON
//!            zero padding to the next multiple of 64
//!            embeddings: rows x dim f32 little-endian, row-major, grouped by class
//! ```

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::patchcore::artifact::PreprocessRef;

pub const MAGIC: &[u8; 8] = b"LSEXMPL\0";
pub const VERSION: u32 = 1;
const ALIGN: usize = 64;
/// Classes are named in failures by a u16 index.
pub const MAX_CLASSES: usize = u16::MAX as usize;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExamplesHeader {
    /// Always "lineside-examples".
    pub format: String,
    pub version: u32,
    /// UTC, RFC 3339.
    pub created: String,
    pub backbone: BackboneRef,
    pub preprocess: PreprocessRef,
    pub embedding: EmbeddingRef,
    /// In row order: class `i` owns the next `classes[i].rows` rows.
    pub classes: Vec<ClassRef>,
    /// Neighbours that vote.
    pub k: usize,
    pub rejection: Rejection,
    pub data: DataRef,
    pub training: Training,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BackboneRef {
    /// File name of the ONNX feature extractor.
    pub file: String,
    /// sha256 of that file: another backbone gives meaningless distances.
    pub sha256: String,
}

/// One pooled feature map per block; each block is L2-normalised and the blocks are
/// scaled by `1/sqrt(blocks)`, so the whole embedding has unit length.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EmbeddingRef {
    pub blocks: Vec<Block>,
    pub dim: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Block {
    /// Backbone output read (`feat_s8`, `feat_s16`).
    pub output: String,
    /// "avg" or "max": global pooling over the map.
    pub pool: Pool,
    pub channels: usize,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Pool {
    Avg,
    Max,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClassRef {
    pub name: String,
    /// Training embeddings of this class (rows in the file).
    pub rows: usize,
    /// Held-out images of this class (used for the report and the threshold).
    pub holdout: usize,
}

/// How unknowns are told apart: the cosine distance to the nearest training embedding.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Rejection {
    /// A part farther than this from every training example is unknown.
    pub threshold: f32,
    /// How the threshold was chosen, in words.
    pub method: String,
    /// `[fit] unknown_false_reject`.
    pub false_reject_target: f32,
    pub calibration_images: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DataRef {
    pub rows: usize,
    pub dim: usize,
    pub dtype: String,
    /// Byte offset of the embeddings from the start of the file.
    pub offset: usize,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Training {
    pub classes_dir: String,
    pub holdout: f32,
    pub seed: u64,
    pub seconds: f64,
    pub lineside_version: String,
}

/// A loaded model: header, embeddings, and each row's class.
#[derive(Debug)]
pub struct ExamplesArtifact {
    pub path: PathBuf,
    /// sha256 of the whole file (the model id's hash in defect logs).
    pub sha256: String,
    pub header: ExamplesHeader,
    /// rows x dim, row-major.
    pub embeddings: Vec<f32>,
    /// Class index of each row.
    pub row_class: Vec<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExamplesArtifactError {
    #[error("cannot read fitted model {path}: {source}\nFix: run `lineside fit <scenario>` to create it")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a lineside teach-by-example model ({reason}); re-create it with `lineside fit`")]
    Format { path: PathBuf, reason: String },
    #[error("cannot write fitted model {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ExamplesArtifact {
    pub fn load(path: &Path) -> Result<Self, ExamplesArtifactError> {
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|source| ExamplesArtifactError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        Self::from_bytes(path, &bytes)
    }

    /// Parses a model already in memory (`path` names it in errors). Every count in the
    /// file is checked before use: any bytes give an error, never a panic.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Self, ExamplesArtifactError> {
        let bad = |reason: String| ExamplesArtifactError::Format {
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
        let hjson = 16usize
            .checked_add(hlen)
            .and_then(|end| bytes.get(16..end))
            .ok_or_else(|| bad("truncated header".into()))?;
        let header: ExamplesHeader =
            serde_json::from_slice(hjson).map_err(|e| bad(format!("header: {e}")))?;
        let d = &header.data;
        let block_dim: usize = header.embedding.blocks.iter().map(|b| b.channels).sum();
        if d.dtype != "f32le" || d.dim == 0 || d.dim != header.embedding.dim || d.dim != block_dim {
            return Err(bad(format!(
                "embeddings dtype {} dim {} do not match the embedding's {} blocks of {block_dim} channels",
                d.dtype,
                d.dim,
                header.embedding.blocks.len()
            )));
        }
        let class_rows = header
            .classes
            .iter()
            .try_fold(0usize, |n, c| n.checked_add(c.rows));
        if header.classes.is_empty()
            || header.classes.len() > MAX_CLASSES
            || class_rows != Some(d.rows)
            || d.rows == 0
            || header.k == 0
        {
            return Err(bad(format!(
                "{} classes holding {:?} rows, {} rows stored, k = {}: inconsistent",
                header.classes.len(),
                class_rows,
                d.rows,
                header.k
            )));
        }
        let need = d
            .rows
            .checked_mul(d.dim)
            .and_then(|n| n.checked_mul(4))
            .ok_or_else(|| bad(format!("{} x {} floats is impossibly large", d.rows, d.dim)))?;
        let raw = d
            .offset
            .checked_add(need)
            .and_then(|end| bytes.get(d.offset..end))
            .ok_or_else(|| {
                bad(format!(
                    "embeddings truncated: need {need} bytes at {}",
                    d.offset
                ))
            })?;
        if hex::encode(Sha256::digest(raw)) != d.sha256 {
            return Err(bad("embeddings checksum mismatch (file damaged)".into()));
        }
        let embeddings = raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let row_class = header
            .classes
            .iter()
            .enumerate()
            .flat_map(|(i, c)| std::iter::repeat_n(i, c.rows))
            .collect();
        Ok(ExamplesArtifact {
            path: path.to_path_buf(),
            sha256: hex::encode(Sha256::digest(bytes)),
            header,
            embeddings,
            row_class,
        })
    }

    /// Writes header + embeddings (fills in their offset and checksum) through a temporary
    /// file, so a crash never leaves a half-written model; returns the file's sha256.
    pub fn write(
        path: &Path,
        header: &mut ExamplesHeader,
        embeddings: &[f32],
    ) -> Result<String, ExamplesArtifactError> {
        let werr = |source| ExamplesArtifactError::Write {
            path: path.to_path_buf(),
            source,
        };
        let raw: Vec<u8> = embeddings.iter().flat_map(|v| v.to_le_bytes()).collect();
        header.data.sha256 = hex::encode(Sha256::digest(&raw));
        // The offset depends on the header's length, which depends on the offset's digits.
        let mut json = Vec::new();
        for _ in 0..3 {
            json = serde_json::to_vec_pretty(header).map_err(|e| werr(std::io::Error::other(e)))?;
            let offset = (16 + json.len()).div_ceil(ALIGN) * ALIGN;
            if header.data.offset == offset {
                break;
            }
            header.data.offset = offset;
        }
        let hlen = u32::try_from(json.len()).map_err(|e| werr(std::io::Error::other(e)))?;
        let mut bytes = Vec::with_capacity(header.data.offset + raw.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        bytes.extend_from_slice(&hlen.to_le_bytes());
        bytes.extend_from_slice(&json);
        bytes.resize(header.data.offset, 0);
        bytes.extend_from_slice(&raw);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(werr)?;
        }
        let tmp = path.with_extension("lsex.tmp");
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
            .unwrap_or_else(|| "examples".into())
    }

    pub fn class_names(&self) -> Vec<String> {
        self.header.classes.iter().map(|c| c.name.clone()).collect()
    }
}
