//! The seccomp filter that hands the camera thread's device syscalls to the supervisor.

use std::os::fd::{FromRawFd, OwnedFd};

#[cfg(target_arch = "x86_64")]
pub(crate) mod nr {
    pub const ARCH: u32 = 0xC000_003E;
    pub const OPENAT: i64 = libc::SYS_openat;
    pub const OPEN: i64 = libc::SYS_open;
    pub const POLL: i64 = libc::SYS_poll;
    pub const PPOLL: i64 = libc::SYS_ppoll;
    pub const IOCTL: i64 = libc::SYS_ioctl;
}
#[cfg(target_arch = "aarch64")]
pub(crate) mod nr {
    pub const ARCH: u32 = 0xC000_00B7;
    pub const OPENAT: i64 = libc::SYS_openat;
    pub const OPEN: i64 = -1000;
    pub const POLL: i64 = -1001;
    pub const PPOLL: i64 = libc::SYS_ppoll;
    pub const IOCTL: i64 = libc::SYS_ioctl;
}

pub(crate) fn install_filter() -> std::io::Result<OwnedFd> {
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
