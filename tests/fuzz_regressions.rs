//! Inputs found by fuzzing (`scripts/fuzz.sh`, targets under fuzz/) or by reading the code
//! the fuzz targets cover, each named after what it was. They run on stable, without
//! cargo-fuzz.

use std::path::Path;

use lineside::patchcore::Artifact;

const TINY: &str = "fuzz/corpus/patchcore_artifact/seed-tiny";

/// The fuzz seed with its JSON header's `"rows": 2` replaced (the header length adjusted).
fn artifact_with_rows(rows: &str) -> Vec<u8> {
    let bytes = std::fs::read(TINY).unwrap();
    let hlen = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[16..16 + hlen]).unwrap();
    let edited = header.replace("\"rows\": 2", &format!("\"rows\": {rows}"));
    assert_ne!(edited, header);
    let mut out = bytes[..12].to_vec();
    out.extend_from_slice(&(edited.len() as u32).to_le_bytes());
    out.extend_from_slice(edited.as_bytes());
    out.extend_from_slice(&bytes[16 + hlen..]);
    out
}

#[test]
fn the_fuzz_seed_artifact_loads() {
    let a = Artifact::from_bytes(Path::new(TINY), &std::fs::read(TINY).unwrap()).unwrap();
    assert_eq!((a.header.bank.rows, a.header.bank.dim), (2, 4));
}

#[test]
fn patchcore_artifact_bank_size_overflow_is_an_error() {
    // rows x dim x 4 wrapped (a panic with overflow checks, a wrong slice without).
    for rows in ["4611686018427387904", "18446744073709551615"] {
        let e = Artifact::from_bytes(Path::new("x.lspc"), &artifact_with_rows(rows))
            .expect_err(rows)
            .to_string();
        assert!(e.contains("impossibly large"), "{rows}: {e}");
    }
}

#[test]
fn patchcore_artifact_with_an_empty_bank_is_an_error() {
    let e = Artifact::from_bytes(Path::new("x.lspc"), &artifact_with_rows("0"))
        .expect_err("an empty bank scores nothing")
        .to_string();
    assert!(e.contains("rows 0"), "{e}");
}
