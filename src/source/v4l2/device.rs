//! Opening a camera: capabilities, format negotiation, frame rate, fixed controls; and the
//! description `lineside devices` prints. Queries go through the `v4l` crate; where it can
//! panic on values a driver may send (unknown control types, non-UTF-8 names) the call is
//! guarded so a strange camera is an error, not a crash. Formats are set with raw ioctls
//! because the crate's `Format` conversion panics on unknown colorspaces and has no
//! multi-planar variant.

use std::io;
use std::os::raw::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use serde::Serialize;
use v4l::control::{Control, Value};
use v4l::device::Device;
use v4l::format::FourCC;
use v4l::frameinterval::FrameIntervalEnum;
use v4l::framesize::FrameSizeEnum;
use v4l::v4l2;
use v4l::v4l_sys::*;
use v4l::video::Capture;

use super::config::{CaptureFormat, V4l2Config};
use super::ring::{BUF_TYPE_CAPTURE, BUF_TYPE_CAPTURE_MPLANE};
use super::V4l2Error;

fn ioctl<T>(fd: c_int, req: v4l2::vidioc::_IOC_TYPE, arg: &mut T) -> io::Result<()> {
    // SAFETY: callers pair each request with its struct.
    unsafe { v4l2::ioctl(fd, req, (arg as *mut T).cast::<c_void>()) }
}

/// Runs a `v4l` query that may panic on unexpected driver data.
fn guarded<T>(what: &str, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(io::Error::other(format!(
            "the driver returned {what} that the v4l crate cannot read"
        )))
    })
}

pub(crate) fn fourcc_str(code: [u8; 4]) -> String {
    code.iter()
        .map(|&b| if b.is_ascii_graphic() { b as char } else { ' ' })
        .collect::<String>()
        .trim_end()
        .to_string()
}

/// Capability bits lineside cares about.
pub(crate) struct Caps {
    pub driver: String,
    pub card: String,
    pub bus: String,
    pub capture: bool,
    pub mplane: bool,
    pub streaming: bool,
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

pub(crate) fn query_caps(fd: c_int) -> io::Result<Caps> {
    // SAFETY: plain C struct.
    let mut c: v4l2_capability = unsafe { std::mem::zeroed() };
    ioctl(fd, v4l2::vidioc::VIDIOC_QUERYCAP, &mut c)?;
    let bits = if c.capabilities & V4L2_CAP_DEVICE_CAPS != 0 {
        c.device_caps
    } else {
        c.capabilities
    };
    Ok(Caps {
        driver: cstr(&c.driver),
        card: cstr(&c.card),
        bus: cstr(&c.bus_info),
        capture: bits & V4L2_CAP_VIDEO_CAPTURE != 0,
        mplane: bits & V4L2_CAP_VIDEO_CAPTURE_MPLANE != 0,
        streaming: bits & V4L2_CAP_STREAMING != 0,
    })
}

/// ENUM_FMT for a buffer type: (fourcc, description).
pub(crate) fn enum_formats(fd: c_int, buf_type: u32) -> Vec<([u8; 4], String)> {
    let mut out = Vec::new();
    for index in 0..64 {
        // SAFETY: plain C struct.
        let mut d: v4l2_fmtdesc = unsafe { std::mem::zeroed() };
        d.index = index;
        d.type_ = buf_type;
        if ioctl(fd, v4l2::vidioc::VIDIOC_ENUM_FMT, &mut d).is_err() {
            break;
        }
        out.push((d.pixelformat.to_le_bytes(), cstr(&d.description)));
    }
    out
}

fn frame_sizes(dev: &Device, code: [u8; 4]) -> Vec<(u32, u32)> {
    let sizes =
        guarded("a frame size", || dev.enum_framesizes(FourCC::new(&code))).unwrap_or_default();
    let mut out = Vec::new();
    for s in sizes {
        match s.size {
            FrameSizeEnum::Discrete(d) => out.push((d.width, d.height)),
            FrameSizeEnum::Stepwise(s) => {
                out.push((s.min_width, s.min_height));
                out.push((s.max_width, s.max_height));
            }
        }
    }
    out
}

fn frame_rates(dev: &Device, code: [u8; 4], w: u32, h: u32) -> Vec<f64> {
    let ivals = guarded("a frame interval", || {
        dev.enum_frameintervals(FourCC::new(&code), w, h)
    })
    .unwrap_or_default();
    let mut out = Vec::new();
    for i in ivals {
        let fract = match i.interval {
            FrameIntervalEnum::Discrete(f) => f,
            FrameIntervalEnum::Stepwise(s) => s.min,
        };
        if fract.numerator > 0 {
            out.push(f64::from(fract.denominator) / f64::from(fract.numerator));
        }
    }
    out
}

/// The format a camera agreed to deliver.
#[derive(Debug, Clone)]
pub(crate) struct Negotiated {
    pub format: CaptureFormat,
    pub width: u32,
    pub height: u32,
    /// Bytes per line of the first plane.
    pub stride: usize,
    pub mplane: bool,
    pub planes: usize,
}

/// An open, configured camera (not streaming yet).
pub(crate) struct Opened {
    pub device: Device,
    pub caps: Caps,
    pub format: Negotiated,
}

pub(crate) fn open(cfg: &V4l2Config) -> Result<Opened, V4l2Error> {
    let path = cfg.device.clone();
    let device = Device::with_path(&path).map_err(|e| V4l2Error::Open {
        path: path.clone(),
        source: e,
    })?;
    let fd = device.handle().fd();
    let caps = query_caps(fd).map_err(|e| V4l2Error::Io {
        path: path.clone(),
        what: "VIDIOC_QUERYCAP",
        source: e,
    })?;
    if !caps.capture && !caps.mplane {
        return Err(V4l2Error::NotCapture { path });
    }
    if !caps.streaming {
        return Err(V4l2Error::NoStreaming { path });
    }
    let format = negotiate(&device, &caps, cfg)?;
    set_rate(fd, &format, cfg);
    apply_controls(&device, cfg)?;
    Ok(Opened {
        device,
        caps,
        format,
    })
}

fn negotiate(dev: &Device, caps: &Caps, cfg: &V4l2Config) -> Result<Negotiated, V4l2Error> {
    let fd = dev.handle().fd();
    let path = &cfg.device;
    // Single-planar when the driver offers it, else the multi-planar API.
    let mplane = !caps.capture;
    let buf_type = if mplane {
        BUF_TYPE_CAPTURE_MPLANE
    } else {
        BUF_TYPE_CAPTURE
    };
    let offered = enum_formats(fd, buf_type);
    let offered_names = || {
        offered
            .iter()
            .map(|(c, d)| format!("{} ({d})", fourcc_str(*c)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(code) = cfg
        .format
        .fourccs()
        .iter()
        .map(|c| **c)
        .find(|c| offered.iter().any(|(o, _)| o == c))
    else {
        return Err(V4l2Error::FormatRefused {
            path: path.clone(),
            wanted: cfg.format.to_string(),
            offered: offered_names(),
        });
    };
    // SAFETY: plain C struct; the union member written matches `type_`.
    let mut f: v4l2_format = unsafe { std::mem::zeroed() };
    f.type_ = buf_type;
    let pixfmt = u32::from_le_bytes(code);
    if mplane {
        f.fmt.pix_mp.width = cfg.width;
        f.fmt.pix_mp.height = cfg.height;
        f.fmt.pix_mp.pixelformat = pixfmt;
        f.fmt.pix_mp.field = 1; // V4L2_FIELD_NONE
    } else {
        f.fmt.pix.width = cfg.width;
        f.fmt.pix.height = cfg.height;
        f.fmt.pix.pixelformat = pixfmt;
        f.fmt.pix.field = 1;
    }
    ioctl(fd, v4l2::vidioc::VIDIOC_S_FMT, &mut f).map_err(|e| {
        if e.raw_os_error() == Some(libc::EINVAL) {
            V4l2Error::FormatRefused {
                path: path.clone(),
                wanted: format!("{} {}x{}", cfg.format, cfg.width, cfg.height),
                offered: offered_names(),
            }
        } else {
            V4l2Error::Io {
                path: path.clone(),
                what: "VIDIOC_S_FMT",
                source: e,
            }
        }
    })?;
    // SAFETY: the driver filled the member matching `type_`.
    let (got, w, h, stride, planes) = unsafe {
        if mplane {
            let p = f.fmt.pix_mp;
            (
                p.pixelformat,
                p.width,
                p.height,
                p.plane_fmt[0].bytesperline as usize,
                usize::from(p.num_planes.max(1)),
            )
        } else {
            let p = f.fmt.pix;
            (p.pixelformat, p.width, p.height, p.bytesperline as usize, 1)
        }
    };
    let got_code = got.to_le_bytes();
    let Some(format) = CaptureFormat::from_fourcc(&got_code).filter(|f| *f == cfg.format) else {
        return Err(V4l2Error::FormatRefused {
            path: path.clone(),
            wanted: cfg.format.to_string(),
            offered: format!(
                "{} (it switched to {})",
                offered_names(),
                fourcc_str(got_code)
            ),
        });
    };
    if (w, h) != (cfg.width, cfg.height) {
        let sizes = frame_sizes(dev, code)
            .iter()
            .map(|(w, h)| format!("{w}x{h}"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(V4l2Error::SizeRefused {
            path: path.clone(),
            format: cfg.format.to_string(),
            wanted: (cfg.width, cfg.height),
            got: (w, h),
            offered: sizes,
        });
    }
    let stride = match format {
        CaptureFormat::Pixel(p) => stride.max(p.min_stride(w)),
        CaptureFormat::Mjpeg => stride,
    };
    Ok(Negotiated {
        format,
        width: w,
        height: h,
        stride,
        mplane,
        planes,
    })
}

/// Asks for the scenario's frame rate; a driver without rate control keeps its own (logged).
fn set_rate(fd: c_int, fmt: &Negotiated, cfg: &V4l2Config) {
    let Some(fps) = cfg.fps else { return };
    // SAFETY: plain C struct; `capture` is the member for capture types.
    let mut p: v4l2_streamparm = unsafe { std::mem::zeroed() };
    p.type_ = if fmt.mplane {
        BUF_TYPE_CAPTURE_MPLANE
    } else {
        BUF_TYPE_CAPTURE
    };
    let denominator = (fps * 1000.0).round().clamp(1.0, u32::MAX as f64) as u32;
    p.parm.capture.timeperframe.numerator = 1000;
    p.parm.capture.timeperframe.denominator = denominator;
    match ioctl(fd, v4l2::vidioc::VIDIOC_S_PARM, &mut p) {
        Ok(()) => {
            // SAFETY: as above.
            let t = unsafe { p.parm.capture.timeperframe };
            if t.numerator > 0 {
                let got = f64::from(t.denominator) / f64::from(t.numerator);
                if (got - fps).abs() > 0.01 * fps {
                    tracing::warn!(
                        device = %cfg.device.display(),
                        "asked for {fps} frames/s, the driver runs at {got:.3}"
                    );
                }
            }
        }
        Err(e) => tracing::warn!(
            device = %cfg.device.display(),
            "the driver does not set a frame rate ({e}); it keeps its own"
        ),
    }
}

fn apply_controls(dev: &Device, cfg: &V4l2Config) -> Result<(), V4l2Error> {
    if cfg.controls.is_empty() {
        return Ok(());
    }
    let path = &cfg.device;
    let have = guarded("a control", || dev.query_controls()).map_err(|e| V4l2Error::Io {
        path: path.clone(),
        what: "VIDIOC_QUERY_EXT_CTRL",
        source: e,
    })?;
    let names = || {
        have.iter()
            .map(|d| d.name.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for &(name, value) in &cfg.controls {
        let Some(desc) = have.iter().find(|d| d.id == name.cid()) else {
            return Err(V4l2Error::ControlMissing {
                path: path.clone(),
                control: name.key(),
                offered: names(),
            });
        };
        if value < desc.minimum || value > desc.maximum {
            return Err(V4l2Error::ControlRange {
                path: path.clone(),
                control: name.key(),
                value,
                min: desc.minimum,
                max: desc.maximum,
            });
        }
        let (auto, manual) = name.auto_cid();
        if have.iter().any(|d| d.id == auto) {
            set(dev, path, name.key(), auto, manual)?;
        }
        set(dev, path, name.key(), name.cid(), value)?;
    }
    Ok(())
}

fn set(dev: &Device, path: &Path, key: &'static str, id: u32, value: i64) -> Result<(), V4l2Error> {
    dev.set_control(Control {
        id,
        value: Value::Integer(value),
    })
    .map_err(|e| V4l2Error::ControlSet {
        path: path.to_path_buf(),
        control: key,
        source: e,
    })
}

/// What `lineside devices` prints for one device.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceInfo {
    pub path: PathBuf,
    pub driver: String,
    pub card: String,
    pub bus: String,
    pub multi_planar: bool,
    pub formats: Vec<FormatInfo>,
    pub controls: Vec<ControlInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FormatInfo {
    pub fourcc: String,
    pub description: String,
    /// Whether lineside can read it (and as what).
    pub lineside: Option<String>,
    pub sizes: Vec<SizeInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SizeInfo {
    pub width: u32,
    pub height: u32,
    pub fps: Vec<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ControlInfo {
    pub name: String,
    pub id: u32,
    pub min: i64,
    pub max: i64,
    pub default: i64,
}

/// Describes one device: capabilities, formats with sizes and rates, controls.
pub fn describe(path: &Path) -> Result<DeviceInfo, V4l2Error> {
    let device = Device::with_path(path).map_err(|e| V4l2Error::Open {
        path: path.to_path_buf(),
        source: e,
    })?;
    let fd = device.handle().fd();
    let caps = query_caps(fd).map_err(|e| V4l2Error::Io {
        path: path.to_path_buf(),
        what: "VIDIOC_QUERYCAP",
        source: e,
    })?;
    if !caps.capture && !caps.mplane {
        return Err(V4l2Error::NotCapture {
            path: path.to_path_buf(),
        });
    }
    let buf_type = if caps.capture {
        BUF_TYPE_CAPTURE
    } else {
        BUF_TYPE_CAPTURE_MPLANE
    };
    let formats = enum_formats(fd, buf_type)
        .into_iter()
        .map(|(code, description)| FormatInfo {
            fourcc: fourcc_str(code),
            description,
            lineside: CaptureFormat::from_fourcc(&code).map(|f| f.to_string()),
            sizes: frame_sizes(&device, code)
                .into_iter()
                .map(|(width, height)| SizeInfo {
                    width,
                    height,
                    fps: frame_rates(&device, code, width, height),
                })
                .collect(),
        })
        .collect();
    let controls = guarded("a control", || device.query_controls())
        .unwrap_or_default()
        .into_iter()
        .map(|d| ControlInfo {
            name: d.name,
            id: d.id,
            min: d.minimum,
            max: d.maximum,
            default: d.default,
        })
        .collect();
    Ok(DeviceInfo {
        path: path.to_path_buf(),
        driver: caps.driver,
        card: caps.card,
        bus: caps.bus,
        multi_planar: !caps.capture,
        formats,
        controls,
    })
}

/// Capture device nodes on this machine: `/dev/video*`, sorted.
pub fn device_nodes() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir("/dev")
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("video"))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

impl DeviceInfo {
    /// Human-readable listing.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{}: {} ({}, {}){}",
            self.path.display(),
            self.card,
            self.driver,
            self.bus,
            if self.multi_planar {
                " [multi-planar]"
            } else {
                ""
            }
        );
        for f in &self.formats {
            let _ = writeln!(
                s,
                "  format {:<4} {}{}",
                f.fourcc,
                f.description,
                match &f.lineside {
                    Some(l) => format!("  -> format = \"{l}\""),
                    None => "  (not supported by lineside)".into(),
                }
            );
            for z in &f.sizes {
                let rates = z
                    .fps
                    .iter()
                    .map(|r| {
                        format!("{r:.3}")
                            .trim_end_matches('0')
                            .trim_end_matches('.')
                            .to_string()
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                let _ = writeln!(s, "    {}x{}  fps: {}", z.width, z.height, rates);
            }
        }
        if !self.controls.is_empty() {
            let _ = writeln!(s, "  controls:");
            for c in &self.controls {
                let _ = writeln!(
                    s,
                    "    {:<32} {}..={} (default {})",
                    c.name, c.min, c.max, c.default
                );
            }
        }
        s
    }
}
