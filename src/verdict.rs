//! What an inspection decided about one part, in a form that is reused frame after frame.

use serde::Serialize;

/// The decision for one part. `Error` and `Timeout` are rejects on the line (fail-safe).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub enum Verdict {
    #[default]
    #[serde(rename = "OK")]
    Ok,
    #[serde(rename = "NG")]
    Ng,
    /// The part could not be inspected (corrupt frame, model failure).
    #[serde(rename = "ERROR")]
    Error,
    /// No verdict before the part's deadline.
    #[serde(rename = "TIMEOUT")]
    Timeout,
}

/// A rule that made a part NG. Kept as data (no strings) so deciding allocates nothing;
/// the defect log renders it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Failure {
    /// The top class is not in `ok_classes`.
    ClassNotAllowed { class: usize },
    /// The top class is in `ng_classes`.
    NgClass { class: usize },
    /// The top score is below `min_score`.
    LowScore { score: f32, min: f32 },
    /// The anomaly score reached the threshold.
    AnomalyScore { score: f32, threshold: f32 },
    /// Text rule `rule` (index into `[[rules.text]]`): no line has the literal/pattern.
    TextMissing { rule: u16 },
    /// Date rule `rule`: no date in its format was read.
    DateMissing { rule: u16 },
    /// Date rule `rule`: the date read is `days` from today, outside the allowed window.
    DateOutOfRange { rule: u16, days: i32 },
    /// Count rule `rule` (index into the detect head's count rules): `count` boxes matched,
    /// outside its min/max.
    CountOutOfRange { rule: u16, count: u32 },
    /// Rule `rule` of the head's own rule list failed with `value` (what was measured or
    /// found). A new head kind raises this and puts it into words in its
    /// `HeadPlan::describe`, so adding one needs no new variant here.
    Rule { rule: u16, value: f32 },
}

/// A class and its score.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct ClassScore {
    pub index: usize,
    pub score: f32,
}

/// A defect region in frame coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Defect {
    /// Class index into the scenario's labels; `None` for anomaly regions.
    pub class: Option<usize>,
    /// x, y, width, height in frame pixels.
    pub bbox: [f32; 4],
    /// Area in frame pixels.
    pub area_px: f32,
    /// Area in mm² when the scenario gives a pixel size (`[rules] mm_per_px`).
    pub area_mm2: Option<f32>,
    pub score: f32,
}

/// A line of text an OCR head read, in frame coordinates.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TextLine {
    /// Corners: top-left, top-right, bottom-right, bottom-left.
    pub quad: [[f32; 2]; 4],
    /// x, y, width, height of the quad's bounding box.
    pub bbox: [f32; 4],
    pub text: String,
    /// Recognition confidence (mean probability of the decoded characters).
    pub score: f32,
}

/// One measurement rule's result (`[[rules.measure]]`), named by its index: the head's plan
/// puts it into words, so deciding allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Measurement {
    /// Index into the head's measurement rules.
    pub rule: u16,
    /// In the rule's unit (px, mm or degrees); NaN when nothing was found to measure.
    pub value: f32,
    /// The same in frame pixels (degrees for angles): what `lineside calibrate` reads.
    pub px: f32,
    /// Within the rule's limits (false when nothing was found).
    pub ok: bool,
}

/// Everything a head decided about one frame. Vectors keep their capacity across frames.
#[derive(Debug, Clone, Default)]
pub struct Inspection {
    pub verdict: Verdict,
    /// The headline score: top-class probability, or the anomaly score.
    pub score: Option<f32>,
    /// Anomaly heads: the normalised score before it is capped to [0, 1] for `score`
    /// (0.5 is still the threshold; far-off parts keep their rank instead of tying at 1).
    pub score_uncapped: Option<f32>,
    pub classes: Vec<ClassScore>,
    pub defects: Vec<Defect>,
    /// Regions found beyond the `defects` capacity (counted, not listed).
    pub defects_truncated: usize,
    pub failures: Vec<Failure>,
    /// OCR heads: the lines read, in reading order.
    pub texts: Vec<TextLine>,
    /// Measurement heads: every rule's value, in rule order.
    pub measurements: Vec<Measurement>,
}

impl Inspection {
    pub fn with_capacity(classes: usize, defects: usize) -> Self {
        Inspection {
            classes: Vec::with_capacity(classes),
            defects: Vec::with_capacity(defects),
            failures: Vec::with_capacity(4),
            ..Default::default()
        }
    }

    pub fn clear(&mut self) {
        self.verdict = Verdict::Ok;
        self.score = None;
        self.score_uncapped = None;
        self.classes.clear();
        self.defects.clear();
        self.defects_truncated = 0;
        self.failures.clear();
        self.texts.clear();
        self.measurements.clear();
    }

    /// Records a failed rule and makes the verdict NG; a full list drops the extra
    /// reason rather than allocating.
    pub fn fail(&mut self, f: Failure) {
        self.verdict = Verdict::Ng;
        if self.failures.len() < self.failures.capacity() {
            self.failures.push(f);
        }
    }
}
