//! `[plc]`: where the PLC is and its register map, checked into a [`PlcMap`].
//!
//! Addresses are 0-based Modbus protocol addresses of holding registers (what goes on the
//! wire): holding register 40001 in the 1-based "4xxxx" notation is address 0.

use std::time::Duration;

use serde::Deserialize;

use crate::config::{Diagnostic, ScenarioFile};
use crate::verdict::Verdict;

/// Words of the result block, in order (see [`ResultBlock`]).
pub const RESULT_WORDS: u16 = 6;
/// The most part-id words read after a trigger (a 32-bit id).
pub const MAX_PART_ID_WORDS: u16 = 2;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlcSection {
    /// Host name or IP address of the PLC (its Modbus TCP server).
    pub host: String,
    /// TCP port (default 502).
    pub port: Option<u16>,
    /// Modbus unit (slave) id (default 1).
    pub unit_id: Option<u8>,
    /// How often the trigger and acknowledge registers are read, in ms (default 5).
    pub poll_ms: Option<u64>,
    /// Longest wait for one request or a connect, in ms (default 1000).
    pub timeout_ms: Option<u64>,
    /// Counter the PLC increments once per part ([trigger] mode = "plc").
    pub trigger_register: Option<u16>,
    /// First of the registers holding the part id the PLC sets before the trigger.
    pub part_id_register: Option<u16>,
    /// Part-id words: 1 (16-bit) or 2 (32-bit, high word first). Default 2 when
    /// `part_id_register` is set.
    pub part_id_words: Option<u16>,
    /// First of the six result registers lineside writes (FC16).
    pub result_register: u16,
    /// The PLC acknowledges a result by writing its sequence number here.
    pub ack_register: Option<u16>,
    /// How long the PLC has to acknowledge, in ms (default 200).
    pub ack_timeout_ms: Option<u64>,
    /// Results waiting for the link while the PLC is slow or away (default 64).
    pub queue: Option<usize>,
    /// The verdict codes written to the PLC.
    pub codes: Option<CodesSection>,
}

#[derive(Debug, Clone, Copy, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CodesSection {
    pub ok: Option<u16>,
    pub ng: Option<u16>,
    pub error: Option<u16>,
    pub timeout: Option<u16>,
}

/// The verdict codes the PLC's program knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Codes {
    pub ok: u16,
    pub ng: u16,
    pub error: u16,
    pub timeout: u16,
}

impl Default for Codes {
    fn default() -> Self {
        Codes {
            ok: 1,
            ng: 2,
            error: 3,
            timeout: 4,
        }
    }
}

impl Codes {
    pub fn of(&self, v: Verdict) -> u16 {
        match v {
            Verdict::Ok => self.ok,
            Verdict::Ng => self.ng,
            Verdict::Error => self.error,
            Verdict::Timeout => self.timeout,
        }
    }
}

/// A checked `[plc]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlcMap {
    pub host: String,
    pub port: u16,
    pub unit_id: u8,
    pub poll: Duration,
    pub timeout: Duration,
    pub trigger_register: Option<u16>,
    /// First register and word count (1 or 2); `None`: parts carry no id from the PLC.
    pub part_id: Option<(u16, u16)>,
    pub result_register: u16,
    pub ack_register: Option<u16>,
    pub ack_timeout: Duration,
    pub queue: usize,
    pub codes: Codes,
}

/// One result as written to the PLC: six holding registers from `result_register`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResultBlock {
    /// +0: verdict code.
    pub code: u16,
    /// +1, +2: the part id echoed (high word, low word).
    pub part_id: u32,
    /// +3: defects found (saturating).
    pub defects: u16,
    /// +4: trigger (or capture) to verdict in ms (saturating).
    pub latency_ms: u16,
    /// +5: result sequence, 1, 2, … 65535, 1, …; never 0. Written last: a new value is
    /// the PLC's "result ready".
    pub sequence: u16,
}

impl ResultBlock {
    pub fn words(&self) -> [u16; RESULT_WORDS as usize] {
        [
            self.code,
            (self.part_id >> 16) as u16,
            (self.part_id & 0xffff) as u16,
            self.defects,
            self.latency_ms,
            self.sequence,
        ]
    }

    pub fn from_words(w: &[u16]) -> Option<ResultBlock> {
        let [code, hi, lo, defects, latency_ms, sequence] = *w else {
            return None;
        };
        Some(ResultBlock {
            code,
            part_id: (u32::from(hi) << 16) | u32::from(lo),
            defects,
            latency_ms,
            sequence,
        })
    }
}

/// The part id from its registers (one word, or two with the high word first).
pub fn part_id(words: &[u16]) -> u32 {
    words
        .iter()
        .take(MAX_PART_ID_WORDS as usize)
        .fold(0u32, |id, w| (id << 16) | u32::from(*w))
}

/// Reads and checks `[plc]`; `None` when the section is absent.
pub fn plc_map(f: &ScenarioFile, errs: &mut Vec<Diagnostic>) -> Option<PlcMap> {
    f.section_keys("plc", &[]).first()?;
    let s = match f.section::<PlcSection>("plc", &[]) {
        Ok(s) => s,
        Err(d) => {
            errs.push(d);
            return None;
        }
    };
    let before = errs.len();
    if s.host.trim().is_empty() {
        errs.push(f.diag(
            "plc.host",
            "is empty; give the PLC's IP address or host name",
        ));
    }
    let ms = |key: &str, v: Option<u64>, default: u64, max: u64, errs: &mut Vec<Diagnostic>| {
        let v = v.unwrap_or(default);
        if v == 0 || v > max {
            errs.push(f.diag(
                &format!("plc.{key}"),
                format!("{v} is out of range; give 1 to {max} ms"),
            ));
        }
        Duration::from_millis(v)
    };
    let poll = ms("poll_ms", s.poll_ms, 5, 10_000, errs);
    let timeout = ms("timeout_ms", s.timeout_ms, 1000, 60_000, errs);
    let ack_timeout = ms("ack_timeout_ms", s.ack_timeout_ms, 200, 60_000, errs);
    let words = s.part_id_words.unwrap_or(MAX_PART_ID_WORDS);
    if !(1..=MAX_PART_ID_WORDS).contains(&words) {
        errs.push(f.diag(
            "plc.part_id_words",
            format!("{words} words: give 1 (a 16-bit id) or 2 (32-bit, high word first)"),
        ));
    }
    if s.part_id_words.is_some() && s.part_id_register.is_none() {
        errs.push(f.diag(
            "plc.part_id_words",
            "is set without part_id_register; give the first part-id register too",
        ));
    }
    let queue = s.queue.unwrap_or(64);
    if !(1..=100_000).contains(&queue) {
        errs.push(f.diag(
            "plc.queue",
            format!("{queue} is out of range; give 1 to 100000 results"),
        ));
    }
    // Every register block must fit the 16-bit address space and not overlap another.
    let mut blocks: Vec<(&str, u16, u16)> =
        vec![("result_register", s.result_register, RESULT_WORDS)];
    if let Some(r) = s.trigger_register {
        blocks.push(("trigger_register", r, 1));
    }
    if let Some(r) = s.part_id_register {
        blocks.push(("part_id_register", r, words.clamp(1, MAX_PART_ID_WORDS)));
    }
    if let Some(r) = s.ack_register {
        blocks.push(("ack_register", r, 1));
    }
    for (i, &(key, start, n)) in blocks.iter().enumerate() {
        let end = u32::from(start) + u32::from(n);
        if end > 0x1_0000 {
            errs.push(f.diag(
                &format!("plc.{key}"),
                format!("{start} + {n} registers runs past address 65535"),
            ));
            continue;
        }
        for &(other, o_start, o_n) in &blocks[..i] {
            let o_end = u32::from(o_start) + u32::from(o_n);
            if u32::from(start) < o_end && u32::from(o_start) < end {
                errs.push(f.diag(
                    &format!("plc.{key}"),
                    format!(
                        "registers {start}..{} overlap {other} ({o_start}..{}); give each its own addresses",
                        end - 1,
                        o_end - 1
                    ),
                ));
            }
        }
    }
    let c = s.codes.unwrap_or_default();
    let d = Codes::default();
    let codes = Codes {
        ok: c.ok.unwrap_or(d.ok),
        ng: c.ng.unwrap_or(d.ng),
        error: c.error.unwrap_or(d.error),
        timeout: c.timeout.unwrap_or(d.timeout),
    };
    if codes.ok == codes.ng || codes.ok == codes.error || codes.ok == codes.timeout {
        errs.push(f.diag(
            "plc.codes",
            "the OK code equals a reject code; give OK a code of its own",
        ));
    }
    if errs.len() > before {
        return None;
    }
    Some(PlcMap {
        host: s.host,
        port: s.port.unwrap_or(502),
        unit_id: s.unit_id.unwrap_or(1),
        poll,
        timeout,
        trigger_register: s.trigger_register,
        part_id: s.part_id_register.map(|r| (r, words)),
        result_register: s.result_register,
        ack_register: s.ack_register,
        ack_timeout,
        queue,
        codes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_block_words_round_trip_with_the_sequence_last() {
        let b = ResultBlock {
            code: 2,
            part_id: 0x0001_86a1,
            defects: 3,
            latency_ms: 17,
            sequence: 65535,
        };
        let w = b.words();
        assert_eq!(w, [2, 1, 0x86a1, 3, 17, 65535]);
        assert_eq!(ResultBlock::from_words(&w), Some(b));
        assert_eq!(ResultBlock::from_words(&w[..5]), None);
        assert_eq!(part_id(&[1, 0x86a1]), 100_001);
        assert_eq!(part_id(&[42]), 42);
    }
}
