//! What each image of a labelled set should give: a `truth.json` in the data folder, or
//! YOLO label files (`<stem>.txt`) beside the images.
//!
//! `truth.json` (all parts optional; documented in `docs/eval.md`):
//!
//! ```json
//! { "images": { "plate_0.png": {
//!     "verdict": "NG",
//!     "objects": [ { "class": "screw", "box": [x, y, w, h] } ],
//!     "texts": [ "BEST BEFORE 2026-04-25" ] } } }
//! ```
//!
//! `frames` is read as `images` and `defects` as `objects`; a box may be `box_xyxy`
//! instead; an object's class is a name (or `name`), or an index into the scenario's
//! labels. A file that maps image names straight to lists of text lines is OCR truth.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::verdict::Verdict;

#[derive(Debug, thiserror::Error)]
pub enum TruthError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: not a truth file lineside reads: {reason}\nFix: see docs/eval.md for the format"
    )]
    Format { path: PathBuf, reason: String },
    #[error(
        "{path}: class {class:?} is not one of the scenario's classes ({known})\n\
         Fix: use the model's class names (lineside models inspect MODEL lists them)"
    )]
    UnknownClass {
        path: PathBuf,
        class: String,
        known: String,
    },
    #[error("{path}:{line}: {reason}\nFix: YOLO labels are `class cx cy w h`, normalised to 0..1")]
    Yolo {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error(
        "{0}: no truth for these images: put a truth.json there (docs/eval.md) or YOLO \
         labels (<image stem>.txt) beside each image"
    )]
    Missing(PathBuf),
}

/// One expected object, in frame pixels.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TruthObject {
    /// Index into the scenario's labels.
    pub class: usize,
    /// x, y, width, height.
    pub bbox: [f64; 4],
}

/// What one image should give; `None` where the truth does not say.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageTruth {
    pub verdict: Option<Verdict>,
    pub objects: Option<Vec<TruthObject>>,
    pub texts: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum TruthFile {
    Images {
        #[serde(alias = "frames")]
        images: BTreeMap<String, RawImage>,
    },
    Lines(BTreeMap<String, Vec<String>>),
}

#[derive(Deserialize)]
struct RawImage {
    verdict: Option<String>,
    #[serde(alias = "defects")]
    objects: Option<Vec<RawObject>>,
    texts: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct RawObject {
    class: Option<ClassRef>,
    name: Option<String>,
    #[serde(rename = "box")]
    xywh: Option<[f64; 4]>,
    box_xyxy: Option<[f64; 4]>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ClassRef {
    Index(usize),
    Name(String),
}

/// Reads `truth.json` from `dir`; `None` when there is none.
pub fn read_truth_json(
    dir: &Path,
    labels: &[String],
) -> Result<Option<BTreeMap<String, ImageTruth>>, TruthError> {
    let path = dir.join("truth.json");
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(TruthError::Read { path, source }),
    };
    let format = |reason: String| TruthError::Format {
        path: path.clone(),
        reason,
    };
    let file: TruthFile = serde_json::from_slice(&bytes).map_err(|e| {
        format(format!(
            "{e} (expected {{\"images\": {{name: {{verdict, objects, texts}}}}}} or {{name: [lines]}})"
        ))
    })?;
    let mut out = BTreeMap::new();
    match file {
        TruthFile::Lines(lines) => {
            for (name, texts) in lines {
                out.insert(
                    name,
                    ImageTruth {
                        texts: Some(texts),
                        ..ImageTruth::default()
                    },
                );
            }
        }
        TruthFile::Images { images } => {
            for (name, raw) in images {
                let verdict =
                    match raw.verdict.as_deref() {
                        None => None,
                        Some(v) => Some(parse_verdict(v).ok_or_else(|| {
                            format(format!("{name}: verdict {v:?} is not OK or NG"))
                        })?),
                    };
                let objects = match raw.objects {
                    None => None,
                    Some(list) => Some(
                        list.into_iter()
                            .map(|o| object(o, labels, &path, &name))
                            .collect::<Result<Vec<_>, _>>()?,
                    ),
                };
                out.insert(
                    name,
                    ImageTruth {
                        verdict,
                        objects,
                        texts: raw.texts,
                    },
                );
            }
        }
    }
    Ok(Some(out))
}

fn parse_verdict(v: &str) -> Option<Verdict> {
    match v.to_ascii_uppercase().as_str() {
        "OK" => Some(Verdict::Ok),
        "NG" => Some(Verdict::Ng),
        _ => None,
    }
}

fn object(
    o: RawObject,
    labels: &[String],
    path: &Path,
    image: &str,
) -> Result<TruthObject, TruthError> {
    let class = match (o.name, o.class) {
        (Some(name), _) | (None, Some(ClassRef::Name(name))) => labels
            .iter()
            .position(|l| *l == name)
            .ok_or_else(|| TruthError::UnknownClass {
                path: path.to_path_buf(),
                class: name,
                known: labels.join(", "),
            })?,
        (None, Some(ClassRef::Index(i))) if i < labels.len() => i,
        (None, Some(ClassRef::Index(i))) => {
            return Err(TruthError::UnknownClass {
                path: path.to_path_buf(),
                class: i.to_string(),
                known: labels.join(", "),
            })
        }
        (None, None) => {
            return Err(TruthError::Format {
                path: path.to_path_buf(),
                reason: format!("{image}: an object without a class"),
            })
        }
    };
    let bbox = match (o.xywh, o.box_xyxy) {
        (Some(b), _) => b,
        (None, Some([x0, y0, x1, y1])) => [x0, y0, x1 - x0, y1 - y0],
        (None, None) => {
            return Err(TruthError::Format {
                path: path.to_path_buf(),
                reason: format!("{image}: an object without `box` or `box_xyxy`"),
            })
        }
    };
    if bbox.iter().any(|v| !v.is_finite()) || bbox[2] < 0.0 || bbox[3] < 0.0 {
        return Err(TruthError::Format {
            path: path.to_path_buf(),
            reason: format!("{image}: box {bbox:?} is not a box"),
        });
    }
    Ok(TruthObject { class, bbox })
}

/// Reads the YOLO label file of `image` (`<stem>.txt` beside it) for a frame of
/// `width` x `height`; `None` when there is none.
pub fn read_yolo(
    image: &Path,
    width: u32,
    height: u32,
    classes: usize,
) -> Result<Option<Vec<TruthObject>>, TruthError> {
    let path = image.with_extension("txt");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(TruthError::Read { path, source }),
    };
    let (w, h) = (f64::from(width), f64::from(height));
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        let bad = |reason: String| TruthError::Yolo {
            path: path.clone(),
            line: i + 1,
            reason,
        };
        let [c, cx, cy, bw, bh] = fields[..] else {
            return Err(bad(format!("{} fields, expected 5", fields.len())));
        };
        let class: usize = c
            .parse()
            .map_err(|_| bad(format!("class {c:?} is not a number")))?;
        if class >= classes {
            return Err(bad(format!(
                "class {class} but the model has {classes} classes"
            )));
        }
        let mut v = [0f64; 4];
        for (slot, f) in v.iter_mut().zip([cx, cy, bw, bh]) {
            *slot = f
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && (0.0..=1.0).contains(x))
                .ok_or_else(|| bad(format!("{f:?} is not a number in 0..1")))?;
        }
        let [cx, cy, bw, bh] = v;
        out.push(TruthObject {
            class,
            bbox: [(cx - bw / 2.0) * w, (cy - bh / 2.0) * h, bw * w, bh * h],
        });
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<String> {
        ["screw", "nut"].map(String::from).to_vec()
    }

    fn write(dir: &Path, text: &str) {
        std::fs::write(dir.join("truth.json"), text).unwrap();
    }

    #[test]
    fn reads_every_documented_form() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            r#"{"frames": {"a.png": {"verdict": "ok", "defects": [
                {"class": 1, "name": "screw", "box": [1, 2, 3, 4]},
                {"class": "nut", "box_xyxy": [10, 10, 15, 20]},
                {"class": 0, "box": [0, 0, 1, 1]}]}}}"#,
        );
        let t = read_truth_json(dir.path(), &labels()).unwrap().unwrap();
        let a = &t["a.png"];
        assert_eq!(a.verdict, Some(Verdict::Ok));
        let objs = a.objects.as_ref().unwrap();
        // `name` wins over an index (that index is the generator's own numbering).
        assert_eq!(objs[0].class, 0);
        assert_eq!(objs[1].bbox, [10.0, 10.0, 5.0, 10.0]);
        assert_eq!(objs[2].class, 0);

        write(dir.path(), r#"{"l.png": ["LOT 1", "NET WT 5 g"]}"#);
        let t = read_truth_json(dir.path(), &labels()).unwrap().unwrap();
        assert_eq!(t["l.png"].texts.as_ref().unwrap().len(), 2);
    }

    #[test]
    fn refuses_what_it_cannot_use_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            r#"{"images": {"a.png": {"objects": [{"class": "bolt", "box": [0,0,1,1]}]}}}"#,
        );
        let e = read_truth_json(dir.path(), &labels())
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"bolt\"") && e.contains("screw, nut"), "{e}");
        write(dir.path(), r#"{"images": {"a.png": {"verdict": "maybe"}}}"#);
        let e = read_truth_json(dir.path(), &labels())
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"maybe\""), "{e}");
        assert!(read_truth_json(&dir.path().join("none"), &labels())
            .unwrap()
            .is_none());
    }

    #[test]
    fn yolo_labels_become_frame_boxes() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("p.png");
        std::fs::write(dir.path().join("p.txt"), "1 0.5 0.25 0.5 0.5\n\n").unwrap();
        let objs = read_yolo(&img, 200, 100, 2).unwrap().unwrap();
        assert_eq!(
            objs,
            vec![TruthObject {
                class: 1,
                bbox: [50.0, 0.0, 100.0, 50.0]
            }]
        );
        std::fs::write(dir.path().join("p.txt"), "0 0.5 0.5 nan 0.1\n").unwrap();
        let e = read_yolo(&img, 200, 100, 2).unwrap_err().to_string();
        assert!(e.contains("p.txt:1"), "{e}");
        std::fs::write(dir.path().join("p.txt"), "7 0.5 0.5 0.1 0.1\n").unwrap();
        assert!(read_yolo(&img, 200, 100, 2).is_err());
    }
}
