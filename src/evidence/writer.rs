//! The ordering stage's side ([`Router`]) and the writer thread behind it. The router
//! decides, in sequence order, which parts' evidence is due, names the files and queues
//! them with `try_send`: a full queue drops the evidence (counted), never waits. The
//! writer draws, encodes and writes each image atomically (temp file + rename), then
//! deletes the oldest files beyond the folder's limits.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::SystemTime;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use image::RgbImage;

use crate::heads::{label, HeadPlan};
use crate::pool::Pooled;
use crate::status::ScenarioStatus;
use crate::verdict::{Inspection, Verdict};

use super::overlay::{crop, render, Drawing, Mark};
use super::retention::{Ledger, TEMP_PREFIX};
use super::{Capture, EvidencePlan, Slot};

/// How a part was decided, as the router needs it.
#[derive(Clone, Copy)]
pub enum Decided<'a> {
    Inspected(&'a Inspection),
    /// Could not be inspected; the message says why.
    Failed(&'a str),
    /// Dropped or timed out: no evidence (the frame was never decided).
    Other,
}

/// One image (and its crops) for the writer.
struct Job {
    capture: Option<Pooled<Box<Capture>>>,
    stem: String,
    /// Frame rectangles of the crops, in the record's order.
    crops: Vec<[f32; 4]>,
    drawing: Drawing,
}

/// What the writer needs to know once.
struct Settings {
    dir: PathBuf,
    max_bytes: u64,
    max_age: Option<std::time::Duration>,
    quality: u8,
    file_mode: u32,
}

pub struct Router {
    tx: Option<Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    status: Arc<ScenarioStatus>,
    plan: EvidencePlan,
    /// Prefix of the record's paths: the evidence folder relative to the defect log's.
    prefix: String,
    scenario: String,
    labels: Arc<[String]>,
    head: Box<dyn HeadPlan>,
}

impl Router {
    /// Starts the writer thread for `plan`'s folder. It cannot fail: a folder that cannot
    /// be created shows up as failed writes (counted, one alarm), and inspection goes on.
    pub fn start(
        plan: &EvidencePlan,
        scenario: &str,
        output_dir: &Path,
        labels: Arc<[String]>,
        head: Box<dyn HeadPlan>,
        file_mode: u32,
        status: Arc<ScenarioStatus>,
    ) -> Router {
        status.evidence.enabled.store(true, Ordering::Relaxed);
        let (tx, rx) = crossbeam_channel::bounded::<Job>(plan.queue.max(1));
        let dir = output_dir.join(&plan.dir);
        let settings = Settings {
            dir: dir.clone(),
            max_bytes: plan.max_bytes,
            max_age: plan.max_age,
            quality: plan.jpeg_quality,
            file_mode,
        };
        let writer_status = Arc::clone(&status);
        let thread = std::thread::Builder::new()
            .name(format!("{scenario}-evidence"))
            .spawn(move || write_all(&rx, &settings, &writer_status));
        let thread = match thread {
            Ok(h) => Some(h),
            Err(e) => {
                status.raise(
                    "evidence_write_failed",
                    format!("cannot start the evidence writer: {e}; no evidence is written"),
                );
                None
            }
        };
        let prefix = match dir.strip_prefix(output_dir) {
            Ok(rel) if rel.as_os_str().is_empty() => String::new(),
            Ok(rel) => format!("{}/", rel.to_string_lossy()),
            Err(_) => format!("{}/", dir.to_string_lossy()),
        };
        Router {
            tx: thread.is_some().then_some(tx),
            thread,
            status,
            plan: plan.clone(),
            prefix,
            scenario: scenario.to_owned(),
            labels,
            head,
        }
    }

    /// Decides part `seq`'s evidence and turns `slot` (what the worker captured) into
    /// what the record says: [`Slot::None`], [`Slot::Queued`] or [`Slot::Dropped`].
    pub fn route(&mut self, seq: u64, decided: SystemTime, how: Decided<'_>, slot: &mut Slot) {
        let taken = std::mem::take(slot);
        let verdict = match how {
            Decided::Inspected(ins) if ins.verdict == Verdict::Ok && !self.plan.samples_ok(seq) => {
                return
            }
            Decided::Inspected(ins) => ins.verdict,
            Decided::Failed(_) => Verdict::Error,
            Decided::Other => return,
        };
        let counts = &self.status.evidence;
        let capture = match taken {
            Slot::Captured(c) => Some(c),
            Slot::NoBuffer => {
                counts.dropped_no_buffer.fetch_add(1, Ordering::Relaxed);
                *slot = Slot::Dropped("no free buffer");
                return;
            }
            _ => None,
        };
        let Some(tx) = &self.tx else {
            counts.failed.fetch_add(1, Ordering::Relaxed);
            *slot = Slot::Dropped("writer not running");
            return;
        };
        let stem = format!("{}-{seq:08}-{}", stamp(decided), verdict_word(verdict));
        let (drawing, crops) = self.drawing(seq, verdict, &how);
        let crops = if self.plan.crops { crops } else { Vec::new() };
        let image = format!("{}{stem}.jpg", self.prefix);
        let crop_names = (0..crops.len())
            .map(|i| format!("{}{stem}-d{i}.jpg", self.prefix))
            .collect();
        let job = Job {
            capture,
            stem,
            crops,
            drawing,
        };
        *slot = match tx.try_send(job) {
            Ok(()) => Slot::Queued {
                image,
                crops: crop_names,
            },
            Err(TrySendError::Full(_)) => {
                counts.dropped_queue.fetch_add(1, Ordering::Relaxed);
                Slot::Dropped("queue full")
            }
            Err(TrySendError::Disconnected(_)) => {
                counts.failed.fetch_add(1, Ordering::Relaxed);
                Slot::Dropped("writer not running")
            }
        };
    }

    /// The overlays in words, and the crop rectangles.
    fn drawing(&self, seq: u64, verdict: Verdict, how: &Decided<'_>) -> (Drawing, Vec<[f32; 4]>) {
        let mut d = Drawing {
            verdict,
            title: format!("{}  seq {seq}  {}", verdict_word(verdict), self.scenario),
            ..Drawing::default()
        };
        let mut crops = Vec::new();
        match how {
            Decided::Inspected(ins) => {
                if let Some(s) = ins.score {
                    d.title.push_str(&format!("  score {s:.3}"));
                }
                for f in &ins.failures {
                    let t = self.head.describe(f, &self.labels);
                    // "count screws: at least 3 `screw`: found 1"; a keyed rule once.
                    let rule = if t.rule_name == t.rule_kind {
                        t.rule_name
                    } else {
                        format!("{} {}", t.rule_kind, t.rule_name)
                    };
                    d.lines.push(format!("{rule}: {}", t.detail));
                }
                for def in &ins.defects {
                    let class = def
                        .class
                        .map_or_else(|| "anomaly".to_owned(), |c| label(&self.labels, c));
                    d.boxes.push(Mark {
                        rect: def.bbox,
                        label: format!("{class} {:.2}", def.score),
                        color: def.class.unwrap_or(0),
                    });
                    crops.push(def.bbox);
                }
                for t in &ins.texts {
                    d.quads.push((t.quad, format!("{} {:.2}", t.text, t.score)));
                }
            }
            Decided::Failed(msg) => d.lines.push((*msg).to_owned()),
            Decided::Other => {}
        }
        (d, crops)
    }

    /// Closes the queue and waits for the writer to write what is queued (at most
    /// `queue` images), so the run summary counts them.
    pub fn finish(&mut self) {
        self.tx = None;
        if let Some(h) = self.thread.take() {
            if h.join().is_err() {
                self.status
                    .raise("evidence_write_failed", "the evidence writer panicked");
            }
        }
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        self.finish();
    }
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Ok => "OK",
        Verdict::Ng => "NG",
        Verdict::Error => "ERROR",
        Verdict::Timeout => "TIMEOUT",
    }
}

/// UTC time to the millisecond, sortable: `20261201T050135123Z`.
fn stamp(t: SystemTime) -> String {
    let dt = time::OffsetDateTime::from(t);
    let fmt = time::macros::format_description!(
        "[year][month][day]T[hour][minute][second][subsecond digits:3]Z"
    );
    dt.format(&fmt)
        .unwrap_or_else(|_| String::from("19700101T000000000Z"))
}

/// The writer thread: one job at a time until the router closes the queue.
fn write_all(rx: &Receiver<Job>, s: &Settings, status: &ScenarioStatus) {
    let mut ledger = Ledger::scan(&s.dir);
    let counts = &status.evidence;
    // One alarm per run of failures, not one per image.
    let mut alarmed = false;
    for job in rx.iter() {
        let result = write_job(&job, s, &mut ledger);
        // Return the capture buffer before the slow part (retention).
        drop(job);
        match result {
            Ok(()) => {
                counts.written.fetch_add(1, Ordering::Relaxed);
                alarmed = false;
            }
            Err(e) => {
                counts.failed.fetch_add(1, Ordering::Relaxed);
                if !alarmed {
                    status.raise(
                        "evidence_write_failed",
                        format!(
                            "cannot write evidence images to {}: {e}; inspection goes on without them",
                            s.dir.display()
                        ),
                    );
                    alarmed = true;
                }
            }
        }
        let deleted = ledger.enforce(s.max_bytes, s.max_age, SystemTime::now());
        counts.deleted.fetch_add(deleted, Ordering::Relaxed);
    }
}

fn write_job(job: &Job, s: &Settings, ledger: &mut Ledger) -> Result<(), String> {
    let (plain, img) = render(job.capture.as_deref().map(|c| &**c), &job.drawing);
    let name = format!("{}.jpg", job.stem);
    write_jpeg(&img, &name, s, ledger)?;
    if let Some(plain) = &plain {
        for (i, rect) in job.crops.iter().enumerate() {
            let name = format!("{}-d{i}.jpg", job.stem);
            write_jpeg(&crop(plain, *rect), &name, s, ledger)?;
        }
    } else if !job.crops.is_empty() {
        return Err("the frame's pixels could not be read, so no crops".into());
    }
    Ok(())
}

/// Encodes `img` and writes it as `name` atomically: a reader sees the whole JPEG or none.
fn write_jpeg(img: &RgbImage, name: &str, s: &Settings, ledger: &mut Ledger) -> Result<(), String> {
    let mut bytes = Vec::with_capacity(img.as_raw().len() / 8);
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, s.quality)
        .encode(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| format!("encoding {name}: {e}"))?;
    let tmp = s.dir.join(format!("{TEMP_PREFIX}{name}"));
    let path = s.dir.join(name);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(s.file_mode)
            .open(&tmp)?;
        f.write_all(&bytes)?;
        f.flush()?;
        std::fs::rename(&tmp, &path)
    };
    let mut result = write();
    if matches!(&result, Err(e) if e.kind() == std::io::ErrorKind::NotFound) {
        // The folder is not there (first image, or removed meanwhile): make it, once.
        let _ = std::fs::remove_file(&tmp);
        result = std::fs::create_dir_all(&s.dir).and_then(|()| write());
    }
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("{}: {e}", path.display()));
    }
    ledger.add(name.to_owned(), bytes.len() as u64, SystemTime::now());
    Ok(())
}
