//! Raw replay: `<sidecar JSON> 0x00 <frame bytes>`: the sidecar parsed and laid out, then
//! the pair replayed through `RawReplay` (sidecar checks, frame slicing, every frame).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lineside::source::{RawReplay, RawSidecar};

#[path = "../common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (sidecar, raw) = (&data[..split], data.get(split + 1..).unwrap_or(&[]));
    if let Ok(text) = std::str::from_utf8(sidecar) {
        if let Ok(s) = RawSidecar::parse(text) {
            let _ = s.layout();
        }
    }
    let dir = common::scratch("raw");
    std::fs::write(dir.join("a.raw"), raw).expect("write raw");
    std::fs::write(dir.join("a.raw.json"), sidecar).expect("write sidecar");
    if let Ok(mut src) = RawReplay::open_with(&dir, 1, common::LIMITS) {
        common::drain(&mut src);
    }
});
