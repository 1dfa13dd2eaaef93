//! An anomalib export runs unchanged through the anomaly head: scores match Python
//! onnxruntime, verdicts follow the model's own threshold, regions cover the defects.

mod common;

use lineside::frame::{FrameLayout, PixelFormat};
use lineside::heads::AnomalyConfig;
use lineside::pipeline::Worker;
use lineside::scenario;
use lineside::verdict::Verdict;
use serde_json::Value;

#[test]
fn anomalib_patchcore_export_scores_and_regions() {
    let scenario = common::root().join("tests/fixtures/scenarios/anomalib_patchcore.toml");
    let plan = scenario::check(&scenario).unwrap_or_else(|d| panic!("{d:?}"));
    assert!(plan.head_config::<AnomalyConfig>().is_some());
    let samples = common::root().join("models/fixtures/anomalib_patchcore/samples");
    let expected: Value =
        serde_json::from_slice(&std::fs::read(samples.join("expected.json")).unwrap()).unwrap();
    let mut worker = Worker::new(&plan, 1).unwrap();
    for (name, exp) in expected["samples"].as_object().unwrap() {
        let img = image::open(samples.join(name)).unwrap().to_rgb8();
        let layout = FrameLayout::packed(img.width(), img.height(), PixelFormat::Rgb24);
        let mut ins = worker.new_inspection();
        worker.process(img.as_raw(), &layout, &mut ins).unwrap();
        let want = exp["onnxruntime"]["pred_score"]["value"][0]
            .as_f64()
            .unwrap();
        let got = f64::from(ins.score.unwrap());
        assert!(
            (got - want).abs() < 1e-4,
            "{name}: pred_score {got} vs onnxruntime {want}"
        );
        let label = exp["onnxruntime"]["pred_label"]["value"][0]
            .as_bool()
            .unwrap();
        assert_eq!(ins.verdict == Verdict::Ng, label, "{name}");
        if exp["label"] == "defect" {
            assert!(
                !ins.defects.is_empty(),
                "{name}: a defect image yields regions"
            );
            let map_max = exp["onnxruntime"]["anomaly_map"]["max"].as_f64().unwrap();
            let best = ins
                .defects
                .iter()
                .map(|d| f64::from(d.score))
                .fold(0.0, f64::max);
            assert!(
                (best - map_max).abs() < 1e-4,
                "{name}: region max {best} vs map max {map_max}"
            );
            // The strongest region overlaps the ground-truth mask.
            let mask = image::open(samples.join(exp["mask"].as_str().unwrap()))
                .unwrap()
                .to_luma8();
            let d = ins
                .defects
                .iter()
                .max_by(|a, b| a.score.total_cmp(&b.score))
                .unwrap();
            let [x, y, w, h] = d.bbox;
            let hits = (y as u32..(y + h) as u32)
                .flat_map(|yy| (x as u32..(x + w) as u32).map(move |xx| (xx, yy)))
                .filter(|&(xx, yy)| {
                    xx < mask.width() && yy < mask.height() && mask.get_pixel(xx, yy)[0] > 0
                })
                .count();
            assert!(hits > 0, "{name}: region {:?} misses the mask", d.bbox);
        } else {
            assert!(
                ins.defects.is_empty(),
                "{name}: good images have no regions above 0.5"
            );
        }
    }
}
