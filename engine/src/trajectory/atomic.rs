//! Replacing a file atomically: readers see the old file or the complete new one, never a mix.
//!
//! The new contents go to a temporary file in the target's directory (so the final rename stays
//! on one file system), which is flushed and synced to disk before it is renamed over the
//! target; then the directory is synced so that the rename itself survives a crash (on Unix;
//! other platforms offer no portable way to sync a directory). Any failure before the rename
//! removes the temporary file and leaves the target as it was. Readers that memory-mapped the
//! old file keep reading it: a rename never changes the contents of a file already open.
//!
//! A writer killed mid-write (`kill -9`, a power cut) cannot remove its temporary file, so each
//! write first sweeps the temporary files of its target that such writers left: those whose
//! process no longer runs (on Linux, by `/proc`; elsewhere, those untouched for a day).

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

/// Where a writer's process cannot be looked up, how long its temporary file must have been
/// left untouched to count as a dead writer's.
#[cfg(not(target_os = "linux"))]
const STALE_AFTER: std::time::Duration = std::time::Duration::from_hours(24);

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

    sweep_stale_temp_files(dir, file_name.to_string_lossy().as_ref());
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

/// The process id in the name of a temporary file of `target_name`
/// (`.{target_name}.{pid}-{counter}.tmp`), if `file_name` is one.
fn temp_file_owner(file_name: &str, target_name: &str) -> Option<u32> {
    let rest = file_name.strip_prefix('.')?.strip_prefix(target_name)?.strip_prefix('.')?;
    let (pid, counter) = rest.strip_suffix(".tmp")?.split_once('-')?;
    counter.parse::<u64>().ok()?;
    pid.parse().ok()
}

/// Whether the writer that left `temp_path` (process `pid`) is gone.
fn writer_is_gone(pid: u32, temp_path: &Path) -> bool {
    if pid == std::process::id() {
        return false;
    }
    #[cfg(target_os = "linux")]
    {
        let _ = temp_path;
        !Path::new("/proc").join(pid.to_string()).exists()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        fs::metadata(temp_path)
            .and_then(|meta| meta.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age > STALE_AFTER)
    }
}

/// Removes the temporary files of `target_name` in `dir` whose writer is gone (best effort:
/// a file that cannot be listed or removed is left, and the write goes on).
fn sweep_stale_temp_files(dir: &Path, target_name: &str) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|name| temp_file_owner(name, target_name)) else { continue };
        let path = entry.path();
        if writer_is_gone(pid, &path) {
            let _ = fs::remove_file(&path);
        }
    }
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

    fn write_bytes(target: &Path, bytes: &[u8]) -> Result<(), TrajectoryError> {
        replace_file(target, |out| {
            out.write_all(bytes).map_err(|source| TrajectoryError::Io {
                path: target.to_owned(),
                action: "write",
                cause: source,
            })
        })
    }

    #[test]
    fn temporary_names_are_told_apart_from_other_files() {
        assert_eq!(temp_file_owner(".run.safetensors.123-0.tmp", "run.safetensors"), Some(123));
        assert_eq!(temp_file_owner(".run.safetensors.123-x.tmp", "run.safetensors"), None);
        assert_eq!(temp_file_owner(".other.safetensors.123-0.tmp", "run.safetensors"), None);
        assert_eq!(temp_file_owner("run.safetensors", "run.safetensors"), None);
        assert_eq!(temp_file_owner(".run.safetensors.123-0.tmp.bak", "run.safetensors"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_write_sweeps_what_dead_writers_left_and_keeps_what_live_ones_write() {
        let dir = tempfile::tempdir().expect("temp dir");
        let target = dir.path().join("run.safetensors");
        // No process has a pid this large (Linux caps pids at 2^22).
        let dead = dir.path().join(".run.safetensors.4294967000-0.tmp");
        // This process is alive: a concurrent write of its own must not be touched.
        let live = dir.path().join(format!(".run.safetensors.{}-999999.tmp", std::process::id()));
        let unrelated = dir.path().join(".other.safetensors.4294967000-0.tmp");
        for path in [&dead, &live, &unrelated] {
            fs::write(path, vec![0; 1000]).expect("write debris");
        }
        write_bytes(&target, b"new").expect("replace");
        let mut expected = vec![
            ".other.safetensors.4294967000-0.tmp".to_owned(),
            live.file_name().expect("a name").to_string_lossy().into_owned(),
            "run.safetensors".to_owned(),
        ];
        expected.sort();
        assert_eq!(dir_entries(dir.path()), expected);
    }

    /// The child half of the test below: writes into a temporary file and never finishes.
    #[test]
    fn writer_that_hangs_mid_write() {
        let Some(target) = std::env::var_os("STEPSCOPE_HANGING_WRITER") else { return };
        let target = PathBuf::from(target);
        let _ = replace_file(&target, |out| {
            out.write_all(&vec![1; 1 << 20]).expect("write");
            out.flush().expect("flush");
            std::thread::sleep(std::time::Duration::from_mins(10));
            Ok(())
        });
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_writer_killed_mid_write_leaves_nothing_after_the_next_write() {
        let dir = tempfile::tempdir().expect("temp dir");
        let target = dir.path().join("run.safetensors");
        let mut child = std::process::Command::new(std::env::current_exe().expect("this test binary"))
            .args(["--exact", "trajectory::atomic::tests::writer_that_hangs_mid_write", "--nocapture"])
            .env("STEPSCOPE_HANGING_WRITER", &target)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the writer");
        // Wait for its temporary file to hold the megabyte, then kill it (SIGKILL: no cleanup).
        let deadline = std::time::Instant::now() + std::time::Duration::from_mins(1);
        loop {
            let written = fs::read_dir(dir.path())
                .expect("readable dir")
                .flatten()
                .any(|entry| entry.metadata().is_ok_and(|meta| meta.len() >= 1 << 20));
            if written {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the writer never wrote");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        child.kill().expect("kill the writer");
        child.wait().expect("reap the writer");
        assert_eq!(dir_entries(dir.path()).len(), 1, "the killed writer left its temporary file");
        write_bytes(&target, b"next").expect("the next write");
        assert_eq!(dir_entries(dir.path()), ["run.safetensors"]);
        assert_eq!(fs::read(&target).expect("read"), b"next");
    }

    #[test]
    fn a_target_in_a_missing_directory_is_an_io_error_naming_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let target = dir.path().join("no-such-dir").join("run.safetensors");
        let error = replace_file(&target, |_| Ok(())).expect_err("must fail");
        assert!(error.to_string().contains("no-such-dir"), "{error}");
    }
}
