//! Image folder replay: the bytes as a .png, .jpg or .bmp file (chosen by the first byte,
//! so one corpus covers all three) decoded through `ImageFolder`, limits and JPEG
//! completeness checks included.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lineside::source::ImageFolder;

#[path = "../common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let ext = match data.first().map(|b| b % 3) {
        Some(0) => "png",
        Some(1) => "jpg",
        _ => "bmp",
    };
    // The real header follows the selector byte, so seeds are `selector + file`.
    let file = data.get(1..).unwrap_or(&[]);
    let dir = common::scratch("images");
    for old in ["png", "jpg", "bmp"] {
        let _ = std::fs::remove_file(dir.join(format!("f.{old}")));
    }
    let path = dir.join(format!("f.{ext}"));
    std::fs::write(&path, file).expect("write image");
    let _ = lineside::source::header_size(&path);
    if let Ok(mut src) = ImageFolder::open_with(&dir, 1, common::LIMITS) {
        common::drain(&mut src);
    }
});
