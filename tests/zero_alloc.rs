//! Steady state allocates nothing per frame: raw replay → preprocess → ONNX Runtime →
//! head, counted by a global allocator that counts this thread's allocations.
//! (ONNX Runtime's own C++ arena is outside Rust's allocator and reuses its memory.)

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use lineside::config;
use lineside::frame::{PixelBuf, PixelFormat};
use lineside::pipeline::Worker;
use lineside::pool::Pool;
use lineside::source::{Next, RawReplay, Source};

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // `try_with`: the thread-locals may already be gone while a thread exits.
        let _ = COUNTING.try_with(|on| {
            if on.get() {
                let _ = COUNT.try_with(|c| c.set(c.get() + 1));
            }
        });
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = COUNTING.try_with(|on| {
            if on.get() {
                let _ = COUNT.try_with(|c| c.set(c.get() + 1));
            }
        });
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> u64 {
    COUNT.with(|c| c.set(0));
    COUNTING.with(|on| on.set(true));
    f();
    COUNTING.with(|on| on.set(false));
    COUNT.with(|c| c.get())
}

#[test]
fn steady_state_frames_allocate_nothing() {
    // The counter itself works: one Vec is one allocation.
    assert_eq!(
        allocations_during(|| drop(std::hint::black_box(vec![1u8; 10]))),
        1
    );

    let plan = config::check(&common::root().join("scenarios/demo.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (w, h) = (640u32, 480u32);
    let frames: Vec<Vec<u8>> = ["chelsea.png", "coffee.png", "rocket.png", "astronaut.png"]
        .iter()
        .map(|p| common::encode_frame(&common::photo_rgb(p, w, h), w, h, PixelFormat::Yuyv, 32).1)
        .collect();
    let layout =
        common::encode_frame(&vec![0; (w * h * 3) as usize], w, h, PixelFormat::Yuyv, 32).0;
    let raw = dir.path().join("line.yuyv");
    common::write_raw(&raw, &layout, &frames);

    let mut source = RawReplay::open(&raw, 10).unwrap();
    let pool = Pool::new(2, || PixelBuf::with_capacity(source.max_frame_bytes()));
    let mut worker = Worker::new(&plan, 1).unwrap();
    let mut inspection = worker.new_inspection();
    let mut step = |seq: u64| -> Option<usize> {
        let Next::Frame(frame) = source.next(seq, &pool) else {
            return None;
        };
        worker
            .process(frame.bytes(), &frame.layout, &mut inspection)
            .ok()?;
        Some(inspection.classes[0].index)
    };
    // Warm-up: the first frames size scratch buffers and ONNX Runtime's arena.
    for seq in 0..4 {
        assert!(step(seq).is_some());
    }
    let mut top = Vec::with_capacity(64);
    let n = allocations_during(|| {
        for seq in 4..36 {
            match step(seq) {
                Some(c) => top.push(c),
                None => break,
            }
        }
    });
    assert_eq!(top.len(), 32, "every frame was inspected");
    assert_eq!(n, 0, "{n} heap allocations in 32 steady-state frames");
    // And the frames really were inspected: the four photos cycle.
    assert_eq!(top[0..4], top[4..8]);
}
