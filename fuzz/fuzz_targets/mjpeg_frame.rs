//! One MJPEG frame as a camera delivers it: `<width u16 LE> <height u16 LE> <JPEG>`, the
//! size being what the stream negotiated; completeness check + strict decode into RGB.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lineside::frame::{FrameLayout, PixelFormat};

fuzz_target!(|data: &[u8]| {
    let Some((size, jpeg)) = data.split_first_chunk::<4>() else {
        return;
    };
    let _ = lineside::source::jpeg::check_complete(jpeg);
    // Capped so the output buffer stays small; 0 is a size a stream can claim.
    let w = u32::from(u16::from_le_bytes([size[0], size[1]]) % 2048);
    let h = u32::from(u16::from_le_bytes([size[2], size[3]]) % 2048);
    let layout = FrameLayout::packed(w, h, PixelFormat::Rgb24);
    let mut out = vec![0u8; layout.frame_len()];
    let _ = lineside::source::v4l2::decode_mjpeg(jpeg, &layout, &mut out);
});
