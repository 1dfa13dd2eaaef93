//! Text rules (`[[rules.text]]`): what an OCR head must have read for the part to be OK —
//! a literal, a pattern (lot numbers), or a date code within a window around today.

use regex::Regex;
use time::{Date, Month};

use crate::verdict::{Failure, Inspection, TextLine};

#[derive(Debug, Clone)]
pub enum TextCheck {
    /// Some line contains this text.
    Literal(String),
    /// Some line matches this regular expression (searched, not anchored).
    Pattern(Regex),
    /// Some line holds a date in this format between today + `min_days` and today +
    /// `max_days` (inclusive).
    Date {
        format: DateFormat,
        min_days: i64,
        max_days: i64,
    },
}

#[derive(Debug, Clone)]
pub struct TextRule {
    /// Shown in the defect log: the rule's `name`, or `text[i]`.
    pub name: String,
    pub check: TextCheck,
    /// Compare with spaces removed (PP-OCR's Chinese/English model drops most spaces).
    pub ignore_spaces: bool,
}

impl TextRule {
    /// `Ok` when the rule holds for `lines`, else the failure to record.
    pub fn evaluate(&self, index: usize, lines: &[TextLine], today: Date) -> Option<Failure> {
        let rule = index as u16;
        let norm = |t: &str| -> String {
            if self.ignore_spaces {
                t.chars().filter(|c| !c.is_whitespace()).collect()
            } else {
                t.to_string()
            }
        };
        match &self.check {
            TextCheck::Literal(want) => {
                let want = norm(want);
                (!lines.iter().any(|l| norm(&l.text).contains(&want)))
                    .then_some(Failure::TextMissing { rule })
            }
            TextCheck::Pattern(re) => (!lines.iter().any(|l| re.is_match(&norm(&l.text))))
                .then_some(Failure::TextMissing { rule }),
            TextCheck::Date {
                format,
                min_days,
                max_days,
            } => {
                let mut nearest: Option<i64> = None;
                for l in lines {
                    for date in format.find_all(&norm(&l.text)) {
                        let days = (date - today).whole_days();
                        if (*min_days..=*max_days).contains(&days) {
                            return None;
                        }
                        nearest = Some(nearest.map_or(days, |n: i64| {
                            if (days - min_days).abs() < (n - min_days).abs() {
                                days
                            } else {
                                n
                            }
                        }));
                    }
                }
                Some(match nearest {
                    Some(days) => Failure::DateOutOfRange {
                        rule,
                        days: days.clamp(i32::MIN as i64, i32::MAX as i64) as i32,
                    },
                    None => Failure::DateMissing { rule },
                })
            }
        }
    }
}

/// Evaluates every rule, recording failures on `out`.
pub fn apply(rules: &[TextRule], today: Option<Date>, out: &mut Inspection) {
    if rules.is_empty() {
        return;
    }
    let today = today.unwrap_or_else(|| time::OffsetDateTime::now_utc().date());
    for (i, r) in rules.iter().enumerate() {
        if let Some(f) = r.evaluate(i, &out.texts, today) {
            out.fail(f);
        }
    }
}

/// A strftime-style date format (`%Y`, `%y`, `%m`, `%d`, `%j`, `%b`; `%%`), turned into
/// a regular expression that finds such dates in text.
#[derive(Debug, Clone)]
pub struct DateFormat {
    pub source: String,
    re: Regex,
    fields: Vec<Field>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Field {
    Year4,
    Year2,
    Month,
    MonthName,
    Day,
    DayOfYear,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

impl DateFormat {
    pub fn parse(fmt: &str) -> Result<DateFormat, String> {
        let mut re = String::new();
        let mut fields = Vec::new();
        let mut chars = fmt.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                re.push_str(&regex::escape(&c.to_string()));
                continue;
            }
            let (field, pat) = match chars.next() {
                Some('Y') => (Field::Year4, r"(\d{4})"),
                Some('y') => (Field::Year2, r"(\d{2})"),
                Some('m') => (Field::Month, r"(\d{2})"),
                Some('d') => (Field::Day, r"(\d{2})"),
                Some('j') => (Field::DayOfYear, r"(\d{3})"),
                Some('b') => (Field::MonthName, r"(?i)([A-Za-z]{3})(?-i)"),
                Some('%') => {
                    re.push('%');
                    continue;
                }
                Some(other) => {
                    return Err(format!(
                        "`%{other}` is not supported; use %Y %y %m %d %j %b (and %% for a percent sign)"
                    ))
                }
                None => return Err("ends with a lone `%`".into()),
            };
            fields.push(field);
            re.push_str(pat);
        }
        let has = |f: Field| fields.contains(&f);
        let year = has(Field::Year4) || has(Field::Year2);
        let day = has(Field::DayOfYear)
            || (has(Field::Day) && (has(Field::Month) || has(Field::MonthName)));
        if !year || !day {
            return Err("needs a year (%Y or %y) and a day (%d with %m or %b, or %j)".into());
        }
        let re = Regex::new(&re).map_err(|e| e.to_string())?;
        Ok(DateFormat {
            source: fmt.to_string(),
            re,
            fields,
        })
    }

    /// Every valid date written in `text` in this format.
    pub fn find_all(&self, text: &str) -> Vec<Date> {
        let mut out = Vec::new();
        for caps in self.re.captures_iter(text) {
            let (mut year, mut month, mut day, mut ordinal) = (None, None, None, None);
            for (i, f) in self.fields.iter().enumerate() {
                let Some(m) = caps.get(i + 1) else { continue };
                let s = m.as_str();
                match f {
                    Field::Year4 => year = s.parse::<i32>().ok(),
                    Field::Year2 => year = s.parse::<i32>().ok().map(|y| 2000 + y),
                    Field::Month => month = s.parse::<u8>().ok(),
                    Field::MonthName => {
                        let up = s.to_ascii_uppercase();
                        month = MONTHS.iter().position(|m| *m == up).map(|i| i as u8 + 1);
                    }
                    Field::Day => day = s.parse::<u8>().ok(),
                    Field::DayOfYear => ordinal = s.parse::<u16>().ok(),
                }
            }
            let date = match (year, ordinal) {
                (Some(y), Some(o)) => Date::from_ordinal_date(y, o).ok(),
                (Some(y), None) => month
                    .and_then(|m| Month::try_from(m).ok())
                    .zip(day)
                    .and_then(|(m, d)| Date::from_calendar_date(y, m, d).ok()),
                _ => None,
            };
            out.extend(date);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn line(t: &str) -> TextLine {
        TextLine {
            text: t.into(),
            ..Default::default()
        }
    }

    #[test]
    fn date_formats_find_dates() {
        let f = DateFormat::parse("%Y-%m-%d").unwrap();
        assert_eq!(f.find_all("BESTBEFORE2026-04-25"), [date!(2026 - 04 - 25)]);
        assert!(f.find_all("2026-13-01").is_empty(), "month 13 is no date");
        let f = DateFormat::parse("%d %b %y").unwrap();
        assert_eq!(f.find_all("EXP 05 mar 27"), [date!(2027 - 03 - 05)]);
        assert!(DateFormat::parse("%H:%M").is_err());
        assert!(DateFormat::parse("%m/%d").is_err(), "no year");
    }

    #[test]
    fn date_rule_checks_the_window() {
        let rule = TextRule {
            name: "best-before".into(),
            check: TextCheck::Date {
                format: DateFormat::parse("%Y-%m-%d").unwrap(),
                min_days: 14,
                max_days: 90,
            },
            ignore_spaces: true,
        };
        let today = date!(2026 - 03 - 01);
        assert_eq!(
            rule.evaluate(0, &[line("BEST BEFORE 2026-04-25")], today),
            None
        );
        assert_eq!(
            rule.evaluate(0, &[line("BEST BEFORE 2026-02-20")], today),
            Some(Failure::DateOutOfRange { rule: 0, days: -9 })
        );
        assert_eq!(
            rule.evaluate(2, &[line("LOT L2400-1234")], today),
            Some(Failure::DateMissing { rule: 2 })
        );
    }

    #[test]
    fn literal_and_pattern_rules_ignore_spaces() {
        let lit = TextRule {
            name: "product".into(),
            check: TextCheck::Literal("OAT BISCUITS".into()),
            ignore_spaces: true,
        };
        assert_eq!(
            lit.evaluate(0, &[line("OATBISCUITS")], date!(2026 - 01 - 01)),
            None
        );
        let lot = TextRule {
            name: "lot".into(),
            check: TextCheck::Pattern(Regex::new(r"^LOTL24\d{2}-\d{4}$").unwrap()),
            ignore_spaces: true,
        };
        assert_eq!(
            lot.evaluate(1, &[line("LOT L2409-5666")], date!(2026 - 01 - 01)),
            None
        );
        assert_eq!(
            lot.evaluate(1, &[line("LOT L2409-566")], date!(2026 - 01 - 01)),
            Some(Failure::TextMissing { rule: 1 })
        );
    }
}
