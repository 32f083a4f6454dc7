//! Replacing a file atomically: readers see the old file or the complete new one, never a mix.
//!
//! The new contents go to a temporary file in the target's directory (so the final rename stays
//! on one file system), which is flushed and synced to disk before it is renamed over the
//! target; then the directory is synced so that the rename itself survives a crash (on Unix;
//! other platforms offer no portable way to sync a directory). Any failure before the rename
//! removes the temporary file and leaves the target as it was. Readers that memory-mapped the
//! old file keep reading it: a rename never changes the contents of a file already open.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::TrajectoryError;

/// How many temporary names to try before giving up (they only collide with leftovers of a
/// crashed process that had the same process id).
const TEMP_NAME_ATTEMPTS: u64 = 16;

/// Distinguishes the temporary files of concurrent writes within this process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Replaces `path` with `bytes`, atomically (for the command line's CSV and PNG outputs).
pub fn replace_file_with(path: &Path, bytes: &[u8]) -> Result<(), TrajectoryError> {
    replace_file(path, |out| {
        io::Write::write_all(out, bytes).map_err(|source| TrajectoryError::Io {
            path: path.to_owned(),
            action: "write the temporary file",
            cause: source,
        })
    })
}

/// Replaces `path` with what `write_contents` writes, atomically.
///
/// On error, `path` is untouched and no temporary file is left behind, except when syncing the
/// directory fails after the rename: then the new file is in place but may not survive a crash,
/// and the error says so.
pub(crate) fn replace_file<F>(path: &Path, write_contents: F) -> Result<(), TrajectoryError>
where
    F: FnOnce(&mut BufWriter<File>) -> Result<(), TrajectoryError>,
{
    let io_error = |action, source| TrajectoryError::Io { path: path.to_owned(), action, cause: source };
    let file_name = path.file_name().ok_or_else(|| {
        io_error("write the file", io::Error::new(ErrorKind::InvalidInput, "the path does not name a file"))
    })?;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };

    let (temp_path, temp_file) = create_temp_file(dir, file_name.to_string_lossy().as_ref())
        .map_err(|source| io_error("create a temporary file next to the target", source))?;
    let mut temp_guard = RemoveOnDrop { path: temp_path, armed: true };

    let mut out = BufWriter::new(temp_file);
    write_contents(&mut out)?;
    let temp_file =
        out.into_inner().map_err(|error| io_error("write the temporary file", error.into_error()))?;
    temp_file.sync_all().map_err(|source| io_error("sync the temporary file to disk", source))?;
    drop(temp_file);

    fs::rename(&temp_guard.path, path)
        .map_err(|source| io_error("rename the temporary file over the target", source))?;
    temp_guard.armed = false;

    sync_dir(dir).map_err(|source| TrajectoryError::Io {
        path: dir.to_owned(),
        action: "sync the directory after renaming the new file into place (the new file is there, \
                 but may not survive a crash)",
        cause: source,
    })
}

/// Creates a new, empty, hidden file in `dir` whose name derives from `target_name`.
fn create_temp_file(dir: &Path, target_name: &str) -> io::Result<(PathBuf, File)> {
    let process_id = std::process::id();
    let mut last_error = io::Error::new(ErrorKind::AlreadyExists, "every temporary name was taken");
    for _ in 0..TEMP_NAME_ATTEMPTS {
        let counter = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp_path = dir.join(format!(".{target_name}.{process_id}-{counter}.tmp"));
        match OpenOptions::new().write(true).create_new(true).open(&temp_path) {
            Ok(file) => return Ok((temp_path, file)),
            Err(error) if error.kind() == ErrorKind::AlreadyExists => last_error = error,
            Err(error) => return Err(error),
        }
    }
    Err(last_error)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
#[expect(clippy::unnecessary_wraps, reason = "same signature as the Unix version")]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// Removes the temporary file when a write fails part-way.
struct RemoveOnDrop {
    path: PathBuf,
    /// Cleared once the file has been renamed into place.
    armed: bool,
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if self.armed {
            // Best effort: the write already failed, and that error is the one to report.
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn dir_entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .expect("readable dir")
            .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_the_target_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let target = dir.path().join("run.safetensors");
        fs::write(&target, b"old").expect("write old");
        replace_file(&target, |out| {
            out.write_all(b"new contents").map_err(|source| TrajectoryError::Io {
                path: target.clone(),
                action: "write",
                cause: source,
            })
        })
        .expect("replace");
        assert_eq!(fs::read(&target).expect("read"), b"new contents");
        assert_eq!(dir_entries(dir.path()), ["run.safetensors"]);
    }

    #[test]
    fn a_failure_part_way_leaves_the_old_file_and_no_temporary_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let target = dir.path().join("run.safetensors");
        fs::write(&target, b"old contents").expect("write old");
        let result = replace_file(&target, |out| {
            out.write_all(&vec![7; 100_000]).expect("buffered write");
            out.flush().expect("flush");
            Err(TrajectoryError::Io {
                path: target.clone(),
                action: "write",
                cause: io::Error::other("injected failure"),
            })
        });
        assert!(matches!(result, Err(TrajectoryError::Io { action: "write", .. })));
        assert_eq!(fs::read(&target).expect("read"), b"old contents");
        assert_eq!(dir_entries(dir.path()), ["run.safetensors"]);
    }

    #[test]
    fn a_target_in_a_missing_directory_is_an_io_error_naming_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let target = dir.path().join("no-such-dir").join("run.safetensors");
        let error = replace_file(&target, |_| Ok(())).expect_err("must fail");
        assert!(error.to_string().contains("no-such-dir"), "{error}");
    }
}
