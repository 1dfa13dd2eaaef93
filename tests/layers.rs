//! The crate's layer order (written once, in `src/lib.rs`) holds: no module names a
//! module at its own level or below it, so there is no import circle and no arrow that
//! runs backwards along the data path. Every `crate::<module>` path in `src/` counts
//! (imports and inline paths alike; comments are skipped).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

mod common;

/// The layers from `lib.rs`'s ```text block: one line per level, modules comma-separated
/// before the description.
fn layers(lib_rs: &str) -> Vec<Vec<String>> {
    let block = lib_rs
        .split("//! ```text")
        .nth(1)
        .and_then(|rest| rest.split("//! ```").next())
        .expect("lib.rs documents the layers in a ```text block");
    block
        .lines()
        .map(|l| l.trim_start_matches("//!").trim())
        .filter(|l| !l.is_empty())
        .map(|l| {
            let names = l.split("  ").next().unwrap_or(l);
            names
                .split(',')
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
                .collect()
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Top-level modules a file names through `crate::` paths (comments skipped).
fn named_modules(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

#[test]
fn no_module_imports_its_own_level_or_below() {
    let src = common::root().join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let layers = layers(&lib);
    let level = |m: &str| layers.iter().position(|l| l.iter().any(|n| n == m));
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let top = rel.iter().next().unwrap().to_string_lossy().to_string();
        let top = top.trim_end_matches(".rs").to_string();
        if top == "main" || top == "lib" {
            continue;
        }
        seen.insert(top.clone());
        let Some(own) = level(&top) else {
            problems.push(format!(
                "{}: module `{top}` is not in lib.rs's layer list",
                rel.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(f).unwrap();
        for used in named_modules(&text) {
            if used == top {
                continue;
            }
            match level(&used) {
                None => problems.push(format!("{}: names `crate::{used}`, which is not in the layer list", rel.display())),
                Some(l) if l >= own => problems.push(format!(
                    "{}: `{top}` (level {own}) names `crate::{used}` (level {l}): a module may use only modules above its own line",
                    rel.display()
                )),
                Some(_) => {}
            }
        }
    }
    // Every module lib.rs declares is placed in the list.
    for line in lib.lines() {
        if let Some(m) = line
            .strip_prefix("pub mod ")
            .and_then(|m| m.strip_suffix(';'))
        {
            if level(m).is_none() {
                problems.push(format!("lib.rs: `pub mod {m}` is not in the layer list"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "layer order broken:\n{}",
        problems.join("\n")
    );
    assert!(seen.len() > 10, "found only {seen:?} under src/");
}

#[test]
fn the_checker_sees_a_backward_import() {
    let layers = layers("//! ```text\n//! a   first\n//! b, c   second\n//! ```\n");
    assert_eq!(
        layers,
        vec![
            vec!["a".to_string()],
            vec!["b".to_string(), "c".to_string()]
        ]
    );
    let named = named_modules("use crate::b::X; // crate::zzz\nlet y = crate::c::f();");
    assert_eq!(named, BTreeSet::from(["b".to_string(), "c".to_string()]));
}
