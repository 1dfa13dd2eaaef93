//! V4L2 cameras: negotiation through the `v4l` crate, frames through an mmap ring whose
//! buffers travel through the pipeline as leases (no copy for uncompressed formats),
//! MJPEG decoded into pooled RGB buffers, and unplug recovery with backoff.
//!
//! Capture waits when the pipeline holds every driver buffer (the camera keeps running and
//! the driver drops frames meanwhile); those drops show up as gaps in the driver's sequence
//! numbers and are reported as [`Next::Lost`], so the pipeline counts each one.

mod config;
mod device;
mod record;
mod ring;

pub use config::{CaptureFormat, ControlName, V4l2Config};
pub use device::{describe, device_nodes, ControlInfo, DeviceInfo, FormatInfo, SizeInfo};
pub use record::{record, record_scenario, RecordError, RecordSummary};

use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::{Next, Probe, Source, SourceError, SourceEvent, SourceKind, SourceKindEntry};
use crate::frame::{BufferPool, Frame, FrameBuf, FrameLayout, FrameMeta, FrameOrigin, PixelFormat};
use device::{Negotiated, Opened};
use ring::{Dequeued, Ring};

/// Cameras are not opened by `validate` (they may be in use): the probe learns nothing.
pub(in crate::source) const KIND: SourceKindEntry = SourceKindEntry {
    kind: SourceKind::V4l2,
    name: "v4l2",
    open: |plan| match &plan.v4l2 {
        Some(cfg) => Ok(Box::new(V4l2Source::open(cfg)?)),
        None => Err(SourceError::Open {
            path: PathBuf::new(),
            reason: "v4l2 source without camera settings (validate the scenario first)".into(),
        }),
    },
    probe: |_| Ok(Probe::default()),
};

#[derive(Debug, thiserror::Error)]
pub enum V4l2Error {
    #[error("{path}: cannot open the camera: {source} (is it plugged in, and may this user open it? `lineside devices` lists what is attached)", path = path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("{path}: {what} failed: {source}", path = path.display())]
    Io {
        path: PathBuf,
        what: &'static str,
        source: io::Error,
    },
    #[error("{path}: not a video capture device (it may be a metadata or output node; try the next /dev/videoN)", path = path.display())]
    NotCapture { path: PathBuf },
    #[error("{path}: the driver does not support streaming I/O, which lineside needs", path = path.display())]
    NoStreaming { path: PathBuf },
    #[error("{path}: the driver refuses {wanted}; it offers {offered}", path = path.display())]
    FormatRefused {
        path: PathBuf,
        wanted: String,
        offered: String,
    },
    #[error("{path}: the driver gives {format} at {}x{} instead of {}x{}; sizes it offers: {offered}", got.0, got.1, wanted.0, wanted.1, path = path.display())]
    SizeRefused {
        path: PathBuf,
        format: String,
        wanted: (u32, u32),
        got: (u32, u32),
        offered: String,
    },
    #[error("{path}: the camera has no `{control}` control; its controls are: {offered}", path = path.display())]
    ControlMissing {
        path: PathBuf,
        control: &'static str,
        offered: String,
    },
    #[error("{path}: `{control}` = {value} is outside the driver's range {min}..={max}", path = path.display())]
    ControlRange {
        path: PathBuf,
        control: &'static str,
        value: i64,
        min: i64,
        max: i64,
    },
    #[error("{path}: cannot set `{control}`: {source}", path = path.display())]
    ControlSet {
        path: PathBuf,
        control: &'static str,
        source: io::Error,
    },
    #[error("{path}: cannot start mmap streaming: {source}", path = path.display())]
    Stream { path: PathBuf, source: io::Error },
}

/// `lineside devices`: describes each path (all `/dev/video*` when none is given).
pub fn list_devices(paths: &[PathBuf]) -> Vec<(PathBuf, Result<DeviceInfo, V4l2Error>)> {
    let paths = if paths.is_empty() {
        device_nodes()
    } else {
        paths.to_vec()
    };
    paths
        .into_iter()
        .map(|p| {
            let r = describe(&p);
            (p, r)
        })
        .collect()
}

/// Counters a camera keeps; `lineside record` and tests read them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureStats {
    pub frames: u64,
    /// Frames the driver dropped (sequence gaps) while lineside held every buffer.
    pub lost: u64,
    /// Corrupt or short frames skipped (undecodable MJPEG, `bytesused` too small, error flag).
    pub corrupt: u64,
    pub timeouts: u64,
    pub disconnects: u64,
    pub reconnects: u64,
}

struct Live {
    ring: Ring,
    format: Negotiated,
    // Dropped after `ring` (field order), so STREAMOFF runs before close.
    _device: Opened,
}

/// A V4L2 camera as a [`Source`].
pub struct V4l2Source {
    cfg: V4l2Config,
    live: Option<Live>,
    /// The format of the first open; a reopen must agree (the pool was sized for it).
    format: Negotiated,
    stats: CaptureStats,
    /// Driver sequence expected next (`None` after (re)opening).
    expected: Option<u32>,
    session: u32,
    backoff: Duration,
    /// A frame held back while its preceding drops are reported.
    pending: Option<Frame>,
    /// Reported for a reopen that failed; the next attempt waits this long.
    retry_at: Option<Instant>,
}

const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

impl V4l2Source {
    /// Opens and configures the camera and starts streaming; fails fast with what the
    /// driver offers when it refuses the scenario's settings.
    pub fn open(cfg: &V4l2Config) -> Result<V4l2Source, V4l2Error> {
        let live = Self::start(cfg)?;
        Ok(V4l2Source {
            cfg: cfg.clone(),
            format: live.format.clone(),
            live: Some(live),
            stats: CaptureStats::default(),
            expected: None,
            session: 0,
            backoff: BACKOFF_MIN,
            pending: None,
            retry_at: None,
        })
    }

    fn start(cfg: &V4l2Config) -> Result<Live, V4l2Error> {
        let opened = device::open(cfg)?;
        let format = opened.format.clone();
        let fd = opened.device.handle().fd();
        let ring = Ring::start(fd, format.mplane, format.planes, cfg.buffers).map_err(|e| {
            V4l2Error::Stream {
                path: cfg.device.clone(),
                source: e,
            }
        })?;
        tracing::info!(
            device = %cfg.device.display(),
            "streaming {} {}x{} (stride {}, {} buffers{}) from {} ({})",
            format.format,
            format.width,
            format.height,
            format.stride,
            ring.buffers(),
            if format.mplane { ", multi-planar" } else { "" },
            opened.caps.card,
            opened.caps.driver
        );
        Ok(Live {
            ring,
            format,
            _device: opened,
        })
    }

    pub fn stats(&self) -> &CaptureStats {
        &self.stats
    }

    /// The driver's buffer count (for sizing what may hold leases).
    pub fn driver_buffers(&self) -> usize {
        self.live.as_ref().map_or(0, |l| l.ring.buffers())
    }

    /// What every frame looks like once it leaves this source.
    pub fn frame_layout(&self) -> FrameLayout {
        let f = &self.format;
        match f.format {
            CaptureFormat::Pixel(p) if f.planes == 1 => FrameLayout {
                width: f.width,
                height: f.height,
                format: p,
                stride: f.stride,
            },
            // NV12M is made contiguous (Y stride kept); MJPEG decodes to packed RGB.
            CaptureFormat::Pixel(p) => FrameLayout {
                width: f.width,
                height: f.height,
                format: p,
                stride: f.stride,
            },
            CaptureFormat::Mjpeg => FrameLayout::packed(f.width, f.height, PixelFormat::Rgb24),
        }
    }

    fn disconnect(&mut self, e: &io::Error) -> Next {
        self.live = None;
        self.expected = None;
        self.stats.disconnects += 1;
        self.backoff = BACKOFF_MIN;
        self.retry_at = Some(Instant::now() + self.backoff);
        tracing::warn!(device = %self.cfg.device.display(), "camera lost ({e}); reopening with backoff");
        Next::Event(SourceEvent::Disconnected(format!(
            "{}: camera lost ({e}); reopening",
            self.cfg.device.display()
        )))
    }

    fn reopen(&mut self) -> Option<Next> {
        if let Some(at) = self.retry_at {
            let now = Instant::now();
            if at > now {
                // Wait in short steps so the pipeline can still see a stop request.
                std::thread::sleep((at - now).min(Duration::from_millis(100)));
                if at > Instant::now() {
                    return Some(Next::Event(SourceEvent::Waiting));
                }
            }
        }
        match Self::start(&self.cfg) {
            Ok(live) if same_geometry(&live.format, &self.format) => {
                self.live = Some(live);
                self.session += 1;
                self.stats.reconnects += 1;
                self.backoff = BACKOFF_MIN;
                self.retry_at = None;
                tracing::warn!(device = %self.cfg.device.display(), "camera reconnected (session {})", self.session);
                Some(Next::Event(SourceEvent::Reconnected(format!(
                    "{}: camera reconnected",
                    self.cfg.device.display()
                ))))
            }
            Ok(live) => {
                let msg = format!(
                    "{}: the reconnected camera delivers {} {}x{} instead of {} {}x{}; not resuming",
                    self.cfg.device.display(),
                    live.format.format,
                    live.format.width,
                    live.format.height,
                    self.format.format,
                    self.format.width,
                    self.format.height
                );
                tracing::error!("{msg}");
                self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                self.retry_at = Some(Instant::now() + self.backoff);
                Some(Next::Event(SourceEvent::Disconnected(msg)))
            }
            Err(e) => {
                tracing::warn!(
                    device = %self.cfg.device.display(),
                    "reopen failed ({e}); next try in {} ms",
                    self.backoff.as_millis()
                );
                self.retry_at = Some(Instant::now() + self.backoff);
                self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                Some(Next::Event(SourceEvent::Waiting))
            }
        }
    }

    /// Turns a dequeued buffer into a frame (or a skip for a corrupt one).
    fn frame(&mut self, d: Dequeued, seq: u64, pool: &BufferPool) -> Next {
        let Some(live) = self.live.as_ref() else {
            return Next::Event(SourceEvent::Waiting);
        };
        let f = &live.format;
        let meta = FrameMeta {
            seq,
            captured: Instant::now(),
            origin: FrameOrigin::Camera {
                sequence: d.sequence,
                session: self.session,
            },
        };
        let layout = self.frame_layout();
        let corrupt = |stats: &mut CaptureStats, reason: String| {
            stats.corrupt += 1;
            tracing::warn!("camera frame {} skipped: {reason}", d.sequence);
            Next::Skipped {
                origin: FrameOrigin::Item(0),
                error: SourceError::Corrupt {
                    sequence: d.sequence,
                    reason,
                },
            }
        };
        if d.error_flag {
            return corrupt(&mut self.stats, "the driver flagged it as damaged".into());
        }
        match f.format {
            CaptureFormat::Pixel(_) if f.planes == 1 => {
                if let Err(e) = layout.check(d.bytesused[0]) {
                    return corrupt(
                        &mut self.stats,
                        format!("bytesused {}: {e}", d.bytesused[0]),
                    );
                }
                self.stats.frames += 1;
                Next::Frame(Frame {
                    meta,
                    layout,
                    buffer: FrameBuf::Leased(d.lease),
                })
            }
            CaptureFormat::Pixel(_) => {
                // NV12M: Y and UV in separate buffers; copied into one pooled frame.
                let y_len = f.stride * f.height as usize;
                let uv_len = f.stride * (f.height as usize).div_ceil(2);
                if d.bytesused[0] < y_len || d.bytesused[1] < uv_len {
                    return corrupt(
                        &mut self.stats,
                        format!(
                            "planes hold {} + {} bytes, need {y_len} + {uv_len}",
                            d.bytesused[0], d.bytesused[1]
                        ),
                    );
                }
                let Some(mut buf) = pool.take() else {
                    return Next::End;
                };
                let out = buf.fill(y_len + uv_len);
                out[..y_len].copy_from_slice(d.plane(0, y_len));
                out[y_len..].copy_from_slice(d.plane(1, uv_len));
                drop(d.lease);
                self.stats.frames += 1;
                Next::Frame(Frame {
                    meta,
                    layout,
                    buffer: buf.into(),
                })
            }
            CaptureFormat::Mjpeg => {
                let Some(mut buf) = pool.take() else {
                    return Next::End;
                };
                let r = decode_mjpeg(d.lease.as_slice(), &layout, buf.fill(layout.frame_len()));
                // The driver buffer goes back at once; the frame lives in the pooled copy.
                drop(d.lease);
                match r {
                    Ok(()) => {
                        self.stats.frames += 1;
                        Next::Frame(Frame {
                            meta,
                            layout,
                            buffer: buf.into(),
                        })
                    }
                    Err(reason) => corrupt(&mut self.stats, reason),
                }
            }
        }
    }
}

fn same_geometry(a: &Negotiated, b: &Negotiated) -> bool {
    (a.format, a.width, a.height, a.stride, a.planes)
        == (b.format, b.width, b.height, b.stride, b.planes)
}

/// Decodes one MJPEG frame into packed RGB of exactly the negotiated size (public for the
/// fuzz targets under `fuzz/`).
pub fn decode_mjpeg(jpeg: &[u8], layout: &FrameLayout, out: &mut [u8]) -> Result<(), String> {
    use zune_core::bytestream::ZCursor;
    use zune_core::colorspace::ColorSpace;
    use zune_core::options::DecoderOptions;
    if jpeg.len() < 4 || jpeg[0] != 0xFF || jpeg[1] != 0xD8 {
        return Err(format!("not a JPEG ({} bytes, no SOI marker)", jpeg.len()));
    }
    // A frame cut short would decode with grey fill: never inspect a partial frame.
    crate::source::jpeg::check_complete(jpeg)?;
    let opts = DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::RGB)
        .set_strict_mode(true)
        .set_max_width(16384)
        .set_max_height(16384);
    let mut dec = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(jpeg), opts);
    dec.decode_headers()
        .map_err(|e| format!("undecodable MJPEG: {e:?}"))?;
    let (w, h) = dec.dimensions().unwrap_or((0, 0));
    if (w as u32, h as u32) != (layout.width, layout.height) {
        return Err(format!(
            "MJPEG frame is {w}x{h}, the stream is {}x{}",
            layout.width, layout.height
        ));
    }
    dec.decode_into(out)
        .map_err(|e| format!("undecodable MJPEG: {e:?}"))
}

impl Source for V4l2Source {
    fn next(&mut self, seq: u64, pool: &BufferPool) -> Next {
        if let Some(mut f) = self.pending.take() {
            f.meta.seq = seq;
            return Next::Frame(f);
        }
        if self.live.is_none() {
            if let Some(n) = self.reopen() {
                return n;
            }
        }
        let timeout = self.cfg.timeout;
        let Some(live) = self.live.as_mut() else {
            return Next::Event(SourceEvent::Waiting);
        };
        if let Err(e) = live.ring.requeue_returned() {
            return self.disconnect(&e);
        }
        if live.ring.queued() == 0 {
            // The pipeline holds every buffer: wait for one to come back.
            match live.ring.wait_for_return(timeout) {
                Ok(true) => {}
                Ok(false) => {
                    return Next::Event(SourceEvent::Starved(format!(
                        "{}: the pipeline has held all {} camera buffers for {} ms",
                        self.cfg.device.display(),
                        live.ring.buffers(),
                        timeout.as_millis()
                    )))
                }
                Err(e) => return self.disconnect(&e),
            }
        }
        let fd = live._device.device.handle().fd();
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Next::Event(SourceEvent::Waiting);
            }
            return self.disconnect(&e);
        }
        if r == 0 {
            self.stats.timeouts += 1;
            tracing::warn!(device = %self.cfg.device.display(), "no frame for {} ms", ms);
            return Next::Event(SourceEvent::Timeout(format!(
                "{}: no frame for {ms} ms (is the camera triggered / streaming?)",
                self.cfg.device.display()
            )));
        }
        let d = match live.ring.dequeue() {
            Ok(Some(d)) => d,
            Ok(None) => {
                if pfd.revents & (libc::POLLERR | libc::POLLHUP) != 0 {
                    // Unplugged drivers report POLLERR and fail the next ioctl with ENODEV.
                    return self.disconnect(&io::Error::from_raw_os_error(libc::ENODEV));
                }
                return Next::Event(SourceEvent::Waiting);
            }
            Err(e) => return self.disconnect(&e),
        };
        let gap = match self.expected {
            Some(x) => d.sequence.wrapping_sub(x),
            None => 0,
        };
        self.expected = Some(d.sequence.wrapping_add(1));
        // A gap this large is a driver restart or wrap, not drops.
        if gap > 0 && gap < 1 << 30 {
            self.stats.lost += u64::from(gap);
            match self.frame(d, seq + u64::from(gap), pool) {
                Next::Frame(f) => self.pending = Some(f),
                other => {
                    // A corrupt frame after drops: report drops now, the skip is not kept.
                    drop(other);
                }
            }
            return Next::Lost {
                count: u64::from(gap),
                origin: FrameOrigin::Camera {
                    sequence: self.expected.unwrap_or(0).wrapping_sub(gap + 1),
                    session: self.session,
                },
            };
        }
        self.frame(d, seq, pool)
    }

    fn item_names(&self) -> Vec<String> {
        vec![self.cfg.device.display().to_string()]
    }

    fn max_frame_bytes(&self) -> usize {
        self.frame_layout().frame_len()
    }

    fn len_hint(&self) -> Option<u64> {
        None
    }

    fn describe(&self) -> String {
        format!("v4l2:{}", self.cfg.device.display())
    }
}
