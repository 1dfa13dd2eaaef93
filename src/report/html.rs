//! The report as one HTML file a supervisor opens on any PC: inline CSS, charts as inline
//! SVG, no script and nothing fetched. Every figure also sits in a `data-*` attribute so
//! tools (and the tests) can read the page back.

use std::fmt::Write;

use super::eval_view::{eval_block, scenario_of};
use super::gallery::gallery;
use super::stats::{Counts, ScenarioStats, Tables};

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;color:#222}\
h1{margin-bottom:0}.meta{color:#666;margin-top:.2rem}\
table{border-collapse:collapse;margin:.5rem 0 1.5rem}\
td,th{border:1px solid #ccc;padding:.25rem .6rem;text-align:right}\
th{background:#f3f3f3}td.l,th.l{text-align:left}\
section{border-top:2px solid #333;margin-top:2rem}\
.ng{color:#b00020}.ok{color:#0a7d32}svg text{font-size:11px;font-family:sans-serif}\
.gallery{display:flex;flex-wrap:wrap;gap:1rem}figure.ev{margin:0;width:330px}\
figure.ev img{max-width:320px;border:1px solid #999}figcaption{font-size:.85rem;color:#444}\
.noimg{width:320px;height:120px;background:#eee;color:#666;padding:.5rem}\
table.eval{margin:.2rem 0}table.eval td,table.eval th{font-size:.85rem}";

/// Escapes text for HTML content and attribute values (log contents are untrusted).
pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{:.1}%", v * 100.0))
}

fn counts_cells(c: &Counts) -> String {
    format!(
        "<td>{}</td><td class=ok>{}</td><td class=ng>{}</td><td class=ng>{}</td><td class=ng>{}</td><td>{}</td>",
        c.parts,
        c.ok,
        c.ng,
        c.error,
        c.timeout,
        pct(c.yield_ratio())
    )
}

fn counts_attrs(c: &Counts) -> String {
    format!(
        "data-parts=\"{}\" data-ok=\"{}\" data-ng=\"{}\" data-error=\"{}\" data-timeout=\"{}\"",
        c.parts, c.ok, c.ng, c.error, c.timeout
    )
}

/// Horizontal bars, one per (label, value).
fn bars(rows: &[(String, usize)]) -> String {
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1);
    let (label_w, bar_w, row_h) = (220.0, 360.0, 18.0);
    let mut s = format!(
        "<svg width=\"{}\" height=\"{}\" role=\"img\">",
        label_w + bar_w + 60.0,
        row_h * rows.len() as f64 + 4.0
    );
    for (i, (label, v)) in rows.iter().enumerate() {
        let y = i as f64 * row_h;
        let w = bar_w * *v as f64 / max as f64;
        let _ = write!(
            s,
            "<text x=\"0\" y=\"{:.0}\">{}</text><rect x=\"{label_w}\" y=\"{:.0}\" width=\"{w:.1}\" \
             height=\"{:.0}\" fill=\"#b00020\"/><text x=\"{:.1}\" y=\"{:.0}\">{v}</text>",
            y + 13.0,
            esc(label),
            y + 3.0,
            row_h - 5.0,
            label_w + w + 4.0,
            y + 13.0
        );
    }
    s + "</svg>"
}

/// Stacked columns per hour: OK below, rejects above.
fn trend(hourly: &[(&String, &Counts)]) -> String {
    let max = hourly
        .iter()
        .map(|(_, c)| c.parts)
        .max()
        .unwrap_or(0)
        .max(1);
    let (col, h, top) = (26.0, 140.0, 10.0);
    let mut s = format!(
        "<svg width=\"{}\" height=\"{}\" role=\"img\">",
        col * hourly.len().max(1) as f64 + 40.0,
        h + top + 40.0
    );
    for (i, (hour, c)) in hourly.iter().enumerate() {
        let x = 30.0 + i as f64 * col;
        let ok_h = h * c.ok as f64 / max as f64;
        let bad_h = h * (c.parts - c.ok) as f64 / max as f64;
        let _ = write!(
            s,
            "<g><title>{} OK {} / rejected {}</title>\
             <rect x=\"{x:.0}\" y=\"{:.1}\" width=\"{:.0}\" height=\"{ok_h:.1}\" fill=\"#0a7d32\"/>\
             <rect x=\"{x:.0}\" y=\"{:.1}\" width=\"{:.0}\" height=\"{bad_h:.1}\" fill=\"#b00020\"/>\
             <text x=\"{x:.0}\" y=\"{:.0}\" transform=\"rotate(45 {x:.0} {:.0})\">{}</text></g>",
            esc(hour),
            c.ok,
            c.parts - c.ok,
            top + h - ok_h,
            col - 4.0,
            top + h - ok_h - bad_h,
            col - 4.0,
            top + h + 12.0,
            top + h + 12.0,
            esc(hour.get(11..).unwrap_or(hour))
        );
    }
    let _ = write!(s, "<text x=\"0\" y=\"{:.0}\">{max}</text></svg>", top + 4.0);
    s
}

fn scenario_section(s: &ScenarioStats, evals: &[serde_json::Value]) -> String {
    let id = esc(&s.scenario);
    let mut h = format!(
        "<section id=\"s-{id}\"><h2>{id}</h2><p class=meta>{} to {} &middot; {} run(s)</p>\
         <table class=counts data-scenario=\"{id}\" {}><tr><th>parts</th><th>OK</th><th>NG</th>\
         <th>ERROR</th><th>TIMEOUT</th><th>yield</th></tr><tr>{}</tr></table>",
        esc(&s.first_local),
        esc(&s.last_local),
        s.runs,
        counts_attrs(&s.counts),
        counts_cells(&s.counts)
    );
    if !s.by_rule.is_empty() {
        let mut rows: Vec<(String, usize)> =
            s.by_rule.iter().map(|(k, v)| (k.clone(), *v)).collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.1));
        h += "<h3>Rejects per rule</h3>";
        h += &bars(&rows);
    }
    if !s.by_class.is_empty() {
        h += "<h3>Classes found on NG parts</h3><table><tr><th class=l>class</th><th>parts</th></tr>";
        for (k, v) in &s.by_class {
            let _ = write!(
                h,
                "<tr data-class=\"{}\" data-parts=\"{v}\"><td class=l>{}</td><td>{v}</td></tr>",
                esc(k),
                esc(k)
            );
        }
        h += "</table>";
    }
    if !s.hourly.is_empty() {
        let hourly: Vec<_> = s.hourly.iter().collect();
        h += "<h3>Per hour</h3>";
        h += &trend(&hourly);
    }
    if let Some(l) = &s.latency_ms {
        let _ = write!(
            h,
            "<h3>Latency, capture to verdict (ms)</h3><table class=latency><tr><th>p50</th>\
             <th>p90</th><th>p99</th><th>max</th></tr><tr><td>{:.1}</td><td>{:.1}</td>\
             <td>{:.1}</td><td>{:.1}</td></tr></table>",
            l.p50, l.p90, l.p99, l.max
        );
    }
    if !s.worst.is_empty() {
        h += "<h3>Worst parts</h3><table class=worst><tr><th class=l>time</th><th>seq</th>\
              <th class=l>item</th><th>verdict</th><th>score</th><th>severity</th>\
              <th class=l>why</th></tr>";
        for w in &s.worst {
            let _ = write!(
                h,
                "<tr><td class=l>{}</td><td>{}</td><td class=l>{}</td><td class=ng>{}</td>\
                 <td>{}</td><td>{}</td><td class=l>{}</td></tr>",
                esc(&w.time_local),
                w.seq,
                esc(w.item.as_deref().unwrap_or("")),
                esc(&w.verdict),
                w.score.map_or_else(|| "-".into(), |v| format!("{v:.4}")),
                w.severity.map_or_else(|| "-".into(), |v| format!("{v:.3}")),
                esc(&w.why)
            );
        }
        h += "</table>";
        h += &gallery(&s.worst);
    }
    for e in evals.iter().filter(|e| scenario_of(e) == Some(&s.scenario)) {
        h += &eval_block(e);
    }
    h + "</section>"
}

/// The whole page: an index across scenarios, then one section each.
pub fn page(
    t: &Tables,
    evals: &[serde_json::Value],
    station: Option<&str>,
    generated: &str,
) -> String {
    let title = station.map_or_else(
        || "lineside report".to_string(),
        |s| format!("{s}: lineside report"),
    );
    let window = format!(
        "{} to {}{} &middot; times in {}",
        esc(t.since.as_deref().unwrap_or("start of the logs")),
        esc(t.until.as_deref().unwrap_or("end of the logs")),
        t.shift
            .as_deref()
            .map(|s| format!(" &middot; shift {}", esc(s)))
            .unwrap_or_default(),
        esc(&t.time_zone)
    );
    let mut h = format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>{}</title>\
         <style>{STYLE}</style></head><body><h1>{}</h1><p class=meta>{window} &middot; made {}</p>\
         <h2>All scenarios</h2><table id=index {}><tr><th class=l>scenario</th><th>parts</th>\
         <th>OK</th><th>NG</th><th>ERROR</th><th>TIMEOUT</th><th>yield</th></tr>",
        esc(&title),
        esc(&title),
        esc(generated),
        counts_attrs(&t.total)
    );
    for s in &t.scenarios {
        let id = esc(&s.scenario);
        let _ = write!(
            h,
            "<tr><td class=l><a href=\"#s-{id}\">{id}</a></td>{}</tr>",
            counts_cells(&s.counts)
        );
    }
    let _ = write!(
        h,
        "<tr><th class=l>all</th>{}</tr></table>",
        counts_cells(&t.total)
    );
    for s in &t.scenarios {
        h += &scenario_section(s, evals);
    }
    // Results of scenarios with no records in the window still show.
    for e in evals {
        let id = scenario_of(e).unwrap_or("");
        if !t.scenarios.iter().any(|s| s.scenario == id) {
            let _ = write!(
                h,
                "<section><h2>{}</h2>{}</section>",
                esc(id),
                eval_block(e)
            );
        }
    }
    h + "</body></html>\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_text_cannot_inject_markup() {
        assert_eq!(
            esc("<script>\"x\"&'"),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;"
        );
    }
}
