//! Which `[head]`/`[rules]` keys belong to which head kinds, checked once for every head.
//! Each head declares the keys it reads (its section types); this check reports a key that
//! only other kinds read, naming them, so the head's own parser sees only its keys.

use super::diagnostic::Diagnostic;
use super::file::ScenarioFile;

/// The keys one head kind reads in one section.
pub struct KeyOwner {
    pub kind: &'static str,
    pub keys: &'static [&'static str],
}

/// Reports every key of `section` that the `chosen` kind does not read but another kind
/// does ("applies to head kind X only", plus the chosen kind's hint for it, if any) and
/// returns those keys, for the chosen kind's parser to skip. Keys no kind reads are left to
/// that parser, whose message lists the valid keys.
pub fn foreign_keys(
    f: &ScenarioFile,
    section: &str,
    chosen: &str,
    owners: &[KeyOwner],
    hints: &[(&str, &str)],
    errs: &mut Vec<Diagnostic>,
) -> Vec<String> {
    let own = |kind: &str, key: &str| {
        owners
            .iter()
            .any(|o| o.kind == kind && o.keys.contains(&key))
    };
    let mut foreign = Vec::new();
    for key in f.section_keys(section, &["kind"]) {
        if own(chosen, &key) {
            continue;
        }
        let mut kinds: Vec<&str> = Vec::new();
        for o in owners.iter().filter(|o| o.keys.contains(&key.as_str())) {
            if !kinds.contains(&o.kind) {
                kinds.push(o.kind);
            }
        }
        if kinds.is_empty() {
            continue;
        }
        let dotted = format!("{section}.{key}");
        let hint = hints
            .iter()
            .find(|(k, _)| *k == dotted)
            .map(|(_, h)| format!(" (head kind \"{chosen}\" uses {h})"))
            .unwrap_or_default();
        errs.push(f.diag(
            &dotted,
            format!("applies to {} only{hint}", kinds_phrase(&kinds)),
        ));
        foreign.push(key);
    }
    foreign
}

/// `head kind "a"`, `head kinds "a" and "b"`, `head kinds "a", "b" and "c"`.
fn kinds_phrase(kinds: &[&str]) -> String {
    let quoted: Vec<String> = kinds.iter().map(|k| format!("\"{k}\"")).collect();
    match quoted.as_slice() {
        [one] => format!("head kind {one}"),
        [rest @ .., last] => format!("head kinds {} and {last}", rest.join(", ")),
        [] => String::from("no head kind"),
    }
}

#[cfg(test)]
mod tests {
    use super::kinds_phrase;

    #[test]
    fn phrases_name_every_kind() {
        assert_eq!(kinds_phrase(&["ocr"]), "head kind \"ocr\"");
        assert_eq!(
            kinds_phrase(&["detect", "segment"]),
            "head kinds \"detect\" and \"segment\""
        );
        assert_eq!(
            kinds_phrase(&["a", "b", "c"]),
            "head kinds \"a\", \"b\" and \"c\""
        );
    }
}
