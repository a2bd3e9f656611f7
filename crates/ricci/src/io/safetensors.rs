//! safetensors files (the Hugging Face format for model weights).
//!
//! A file is a u64 LE header length `n`, `n` bytes of JSON mapping each
//! tensor name to `{"dtype", "shape", "data_offsets": [begin, end]}` (plus an
//! optional `"__metadata__"` map of strings), then the data: each tensor
//! row-major and little-endian, at offsets relative to the end of the
//! header, packed with no gaps or overlaps.
//!
//! Files are memory-mapped and every entry is checked against the real data
//! length before anything is copied out. F32 and F64 are read as they are;
//! F16 and BF16 are widened to F32 (exactly: every half value is an f32);
//! other dtypes are refused. Header types and JSON come from the
//! `safetensors` crate; the checks are ours, so errors name the tensor.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Write;
use std::path::Path;

use ::safetensors::tensor::{Metadata, TensorInfo};
use ::safetensors::Dtype;

use super::atomic::write_atomic_with;
use super::npy::write_le;
use crate::error::{Error, Result};
use crate::tensor::{DType, Tensor};

/// The safetensors crate's own limit on the JSON header.
const MAX_HEADER_LEN: u64 = 100_000_000;

/// Reads every tensor of a safetensors file, in file (offset) order.
///
/// F16 and BF16 tensors become F32; other non-float dtypes are an error
/// naming the tensor.
///
/// ```
/// # use ricci::{io, Tensor};
/// let path = std::env::temp_dir().join("ricci_doc_read_safetensors.safetensors");
/// let w = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
/// let b = Tensor::from_vec(vec![0.5f64], &[1])?;
/// io::write_safetensors(&path, &[("w", &w), ("b", &b)], None)?;
/// let tensors = io::read_safetensors(&path)?;
/// let (_, w2) = tensors.iter().find(|(n, _)| n == "w").unwrap();
/// assert_eq!(w2.to_vec::<f32>()?, vec![1.0, 2.0, 3.0, 4.0]);
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn read_safetensors(path: impl AsRef<Path>) -> Result<Vec<(String, Tensor)>> {
    read_safetensors_where(path, |_| true)
}

/// Reads the tensors whose names `keep` accepts, in file order. Skipped
/// entries may have any dtype (a Hugging Face checkpoint's I64
/// `position_ids` buffer, say) and are not copied; the file is still
/// checked whole.
///
/// ```
/// # use ricci::{io, Tensor};
/// let path = std::env::temp_dir().join("ricci_doc_read_safetensors_where.safetensors");
/// let a = Tensor::from_vec(vec![1.0f32, 2.0], &[2])?;
/// io::write_safetensors(&path, &[("a", &a), ("b", &a)], None)?;
/// let only_a = io::read_safetensors_where(&path, |name| name == "a")?;
/// assert_eq!(only_a.len(), 1);
/// assert_eq!(only_a[0].0, "a");
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn read_safetensors_where(
    path: impl AsRef<Path>,
    keep: impl Fn(&str) -> bool,
) -> Result<Vec<(String, Tensor)>> {
    with_mapped(path.as_ref(), |bytes, what| {
        let parsed = parse(bytes, what, &keep)?;
        let data = &bytes[parsed.data_start..];
        let mut out = Vec::with_capacity(parsed.tensors.len());
        for (name, info) in parsed.tensors.into_iter().filter(|(n, _)| keep(n)) {
            let (begin, end) = info.data_offsets;
            let tensor = to_tensor(&info, &data[begin..end])?;
            out.push((name, tensor));
        }
        Ok(out)
    })
}

/// Reads every floating-point tensor of a safetensors file (F32, F64, and
/// F16/BF16 as F32), in file order, skipping integer and boolean ones
/// (buffers such as a Hugging Face checkpoint's `position_ids`): the
/// weights of any model file.
///
/// ```
/// # use ricci::{io, Tensor};
/// let path = std::env::temp_dir().join("ricci_doc_read_safetensors_floats.safetensors");
/// io::write_safetensors(&path, &[("w", &Tensor::from_vec(vec![1.0f32, 2.0], &[2])?)], None)?;
/// assert_eq!(io::read_safetensors_floats(&path)?.len(), 1);
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn read_safetensors_floats(path: impl AsRef<Path>) -> Result<Vec<(String, Tensor)>> {
    with_mapped(path.as_ref(), |bytes, what| {
        let parsed = parse(bytes, what, &|_| false)?;
        let data = &bytes[parsed.data_start..];
        parsed
            .tensors
            .into_iter()
            .filter(|(_, info)| {
                matches!(
                    info.dtype,
                    Dtype::F32 | Dtype::F64 | Dtype::F16 | Dtype::BF16
                )
            })
            .map(|(name, info)| {
                let (begin, end) = info.data_offsets;
                Ok((name, to_tensor(&info, &data[begin..end])?))
            })
            .collect()
    })
}

/// The `__metadata__` map of a safetensors file (empty when absent).
///
/// ```
/// # use std::collections::HashMap;
/// # use ricci::{io, Tensor};
/// let path = std::env::temp_dir().join("ricci_doc_safetensors_metadata.safetensors");
/// let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
/// io::write_safetensors(&path, &[("x", &Tensor::scalar(1.0f32))], Some(&meta))?;
/// assert_eq!(io::read_safetensors_metadata(&path)?, meta);
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn read_safetensors_metadata(path: impl AsRef<Path>) -> Result<HashMap<String, String>> {
    with_mapped(path.as_ref(), |bytes, what| {
        Ok(parse(bytes, what, &|_| true)?.metadata)
    })
}

/// Writes `tensors` (any views) and optional string `metadata` to a
/// safetensors file, atomically.
///
/// F64 tensors are stored before F32 ones (each group in the given order),
/// so every tensor's data is aligned to its element size for zero-copy
/// readers. Names must be unique and not `__metadata__`.
///
/// ```
/// # use ricci::{io, DType, Tensor};
/// let path = std::env::temp_dir().join("ricci_doc_write_safetensors.safetensors");
/// let x = Tensor::arange(0.0, 6.0, 1.0, DType::F64)?.reshape([2, 3])?;
/// io::write_safetensors(&path, &[("x", &x.t()?)], None)?;
/// let back = io::read_safetensors(&path)?;
/// assert_eq!(back[0].1.shape(), &[3, 2]);
/// assert_eq!(back[0].1.to_vec::<f64>()?, x.t()?.to_vec::<f64>()?);
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn write_safetensors(
    path: impl AsRef<Path>,
    tensors: &[(&str, &Tensor)],
    metadata: Option<&HashMap<String, String>>,
) -> Result<()> {
    const OP: &str = "write_safetensors";
    let mut seen = HashSet::new();
    for (name, _) in tensors {
        if *name == "__metadata__" || !seen.insert(*name) {
            return Err(Error::invalid(
                OP,
                format!("tensor name '{name}' is reserved or repeated"),
            ));
        }
    }
    let mut order: Vec<&(&str, &Tensor)> = tensors.iter().collect();
    order.sort_by_key(|(_, t)| std::cmp::Reverse(t.dtype().size_in_bytes()));
    let mut infos = Vec::with_capacity(order.len());
    let mut offset = 0usize;
    for (name, t) in &order {
        let end = t
            .numel()
            .checked_mul(t.dtype().size_in_bytes())
            .and_then(|n| n.checked_add(offset))
            .ok_or_else(|| Error::invalid(OP, "total size overflows usize"))?;
        let dtype = match t.dtype() {
            DType::F32 => Dtype::F32,
            DType::F64 => Dtype::F64,
        };
        let shape = t.shape().to_vec();
        infos.push((
            name.to_string(),
            TensorInfo {
                dtype,
                shape,
                data_offsets: (offset, end),
            },
        ));
        offset = end;
    }
    let header = Metadata::new(metadata.cloned(), infos)
        .map_err(|e| Error::invalid(OP, e.to_string()))
        .and_then(|m| serde_json::to_vec(&m).map_err(|e| Error::invalid(OP, e.to_string())))?;
    // Pad with spaces so the data starts 8-byte aligned, as the format asks.
    let mut header = header;
    header.resize(header.len().next_multiple_of(8), b' ');
    write_atomic_with(path, |w| {
        w.write_all(&(header.len() as u64).to_le_bytes())?;
        w.write_all(&header)?;
        order.iter().try_for_each(|(_, t)| write_le(w, t))
    })
}

/// Maps the file at `path` read-only and hands its bytes to `f`.
fn with_mapped<T>(path: &Path, f: impl FnOnce(&[u8], &str) -> Result<T>) -> Result<T> {
    let what = format!("safetensors file {}", path.display());
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if len < 8 {
        // Also spares us mapping an empty file, which some systems refuse.
        return Err(Error::format(
            what,
            format!("truncated at byte {len}: the file must start with an 8-byte header length"),
        ));
    }
    // SAFETY: the map is read-only and dropped before we return; tensors get
    // copies of their bytes. Another process truncating the file while we
    // read is beyond what any mmap reader can guard against; ricci's own
    // writers replace files by rename, which leaves an open map intact.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    f(&map, &what)
}

/// A validated header: tensors sorted by offset, and where the data starts.
struct Parsed {
    metadata: HashMap<String, String>,
    tensors: Vec<(String, TensorInfo)>,
    data_start: usize,
}

/// Parses and checks the header of the safetensors file `bytes`: every
/// tensor that `keep` accepts has a dtype we read, every tensor has a shape
/// matching its byte span, and spans tile the data exactly.
fn parse(bytes: &[u8], what: &str, keep: &dyn Fn(&str) -> bool) -> Result<Parsed> {
    let bad = |msg: String| Error::format(what, msg);
    let len = bytes.len();
    let mut n = [0u8; 8];
    n.copy_from_slice(
        bytes
            .get(..8)
            .ok_or_else(|| bad(format!("truncated at byte {len}")))?,
    );
    let header_len = u64::from_le_bytes(n);
    if header_len > MAX_HEADER_LEN {
        return Err(bad(format!(
            "header length {header_len} exceeds the limit of {MAX_HEADER_LEN} bytes"
        )));
    }
    let data_start = 8 + header_len as usize;
    let text = bytes.get(8..data_start).ok_or_else(|| {
        bad(format!(
            "truncated at byte {len}: the header claims to end at byte {data_start}"
        ))
    })?;
    let text = std::str::from_utf8(text).map_err(|e| bad(format!("header is not UTF-8: {e}")))?;
    let entries: HashMap<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| bad(format!("invalid JSON header: {e}")))?;
    let mut metadata = HashMap::new();
    let mut tensors = Vec::with_capacity(entries.len());
    for (name, value) in entries {
        if name == "__metadata__" {
            metadata = serde_json::from_value(value)
                .map_err(|e| bad(format!("__metadata__ must map strings to strings: {e}")))?;
            continue;
        }
        let info: TensorInfo = serde_json::from_value(value)
            .map_err(|e| bad(format!("tensor '{name}': bad entry: {e}")))?;
        tensors.push((name, info));
    }
    // Empty tensors share offsets; their names settle the order.
    tensors.sort_by(|(a, x), (b, y)| (x.data_offsets, a).cmp(&(y.data_offsets, b)));
    let data_len = len - data_start;
    let mut covered = 0usize;
    for (name, info) in &tensors {
        let (begin, end) = info.data_offsets;
        let at = |msg: String| {
            bad(format!(
                "tensor '{name}': data_offsets [{begin}, {end}] {msg}"
            ))
        };
        if end > data_len || begin > end {
            return Err(at(format!(
                "are out of range for the {data_len} data bytes (file truncated?)"
            )));
        }
        if begin != covered {
            let how = if begin > covered {
                "leave a gap"
            } else {
                "overlap the previous tensor"
            };
            return Err(at(format!("{how}: expected to begin at {covered}")));
        }
        if keep(name)
            && !matches!(
                info.dtype,
                Dtype::F32 | Dtype::F64 | Dtype::F16 | Dtype::BF16
            )
        {
            return Err(bad(format!(
                "tensor '{name}' has dtype {:?}, which ricci cannot read \
                 (F32, F64, F16, BF16 are supported)",
                info.dtype
            )));
        }
        let nbytes = info
            .shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .and_then(|numel| numel.checked_mul(info.dtype.bitsize() / 8));
        if nbytes != Some(end - begin) {
            return Err(at(format!(
                "span {} bytes, but shape {:?} of {:?} needs {}",
                end - begin,
                info.shape,
                info.dtype,
                nbytes.map_or("more than usize::MAX".to_string(), |n| n.to_string())
            )));
        }
        covered = end;
    }
    if covered != data_len {
        return Err(bad(format!(
            "the tensors cover {covered} bytes but {data_len} follow the header"
        )));
    }
    Ok(Parsed {
        metadata,
        tensors,
        data_start,
    })
}

/// Decodes one checked tensor entry.
fn to_tensor(info: &TensorInfo, bytes: &[u8]) -> Result<Tensor> {
    fn decode<const N: usize, T>(bytes: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
        let word = |c: &[u8]| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            a
        };
        bytes.chunks_exact(N).map(|c| f(word(c))).collect()
    }
    let shape = &info.shape;
    match info.dtype {
        Dtype::F64 => Tensor::from_vec(decode(bytes, f64::from_le_bytes), shape),
        Dtype::F32 => Tensor::from_vec(decode(bytes, f32::from_le_bytes), shape),
        Dtype::F16 => Tensor::from_vec(decode(bytes, |a| f16_to_f32(u16::from_le_bytes(a))), shape),
        Dtype::BF16 => {
            Tensor::from_vec(decode(bytes, |a| bf16_to_f32(u16::from_le_bytes(a))), shape)
        }
        other => Err(Error::invalid(
            "read_safetensors",
            format!("dtype {other:?}"),
        )),
    }
}

/// IEEE 754 binary16 to f32 (exact).
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let mant = u32::from(h & 0x3ff);
    match exp {
        0 => {
            // Zero or subnormal: mant * 2^-24, exact in f32.
            let magnitude = mant as f32 * f32::from_bits(0x3380_0000);
            if sign != 0 {
                -magnitude
            } else {
                magnitude
            }
        }
        // Infinity or NaN (the payload moves to the top of f32's mantissa).
        0x1f => f32::from_bits(sign | 0x7f80_0000 | (mant << 13)),
        // Normal: rebias the exponent from 15 to 127.
        _ => f32::from_bits(sign | ((exp + 112) << 23) | (mant << 13)),
    }
}

/// bfloat16 to f32: bfloat16 is the top half of an f32.
pub(crate) fn bf16_to_f32(b: u16) -> f32 {
    f32::from_bits(u32::from(b) << 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_conversion_matches_known_values() {
        let cases = [
            (0x0000, 0.0f32),
            (0x8000, -0.0),
            (0x3c00, 1.0),
            (0xc000, -2.0),
            (0x3555, 1365.0 / 4096.0), // nearest to 1/3
            (0x7bff, 65504.0),
            (0x0001, 1.0 / 16_777_216.0),    // smallest subnormal, 2^-24
            (0x03ff, 1023.0 / 16_777_216.0), // largest subnormal
            (0x7c00, f32::INFINITY),
            (0xfc00, f32::NEG_INFINITY),
        ];
        for (bits, want) in cases {
            assert_eq!(
                f16_to_f32(bits).to_bits(),
                want.to_bits(),
                "f16 bits {bits:#06x}"
            );
        }
        assert!(f16_to_f32(0x7e00).is_nan());
    }

    #[test]
    fn bf16_conversion_keeps_the_top_half() {
        assert_eq!(bf16_to_f32(0x3f80), 1.0);
        assert_eq!(bf16_to_f32(0xc040), -3.0);
        assert_eq!(bf16_to_f32(0x7f80), f32::INFINITY);
    }
}
