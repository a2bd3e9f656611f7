//! Atomic file writes: a reader sees the old file or the new one, never half
//! of one.
//!
//! The bytes go to a temporary file in the destination's directory (a rename
//! is atomic only within one file system), which is flushed and `fsync`ed
//! before it is renamed over the destination; on Unix the directory is then
//! synced too, so the rename itself survives a power cut. On any error the
//! temporary file is removed and the destination is left untouched.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename).
///
/// ```
/// let path = std::env::temp_dir().join("ricci_doc_write_atomic.txt");
/// ricci::io::write_atomic(&path, b"hello")?;
/// assert_eq!(std::fs::read(&path).unwrap(), b"hello");
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Streams a file to `path` atomically: `write` fills a buffered temporary
/// file (which is also `Seek`, as zip writers need), then it is synced and
/// renamed over `path`. Use it for outputs too large to build in memory.
///
/// ```
/// use std::io::Write;
/// let path = std::env::temp_dir().join("ricci_doc_write_atomic_with.txt");
/// ricci::io::write_atomic_with(&path, |w| {
///     for i in 0..3 {
///         writeln!(w, "line {i}")?;
///     }
///     Ok(())
/// })?;
/// assert_eq!(std::fs::read_to_string(&path).unwrap(), "line 0\nline 1\nline 2\n");
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn write_atomic_with<F>(path: impl AsRef<Path>, write: F) -> Result<()>
where
    F: FnOnce(&mut BufWriter<File>) -> io::Result<()>,
{
    let path = path.as_ref();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path.file_name().ok_or_else(|| {
        Error::io(
            path,
            io::Error::new(io::ErrorKind::InvalidInput, "not a file path"),
        )
    })?;
    // A failure to create the temporary file is reported on `path`: the
    // temporary name means nothing to the caller.
    let (tmp_path, file) =
        create_temp(&dir, &file_name.to_string_lossy()).map_err(|e| Error::io(path, e))?;
    let result = fill_and_sync(file, write).and_then(|()| fs::rename(&tmp_path, path));
    if let Err(err) = result {
        // The temporary file is ours and useless now; a failure to remove it
        // must not hide the error that matters.
        let _ = fs::remove_file(&tmp_path);
        return Err(Error::io(path, err));
    }
    sync_dir(&dir);
    Ok(())
}

/// Creates `.NAME.tmp.PID.N` in `dir` (never an existing file).
fn create_temp(dir: &Path, name: &str) -> io::Result<(PathBuf, File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.tmp.{}.{n}", std::process::id()));
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(file) => return Ok((tmp, file)),
            // Left over by a crashed process with our pid: take the next name.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

fn fill_and_sync<F>(file: File, write: F) -> io::Result<()>
where
    F: FnOnce(&mut BufWriter<File>) -> io::Result<()>,
{
    let mut w = BufWriter::with_capacity(1 << 20, file);
    write(&mut w)?;
    w.flush()?;
    let file = w.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()
}

/// Makes the rename durable. Best effort: some file systems refuse to sync a
/// directory, and the data itself is already safe.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}
