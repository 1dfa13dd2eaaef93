//! The demo classifier through lineside (preprocess → ONNX Runtime → classify head) against
//! Python onnxruntime on the very tensors lineside fed, and against the photos' true classes.

mod common;

use lineside::frame::BufferPool;
use lineside::frame::PixelBuf;
use lineside::pipeline::Worker;
use lineside::pool::Pool;
use lineside::scenario;
use lineside::source::{ImageFolder, Next, Source};
use serde_json::{json, Value};

/// Softmax (in f64) of the `logits` Python onnxruntime returned for one case.
fn softmax_of(reference: &Value) -> Vec<f64> {
    let logits: Vec<f64> = reference["logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let max = logits.iter().copied().fold(f64::MIN, f64::max);
    let sum: f64 = logits.iter().map(|l| (l - max).exp()).sum();
    logits.iter().map(|l| (l - max).exp() / sum).collect()
}

#[test]
fn demo_classifier_reproduces_python_onnxruntime_and_the_true_classes() {
    let scenario = common::root().join("scenarios/demo.toml");
    let plan = scenario::check(&scenario).unwrap_or_else(|d| panic!("{d:?}"));
    let mut worker = Worker::new(&plan, 1).unwrap();
    let mut source =
        ImageFolder::open(&common::root().join("scenarios/samples/photos"), 1).unwrap();
    let names = source.item_names();
    let pool: BufferPool = Pool::new(1, || PixelBuf::with_capacity(source.max_frame_bytes()));
    let dir = tempfile::tempdir().unwrap();
    let mut cases = Vec::new();
    let mut ours = Vec::new();
    let mut seq = 0;
    while let Next::Frame(frame) = source.next(seq, &pool) {
        let mut ins = worker.new_inspection();
        worker
            .process(frame.bytes(), &frame.layout, &mut ins)
            .unwrap();
        let tensor = dir.path().join(format!("t{seq}.f32"));
        let bytes: Vec<u8> = worker
            .session()
            .input()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        std::fs::write(&tensor, bytes).unwrap();
        cases.push(json!({"tensor": tensor, "shape": [1, 3, 224, 224]}));
        ours.push(ins);
        seq += 1;
    }
    assert_eq!(ours.len(), names.len());
    let cases_path = dir.path().join("cases.json");
    let out_path = dir.path().join("out.json");
    std::fs::write(&cases_path, serde_json::to_vec(&cases).unwrap()).unwrap();
    common::run_python("onnx_ref.py", &[&plan.model.path, &cases_path, &out_path]);
    let reference: Vec<Value> = serde_json::from_slice(&std::fs::read(&out_path).unwrap()).unwrap();

    for ((name, ins), r) in names.iter().zip(&ours).zip(&reference) {
        let probs = softmax_of(r);
        let mut order: Vec<usize> = (0..probs.len()).collect();
        order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
        for (k, c) in ins.classes.iter().enumerate() {
            assert_eq!(c.index, order[k], "{name}: class #{k}");
            let diff = (f64::from(c.score) - probs[c.index]).abs();
            assert!(
                diff < 1e-4,
                "{name}: score of class {} differs by {diff}",
                c.index
            );
        }
        eprintln!(
            "{name}: top-1 {} {:.4}",
            plan.labels[ins.classes[0].index], ins.classes[0].score
        );
    }

    // The same frames through the whole pipeline (capture thread, workers, ordering,
    // defect log) give the same classes and scores as Python onnxruntime.
    let records = common::run_to_log(&plan, &dir.path().join("out"));
    assert_eq!(records.len(), reference.len());
    for (rec, r) in records.iter().zip(&reference) {
        let probs = softmax_of(r);
        for c in rec["classes"].as_array().unwrap() {
            let i = c["index"].as_u64().unwrap() as usize;
            let want = probs[i];
            let got = c["score"].as_f64().unwrap();
            assert!(
                (got - want).abs() < 1e-4,
                "{}: class {i}: log {got} vs onnxruntime {want}",
                rec["item"]
            );
        }
    }

    let top = |file: &str, k: usize| -> Vec<String> {
        let i = names.iter().position(|n| n == file).unwrap();
        ours[i]
            .classes
            .iter()
            .take(k)
            .map(|c| plan.labels[c.index].clone())
            .collect()
    };
    let cats = ["tabby", "tiger cat", "Egyptian cat"];
    assert!(
        cats.contains(&top("chelsea.png", 1)[0].as_str()),
        "{:?}",
        top("chelsea.png", 3)
    );
    assert_eq!(top("coffee.png", 1), ["espresso"]);
    assert!(
        top("rocket.png", 2)
            .iter()
            .any(|c| c == "missile" || c == "projectile"),
        "{:?}",
        top("rocket.png", 5)
    );
}

#[test]
fn onnx_runtime_reads_the_pooled_input_buffer_in_place() {
    let plan = scenario::check(&common::root().join("scenarios/demo.toml")).unwrap();
    let mut worker = Worker::new(&plan, 1).unwrap();
    let pooled = worker.session().pooled_input_ptr();
    // What ONNX Runtime reports as the input tensor's data is our allocation: a view, not
    // a copy. It stays so across runs.
    assert_eq!(worker.session().input_data_ptr(), pooled);
    let rgb = common::photo_rgb("coffee.png", 320, 240);
    let (layout, bytes) =
        common::encode_frame(&rgb, 320, 240, lineside::frame::PixelFormat::Yuyv, 0);
    let mut ins = worker.new_inspection();
    worker.process(&bytes, &layout, &mut ins).unwrap();
    assert_eq!(worker.session().input_data_ptr(), pooled);
    assert_eq!(worker.session().input().as_ptr(), pooled);
    assert_eq!(
        plan.labels[ins.classes[0].index], "espresso",
        "the model saw the frame we wrote in place"
    );
}
