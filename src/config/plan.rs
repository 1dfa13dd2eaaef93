//! From a scenario file and its model to a runnable plan, checking everything that can be
//! checked before a frame is grabbed. `lineside validate` and `lineside run` share this.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::detect_plan;
use super::diagnostic::Diagnostic;
use super::file::ScenarioFile;
use super::heads_plan::{self, shape_str};
use super::schema::*;
use super::segment_plan;
use crate::engine::{ModelInfo, TensorInfo};
use crate::frame::PixelFormat;
use crate::heads::{
    AnomalyConfig, AnomalyScoring, ClassifyConfig, DetectConfig, OcrConfig, SegmentConfig,
};
use crate::preprocess::{ColorOrder, Fit, Layout, PreprocessSpec};
use crate::source::v4l2::{CaptureFormat, ControlName, V4l2Config};

#[derive(Debug, Clone)]
pub struct SourcePlan {
    pub kind: SourceKind,
    pub path: Option<PathBuf>,
    /// 0: as fast as possible.
    pub fps: f64,
    pub repeat: u32,
    pub live: bool,
    pub width: u32,
    pub height: u32,
    pub format: PixelFormat,
    pub pattern: Pattern,
    pub frames: u64,
    pub buffers: Option<usize>,
    /// kind = "v4l2": the camera settings.
    pub v4l2: Option<V4l2Config>,
}

#[derive(Debug, Clone)]
pub enum HeadPlan {
    Classify(ClassifyConfig),
    Anomaly(AnomalyConfig),
    Ocr(OcrConfig),
    Detect(DetectConfig),
    Segment(SegmentConfig),
}

#[derive(Debug, Clone)]
pub struct ScenarioPlan {
    pub id: String,
    pub name: String,
    pub file: PathBuf,
    pub source: SourcePlan,
    pub model: Arc<ModelInfo>,
    pub labels: Arc<[String]>,
    pub workers: Option<usize>,
    pub intra_threads: usize,
    pub preprocess: PreprocessSpec,
    pub head: HeadPlan,
    pub output_dir: PathBuf,
}

impl ScenarioPlan {
    /// The model named in defect logs: the fitted artifact for PatchCore scenarios (its
    /// file stem and sha256), else the ONNX file.
    pub fn logged_model(&self) -> (String, String) {
        match &self.head {
            HeadPlan::Anomaly(AnomalyConfig {
                scoring: AnomalyScoring::Fitted(a),
                ..
            }) => (a.id(), a.sha256.clone()),
            _ => (self.model.id.clone(), self.model.sha256.clone()),
        }
    }
}

/// Loads and checks one scenario file, reporting every problem found.
pub fn check(path: &Path) -> Result<ScenarioPlan, Vec<Diagnostic>> {
    let f = ScenarioFile::load(path)?;
    let mut errs = Vec::new();
    check_id(&f, &mut errs);
    let source = source_plan(&f, &mut errs);
    let (workers, intra_threads) = threads(&f, &mut errs);

    let model_path = f.resolve(&f.model.path);
    let model = match ModelInfo::load(&model_path) {
        Ok(m) => Some(Arc::new(m)),
        Err(e) => {
            errs.push(f.diag("model.path", e.to_string()));
            None
        }
    };
    let labels = labels(&f, model.as_deref(), &mut errs);
    let (Some(model), Some(labels)) = (model, labels) else {
        return Err(errs);
    };
    let mut preprocess = preprocess_spec(&f, &model, &mut errs);
    if f.head.kind == HeadKind::Ocr {
        if let Some(p) = preprocess.as_mut() {
            heads_plan::ocr_preprocess_defaults(&f, p);
            heads_plan::check_ocr_size(&f, p, &mut errs);
        }
    }
    if f.head.kind == HeadKind::Detect {
        if let Some(p) = preprocess.as_mut() {
            detect_plan::detect_preprocess_defaults(&f, p);
        }
    }
    if f.head.kind == HeadKind::Segment {
        if let Some(p) = preprocess.as_mut() {
            segment_plan::segment_preprocess_defaults(&f, &model, p);
        }
    }
    heads_plan::check_head_keys(&f, &mut errs);
    segment_plan::check_segment_keys(&f, &mut errs);
    detect_plan::check_detect_keys(&f, &mut errs);
    let head = head_plan(&f, &model, &labels, preprocess.as_ref(), &mut errs);
    let (Some(source), Some(preprocess), Some(head)) = (source, preprocess, head) else {
        return Err(errs);
    };
    if !errs.is_empty() {
        return Err(errs);
    }
    let id = f.scenario.id.clone();
    let output_dir = match &f.output.dir {
        Some(d) => f.resolve(d),
        None => PathBuf::from("out").join(&id),
    };
    Ok(ScenarioPlan {
        name: f.scenario.name.clone().unwrap_or_else(|| id.clone()),
        id,
        file: f.path.clone(),
        source,
        model,
        labels: labels.into(),
        workers,
        intra_threads,
        preprocess,
        head,
        output_dir,
    })
}

/// Loads a scenario file and checks only its `[source]` section (for `lineside record`,
/// which needs no model).
pub fn check_source(path: &Path) -> Result<SourcePlan, Vec<Diagnostic>> {
    let f = ScenarioFile::load(path)?;
    let mut errs = Vec::new();
    match source_plan(&f, &mut errs) {
        Some(p) if errs.is_empty() => Ok(p),
        _ => Err(errs),
    }
}

fn check_id(f: &ScenarioFile, errs: &mut Vec<Diagnostic>) {
    let id = &f.scenario.id;
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        errs.push(f.diag(
            "scenario.id",
            format!("`{id}` is not a valid id: use letters, digits, `-` and `_` (it names output folders)"),
        ));
    }
}

fn threads(f: &ScenarioFile, errs: &mut Vec<Diagnostic>) -> (Option<usize>, usize) {
    if f.model.workers == Some(0) {
        errs.push(f.diag(
            "model.workers",
            "must be at least 1 (or leave it out to use what the cores allow)",
        ));
    }
    if f.model.intra_threads == Some(0) {
        errs.push(f.diag("model.intra_threads", "must be at least 1"));
    }
    (f.model.workers, f.model.intra_threads.unwrap_or(1).max(1))
}

fn source_plan(f: &ScenarioFile, errs: &mut Vec<Diagnostic>) -> Option<SourcePlan> {
    let s = &f.source;
    let start = errs.len();
    let path = s.path.as_ref().map(|p| f.resolve(p));
    match s.kind {
        SourceKind::Images | SourceKind::Raw => match &path {
            None => errs.push(f.diag(
                "source.path",
                "missing: an image or raw replay needs `path` (a folder or a file, relative to this scenario file)",
            )),
            Some(p) if !p.exists() => errs.push(f.diag(
                "source.path",
                format!("{} does not exist", p.display()),
            )),
            _ => {}
        },
        SourceKind::Synthetic | SourceKind::V4l2 => {}
    }
    if s.kind != SourceKind::V4l2 {
        for (key, set) in [
            ("source.device", s.device.is_some()),
            ("source.controls", s.controls.is_some()),
            ("source.timeout_ms", s.timeout_ms.is_some()),
        ] {
            if set {
                errs.push(f.diag(key, "applies to kind = \"v4l2\" only"));
            }
        }
    }
    let fps = s.fps.unwrap_or(0.0);
    if !fps.is_finite() || fps < 0.0 {
        errs.push(f.diag(
            "source.fps",
            "must be 0 (as fast as possible) or a positive number of frames per second",
        ));
    }
    let format = match s.format {
        None => PixelFormat::Rgb24,
        Some(CaptureFormat::Pixel(p)) => p,
        Some(CaptureFormat::Mjpeg) => {
            if s.kind != SourceKind::V4l2 {
                errs.push(f.diag(
                    "source.format",
                    "MJPEG is a camera format (kind = \"v4l2\"); synthetic frames are YUYV, UYVY, NV12, GREY, Y16, RGB24 or BGR24",
                ));
            }
            PixelFormat::Rgb24
        }
    };
    let (width, height) = (s.width.unwrap_or(640), s.height.unwrap_or(480));
    if s.kind == SourceKind::Synthetic {
        if width == 0 || height == 0 || width > 16384 || height > 16384 {
            errs.push(f.diag(
                "source.width",
                "synthetic frames must be 1..=16384 pixels on each side",
            ));
        } else if format.needs_even_width() && !width.is_multiple_of(2) {
            errs.push(f.diag("source.width", format!("{format} needs an even width")));
        }
    }
    if s.buffers == Some(0) {
        errs.push(f.diag("source.buffers", "must be at least 1"));
    }
    let v4l2 = (s.kind == SourceKind::V4l2)
        .then(|| v4l2_config(f, errs))
        .flatten();
    (errs.len() == start).then(|| SourcePlan {
        kind: s.kind,
        path,
        // A camera paces itself; `fps` is what the driver is asked for.
        fps: if s.kind == SourceKind::V4l2 { 0.0 } else { fps },
        repeat: s.repeat.unwrap_or(1).max(1),
        // Cameras do not wait for inference: by default the oldest queued frame is dropped.
        live: s.live.unwrap_or(s.kind == SourceKind::V4l2),
        width,
        height,
        format,
        pattern: s.pattern.unwrap_or_default(),
        frames: s.frames.unwrap_or(100),
        buffers: s.buffers,
        v4l2,
    })
}

fn v4l2_config(f: &ScenarioFile, errs: &mut Vec<Diagnostic>) -> Option<V4l2Config> {
    let s = &f.source;
    let start = errs.len();
    if s.path.is_some() {
        errs.push(f.diag(
            "source.path",
            "a camera is named by `device` (e.g. \"/dev/video0\" or a /dev/v4l/by-id/ link), not `path`",
        ));
    }
    for (key, set) in [
        ("source.pattern", s.pattern.is_some()),
        ("source.frames", s.frames.is_some()),
        ("source.repeat", s.repeat.is_some()),
    ] {
        if set {
            errs.push(f.diag(key, "does not apply to kind = \"v4l2\""));
        }
    }
    let device = match &s.device {
        Some(d) if d.as_os_str().is_empty() => {
            errs.push(f.diag(
                "source.device",
                "is empty; give /dev/videoN or a /dev/v4l/by-id/ link",
            ));
            None
        }
        // Device nodes are absolute; a relative one resolves like any other path.
        Some(d) => Some(f.resolve(d)),
        None => {
            errs.push(f.diag(
                "source.device",
                "missing: a v4l2 source needs `device` (see `lineside devices` for what is attached)",
            ));
            None
        }
    };
    let (width, height) = (s.width.unwrap_or(640), s.height.unwrap_or(480));
    if width == 0 || height == 0 || width > 16384 || height > 16384 {
        errs.push(f.diag(
            "source.width",
            "camera frames must be 1..=16384 pixels on each side",
        ));
    }
    let format = s.format.unwrap_or(CaptureFormat::Pixel(PixelFormat::Yuyv));
    if let CaptureFormat::Pixel(p) = format {
        if p.needs_even_width() && !width.is_multiple_of(2) {
            errs.push(f.diag("source.width", format!("{p} needs an even width")));
        }
    }
    let buffers = s.buffers.unwrap_or(4);
    if buffers > 32 {
        errs.push(f.diag(
            "source.buffers",
            "at most 32 mmap buffers (drivers refuse more; 4 to 8 is usual)",
        ));
    }
    let timeout_ms = s.timeout_ms.unwrap_or(2000);
    if timeout_ms == 0 {
        errs.push(f.diag(
            "source.timeout_ms",
            "must be at least 1 (milliseconds a poll may wait for a frame)",
        ));
    }
    let mut controls = Vec::new();
    if let Some(c) = &s.controls {
        for (name, v) in
            ControlName::ALL
                .into_iter()
                .zip([c.exposure, c.gain, c.white_balance, c.focus])
        {
            if let Some(v) = v {
                controls.push((name, v));
            }
        }
    }
    let fps = s.fps.filter(|&r| r > 0.0);
    (errs.len() == start).then(|| V4l2Config {
        device: device.unwrap_or_default(),
        format,
        width,
        height,
        fps,
        buffers: buffers.max(1) as u32,
        controls,
        timeout: std::time::Duration::from_millis(timeout_ms),
    })
}

fn labels(
    f: &ScenarioFile,
    model: Option<&ModelInfo>,
    errs: &mut Vec<Diagnostic>,
) -> Option<Vec<String>> {
    let Some(p) = &f.model.labels else {
        return Some(model.and_then(ModelInfo::class_names).unwrap_or_default());
    };
    let p = f.resolve(p);
    match std::fs::read_to_string(&p) {
        Ok(text) => Some(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect(),
        ),
        Err(e) => {
            errs.push(f.diag(
                "model.labels",
                format!("cannot read labels file {}: {e}", p.display()),
            ));
            None
        }
    }
}

fn per_channel(
    f: &ScenarioFile,
    key: &str,
    v: &Option<PerChannel>,
    default: f32,
    channels: usize,
    errs: &mut Vec<Diagnostic>,
) -> [f32; 3] {
    match v {
        None => [default; 3],
        Some(PerChannel::One(x)) => [*x; 3],
        Some(PerChannel::Each(list)) if list.len() == channels || list.len() == 1 => {
            let mut out = [list[0]; 3];
            out[..list.len()].copy_from_slice(list);
            out
        }
        Some(PerChannel::Each(list)) => {
            errs.push(f.diag(
                key,
                format!(
                    "has {} values; give 1 or {channels} (one per channel)",
                    list.len()
                ),
            ));
            [default; 3]
        }
    }
}

pub(super) fn preprocess_spec(
    f: &ScenarioFile,
    model: &ModelInfo,
    errs: &mut Vec<Diagnostic>,
) -> Option<PreprocessSpec> {
    let p = &f.preprocess;
    let start = errs.len();
    let Some(input) = model.inputs.first() else {
        errs.push(f.diag("model.path", "the model has no inputs"));
        return None;
    };
    if model.inputs.len() > 1 {
        errs.push(f.diag(
            "model.path",
            format!(
            "the model has {} inputs ({}); lineside feeds one image tensor",
            model.inputs.len(),
            model.inputs.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(", ")
        ),
        ));
    }
    if !input.is_float32() {
        errs.push(f.diag(
            "model.path",
            format!(
                "input `{}` is {}; lineside feeds float32 tensors",
                input.name, input.dtype
            ),
        ));
    }
    if input.shape.len() != 4 {
        errs.push(f.diag(
            "model.path",
            format!(
                "input `{}` has shape {}; an image model needs 4 dimensions (NCHW or NHWC)",
                input.name,
                shape_str(&input.shape)
            ),
        ));
        return None;
    }
    let color = p.color.unwrap_or_default();
    let channels = color.channels();
    let layout = p.layout.unwrap_or_else(|| infer_layout(input));
    let (c_dim, h_dim, w_dim) = match layout {
        Layout::Nchw => (1, 2, 3),
        Layout::Nhwc => (3, 1, 2),
    };
    let dims = &input.shape;
    if dims[0] > 1 {
        errs.push(f.diag("model.path", format!(
            "input `{}` has a fixed batch of {}; lineside inspects one frame per run — re-export with batch 1 or a dynamic batch",
            input.name, dims[0]
        )));
    }
    if dims[c_dim] > 0 && dims[c_dim] as usize != channels {
        let key = if p.layout.is_some() {
            "preprocess.layout"
        } else {
            "preprocess.color"
        };
        errs.push(f.diag(key, format!(
            "the model input `{}` {} wants {} channel(s) in position {} but color = \"{}\" with layout = \"{}\" gives {}; \
             set color to {} and check layout (nchw or nhwc)",
            input.name,
            shape_str(dims),
            dims[c_dim],
            c_dim,
            color_name(color),
            layout_name(layout),
            channels,
            if dims[c_dim] == 1 { "\"gray\"" } else { "\"rgb\" or \"bgr\"" },
        )));
    }
    let fixed =
        (dims[w_dim] > 0 && dims[h_dim] > 0).then_some((dims[w_dim] as u32, dims[h_dim] as u32));
    let size = match (fixed, p.size) {
        (Some(m), Some(s)) if m != (s[0], s[1]) => {
            errs.push(f.diag("preprocess.size", format!(
                "is [{}, {}] but the model input `{}` {} is fixed at {}x{} (width x height); remove `size` or set it to [{}, {}]",
                s[0], s[1], input.name, shape_str(dims), m.0, m.1, m.0, m.1
            )));
            m
        }
        (Some(m), _) => m,
        (None, Some(s)) if s[0] > 0 && s[1] > 0 => (s[0], s[1]),
        (None, _) => {
            errs.push(f.diag(
                "preprocess.size",
                format!(
                "the model input `{}` {} has a dynamic width/height; set size = [width, height]",
                input.name,
                shape_str(dims)
            ),
            ));
            (1, 1)
        }
    };
    let fit = p.fit.unwrap_or_default();
    let crop_fraction = p.crop_fraction.unwrap_or(1.0);
    if !(crop_fraction > 0.0 && crop_fraction <= 1.0) {
        errs.push(f.diag(
            "preprocess.crop_fraction",
            "must be in (0, 1]; ImageNet's resize-256-crop-224 is 0.875",
        ));
    }
    if p.crop_fraction.is_some() && fit != Fit::CenterCrop {
        errs.push(f.diag(
            "preprocess.crop_fraction",
            "only applies with fit = \"center_crop\"",
        ));
    }
    let mean = per_channel(f, "preprocess.mean", &p.mean, 0.0, channels, errs);
    let std = per_channel(f, "preprocess.std", &p.std, 1.0, channels, errs);
    if std.iter().any(|s| *s == 0.0 || !s.is_finite()) {
        errs.push(f.diag("preprocess.std", "must be non-zero numbers"));
    }
    let scale = p.scale.unwrap_or(1.0 / 255.0);
    if !scale.is_finite() || scale == 0.0 {
        errs.push(f.diag(
            "preprocess.scale",
            "must be a non-zero number (1/255 = 0.00392156862745098 maps 8-bit values to [0,1])",
        ));
    }
    (errs.len() == start).then(|| PreprocessSpec {
        roi: p.roi.map(RoiValue::rect),
        fit,
        crop_fraction,
        pad_value: p.pad_value.unwrap_or(114),
        interpolation: p.interpolation.unwrap_or_default(),
        color,
        scale,
        mean,
        std,
        layout,
        width: size.0 as usize,
        height: size.1 as usize,
    })
}

fn infer_layout(input: &TensorInfo) -> Layout {
    let s = &input.shape;
    let is_channels = |d: i64| d == 1 || d == 3;
    if s.len() == 4 && !is_channels(s[1]) && is_channels(s[3]) {
        Layout::Nhwc
    } else {
        Layout::Nchw
    }
}

fn head_plan(
    f: &ScenarioFile,
    model: &ModelInfo,
    labels: &[String],
    preprocess: Option<&PreprocessSpec>,
    errs: &mut Vec<Diagnostic>,
) -> Option<HeadPlan> {
    let start = errs.len();
    let task_fits = task_fits_head(f, model, errs);
    let after_task = errs.len();
    let r = &f.rules;
    let only_for = |errs: &mut Vec<Diagnostic>, key: &str, set: bool, kind: &str| {
        if set {
            errs.push(f.diag(key, format!("applies to head kind \"{kind}\" only")));
        }
    };
    let plan = match f.head.kind {
        HeadKind::Classify => {
            only_for(
                errs,
                "rules.score_threshold",
                r.score_threshold.is_some(),
                "anomaly",
            );
            only_for(
                errs,
                "rules.pixel_threshold",
                r.pixel_threshold.is_some(),
                "anomaly",
            );
            only_for(
                errs,
                "rules.min_defect_area_px",
                r.min_defect_area_px.is_some(),
                "anomaly",
            );
            only_for(errs, "rules.mm_per_px", r.mm_per_px.is_some(), "anomaly");
            only_for(
                errs,
                "head.artifact",
                f.head.artifact.is_some(),
                "patchcore",
            );
            only_for(
                errs,
                "head.tile",
                f.head.tile.is_some(),
                "patchcore\" or \"detect",
            );
            classify_plan(f, model, labels, errs).map(HeadPlan::Classify)
        }
        HeadKind::Anomaly | HeadKind::Patchcore => {
            only_for(errs, "rules.ok_classes", r.ok_classes.is_some(), "classify");
            only_for(errs, "rules.ng_classes", r.ng_classes.is_some(), "classify");
            only_for(errs, "rules.min_score", r.min_score.is_some(), "classify");
            only_for(errs, "head.softmax", f.head.softmax.is_some(), "classify");
            only_for(errs, "head.top_k", f.head.top_k.is_some(), "classify");
            if f.head.kind == HeadKind::Anomaly {
                only_for(
                    errs,
                    "head.artifact",
                    f.head.artifact.is_some(),
                    "patchcore",
                );
                only_for(
                    errs,
                    "head.tile",
                    f.head.tile.is_some(),
                    "patchcore\" or \"detect",
                );
                anomaly_plan(f, model, errs).map(HeadPlan::Anomaly)
            } else {
                let spec = preprocess?;
                let tile = super::patchcore::tiling(f, spec, true, errs);
                super::patchcore::fitted_scoring(f, model, spec, errs)
                    .and_then(|scoring| anomaly_rules(f, scoring, errs))
                    .map(|cfg| HeadPlan::Anomaly(AnomalyConfig { tile, ..cfg }))
            }
        }
        HeadKind::Ocr => {
            for (key, set, kind) in [
                ("rules.ok_classes", r.ok_classes.is_some(), "classify"),
                ("rules.ng_classes", r.ng_classes.is_some(), "classify"),
                ("rules.min_score", r.min_score.is_some(), "classify"),
                (
                    "rules.score_threshold",
                    r.score_threshold.is_some(),
                    "anomaly",
                ),
                (
                    "rules.pixel_threshold",
                    r.pixel_threshold.is_some(),
                    "anomaly",
                ),
                (
                    "rules.min_defect_area_px",
                    r.min_defect_area_px.is_some(),
                    "anomaly",
                ),
                ("head.softmax", f.head.softmax.is_some(), "classify"),
                ("head.top_k", f.head.top_k.is_some(), "classify"),
                ("head.output", f.head.output.is_some(), "classify"),
                ("head.artifact", f.head.artifact.is_some(), "patchcore"),
                (
                    "head.tile",
                    f.head.tile.is_some(),
                    "patchcore\" or \"detect",
                ),
            ] {
                only_for(errs, key, set, kind);
            }
            heads_plan::ocr_plan(f, model, errs).map(HeadPlan::Ocr)
        }
        HeadKind::Segment => {
            segment_plan::segment_plan(f, model, labels, preprocess, errs).map(HeadPlan::Segment)
        }
        HeadKind::Detect => {
            let tile = preprocess.and_then(|p| super::patchcore::tiling(f, p, false, errs));
            detect_plan::detect_plan(f, model, labels, errs)
                .map(|cfg| HeadPlan::Detect(DetectConfig { tile, ..cfg }))
        }
    };
    if !task_fits {
        // What the outputs do not fit is explained by the task already; the rest stays.
        let mut i = after_task;
        while i < errs.len() {
            if matches!(
                errs[i].key.as_str(),
                "model.path" | "model.labels" | "head.kind" | "head.output"
            ) {
                errs.remove(i);
            } else {
                i += 1;
            }
        }
    }
    if errs.len() == start {
        plan
    } else {
        None
    }
}

/// Ultralytics writes the task into its exports (`task` metadata): a mismatch with the head
/// kind is named before the output shapes are, and the tasks lineside does not run yet are
/// refused with what they are.
fn task_fits_head(f: &ScenarioFile, model: &ModelInfo, errs: &mut Vec<Diagnostic>) -> bool {
    let Some(task) = model.metadata.get("task").map(String::as_str) else {
        return true;
    };
    let fits = match task {
        "detect" => Some(HeadKind::Detect),
        "segment" => Some(HeadKind::Segment),
        "classify" => Some(HeadKind::Classify),
        _ => None,
    };
    match fits {
        Some(kind) if kind == f.head.kind => true,
        Some(_) => {
            errs.push(f.diag(
                "head.kind",
                format!(
                    "the model's metadata says it is a `{task}` export (task = \"{task}\"); use head kind \"{task}\""
                ),
            ));
            false
        }
        None if matches!(task, "pose" | "obb") => {
            errs.push(f.diag(
                "model.path",
                format!(
                    "this is an Ultralytics `{task}` export ({}); lineside runs detect, segment and classify exports — export the detect model of the same family instead",
                    if task == "pose" { "boxes with keypoints" } else { "rotated boxes" }
                ),
            ));
            false
        }
        None => true,
    }
}

fn classify_plan(
    f: &ScenarioFile,
    model: &ModelInfo,
    labels: &[String],
    errs: &mut Vec<Diagnostic>,
) -> Option<ClassifyConfig> {
    let out = heads_plan::head_output(f, model, errs)?;
    let key = if f.head.output.is_some() {
        "head.output"
    } else {
        "head.kind"
    };
    let classes = match out.fixed_shape() {
        Some(s) if out.is_float32() && s.iter().rev().skip(1).all(|&d| d == 1) && !s.is_empty() => {
            s[s.len() - 1]
        }
        _ => {
            errs.push(f.diag(
                key,
                format!(
                    "a classify head needs a float32 output shaped [1, classes]; `{}` is {} {}",
                    out.name,
                    out.dtype,
                    shape_str(&out.shape)
                ),
            ));
            return None;
        }
    };
    if !labels.is_empty() && labels.len() != classes {
        let key = if f.model.labels.is_some() {
            "model.labels"
        } else {
            "model.path"
        };
        errs.push(f.diag(key, format!(
            "{} class names but output `{}` scores {classes} classes; the list must have one name per class, in model order",
            labels.len(),
            out.name
        )));
        return None;
    }
    let r = &f.rules;
    let mark =
        |errs: &mut Vec<Diagnostic>, key: &str, names: &Option<Vec<String>>, default: bool| {
            let Some(names) = names else {
                return vec![default; classes];
            };
            let mut set = vec![false; classes];
            for n in names {
                match class_index(n, labels, classes) {
                    Some(i) => set[i] = true,
                    None => errs.push(f.diag(
                        key,
                        format!("`{n}` is not a class of this model{}", suggest(n, labels)),
                    )),
                }
            }
            set
        };
    let ok = mark(errs, "rules.ok_classes", &r.ok_classes, true);
    let ng = mark(errs, "rules.ng_classes", &r.ng_classes, false);
    if let Some(m) = r.min_score {
        if !(0.0..=1.0).contains(&m) {
            errs.push(f.diag("rules.min_score", "must be a probability in [0, 1]"));
        }
    }
    let top_k = f.head.top_k.unwrap_or(5).clamp(1, classes);
    Some(ClassifyConfig {
        output: out.name.clone(),
        classes,
        softmax: f.head.softmax.unwrap_or_default(),
        top_k,
        ok,
        ng,
        min_score: r.min_score,
    })
}

fn class_index(name: &str, labels: &[String], classes: usize) -> Option<usize> {
    labels.iter().position(|l| l == name).or_else(|| {
        name.parse::<usize>()
            .ok()
            .filter(|&i| i < classes && labels.is_empty())
    })
}

fn suggest(name: &str, labels: &[String]) -> String {
    let lower = name.to_lowercase();
    let near: Vec<&str> = labels
        .iter()
        .filter(|l| {
            let l = l.to_lowercase();
            l.contains(&lower) || lower.contains(&l)
        })
        .take(5)
        .map(String::as_str)
        .collect();
    if near.is_empty() {
        " (names are case-sensitive; see the labels file or `lineside models inspect`)".into()
    } else {
        format!("; did you mean one of {near:?}?")
    }
}

fn anomaly_plan(
    f: &ScenarioFile,
    model: &ModelInfo,
    errs: &mut Vec<Diagnostic>,
) -> Option<AnomalyConfig> {
    let Some(score) = model.output("pred_score").filter(|o| o.is_float32()) else {
        errs.push(f.diag("head.kind", format!(
            "an anomaly head reads anomalib outputs (`pred_score`, and `anomaly_map` for regions); this model's outputs are {}",
            model.output_names()
        )));
        return None;
    };
    let map = model
        .output("anomaly_map")
        .filter(|o| o.is_float32() && o.shape.len() >= 2);
    let scoring = AnomalyScoring::Export {
        score_output: score.name.clone(),
        label_output: model.output("pred_label").map(|o| o.name.clone()),
        map_output: map.map(|o| o.name.clone()),
    };
    anomaly_rules(f, scoring, errs)
}

/// The `[rules]` of an anomaly head, the same for exports and fitted models.
fn anomaly_rules(
    f: &ScenarioFile,
    scoring: AnomalyScoring,
    errs: &mut Vec<Diagnostic>,
) -> Option<AnomalyConfig> {
    let r = &f.rules;
    for (key, v) in [
        ("rules.score_threshold", r.score_threshold),
        ("rules.pixel_threshold", r.pixel_threshold),
    ] {
        if v.is_some_and(|t| !t.is_finite()) {
            errs.push(f.diag(key, "must be a number"));
        }
    }
    if r.mm_per_px.is_some_and(|s| !(s.is_finite() && s > 0.0)) {
        errs.push(f.diag(
            "rules.mm_per_px",
            "must be a positive number: the width of one frame pixel in millimetres",
        ));
    }
    Some(AnomalyConfig {
        scoring,
        score_threshold: r.score_threshold,
        pixel_threshold: r.pixel_threshold.or(r.score_threshold).unwrap_or(0.5),
        min_area_px: r.min_defect_area_px.unwrap_or(0) as f32,
        mm_per_px: r.mm_per_px,
        max_defects: 32,
        tile: None,
    })
}

fn color_name(c: ColorOrder) -> &'static str {
    match c {
        ColorOrder::Rgb => "rgb",
        ColorOrder::Bgr => "bgr",
        ColorOrder::Gray => "gray",
    }
}

fn layout_name(l: Layout) -> &'static str {
    match l {
        Layout::Nchw => "nchw",
        Layout::Nhwc => "nhwc",
    }
}
