//! `[source]`: which kind of source a scenario reads frames from, and its settings,
//! checked before anything opens.

use std::path::PathBuf;

use serde::Deserialize;

use super::folder::{self, After, Existing, FolderConfig, Order};
use super::v4l2::{CaptureFormat, ControlName, V4l2Config};
use crate::config::{Diagnostic, ScenarioFile};
use crate::frame::{FrameLimits, PixelFormat};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// A folder of PNG/JPEG/BMP images (or one image file).
    Images,
    /// A folder watched for new image files, each inspected once (`poll_ms`, `settle_ms`,
    /// `after`, `done_dir`, `existing`, `order`, `ledger`).
    Folder,
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
    /// Largest frame accepted, in pixels (default 100 000 000); larger image files or raw
    /// sidecars are refused before anything is allocated for them.
    pub max_pixels: Option<u64>,
    /// Largest frame buffer accepted, in bytes (default 512 MiB).
    pub max_frame_bytes: Option<u64>,
    /// folder: how often the folder is listed (default 200).
    pub poll_ms: Option<u64>,
    /// folder: a file is complete once its size and mtime stay unchanged this long
    /// (default 500).
    pub settle_ms: Option<u64>,
    /// folder: what happens to a file once its verdict is logged (default "leave").
    pub after: Option<After>,
    /// folder: where `after = "move"` puts files, relative to this scenario file.
    pub done_dir: Option<PathBuf>,
    /// folder: files already there when the ledger is first made (default "process").
    pub existing: Option<Existing>,
    /// folder: the order files ready at the same time are inspected in (default "name").
    pub order: Option<Order>,
    /// folder: the ledger of inspected files (default `<output dir>/folder-ledger.tsv`).
    pub ledger: Option<PathBuf>,
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
    /// kind = "folder": the watch settings.
    pub folder: Option<FolderConfig>,
    /// The largest frame this source may produce.
    pub limits: FrameLimits,
}

/// Reads and checks `[source]`.
pub fn source_plan(f: &ScenarioFile, errs: &mut Vec<Diagnostic>) -> Option<SourcePlan> {
    let s = match f.section::<SourceSection>("source", &[]) {
        Ok(s) => s,
        Err(d) => {
            errs.push(d);
            return None;
        }
    };
    let s = &s;
    let start = errs.len();
    let path = s.path.as_ref().map(|p| f.resolve(p));
    match s.kind {
        SourceKind::Images | SourceKind::Raw | SourceKind::Folder => match &path {
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
    if s.kind != SourceKind::Folder {
        folder::refuse_keys(f, s, errs);
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
    let limits = FrameLimits {
        max_pixels: s.max_pixels.unwrap_or(FrameLimits::DEFAULT.max_pixels),
        max_bytes: s.max_frame_bytes.unwrap_or(FrameLimits::DEFAULT.max_bytes),
    };
    for (key, v) in [
        ("source.max_pixels", s.max_pixels),
        ("source.max_frame_bytes", s.max_frame_bytes),
    ] {
        if v == Some(0) {
            errs.push(f.diag(key, "must be at least 1 (leave it out for the default)"));
        }
    }
    // Sizes given here are checked now; those read from files when the source opens.
    if matches!(s.kind, SourceKind::Synthetic | SourceKind::V4l2) {
        let bytes = format
            .checked_frame_len(format.min_stride(width), height)
            .map(|b| b as u64);
        if let Err(e) = limits.check(width, height, bytes) {
            errs.push(f.diag("source.width", e.to_string()));
        }
    }
    let v4l2 = (s.kind == SourceKind::V4l2)
        .then(|| v4l2_config(f, s, errs))
        .flatten();
    let folder = match (&path, s.kind) {
        (Some(p), SourceKind::Folder) => folder::config(f, s, p, errs),
        _ => None,
    };
    (errs.len() == start).then(|| SourcePlan {
        kind: s.kind,
        path,
        // A camera paces itself; `fps` is what the driver is asked for.
        fps: if s.kind == SourceKind::V4l2 { 0.0 } else { fps },
        repeat: s.repeat.unwrap_or(1).max(1),
        // Cameras do not wait for inference: by default the oldest queued frame is dropped.
        // A watched folder never drops a part (`folder::config` refuses live = true).
        live: s.live.unwrap_or(s.kind == SourceKind::V4l2) && s.kind != SourceKind::Folder,
        width,
        height,
        format,
        pattern: s.pattern.unwrap_or_default(),
        frames: s.frames.unwrap_or(100),
        buffers: s.buffers,
        v4l2,
        folder,
        limits,
    })
}

fn v4l2_config(
    f: &ScenarioFile,
    s: &SourceSection,
    errs: &mut Vec<Diagnostic>,
) -> Option<V4l2Config> {
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

impl SourcePlan {
    /// Gives a watched folder without its own `ledger` the default one in the scenario's
    /// output folder (which one run at a time holds locked).
    pub fn default_ledger_in(&mut self, output_dir: &std::path::Path) {
        if let Some(cfg) = self.folder.as_mut() {
            if cfg.ledger.is_none() {
                cfg.ledger = Some(output_dir.join(folder::DEFAULT_LEDGER));
            }
        }
    }
}

/// Loads a scenario file and checks only its `[source]` section (for `lineside record`,
/// which needs no model).
pub fn check_source(path: &std::path::Path) -> Result<SourcePlan, Vec<Diagnostic>> {
    let f = ScenarioFile::load_checking::<crate::source::SourceSection>(path, "source")?;
    let mut errs = Vec::new();
    match source_plan(&f, &mut errs) {
        Some(p) if errs.is_empty() => Ok(p),
        _ => Err(errs),
    }
}
