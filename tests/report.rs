//! `lineside report` (issue 13 item 3): the page a supervisor opens, read back through a
//! real browser (headless Chromium, installed by scripts/setup.sh for the tests), shows the
//! counts the defect logs hold; shifts and time windows select the right records.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn lineside(args: &[&str], extra: &[&Path]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_lineside"))
        .args(args)
        .args(extra)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    text
}

/// Verdict counts straight from a defect log.
fn counts(log: &Path) -> [usize; 3] {
    let mut c = [0; 3];
    for line in std::fs::read_to_string(log).unwrap().lines() {
        let r: Value = serde_json::from_str(line).unwrap();
        match r["verdict"].as_str().unwrap() {
            "OK" => c[0] += 1,
            "NG" => c[1] += 1,
            _ => c[2] += 1,
        }
    }
    c
}

/// The page's DOM after Chromium parsed it, and a screenshot of it.
fn chromium(page: &Path, screenshot: &Path) -> String {
    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok())
        .expect("headless Chromium is missing: run LINESIDE_SETUP_TESTS=1 scripts/setup.sh");
    let profile = tempfile::tempdir().unwrap();
    let base = |cmd: &mut Command| {
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()));
    };
    let url = format!("file://{}", page.display());
    let mut dump = Command::new(chromium);
    base(&mut dump);
    let out = dump.arg("--dump-dom").arg(&url).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut shot = Command::new(chromium);
    base(&mut shot);
    let s = shot
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg("--window-size=1200,3600")
        .arg(&url)
        .output()
        .unwrap();
    assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The `data-*` counts of the element that carries `marker` in Chromium's DOM.
fn dom_counts(dom: &str, marker: &str) -> [usize; 3] {
    let at = dom
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} not in the page"));
    let tag = &dom[at..at + dom[at..].find('>').unwrap()];
    let attr = |name: &str| -> usize {
        let key = format!("data-{name}=\"");
        let v = &tag[tag.find(&key).unwrap() + key.len()..];
        v[..v.find('"').unwrap()].parse().unwrap()
    };
    [attr("ok"), attr("ng"), attr("error") + attr("timeout")]
}

/// Runs a bundled scenario with evidence images on into `out`.
fn run(scenario: &str, out: &Path) -> PathBuf {
    let copy = out.with_extension("d");
    std::fs::create_dir_all(&copy).unwrap();
    let file = common::scenario_copy(
        &common::root().join("scenarios").join(scenario),
        &copy,
        |t| t + "\n[evidence]\n",
    );
    let plan = lineside::scenario::check(&file).unwrap_or_else(|d| panic!("{d:?}"));
    common::run_to_log(&plan, out);
    out.join("defects.jsonl")
}

#[test]
fn report_page_in_chromium_shows_the_defect_logs_counts() {
    let dir = tempfile::tempdir().unwrap();
    let screws = run(
        "catalogue/10-screw-locking.toml",
        &dir.path().join("screws"),
    );
    let kits = run(
        "catalogue/26-kit-completeness.toml",
        &dir.path().join("kits"),
    );
    // A second run appended to the same log counts too.
    run(
        "catalogue/26-kit-completeness.toml",
        &dir.path().join("kits"),
    );
    let page = dir.path().join("report.html");
    let json = dir.path().join("report.json");
    let csv = dir.path().join("csv");
    let text = lineside(
        &["report", "--out"],
        &[
            &page,
            Path::new("--json"),
            &json,
            Path::new("--csv"),
            &csv,
            &dir.path().join("screws"),
            &dir.path().join("kits"),
        ],
    );
    eprintln!("{text}");
    let shot = dir.path().join("report.png");
    let dom = chromium(&page, &shot);
    let (s, k) = (counts(&screws), counts(&kits));
    assert_eq!(dom_counts(&dom, "data-scenario=\"screw-locking\""), s);
    assert_eq!(dom_counts(&dom, "data-scenario=\"kit-completeness\""), k);
    assert_eq!(
        dom_counts(&dom, "id=\"index\""),
        [s[0] + k[0], s[1] + k[1], s[2] + k[2]]
    );
    assert_eq!(k.iter().sum::<usize>(), 16, "two runs of 8 kits");
    // Rejects per rule name the rule, not just its kind.
    assert!(
        dom.contains("count: screws"),
        "the screw count rule is named"
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a real screenshot"
    );
    if std::env::var_os("LINESIDE_BLESS").is_some() {
        std::fs::copy(&shot, common::root().join("docs/report-screenshot.png")).unwrap();
    }
    // The JSON and CSV carry the same tables.
    let t: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(t["total"]["parts"], s.iter().sum::<usize>() + 16);
    let rows = std::fs::read_to_string(csv.join("counts.csv")).unwrap();
    assert!(
        rows.contains(&format!("kit-completeness,16,{},{}", k[0], k[1])),
        "{rows}"
    );
    assert_eq!(
        t["scenarios"][0]["runs"], 2,
        "kits first (sorted), two runs"
    );
}

/// The page with a script appended that, once everything loaded, writes how many
/// images there are and how many failed to load into `<body>`'s attributes; Chromium's DOM
/// dump shows them. (The report itself has no script.)
fn image_check(page: &Path) -> PathBuf {
    let checked = page.with_extension("check.html");
    let html = std::fs::read_to_string(page).unwrap().replace(
        "</body>",
        "<script>window.addEventListener('load', () => {\
         const imgs = [...document.querySelectorAll('img')];\
         document.body.dataset.imgs = imgs.length;\
         document.body.dataset.broken = imgs.filter(i => !i.complete || i.naturalWidth === 0).length;\
         });</script></body>",
    );
    std::fs::write(&checked, html).unwrap();
    checked
}

fn body_attr(dom: &str, name: &str) -> usize {
    let key = format!("data-{name}=\"");
    let at = dom
        .find(&key)
        .unwrap_or_else(|| panic!("{key} not in the page: the check script did not run"));
    let v = &dom[at + key.len()..];
    v[..v.find('"').unwrap()].parse().unwrap()
}

#[test]
fn report_shows_evidence_thumbnails_and_eval_results() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = common::scenario_copy(
        &common::root().join("scenarios/catalogue/26-kit-completeness.toml"),
        dir.path(),
        |t| t + "\n[evidence]\n",
    );
    let out = dir.path().join("kits");
    let plan = lineside::scenario::check(&scenario).unwrap_or_else(|d| panic!("{d:?}"));
    let records = common::run_to_log(&plan, &out);
    let with_evidence = records
        .iter()
        .filter(|r| r["evidence"]["image"].is_string())
        .count();
    let ng = records.iter().filter(|r| r["verdict"] != "OK").count();
    assert!(
        ng > 0 && with_evidence == ng,
        "every reject has evidence: {with_evidence} of {ng}"
    );
    // Eval results of the same scenario, shown beside its tables.
    let eval = dir.path().join("eval.json");
    lineside(
        &["eval", "--no-progress", "--json"],
        &[
            &eval,
            &common::root().join("scenarios/catalogue/26-kit-completeness.toml"),
        ],
    );
    let page = dir.path().join("report.html");
    lineside(
        &["report", "--out"],
        &[&page, Path::new("--eval"), &eval, &out],
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        !html.contains("src=\"http") && !html.contains("src=\"file"),
        "thumbnails are inlined, nothing is fetched"
    );
    let shot = dir.path().join("gallery.png");
    let dom = chromium(&image_check(&page), &shot);
    let shown = body_attr(&dom, "imgs");
    assert_eq!(
        shown,
        with_evidence.min(12),
        "one thumbnail per worst part with evidence (12 at most)"
    );
    assert_eq!(body_attr(&dom, "broken"), 0, "every thumbnail loads");
    // The eval block names the scenario and carries the per-class AP figures.
    let e: Value = serde_json::from_slice(&std::fs::read(&eval).unwrap()).unwrap();
    assert!(dom.contains("data-eval-scenario=\"kit-completeness\""));
    let map50 = e["detection"]["map50"].as_f64().unwrap();
    assert!(
        dom.contains(&format!("{map50:.4}")),
        "mAP50 {map50:.4} shown"
    );
}

#[test]
fn records_carry_schema_station_local_time_and_severity() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("screws");
    let scenario = common::scenario_copy(
        &common::root().join("scenarios/catalogue/10-screw-locking.toml"),
        dir.path(),
        |t| {
            let (head, _) = t.split_once("[output]").unwrap();
            format!("{head}[output]\ndir = \"{}\"\n", out.display())
        },
    );
    let station = dir.path().join("station.toml");
    std::fs::write(
        &station,
        "[station]\nname = \"Line 3, station 2\"\ntime_zone = \"Asia/Shanghai\"\n",
    )
    .unwrap();
    lineside(
        &["run", "--no-progress", "--station"],
        &[&station, &scenario],
    );
    let log = std::fs::read_to_string(out.join("defects.jsonl")).unwrap();
    let records: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 8);
    for r in &records {
        assert_eq!(r["schema"], 2);
        assert_eq!(r["station"], "Line 3, station 2");
        // The same instant, 8 hours ahead, with its offset.
        let utc: jiff::Timestamp = r["time"].as_str().unwrap().parse().unwrap();
        let local = r["time_local"].as_str().unwrap();
        assert!(local.ends_with("+08:00"), "{local}");
        assert_eq!(local.parse::<jiff::Timestamp>().unwrap(), utc);
        let severity = r["severity"].as_f64().unwrap();
        if r["verdict"] == "OK" {
            assert_eq!(severity, 0.0);
        } else {
            // Each failed rule adds at least 1, and names its kind and name apart.
            assert!(severity >= r["failed"].as_array().unwrap().len() as f64);
            for f in r["failed"].as_array().unwrap() {
                assert_eq!(f["rule_kind"], "count");
                let name = f["rule_name"].as_str().unwrap();
                assert!(
                    ["screws", "forbidden_classes[hex]"].contains(&name),
                    "{name}"
                );
                assert!(!f["detail"].as_str().unwrap().starts_with('`'));
            }
        }
    }
}

#[test]
fn time_windows_and_shifts_select_records() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("defects.jsonl");
    // Four parts: 05:30 and 07:00 and 23:00 on Dec 1 (UTC), 01:00 on Dec 2.
    let times = [
        "2026-12-01T05:30:00.000Z",
        "2026-12-01T07:00:00.000Z",
        "2026-12-01T23:00:00.000Z",
        "2026-12-02T01:00:00.000Z",
    ];
    let lines: String = times
        .iter()
        .enumerate()
        .map(|(i, t)| {
            format!(
                "{{\"scenario\":\"s\",\"seq\":{i},\"time\":\"{t}\",\"verdict\":\"{}\",\"failed\":[]}}\n",
                if i % 2 == 0 { "OK" } else { "NG" }
            )
        })
        .collect();
    std::fs::write(&log, lines).unwrap();
    let station = dir.path().join("station.toml");
    std::fs::write(
        &station,
        "[station]\nname = \"Line 3\"\ntime_zone = \"UTC\"\n\n[[shift]]\nname = \"early\"\n\
         start = \"06:00\"\nend = \"14:00\"\n\n[[shift]]\nname = \"night\"\nstart = \"22:00\"\n\
         end = \"06:00\"\n",
    )
    .unwrap();
    let parts = |extra: &[&str]| -> Value {
        let json = dir.path().join("t.json");
        let mut args = vec!["report", "--station"];
        let st = station.to_str().unwrap();
        args.push(st);
        args.extend_from_slice(extra);
        let page = dir.path().join("p.html");
        lineside(
            &args,
            &[
                Path::new("--out"),
                &page,
                Path::new("--json"),
                &json,
                dir.path(),
            ],
        );
        let t: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        t["total"].clone()
    };
    assert_eq!(parts(&[])["parts"], 4);
    assert_eq!(parts(&["--shift", "early"])["parts"], 1);
    let night = parts(&["--shift", "night"]);
    assert_eq!(
        (night["parts"].as_u64(), night["ok"].as_u64()),
        (Some(3), Some(2))
    );
    let day = parts(&["--since", "2026-12-01", "--until", "2026-12-02"]);
    assert_eq!(day["parts"], 3);
    assert_eq!(parts(&["--since", "2026-12-01T23:00:00Z"])["parts"], 2);
    // Bad input says what to do.
    let out = Command::new(env!("CARGO_BIN_EXE_lineside"))
        .args(["report", "--since", "yesterday"])
        .arg(dir.path())
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(e.contains("RFC 3339"), "{e}");
}
