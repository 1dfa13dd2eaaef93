// Shared by the fuzz targets (`#[path]`-included): a scratch folder per process and a
// source drain. Only lineside's own code is under test; set-up failures are the harness's.

use std::path::PathBuf;

use lineside::frame::{BufferPool, FrameLimits, PixelBuf};
use lineside::pool::Pool;
use lineside::source::{Next, Source};

/// A fresh folder under the temp dir for this process and `name`.
#[allow(dead_code)]
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lineside-fuzz-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Sizes small enough that libFuzzer's memory limit is never the finding.
#[allow(dead_code)]
pub const LIMITS: FrameLimits = FrameLimits {
    max_pixels: 4096 * 4096,
    max_bytes: 64 << 20,
};

/// Plays every frame (bounded: a replay must end).
#[allow(dead_code)]
pub fn drain(src: &mut dyn Source) {
    let pool: BufferPool = Pool::new(1, || PixelBuf::with_capacity(src.max_frame_bytes()));
    for seq in 0..64 {
        match src.next(seq, &pool) {
            Next::End => return,
            Next::Frame(f) => drop(f),
            _ => {}
        }
    }
}
