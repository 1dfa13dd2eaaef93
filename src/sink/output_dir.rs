//! The output folder of one scenario run, shared by its sinks: locked for the whole run,
//! and every file in it opened without following a link and created with the configured
//! mode.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::SinkError;

/// The lock file in every output folder; it holds the pid of the run that has the lock.
pub const LOCK_FILE: &str = "lineside.lock";

/// Mode of the files lineside creates (`[output] file_mode`): owner read/write, group read.
/// Defect logs name parts and lots; the rest of the machine has no business reading them.
pub const DEFAULT_FILE_MODE: u32 = 0o640;

/// Held while a run writes into its output folder; dropping it releases the lock.
#[derive(Debug)]
pub struct OutputLock {
    _file: File,
    dir: PathBuf,
}

impl OutputLock {
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Takes the output folder `dir` (created if missing) for this run, or says who has it.
///
/// `flock(2)` through std's `File::try_lock` (no crate, no `unsafe`): the kernel drops the
/// lock when the process dies, even by `kill -9`, so a crash never leaves a stale lock.
pub fn lock(dir: &Path, mode: u32) -> Result<OutputLock, SinkError> {
    if let Some(file) = super::file_in_the_way(dir) {
        return Err(SinkError::NotAFolder {
            dir: dir.to_path_buf(),
            file,
        });
    }
    std::fs::create_dir_all(dir).map_err(|source| SinkError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let path = dir.join(LOCK_FILE);
    let mut file = options(mode)
        .read(true)
        .write(true)
        .create(true)
        .truncate(false) // the holder's pid stays readable until we hold the lock
        .open(&path)
        .map_err(|e| open_error(&path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut text = String::new();
            let holder = file
                .read_to_string(&mut text)
                .ok()
                .and_then(|_| text.trim().parse().ok());
            return Err(SinkError::Locked {
                dir: dir.to_path_buf(),
                holder,
            });
        }
        Err(TryLockError::Error(source)) => return Err(SinkError::Write { path, source }),
    }
    // Our pid, for the message a second run prints.
    file.set_len(0)
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .map_err(|source| SinkError::Write { path, source })?;
    Ok(OutputLock {
        _file: file,
        dir: dir.to_path_buf(),
    })
}

/// Options for a file in the output folder: never through a link at the end of the path
/// (`O_NOFOLLOW`: a planted link would make lineside overwrite or truncate its target),
/// created with `mode` (less the umask).
pub fn options(mode: u32) -> OpenOptions {
    let mut o = OpenOptions::new();
    o.mode(mode).custom_flags(libc::O_NOFOLLOW);
    o
}

/// An open error, naming a link as such (`O_NOFOLLOW` fails with `ELOOP`).
pub fn open_error(path: &Path, source: std::io::Error) -> SinkError {
    if source.raw_os_error() == Some(libc::ELOOP) {
        SinkError::Symlink {
            path: path.to_path_buf(),
        }
    } else {
        SinkError::Write {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Refuses a symbolic link at `path` (a missing file is fine): for files that are only
/// replaced at the end of a run, so the run stops before it inspects anything.
pub fn refuse_link(path: &Path) -> Result<(), SinkError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(SinkError::Symlink {
            path: path.to_path_buf(),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_folder_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock(dir.path(), DEFAULT_FILE_MODE).unwrap();
        match lock(dir.path(), DEFAULT_FILE_MODE) {
            Err(SinkError::Locked { holder, .. }) => assert_eq!(holder, Some(std::process::id())),
            other => panic!("{other:?}"),
        }
        drop(held);
        lock(dir.path(), DEFAULT_FILE_MODE).unwrap();
    }
}
