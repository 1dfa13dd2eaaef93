//! The scenario file, as written by integrators. Every section rejects unknown keys so a
//! typo is an error, not a silently ignored setting.

use std::path::PathBuf;

use serde::Deserialize;

use crate::preprocess::{ColorOrder, Fit, Interpolation, Layout, Rect};
use crate::source::v4l2::CaptureFormat;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSection {
    /// Short id used in logs and output paths: letters, digits, `-`, `_`.
    pub id: String,
    pub name: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// A folder of PNG/JPEG/BMP images (or one image file).
    Images,
    /// Raw frame files with a JSON sidecar (width, height, fourcc, stride).
    Raw,
    /// Generated test patterns.
    Synthetic,
    /// A V4L2 camera (`device`, `format`, `width`, `height`, `fps`, `buffers`, `[source.controls]`).
    V4l2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Pattern {
    #[default]
    Gradient,
    Checker,
    Noise,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSection {
    pub kind: SourceKind,
    /// images/raw: a folder or a file, relative to the scenario file.
    pub path: Option<PathBuf>,
    /// Frames per second to pace a replay at; 0 or absent: as fast as possible.
    pub fps: Option<f64>,
    /// Times to play a replay (default 1).
    pub repeat: Option<u32>,
    /// Live sources drop the oldest queued frame when inference falls behind (and count
    /// it); non-live sources wait, so every frame is inspected. Replays default to false.
    pub live: Option<bool>,
    /// synthetic/v4l2: frame size, pixel format (v4l2 also takes MJPEG); synthetic:
    /// pattern and count.
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub format: Option<CaptureFormat>,
    pub pattern: Option<Pattern>,
    pub frames: Option<u64>,
    /// Frames the capture side may hold at once (buffer pool size; v4l2: mmap buffers).
    pub buffers: Option<usize>,
    /// v4l2: the device node, `/dev/videoN` or a `/dev/v4l/by-id/...` link.
    pub device: Option<PathBuf>,
    /// v4l2: fixed control values (auto modes are switched off).
    pub controls: Option<ControlsSection>,
    /// v4l2: a poll that waits longer than this for a frame is reported (default 2000).
    pub timeout_ms: Option<u64>,
}

/// `[source.controls]`: only these names; a typo is an error with its line.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlsSection {
    /// Exposure time in 100 µs units (V4L2 `exposure_time_absolute`).
    pub exposure: Option<i64>,
    /// Analogue gain in the driver's units.
    pub gain: Option<i64>,
    /// White balance temperature in kelvin.
    pub white_balance: Option<i64>,
    /// Focus position in the driver's units (`focus_absolute`).
    pub focus: Option<i64>,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadKind {
    Classify,
    /// An anomalib export (`pred_score`, `anomaly_map`, ...).
    Anomaly,
    /// A PatchCore model fitted on the box with `lineside fit`: `[model] path` is the
    /// backbone, `[head] artifact` the fitted memory bank.
    Patchcore,
    /// Text detection + recognition (PP-OCR): `[model]` is the text detector,
    /// `recognizer` the recognition model.
    Ocr,
    /// Object detection (Ultralytics YOLOv8/YOLO11, YOLOv5/YOLOX exports): boxes, classes
    /// and `[[rules.count]]`.
    Detect,
    /// Segmentation: per-pixel class maps `[1, C, H, W]` or Ultralytics segmentation
    /// exports (boxes + mask prototypes) → regions judged by `[[rules.count]]`.
    Segment,
}

/// segment: what turns a class map's values into probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ActivationSetting {
    /// Softmax (several classes) or sigmoid (one) unless the values already are
    /// probabilities.
    #[default]
    Auto,
    Softmax,
    Sigmoid,
    None,
}

/// detect: how the output tensor is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DetectLayoutSetting {
    /// From the shape: the smaller of the last two dimensions is 4+nc (YOLOv8) or 5+nc (YOLOv5).
    #[default]
    Auto,
    Yolov8,
    Yolov5,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Softmax {
    /// Apply softmax unless the output already sums to 1.
    #[default]
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadSection {
    pub kind: HeadKind,
    /// classify: output to read (default: the only/first output).
    pub output: Option<String>,
    pub softmax: Option<Softmax>,
    /// classify: how many top classes go into the defect log (default 5).
    pub top_k: Option<usize>,
    /// patchcore: the fitted model file `lineside fit` writes (relative to this file).
    pub artifact: Option<PathBuf>,
    /// ocr: the text recognition model (PP-OCR rec, CTC), relative to this file.
    pub recognizer: Option<PathBuf>,
    /// ocr: probability above which a detector map pixel is text (default 0.3).
    pub det_threshold: Option<f32>,
    /// ocr: mean probability a text box needs (default 0.5).
    pub box_threshold: Option<f32>,
    /// ocr: how far text boxes grow, area x ratio / perimeter (default 1.6).
    pub unclip_ratio: Option<f32>,
    /// ocr: lines read with a lower confidence are dropped (default 0.5).
    pub text_score: Option<f32>,
    /// patchcore: inspect the frame (or roi) as overlapping tiles of `[width, height]`
    /// frame pixels, each resized to the model input (equal sizes: full detail).
    pub tile: Option<[u32; 2]>,
    /// patchcore: pixels neighbouring tiles share (default 32).
    pub tile_overlap: Option<u32>,
    /// detect: boxes whose best class score is not above this are dropped (default 0.25).
    pub conf_threshold: Option<f32>,
    /// detect: NMS drops a box overlapping a better one of its class by more than this
    /// IoU (default 0.7, as Ultralytics' predict).
    pub iou_threshold: Option<f32>,
    /// detect: boxes kept after NMS at most (default 300).
    pub max_detections: Option<usize>,
    /// detect: output layout (default "auto").
    pub layout: Option<DetectLayoutSetting>,
    /// segment (class maps): the class that is not a defect, by name or index, or "none"
    /// (default: class 0 when the map has several classes).
    pub background: Option<String>,
    /// segment (class maps): how values become probabilities (default "auto").
    pub activation: Option<ActivationSetting>,
    /// segment: probability at which a pixel belongs to a mask (default 0.5).
    pub mask_threshold: Option<f32>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RulesSection {
    /// classify: the part is OK only if the top class is one of these.
    pub ok_classes: Option<Vec<String>>,
    /// classify: the part is NG if the top class is one of these.
    pub ng_classes: Option<Vec<String>>,
    /// classify: NG when the top score is below this (an unsure verdict is a reject).
    pub min_score: Option<f32>,
    /// anomaly: NG when the (normalised) image score is at or above this.
    /// Default: the threshold baked into the model (`pred_label`).
    pub score_threshold: Option<f32>,
    /// anomaly: pixel threshold for defect regions (default: the score threshold).
    pub pixel_threshold: Option<f32>,
    /// anomaly: regions smaller than this many frame pixels are ignored.
    pub min_defect_area_px: Option<u32>,
    /// anomaly/patchcore: size of one frame pixel in millimetres; defects then also get
    /// an area in mm².
    pub mm_per_px: Option<f32>,
    /// ocr: `[[rules.text]]`, each a text that must have been read.
    pub text: Option<Vec<TextRuleSection>>,
    /// ocr: the date date-code rules count from, "YYYY-MM-DD" (replays of old batches,
    /// tests); default: the UTC date when the frame is inspected.
    pub today: Option<String>,
    /// detect: `[[rules.count]]`, each a number of boxes a good part has.
    pub count: Option<Vec<CountRuleSection>>,
    /// detect: each of these classes must be found at least once.
    pub required_classes: Option<Vec<String>>,
    /// detect: none of these classes may be found.
    pub forbidden_classes: Option<Vec<String>>,
}

/// One `[[rules.count]]`: how many boxes (of a class, in a zone) a good part has.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountRuleSection {
    /// Names the rule in the defect log (default `count[i]`).
    pub name: Option<String>,
    /// Class name (or index when the model has no names); absent: every class.
    pub class: Option<String>,
    /// Exactly this many (sets min and max).
    pub exact: Option<u32>,
    pub min: Option<u32>,
    pub max: Option<u32>,
    /// [x, y, width, height] in frame pixels; a box counts if its centre is inside.
    pub zone: Option<[f32; 4]>,
    /// Boxes below this score are not counted (default 0: every box the head kept).
    pub min_score: Option<f32>,
    /// Boxes smaller than this many frame pixels are not counted (default 0).
    pub min_area_px: Option<f32>,
}

/// One `[[rules.text]]`: give exactly one of `literal`, `pattern`, `date_format`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextRuleSection {
    /// Names the rule in the defect log (default `text[i]`).
    pub name: Option<String>,
    /// Some line contains this text.
    pub literal: Option<String>,
    /// Some line matches this regular expression (Rust `regex` syntax, searched).
    pub pattern: Option<String>,
    /// Some line holds a date in this strftime format (%Y %y %m %d %j %b) ...
    pub date_format: Option<String>,
    /// ... at least this many days after today (default 0; negative: before) ...
    pub min_days: Option<i64>,
    /// ... and at most this many (default: `min_days`).
    pub max_days: Option<i64>,
    /// Compare with spaces removed (default true: PP-OCR drops most spaces).
    pub ignore_spaces: Option<bool>,
}

/// How `lineside fit` builds a PatchCore model for this scenario.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FitSection {
    /// Folder of good images (PNG/JPEG/BMP), relative to this file.
    pub train: PathBuf,
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
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct OutputSection {
    /// Folder for the defect log and run summary (default `out/<scenario id>`).
    pub dir: Option<PathBuf>,
}

/// Sections of a scenario file, in the order they are documented.
pub const SECTIONS: [&str; 8] = [
    "scenario",
    "source",
    "model",
    "preprocess",
    "head",
    "rules",
    "fit",
    "output",
];
