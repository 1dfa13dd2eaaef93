//! Is a JPEG complete? Decoders fill a scan cut short with grey and report success; a
//! partial frame must never get a verdict, so files and MJPEG frames are checked first.

/// Walks the marker segments from SOI through every scan to EOI; an error says where the
/// data ends. Markers inside entropy-coded data are byte-stuffed (`FF 00`) or restarts
/// (`FF D0`..`FF D7`), so the first other marker after a scan ends it.
pub fn check_complete(data: &[u8]) -> Result<(), String> {
    if data.len() < 4 || data[0] != 0xFF || data[1] != 0xD8 {
        return Err("not a JPEG (no SOI marker)".into());
    }
    let truncated = |what: &str| {
        Err(format!(
            "the JPEG is truncated: {what} ({} bytes; is the file complete?)",
            data.len()
        ))
    };
    let mut i = 2;
    let mut scans = 0;
    loop {
        // Fill bytes (FF FF ...) may precede a marker.
        while data.get(i) == Some(&0xFF) && data.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        let (Some(&0xFF), Some(&marker)) = (data.get(i), data.get(i + 1)) else {
            return truncated(if scans == 0 {
                "it ends before its first scan"
            } else {
                "no end-of-image marker"
            });
        };
        i += 2;
        match marker {
            0xD9 if scans > 0 => return Ok(()),
            0xD9 => return truncated("it ends before its first scan"),
            // Standalone markers without a length.
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let Some(len) = data
            .get(i..i + 2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        else {
            return truncated("a segment header is cut off");
        };
        if len < 2 || i + len > data.len() {
            return truncated("a segment is cut off");
        }
        i += len;
        if marker == 0xDA {
            scans += 1;
            // Skip the entropy-coded data up to the next real marker.
            loop {
                match (data.get(i), data.get(i + 1)) {
                    (Some(0xFF), Some(0x00 | 0xD0..=0xD7)) => i += 2,
                    (Some(0xFF), Some(_)) => break,
                    (Some(_), _) => i += 1,
                    (None, _) => return truncated("a scan is cut off"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_and_cut_jpegs() {
        let mut buf = Vec::new();
        let img =
            image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 4, y as u8 * 5, 90]));
        image::DynamicImage::ImageRgb8(img)
            .write_to(
                &mut std::io::Cursor::new(&mut buf),
                image::ImageFormat::Jpeg,
            )
            .unwrap();
        assert_eq!(check_complete(&buf), Ok(()));
        for cut in [3, 20, buf.len() / 2, buf.len() - 2, buf.len() - 1] {
            assert!(check_complete(&buf[..cut]).is_err(), "cut at {cut}");
        }
    }
}
