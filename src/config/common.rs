//! The common sections every scenario has, turned into settings: the scenario id,
//! model threads and class names, and `[preprocess]` checked against the model's input.

use super::diagnostic::Diagnostic;
use super::file::ScenarioFile;
use super::schema::*;
use crate::engine::{shape_str, ModelInfo, OpenvinoDevice, Provider, ProviderList, TensorInfo};
use crate::preprocess::{ColorOrder, Fit, Layout, PreprocessSpec};

/// Longest scenario id: it names the output folder, and a file name longer than the
/// file system allows (255 bytes on most) fails only when the run starts.
pub const MAX_ID_CHARS: usize = 64;

pub fn check_id(f: &ScenarioFile, errs: &mut Vec<Diagnostic>) {
    let id = &f.scenario.id;
    // Quote at most the start of a long id: the message must stay readable.
    let shown: String = id.chars().take(MAX_ID_CHARS).collect();
    let more = if id.chars().count() > MAX_ID_CHARS {
        "..."
    } else {
        ""
    };
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        errs.push(f.diag(
            "scenario.id",
            format!("`{shown}{more}` is not a valid id: use letters, digits, `-` and `_` (it names output folders)"),
        ));
    } else if id.len() > MAX_ID_CHARS {
        errs.push(f.diag(
            "scenario.id",
            format!(
                "`{shown}...` is {} characters long: use at most {MAX_ID_CHARS} (it names output folders)",
                id.len()
            ),
        ));
    }
}

/// `workers` (and `intra_threads`) above this many per core are refused.
pub const MAX_WORKERS_PER_CORE: usize = 8;

/// Default for `[model] max_input_pixels`: 8192 x 8192.
pub const MAX_INPUT_PIXELS: u64 = 8192 * 8192;

pub fn threads(f: &ScenarioFile, errs: &mut Vec<Diagnostic>) -> (Option<usize>, usize) {
    if f.model.workers == Some(0) {
        errs.push(f.diag(
            "model.workers",
            "must be at least 1 (or leave it out to use what the cores allow)",
        ));
    }
    // Each worker owns a session and its tensors: a typo like 1000 must not exhaust memory.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let max_workers = MAX_WORKERS_PER_CORE * cores;
    if let Some(w) = f.model.workers.filter(|&w| w > max_workers) {
        errs.push(f.diag(
            "model.workers",
            format!(
                "{w} is more than {MAX_WORKERS_PER_CORE} per core ({cores} cores here): set at most {max_workers}, or leave it out to use what the cores allow"
            ),
        ));
    }
    if f.model.intra_threads == Some(0) {
        errs.push(f.diag("model.intra_threads", "must be at least 1"));
    }
    if let Some(t) = f.model.intra_threads.filter(|&t| t > max_workers) {
        errs.push(f.diag(
            "model.intra_threads",
            format!("{t} is more than {MAX_WORKERS_PER_CORE} per core ({cores} cores here): set at most {max_workers}"),
        ));
    }
    (f.model.workers, f.model.intra_threads.unwrap_or(1).max(1))
}

/// `[model] providers` and `[model.openvino]`: which execution providers to try, in order.
pub fn providers(f: &ScenarioFile, errs: &mut Vec<Diagnostic>) -> ProviderList {
    let mut list = ProviderList::default();
    if let Some(names) = &f.model.providers {
        let names_all = Provider::ALL
            .iter()
            .map(|p| format!("\"{p}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let mut order = Vec::new();
        for name in names {
            match Provider::parse(name) {
                Some(p) if order.contains(&p) => errs.push(f.diag(
                    "model.providers",
                    format!("lists \"{name}\" twice; name each provider once"),
                )),
                Some(p) => order.push(p),
                None => errs.push(f.diag(
                    "model.providers",
                    format!("\"{name}\" is not a provider lineside knows; use {names_all}"),
                )),
            }
        }
        if names.is_empty() {
            errs.push(f.diag(
                "model.providers",
                "is empty; list at least one provider, e.g. [\"cpu\"] (or leave the key out)",
            ));
        }
        if !order.is_empty() {
            list.order = order;
        }
    }
    if let Some(ov) = &f.model.openvino {
        if let Some(d) = &ov.device_type {
            match OpenvinoDevice::parse(d) {
                Some(dev) => list.openvino_device = dev,
                None => errs.push(f.diag(
                    "model.openvino.device_type",
                    format!(
                        "\"{d}\" is not an OpenVINO device lineside selects; use {}",
                        OpenvinoDevice::NAMES
                    ),
                )),
            }
        }
    }
    list
}

pub fn labels(
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

pub fn preprocess_spec(
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
    // Checked before any tensor is sized from it (a model can declare 100000 x 100000).
    let max_input = f.model.max_input_pixels.unwrap_or(MAX_INPUT_PIXELS);
    if u64::from(size.0) * u64::from(size.1) > max_input {
        let key = if fixed.is_some() {
            "model.path"
        } else {
            "preprocess.size"
        };
        errs.push(f.diag(key, format!(
            "the model input would be {}x{}, more than {max_input} pixels; use a smaller input, or raise [model] max_input_pixels if it is real",
            size.0, size.1
        )));
    }
    if f.model.max_input_pixels == Some(0) {
        errs.push(f.diag(
            "model.max_input_pixels",
            "must be at least 1 (leave it out for the default)",
        ));
    }
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
