//! `lineside eval --json` results shown in the report: whatever figures the file holds,
//! as nested tables, so new metrics appear without a change here. Per-image lists are
//! left out (they belong to the JSON file, not a supervisor's page).

use std::fmt::Write;

use serde_json::Value;

use super::html::esc;

/// Keys of per-image lists, too long for the page.
const PER_IMAGE: &[&str] = &["images", "results"];
/// Rows shown of any other list.
const MAX_ROWS: usize = 50;

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some("-".into()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(match n.as_f64() {
            Some(f) if n.is_f64() => format!("{f:.4}"),
            _ => n.to_string(),
        }),
        Value::String(s) => Some(esc(s)),
        _ => None,
    }
}

fn render(v: &Value) -> String {
    if let Some(s) = scalar(v) {
        return s;
    }
    let mut h = String::new();
    match v {
        Value::Object(map) => {
            h += "<table class=eval>";
            for (k, v) in map {
                if PER_IMAGE.contains(&k.as_str()) {
                    continue;
                }
                let _ = write!(
                    h,
                    "<tr><th class=l>{}</th><td class=l>{}</td></tr>",
                    esc(k),
                    render(v)
                );
            }
            h += "</table>";
        }
        Value::Array(items) => {
            h += "<table class=eval>";
            for item in items.iter().take(MAX_ROWS) {
                let _ = write!(h, "<tr><td class=l>{}</td></tr>", render(item));
            }
            if items.len() > MAX_ROWS {
                let _ = write!(
                    h,
                    "<tr><td class=l>({} more)</td></tr>",
                    items.len() - MAX_ROWS
                );
            }
            h += "</table>";
        }
        _ => {}
    }
    h
}

/// The scenario an eval result is of.
pub fn scenario_of(v: &Value) -> Option<&str> {
    v.get("scenario").and_then(Value::as_str)
}

/// One eval result as a section part.
pub fn eval_block(v: &Value) -> String {
    format!(
        "<div class=evalres data-eval-scenario=\"{}\"><h3>Evaluation on labelled images</h3>{}</div>",
        esc(scenario_of(v).unwrap_or("")),
        render(v)
    )
}
