//! OCR quality against the expected lines of each image: character accuracy (one minus the
//! edit distance over the number of expected characters) and the share of expected lines
//! read exactly. Spaces are left out of both, as PP-OCR's spacing is a guess.

use serde::Serialize;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TextMetrics {
    pub images: usize,
    /// Expected lines, and those found among the lines read, character for character.
    pub lines: usize,
    pub lines_exact: usize,
    /// Expected characters (spaces left out) and edits needed to turn what was read into
    /// them (lines joined in reading order).
    pub chars: usize,
    pub char_errors: usize,
    pub char_accuracy: Option<f64>,
}

fn squeeze(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

impl TextMetrics {
    /// Adds one image: the lines expected and the lines read, both in reading order.
    pub fn add(&mut self, expected: &[String], read: &[&str]) {
        self.images += 1;
        let read_lines: Vec<String> = read.iter().map(|l| squeeze(l)).collect();
        for line in expected {
            self.lines += 1;
            if read_lines.contains(&squeeze(line)) {
                self.lines_exact += 1;
            }
        }
        let want: String = expected
            .iter()
            .map(|l| squeeze(l))
            .collect::<Vec<_>>()
            .join("\n");
        let got = read_lines.join("\n");
        self.chars += want.chars().filter(|c| *c != '\n').count();
        self.char_errors += strsim::levenshtein(&got, &want);
        self.char_accuracy =
            (self.chars > 0).then(|| (1.0 - self.char_errors as f64 / self.chars as f64).max(0.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_edits_and_exact_lines_ignoring_spaces() {
        let mut m = TextMetrics::default();
        let want = ["LOT L2409-5666".to_string(), "NET WT 400 g".to_string()];
        m.add(&want, &["LOTL2409-5666", "NET WT 4OO g"]);
        assert_eq!((m.lines, m.lines_exact), (2, 1));
        assert_eq!((m.chars, m.char_errors), (22, 2));
        assert!((m.char_accuracy.unwrap() - 20.0 / 22.0).abs() < 1e-12);
        // A line not read at all costs its characters.
        m.add(&["AB".to_string()], &[]);
        assert_eq!((m.chars, m.char_errors), (24, 4));
    }
}
