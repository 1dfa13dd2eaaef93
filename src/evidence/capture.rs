//! The worker's side: copy what an evidence image needs out of the frame and the head
//! into a pooled [`Capture`], without allocating once the buffers have grown to the
//! largest frame, and without ever waiting for one.

use crate::frame::FrameLayout;
use crate::heads::Evidence;
use crate::pool::{Pool, Pooled};
use crate::verdict::Verdict;

use super::EvidencePlan;

/// A frame's pixels and the head's map, copied for the evidence writer. Reused: every
/// vector keeps its capacity from one part to the next.
#[derive(Default)]
pub struct Capture {
    pub seq: u64,
    /// The frame as the source gave it (`layout` says how to read it).
    pub pixels: Vec<u8>,
    pub layout: Option<FrameLayout>,
    /// Anomaly heads: the normalised map.
    pub heat: Vec<f32>,
    /// Segment heads: the class per map pixel.
    pub classes: Vec<u16>,
    pub map_size: (usize, usize),
    /// Frame rectangle the map covers, `[x0, y0, x1, y1]`.
    pub map_box: [f32; 4],
}

/// What became of one part's evidence, carried by its outcome to the sinks.
#[derive(Default)]
pub enum Slot {
    /// No evidence was due (or evidence is off): the record has no `evidence` field.
    #[default]
    None,
    /// Copied by the worker, on its way to the ordering stage (boxed once, at pool
    /// creation, so outcomes stay small).
    Captured(Pooled<Box<Capture>>),
    /// Due, but every capture buffer was in use.
    NoBuffer,
    /// Queued for the writer under these names (relative to the defect log's folder).
    Queued { image: String, crops: Vec<String> },
    /// Due but not queued, with the reason in words.
    Dropped(&'static str),
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Slot::None => write!(f, "None"),
            Slot::Captured(c) => write!(f, "Captured(seq {})", c.seq),
            Slot::NoBuffer => write!(f, "NoBuffer"),
            Slot::Queued { image, crops } => write!(f, "Queued({image}, {crops:?})"),
            Slot::Dropped(why) => write!(f, "Dropped({why})"),
        }
    }
}

/// The workers' tap: decides whether a part's evidence is due and copies it.
#[derive(Clone)]
pub struct Tap {
    pool: Pool<Box<Capture>>,
    plan: EvidencePlan,
}

impl Tap {
    /// Buffers for `queue` images waiting for the writer, one being written, and one in
    /// flight per worker; they grow to the largest frame on first use.
    pub fn new(plan: &EvidencePlan, workers: usize) -> Tap {
        let buffers = plan.queue.saturating_add(workers).saturating_add(2);
        Tap {
            pool: Pool::new(buffers, Box::default),
            plan: plan.clone(),
        }
    }

    /// Whether part `seq` with `verdict` (`None`: it could not be inspected) needs
    /// evidence.
    pub fn due(&self, seq: u64, verdict: Option<Verdict>) -> bool {
        match verdict {
            Some(Verdict::Ok) => self.plan.samples_ok(seq),
            _ => true,
        }
    }

    /// Copies the frame and the head's map into a free buffer; [`Slot::NoBuffer`] when
    /// none is free (never waits).
    pub fn capture(
        &self,
        seq: u64,
        bytes: &[u8],
        layout: &FrameLayout,
        maps: Option<Evidence<'_>>,
    ) -> Slot {
        let Some(mut c) = self.pool.try_take() else {
            return Slot::NoBuffer;
        };
        c.seq = seq;
        c.pixels.clear();
        c.pixels.extend_from_slice(bytes);
        c.layout = Some(*layout);
        c.heat.clear();
        c.classes.clear();
        c.map_size = (0, 0);
        if let Some(m) = maps {
            let n = m.width.saturating_mul(m.height);
            if m.map.len() >= n && n > 0 {
                c.heat.extend_from_slice(&m.map[..n]);
                c.map_size = (m.width, m.height);
            } else if m.classes.len() >= n && n > 0 {
                c.classes.extend_from_slice(&m.classes[..n]);
                c.map_size = (m.width, m.height);
            }
            c.map_box = m.frame_box;
        }
        Slot::Captured(c)
    }
}
