//! The common sections of a scenario file, as written by integrators. Every section
//! rejects unknown keys so a typo is an error, not a silently ignored setting. `[source]`
//! belongs to the source kinds (`source::spec`), `[head]` and `[rules]` to the head kinds
//! (`heads/<kind>/plan.rs`).

use std::path::PathBuf;

use serde::Deserialize;

use crate::preprocess::{ColorOrder, Fit, Interpolation, Layout, Rect};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSection {
    /// Short id used in logs and output paths: letters, digits, `-`, `_`.
    pub id: String,
    pub name: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    pub path: PathBuf,
    /// Class names, one per line; defaults to the model's `names` metadata.
    pub labels: Option<PathBuf>,
    /// Inference workers (each owns a session). Default: what the cores allow.
    pub workers: Option<usize>,
    /// ONNX Runtime intra-op threads per worker (default 1).
    pub intra_threads: Option<usize>,
    /// Largest model input accepted, in pixels (width x height; default 8192 x 8192): each
    /// worker holds a float tensor of this size.
    pub max_input_pixels: Option<u64>,
    /// Execution providers to try in order: "openvino", "cuda", "tensorrt", "cpu"
    /// (default `["cpu"]`).
    pub providers: Option<Vec<String>>,
    /// `[model.openvino]`: options of the OpenVINO provider.
    pub openvino: Option<OpenvinoSection>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenvinoSection {
    /// The OpenVINO device: "CPU" (default), "GPU" or "NPU".
    pub device_type: Option<String>,
}

/// `roi` may be written `[x, y, width, height]` or as a table.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(untagged)]
pub enum RoiValue {
    List([u32; 4]),
    Table(Rect),
}

impl RoiValue {
    pub fn rect(self) -> Rect {
        match self {
            RoiValue::List([x, y, width, height]) => Rect {
                x,
                y,
                width,
                height,
            },
            RoiValue::Table(r) => r,
        }
    }
}

/// `mean`/`std` may be one number (all channels) or one per channel.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PerChannel {
    One(f32),
    Each(Vec<f32>),
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PreprocessSection {
    pub roi: Option<RoiValue>,
    pub fit: Option<Fit>,
    pub crop_fraction: Option<f32>,
    pub pad_value: Option<u8>,
    pub interpolation: Option<Interpolation>,
    pub color: Option<ColorOrder>,
    pub scale: Option<f32>,
    pub mean: Option<PerChannel>,
    pub std: Option<PerChannel>,
    pub layout: Option<Layout>,
    /// `[width, height]`; needed only when the model's input size is dynamic.
    pub size: Option<[u32; 2]>,
}

/// How `lineside fit` builds the scenario's fitted model: a PatchCore memory bank
/// (`kind = "patchcore"`: `train` and the keys after it) or a teach-by-example classifier
/// (`kind = "examples"`: `classes`, `unknown`, `k`, `pooling`, `unknown_false_reject`).
/// Each fit says which keys belong to the other kind.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FitSection {
    /// PatchCore: folder of good images (PNG/JPEG/BMP), relative to this file.
    pub train: Option<PathBuf>,
    /// Teach by example: a folder with one sub-folder of images per class
    /// (folder name = class name).
    pub classes: Option<PathBuf>,
    /// Teach by example: images of none of the classes, only to report how many the
    /// calibrated threshold rejects.
    pub unknown: Option<PathBuf>,
    /// Teach by example: neighbours that vote on the class (default 5).
    pub k: Option<usize>,
    /// Teach by example: how feature maps become an embedding, "avg" or "avg+max"
    /// (default "avg+max").
    pub pooling: Option<String>,
    /// Teach by example: the share of held-out known images the unknown threshold may
    /// reject (default 0.01).
    pub unknown_false_reject: Option<f32>,
    /// Fraction of the good images held out to calibrate the threshold (default 0.2).
    pub holdout: Option<f32>,
    /// Fraction of training patches kept in the memory bank (default 0.1).
    pub coreset_ratio: Option<f32>,
    /// Dimensions of the random projection used while choosing the coreset
    /// (default 128; 0 = measure distances on the full features).
    pub projection_dim: Option<usize>,
    /// Seed for the hold-out split, the projection and the first coreset patch (default 0).
    pub seed: Option<u64>,
    /// Fewest good images accepted (default 10).
    pub min_images: Option<usize>,
    /// Optional labelled images for the threshold: `good/`, `<defect>/` and
    /// `ground_truth/<defect>/<stem>_mask.png`, relative to this file.
    pub validation: Option<PathBuf>,
    /// Tiled scenarios: how many tiles of the grid are drawn (seeded) from each training
    /// image larger than a tile (default 8; 0 = every tile).
    pub tiles_per_frame: Option<usize>,
    /// Tiled scenarios: the share of good frames the calibrated threshold may reject
    /// (default 0.01).
    pub frame_false_reject: Option<f32>,
    /// Tiled scenarios: `[width, height]` of the frames the line delivers, when the
    /// hold-out images are smaller (crops); default: the hold-out images' own size.
    pub frame_size: Option<[u32; 2]>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct OutputSection {
    /// Folder for the defect log and run summary (default `out/<scenario id>` beside the
    /// scenario file).
    pub dir: Option<PathBuf>,
    /// Mode of the files lineside creates there, in octal (default "0640").
    pub file_mode: Option<String>,
    /// The consumers of the verdict stream, by name (default: the defect log and the
    /// run summary).
    pub sinks: Option<Vec<String>>,
    /// Seconds between rewrites of `summary.json` while the run goes on (default 10;
    /// 0: only at the end).
    pub summary_every_s: Option<u64>,
}

/// How the process runs as a service (shared by every scenario of one `lineside run`).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ServiceSection {
    /// Address of the `/healthz` and `/metrics` endpoint: `"127.0.0.1:9898"`, or a port
    /// alone (`"9898"`) for 127.0.0.1. Absent: no endpoint.
    pub listen: Option<String>,
}

/// `[mqtt]`: results, status, stats and alarms to an MQTT broker, through a disk spool
/// (`sink::mqtt`). Its presence adds the `mqtt` sink.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MqttSection {
    pub host: String,
    /// Default 1883 (8883 with `ca_file`).
    pub port: Option<i64>,
    /// Topic level naming this box (default: the host name).
    pub station: Option<String>,
    /// First topic level (default `lineside`).
    pub topic_prefix: Option<String>,
    /// Default `lineside-<station>-<scenario id>`.
    pub client_id: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// A file holding the password (first line), instead of `password`.
    pub password_file: Option<PathBuf>,
    /// PEM CA certificate(s): connect with TLS and check the broker against them.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate and key, for brokers that ask for one (needs `ca_file`).
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// MQTT keep-alive in seconds (default 30).
    pub keep_alive_s: Option<u64>,
    /// Seconds between `stats` messages (default 10; 0: none).
    pub stats_every_s: Option<u64>,
    /// Spool folder (default `<output dir>/mqtt-spool`).
    pub spool_dir: Option<PathBuf>,
    /// Disk the spool may use before it drops its oldest results (default 64 MiB).
    pub spool_max_bytes: Option<u64>,
    /// Seconds the end of a run waits for the spool to drain (default 5).
    pub flush_timeout_s: Option<f64>,
}

/// `[evidence]`: JPEG evidence of NG/ERROR parts (and a sample of OK ones), written off
/// the inspection path (`evidence`). Its presence turns evidence on.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct EvidenceSection {
    /// Default true (the section's presence turns evidence on); false keeps the settings
    /// but writes nothing.
    pub enabled: Option<bool>,
    /// Also save the OK parts whose `seq` is a multiple of this (default 0: none).
    pub ok_every: Option<u64>,
    /// Folder (default `evidence` under `[output] dir`).
    pub dir: Option<PathBuf>,
    /// Total size the folder may hold, in MiB (default 1024); oldest files go first.
    pub max_mb: Option<f64>,
    /// Age in days after which files are deleted (default 30; 0: no age limit).
    pub max_days: Option<f64>,
    /// Evidence waiting for the writer, at most (default 8); more is dropped and counted.
    pub queue: Option<usize>,
    /// JPEG quality 1..=100 (default 85).
    pub jpeg_quality: Option<u8>,
    /// One crop per listed defect region (default true).
    pub crops: Option<bool>,
}

/// Sections of a scenario file, in the order they are documented.
/// `[trigger]` and `[plc]` belong to the `plc` module (`plc::trigger_plan`, `plc::plc_map`).
pub const SECTIONS: [&str; 13] = [
    "scenario",
    "source",
    "model",
    "preprocess",
    "head",
    "rules",
    "fit",
    "output",
    "trigger",
    "plc",
    "service",
    "mqtt",
    "evidence",
];
