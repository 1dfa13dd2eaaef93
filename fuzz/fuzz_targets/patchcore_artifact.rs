//! PatchCore artifact (`.lspc`) parsing: magic, version, JSON header, bank bounds and
//! checksum, from bytes.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use lineside::patchcore::Artifact;

fuzz_target!(|data: &[u8]| {
    let _ = Artifact::from_bytes(Path::new("fuzz.lspc"), data);
});
