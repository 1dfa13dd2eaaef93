//! The emulated device's state and the loop that answers the camera thread's syscalls.

mod ioctl;

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::remote::{read_cstr, read_struct, write_struct};
use crate::seccomp::nr;
use crate::{EmuConfig, EmuReport};

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

pub(crate) struct Supervisor {
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
    pub(crate) fn new(
        cfg: EmuConfig,
        report: Arc<Mutex<EmuReport>>,
        unplug: Arc<AtomicBool>,
    ) -> Self {
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

    pub(crate) fn run(mut self, nfd: &OwnedFd, stop: &AtomicBool) {
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
}
