//! Reading a scenario file section by section, so one run of `validate` reports every
//! schema error in the file (not only the first), each with its line.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::diagnostic::Diagnostic;
use super::schema::*;

/// A parsed scenario file that can still say where each key was written.
pub struct ScenarioFile {
    pub path: PathBuf,
    /// Folder the file lives in; relative paths resolve against it.
    pub dir: PathBuf,
    doc: toml_edit::Document<String>,
    /// The whole file, for the sections that heads and sources read themselves
    /// (`[source]`, `[head]`, `[rules]`) through [`ScenarioFile::section`].
    table: toml::Table,
    pub scenario: ScenarioSection,
    pub model: ModelSection,
    pub preprocess: PreprocessSection,
    /// `[head] kind`; the other `[head]` keys belong to that kind.
    pub head_kind: String,
    /// `[fit]`, for `lineside fit` (absent in most scenarios).
    pub fit: Option<FitSection>,
    pub output: OutputSection,
}

impl ScenarioFile {
    pub fn load(path: &Path) -> Result<ScenarioFile, Vec<Diagnostic>> {
        Self::load_checking::<toml::Table>(path, "")
    }

    /// As [`Self::load`], also reading `section` as `S` (a section another module owns,
    /// e.g. `[source]`), so a file with several broken sections gets every error at once.
    pub fn load_checking<S: DeserializeOwned>(
        path: &Path,
        section: &str,
    ) -> Result<ScenarioFile, Vec<Diagnostic>> {
        let at_file = |message: String| {
            vec![Diagnostic {
                file: path.to_path_buf(),
                line: None,
                key: String::new(),
                message,
            }]
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| at_file(format!("cannot read scenario file: {e}")))?;
        let doc = toml_edit::Document::parse(text.clone()).map_err(|e| {
            let line = e.span().map(|s| line_at(&text, s.start));
            vec![Diagnostic {
                file: path.to_path_buf(),
                line,
                key: String::new(),
                message: format!("not valid TOML: {}", e.message()),
            }]
        })?;
        let table: toml::Table = toml::from_str(&text)
            .map_err(|e| at_file(format!("not valid TOML: {}", e.message())))?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let mut loader = SectionLoader {
            path,
            text: &text,
            doc: &doc,
            table: &table,
            errors: Vec::new(),
        };
        for key in table.keys() {
            if !SECTIONS.contains(&key.as_str()) {
                loader.error(
                    key,
                    format!(
                        "unknown section `[{key}]`; valid sections are {}",
                        SECTIONS.map(|s| format!("[{s}]")).join(", ")
                    ),
                );
            }
        }
        let scenario = loader.required::<ScenarioSection>("scenario");
        let source = loader.required_table("source");
        if source.is_some() && !section.is_empty() {
            loader.parse::<S>(section);
        }
        let model = loader.required::<ModelSection>("model");
        let preprocess = loader.optional::<PreprocessSection>("preprocess");
        let head_kind = loader.head_kind();
        let rules = loader.optional_table("rules");
        let output = loader.optional::<OutputSection>("output");
        let fit_present = table.contains_key("fit");
        let fit = if fit_present {
            loader.parse::<FitSection>("fit")
        } else {
            None
        };
        let errors = loader.errors;
        if fit_present && fit.is_none() {
            return Err(errors);
        }
        match (
            scenario, source, model, preprocess, head_kind, rules, output,
        ) {
            (
                Some(scenario),
                Some(()),
                Some(model),
                Some(preprocess),
                Some(head_kind),
                Some(()),
                Some(output),
            ) if errors.is_empty() => Ok(ScenarioFile {
                path: path.to_path_buf(),
                dir,
                doc,
                table,
                scenario,
                model,
                preprocess,
                head_kind,
                fit,
                output,
            }),
            _ => Err(errors),
        }
    }

    /// Resolves a path written in the file against the file's folder.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        let joined = if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        };
        // Drop `.` and `a/..` so logs and messages show plain paths.
        let mut out = PathBuf::new();
        for c in joined.components() {
            match c {
                std::path::Component::CurDir => {}
                std::path::Component::ParentDir
                    if matches!(
                        out.components().next_back(),
                        Some(std::path::Component::Normal(_))
                    ) =>
                {
                    out.pop();
                }
                other => out.push(other),
            }
        }
        out
    }

    /// The keys of a section other than `except` (empty when the section is absent).
    pub fn section_keys(&self, section: &str, except: &[&str]) -> Vec<String> {
        self.table
            .get(section)
            .and_then(toml::Value::as_table)
            .map(|t| {
                t.keys()
                    .filter(|k| !except.contains(&k.as_str()))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Reads `section` (absent: an empty table) into `T`, leaving out `skip` keys (those
    /// already reported or read elsewhere). A schema error comes back located at its key.
    pub fn section<T: DeserializeOwned>(
        &self,
        section: &str,
        skip: &[&str],
    ) -> Result<T, Diagnostic> {
        let mut table = self
            .table
            .get(section)
            .and_then(toml::Value::as_table)
            .cloned()
            .unwrap_or_default();
        for k in skip {
            table.remove(*k);
        }
        deserialize_located(section, toml::Value::Table(table)).map_err(|(key, message)| {
            Diagnostic {
                file: self.path.clone(),
                line: locate(&self.doc, &key),
                key,
                message,
            }
        })
    }

    /// A finding about `key` (dotted path), located at the key's line when it is present
    /// in the file, else at its section.
    pub fn diag(&self, key: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: self.path.clone(),
            line: locate(&self.doc, key),
            key: key.to_string(),
            message: message.into(),
        }
    }
}

struct SectionLoader<'a> {
    path: &'a Path,
    text: &'a str,
    doc: &'a toml_edit::Document<String>,
    table: &'a toml::Table,
    errors: Vec<Diagnostic>,
}

impl SectionLoader<'_> {
    fn error(&mut self, key: &str, message: String) {
        self.errors.push(Diagnostic {
            file: self.path.to_path_buf(),
            line: locate(self.doc, key).or(Some(line_at(self.text, 0))),
            key: key.to_string(),
            message,
        });
    }

    fn required<T: DeserializeOwned>(&mut self, section: &str) -> Option<T> {
        if !self.table.contains_key(section) {
            self.error(section, format!("missing section `[{section}]`"));
            return None;
        }
        self.parse(section)
    }

    fn optional<T: DeserializeOwned + Default>(&mut self, section: &str) -> Option<T> {
        if !self.table.contains_key(section) {
            return Some(T::default());
        }
        self.parse(section)
    }

    /// A section read later by its owner (a source, a head): here only its presence and
    /// shape are checked.
    fn required_table(&mut self, section: &str) -> Option<()> {
        if !self.table.contains_key(section) {
            self.error(section, format!("missing section `[{section}]`"));
            return None;
        }
        self.optional_table(section)
    }

    fn optional_table(&mut self, section: &str) -> Option<()> {
        match self.table.get(section) {
            Some(v) if !v.is_table() => {
                self.error(
                    section,
                    format!("`{section}` must be a table: write it as a `[{section}]` header"),
                );
                None
            }
            _ => Some(()),
        }
    }

    /// `[head] kind`, which names the head that owns the rest of `[head]` and `[rules]`.
    fn head_kind(&mut self) -> Option<String> {
        self.required_table("head")?;
        match self.table.get("head").and_then(|h| h.get("kind")) {
            Some(toml::Value::String(k)) => Some(k.clone()),
            Some(_) => {
                self.error(
                    "head.kind",
                    "must be a string, e.g. kind = \"classify\"".into(),
                );
                None
            }
            None => {
                self.error("head.kind", "missing field `kind`".into());
                None
            }
        }
    }

    fn parse<T: DeserializeOwned>(&mut self, section: &str) -> Option<T> {
        let value = self.table.get(section)?;
        if !value.is_table() {
            self.error(
                section,
                format!("`{section}` must be a table: write it as a `[{section}]` header"),
            );
            return None;
        }
        match deserialize_located(section, value.clone()) {
            Ok(v) => Some(v),
            Err((key, message)) => {
                self.error(&key, message);
                None
            }
        }
    }
}

/// Deserializes one section; an error comes back as (dotted key, advice).
fn deserialize_located<T: DeserializeOwned>(
    section: &str,
    value: toml::Value,
) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let inner = e.inner().to_string();
        let mut key = section.to_string();
        let path = e.path().to_string();
        if path != "." && !path.is_empty() {
            key = format!("{section}.{path}");
        }
        let field = backticked_after(&inner, "unknown field `")
            .or_else(|| backticked_after(&inner, "missing field `"));
        if let Some(field) = field {
            if !key.ends_with(&format!(".{field}")) {
                key = format!("{key}.{field}");
            }
        }
        (key, explain(&inner))
    })
}

fn backticked_after<'s>(s: &'s str, prefix: &str) -> Option<&'s str> {
    let start = s.find(prefix)? + prefix.len();
    let end = s[start..].find('`')? + start;
    Some(&s[start..end])
}

/// Turns serde's wording into advice for a person editing the file.
fn explain(serde_message: &str) -> String {
    let m = serde_message.trim();
    if m.starts_with("unknown field") {
        return m.replace("expected one of", "valid keys here are");
    }
    if m.starts_with("unknown variant") {
        return m.replace("expected one of", "valid values are");
    }
    if m.contains("did not match any variant of untagged enum RoiValue") {
        return "roi must be [x, y, width, height] or { x = .., y = .., width = .., height = .. } with whole, non-negative pixel numbers".into();
    }
    if m.contains("did not match any variant of untagged enum PerChannel") {
        return "must be a number or a list of numbers, one per channel, e.g. [0.485, 0.456, 0.406]".into();
    }
    m.to_string()
}

/// Line of a dotted key path, e.g. `preprocess.mean` or `source.path`; falls back to
/// the nearest enclosing table that exists.
pub(crate) fn locate(doc: &toml_edit::Document<String>, key: &str) -> Option<usize> {
    let text = doc.raw();
    let mut best = None;
    let mut table: &dyn toml_edit::TableLike = doc.as_table();
    for part in key.split('.').filter(|p| !p.is_empty()) {
        // `count[2]`: the third `[[rules.count]]` table, so a rule's key gets its own line.
        let (name, index) = match part.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        let Some((k, item)) = table.get_key_value(name) else {
            break;
        };
        if let Some(span) = k.span().or_else(|| item.span()) {
            best = Some(line_at(text, span.start));
        } else if let Some(t) = item.as_table() {
            best = t.span().map(|s| line_at(text, s.start)).or(best);
        }
        let element = index.and_then(|i| item.as_array_of_tables()?.get(i));
        if let Some(t) = element {
            best = t.span().map(|s| line_at(text, s.start)).or(best);
            table = t;
            continue;
        }
        match item.as_table_like() {
            Some(t) => table = t,
            None => break,
        }
    }
    best
}

fn line_at(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}
