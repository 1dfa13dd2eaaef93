//! What the evidence folder holds, oldest first, so the writer can keep it within its
//! size and age limits. Scanned once at start (a restart remembers earlier runs' files),
//! then kept up to date by the writer itself.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Extension of the files the ledger owns; anything else in the folder is left alone.
const OWNED: &str = "jpg";
/// Prefix of a file being written (temp + rename); left-overs of a crash are removed.
pub const TEMP_PREFIX: &str = ".tmp-";

#[derive(Debug, Default)]
pub struct Ledger {
    dir: PathBuf,
    /// (name, bytes, modified), oldest first.
    files: VecDeque<(String, u64, SystemTime)>,
    total: u64,
}

impl Ledger {
    /// Lists `dir`'s evidence files (none if it cannot be read: the writer reports its
    /// own errors when it writes). Temp files of an interrupted write are deleted.
    pub fn scan(dir: &Path) -> Ledger {
        let mut files = Vec::new();
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let Ok(meta) = e.metadata() else { continue };
                if !meta.is_file() {
                    continue;
                }
                if name.starts_with(TEMP_PREFIX) {
                    let _ = std::fs::remove_file(e.path());
                    continue;
                }
                if Path::new(&name).extension().and_then(|x| x.to_str()) != Some(OWNED) {
                    continue;
                }
                let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                files.push((name, meta.len(), modified));
            }
        }
        // Oldest first; names (which start with the UTC time) break ties.
        files.sort_by(|a, b| a.2.cmp(&b.2).then_with(|| a.0.cmp(&b.0)));
        let total = files.iter().map(|f| f.1).sum();
        Ledger {
            dir: dir.to_path_buf(),
            files: files.into(),
            total,
        }
    }

    pub fn total_bytes(&self) -> u64 {
        self.total
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Records a file just written.
    pub fn add(&mut self, name: String, bytes: u64, at: SystemTime) {
        self.total = self.total.saturating_add(bytes);
        self.files.push_back((name, bytes, at));
    }

    /// Deletes the oldest files until the folder holds at most `max_bytes` and nothing
    /// older than `max_age`; returns how many were deleted. A file that cannot be deleted
    /// is forgotten (counted as gone) so one bad file cannot stop retention.
    pub fn enforce(&mut self, max_bytes: u64, max_age: Option<Duration>, now: SystemTime) -> u64 {
        let mut deleted = 0;
        while let Some((name, bytes, at)) = self.files.front() {
            let too_old = max_age.is_some_and(|a| now.duration_since(*at).is_ok_and(|age| age > a));
            if self.total <= max_bytes && !too_old {
                break;
            }
            match std::fs::remove_file(self.dir.join(name)) {
                Ok(()) => deleted += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!("evidence retention: cannot delete {name}: {e}"),
            }
            self.total = self.total.saturating_sub(*bytes);
            self.files.pop_front();
        }
        deleted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_within_size_and_age_and_remembers_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = SystemTime::now() - Duration::from_secs(1000);
        let mut l = Ledger::scan(dir.path());
        assert!(l.is_empty());
        for i in 0..10u64 {
            let name = format!("{i:02}.jpg");
            std::fs::write(dir.path().join(&name), vec![0u8; 100]).unwrap();
            l.add(name, 100, t0 + Duration::from_secs(i));
            l.enforce(450, None, t0);
        }
        assert_eq!((l.len(), l.total_bytes()), (4, 400));
        assert!(!dir.path().join("05.jpg").exists() && dir.path().join("06.jpg").exists());
        std::fs::write(dir.path().join(".tmp-x.jpg"), b"half").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"not ours").unwrap();
        // A restart sees the same four files (and clears the temp file).
        let mut again = Ledger::scan(dir.path());
        assert_eq!((again.len(), again.total_bytes()), (4, 400));
        assert!(!dir.path().join(".tmp-x.jpg").exists());
        // Age: everything is older than a second from now + 1 h.
        let later = SystemTime::now() + Duration::from_secs(3600);
        assert_eq!(
            again.enforce(u64::MAX, Some(Duration::from_secs(1)), later),
            4
        );
        assert!(dir.path().join("notes.txt").exists());
    }
}
