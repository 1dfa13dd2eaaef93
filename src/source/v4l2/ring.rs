//! The mmap capture ring, over `v4l`'s raw ioctl layer.
//!
//! Each dequeued buffer becomes a [`Lease`] that can travel through the pipeline inside a
//! [`Frame`](crate::frame::Frame); the ring's mappings are its [`SlotOwner`]. Dropping the
//! lease hands the buffer index back over a bounded channel; the capture thread queues it
//! to the driver (QBUF) on its next turn, so only the capture thread ever issues ioctls on
//! the device. The mappings live as long as the last lease, so a reconnect (a new ring)
//! never pulls memory from under a frame that is still being inspected. A lease is an
//! `Arc` clone plus an index: no allocation.

use std::io;
use std::os::raw::{c_int, c_void};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use v4l::v4l2;
use v4l::v4l_sys::*;

use crate::frame::{Lease, SlotOwner};

pub(crate) const BUF_TYPE_CAPTURE: u32 = 1;
pub(crate) const BUF_TYPE_CAPTURE_MPLANE: u32 = 9;
const MEMORY_MMAP: u32 = 1;
const MAX_PLANES: usize = 8;

/// One mmap'd plane of one buffer; unmapped when the last lease of its ring drops.
struct Mapping {
    ptr: *mut u8,
    len: usize,
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` came from a successful mmap and nothing refers to them now.
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
        }
    }
}

struct Shared {
    /// `slots[buffer][plane]`.
    slots: Vec<Vec<Mapping>>,
    returns: Sender<u32>,
}

// SAFETY: the mappings are plain memory. The driver writes a buffer only while it is queued,
// and a buffer is queued only after its lease (the one reader) has been dropped.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl SlotOwner for Shared {
    fn release(&self, slot: u32) {
        // The channel holds every index at once, so this never blocks; after a reconnect
        // the old ring's receiver is gone and the index is simply forgotten.
        let _ = self.returns.try_send(slot);
    }
}

/// What DQBUF reported for one buffer.
pub(crate) struct Dequeued {
    pub lease: Lease,
    pub sequence: u32,
    pub error_flag: bool,
    /// `bytesused` of each plane (minus `data_offset`, which lineside does not support).
    pub bytesused: [usize; MAX_PLANES],
    /// The buffer's other planes are read through these (the lease shows plane 0 only).
    shared: Arc<Shared>,
    index: u32,
}

impl Dequeued {
    /// Plane `p`'s bytes (multi-planar formats).
    pub fn plane(&self, p: usize, len: usize) -> &[u8] {
        let m = &self.shared.slots[self.index as usize][p];
        // SAFETY: the mapping lives as long as `shared`; the driver does not write the
        // buffer before `lease` is dropped, which takes `self` apart first.
        unsafe { std::slice::from_raw_parts(m.ptr, len.min(m.len)) }
    }
}

pub(crate) struct Ring {
    fd: c_int,
    buf_type: u32,
    planes: usize,
    shared: Arc<Shared>,
    returns: Receiver<u32>,
    queued: usize,
    streaming: bool,
}

fn ioctl<T>(fd: c_int, req: v4l2::vidioc::_IOC_TYPE, arg: &mut T) -> io::Result<()> {
    // SAFETY: `arg` is the struct `req` is defined for (the callers pair them).
    unsafe { v4l2::ioctl(fd, req, (arg as *mut T).cast::<c_void>()) }
}

impl Ring {
    /// Requests `count` mmap buffers, maps them, queues them all and starts streaming.
    pub fn start(fd: c_int, mplane: bool, planes: usize, count: u32) -> io::Result<Ring> {
        let buf_type = if mplane {
            BUF_TYPE_CAPTURE_MPLANE
        } else {
            BUF_TYPE_CAPTURE
        };
        let planes = planes.clamp(1, MAX_PLANES);
        // SAFETY: plain C struct, all-zero is valid.
        let mut req: v4l2_requestbuffers = unsafe { std::mem::zeroed() };
        req.count = count;
        req.type_ = buf_type;
        req.memory = MEMORY_MMAP;
        ioctl(fd, v4l2::vidioc::VIDIOC_REQBUFS, &mut req)?;
        if req.count == 0 {
            return Err(io::Error::other("the driver granted no mmap buffers"));
        }
        let mut slots = Vec::with_capacity(req.count as usize);
        for index in 0..req.count {
            let (mut buf, mut pl) = Self::blank(buf_type, planes, index);
            if mplane {
                buf.m.planes = pl.as_mut_ptr();
            }
            ioctl(fd, v4l2::vidioc::VIDIOC_QUERYBUF, &mut buf)?;
            let mut maps = Vec::with_capacity(planes);
            for plane in pl.iter().take(planes) {
                // SAFETY: the union member matching the buffer type the driver filled.
                let (len, offset) = unsafe {
                    if mplane {
                        (plane.length as usize, plane.m.mem_offset)
                    } else {
                        (buf.length as usize, buf.m.offset)
                    }
                };
                // SAFETY: mapping a driver buffer as the V4L2 mmap protocol describes.
                let ptr = unsafe {
                    v4l2::mmap(
                        std::ptr::null_mut(),
                        len,
                        libc::PROT_READ | libc::PROT_WRITE,
                        libc::MAP_SHARED,
                        fd,
                        libc::off_t::from(offset),
                    )
                }?;
                if ptr == libc::MAP_FAILED || ptr.is_null() {
                    return Err(io::Error::other(
                        "mmap of a driver buffer returned no memory",
                    ));
                }
                maps.push(Mapping {
                    ptr: ptr.cast(),
                    len,
                });
            }
            slots.push(maps);
        }
        let (tx, rx) = crossbeam_channel::bounded(slots.len());
        let mut ring = Ring {
            fd,
            buf_type,
            planes,
            shared: Arc::new(Shared { slots, returns: tx }),
            returns: rx,
            queued: 0,
            streaming: false,
        };
        for i in 0..req.count {
            ring.queue(i)?;
        }
        let mut t = buf_type as c_int;
        ioctl(fd, v4l2::vidioc::VIDIOC_STREAMON, &mut t)?;
        ring.streaming = true;
        Ok(ring)
    }

    fn blank(buf_type: u32, planes: usize, index: u32) -> (v4l2_buffer, [v4l2_plane; MAX_PLANES]) {
        // SAFETY: plain C structs, all-zero is valid.
        let mut buf: v4l2_buffer = unsafe { std::mem::zeroed() };
        let pl: [v4l2_plane; MAX_PLANES] = unsafe { std::mem::zeroed() };
        buf.index = index;
        buf.type_ = buf_type;
        buf.memory = MEMORY_MMAP;
        if buf_type == BUF_TYPE_CAPTURE_MPLANE {
            buf.length = planes as u32;
        }
        (buf, pl)
    }

    fn queue(&mut self, index: u32) -> io::Result<()> {
        let (mut buf, mut pl) = Self::blank(self.buf_type, self.planes, index);
        if self.buf_type == BUF_TYPE_CAPTURE_MPLANE {
            buf.m.planes = pl.as_mut_ptr();
        }
        ioctl(self.fd, v4l2::vidioc::VIDIOC_QBUF, &mut buf)?;
        self.queued += 1;
        Ok(())
    }

    pub fn buffers(&self) -> usize {
        self.shared.slots.len()
    }

    /// Buffers the driver holds (queued, waiting to be filled).
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// Queues every buffer whose lease has been dropped since the last call.
    pub fn requeue_returned(&mut self) -> io::Result<()> {
        while let Ok(i) = self.returns.try_recv() {
            self.queue(i)?;
        }
        Ok(())
    }

    /// Waits up to `timeout` for one lease to come back, and queues it. False on timeout.
    pub fn wait_for_return(&mut self, timeout: Duration) -> io::Result<bool> {
        match self.returns.recv_timeout(timeout) {
            Ok(i) => {
                self.queue(i)?;
                Ok(true)
            }
            Err(_) => Ok(false),
        }
    }

    /// DQBUF; `None` when no buffer is ready (the device is opened non-blocking).
    pub fn dequeue(&mut self) -> io::Result<Option<Dequeued>> {
        let (mut buf, mut pl) = Self::blank(self.buf_type, self.planes, 0);
        let mplane = self.buf_type == BUF_TYPE_CAPTURE_MPLANE;
        if mplane {
            buf.m.planes = pl.as_mut_ptr();
        }
        match ioctl(self.fd, v4l2::vidioc::VIDIOC_DQBUF, &mut buf) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => return Ok(None),
            Err(e) => return Err(e),
        }
        let index = buf.index;
        if index as usize >= self.shared.slots.len() {
            return Err(io::Error::other(format!(
                "the driver dequeued buffer {index} but only {} exist",
                self.shared.slots.len()
            )));
        }
        self.queued = self.queued.saturating_sub(1);
        let mut bytesused = [0usize; MAX_PLANES];
        let slot = &self.shared.slots[index as usize];
        for (p, used) in bytesused.iter_mut().enumerate().take(self.planes) {
            let n = if mplane {
                pl[p].bytesused as usize
            } else {
                buf.bytesused as usize
            };
            *used = n.min(slot[p].len);
        }
        let owner: Arc<dyn SlotOwner> = Arc::<Shared>::clone(&self.shared);
        // SAFETY: `bytesused[0] <= slot[0].len` (clamped above); the lease holds `owner`, which
        // keeps the mapping; the buffer is not queued again (so not written) until the
        // lease is dropped and `release` hands its index back.
        let lease = unsafe { Lease::new(owner, index, slot[0].ptr, bytesused[0]) };
        Ok(Some(Dequeued {
            lease,
            sequence: buf.sequence,
            error_flag: buf.flags & V4L2_BUF_FLAG_ERROR != 0,
            bytesused,
            shared: Arc::clone(&self.shared),
            index,
        }))
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        if self.streaming {
            // Errors (ENODEV after an unplug) change nothing: the device is going away.
            let mut t = self.buf_type as c_int;
            let _ = ioctl(self.fd, v4l2::vidioc::VIDIOC_STREAMOFF, &mut t);
        }
    }
}
