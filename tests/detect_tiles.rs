//! Tiled detection: a 2x2 mosaic of held-out renders, inspected as overlapping tiles,
//! must give the boxes each render gives on its own (moved to its quadrant) — no object
//! lost at a seam, none counted twice where tiles overlap.

mod common;

use lineside::frame::{FrameLayout, PixelFormat};
use lineside::heads::DetectConfig;
use lineside::patchcore::TileSpec;
use lineside::pipeline::Worker;
use lineside::scenario;
use lineside::verdict::{Defect, Inspection};

fn render(i: usize) -> Vec<u8> {
    let path = common::root().join(format!("tests/fixtures/yolo/render_{i}.png"));
    image::open(&path).unwrap().to_rgb8().into_raw()
}

fn inspect(worker: &mut Worker, rgb: &[u8], w: u32, h: u32) -> Inspection {
    let layout = FrameLayout::packed(w, h, PixelFormat::Rgb24);
    let mut ins = worker.new_inspection();
    worker.process(rgb, &layout, &mut ins).unwrap();
    ins
}

fn iou(a: &Defect, b: &Defect) -> f32 {
    let xyxy = |d: &Defect| {
        [
            d.bbox[0],
            d.bbox[1],
            d.bbox[0] + d.bbox[2],
            d.bbox[1] + d.bbox[3],
        ]
    };
    lineside::heads::detect::iou(&xyxy(a), &xyxy(b))
}

#[test]
fn tiled_mosaic_finds_each_part_once() {
    let root = common::root();
    let plan = scenario::check(&root.join("scenarios/catalogue/10-screw-locking.toml"))
        .unwrap_or_else(|d| panic!("{d:?}"));
    let mut whole = Worker::new(&plan, 1).unwrap();
    let mut tiled_plan = plan.clone();
    let Some(cfg) = tiled_plan.head_config_mut::<DetectConfig>() else {
        panic!("scenario 10 is a detect scenario")
    };
    // 640 px in 320 px tiles with >= 96 px overlap: tiles at 0, 160 and 320 on each axis,
    // so every render is also one whole tile and every seam lies inside another tile.
    cfg.tile = Some(TileSpec {
        width: 320,
        height: 320,
        overlap: 96,
    });
    let mut tiled = Worker::new(&tiled_plan, 1).unwrap();

    let quadrants = [0usize, 1, 2, 0];
    let mut mosaic = vec![0u8; 640 * 640 * 3];
    let mut expected: Vec<Defect> = Vec::new();
    for (q, &r) in quadrants.iter().enumerate() {
        let rgb = render(r);
        let (ox, oy) = ((q % 2) * 320, (q / 2) * 320);
        for y in 0..320 {
            let dst = ((oy + y) * 640 + ox) * 3;
            mosaic[dst..dst + 320 * 3].copy_from_slice(&rgb[y * 320 * 3..(y + 1) * 320 * 3]);
        }
        for d in inspect(&mut whole, &rgb, 320, 320).defects {
            let mut d = d;
            d.bbox[0] += ox as f32;
            d.bbox[1] += oy as f32;
            expected.push(d);
        }
    }
    assert!(expected.len() >= 12, "renders hold several parts each");

    let got = inspect(&mut tiled, &mosaic, 640, 640).defects;
    let mut unmatched: Vec<&Defect> = got.iter().collect();
    // A part touching a seam is seen whole only by a tile that straddles the seam, whose
    // context differs from the render's: its box may move a few pixels.
    let mut worst = 1.0f32;
    for e in &expected {
        let at = unmatched
            .iter()
            .position(|g| g.class == e.class && iou(g, e) >= 0.8)
            .unwrap_or_else(|| panic!("part {e:?} not found once in the tiled mosaic: {got:?}"));
        worst = worst.min(iou(unmatched.remove(at), e));
    }
    assert!(
        unmatched.is_empty(),
        "boxes counted twice or invented at seams: {unmatched:?}"
    );
    eprintln!(
        "tiled mosaic: {} parts, each once; lowest IoU with the untiled box {worst:.3}",
        expected.len()
    );
}
