//! PP-OCRv4 (det + rec, as PyPI rapidocr-onnxruntime 1.4.4 ships them) through lineside's
//! ocr head against rapidocr's own Python pipeline, on scikit-image's `text` and `page`
//! photos and on rendered food labels; and the labels' character accuracy against the
//! text they were rendered with.

mod common;

use std::path::{Path, PathBuf};

use lineside::frame::{BufferPool, PixelBuf};
use lineside::pipeline::Worker;
use lineside::pool::Pool;
use lineside::scenario;
use lineside::source::{ImageFolder, Next, Source};
use lineside::verdict::{Inspection, TextLine};
use serde_json::Value;

const DET: &str = "models/pp-ocrv4/ch_PP-OCRv4_det_infer.onnx";
const REC: &str = "models/pp-ocrv4/ch_PP-OCRv4_rec_infer.onnx";

/// A scenario reading `image` with the detector input size rapidocr picks for it.
fn scenario(dir: &Path, image: &Path, size: [u64; 2]) -> PathBuf {
    let root = common::root();
    let text = format!(
        r#"
[scenario]
id = "ocr-parity"

[source]
kind = "images"
path = "{image}"

[model]
path = "{det}"

[preprocess]
size = [{w}, {h}]

[head]
kind = "ocr"
recognizer = "{rec}"
"#,
        image = image.display(),
        det = root.join(DET).display(),
        rec = root.join(REC).display(),
        w = size[0],
        h = size[1],
    );
    let p = dir.join(format!(
        "{}.toml",
        image.file_stem().unwrap().to_string_lossy()
    ));
    std::fs::write(&p, text).unwrap();
    p
}

fn run_ocr(scenario: &Path, image: &Path) -> Inspection {
    let plan = scenario::check(scenario).unwrap_or_else(|d| panic!("{d:?}"));
    let mut worker = Worker::new(&plan, 2).unwrap();
    let mut source = ImageFolder::open(image, 1).unwrap();
    let pool: BufferPool = Pool::new(1, || PixelBuf::with_capacity(source.max_frame_bytes()));
    let Next::Frame(frame) = source.next(0, &pool) else {
        panic!("cannot read {}", image.display());
    };
    let mut ins = worker.new_inspection();
    worker
        .process(frame.bytes(), &frame.layout, &mut ins)
        .unwrap();
    ins
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn joined(lines: impl Iterator<Item = String>) -> String {
    lines
        .collect::<Vec<_>>()
        .join("\n")
        .chars()
        .filter(|c| *c != ' ')
        .collect()
}

#[test]
fn pp_ocrv4_reads_what_rapidocr_reads() {
    let root = common::root();
    let mut images = vec![
        root.join("scenarios/samples/ocr/text.png"),
        root.join("scenarios/samples/ocr/page.png"),
    ];
    let labels_dir = root.join("scenarios/samples/labels");
    let truth_file: Value =
        serde_json::from_slice(&std::fs::read(labels_dir.join("truth.json")).unwrap()).unwrap();
    let truth = &truth_file["images"];
    let mut label_names: Vec<&String> = truth.as_object().unwrap().keys().collect();
    label_names.sort();
    images.extend(label_names.iter().map(|n| labels_dir.join(n)));

    let dir = tempfile::tempdir().unwrap();
    let ref_path = dir.path().join("ocr.json");
    let mut args: Vec<&Path> = vec![&ref_path];
    args.extend(images.iter().map(PathBuf::as_path));
    common::run_python("ocr_ref.py", &args);
    let reference: Vec<Value> = serde_json::from_slice(&std::fs::read(&ref_path).unwrap()).unwrap();

    let (mut chars, mut ours_err, mut theirs_err) = (0usize, 0usize, 0usize);
    let mut max_corner_diff = 0f64;
    let mut max_score_diff = 0f64;
    for (image, r) in images.iter().zip(&reference) {
        let name = image.file_name().unwrap().to_string_lossy().to_string();
        let size = [
            r["det_size"][0].as_u64().unwrap(),
            r["det_size"][1].as_u64().unwrap(),
        ];
        let ins = run_ocr(&scenario(dir.path(), image, size), image);
        let want = r["lines"].as_array().unwrap();
        let got: &[TextLine] = &ins.texts;
        eprintln!("{name}:");
        for l in got {
            eprintln!("  lineside {:?} {:.4} {:?}", l.text, l.score, l.quad);
        }
        for l in want {
            eprintln!("  rapidocr {} {:.4} {}", l["text"], l["score"], l["box"]);
        }
        assert_eq!(got.len(), want.len(), "{name}: number of lines");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.text, w["text"].as_str().unwrap(), "{name}: text");
            for (gp, wp) in g.quad.iter().zip(w["box"].as_array().unwrap()) {
                for k in 0..2 {
                    let d = (f64::from(gp[k]) - wp[k].as_f64().unwrap()).abs();
                    max_corner_diff = max_corner_diff.max(d);
                    assert!(d <= 2.0, "{name}: {:?} corner off by {d}", g.text);
                }
            }
            let ds = (f64::from(g.score) - w["score"].as_f64().unwrap()).abs();
            max_score_diff = max_score_diff.max(ds);
            // Confident lines agree closely; an ambiguous 18x13 crop (text.png's "2") moves
            // by 0.09 because OpenCV's fixed-point resize rounds some pixels one level
            // differently from lineside's.
            let tol = if g.score > 0.9 { 0.01 } else { 0.1 };
            assert!(ds < tol, "{name}: {:?} score off by {ds}", g.text);
        }
        if let Some(lines) = truth.get(&name).map(|t| &t["texts"]) {
            let truth_text = joined(
                lines
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| l.as_str().unwrap().to_string()),
            );
            let ours = joined(got.iter().map(|l| l.text.clone()));
            let theirs = joined(want.iter().map(|l| l["text"].as_str().unwrap().to_string()));
            chars += truth_text.chars().count();
            ours_err += edit_distance(&ours, &truth_text);
            theirs_err += edit_distance(&theirs, &truth_text);
        }
    }
    let acc = |e: usize| 1.0 - e as f64 / chars as f64;
    eprintln!(
        "rendered labels: {} characters (spaces ignored); character accuracy lineside {:.4}, rapidocr {:.4}; \
         max corner difference {max_corner_diff} px, max score difference {max_score_diff:.5}",
        chars,
        acc(ours_err),
        acc(theirs_err)
    );
    assert_eq!(
        ours_err, theirs_err,
        "lineside and rapidocr disagree on the labels"
    );
    assert!(acc(ours_err) > 0.97, "character accuracy {}", acc(ours_err));
}
