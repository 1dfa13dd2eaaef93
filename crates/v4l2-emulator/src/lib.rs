//! TEST SUPPORT ONLY: an emulated V4L2 capture device for machines without V4L2.
//!
//! A seccomp filter with user notification is installed on one thread (the "camera
//! thread", and whatever it spawns). Its `open`/`openat` of the emulated path get a memfd
//! (`SECCOMP_IOCTL_NOTIF_ADDFD`), its `'V'` ioctls on that memfd are answered here with the
//! real V4L2 structs (`v4l::v4l_sys`), `mmap` of the memfd runs natively (so buffers are real
//! shared memory that this supervisor fills), and `poll`/`ppoll` on it are answered when a
//! frame is due, which paces the stream. The code under test — the unmodified `v4l` crate and
//! lineside's ring — issues the real syscalls. Only threads started after the filter see the
//! device; a whole-binary test would need this supervisor in another process.
//!
//! The device has a frame clock: frame `k` is due at `start + k / fps`; a frame that falls
//! due while no buffer is queued is dropped (its sequence number is skipped), as a driver
//! does. An unplug makes every ioctl on open fds fail with ENODEV and `open` fail with ENOENT
//! until the replug.

//!
//! The files follow the parts: [`run_emulated`] and the types a test sees here, the filter in
//! `seccomp`, the device state and the notification loop in `supervisor` (its V4L2 ioctls
//! in `supervisor/ioctl`), reads and writes of the camera thread's memory in `remote`.

mod controls;
mod remote;
mod seccomp;
mod supervisor;

pub use controls::uvc_controls;

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use supervisor::Supervisor;

/// A function that draws frame `sequence` of a format: one byte vector per plane.
pub type FrameFn = Arc<dyn Fn(u32, &EmuFormat) -> Vec<Vec<u8>> + Send + Sync>;

#[derive(Debug, Clone)]
pub struct EmuFormat {
    pub fourcc: [u8; 4],
    pub width: u32,
    pub height: u32,
    /// Bytes per line of the first plane (0 for compressed formats).
    pub bytesperline: u32,
    /// Size of each plane (one entry for single-planar formats).
    pub plane_sizes: Vec<u32>,
}

impl EmuFormat {
    pub fn new(
        fourcc: &[u8; 4],
        width: u32,
        height: u32,
        bytesperline: u32,
        plane_sizes: &[u32],
    ) -> Self {
        EmuFormat {
            fourcc: *fourcc,
            width,
            height,
            bytesperline,
            plane_sizes: plane_sizes.to_vec(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct EmuControl {
    pub id: u32,
    pub name: &'static str,
    pub min: i64,
    pub max: i64,
    pub default: i64,
}

#[derive(Clone)]
pub struct EmuConfig {
    pub path: String,
    pub formats: Vec<EmuFormat>,
    /// Offer only the multi-planar API (like many SoC capture drivers).
    pub mplane: bool,
    /// Frame clock; 0: a frame is always due.
    pub fps: f64,
    pub controls: Vec<EmuControl>,
    pub frame: FrameFn,
    /// Unplug after delivering this many frames of the first session.
    pub unplug_after: Option<u32>,
    pub replug_after: Duration,
}

/// What the device saw, for assertions.
#[derive(Debug, Default, Clone)]
pub struct EmuReport {
    pub opens: u32,
    pub controls_set: Vec<(u32, i64)>,
    pub delivered: u32,
    pub dropped_by_driver: u64,
    pub unplugs: u32,
    /// Format set by S_FMT (fourcc, width, height).
    pub formats_set: Vec<([u8; 4], u32, u32)>,
}

/// Handed to the code running on the camera thread.
pub struct EmuHandle {
    report: Arc<Mutex<EmuReport>>,
}

impl EmuHandle {
    pub fn report(&self) -> EmuReport {
        self.report.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

/// Runs `f` on a camera thread that sees the emulated device; aborts the process if it
/// has not finished after `watchdog` (a hung supervisor would otherwise hang CI).
pub fn run_emulated<T: Send>(
    cfg: EmuConfig,
    watchdog: Duration,
    f: impl FnOnce(&EmuHandle) -> T + Send,
) -> (T, EmuReport) {
    let report = Arc::new(Mutex::new(EmuReport::default()));
    let unplug = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let (fd_tx, fd_rx) = crossbeam_channel::bounded::<OwnedFd>(1);
    let (done_tx, done_rx) = crossbeam_channel::bounded::<T>(1);
    let handle = EmuHandle {
        report: Arc::clone(&report),
    };
    std::thread::scope(|s| {
        // The supervisor starts first, so it does not inherit the filter.
        let sup = {
            let (report, unplug, stop) =
                (Arc::clone(&report), Arc::clone(&unplug), Arc::clone(&stop));
            s.spawn(move || {
                if let Ok(fd) = fd_rx.recv() {
                    Supervisor::new(cfg, report, unplug).run(&fd, &stop);
                }
            })
        };
        let handle = &handle;
        s.spawn(move || {
            let fd = match seccomp::install_filter() {
                Ok(fd) => fd,
                Err(e) => panic!("cannot install the seccomp filter for the emulated camera: {e}"),
            };
            let _ = fd_tx.send(fd);
            let _ = done_tx.send(f(handle));
        });
        let out = match done_rx.recv_timeout(watchdog) {
            Ok(v) => v,
            Err(_) => {
                eprintln!(
                    "emulated camera: watchdog fired after {watchdog:?}; the camera thread or the supervisor hangs"
                );
                std::process::abort();
            }
        };
        stop.store(true, Ordering::SeqCst);
        let _ = sup.join();
        let r = report.lock().map(|r| r.clone()).unwrap_or_default();
        (out, r)
    })
}
