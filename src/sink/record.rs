//! One defect-log record. Field by field documentation lives in `docs/defect-log.md`;
//! keep the two in step.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::evidence::Slot;
use crate::frame::FrameOrigin;
use crate::heads::{label, FailureText, HeadPlan};
use crate::outcome::{Outcome, OutcomeKind};
use crate::verdict::{Inspection, Verdict};

/// The record layout's version, written in every record as `schema`. Records without
/// the field are version 1 (before `station`, `time_local`, `severity` and failures as
/// `{rule_kind, rule_name, detail}`); `lineside report` reads both.
pub const RECORD_SCHEMA: u32 = 2;

/// What every record of one scenario run shares.
pub struct RecordContext {
    pub scenario: String,
    /// The station file's name, else the host name.
    pub station: String,
    /// Local time in records (`time_local`) is in this zone.
    pub time_zone: jiff::tz::TimeZone,
    /// Unique per run: tells apart the runs appended to one log.
    pub run_id: String,
    pub source: String,
    pub items: Vec<String>,
    pub labels: Arc<[String]>,
    pub model_id: String,
    pub model_sha256: String,
    /// The head, which puts its failed rules into words.
    pub head: Box<dyn HeadPlan>,
}

impl RecordContext {
    fn label(&self, i: usize) -> String {
        label(&self.labels, i)
    }
}

#[derive(Serialize)]
pub struct Record<'a> {
    /// [`RECORD_SCHEMA`].
    pub schema: u32,
    /// UTC time the verdict was decided, RFC 3339 with milliseconds.
    pub time: String,
    /// The same instant in the station's time zone, with its UTC offset.
    pub time_local: String,
    /// The run that wrote the record ([`new_run_id`]).
    pub run_id: &'a str,
    pub station: &'a str,
    pub scenario: &'a str,
    pub source: &'a str,
    /// File the frame came from (replays), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<&'a str>,
    /// Frame index inside a multi-frame raw file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame: Option<u64>,
    pub seq: u64,
    /// The part id the PLC gave with its trigger (`[trigger] mode = "plc"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part_id: Option<u32>,
    /// When the part was triggered, RFC 3339 (triggered scenarios and deadlines).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub triggered: Option<String>,
    pub verdict: Verdict,
    /// The rules that made the part NG, or why it could not be inspected.
    pub failed: Vec<FailedRule>,
    pub score: Option<f32>,
    /// Anomaly heads: the normalised score before it is capped to [0, 1].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score_uncapped: Option<f32>,
    /// How bad the part is, to rank parts within a scenario (higher is worse); null for
    /// ERROR and TIMEOUT ([`severity`]).
    pub severity: Option<f32>,
    pub classes: Vec<LabelledScore>,
    pub defects: Vec<DefectRecord>,
    #[serde(skip_serializing_if = "is_zero")]
    pub defects_not_listed: usize,
    /// OCR heads: the lines read, in reading order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub texts: Vec<TextRecord>,
    /// Measurement heads: every `[[rules.measure]]` value, in rule order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub measurements: Vec<MeasurementRecord>,
    pub model: ModelRef<'a>,
    pub latency_ms: Option<LatencyMs>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
    /// The evidence image and crops queued for this part, or why they were dropped
    /// (`[evidence]`); absent when none was due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<EvidenceRecord<'a>>,
}

/// `{"image": ..., "crops": [...]}` or `{"dropped": "queue full"}`; paths are relative
/// to the defect log's folder (absolute when the evidence folder lies elsewhere).
#[derive(Serialize)]
#[serde(untagged)]
pub enum EvidenceRecord<'a> {
    Files { image: &'a str, crops: &'a [String] },
    Dropped { dropped: &'a str },
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Serialize)]
pub struct FailedRule {
    /// The kind of rule: the scenario key that failed.
    pub rule_kind: &'static str,
    /// Which rule: a named rule's name, else the key.
    pub rule_name: String,
    pub detail: String,
}

impl FailedRule {
    fn keyed(key: &'static str, detail: String) -> Self {
        FailedRule {
            rule_kind: key,
            rule_name: key.to_string(),
            detail,
        }
    }
}

#[derive(Serialize)]
pub struct LabelledScore {
    pub label: String,
    pub index: usize,
    pub score: f32,
}

#[derive(Serialize)]
pub struct DefectRecord {
    pub class: String,
    /// x, y, width, height in frame pixels.
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    pub area_px: f32,
    /// Present when the scenario sets `[rules] mm_per_px`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub area_mm2: Option<f32>,
    pub score: f32,
}

#[derive(Serialize)]
pub struct TextRecord {
    pub text: String,
    pub score: f32,
    /// x, y, width, height in frame pixels.
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    /// Corners (top-left, top-right, bottom-right, bottom-left) in frame pixels.
    pub quad: [[f32; 2]; 4],
}

#[derive(Serialize)]
pub struct MeasurementRecord {
    pub name: String,
    /// In `unit`, to 4 decimals; null when nothing was found to measure.
    pub value: Option<f32>,
    /// "px", "mm", "deg", or for areas "px2", "mm2".
    pub unit: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nominal: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f32>,
    /// Within the limits.
    pub ok: bool,
}

#[derive(Serialize)]
pub struct ModelRef<'a> {
    pub id: &'a str,
    pub sha256: &'a str,
}

#[derive(Serialize)]
pub struct LatencyMs {
    pub preprocess: f64,
    pub infer: f64,
    pub head: f64,
    /// Capture to verdict, queueing included.
    pub total: f64,
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

impl<'a> Record<'a> {
    /// The record for an outcome; dropped frames are counted in the summary, not logged.
    pub fn from_outcome(ctx: &'a RecordContext, o: &'a Outcome) -> Option<Record<'a>> {
        let (item, frame) = match &o.origin {
            FrameOrigin::Item(i) => (ctx.items.get(*i).map(String::as_str), None),
            FrameOrigin::File(name) => (Some(&**name), None),
            FrameOrigin::RawFrame { file, index } => {
                (ctx.items.get(*file).map(String::as_str), Some(*index))
            }
            FrameOrigin::Synthetic => (None, None),
            FrameOrigin::Camera { sequence, .. } => (None, Some(u64::from(*sequence))),
        };
        let mut r = Record {
            schema: RECORD_SCHEMA,
            time: rfc3339(o.decided),
            time_local: local_rfc3339(o.decided, &ctx.time_zone),
            run_id: &ctx.run_id,
            station: &ctx.station,
            scenario: &ctx.scenario,
            source: &ctx.source,
            item,
            frame,
            seq: o.seq,
            part_id: o.part.and_then(|p| p.id),
            triggered: o.part.map(|p| rfc3339(p.triggered_wall)),
            verdict: Verdict::Error,
            failed: Vec::new(),
            score: None,
            score_uncapped: None,
            severity: None,
            classes: Vec::new(),
            defects: Vec::new(),
            defects_not_listed: 0,
            texts: Vec::new(),
            measurements: Vec::new(),
            model: ModelRef {
                id: &ctx.model_id,
                sha256: &ctx.model_sha256,
            },
            latency_ms: None,
            error: None,
            evidence: match &o.evidence {
                Slot::Queued { image, crops } => Some(EvidenceRecord::Files { image, crops }),
                Slot::Dropped(why) => Some(EvidenceRecord::Dropped { dropped: why }),
                _ => None,
            },
        };
        match &o.result {
            OutcomeKind::Dropped => return None,
            OutcomeKind::TimedOut { deadline } => {
                r.verdict = Verdict::Timeout;
                r.failed.push(FailedRule::keyed(
                    "deadline",
                    format!(
                        "no verdict within {} ms of the trigger; treated as a reject",
                        deadline.as_millis()
                    ),
                ));
            }
            OutcomeKind::Failed(msg) => {
                r.error = Some(msg);
                r.failed.push(FailedRule::keyed(
                    "inspection",
                    "the part could not be inspected; treated as a reject".into(),
                ));
            }
            OutcomeKind::Inspected {
                inspection: ins,
                times,
                latency,
            } => {
                r.verdict = ins.verdict;
                r.score = ins.score;
                r.score_uncapped = ins.score_uncapped;
                let texts: Vec<FailureText> = ins
                    .failures
                    .iter()
                    .map(|f| ctx.head.describe(f, &ctx.labels))
                    .collect();
                r.severity = Some(severity(ins, &texts));
                r.failed = texts
                    .into_iter()
                    .map(|t| FailedRule {
                        rule_kind: t.rule_kind,
                        rule_name: t.rule_name,
                        detail: t.detail,
                    })
                    .collect();
                r.classes = ins
                    .classes
                    .iter()
                    .map(|c| LabelledScore {
                        label: ctx.label(c.index),
                        index: c.index,
                        score: c.score,
                    })
                    .collect();
                r.defects = ins
                    .defects
                    .iter()
                    .map(|d| DefectRecord {
                        class: d
                            .class
                            .map_or_else(|| "anomaly".to_string(), |c| ctx.label(c)),
                        bbox: d.bbox.map(|v| (v * 10.0).round() / 10.0),
                        area_px: d.area_px.round(),
                        area_mm2: d.area_mm2.map(|a| (a * 100.0).round() / 100.0),
                        score: d.score,
                    })
                    .collect();
                r.defects_not_listed = ins.defects_truncated;
                r.texts = ins
                    .texts
                    .iter()
                    .map(|t| TextRecord {
                        text: t.text.clone(),
                        score: t.score,
                        bbox: t.bbox,
                        quad: t.quad,
                    })
                    .collect();
                r.measurements = ins
                    .measurements
                    .iter()
                    .filter_map(|m| {
                        let t = ctx.head.measurement_text(m.rule)?;
                        Some(MeasurementRecord {
                            name: t.name,
                            value: m.value.is_finite().then(|| (m.value * 1e4).round() / 1e4),
                            unit: t.unit,
                            nominal: t.nominal,
                            tolerance: t.tolerance,
                            min: t.min,
                            max: t.max,
                            ok: m.ok,
                        })
                    })
                    .collect();
                r.latency_ms = Some(LatencyMs {
                    preprocess: ms(times.preprocess),
                    infer: ms(times.infer),
                    head: ms(times.head),
                    total: ms(*latency),
                });
            }
        }
        Some(r)
    }
}

/// How bad an inspected part is, comparable within one scenario: anomaly heads give
/// their uncapped normalised score (0.5 = the threshold); other heads add up, over the
/// failed rules, 1 + how far the part is outside each (0 for an OK part).
pub fn severity(ins: &Inspection, failures: &[FailureText]) -> f32 {
    let s = match ins.score_uncapped {
        Some(score) => score,
        None => failures.iter().map(|f| 1.0 + f.excess).sum(),
    };
    // `+ 0.0` turns a -0.0 into 0.0.
    (s * 1e4).round() / 1e4 + 0.0
}

/// A new run id: start time (UTC, to the second), pid and 32 random bits, e.g.
/// `20261127T170830Z-4711-9f3a0c2e`. Sorts by start time; the pid and the random part keep
/// two runs started in the same second (one box, or logs gathered from several) apart.
pub fn new_run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let dt = time::OffsetDateTime::from(SystemTime::now());
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let stamp = dt
        .format(&fmt)
        .unwrap_or_else(|_| String::from("19700101T000000Z"));
    // std's hasher keys are seeded from the OS's random source: no extra crate needed.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(dt.unix_timestamp_nanos() as u128);
    format!("{stamp}-{}-{:08x}", std::process::id(), h.finish() as u32)
}

/// RFC 3339 in `tz` with millisecond precision and the offset
/// (`2026-12-01T13:08:30.279+08:00`).
pub fn local_rfc3339(t: SystemTime, tz: &jiff::tz::TimeZone) -> String {
    match jiff::Timestamp::try_from(t) {
        Ok(ts) => ts
            .to_zoned(tz.clone())
            .strftime("%Y-%m-%dT%H:%M:%S%.3f%:z")
            .to_string(),
        Err(_) => rfc3339(t),
    }
}

/// RFC 3339 UTC with millisecond precision.
pub fn rfc3339(t: SystemTime) -> String {
    let dt = time::OffsetDateTime::from(t);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    dt.format(&fmt)
        .unwrap_or_else(|_| String::from("1970-01-01T00:00:00.000Z"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Failure;

    fn text(excess: f32) -> FailureText {
        FailureText::keyed("count", String::new(), excess)
    }

    #[test]
    fn severity_ranks_anomaly_parts_by_uncapped_score_and_others_by_failed_rules() {
        let mut ins = Inspection::with_capacity(0, 0);
        assert_eq!(severity(&ins, &[]), 0.0);
        ins.fail(Failure::CountOutOfRange { rule: 0, count: 1 });
        assert_eq!(severity(&ins, &[text(0.5), text(2.0)]), 4.5);
        // Two parts past the cap of `score` keep their order.
        ins.score = Some(1.0);
        ins.score_uncapped = Some(1.75);
        assert_eq!(severity(&ins, &[text(0.0)]), 1.75);
    }

    #[test]
    fn local_time_carries_the_offset() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_590_910_279);
        let tz = jiff::tz::TimeZone::get("Asia/Shanghai").unwrap();
        assert_eq!(local_rfc3339(t, &tz), "2025-12-01T20:08:30.279+08:00");
        assert_eq!(rfc3339(t), "2025-12-01T12:08:30.279Z");
    }
}
