//! Model metadata (`ModelInfo::load`): the bytes as an .onnx file opened by ONNX Runtime,
//! then lineside reading inputs, outputs, shapes and `names` metadata from the session.
//! Needs ORT_DYLIB_PATH (scripts/fuzz.sh sets it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lineside::engine::ModelInfo;

#[path = "../common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let path = common::scratch("model").join("m.onnx");
    std::fs::write(&path, data).expect("write model");
    if let Ok(info) = ModelInfo::load(&path) {
        let _ = info.class_names();
        let _ = info.outputs_str();
        for t in info.inputs.iter().chain(&info.outputs) {
            let _ = t.fixed_shape();
        }
    }
    // lineside's own parser of the `names` metadata, on the raw bytes too.
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = lineside::engine::parse_names(s);
    }
});
