//! NumPy `.npz` archives: a zip file holding one `.npy` file per array, as
//! `np.savez` (stored) and `np.savez_compressed` (deflate) write them.
//!
//! Each entry's declared size is checked against what its compressed bytes
//! can hold (deflate expands at most 1032 times) before the npy reader
//! trusts it, and the zip reader checks every entry's CRC-32.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufReader};
use std::path::Path;

use zip::result::ZipError;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

use super::atomic::write_atomic_with;
use super::npy::{npy_len, read_npy_from, write_npy_to, Source};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// The most a deflate stream can expand: 258 bytes from 2 bits.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// Reads every array of an `.npz` archive, in archive order, with names
/// stripped of their `.npy` suffix (dtypes as in [`read_npy`](super::read_npy)).
///
/// ```
/// # use ricci::{io, Tensor};
/// let path = std::env::temp_dir().join("ricci_doc_read_npz.npz");
/// let w = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
/// let b = Tensor::from_vec(vec![0.5f64, -0.5], &[2])?;
/// io::write_npz(&path, &[("w", &w), ("b", &b)])?;
/// let arrays = io::read_npz(&path)?;
/// assert_eq!(arrays[0].0, "w");
/// assert_eq!(arrays[1].1.to_vec::<f64>()?, vec![0.5, -0.5]);
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn read_npz(path: impl AsRef<Path>) -> Result<Vec<(String, Tensor)>> {
    let path = path.as_ref();
    let what = format!("npz file {}", path.display());
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let zip_err = |what: &str, e: ZipError| match e {
        ZipError::Io(e) => Error::io(path, e),
        e => Error::format(what, format!("not a readable zip archive: {e}")),
    };
    let mut archive = ZipArchive::new(BufReader::new(file)).map_err(|e| zip_err(&what, e))?;
    let mut out = Vec::new();
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(|e| zip_err(&what, e))?;
        if entry.is_dir() {
            continue;
        }
        let name = entry.name().map_err(|e| zip_err(&what, e))?.into_owned();
        let entry_what = format!("{what}, entry '{name}'");
        let (size, packed) = (entry.size(), entry.compressed_size());
        let limit = match entry.compression() {
            CompressionMethod::Stored => packed,
            CompressionMethod::Deflated => packed.saturating_mul(MAX_DEFLATE_RATIO),
            other => {
                return Err(Error::format(
                    entry_what,
                    format!("unsupported compression {other}"),
                ));
            }
        };
        if packed > file_len || size > limit {
            return Err(Error::format(
                entry_what,
                format!(
                    "declares {size} bytes from {packed} {} bytes in a {file_len}-byte file",
                    entry.compression()
                ),
            ));
        }
        let io_err = |e: io::Error| match e.kind() {
            // A CRC mismatch (InvalidData) or bad deflate data (InvalidInput).
            io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput => {
                Error::format(entry_what.as_str(), format!("corrupt entry: {e}"))
            }
            _ => Error::io(path, e),
        };
        let src = Source {
            what: &entry_what,
            len: size,
            io_err: &io_err,
        };
        let tensor = read_npy_from(&mut entry, &src, None)?;
        let key = name.strip_suffix(".npy").unwrap_or(&name).to_string();
        out.push((key, tensor));
    }
    Ok(out)
}

/// Writes `arrays` to an uncompressed `.npz` archive (as `np.savez` does),
/// atomically; `name` becomes the entry `name.npy`.
///
/// ```
/// # use ricci::{io, DType, Tensor};
/// let path = std::env::temp_dir().join("ricci_doc_write_npz.npz");
/// let x = Tensor::eye(3, DType::F64);
/// io::write_npz(&path, &[("identity", &x)])?;
/// assert_eq!(io::read_npz(&path)?[0].1.to_vec::<f64>()?, x.to_vec::<f64>()?);
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn write_npz(path: impl AsRef<Path>, arrays: &[(&str, &Tensor)]) -> Result<()> {
    let mut seen = HashSet::new();
    for (name, _) in arrays {
        if name.is_empty() || !seen.insert(*name) {
            return Err(Error::invalid(
                "write_npz",
                format!("array name '{name}' is empty or repeated"),
            ));
        }
    }
    write_atomic_with(path, |w| {
        let mut zip = ZipWriter::new(w);
        for (name, tensor) in arrays {
            // A fixed date keeps the archive byte-for-byte reproducible.
            let options = SimpleFileOptions::default()
                .compression_method(CompressionMethod::Stored)
                .last_modified_time(DateTime::default())
                .large_file(npy_len(tensor) >= u64::from(u32::MAX));
            zip.start_file(format!("{name}.npy"), options)
                .map_err(io::Error::from)?;
            write_npy_to(&mut zip, tensor)?;
        }
        zip.finish().map_err(io::Error::from)?;
        Ok(())
    })
}
