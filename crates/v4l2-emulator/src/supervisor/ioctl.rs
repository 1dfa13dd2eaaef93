//! The V4L2 ioctls of the emulated device, answered with the real structs.

// One arm per ioctl, as a driver's switch reads.
#![allow(clippy::too_many_lines)]

use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::time::Instant;

use v4l::v4l_sys::*;

use super::{Buf, Supervisor};
use crate::remote::{read_struct, write_struct};
use crate::EmuControl;

impl Supervisor {
    pub(super) fn ioctl(&mut self, dev: usize, pid: u32, req: u32, arg: u64) -> Result<(), i32> {
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
