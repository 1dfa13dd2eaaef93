//! What a scenario asks of a camera: device, format, size, rate, buffers, fixed controls.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

use crate::frame::PixelFormat;

/// A capture format: a pixel layout preprocessing reads in place, or MJPEG (decoded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureFormat {
    Pixel(PixelFormat),
    Mjpeg,
}

impl CaptureFormat {
    /// Driver fourccs that deliver this format, preferred first. NV12 may come as the
    /// single-buffer `NV12` or the two-plane `NM12` (NV12M) of multi-planar drivers.
    pub fn fourccs(self) -> &'static [&'static [u8; 4]] {
        match self {
            CaptureFormat::Mjpeg => &[b"MJPG"],
            CaptureFormat::Pixel(PixelFormat::Nv12) => &[b"NV12", b"NM12"],
            CaptureFormat::Pixel(PixelFormat::Yuyv) => &[b"YUYV"],
            CaptureFormat::Pixel(PixelFormat::Uyvy) => &[b"UYVY"],
            CaptureFormat::Pixel(PixelFormat::Grey) => &[b"GREY"],
            CaptureFormat::Pixel(PixelFormat::Y16) => &[b"Y16 "],
            CaptureFormat::Pixel(PixelFormat::Rgb24) => &[b"RGB3"],
            CaptureFormat::Pixel(PixelFormat::Bgr24) => &[b"BGR3"],
        }
    }

    /// The format a driver fourcc stands for.
    pub fn from_fourcc(code: &[u8; 4]) -> Option<CaptureFormat> {
        match code {
            b"MJPG" | b"JPEG" => Some(CaptureFormat::Mjpeg),
            b"NM12" => Some(CaptureFormat::Pixel(PixelFormat::Nv12)),
            _ => PixelFormat::from_fourcc(code).map(CaptureFormat::Pixel),
        }
    }
}

impl fmt::Display for CaptureFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaptureFormat::Pixel(p) => p.fmt(f),
            CaptureFormat::Mjpeg => f.write_str("MJPEG"),
        }
    }
}

impl FromStr for CaptureFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_uppercase().as_str() {
            "MJPEG" | "MJPG" | "JPEG" => Ok(CaptureFormat::Mjpeg),
            "NM12" | "NV12M" => Ok(CaptureFormat::Pixel(PixelFormat::Nv12)),
            other => other.parse().map(CaptureFormat::Pixel).map_err(|_| {
                format!(
                    "unknown pixel format `{s}`; expected one of YUYV, UYVY, NV12, GREY, Y16, RGB24, BGR24, MJPEG"
                )
            }),
        }
    }
}

impl<'de> Deserialize<'de> for CaptureFormat {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Controls a scenario may fix. Auto modes break inspection, so setting one of these
/// also switches its automatic mode off where the driver has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlName {
    Exposure,
    Gain,
    WhiteBalance,
    Focus,
}

// V4L2 control ids (linux/v4l2-controls.h).
const CID_USER_BASE: u32 = 0x0098_0900;
const CID_CAMERA_BASE: u32 = 0x009a_0900;
pub(crate) const CID_AUTO_WHITE_BALANCE: u32 = CID_USER_BASE + 12;
pub(crate) const CID_AUTOGAIN: u32 = CID_USER_BASE + 18;
pub(crate) const CID_GAIN: u32 = CID_USER_BASE + 19;
pub(crate) const CID_WHITE_BALANCE_TEMPERATURE: u32 = CID_USER_BASE + 26;
pub(crate) const CID_EXPOSURE_AUTO: u32 = CID_CAMERA_BASE + 1;
pub(crate) const CID_EXPOSURE_ABSOLUTE: u32 = CID_CAMERA_BASE + 2;
pub(crate) const CID_FOCUS_ABSOLUTE: u32 = CID_CAMERA_BASE + 10;
pub(crate) const CID_FOCUS_AUTO: u32 = CID_CAMERA_BASE + 12;
/// `V4L2_EXPOSURE_MANUAL` of the `exposure_auto` menu.
const EXPOSURE_MANUAL: i64 = 1;

impl ControlName {
    pub const ALL: [ControlName; 4] = [
        ControlName::Exposure,
        ControlName::Gain,
        ControlName::WhiteBalance,
        ControlName::Focus,
    ];

    pub fn key(self) -> &'static str {
        match self {
            ControlName::Exposure => "exposure",
            ControlName::Gain => "gain",
            ControlName::WhiteBalance => "white_balance",
            ControlName::Focus => "focus",
        }
    }

    /// The V4L2 control that takes the value (exposure in 100 µs units, white balance in
    /// kelvin, focus and gain in the driver's units).
    pub fn cid(self) -> u32 {
        match self {
            ControlName::Exposure => CID_EXPOSURE_ABSOLUTE,
            ControlName::Gain => CID_GAIN,
            ControlName::WhiteBalance => CID_WHITE_BALANCE_TEMPERATURE,
            ControlName::Focus => CID_FOCUS_ABSOLUTE,
        }
    }

    /// The automatic mode to switch off first, and the value that means "manual".
    pub fn auto_cid(self) -> (u32, i64) {
        match self {
            ControlName::Exposure => (CID_EXPOSURE_AUTO, EXPOSURE_MANUAL),
            ControlName::Gain => (CID_AUTOGAIN, 0),
            ControlName::WhiteBalance => (CID_AUTO_WHITE_BALANCE, 0),
            ControlName::Focus => (CID_FOCUS_AUTO, 0),
        }
    }
}

/// A V4L2 camera as a scenario describes it, checked by `config::check`.
#[derive(Debug, Clone)]
pub struct V4l2Config {
    /// `/dev/videoN` or a stable `/dev/v4l/by-id/...` link.
    pub device: PathBuf,
    pub format: CaptureFormat,
    pub width: u32,
    pub height: u32,
    /// Frame rate to ask the driver for; `None` keeps the driver's.
    pub fps: Option<f64>,
    /// mmap buffers to request (the driver may grant more).
    pub buffers: u32,
    /// Fixed control values, applied in this order after the format.
    pub controls: Vec<(ControlName, i64)>,
    /// How long a poll may wait for a frame before it is reported as a timeout.
    pub timeout: Duration,
}
