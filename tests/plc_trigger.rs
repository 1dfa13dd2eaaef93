//! PLC-triggered capture from a live camera: each trigger takes the first frame captured
//! after it, never one already waiting in the ring (it shows the previous part), and each
//! part carries its trigger's part id to the sinks.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use lineside::frame::{BufferPool, FrameOrigin};
use lineside::outcome::{Outcome, OutcomeKind, RunSink, SinkError};
use lineside::pipeline::{self, RunSettings};
use lineside::plc::{Trigger, TriggerMode, TriggerPlan};
use lineside::scenario;
use lineside::source::{Next, Source, Synthetic};

/// A camera whose ring always holds a frame from before the latest trigger: every other
/// frame it delivers was captured a second ago (odd `index`), the others just now.
struct StaleRing {
    inner: Synthetic,
    served: u64,
}

impl Source for StaleRing {
    fn next(&mut self, seq: u64, pool: &BufferPool) -> Next {
        match self.inner.next(seq, pool) {
            Next::Frame(mut f) => {
                let stale = self.served.is_multiple_of(2);
                f.meta.origin = FrameOrigin::RawFrame {
                    file: 0,
                    index: self.served * 2 + u64::from(stale),
                };
                if stale {
                    f.meta.captured = Instant::now() - Duration::from_secs(1);
                }
                self.served += 1;
                Next::Frame(f)
            }
            n => n,
        }
    }
    fn item_names(&self) -> Vec<String> {
        vec!["camera".into()]
    }
    fn max_frame_bytes(&self) -> usize {
        self.inner.max_frame_bytes()
    }
    fn len_hint(&self) -> Option<u64> {
        None
    }
    fn describe(&self) -> String {
        "stale-ring".into()
    }
}

/// (seq, part id, frame index, inspected) of each delivered outcome.
type Seen = (u64, Option<u32>, u64, bool);

struct Collect(Arc<Mutex<Vec<Seen>>>);

impl RunSink for Collect {
    fn deliver(&mut self, o: &Outcome) -> Result<(), SinkError> {
        let index = match o.origin {
            FrameOrigin::RawFrame { index, .. } => index,
            _ => u64::MAX,
        };
        let inspected = matches!(o.result, OutcomeKind::Inspected { .. });
        self.0
            .lock()
            .unwrap()
            .push((o.seq, o.part.and_then(|p| p.id), index, inspected));
        Ok(())
    }
    fn finish(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

#[test]
fn a_triggered_live_camera_takes_the_first_frame_after_each_trigger() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut plan = scenario::check(&root.join("scenarios/demo-synthetic.toml"))
        .unwrap_or_else(|d| panic!("{d:?}"));
    plan.source.width = 320;
    plan.source.height = 240;
    plan.source.fps = 0.0;
    plan.source.live = true;
    plan.trigger = TriggerPlan {
        mode: TriggerMode::Plc,
        ..TriggerPlan::default()
    };
    let (trigger_tx, trigger_rx) = crossbeam_channel::bounded(4);
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (done_tx, done_rx) = mpsc::channel();
    {
        let (stop, seen) = (Arc::clone(&stop), Arc::clone(&seen));
        std::thread::spawn(move || {
            let s = &plan.source;
            let source = StaleRing {
                inner: Synthetic::new(s.width, s.height, s.format, s.pattern, 1_000_000),
                served: 0,
            };
            let settings = RunSettings {
                workers: 1,
                intra_threads: 1,
                stop,
                abort: Arc::new(AtomicBool::new(false)),
                status: lineside::status::ScenarioStatus::new("triggered"),
                triggers: Some(trigger_rx),
                reload: None,
            };
            let r = pipeline::run(&plan, Box::new(source), &settings, &mut Collect(seen));
            done_tx.send(r.is_ok()).ok();
        });
    }
    for i in 0..5u32 {
        trigger_tx
            .send(Trigger {
                part_id: 40 + i,
                counter: i as u16 + 1,
                at: Instant::now(),
                wall: SystemTime::now(),
            })
            .unwrap();
        let until = Instant::now() + Duration::from_secs(30);
        while seen.lock().unwrap().len() <= i as usize {
            assert!(Instant::now() < until, "part {i} not delivered in 30 s");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    // No trigger, no part: a camera running on between triggers adds nothing.
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(
        done_rx.recv_timeout(Duration::from_secs(30)).unwrap(),
        "the run ended cleanly"
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 5, "one part per trigger: {seen:?}");
    for (k, (seq, id, index, inspected)) in seen.iter().enumerate() {
        assert_eq!(*seq, k as u64);
        assert_eq!(*id, Some(40 + k as u32));
        assert_eq!(index % 2, 0, "part {k} came from a stale frame: {seen:?}");
        assert!(*inspected);
    }
}
