//! The MQTT spool: every result is written here before it goes to the broker, and stays
//! until the broker acknowledges it, so an outage or a restart of lineside loses nothing.
//!
//! On disk: append-only segment files `<first entry number, 20 digits>.seg`, each a run of
//! entries `[length u32][crc32 u32][number u64][topic length u16][topic][payload]` (little
//! endian; `length` and the CRC cover what follows the CRC). Entry numbers count up across
//! runs. `acked` holds the number of the first entry not yet acknowledged, replaced whole
//! (temp file + rename). Opening truncates at the first torn or bad-CRC entry (a write cut
//! short by a crash) and replays from `acked`. Past `max_bytes` the oldest segment is
//! dropped, and its unacknowledged entries are counted.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Bytes before the body: length and CRC.
const HEADER: u64 = 8;
/// Body bytes before the topic: entry number and topic length.
const BODY_FIXED: u64 = 10;
/// Largest entry accepted on reading: anything longer is corruption.
const MAX_ENTRY: u64 = 16 << 20;
const WATERMARK: &str = "acked";

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("MQTT spool {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One spooled message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub number: u64,
    pub topic: String,
    pub payload: Vec<u8>,
}

#[derive(Debug)]
struct Segment {
    first: u64,
    /// One past its last entry.
    end: u64,
    bytes: u64,
    path: PathBuf,
}

/// Where the last read stopped, so reading on does not rescan a segment.
struct ReadCursor {
    number: u64,
    segment_first: u64,
    offset: u64,
}

pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    /// Oldest first; the last is the one appended to.
    segments: VecDeque<Segment>,
    writer: Option<File>,
    next: u64,
    acked: u64,
    acked_saved: u64,
    bytes: u64,
    dropped: u64,
    unsynced: bool,
    buf: Vec<u8>,
    cursor: Option<ReadCursor>,
}

/// What opening found, for the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Entries waiting from an earlier run.
    pub pending: u64,
    /// Bytes cut off at a torn or corrupt entry (and the segments after it).
    pub truncated_bytes: u64,
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, capped at `max_bytes` of segments.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<(Spool, Recovery), SpoolError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut found: Vec<(u64, PathBuf)> = Vec::new();
        for e in std::fs::read_dir(dir).map_err(io_err(dir))? {
            let e = e.map_err(io_err(dir))?;
            let name = e.file_name();
            let Some(first) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".seg"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            found.push((first, e.path()));
        }
        found.sort();
        let watermark_path = dir.join(WATERMARK);
        let saved = match std::fs::read_to_string(&watermark_path) {
            Ok(t) => t.trim().parse::<u64>().ok(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(&watermark_path)(e)),
        };
        let mut recovery = Recovery::default();
        let mut segments = VecDeque::new();
        let mut broken = false;
        for (first, path) in found {
            let len = std::fs::metadata(&path).map_err(io_err(&path))?.len();
            if broken {
                // Entries after a corrupt one cannot be trusted to follow on.
                recovery.truncated_bytes += len;
                std::fs::remove_file(&path).map_err(io_err(&path))?;
                continue;
            }
            let expected = segments.back().map_or(first, |s: &Segment| s.end);
            let (end, good) = scan(&path, first).map_err(io_err(&path))?;
            if first != expected || good < len {
                tracing::warn!(
                    "{}: cutting {} bytes at a torn or corrupt entry (a write cut short by a crash)",
                    path.display(),
                    len - good
                );
                broken = true;
                recovery.truncated_bytes += len - good;
                if first != expected || good == 0 {
                    recovery.truncated_bytes += good;
                    std::fs::remove_file(&path).map_err(io_err(&path))?;
                    continue;
                }
                OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_len(good))
                    .map_err(io_err(&path))?;
            }
            segments.push_back(Segment {
                first,
                end,
                bytes: good,
                path,
            });
        }
        let oldest = segments.front().map_or(0, |s| s.first);
        let next = segments.back().map_or(saved.unwrap_or(0), |s| s.end);
        let acked = saved.unwrap_or(oldest).clamp(oldest, next);
        let bytes = segments.iter().map(|s| s.bytes).sum();
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            segment_bytes: (max_bytes / 8).clamp(4 << 10, 8 << 20),
            segments,
            writer: None,
            next,
            acked,
            acked_saved: saved.unwrap_or(0),
            bytes,
            dropped: 0,
            unsynced: false,
            buf: Vec::with_capacity(2048),
            cursor: None,
        };
        spool.save_watermark()?;
        recovery.pending = spool.depth();
        Ok((spool, recovery))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Entries not yet acknowledged by the broker.
    pub fn depth(&self) -> u64 {
        self.next - self.acked
    }

    /// The first entry not yet acknowledged.
    pub fn first_unacked(&self) -> u64 {
        self.acked
    }

    /// Unacknowledged entries dropped to stay under the byte cap, since opening.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Appends one message; returns how many unacknowledged entries were dropped to make
    /// room (the oldest segment goes whole).
    pub fn append(&mut self, topic: &str, payload: &[u8]) -> Result<u64, SpoolError> {
        let topic_len = u16::try_from(topic.len()).unwrap_or(u16::MAX);
        let topic = &topic.as_bytes()[..usize::from(topic_len)];
        let body = BODY_FIXED + u64::from(topic_len) + payload.len() as u64;
        let size = HEADER + body;
        let mut dropped = 0;
        while self.bytes + size > self.max_bytes {
            let Some(old) = self.segments.pop_front() else {
                break;
            };
            if self.segments.is_empty() {
                self.writer = None;
            }
            let lost = old.end.saturating_sub(self.acked.max(old.first));
            dropped += lost;
            self.acked = self.acked.max(old.end);
            self.bytes -= old.bytes;
            std::fs::remove_file(&old.path).map_err(io_err(&old.path))?;
        }
        if dropped > 0 {
            self.dropped += dropped;
            // The watermark must not point into a deleted segment.
            self.save_watermark()?;
        }
        let full = self
            .segments
            .back()
            .is_none_or(|s| s.bytes > 0 && s.bytes + size > self.segment_bytes);
        if self.writer.is_none() || full {
            self.start_segment()?;
        }
        self.buf.clear();
        self.buf.extend_from_slice(&(body as u32).to_le_bytes());
        self.buf.extend_from_slice(&[0; 4]);
        self.buf.extend_from_slice(&self.next.to_le_bytes());
        self.buf.extend_from_slice(&topic_len.to_le_bytes());
        self.buf.extend_from_slice(topic);
        self.buf.extend_from_slice(payload);
        let crc = crc32fast::hash(&self.buf[HEADER as usize..]);
        self.buf[4..8].copy_from_slice(&crc.to_le_bytes());
        let (Some(seg), Some(w)) = (self.segments.back_mut(), self.writer.as_mut()) else {
            return Err(io_err(&self.dir)(std::io::Error::other(
                "no segment open to append to",
            )));
        };
        w.write_all(&self.buf).map_err(io_err(&seg.path))?;
        seg.end += 1;
        seg.bytes += size;
        self.bytes += size;
        self.next += 1;
        self.unsynced = true;
        Ok(dropped)
    }

    fn start_segment(&mut self) -> Result<(), SpoolError> {
        if let Some(w) = self.writer.take() {
            let path = self
                .segments
                .back()
                .map(|s| s.path.clone())
                .unwrap_or_default();
            w.sync_data().map_err(io_err(&path))?;
        }
        let path = self.dir.join(format!("{:020}.seg", self.next));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        file.set_len(0).map_err(io_err(&path))?;
        self.writer = Some(file);
        self.segments.push_back(Segment {
            first: self.next,
            end: self.next,
            bytes: 0,
            path,
        });
        Ok(())
    }

    /// A handle to fsync outside the lock when appends are not yet durable (grouped fsync).
    pub fn sync_handle(&mut self) -> Result<Option<File>, SpoolError> {
        if !self.unsynced {
            return Ok(None);
        }
        self.unsynced = false;
        match (&self.writer, self.segments.back()) {
            (Some(w), Some(s)) => w.try_clone().map(Some).map_err(io_err(&s.path)),
            _ => Ok(None),
        }
    }

    /// Reads up to `max` entries from entry `from` on (or from the first unacknowledged
    /// one, if `from` was dropped) into `out`.
    pub fn read(&mut self, from: u64, max: usize, out: &mut Vec<Entry>) -> Result<(), SpoolError> {
        let mut number = from.max(self.acked);
        let limit = out.len().saturating_add(max);
        while out.len() < limit && number < self.next {
            let Some(seg) = self
                .segments
                .iter()
                .find(|s| s.first <= number && number < s.end)
            else {
                return Ok(());
            };
            let (first, end, path) = (seg.first, seg.end, seg.path.clone());
            let mut offset = match &self.cursor {
                Some(c) if c.number == number && c.segment_first == first => c.offset,
                _ => 0,
            };
            let mut f = File::open(&path).map_err(io_err(&path))?;
            f.seek(SeekFrom::Start(offset)).map_err(io_err(&path))?;
            let mut r = BufReader::new(f);
            while out.len() < limit && number < end {
                let Some((e, size)) = read_entry(&mut r).map_err(io_err(&path))? else {
                    return Ok(());
                };
                offset += size;
                if e.number >= number {
                    number = e.number + 1;
                    out.push(e);
                }
            }
            self.cursor = Some(ReadCursor {
                number,
                segment_first: if number < end { first } else { end },
                offset: if number < end { offset } else { 0 },
            });
        }
        Ok(())
    }

    /// Marks every entry below `upto` acknowledged; fully acknowledged segments go once the
    /// watermark is saved.
    pub fn ack(&mut self, upto: u64) {
        self.acked = self.acked.max(upto.min(self.next));
    }

    /// Writes the watermark (temp file + rename) when it moved, then deletes the segments
    /// below it.
    pub fn save_watermark(&mut self) -> Result<(), SpoolError> {
        if self.acked != self.acked_saved || !self.dir.join(WATERMARK).exists() {
            let tmp = self.dir.join("acked.tmp");
            let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
            f.write_all(format!("{}\n", self.acked).as_bytes())
                .and_then(|()| f.sync_data())
                .map_err(io_err(&tmp))?;
            let dst = self.dir.join(WATERMARK);
            std::fs::rename(&tmp, &dst).map_err(io_err(&dst))?;
            self.acked_saved = self.acked;
        }
        while let Some(s) = self.segments.front() {
            let current = self.segments.len() == 1 && self.writer.is_some();
            if s.end > self.acked_saved || (current && s.bytes < self.segment_bytes) {
                break;
            }
            if self.segments.len() == 1 {
                self.writer = None;
            }
            self.bytes -= s.bytes;
            std::fs::remove_file(&s.path).map_err(io_err(&s.path))?;
            self.segments.pop_front();
        }
        if self.depth() == 0 {
            // Nothing left to send: start the next run on fresh files.
            self.drop_fully_acked_current()?;
        }
        Ok(())
    }

    fn drop_fully_acked_current(&mut self) -> Result<(), SpoolError> {
        if let Some(s) = self.segments.back() {
            if s.end <= self.acked_saved && self.segments.len() == 1 {
                self.writer = None;
                self.bytes -= s.bytes;
                std::fs::remove_file(&s.path).map_err(io_err(&s.path))?;
                self.segments.pop_back();
                self.cursor = None;
            }
        }
        Ok(())
    }
}

/// Reads one entry; `None` at a clean end, a torn entry or a bad CRC.
fn read_entry(r: &mut impl Read) -> std::io::Result<Option<(Entry, u64)>> {
    let mut head = [0u8; HEADER as usize];
    if !read_full(r, &mut head)? {
        return Ok(None);
    }
    let len = u64::from(u32::from_le_bytes([head[0], head[1], head[2], head[3]]));
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if !(BODY_FIXED..=MAX_ENTRY).contains(&len) {
        return Ok(None);
    }
    let mut body = vec![0u8; len as usize];
    if !read_full(r, &mut body)? || crc32fast::hash(&body) != crc {
        return Ok(None);
    }
    let mut n = [0u8; 8];
    n.copy_from_slice(&body[..8]);
    let topic_len = u64::from(u16::from_le_bytes([body[8], body[9]]));
    if BODY_FIXED + topic_len > len {
        return Ok(None);
    }
    let topic_end = (BODY_FIXED + topic_len) as usize;
    let Ok(topic) = std::str::from_utf8(&body[BODY_FIXED as usize..topic_end]) else {
        return Ok(None);
    };
    let entry = Entry {
        number: u64::from_le_bytes(n),
        topic: topic.to_owned(),
        payload: body[topic_end..].to_vec(),
    };
    Ok(Some((entry, HEADER + len)))
}

/// Fills `buf`; false when the reader ends first.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => return Ok(false),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Scans a segment: one past its last good entry, and the bytes up to there. Entries must
/// be numbered on from `first`.
fn scan(path: &Path, first: u64) -> std::io::Result<(u64, u64)> {
    let mut r = BufReader::new(File::open(path)?);
    let (mut next, mut good) = (first, 0);
    while let Some((e, size)) = read_entry(&mut r)? {
        if e.number != next {
            break;
        }
        next += 1;
        good += size;
    }
    Ok((next, good))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(s: &mut Spool) -> Vec<Entry> {
        let mut out = Vec::new();
        s.read(0, usize::MAX, &mut out).unwrap();
        out
    }

    fn payloads(es: &[Entry]) -> Vec<String> {
        es.iter()
            .map(|e| String::from_utf8(e.payload.clone()).unwrap())
            .collect()
    }

    #[test]
    fn entries_replay_in_order_after_reopening_from_the_watermark() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut s, r) = Spool::open(dir.path(), 1 << 20).unwrap();
            assert_eq!(r, Recovery::default());
            for i in 0..10 {
                s.append("t/result", format!("p{i}").as_bytes()).unwrap();
            }
            s.ack(4);
            s.save_watermark().unwrap();
            assert_eq!(s.depth(), 6);
        }
        let (mut s, r) = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(r.pending, 6);
        let es = all(&mut s);
        assert_eq!(es.first().unwrap().number, 4);
        assert_eq!(payloads(&es), ["p4", "p5", "p6", "p7", "p8", "p9"]);
        assert!(es.iter().all(|e| e.topic == "t/result"));
        // Reading on in small batches continues where the last read stopped.
        let mut batch = Vec::new();
        s.read(4, 2, &mut batch).unwrap();
        s.read(6, 3, &mut batch).unwrap();
        assert_eq!(payloads(&batch), ["p4", "p5", "p6", "p7", "p8"]);
        s.ack(10);
        s.save_watermark().unwrap();
        assert_eq!(s.depth(), 0);
        let (_s, r) = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(r.pending, 0);
    }

    #[test]
    fn a_full_spool_drops_its_oldest_entries_and_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        // 4 KiB segments (the smallest), 16 KiB in all; each entry about 1 KiB.
        let (mut s, _) = Spool::open(dir.path(), 16 << 10).unwrap();
        let payload = vec![b'x'; 1000];
        let mut dropped = 0;
        for _ in 0..100 {
            dropped += s.append("t", &payload).unwrap();
            assert!(s.bytes() <= 16 << 10, "{} bytes", s.bytes());
        }
        assert!(dropped > 0);
        assert_eq!(s.dropped(), dropped);
        let es = all(&mut s);
        // What is left is the newest entries, in order, with none missing between them.
        assert_eq!(es.last().unwrap().number, 99);
        assert_eq!(es.len() as u64, s.depth());
        assert_eq!(es.len() as u64 + dropped, 100);
        assert!(es.windows(2).all(|w| w[1].number == w[0].number + 1));
        // The watermark on disk moved past the dropped ones: a restart replays the rest.
        drop(s);
        let (mut s, r) = Spool::open(dir.path(), 16 << 10).unwrap();
        assert_eq!(r.pending as usize, es.len());
        assert_eq!(all(&mut s), es);
    }

    #[test]
    fn a_long_outage_keeps_the_count_whole_and_the_disk_capped() {
        let dir = tempfile::tempdir().unwrap();
        let cap = 4 << 20;
        let (mut s, _) = Spool::open(dir.path(), cap).unwrap();
        let payload = vec![b'r'; 700]; // about one defect-log record
        let n = 20_000u64;
        let t = std::time::Instant::now();
        let mut dropped = 0;
        for _ in 0..n {
            dropped += s.append("lineside/st1/demo/result", &payload).unwrap();
        }
        let per = t.elapsed() / n as u32;
        println!("spool append: {per:?} per 700-byte result (no fsync), {dropped} dropped of {n}");
        assert!(s.bytes() <= cap);
        assert_eq!(dropped + s.depth(), n, "every result is kept or counted");
        let on_disk: u64 = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert!(on_disk <= cap + 64, "{on_disk} bytes on disk");
    }

    #[test]
    fn a_torn_or_corrupt_tail_is_cut_on_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut s, _) = Spool::open(dir.path(), 1 << 20).unwrap();
            for i in 0..5 {
                s.append("t", format!("p{i}").as_bytes()).unwrap();
            }
        }
        let seg = dir.path().join(format!("{:020}.seg", 0));
        let whole = std::fs::read(&seg).unwrap();
        // A write cut short: half an entry at the end.
        let mut torn = whole.clone();
        torn.extend_from_slice(&whole[..12]);
        std::fs::write(&seg, &torn).unwrap();
        let (mut s, r) = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(r.truncated_bytes, 12);
        assert_eq!(payloads(&all(&mut s)), ["p0", "p1", "p2", "p3", "p4"]);
        assert_eq!(std::fs::read(&seg).unwrap(), whole);
        // New entries follow on after the cut.
        s.append("t", b"p5").unwrap();
        drop(s);
        // A flipped byte in entry 3's payload: entries 3 and on are cut.
        let mut bad = std::fs::read(&seg).unwrap();
        let entry = whole.len() / 5;
        bad[3 * entry + entry - 1] ^= 0xff;
        std::fs::write(&seg, &bad).unwrap();
        let (mut s, r) = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(r.truncated_bytes as usize, 3 * entry);
        assert_eq!(payloads(&all(&mut s)), ["p0", "p1", "p2"]);
        s.append("t", b"again").unwrap();
        assert_eq!(all(&mut s).last().unwrap().number, 3);
    }
}
