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

#![allow(clippy::too_many_lines)]

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use v4l::v4l_sys::*;

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

// --- seccomp plumbing ----------------------------------------------------------------------

#[cfg(target_arch = "x86_64")]
mod nr {
    pub const ARCH: u32 = 0xC000_003E;
    pub const OPENAT: i64 = libc::SYS_openat;
    pub const OPEN: i64 = libc::SYS_open;
    pub const POLL: i64 = libc::SYS_poll;
    pub const PPOLL: i64 = libc::SYS_ppoll;
    pub const IOCTL: i64 = libc::SYS_ioctl;
}
#[cfg(target_arch = "aarch64")]
mod nr {
    pub const ARCH: u32 = 0xC000_00B7;
    pub const OPENAT: i64 = libc::SYS_openat;
    pub const OPEN: i64 = -1000;
    pub const POLL: i64 = -1001;
    pub const PPOLL: i64 = libc::SYS_ppoll;
    pub const IOCTL: i64 = libc::SYS_ioctl;
}

fn install_filter() -> std::io::Result<OwnedFd> {
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const AND_K: u16 = 0x54;
    const RET_K: u16 = 0x06;
    const RET_ALLOW: u32 = 0x7fff_0000;
    let st = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let allow = 11u8;
    let notify = 12u8;
    let prog = [
        st(LD_W_ABS, 0, 0, 4),                                    // 0 arch
        st(JEQ_K, 0, allow - 2, nr::ARCH),                        // 1
        st(LD_W_ABS, 0, 0, 0),                                    // 2 nr
        st(JEQ_K, notify - 4, 0, nr::OPENAT as u32),              // 3
        st(JEQ_K, notify - 5, 0, nr::OPEN as u32),                // 4
        st(JEQ_K, notify - 6, 0, nr::POLL as u32),                // 5
        st(JEQ_K, notify - 7, 0, nr::PPOLL as u32),               // 6
        st(JEQ_K, 0, allow - 8, nr::IOCTL as u32),                // 7
        st(LD_W_ABS, 0, 0, 24),                                   // 8 args[1] low 32 bits
        st(AND_K, 0, 0, 0xff00),                                  // 9 ioctl type
        st(JEQ_K, notify - 11, allow - 11, u32::from(b'V') << 8), // 10
        st(RET_K, 0, 0, RET_ALLOW),                               // 11
        st(RET_K, 0, 0, libc::SECCOMP_RET_USER_NOTIF),            // 12
    ];
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr().cast_mut(),
    };
    // SAFETY: plain syscalls with valid arguments.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut flags =
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
        let mut fd = libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &fprog,
        );
        if fd < 0 {
            // Kernels before 5.19 lack WAIT_KILLABLE_RECV.
            flags = libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
            fd = libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                flags,
                &fprog,
            );
        }
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd as i32))
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
            let fd = match install_filter() {
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

// --- the device ----------------------------------------------------------------------------

struct Buf {
    queued: bool,
}

struct Dev {
    key: (u64, u64),
    memfd: OwnedFd,
    map: *mut u8,
    map_len: usize,
    fmt: usize,
    bufs: Vec<Buf>,
    slot: usize,
    queue: VecDeque<u32>,
    streaming: bool,
    start: Instant,
    next_k: u64,
    dead: bool,
}

impl Dev {
    fn unmap(&mut self) {
        if !self.map.is_null() {
            // SAFETY: our own mapping.
            unsafe { libc::munmap(self.map.cast(), self.map_len) };
            self.map = std::ptr::null_mut();
            self.map_len = 0;
        }
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        self.unmap();
    }
}

struct PendingPoll {
    id: u64,
    pid: u32,
    fds: u64,
    dev: usize,
    deadline: Option<Instant>,
}

struct Supervisor {
    cfg: EmuConfig,
    report: Arc<Mutex<EmuReport>>,
    unplug: Arc<AtomicBool>,
    devs: Vec<Dev>,
    present: bool,
    replug_at: Option<Instant>,
    session: u32,
    delivered_in_session: u32,
    controls: Vec<i64>,
    pending: Vec<PendingPoll>,
}

enum Reply {
    Continue,
    Val(i64),
    Err(i32),
    Sent,
}

const ID_VALID: u64 = libc::SECCOMP_IOCTL_NOTIF_ID_VALID as _;

impl Supervisor {
    fn new(cfg: EmuConfig, report: Arc<Mutex<EmuReport>>, unplug: Arc<AtomicBool>) -> Self {
        let controls = cfg.controls.iter().map(|c| c.default).collect();
        Supervisor {
            cfg,
            report,
            unplug,
            devs: Vec::new(),
            present: true,
            replug_at: None,
            session: 0,
            delivered_in_session: 0,
            controls,
            pending: Vec::new(),
        }
    }

    fn rep(&self, f: impl FnOnce(&mut EmuReport)) {
        if let Ok(mut r) = self.report.lock() {
            f(&mut r);
        }
    }

    fn run(mut self, nfd: &OwnedFd, stop: &AtomicBool) {
        let fd = nfd.as_raw_fd();
        while !stop.load(Ordering::SeqCst) {
            if self.unplug.swap(false, Ordering::SeqCst) {
                self.do_unplug();
            }
            if let Some(at) = self.replug_at {
                if Instant::now() >= at {
                    self.present = true;
                    self.replug_at = None;
                    self.session += 1;
                    self.delivered_in_session = 0;
                }
            }
            self.service_polls(fd);
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let r = unsafe { libc::poll(&mut pfd, 1, 2) };
            if r <= 0 || pfd.revents & libc::POLLIN == 0 {
                if pfd.revents & libc::POLLHUP != 0 {
                    // The filtered thread is gone.
                    std::thread::sleep(Duration::from_millis(2));
                }
                continue;
            }
            // SAFETY: zeroed notification, as the kernel requires.
            let mut n: libc::seccomp_notif = unsafe { std::mem::zeroed() };
            // SAFETY: valid notify fd and struct.
            if unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_RECV as _, &mut n) } != 0 {
                continue;
            }
            let reply = self.handle(fd, &n);
            self.send(fd, n.id, reply);
        }
    }

    fn send(&self, fd: i32, id: u64, reply: Reply) {
        let (val, error, flags) = match reply {
            Reply::Sent => return,
            Reply::Continue => (0, 0, libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32),
            Reply::Val(v) => (v, 0, 0),
            Reply::Err(e) => (0, -e, 0),
        };
        let mut resp = libc::seccomp_notif_resp {
            id,
            val,
            error,
            flags,
        };
        // SAFETY: valid fd and struct; an error means the caller was interrupted.
        unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_SEND as _, &mut resp) };
    }

    fn do_unplug(&mut self) {
        self.present = false;
        for d in &mut self.devs {
            d.dead = true;
            d.streaming = false;
        }
        self.replug_at = Some(Instant::now() + self.cfg.replug_after);
        self.rep(|r| r.unplugs += 1);
    }

    fn handle(&mut self, nfd: i32, n: &libc::seccomp_notif) -> Reply {
        let sys = i64::from(n.data.nr);
        let a = n.data.args;
        if sys == nr::OPENAT || sys == nr::OPEN {
            let (ptr, flags) = if sys == nr::OPENAT {
                (a[1], a[2])
            } else {
                (a[0], a[1])
            };
            let Some(path) = read_cstr(n.pid, ptr) else {
                return Reply::Continue;
            };
            // The path may have been read from a thread that was interrupted meanwhile.
            let mut id = n.id;
            // SAFETY: valid fd and u64.
            if unsafe { libc::ioctl(nfd, ID_VALID as _, &mut id) } != 0 {
                return Reply::Sent;
            }
            if path != self.cfg.path {
                return Reply::Continue;
            }
            return self.open(nfd, n.id, flags);
        }
        if sys == nr::POLL || sys == nr::PPOLL {
            if a[1] != 1 {
                return Reply::Continue;
            }
            let Some(pfd) = read_struct::<libc::pollfd>(n.pid, a[0]) else {
                return Reply::Continue;
            };
            let Some(dev) = self.dev_of(n.pid, pfd.fd) else {
                return Reply::Continue;
            };
            let deadline = if sys == nr::POLL {
                let ms = a[2] as i32;
                (ms >= 0).then(|| Instant::now() + Duration::from_millis(ms as u64))
            } else if a[2] == 0 {
                None
            } else {
                read_struct::<libc::timespec>(n.pid, a[2]).map(|t| {
                    Instant::now()
                        + Duration::new(
                            t.tv_sec.max(0) as u64,
                            t.tv_nsec.clamp(0, 999_999_999) as u32,
                        )
                })
            };
            self.pending.push(PendingPoll {
                id: n.id,
                pid: n.pid,
                fds: a[0],
                dev,
                deadline,
            });
            self.service_polls(nfd);
            return Reply::Sent;
        }
        if sys == nr::IOCTL {
            let Some(dev) = self.dev_of(n.pid, a[0] as i32) else {
                return Reply::Continue;
            };
            return match self.ioctl(dev, n.pid, a[1] as u32, a[2]) {
                Ok(()) => Reply::Val(0),
                Err(e) => Reply::Err(e),
            };
        }
        Reply::Continue
    }

    fn open(&mut self, nfd: i32, id: u64, flags: u64) -> Reply {
        if !self.present {
            return Reply::Err(libc::ENOENT);
        }
        // SAFETY: plain syscall.
        let raw =
            unsafe { libc::memfd_create(c"lineside-emulated-video".as_ptr(), libc::MFD_CLOEXEC) };
        if raw < 0 {
            return Reply::Err(libc::EMFILE);
        }
        // SAFETY: a new fd we own.
        let memfd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: plain struct, valid fd.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        unsafe { libc::fstat(raw, &mut st) };
        let key = (st.st_dev, st.st_ino);
        let mut add = libc::seccomp_notif_addfd {
            id,
            flags: libc::SECCOMP_ADDFD_FLAG_SEND as u32,
            srcfd: raw as u32,
            newfd: 0,
            newfd_flags: if flags & libc::O_CLOEXEC as u64 != 0 {
                libc::O_CLOEXEC as u32
            } else {
                0
            },
        };
        // SAFETY: valid fd and struct; on success the reply (the new fd) is sent.
        let r = unsafe { libc::ioctl(nfd, libc::SECCOMP_IOCTL_NOTIF_ADDFD as _, &mut add) };
        if r < 0 {
            return Reply::Sent;
        }
        self.devs.push(Dev {
            key,
            memfd,
            map: std::ptr::null_mut(),
            map_len: 0,
            fmt: 0,
            bufs: Vec::new(),
            slot: 0,
            queue: VecDeque::new(),
            streaming: false,
            start: Instant::now(),
            next_k: 0,
            dead: false,
        });
        self.rep(|r| r.opens += 1);
        Reply::Sent
    }

    fn dev_of(&self, pid: u32, fd: i32) -> Option<usize> {
        let m = std::fs::metadata(format!("/proc/{pid}/fd/{fd}")).ok()?;
        let key = (m.dev(), m.ino());
        self.devs.iter().rposition(|d| d.key == key)
    }

    fn period(&self) -> Option<Duration> {
        (self.cfg.fps > 0.0).then(|| Duration::from_secs_f64(1.0 / self.cfg.fps))
    }

    fn due(&self, d: &Dev) -> Instant {
        match self.period() {
            Some(p) => d.start + p.mul_f64(d.next_k as f64),
            None => d.start,
        }
    }

    /// Poll readiness: Some(revents) when the poll can be answered now.
    fn ready(&self, dev: usize) -> Option<i16> {
        let d = &self.devs[dev];
        if d.dead {
            return Some(libc::POLLERR | libc::POLLHUP);
        }
        if !d.streaming || d.queue.is_empty() {
            return Some(libc::POLLERR);
        }
        (Instant::now() >= self.due(d)).then_some(libc::POLLIN | libc::POLLRDNORM)
    }

    fn service_polls(&mut self, nfd: i32) {
        let mut i = 0;
        while i < self.pending.len() {
            let p = &self.pending[i];
            let answer = match self.ready(p.dev) {
                Some(ev) => Some((ev, 1)),
                None if p.deadline.is_some_and(|t| Instant::now() >= t) => Some((0, 0)),
                None => None,
            };
            let Some((revents, val)) = answer else {
                i += 1;
                continue;
            };
            let p = self.pending.swap_remove(i);
            if let Some(mut pfd) = read_struct::<libc::pollfd>(p.pid, p.fds) {
                pfd.revents = revents;
                write_struct(p.pid, p.fds, &pfd);
            }
            self.send(nfd, p.id, Reply::Val(val));
        }
    }

    fn ioctl(&mut self, dev: usize, pid: u32, req: u32, arg: u64) -> Result<(), i32> {
        if self.devs[dev].dead {
            return Err(libc::ENODEV);
        }
        let mplane = self.cfg.mplane;
        let buf_type = if mplane { 9 } else { 1 };
        match req & 0xff {
            0 => {
                let mut c: v4l2_capability = read_struct(pid, arg).ok_or(libc::EFAULT)?;
                put(&mut c.driver, "lineside-emu");
                put(&mut c.card, "Emulated Camera");
                put(&mut c.bus_info, "platform:emulated");
                c.version = 6 << 16;
                let caps = if mplane {
                    V4L2_CAP_VIDEO_CAPTURE_MPLANE
                } else {
                    V4L2_CAP_VIDEO_CAPTURE
                } | V4L2_CAP_STREAMING;
                c.device_caps = caps;
                c.capabilities = caps | V4L2_CAP_DEVICE_CAPS;
                write_struct(pid, arg, &c);
            }
            2 => {
                let mut d: v4l2_fmtdesc = read_struct(pid, arg).ok_or(libc::EFAULT)?;
                if d.type_ != buf_type {
                    return Err(libc::EINVAL);
                }
                let mut seen: Vec<[u8; 4]> = Vec::new();
                for f in &self.cfg.formats {
                    if !seen.contains(&f.fourcc) {
                        seen.push(f.fourcc);
                    }
                }
                let code = *seen.get(d.index as usize).ok_or(libc::EINVAL)?;
                d.pixelformat = u32::from_le_bytes(code);
                d.flags = if &code == b"MJPG" {
                    V4L2_FMT_FLAG_COMPRESSED
                } else {
                    0
                };
                put(
                    &mut d.description,
                    &format!("Emulated {}", String::from_utf8_lossy(&code)),
                );
                write_struct(pid, arg, &d);
            }
            4 | 5 | 64 => {
                let mut f: v4l2_format = read_struct(pid, arg).ok_or(libc::EFAULT)?;
                if f.type_ != buf_type {
                    return Err(libc::EINVAL);
                }
                let mut idx = self.devs[dev].fmt;
                if req & 0xff != 4 {
                    // SAFETY: the member for this buffer type.
                    let (code, w, h) = unsafe {
                        if mplane {
                            (
                                f.fmt.pix_mp.pixelformat,
                                f.fmt.pix_mp.width,
                                f.fmt.pix_mp.height,
                            )
                        } else {
                            (f.fmt.pix.pixelformat, f.fmt.pix.width, f.fmt.pix.height)
                        }
                    };
                    let code = code.to_le_bytes();
                    // Like drivers: an unknown fourcc or size is replaced by one offered.
                    idx = self
                        .cfg
                        .formats
                        .iter()
                        .position(|x| x.fourcc == code && x.width == w && x.height == h)
                        .or_else(|| self.cfg.formats.iter().position(|x| x.fourcc == code))
                        .unwrap_or(0);
                    if req & 0xff == 5 {
                        let d = &self.devs[dev];
                        if d.streaming || !d.bufs.is_empty() {
                            return Err(libc::EBUSY);
                        }
                        self.devs[dev].fmt = idx;
                        let x = &self.cfg.formats[idx];
                        let rec = (x.fourcc, x.width, x.height);
                        self.rep(|r| r.formats_set.push(rec));
                    }
                }
                let x = &self.cfg.formats[idx];
                // SAFETY: plain C struct.
                f.fmt = unsafe { std::mem::zeroed() };
                if mplane {
                    // SAFETY: writing the member that matches the buffer type.
                    let p = unsafe { &mut f.fmt.pix_mp };
                    p.width = x.width;
                    p.height = x.height;
                    p.pixelformat = u32::from_le_bytes(x.fourcc);
                    p.field = 1;
                    p.colorspace = 8;
                    p.num_planes = x.plane_sizes.len() as u8;
                    for (i, s) in x.plane_sizes.iter().enumerate() {
                        p.plane_fmt[i].sizeimage = *s;
                        p.plane_fmt[i].bytesperline = x.bytesperline;
                    }
                } else {
                    // SAFETY: as above.
                    let p = unsafe { &mut f.fmt.pix };
                    p.width = x.width;
                    p.height = x.height;
                    p.pixelformat = u32::from_le_bytes(x.fourcc);
                    p.field = 1;
                    p.colorspace = 8;
                    p.bytesperline = x.bytesperline;
                    p.sizeimage = x.plane_sizes.iter().sum();
                }
                write_struct(pid, arg, &f);
            }
            8 => {
                let mut r: v4l2_requestbuffers = read_struct(pid, arg).ok_or(libc::EFAULT)?;
                if r.type_ != buf_type || r.memory != 1 {
                    return Err(libc::EINVAL);
                }
                let d = &mut self.devs[dev];
                if d.streaming {
                    return Err(libc::EBUSY);
                }
                d.unmap();
                d.queue.clear();
                d.bufs.clear();
                let count = r.count.min(16);
                r.count = count;
                if count > 0 {
                    let x = &self.cfg.formats[d.fmt];
                    let planes = x.plane_sizes.len();
                    let largest = x.plane_sizes.iter().copied().max().unwrap_or(0) as usize;
                    let slot = largest.div_ceil(4096) * 4096;
                    let len = slot * planes * count as usize;
                    let fd = d.memfd.as_raw_fd();
                    // SAFETY: our memfd; mapping it shared so the camera thread sees writes.
                    unsafe {
                        if libc::ftruncate(fd, len as libc::off_t) != 0 {
                            return Err(libc::ENOMEM);
                        }
                        let p = libc::mmap(
                            std::ptr::null_mut(),
                            len,
                            libc::PROT_READ | libc::PROT_WRITE,
                            libc::MAP_SHARED,
                            fd,
                            0,
                        );
                        if p == libc::MAP_FAILED {
                            return Err(libc::ENOMEM);
                        }
                        d.map = p.cast();
                    }
                    d.map_len = len;
                    d.slot = slot;
                    d.bufs = (0..count).map(|_| Buf { queued: false }).collect();
                }
                r.capabilities = 1; // V4L2_BUF_CAP_SUPPORTS_MMAP
                write_struct(pid, arg, &r);
            }
            9 | 15 | 17 => return self.buffer_ioctl(dev, pid, req & 0xff, arg),
            18 | 19 => {
                let t: i32 = read_struct(pid, arg).ok_or(libc::EFAULT)?;
                if t as u32 != buf_type {
                    return Err(libc::EINVAL);
                }
                let d = &mut self.devs[dev];
                if req & 0xff == 18 {
                    if d.bufs.is_empty() {
                        return Err(libc::EINVAL);
                    }
                    d.streaming = true;
                    d.start = Instant::now();
                    d.next_k = 0;
                } else {
                    d.streaming = false;
                    d.queue.clear();
                    for b in &mut d.bufs {
                        b.queued = false;
                    }
                }
            }
            21 | 22 => {
                let mut p: v4l2_streamparm = read_struct(pid, arg).ok_or(libc::EFAULT)?;
                if p.type_ != buf_type {
                    return Err(libc::EINVAL);
                }
                // SAFETY: `capture` is the member for capture types.
                unsafe {
                    if req & 0xff == 22 {
                        let t = p.parm.capture.timeperframe;
                        if t.numerator > 0 && t.denominator > 0 {
                            self.cfg.fps = f64::from(t.denominator) / f64::from(t.numerator);
                        }
                    }
                    p.parm.capture.capability = V4L2_CAP_TIMEPERFRAME;
                    let fps = if self.cfg.fps > 0.0 {
                        self.cfg.fps
                    } else {
                        30.0
                    };
                    p.parm.capture.timeperframe.numerator = 1000;
                    p.parm.capture.timeperframe.denominator = (fps * 1000.0).round() as u32;
                }
                write_struct(pid, arg, &p);
            }
            27 | 28 => {
                let mut c: v4l2_control = read_struct(pid, arg).ok_or(libc::EFAULT)?;
                let i = self
                    .cfg
                    .controls
                    .iter()
                    .position(|x| x.id == c.id)
                    .ok_or(libc::EINVAL)?;
                if req & 0xff == 28 {
                    self.set_control(i, i64::from(c.value))?;
                }
                c.value = self.controls[i] as i32;
                write_struct(pid, arg, &c);
            }
            103 => {
                let mut q: v4l2_query_ext_ctrl = read_struct(pid, arg).ok_or(libc::EFAULT)?;
                let flags = V4L2_CTRL_FLAG_NEXT_CTRL | V4L2_CTRL_FLAG_NEXT_COMPOUND;
                let id = q.id & !flags;
                let c = if q.id & flags != 0 {
                    let mut sorted: Vec<&EmuControl> = self.cfg.controls.iter().collect();
                    sorted.sort_by_key(|c| c.id);
                    sorted.into_iter().find(|c| c.id > id)
                } else {
                    self.cfg.controls.iter().find(|c| c.id == id)
                }
                .ok_or(libc::EINVAL)?;
                // SAFETY: plain C struct.
                q = unsafe { std::mem::zeroed() };
                q.id = c.id;
                q.type_ = 1; // V4L2_CTRL_TYPE_INTEGER
                for (dst, b) in q.name.iter_mut().zip(c.name.bytes().take(31)) {
                    *dst = b as _;
                }
                q.minimum = c.min;
                q.maximum = c.max;
                q.step = 1;
                q.default_value = c.default;
                q.elem_size = 4;
                q.elems = 1;
                write_struct(pid, arg, &q);
            }
            71..=73 => {
                let mut e: v4l2_ext_controls = read_struct(pid, arg).ok_or(libc::EFAULT)?;
                for k in 0..e.count {
                    let at = e.controls as u64
                        + u64::from(k) * std::mem::size_of::<v4l2_ext_control>() as u64;
                    let mut c: v4l2_ext_control = read_struct(pid, at).ok_or(libc::EFAULT)?;
                    let Some(i) = self.cfg.controls.iter().position(|x| x.id == c.id) else {
                        e.error_idx = k;
                        write_struct(pid, arg, &e);
                        return Err(libc::EINVAL);
                    };
                    match req & 0xff {
                        71 => {
                            c.__bindgen_anon_1.value64 = self.controls[i];
                            write_struct(pid, at, &c);
                        }
                        // SAFETY: integer controls use the value/value64 member.
                        72 => self.set_control(i, unsafe { c.__bindgen_anon_1.value64 })?,
                        _ => {}
                    }
                }
                write_struct(pid, arg, &e);
            }
            74 => {
                let mut z: v4l2_frmsizeenum = read_struct(pid, arg).ok_or(libc::EFAULT)?;
                let code = z.pixel_format.to_le_bytes();
                let x = self
                    .cfg
                    .formats
                    .iter()
                    .filter(|f| f.fourcc == code)
                    .nth(z.index as usize)
                    .ok_or(libc::EINVAL)?;
                z.type_ = 1;
                z.__bindgen_anon_1.discrete = v4l2_frmsize_discrete {
                    width: x.width,
                    height: x.height,
                };
                write_struct(pid, arg, &z);
            }
            75 => {
                let mut v: v4l2_frmivalenum = read_struct(pid, arg).ok_or(libc::EFAULT)?;
                let code = v.pixel_format.to_le_bytes();
                if v.index != 0
                    || !self
                        .cfg
                        .formats
                        .iter()
                        .any(|f| f.fourcc == code && f.width == v.width && f.height == v.height)
                {
                    return Err(libc::EINVAL);
                }
                let fps = if self.cfg.fps > 0.0 {
                    self.cfg.fps
                } else {
                    30.0
                };
                v.type_ = 1;
                v.__bindgen_anon_1.discrete = v4l2_fract {
                    numerator: 1000,
                    denominator: (fps * 1000.0).round() as u32,
                };
                write_struct(pid, arg, &v);
            }
            _ => return Err(libc::ENOTTY),
        }
        Ok(())
    }

    fn set_control(&mut self, i: usize, v: i64) -> Result<(), i32> {
        let c = &self.cfg.controls[i];
        if v < c.min || v > c.max {
            return Err(libc::ERANGE);
        }
        self.controls[i] = v;
        let id = c.id;
        self.rep(|r| r.controls_set.push((id, v)));
        Ok(())
    }

    fn buffer_ioctl(&mut self, dev: usize, pid: u32, op: u32, arg: u64) -> Result<(), i32> {
        let mplane = self.cfg.mplane;
        let buf_type = if mplane { 9 } else { 1 };
        let mut b: v4l2_buffer = read_struct(pid, arg).ok_or(libc::EFAULT)?;
        if b.type_ != buf_type || b.memory != 1 {
            return Err(libc::EINVAL);
        }
        let fmt = self.cfg.formats[self.devs[dev].fmt].clone();
        let planes = fmt.plane_sizes.len();
        if mplane && (b.length as usize) < planes {
            return Err(libc::EINVAL);
        }
        // SAFETY: `planes` is the member for multi-planar buffers.
        let planes_ptr = if mplane {
            (unsafe { b.m.planes }) as u64
        } else {
            0
        };
        let plane_at = |p: usize| planes_ptr + (p * std::mem::size_of::<v4l2_plane>()) as u64;
        let index = match op {
            17 => {
                let due = self.due(&self.devs[dev]);
                let d = &mut self.devs[dev];
                if !d.streaming {
                    return Err(libc::EINVAL);
                }
                if d.queue.is_empty() || Instant::now() < due {
                    return Err(libc::EAGAIN);
                }
                d.queue.pop_front().unwrap_or(0)
            }
            _ => b.index,
        };
        let d = &self.devs[dev];
        if index as usize >= d.bufs.len() {
            return Err(libc::EINVAL);
        }
        let slot = d.slot;
        let offset = |p: usize| (index as usize * planes + p) * slot;
        let mut bytesused = vec![0u32; planes];
        let mut flags = V4L2_BUF_FLAG_MAPPED;
        match op {
            15 => {
                let period = self.period();
                let d = &mut self.devs[dev];
                if d.bufs[index as usize].queued {
                    return Err(libc::EINVAL);
                }
                if d.streaming && d.queue.is_empty() {
                    // Frames that fell due while no buffer was queued were dropped.
                    if let Some(p) = period {
                        let k_now =
                            (d.start.elapsed().as_secs_f64() / p.as_secs_f64()).floor() as u64;
                        if k_now >= d.next_k {
                            let lost = k_now + 1 - d.next_k;
                            d.next_k = k_now + 1;
                            self.rep(|r| r.dropped_by_driver += lost);
                        }
                    }
                }
                let d = &mut self.devs[dev];
                d.bufs[index as usize].queued = true;
                d.queue.push_back(index);
                flags |= V4L2_BUF_FLAG_QUEUED;
            }
            17 => {
                let d = &mut self.devs[dev];
                d.bufs[index as usize].queued = false;
                let k = d.next_k;
                d.next_k += 1;
                let data = (self.cfg.frame)(k as u32, &fmt);
                let d = &self.devs[dev];
                for (p, used) in bytesused.iter_mut().enumerate() {
                    let src = data.get(p).map(Vec::as_slice).unwrap_or(&[]);
                    let n = src.len().min(fmt.plane_sizes[p] as usize).min(slot);
                    // SAFETY: within our mapping (`offset(p) + n <= map_len`).
                    unsafe {
                        std::ptr::copy_nonoverlapping(src.as_ptr(), d.map.add(offset(p)), n);
                    }
                    *used = n as u32;
                }
                b.sequence = k as u32;
                b.field = 1;
                flags |= V4L2_BUF_FLAG_DONE;
                self.delivered_in_session += 1;
                self.rep(|r| r.delivered += 1);
                if self.session == 0 && self.cfg.unplug_after == Some(self.delivered_in_session) {
                    // Reply to this DQBUF first; every later call sees the unplug.
                    self.unplug.store(true, Ordering::SeqCst);
                }
            }
            _ => {
                if self.devs[dev].bufs[index as usize].queued {
                    flags |= V4L2_BUF_FLAG_QUEUED;
                }
            }
        }
        b.index = index;
        b.flags = flags;
        if mplane {
            b.length = planes as u32;
            for (p, used) in bytesused.iter().enumerate() {
                let mut pl: v4l2_plane = read_struct(pid, plane_at(p)).ok_or(libc::EFAULT)?;
                pl.length = fmt.plane_sizes[p];
                pl.m.mem_offset = offset(p) as u32;
                pl.bytesused = *used;
                write_struct(pid, plane_at(p), &pl);
            }
        } else {
            b.length = fmt.plane_sizes[0];
            b.m.offset = offset(0) as u32;
            b.bytesused = bytesused[0];
        }
        write_struct(pid, arg, &b);
        Ok(())
    }
}

fn put(dst: &mut [u8], s: &str) {
    let n = s.len().min(dst.len() - 1);
    dst[..n].copy_from_slice(&s.as_bytes()[..n]);
    dst[n] = 0;
}

fn read_mem(pid: u32, addr: u64, out: &mut [u8]) -> bool {
    let local = libc::iovec {
        iov_base: out.as_mut_ptr().cast(),
        iov_len: out.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: out.len(),
    };
    // SAFETY: valid iovecs; a bad remote address is an error, not a fault.
    let n = unsafe { libc::process_vm_readv(pid as i32, &local, 1, &remote, 1, 0) };
    n == out.len() as isize
}

fn read_struct<T: Copy>(pid: u32, addr: u64) -> Option<T> {
    let mut v = std::mem::MaybeUninit::<T>::zeroed();
    // SAFETY: the bytes are fully overwritten or the zeroed value (valid for C structs) kept.
    let bytes = unsafe {
        std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<u8>(), std::mem::size_of::<T>())
    };
    if addr == 0 || !read_mem(pid, addr, bytes) {
        return None;
    }
    // SAFETY: T is a plain C struct; any bytes are valid.
    Some(unsafe { v.assume_init() })
}

fn write_struct<T>(pid: u32, addr: u64, v: &T) {
    let local = libc::iovec {
        iov_base: (v as *const T).cast_mut().cast(),
        iov_len: std::mem::size_of::<T>(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: std::mem::size_of::<T>(),
    };
    // SAFETY: valid iovecs.
    unsafe { libc::process_vm_writev(pid as i32, &local, 1, &remote, 1, 0) };
}

fn read_cstr(pid: u32, addr: u64) -> Option<String> {
    let mut buf = [0u8; 256];
    // Read in small steps so a string near the end of a mapping still reads.
    let mut got = 0;
    while got < buf.len() {
        let step = 32.min(buf.len() - got);
        if !read_mem(pid, addr + got as u64, &mut buf[got..got + step]) {
            // Fall back to byte reads at a page edge.
            if !read_mem(pid, addr + got as u64, &mut buf[got..got + 1]) {
                return None;
            }
            if buf[got] == 0 {
                break;
            }
            got += 1;
            continue;
        }
        if buf[got..got + step].contains(&0) {
            break;
        }
        got += step;
    }
    let end = buf.iter().position(|&b| b == 0)?;
    Some(String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// Standard controls of a UVC-like camera.
pub fn uvc_controls() -> Vec<EmuControl> {
    use super::config::*;
    vec![
        EmuControl {
            id: CID_AUTO_WHITE_BALANCE,
            name: "White Balance, Automatic",
            min: 0,
            max: 1,
            default: 1,
        },
        EmuControl {
            id: CID_GAIN,
            name: "Gain",
            min: 0,
            max: 255,
            default: 32,
        },
        EmuControl {
            id: CID_WHITE_BALANCE_TEMPERATURE,
            name: "White Balance Temperature",
            min: 2800,
            max: 6500,
            default: 4600,
        },
        EmuControl {
            id: CID_EXPOSURE_AUTO,
            name: "Auto Exposure",
            min: 0,
            max: 3,
            default: 3,
        },
        EmuControl {
            id: CID_EXPOSURE_ABSOLUTE,
            name: "Exposure Time, Absolute",
            min: 1,
            max: 5000,
            default: 156,
        },
    ]
}
