//! Reads and writes of the camera thread's memory: syscall arguments are pointers into it.

pub(crate) fn read_mem(pid: u32, addr: u64, out: &mut [u8]) -> bool {
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

pub(crate) fn read_struct<T: Copy>(pid: u32, addr: u64) -> Option<T> {
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

pub(crate) fn write_struct<T>(pid: u32, addr: u64, v: &T) {
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

pub(crate) fn read_cstr(pid: u32, addr: u64) -> Option<String> {
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
