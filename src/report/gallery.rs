//! The worst parts as an evidence gallery: each evidence image shrunk to a thumbnail and
//! inlined as a `data:` URI, so the page stays one self-contained file; the thumbnail
//! links to the full image on the box.

use std::fmt::Write;
use std::io::Cursor;
use std::path::Path;

use base64::Engine;
use image::codecs::jpeg::JpegEncoder;

use super::html::esc;
use super::stats::WorstPart;

/// Longest side of a thumbnail, pixels.
const THUMB: u32 = 320;

/// A JPEG thumbnail of the image at `path` as a `data:` URI, or why there is none.
pub fn thumbnail(path: &Path) -> Result<String, String> {
    let img = image::open(path).map_err(|e| e.to_string())?;
    let small = img.thumbnail(THUMB, THUMB).into_rgb8();
    let mut jpeg = Vec::new();
    JpegEncoder::new_with_quality(Cursor::new(&mut jpeg), 80)
        .encode_image(&small)
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "data:image/jpeg;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&jpeg)
    ))
}

/// The gallery of `worst`: a figure per part that has evidence (or says why not).
pub fn gallery(worst: &[WorstPart]) -> String {
    let mut h = String::new();
    for w in worst {
        let caption = format!(
            "seq {} &middot; {} &middot; severity {}<br>{}",
            w.seq,
            esc(&w.verdict),
            w.severity.map_or_else(|| "-".into(), |v| format!("{v:.3}")),
            esc(&w.why)
        );
        let picture = match (&w.evidence, &w.evidence_missing) {
            (Some(path), _) => match thumbnail(path) {
                Ok(uri) => format!(
                    "<a href=\"file://{}\"><img src=\"{uri}\" alt=\"evidence seq {}\"></a>",
                    esc(&path.display().to_string()),
                    w.seq
                ),
                Err(e) => format!(
                    "<div class=noimg>evidence {} cannot be read: {}</div>",
                    esc(&path.display().to_string()),
                    esc(&e)
                ),
            },
            (None, Some(why)) => format!("<div class=noimg>no evidence: {}</div>", esc(why)),
            (None, None) => continue,
        };
        let _ = write!(
            h,
            "<figure class=ev>{picture}<figcaption>{caption}</figcaption></figure>"
        );
    }
    if h.is_empty() {
        return h;
    }
    format!("<h3>Evidence of the worst parts</h3><div class=gallery>{h}</div>")
}
