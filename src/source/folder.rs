//! `kind = "folder"`: a drop folder watched for new image files (a line scanner writes
//! one per part), each inspected exactly once.
//!
//! Plain polling (`poll_ms`), not inotify: drop folders are often SMB/NFS shares, where
//! inotify sees nothing, and a file has to be watched until it settles anyway, which is
//! polling; listing one folder a few times a second costs next to nothing.
//!
//! A file is taken once its size and mtime have stayed unchanged for `settle_ms` (a
//! scanner writing in place), and only names with an image extension are looked at (one
//! writing `x.png.tmp` and renaming it is seen at the rename). The decode is the one
//! `kind = "images"` uses (limits, strict JPEG check): a file cut short becomes an ERROR
//! record naming it.
//!
//! Exactly once: the ledger (`<output dir>/folder-ledger.tsv` unless `ledger` says
//! otherwise; append-only, fsync'd per line) lists each file whose record every sink has
//! taken. The line is written after the record (see [`Settle`]), so a fault never loses a
//! decided result: a file whose record was not written is inspected again after a restart.
//! Only a kill in the window between the record and its ledger line inspects that one file
//! twice. Files are keyed by name, size and mtime, so a scanner that reuses a name for a
//! new part is seen. `after = "move"` moves a file to `done_dir` after its ledger line;
//! a move cut short by a crash is finished at the next start.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, UNIX_EPOCH};

use serde::Deserialize;

use super::images::{check_header, header_size, is_image_file, read_frame};
use super::spec::SourceSection;
use super::{
    Next, Probe, Settle, Source, SourceError, SourceEvent, SourceKind, SourceKindEntry, SourcePlan,
};
use crate::config::{Diagnostic, ScenarioFile};
use crate::frame::{BufferPool, FrameLimits, FrameOrigin};

/// The ledger's name in the output folder when `ledger` is not given.
pub const DEFAULT_LEDGER: &str = "folder-ledger.tsv";

pub(super) const KIND: SourceKindEntry = SourceKindEntry {
    kind: SourceKind::Folder,
    name: "folder",
    open: |plan| {
        Ok(Box::new(WatchedFolder::open(
            config_of(plan)?,
            plan.limits,
        )?))
    },
    probe: |plan| probe(config_of(plan)?, plan.limits),
};

fn config_of(plan: &SourcePlan) -> Result<&FolderConfig, SourceError> {
    plan.folder.as_ref().ok_or_else(|| SourceError::Open {
        path: plan.path.clone().unwrap_or_default(),
        reason: "folder source without watch settings (validate the scenario first)".into(),
    })
}

/// What happens to a file once its verdict is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum After {
    /// It stays; the ledger keeps it from being inspected again.
    Leave,
    /// It goes to `done_dir` (same file system: a rename).
    Move,
}

/// What to do with files already in the folder when its ledger is first made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Existing {
    Process,
    /// Record them in the ledger as skipped, uninspected. Only on the first start: once a
    /// ledger exists, every file not in it is new (dropped while lineside was down).
    Skip,
}

/// The order files that become ready at the same time are inspected in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    Name,
    Mtime,
}

#[derive(Debug, Clone)]
pub struct FolderConfig {
    pub path: PathBuf,
    pub poll: Duration,
    pub settle: Duration,
    pub after: After,
    pub done_dir: Option<PathBuf>,
    pub existing: Existing,
    pub order: Order,
    /// Filled with the output folder's default by the scenario check when not given.
    pub ledger: Option<PathBuf>,
}

const FOLDER_KEYS: [&str; 7] = [
    "poll_ms",
    "settle_ms",
    "after",
    "done_dir",
    "existing",
    "order",
    "ledger",
];

/// For every other kind: the folder's keys are errors, not silently ignored.
pub(super) fn refuse_keys(f: &ScenarioFile, s: &SourceSection, errs: &mut Vec<Diagnostic>) {
    let set = [
        s.poll_ms.is_some(),
        s.settle_ms.is_some(),
        s.after.is_some(),
        s.done_dir.is_some(),
        s.existing.is_some(),
        s.order.is_some(),
        s.ledger.is_some(),
    ];
    for (key, set) in FOLDER_KEYS.iter().zip(set) {
        if set {
            errs.push(f.diag(
                &format!("source.{key}"),
                "applies to kind = \"folder\" only",
            ));
        }
    }
}

/// Checks `[source]` for `kind = "folder"`; `path` is resolved.
pub(super) fn config(
    f: &ScenarioFile,
    s: &SourceSection,
    path: &Path,
    errs: &mut Vec<Diagnostic>,
) -> Option<FolderConfig> {
    let start = errs.len();
    // A missing path is reported by the common `path` check.
    if path.exists() && !path.is_dir() {
        errs.push(f.diag(
            "source.path",
            format!(
                "{} is not a folder; a watched folder source needs the folder the scanner drops files into (for one file use kind = \"images\")",
                path.display()
            ),
        ));
    }
    for (key, set) in [
        ("source.repeat", s.repeat.is_some()),
        ("source.pattern", s.pattern.is_some()),
        ("source.frames", s.frames.is_some()),
        ("source.width", s.width.is_some()),
        ("source.height", s.height.is_some()),
        ("source.format", s.format.is_some()),
    ] {
        if set {
            errs.push(f.diag(key, "does not apply to kind = \"folder\""));
        }
    }
    if s.live == Some(true) {
        errs.push(f.diag(
            "source.live",
            "a watched folder never drops a part: leave `live` out (or set it to false)",
        ));
    }
    let poll_ms = s.poll_ms.unwrap_or(200);
    if poll_ms == 0 || poll_ms > 60_000 {
        errs.push(f.diag(
            "source.poll_ms",
            "must be 1..=60000 (milliseconds between listings of the folder)",
        ));
    }
    let settle_ms = s.settle_ms.unwrap_or(500);
    if settle_ms > 600_000 {
        errs.push(f.diag(
            "source.settle_ms",
            "must be at most 600000 (milliseconds a file must stay unchanged)",
        ));
    }
    let after = s.after.unwrap_or(After::Leave);
    let done_dir = s.done_dir.as_ref().map(|d| f.resolve(d));
    match (after, &done_dir) {
        (After::Move, None) => errs.push(f.diag(
            "source.done_dir",
            "missing: after = \"move\" needs `done_dir` (a folder on the same file system, relative to this scenario file)",
        )),
        (After::Leave, Some(_)) => errs.push(f.diag(
            "source.done_dir",
            "applies to after = \"move\" only",
        )),
        (After::Move, Some(d)) => {
            if same_place(d, path) {
                errs.push(f.diag(
                    "source.done_dir",
                    "is the watched folder itself; give another folder",
                ));
            } else if d.exists() && !d.is_dir() {
                errs.push(f.diag(
                    "source.done_dir",
                    format!("{} is a file, not a folder", d.display()),
                ));
            }
        }
        (After::Leave, None) => {}
    }
    (errs.len() == start).then(|| FolderConfig {
        path: path.to_path_buf(),
        poll: Duration::from_millis(poll_ms),
        settle: Duration::from_millis(settle_ms),
        after,
        done_dir,
        existing: s.existing.unwrap_or(Existing::Process),
        order: s.order.unwrap_or(Order::Name),
        ledger: s.ledger.as_ref().map(|l| f.resolve(l)),
    })
}

fn same_place(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// What identifies one version of a file: a scanner reusing a name writes a new stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime_ns: i128,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        let mtime_ns = meta
            .modified()
            .ok()
            .map(|t| match t.duration_since(UNIX_EPOCH) {
                Ok(d) => d.as_nanos() as i128,
                Err(e) => -(e.duration().as_nanos() as i128),
            })
            .unwrap_or(0);
        Stamp {
            size: meta.len(),
            mtime_ns,
        }
    }
}

/// The image files in `dir` with a usable name, and their metadata.
fn list(dir: &Path) -> std::io::Result<Vec<(String, std::fs::Metadata)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        // Names the ledger cannot hold on one line are never picked up (warned at scan).
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.contains(['\n', '\r']) || !is_image_file(Path::new(&name)) {
            continue;
        }
        // Follows links: a scanner may drop links to files elsewhere.
        match std::fs::metadata(entry.path()) {
            Ok(m) if m.is_file() => out.push((name, m)),
            _ => {}
        }
    }
    Ok(out)
}

/// `validate`: the folder can be listed; the first file present gives the frame size.
fn probe(cfg: &FolderConfig, limits: FrameLimits) -> Result<Probe, SourceError> {
    let mut files = list(&cfg.path).map_err(|e| SourceError::Open {
        path: cfg.path.clone(),
        reason: format!("cannot list folder: {e}"),
    })?;
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let frame_size = files.iter().find_map(|(name, _)| {
        let p = cfg.path.join(name);
        check_header(&p, &limits).ok()?;
        header_size(&p).ok()
    });
    Ok(Probe {
        frame_size,
        refused: Vec::new(),
    })
}

/// How a ledger line settled its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    /// Its record was logged.
    Done,
    /// `existing = "skip"`: never inspected, never moved.
    Skip,
}

impl Mark {
    fn word(self) -> &'static str {
        match self {
            Mark::Done => "done",
            Mark::Skip => "skip",
        }
    }
}

/// The append-only record of files done with.
struct Ledger {
    path: PathBuf,
    file: File,
    /// The latest stamp per name, for files still in the folder.
    done: HashMap<String, (Stamp, Mark)>,
}

impl Ledger {
    /// Opens (or creates) the ledger; entries for files no longer in the folder are
    /// dropped (the file is rewritten), so it holds at most what the folder holds.
    /// Returns whether it was new.
    fn open(path: &Path, present: &HashSet<&str>) -> Result<(Ledger, bool), SourceError> {
        let err = |reason: String| SourceError::Open {
            path: path.to_path_buf(),
            reason,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| err(format!("cannot create the ledger's folder: {e}")))?;
        }
        let (text, fresh) = match std::fs::read(path) {
            Ok(bytes) => (String::from_utf8_lossy(&bytes).into_owned(), false),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), true),
            Err(e) => return Err(err(format!("cannot read the ledger: {e}"))),
        };
        let mut done = HashMap::new();
        let mut dropped = false;
        for (n, line) in text.split_inclusive('\n').enumerate() {
            let Some(line) = line.strip_suffix('\n') else {
                // A line cut short by a crash mid-append: its file was not settled.
                dropped = true;
                break;
            };
            let parsed = parse_line(line).ok_or_else(|| {
                err(format!(
                    "line {} is not `done|skip<TAB>size<TAB>mtime_ns<TAB>name`; this file is lineside's record of inspected files: fix or delete that line (a deleted line's file is inspected again)",
                    n + 1
                ))
            })?;
            let (name, entry) = parsed;
            if present.contains(name) {
                done.insert(name.to_string(), entry);
            } else {
                dropped = true;
            }
        }
        if dropped {
            rewrite(path, &done).map_err(|e| err(format!("cannot compact the ledger: {e}")))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| err(format!("cannot open the ledger for appending: {e}")))?;
        if fresh {
            if let Some(dir) = path.parent() {
                // The ledger's own directory entry must survive a power cut too.
                let _ = File::open(dir).and_then(|d| d.sync_all());
            }
        }
        Ok((
            Ledger {
                path: path.to_path_buf(),
                file,
                done,
            },
            fresh,
        ))
    }

    /// Appends one line and waits for it to reach the disk.
    fn append(&mut self, mark: Mark, name: &str, stamp: Stamp) -> Result<(), SourceError> {
        let line = format!(
            "{}\t{}\t{}\t{name}\n",
            mark.word(),
            stamp.size,
            stamp.mtime_ns
        );
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.sync_data())
            .map_err(|source| SourceError::Read {
                path: self.path.clone(),
                source,
            })?;
        self.done.insert(name.to_string(), (stamp, mark));
        Ok(())
    }
}

fn parse_line(line: &str) -> Option<(&str, (Stamp, Mark))> {
    let mut parts = line.splitn(4, '\t');
    let mark = match parts.next()? {
        "done" => Mark::Done,
        "skip" => Mark::Skip,
        _ => return None,
    };
    let size = parts.next()?.parse().ok()?;
    let mtime_ns = parts.next()?.parse().ok()?;
    let name = parts.next()?;
    Some((name, (Stamp { size, mtime_ns }, mark)))
}

/// Replaces the ledger with `done`, atomically (temporary file, fsync, rename).
fn rewrite(path: &Path, done: &HashMap<String, (Stamp, Mark)>) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = File::create(&tmp)?;
    let mut names: Vec<_> = done.iter().collect();
    names.sort_by(|a, b| a.0.cmp(b.0));
    for (name, (s, mark)) in names {
        writeln!(f, "{}\t{}\t{}\t{name}", mark.word(), s.size, s.mtime_ns)?;
    }
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// What capture and the ordering thread share: the ledger and the files in between.
struct Shared {
    ledger: Ledger,
    /// Picked up, record not yet logged.
    in_flight: HashMap<Arc<str>, Stamp>,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A panic elsewhere cannot leave the maps half-updated in a way that matters here.
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

/// Moves `name` from `from` into `done_dir`, never over a file already there.
fn move_done(from: &Path, done_dir: &Path, name: &str) -> std::io::Result<PathBuf> {
    let src = from.join(name);
    let mut dst = done_dir.join(name);
    let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
    let mut k = 1u32;
    while dst.exists() {
        if k > 9999 {
            return Err(std::io::Error::other(format!(
                "{} already holds {name} and 9999 renamed copies",
                done_dir.display()
            )));
        }
        dst = done_dir.join(format!("{stem}.{k}.{ext}"));
        k += 1;
    }
    std::fs::rename(&src, &dst).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!(
                "cannot move {} to {}: {e} (done_dir must be on the same file system)",
                src.display(),
                dst.display()
            ),
        )
    })?;
    Ok(dst)
}

pub struct WatchedFolder {
    cfg: FolderConfig,
    limits: FrameLimits,
    shared: Arc<Mutex<Shared>>,
    /// Seen but not yet settled: the stamp and when it was first seen unchanged.
    watching: HashMap<String, (Stamp, Instant)>,
    /// Settled, waiting for their turn.
    ready: VecDeque<Arc<str>>,
    next_scan: Instant,
    /// The last listing failed (warned once until it works again).
    listing_failed: bool,
    /// Done files whose move failed: not retried until the next start.
    move_failed: HashSet<String>,
    max_bytes: usize,
}

impl WatchedFolder {
    pub fn open(cfg: &FolderConfig, limits: FrameLimits) -> Result<Self, SourceError> {
        let open_err = |path: &Path, reason: String| SourceError::Open {
            path: path.to_path_buf(),
            reason,
        };
        let files =
            list(&cfg.path).map_err(|e| open_err(&cfg.path, format!("cannot list folder: {e}")))?;
        let Some(ledger_path) = cfg.ledger.as_ref() else {
            return Err(open_err(
                &cfg.path,
                "watched folder without a ledger path (validate the scenario first)".into(),
            ));
        };
        if let Some(d) = &cfg.done_dir {
            std::fs::create_dir_all(d)
                .map_err(|e| open_err(d, format!("cannot create done_dir: {e}")))?;
        }
        let present: HashSet<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        let (mut ledger, fresh) = Ledger::open(ledger_path, &present)?;
        if fresh && cfg.existing == Existing::Skip {
            for (name, meta) in &files {
                ledger.append(Mark::Skip, name, Stamp::of(meta))?;
            }
        }
        // Size the pool from the headers present (within the limits); later, larger files
        // grow a buffer once, never past the limits.
        let max_bytes = files
            .iter()
            .filter_map(|(name, _)| {
                let p = cfg.path.join(name);
                check_header(&p, &limits).ok()?;
                let (w, h) = header_size(&p).ok()?;
                u64::from(w).checked_mul(u64::from(h))?.checked_mul(3)
            })
            .max()
            .unwrap_or(0);
        Ok(WatchedFolder {
            cfg: cfg.clone(),
            limits,
            shared: Arc::new(Mutex::new(Shared {
                ledger,
                in_flight: HashMap::new(),
            })),
            watching: HashMap::new(),
            ready: VecDeque::new(),
            next_scan: Instant::now(),
            listing_failed: false,
            move_failed: HashSet::new(),
            max_bytes: usize::try_from(max_bytes).unwrap_or(usize::MAX),
        })
    }

    /// Lists the folder once: settled files join `ready`, in the configured order.
    fn scan(&mut self) -> Option<SourceEvent> {
        let files = match list(&self.cfg.path) {
            Ok(f) => f,
            Err(e) => {
                let first = !self.listing_failed;
                self.listing_failed = true;
                return first.then(|| {
                    SourceEvent::Disconnected(format!(
                        "cannot list watched folder {}: {e}; retrying every {} ms",
                        self.cfg.path.display(),
                        self.cfg.poll.as_millis()
                    ))
                });
            }
        };
        let recovered = std::mem::take(&mut self.listing_failed);
        let now = Instant::now();
        let mut settled = Vec::new();
        {
            let mut shared = lock(&self.shared);
            for (name, meta) in &files {
                let stamp = Stamp::of(meta);
                if shared.in_flight.contains_key(name.as_str()) {
                    continue;
                }
                if let Some(&(done, mark)) = shared.ledger.done.get(name) {
                    if done != stamp {
                        // A new part under a name already used: a new file.
                        shared.ledger.done.remove(name);
                    } else {
                        // Done before a crash cut its move short: finish the move.
                        if let (After::Move, Some(d), Mark::Done) =
                            (self.cfg.after, &self.cfg.done_dir, mark)
                        {
                            if !self.move_failed.contains(name) {
                                match move_done(&self.cfg.path, d, name) {
                                    Ok(_) => {
                                        shared.ledger.done.remove(name);
                                    }
                                    Err(e) => {
                                        tracing::warn!("{e}");
                                        self.move_failed.insert(name.clone());
                                    }
                                }
                            }
                        }
                        continue;
                    }
                }
                match self.watching.get(name) {
                    Some((seen, since)) if *seen == stamp => {
                        if now.duration_since(*since) >= self.cfg.settle {
                            settled.push((name.clone(), stamp));
                        }
                    }
                    _ => {
                        self.watching.insert(name.clone(), (stamp, now));
                    }
                }
            }
            match self.cfg.order {
                Order::Name => settled.sort_by(|a, b| a.0.cmp(&b.0)),
                Order::Mtime => {
                    settled.sort_by(|a, b| (a.1.mtime_ns, &a.0).cmp(&(b.1.mtime_ns, &b.0)))
                }
            }
            for (name, stamp) in settled {
                self.watching.remove(&name);
                let name: Arc<str> = name.into();
                shared.in_flight.insert(Arc::clone(&name), stamp);
                self.ready.push_back(name);
            }
        }
        let present: HashSet<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        self.watching.retain(|n, _| present.contains(n.as_str()));
        self.move_failed.retain(|n| present.contains(n.as_str()));
        recovered.then(|| {
            SourceEvent::Reconnected(format!(
                "watched folder {} can be listed again",
                self.cfg.path.display()
            ))
        })
    }

    fn read(&mut self, name: Arc<str>, seq: u64, pool: &BufferPool) -> Next {
        let path = self.cfg.path.join(&*name);
        let origin = FrameOrigin::File(name);
        let read = check_header(&path, &self.limits).and_then(|()| {
            read_frame(
                &path,
                &self.limits,
                self.limits.max_bytes,
                pool,
                seq,
                origin.clone(),
            )
        });
        match read {
            Ok(Some(frame)) => Next::Frame(frame),
            // The run is ending: the file stays undone and is taken at the next start.
            Ok(None) => Next::End,
            Err(error) => Next::Skipped { origin, error },
        }
    }
}

impl Source for WatchedFolder {
    fn next(&mut self, seq: u64, pool: &BufferPool) -> Next {
        if let Some(name) = self.ready.pop_front() {
            return self.read(name, seq, pool);
        }
        let now = Instant::now();
        if now >= self.next_scan {
            self.next_scan = now + self.cfg.poll;
            if let Some(event) = self.scan() {
                return Next::Event(event);
            }
            if let Some(name) = self.ready.pop_front() {
                return self.read(name, seq, pool);
            }
        }
        // Short sleeps: the pipeline checks for a stop request between calls.
        let wait = self.next_scan.saturating_duration_since(Instant::now());
        std::thread::sleep(wait.min(Duration::from_millis(50)));
        Next::Event(SourceEvent::Waiting)
    }

    fn item_names(&self) -> Vec<String> {
        // Frames name their file themselves (FrameOrigin::File): the list grows.
        Vec::new()
    }

    fn max_frame_bytes(&self) -> usize {
        self.max_bytes
    }

    fn len_hint(&self) -> Option<u64> {
        None
    }

    fn describe(&self) -> String {
        format!("folder:{}", self.cfg.path.display())
    }

    fn settle(&mut self) -> Option<Box<dyn Settle>> {
        Some(Box::new(Settler {
            shared: Arc::clone(&self.shared),
            root: self.cfg.path.clone(),
            done_dir: match self.cfg.after {
                After::Move => self.cfg.done_dir.clone(),
                After::Leave => None,
            },
        }))
    }
}

/// Writes a file's ledger line once its record is logged, then moves it if asked.
struct Settler {
    shared: Arc<Mutex<Shared>>,
    root: PathBuf,
    done_dir: Option<PathBuf>,
}

impl Settle for Settler {
    fn settled(&mut self, origin: &FrameOrigin) -> Result<(), SourceError> {
        let FrameOrigin::File(name) = origin else {
            return Ok(());
        };
        let mut shared = lock(&self.shared);
        let Some(stamp) = shared.in_flight.remove(name) else {
            return Ok(());
        };
        // On failure the run halts (a sink error) and a restart inspects the file again
        // rather than losing it.
        shared.ledger.append(Mark::Done, name, stamp)?;
        if let Some(d) = &self.done_dir {
            // Held under the lock, so a listing never sees it half-way.
            match move_done(&self.root, d, name) {
                Ok(_) => {
                    shared.ledger.done.remove(&**name);
                }
                // The verdict is logged and the ledger keeps the file from a second
                // inspection; the next start tries the move again.
                Err(e) => tracing::warn!("{e}"),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_lines_parse_back_and_bad_ones_do_not() {
        let (name, (s, mark)) = parse_line("done\t12\t-5\tpart\t1.png").unwrap();
        assert_eq!((name, s.size, s.mtime_ns), ("part\t1.png", 12, -5));
        assert_eq!(mark, Mark::Done);
        assert!(parse_line("skip\t1\t2\tx.png").is_some());
        for bad in ["", "done\t1\t2", "gone\t1\t2\tx.png", "done\tx\t2\ty.png"] {
            assert!(parse_line(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn a_torn_last_line_is_dropped_and_entries_for_gone_files_compacted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.tsv");
        std::fs::write(
            &path,
            "done\t1\t2\ta.png\ndone\t3\t4\tgone.png\ndone\t5\t6\tb.p",
        )
        .unwrap();
        let present: HashSet<&str> = ["a.png", "b.png"].into_iter().collect();
        let (mut ledger, fresh) = Ledger::open(&path, &present).unwrap();
        assert!(!fresh);
        assert_eq!(ledger.done.len(), 1);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "done\t1\t2\ta.png\n"
        );
        ledger
            .append(
                Mark::Done,
                "b.png",
                Stamp {
                    size: 7,
                    mtime_ns: 8,
                },
            )
            .unwrap();
        let (again, _) = Ledger::open(&path, &present).unwrap();
        assert_eq!(
            again.done.get("b.png"),
            Some(&(
                Stamp {
                    size: 7,
                    mtime_ns: 8
                },
                Mark::Done
            ))
        );
    }

    #[test]
    fn a_garbled_ledger_line_is_an_error_naming_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.tsv");
        std::fs::write(&path, "done\t1\t2\ta.png\nnonsense\n").unwrap();
        let e = Ledger::open(&path, &HashSet::new())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn a_move_never_overwrites_a_file_already_done() {
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (dir.path().join("in"), dir.path().join("done"));
        std::fs::create_dir_all(&from).unwrap();
        std::fs::create_dir_all(&to).unwrap();
        std::fs::write(to.join("p.png"), "old").unwrap();
        std::fs::write(from.join("p.png"), "new").unwrap();
        let dst = move_done(&from, &to, "p.png").unwrap();
        assert_eq!(dst, to.join("p.1.png"));
        assert_eq!(std::fs::read_to_string(to.join("p.png")).unwrap(), "old");
        assert_eq!(std::fs::read_to_string(dst).unwrap(), "new");
    }
}
