//! Prometheus metrics of every scenario in the process: counters fed by the ordered
//! outcome stream (one [`MetricsSink`] per scenario, on its ordering thread) and gauges
//! read from each [`ScenarioStatus`] when `/metrics` is scraped.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::outcome::{Outcome, OutcomeKind, RunSink, SinkError};
use crate::sink::RecordContext;
use crate::status::{now_ms, ScenarioStatus};
use crate::verdict::Verdict;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScenarioLabels {
    scenario: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerdictLabels {
    scenario: String,
    verdict: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabels {
    scenario: String,
    rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    scenario: String,
    stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EvidenceLabels {
    scenario: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LinkLabels {
    scenario: String,
    link: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// 0.5 ms to ~16 s in doublings: line-side stages run from well under a millisecond
/// (preprocess) to seconds (a large model on a small box).
fn stage_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Names of the stages in `lineside_stage_seconds{stage=...}`.
const STAGES: [&str; 4] = ["preprocess", "infer", "head", "total"];

/// The process's registry and the families the sinks feed.
pub struct Metrics {
    registry: Registry,
    frames: Family<ScenarioLabels, Counter>,
    verdicts: Family<VerdictLabels, Counter>,
    failed_rules: Family<RuleLabels, Counter>,
    dropped: Family<ScenarioLabels, Counter>,
    stage_seconds: HistogramFamily<StageLabels>,
}

impl Metrics {
    /// Metrics for the scenarios whose live state is `statuses`.
    pub fn new(statuses: Vec<Arc<ScenarioStatus>>) -> Metrics {
        let mut registry = Registry::with_prefix("lineside");
        let frames = Family::<ScenarioLabels, Counter>::default();
        let verdicts = Family::<VerdictLabels, Counter>::default();
        let failed_rules = Family::<RuleLabels, Counter>::default();
        let dropped = Family::<ScenarioLabels, Counter>::default();
        let stage_seconds: HistogramFamily<StageLabels> =
            Family::new_with_constructor(stage_histogram);
        registry.register(
            "frames",
            "Frames decided (OK + NG + ERROR + TIMEOUT), as written to the defect log",
            frames.clone(),
        );
        registry.register("verdicts", "Frames decided, by verdict", verdicts.clone());
        registry.register(
            "failed_rules",
            "Rules that failed (a NG or ERROR part counts once per failed rule)",
            failed_rules.clone(),
        );
        registry.register(
            "dropped",
            "Frames a live source dropped because inference was behind",
            dropped.clone(),
        );
        registry.register(
            "stage_seconds",
            "Time per inspected frame in each stage (total: capture to verdict)",
            stage_seconds.clone(),
        );
        registry.register_collector(Box::new(StatusCollector { statuses }));
        Metrics {
            registry,
            frames,
            verdicts,
            failed_rules,
            dropped,
            stage_seconds,
        }
    }

    /// The Prometheus text exposition of everything (what `/metrics` serves).
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }

    /// The counting sink of one scenario. Its counters are fetched here, once, so
    /// counting a frame takes no lock and allocates nothing (failed rules: once per name).
    pub fn sink(&self, record: Arc<RecordContext>) -> MetricsSink {
        let scenario = record.scenario.clone();
        let s = || ScenarioLabels {
            scenario: scenario.clone(),
        };
        let verdict = |v: Verdict| {
            self.verdicts
                .get_or_create(&VerdictLabels {
                    scenario: scenario.clone(),
                    verdict: verdict_name(v).to_owned(),
                })
                .clone()
        };
        let stage = |name: &str| {
            self.stage_seconds
                .get_or_create(&StageLabels {
                    scenario: scenario.clone(),
                    stage: name.to_owned(),
                })
                .clone()
        };
        MetricsSink {
            frames: self.frames.get_or_create(&s()).clone(),
            dropped: self.dropped.get_or_create(&s()).clone(),
            // Created now so every verdict shows (at 0) before the first part.
            verdicts: [Verdict::Ok, Verdict::Ng, Verdict::Error, Verdict::Timeout].map(verdict),
            stages: STAGES.map(stage),
            rules: Vec::new(),
            family: self.failed_rules.clone(),
            record,
        }
    }
}

/// The verdict as the defect log spells it.
pub fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Ok => "OK",
        Verdict::Ng => "NG",
        Verdict::Error => "ERROR",
        Verdict::Timeout => "TIMEOUT",
    }
}

fn verdict_index(v: Verdict) -> usize {
    match v {
        Verdict::Ok => 0,
        Verdict::Ng => 1,
        Verdict::Error => 2,
        Verdict::Timeout => 3,
    }
}

/// Counts one scenario's outcomes exactly as the defect log records them.
pub struct MetricsSink {
    frames: Counter,
    dropped: Counter,
    verdicts: [Counter; 4],
    stages: [Histogram; 4],
    /// Failed-rule counters met so far (a head has a handful of rule names).
    rules: Vec<(&'static str, Counter)>,
    family: Family<RuleLabels, Counter>,
    /// Names the failed rules as the defect log does.
    record: Arc<RecordContext>,
}

impl MetricsSink {
    fn count_rule(&mut self, rule: &'static str) {
        if let Some((_, c)) = self.rules.iter().find(|(r, _)| *r == rule) {
            c.inc();
            return;
        }
        let c = self
            .family
            .get_or_create(&RuleLabels {
                scenario: self.record.scenario.clone(),
                rule: rule.to_owned(),
            })
            .clone();
        c.inc();
        self.rules.push((rule, c));
    }
}

impl RunSink for MetricsSink {
    fn deliver(&mut self, outcome: &Outcome) -> Result<(), SinkError> {
        match &outcome.result {
            OutcomeKind::Dropped => {
                self.dropped.inc();
            }
            OutcomeKind::TimedOut { .. } => {
                self.frames.inc();
                self.verdicts[verdict_index(Verdict::Timeout)].inc();
                // The defect log's rule for a part past its deadline.
                self.count_rule("deadline");
            }
            OutcomeKind::Failed(_) => {
                self.frames.inc();
                self.verdicts[verdict_index(Verdict::Error)].inc();
                // The defect log's rule for a part that could not be inspected.
                self.count_rule("inspection");
            }
            OutcomeKind::Inspected {
                inspection,
                times,
                latency,
            } => {
                self.frames.inc();
                self.verdicts[verdict_index(inspection.verdict)].inc();
                for f in &inspection.failures {
                    let rule = self.record.head.describe(f, &self.record.labels).rule_kind;
                    self.count_rule(rule);
                }
                let seconds = [times.preprocess, times.infer, times.head, *latency];
                for (h, d) in self.stages.iter().zip(seconds) {
                    h.observe(d.as_secs_f64());
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Reads the scenarios' live state at scrape time.
#[derive(Debug)]
struct StatusCollector {
    statuses: Vec<Arc<ScenarioStatus>>,
}

/// One gauge or counter per scenario, written under one descriptor.
fn encode_each<L: EncodeLabelSet, M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    rows: Vec<(L, M)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in &rows {
        value.encode(metric.encode_family(labels)?)?;
    }
    Ok(())
}

impl Collector for StatusCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use std::sync::atomic::Ordering::Relaxed;
        let per_scenario = |f: &dyn Fn(&ScenarioStatus) -> i64| {
            self.statuses
                .iter()
                .map(|s| {
                    (
                        ScenarioLabels {
                            scenario: s.id.clone(),
                        },
                        ConstGauge::new(f(s)),
                    )
                })
                .collect::<Vec<_>>()
        };
        let gauge = MetricType::Gauge;
        encode_each(
            &mut encoder,
            "source_alive",
            "1 while the scenario's source delivers (0: ended or failed)",
            gauge,
            per_scenario(&|s| i64::from(s.source_alive.load(Relaxed))),
        )?;
        encode_each(
            &mut encoder,
            "queue_depth",
            "Frames waiting for a worker",
            gauge,
            per_scenario(&|s| gauge_value(s.queue_depth.load(Relaxed))),
        )?;
        // Seconds with millisecond resolution, as a float gauge.
        let now = now_ms();
        let ages = self
            .statuses
            .iter()
            .filter(|s| s.last_frame_ms.load(Relaxed) > 0)
            .map(|s| {
                let age_ms = now.saturating_sub(s.last_frame_ms.load(Relaxed));
                (
                    ScenarioLabels {
                        scenario: s.id.clone(),
                    },
                    ConstGauge::new(age_ms as f64 / 1000.0),
                )
            })
            .collect();
        encode_each(
            &mut encoder,
            "last_frame_age_seconds",
            "Seconds since the source last delivered a frame",
            gauge,
            ages,
        )?;
        encode_each(
            &mut encoder,
            "plan_generation",
            "The scenario plan in force: 1 at start, +1 per successful reload (SIGHUP)",
            gauge,
            per_scenario(&|s| gauge_value(s.plan_generation.load(Relaxed))),
        )?;
        let alarms = self
            .statuses
            .iter()
            .map(|s| {
                (
                    ScenarioLabels {
                        scenario: s.id.clone(),
                    },
                    ConstCounter::new(s.alarms_raised()),
                )
            })
            .collect();
        encode_each(
            &mut encoder,
            "alarms",
            "Alarms raised",
            MetricType::Counter,
            alarms,
        )?;
        let evidence = self
            .statuses
            .iter()
            .filter(|s| s.evidence.enabled.load(Relaxed))
            .flat_map(|s| {
                let e = &s.evidence;
                [
                    ("written", &e.written),
                    ("dropped_queue_full", &e.dropped_queue),
                    ("dropped_no_buffer", &e.dropped_no_buffer),
                    ("failed", &e.failed),
                    ("deleted", &e.deleted),
                ]
                .map(|(result, n)| {
                    (
                        EvidenceLabels {
                            scenario: s.id.clone(),
                            result: result.to_owned(),
                        },
                        ConstCounter::new(n.load(Relaxed)),
                    )
                })
            })
            .collect();
        encode_each(
            &mut encoder,
            "evidence_images",
            "Evidence images by result: written, dropped (queue full, no buffer), failed \
             (write errors), deleted by retention",
            MetricType::Counter,
            evidence,
        )?;
        let links: Vec<(LinkLabels, Arc<crate::status::LinkStatus>)> = self
            .statuses
            .iter()
            .flat_map(|s| {
                s.links().into_iter().map(|(link, status)| {
                    (
                        LinkLabels {
                            scenario: s.id.clone(),
                            link,
                        },
                        status,
                    )
                })
            })
            .collect();
        let link_gauge = |f: &dyn Fn(&crate::status::LinkStatus) -> i64| {
            links
                .iter()
                .map(|(l, s)| (l.clone(), ConstGauge::new(f(s))))
                .collect::<Vec<_>>()
        };
        let link_counter = |f: &dyn Fn(&crate::status::LinkStatus) -> u64| {
            links
                .iter()
                .map(|(l, s)| (l.clone(), ConstCounter::new(f(s))))
                .collect::<Vec<_>>()
        };
        encode_each(
            &mut encoder,
            "link_connected",
            "1 while the link (plc, mqtt) is connected",
            gauge,
            link_gauge(&|l| i64::from(l.connected.load(Relaxed))),
        )?;
        encode_each(
            &mut encoder,
            "link_backlog",
            "Items waiting to go out on the link (spool depth)",
            gauge,
            link_gauge(&|l| gauge_value(l.backlog.load(Relaxed))),
        )?;
        encode_each(
            &mut encoder,
            "link_reconnects",
            "Times the link was re-established after a loss",
            MetricType::Counter,
            link_counter(&|l| l.reconnects.load(Relaxed)),
        )?;
        encode_each(
            &mut encoder,
            "link_dropped",
            "Items the link gave up (a full spool's oldest)",
            MetricType::Counter,
            link_counter(&|l| l.dropped.load(Relaxed)),
        )
    }
}

fn gauge_value(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
