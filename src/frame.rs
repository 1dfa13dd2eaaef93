//! Frames: pixel formats, frame metadata and pooled pixel buffers.
//!
//! A [`Frame`] is a lease on a buffer. Dropping it returns the buffer to its pool (or, for a
//! camera, hands the slot back to its [`SlotOwner`]), so a frame never owns memory that
//! outlives the work on it and steady state allocates nothing.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::pool::{Pool, Pooled};

/// Pixel layouts a source can deliver. Names follow V4L2 fourccs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PixelFormat {
    /// Packed 4:2:2, Y0 U Y1 V.
    Yuyv,
    /// Packed 4:2:2, U Y0 V Y1.
    Uyvy,
    /// Planar 4:2:0: a Y plane, then one interleaved UV plane at half resolution.
    Nv12,
    /// 8-bit luma only.
    Grey,
    /// Packed 8-bit R, G, B.
    Rgb24,
    /// Packed 8-bit B, G, R.
    Bgr24,
    /// 16-bit little-endian luma only (V4L2 `Y16 `); preprocessing keeps the high byte.
    Y16,
}

impl PixelFormat {
    pub const ALL: [PixelFormat; 7] = [
        PixelFormat::Yuyv,
        PixelFormat::Uyvy,
        PixelFormat::Nv12,
        PixelFormat::Grey,
        PixelFormat::Rgb24,
        PixelFormat::Bgr24,
        PixelFormat::Y16,
    ];

    pub fn fourcc(self) -> &'static str {
        match self {
            PixelFormat::Yuyv => "YUYV",
            PixelFormat::Uyvy => "UYVY",
            PixelFormat::Nv12 => "NV12",
            PixelFormat::Grey => "GREY",
            PixelFormat::Rgb24 => "RGB3",
            PixelFormat::Bgr24 => "BGR3",
            PixelFormat::Y16 => "Y16 ",
        }
    }

    /// The format a V4L2 fourcc names, if lineside reads it without decoding.
    pub fn from_fourcc(code: &[u8; 4]) -> Option<PixelFormat> {
        PixelFormat::ALL
            .into_iter()
            .find(|f| f.fourcc().as_bytes() == code)
    }

    /// Bytes of one row of the first plane without padding.
    pub fn min_stride(self, width: u32) -> usize {
        let w = width as usize;
        match self {
            PixelFormat::Yuyv | PixelFormat::Uyvy | PixelFormat::Y16 => w * 2,
            PixelFormat::Nv12 | PixelFormat::Grey => w,
            PixelFormat::Rgb24 | PixelFormat::Bgr24 => w * 3,
        }
    }

    /// Bytes a whole frame occupies for a given first-plane stride.
    pub fn frame_len(self, stride: usize, height: u32) -> usize {
        let h = height as usize;
        match self {
            // NV12's UV plane has the Y plane's stride and half its rows (rounded up).
            PixelFormat::Nv12 => stride * h + stride * h.div_ceil(2),
            _ => stride * h,
        }
    }

    /// [`frame_len`](Self::frame_len) for sizes read from files: `None` on overflow.
    pub fn checked_frame_len(self, stride: usize, height: u32) -> Option<usize> {
        let h = height as usize;
        let plane = stride.checked_mul(h)?;
        match self {
            PixelFormat::Nv12 => plane.checked_add(stride.checked_mul(h.div_ceil(2))?),
            _ => Some(plane),
        }
    }

    /// Whether the width must be even (4:2:x chroma is shared by pixel pairs).
    pub fn needs_even_width(self) -> bool {
        matches!(
            self,
            PixelFormat::Yuyv | PixelFormat::Uyvy | PixelFormat::Nv12
        )
    }
}

impl fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PixelFormat::Yuyv => "YUYV",
            PixelFormat::Uyvy => "UYVY",
            PixelFormat::Nv12 => "NV12",
            PixelFormat::Grey => "GREY",
            PixelFormat::Rgb24 => "RGB24",
            PixelFormat::Bgr24 => "BGR24",
            PixelFormat::Y16 => "Y16",
        })
    }
}

impl FromStr for PixelFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_uppercase().as_str() {
            "YUYV" | "YUY2" => Ok(PixelFormat::Yuyv),
            "UYVY" => Ok(PixelFormat::Uyvy),
            "NV12" => Ok(PixelFormat::Nv12),
            "GREY" | "GRAY" | "Y8" | "Y800" => Ok(PixelFormat::Grey),
            "RGB24" | "RGB3" | "RGB" => Ok(PixelFormat::Rgb24),
            "BGR24" | "BGR3" | "BGR" => Ok(PixelFormat::Bgr24),
            "Y16" | "Y16 " | "GREY16" => Ok(PixelFormat::Y16),
            other => Err(format!(
                "unknown pixel format `{other}`; expected one of YUYV, UYVY, NV12, GREY, Y16, RGB24, BGR24"
            )),
        }
    }
}

/// Geometry of a frame's pixels in its buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLayout {
    pub width: u32,
    pub height: u32,
    pub format: PixelFormat,
    /// Bytes per row of the first plane, padding included (V4L2 `bytesperline`).
    pub stride: usize,
}

impl FrameLayout {
    pub fn packed(width: u32, height: u32, format: PixelFormat) -> Self {
        FrameLayout {
            width,
            height,
            format,
            stride: format.min_stride(width),
        }
    }

    pub fn frame_len(&self) -> usize {
        self.format.frame_len(self.stride, self.height)
    }

    /// Checks the layout is self-consistent and that `len` bytes hold a whole frame.
    pub fn check(&self, len: usize) -> Result<(), FrameError> {
        if self.width == 0 || self.height == 0 {
            return Err(FrameError::EmptySize);
        }
        if self.format.needs_even_width() && !self.width.is_multiple_of(2) {
            return Err(FrameError::OddWidth {
                format: self.format,
                width: self.width,
            });
        }
        let min = self.format.min_stride(self.width);
        if self.stride < min {
            return Err(FrameError::StrideTooSmall {
                stride: self.stride,
                min,
            });
        }
        // Checked: stride and height may come from a file.
        let need = self
            .format
            .checked_frame_len(self.stride, self.height)
            .ok_or(FrameError::Overflow {
                stride: self.stride,
                height: self.height,
            })?;
        if len < need {
            return Err(FrameError::Truncated { have: len, need });
        }
        Ok(())
    }
}

/// How large a frame a source may produce, checked against sizes read from files (image
/// headers, raw sidecars) before any buffer is sized: a few header bytes must not make the
/// process allocate gigabytes. `[source] max_pixels` and `max_frame_bytes` override it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    /// Pixels per frame (width x height).
    pub max_pixels: u64,
    /// Bytes one frame's buffer may take.
    pub max_bytes: u64,
}

impl FrameLimits {
    /// 100 megapixels; 512 MiB per frame buffer.
    pub const DEFAULT: FrameLimits = FrameLimits {
        max_pixels: 100_000_000,
        max_bytes: 512 << 20,
    };

    /// Checks a `width`x`height` frame of `bytes` bytes (`None`: the size overflowed).
    pub fn check(&self, width: u32, height: u32, bytes: Option<u64>) -> Result<(), LimitError> {
        let pixels = u64::from(width) * u64::from(height);
        if pixels > self.max_pixels {
            return Err(LimitError::Pixels {
                width,
                height,
                max: self.max_pixels,
            });
        }
        match bytes {
            Some(b) if b <= self.max_bytes => Ok(()),
            _ => Err(LimitError::Bytes {
                width,
                height,
                bytes,
                max: self.max_bytes,
            }),
        }
    }
}

impl Default for FrameLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum LimitError {
    #[error(
        "{width}x{height} is more than {max} pixels per frame; if that size is real, raise [source] max_pixels"
    )]
    Pixels { width: u32, height: u32, max: u64 },
    #[error(
        "a {width}x{height} frame needs {} bytes, more than {max}; if that size is real, raise [source] max_frame_bytes",
        bytes.map_or_else(|| "more than 2^64".to_string(), |b| b.to_string())
    )]
    Bytes {
        width: u32,
        height: u32,
        bytes: Option<u64>,
        max: u64,
    },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame has zero width or height")]
    EmptySize,
    #[error("{format} needs an even width, got {width}")]
    OddWidth { format: PixelFormat, width: u32 },
    #[error("stride {stride} bytes is smaller than one row ({min} bytes)")]
    StrideTooSmall { stride: usize, min: usize },
    #[error("frame holds {have} bytes but its size and format need {need}")]
    Truncated { have: usize, need: usize },
    #[error("stride {stride} bytes x {height} rows does not fit in memory")]
    Overflow { stride: usize, height: u32 },
}

/// Where a frame came from and when; travels with the frame into the defect log.
#[derive(Debug, Clone)]
pub struct FrameMeta {
    /// Sequence number assigned by the source, strictly increasing, no gaps.
    pub seq: u64,
    /// When the frame was captured (or read, for replays).
    pub captured: Instant,
    /// Index of the source item (file name index, camera buffer sequence).
    pub origin: FrameOrigin,
}

/// Identifies what a frame is in its source, for the defect log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameOrigin {
    /// Index into the source's item list (file names are resolved once, not per frame).
    Item(usize),
    /// A file named by the frame itself, for sources whose list grows while they run (a
    /// watched folder): the name as the defect log shows it. Cloning shares it.
    File(Arc<str>),
    /// Frame `index` inside a multi-frame raw file.
    RawFrame { file: usize, index: u64 },
    /// A generated frame.
    Synthetic,
    /// A camera frame: the driver's sequence number and how many times the device had
    /// been reopened when it was captured (the driver restarts its count on reopen).
    Camera { sequence: u32, session: u32 },
}

/// A frame: metadata, geometry, and a lease on the bytes.
pub struct Frame {
    pub meta: FrameMeta,
    pub layout: FrameLayout,
    pub buffer: FrameBuf,
}

impl Frame {
    pub fn bytes(&self) -> &[u8] {
        self.buffer.as_slice()
    }
}

/// Where a frame's bytes live. Neither variant allocates per frame: a pooled buffer goes
/// back to its pool, a lease (e.g. a V4L2 mmap slot) goes back to its owner when dropped.
pub enum FrameBuf {
    Pooled(PooledBuf),
    Leased(Lease),
}

impl FrameBuf {
    pub fn as_slice(&self) -> &[u8] {
        match self {
            FrameBuf::Pooled(b) => b.as_slice(),
            FrameBuf::Leased(l) => l.as_slice(),
        }
    }
}

/// Something that lends out numbered buffer slots it owns (a camera driver's mmap ring) and
/// takes each back when the frame reading it is dropped. Defined here so that frames name
/// no camera type; sources implement it.
pub trait SlotOwner: Send + Sync {
    /// Takes `slot` back (a V4L2 ring queues it to the driver again). Called once per
    /// lease, from whichever thread drops it, so it must not block.
    fn release(&self, slot: u32);
}

/// Bytes in a slot lent by a [`SlotOwner`], read in place. Making one is an `Arc` clone,
/// not an allocation; dropping it calls [`SlotOwner::release`].
pub struct Lease {
    owner: Arc<dyn SlotOwner>,
    slot: u32,
    ptr: *const u8,
    len: usize,
}

// SAFETY: the lease only reads its bytes, and `Lease::new`'s contract keeps them valid and
// unwritten until the owner gets the slot back, whichever thread that happens on.
unsafe impl Send for Lease {}
unsafe impl Sync for Lease {}

impl Lease {
    /// Lends `len` bytes at `ptr`, slot `slot` of `owner`.
    ///
    /// # Safety
    /// `ptr..ptr + len` must stay mapped as long as `owner` lives and must not be written
    /// until `owner.release(slot)` has been called.
    pub unsafe fn new(owner: Arc<dyn SlotOwner>, slot: u32, ptr: *const u8, len: usize) -> Self {
        Lease {
            owner,
            slot,
            ptr,
            len,
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: guaranteed by the contract of `Lease::new`; the lease holds `owner`.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// Where the owner's buffer is mapped (for the zero-copy check).
    pub fn mapped_at(&self) -> *const u8 {
        self.ptr
    }

    pub fn slot(&self) -> u32 {
        self.slot
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.owner.release(self.slot);
    }
}

impl From<PooledBuf> for FrameBuf {
    fn from(b: PooledBuf) -> Self {
        FrameBuf::Pooled(b)
    }
}

/// Pixel bytes leased from a pool: the allocation plus how much of it this frame uses.
pub struct PixelBuf {
    data: Vec<u8>,
    len: usize,
}

impl PixelBuf {
    pub fn with_capacity(bytes: usize) -> Self {
        PixelBuf {
            data: vec![0u8; bytes],
            len: 0,
        }
    }

    pub fn from_vec(data: Vec<u8>) -> Self {
        PixelBuf {
            len: data.len(),
            data,
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.data[..self.len]
    }

    /// The writable bytes, grown (once, then reused) to `len`.
    pub fn fill(&mut self, len: usize) -> &mut [u8] {
        if self.data.len() < len {
            self.data.resize(len, 0);
        }
        self.len = len;
        &mut self.data[..len]
    }

    pub fn as_ptr(&self) -> *const u8 {
        self.data.as_ptr()
    }
}

pub type PooledBuf = Pooled<PixelBuf>;
pub type BufferPool = Pool<PixelBuf>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nv12_frame_len_includes_half_height_chroma_plane() {
        assert_eq!(PixelFormat::Nv12.frame_len(640, 480), 640 * 480 * 3 / 2);
        assert_eq!(PixelFormat::Nv12.frame_len(64, 5), 64 * 5 + 64 * 3);
    }

    #[test]
    fn layout_check_names_the_problem() {
        let l = FrameLayout {
            width: 5,
            height: 2,
            format: PixelFormat::Yuyv,
            stride: 10,
        };
        assert!(matches!(l.check(100), Err(FrameError::OddWidth { .. })));
        let l = FrameLayout {
            stride: 4,
            ..FrameLayout::packed(4, 2, PixelFormat::Rgb24)
        };
        assert!(matches!(
            l.check(100),
            Err(FrameError::StrideTooSmall { .. })
        ));
        let l = FrameLayout::packed(4, 2, PixelFormat::Rgb24);
        assert_eq!(
            l.check(10),
            Err(FrameError::Truncated { have: 10, need: 24 })
        );
    }
}
