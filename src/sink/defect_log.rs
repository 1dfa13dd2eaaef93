//! The defect log: JSON Lines, one record per inspected part, appended whole.
//!
//! Each record is encoded in memory and written with one `write_all` on an `O_APPEND`
//! file, so records never interleave. If the process dies inside a write, the next open
//! finds a last line without its newline and cuts it off: readers only ever see whole
//! records. `sync` (end of run, and every `SYNC_EVERY` records) makes them durable.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{output_dir, Record, RecordContext, RunSink, SinkError, SinkKind};
use crate::outcome::Outcome;
use crate::status::ScenarioStatus;

const SYNC_EVERY: u64 = 256;

pub struct DefectLog {
    path: PathBuf,
    file: File,
    line: Vec<u8>,
    written: u64,
}

impl DefectLog {
    /// Opens (or creates, with `mode`) the log at `path`; a symbolic link there is refused.
    pub fn open(path: &Path, mode: u32) -> Result<DefectLog, SinkError> {
        let err = |source: std::io::Error| match output_dir::open_error(path, source) {
            SinkError::Write { source, .. } => SinkError::Log {
                path: path.to_path_buf(),
                source,
            },
            e => e,
        };
        if let Some(dir) = path.parent() {
            if let Some(file) = file_in_the_way(dir) {
                return Err(SinkError::NotAFolder {
                    dir: dir.to_path_buf(),
                    file,
                });
            }
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        repair_torn_tail(path).map_err(err)?;
        let file = output_dir::options(mode)
            .create(true)
            .append(true)
            .open(path)
            .map_err(err)?;
        Ok(DefectLog {
            path: path.to_path_buf(),
            file,
            line: Vec::with_capacity(1024),
            written: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn append(&mut self, record: &Record<'_>) -> Result<(), SinkError> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, record)?;
        self.line.push(b'\n');
        self.file
            .write_all(&self.line)
            .map_err(|source| SinkError::Log {
                path: self.path.clone(),
                source,
            })?;
        self.written += 1;
        if self.written.is_multiple_of(SYNC_EVERY) {
            self.sync()?;
        }
        Ok(())
    }

    pub fn sync(&mut self) -> Result<(), SinkError> {
        self.file.sync_data().map_err(|source| SinkError::Log {
            path: self.path.clone(),
            source,
        })
    }
}

/// The first existing part of `dir` (itself or a parent) when it is not a folder: creating
/// `dir` would fail with a bare "File exists" or "Not a directory".
pub fn file_in_the_way(dir: &Path) -> Option<PathBuf> {
    let existing = dir
        .ancestors()
        .find(|a| !a.as_os_str().is_empty() && std::fs::symlink_metadata(a).is_ok())?;
    (!existing.is_dir()).then(|| existing.to_path_buf())
}

/// Truncates a last line that has no newline (a write cut short by a crash).
fn repair_torn_tail(path: &Path) -> std::io::Result<()> {
    // Not through a link: the repair would cut the last line of whatever it points at.
    let mut f = match OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    // Scan back from the end in chunks for the last newline.
    let mut end = len;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(chunk)?;
        if end == len && chunk.last() == Some(&b'\n') {
            return Ok(());
        }
        if let Some(pos) = chunk.iter().rposition(|&b| b == b'\n') {
            let keep = start + pos as u64 + 1;
            tracing::warn!(
                "{}: removing a torn last record ({} bytes) left by an interrupted write",
                path.display(),
                len - keep
            );
            return f.set_len(keep);
        }
        if start == 0 {
            tracing::warn!("{}: removing a torn only record", path.display());
            return f.set_len(0);
        }
        end = start;
    }
}

/// The `defect_log` sink: one JSON line per decided part, `defects.jsonl` in the
/// output folder. Its failure stops the run (a decided result must not be lost).
/// SIGHUP reopens the file before the next record, so logrotate may rename it away
/// (`create` mode) and the records that follow go to the new file.
pub const KIND: SinkKind = SinkKind {
    name: "defect_log",
    open: |ctx| {
        let log = DefectLog::open(&ctx.output_dir.join("defects.jsonl"), ctx.file_mode)?;
        Ok(Box::new(DefectLogSink {
            log,
            ctx: Arc::clone(&ctx.record),
            file_mode: ctx.file_mode,
            reopened: ctx.status.reopen_files.load(Ordering::SeqCst),
            status: Arc::clone(&ctx.status),
        }))
    },
};

struct DefectLogSink {
    log: DefectLog,
    ctx: Arc<RecordContext>,
    file_mode: u32,
    status: Arc<ScenarioStatus>,
    /// The reopen request last acted on.
    reopened: u64,
}

impl DefectLogSink {
    /// Closes the file (synced) and opens whatever is at the path now.
    fn reopen(&mut self) -> Result<(), SinkError> {
        self.log.sync()?;
        let path = self.log.path().to_path_buf();
        self.log = DefectLog::open(&path, self.file_mode)?;
        tracing::info!(scenario = %self.ctx.scenario, "reopened {}", path.display());
        Ok(())
    }
}

impl RunSink for DefectLogSink {
    fn deliver(&mut self, outcome: &Outcome) -> Result<(), SinkError> {
        let wanted = self.status.reopen_files.load(Ordering::Relaxed);
        if wanted != self.reopened {
            self.reopened = wanted;
            self.reopen()?;
        }
        match Record::from_outcome(&self.ctx, outcome) {
            Some(record) => self.log.append(&record),
            None => Ok(()),
        }
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.log.sync()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_last_line_is_cut_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("defects.jsonl");
        std::fs::write(&p, b"{\"a\":1}\n{\"a\":2}\n{\"a\":").unwrap();
        let _log = DefectLog::open(&p, 0o640).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"{\"a\":1}\n{\"a\":2}\n");
        std::fs::write(&p, b"{\"torn").unwrap();
        let _log = DefectLog::open(&p, 0o640).unwrap();
        assert!(std::fs::read(&p).unwrap().is_empty());
    }

    #[test]
    fn item_7_symlinked_defect_log_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("precious.txt");
        std::fs::write(&target, b"line 1\nline 2 without newline").unwrap();
        let p = dir.path().join("defects.jsonl");
        std::os::unix::fs::symlink(&target, &p).unwrap();
        match DefectLog::open(&p, 0o640) {
            Err(SinkError::Symlink { path }) => assert_eq!(path, p),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("a symlinked defect log was opened"),
        }
        assert_eq!(
            std::fs::read(&target).unwrap(),
            b"line 1\nline 2 without newline"
        );
    }

    #[test]
    fn a_new_defect_log_gets_the_configured_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("defects.jsonl");
        let _log = DefectLog::open(&p, 0o600).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
