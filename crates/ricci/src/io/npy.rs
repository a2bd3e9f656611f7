//! NumPy `.npy` files (`numpy.lib.format`).
//!
//! A file is the magic `\x93NUMPY`, a major and a minor version byte, the
//! header length (u16 LE in version 1.0, u32 LE in 2.0 and 3.0) and the
//! header: a Python dict literal such as
//! `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`, padded
//! with spaces and a newline so the data starts at a multiple of 64 bytes
//! (latin-1 in 1.0 and 2.0, UTF-8 in 3.0). The raw elements follow, in C
//! (row-major) or Fortran (column-major) order.
//!
//! Reading accepts floats `f2 f4 f8`, integers `i1..i8`, `u1..u8` and bools
//! `b1`, little- or big-endian, in either order. `f2`/`f4` become
//! [`DType::F32`]; everything else becomes [`DType::F64`], exact for f8, all
//! 32-bit integers and 64-bit integers up to 2^53 in magnitude (larger ones
//! round); bools become 0 and 1. [`read_npy_as`] picks the dtype instead.
//! Writing produces version 1.0 (2.0 when the header needs it), `<f4` or
//! `<f8`, C order.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use super::atomic::write_atomic_with;
use super::safetensors::f16_to_f32;
use crate::error::{Error, Result};
use crate::tensor::{with_dtype, with_type, DType, Element, Tensor};

const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// The largest header we parse; numpy itself refuses headers over 10 000
/// bytes unless asked, so this only stops a hostile length field.
const MAX_HEADER_LEN: u64 = 1 << 20;
/// numpy's own limit on the number of dimensions.
const MAX_RANK: usize = 64;
/// Bytes read and decoded at a time (a multiple of every element size).
const CHUNK: usize = 1 << 16;

/// Reads a `.npy` file (dtypes as in the [`io`](crate::io) module docs).
///
/// ```
/// # use ricci::{io, Tensor};
/// let path = std::env::temp_dir().join("ricci_doc_read_npy.npy");
/// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
/// io::write_npy(&path, &x)?;
/// let y = io::read_npy(&path)?;
/// assert_eq!(y.shape(), &[2, 3]);
/// assert_eq!(y.to_vec::<f32>()?, x.to_vec::<f32>()?);
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn read_npy(path: impl AsRef<Path>) -> Result<Tensor> {
    read_npy_file(path.as_ref(), None)
}

/// Reads a `.npy` file into a tensor of `dtype`, whatever the stored type.
///
/// ```
/// # use ricci::{io, DType, Tensor};
/// let path = std::env::temp_dir().join("ricci_doc_read_npy_as.npy");
/// io::write_npy(&path, &Tensor::from_vec(vec![0.5f64, 1.5], &[2])?)?;
/// let y = io::read_npy_as(&path, DType::F32)?;
/// assert_eq!(y.to_vec::<f32>()?, vec![0.5, 1.5]);
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn read_npy_as(path: impl AsRef<Path>, dtype: DType) -> Result<Tensor> {
    read_npy_file(path.as_ref(), Some(dtype))
}

/// Writes `tensor` as a C-order `.npy` file, atomically (any view works).
///
/// ```
/// # use ricci::{io, Tensor};
/// let path = std::env::temp_dir().join("ricci_doc_write_npy.npy");
/// let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[2, 2])?;
/// io::write_npy(&path, &x.t()?)?; // written as the transpose's values
/// assert_eq!(io::read_npy(&path)?.to_vec::<f64>()?, vec![1.0, 3.0, 2.0, 4.0]);
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn write_npy(path: impl AsRef<Path>, tensor: &Tensor) -> Result<()> {
    write_atomic_with(path, |w| write_npy_to(w, tensor))
}

/// Parses the bytes of a `.npy` file.
///
/// ```
/// # use ricci::{io, Tensor};
/// let bytes = io::npy_to_bytes(&Tensor::scalar(2.5f32));
/// let x = io::npy_from_bytes(&bytes)?;
/// assert_eq!((x.rank(), x.to_scalar::<f32>()?), (0, 2.5));
/// assert!(io::npy_from_bytes(b"not an npy file").is_err());
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn npy_from_bytes(bytes: &[u8]) -> Result<Tensor> {
    let what = "npy data";
    let src = Source {
        what,
        len: bytes.len() as u64,
        io_err: &|e| Error::format(what, e.to_string()),
    };
    read_npy_from(&mut &bytes[..], &src, None)
}

/// The bytes of a C-order `.npy` file holding `tensor` (as numpy writes it).
///
/// ```
/// # use ricci::{io, Tensor};
/// let bytes = io::npy_to_bytes(&Tensor::from_vec(vec![1.0f64, 2.0], &[2])?);
/// assert!(bytes.starts_with(b"\x93NUMPY\x01\x00"));
/// assert_eq!(bytes.len(), 128 + 2 * 8); // 64-byte aligned header, then data
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn npy_to_bytes(tensor: &Tensor) -> Vec<u8> {
    let mut out = Vec::with_capacity(npy_len(tensor) as usize);
    let written = write_npy_to(&mut out, tensor);
    debug_assert!(written.is_ok(), "writing into a Vec cannot fail");
    out
}

fn read_npy_file(path: &Path, dtype: Option<DType>) -> Result<Tensor> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let what = format!("npy file {}", path.display());
    let src = Source {
        what: &what,
        len,
        io_err: &|e| Error::io(path, e),
    };
    read_npy_from(&mut BufReader::new(file), &src, dtype)
}

/// Where npy bytes come from: a name for errors, the stream's length (the
/// real size of a file, or the declared size of a zip entry), and how to
/// report an I/O error.
pub(crate) struct Source<'a> {
    pub what: &'a str,
    pub len: u64,
    pub io_err: &'a dyn Fn(io::Error) -> Error,
}

/// Parses one npy stream of `src.len` bytes into a tensor of `dtype` (or
/// the default for the stored type). Nothing is allocated beyond what the
/// stream length allows, and every short read is reported with its offset.
pub(crate) fn read_npy_from<R: Read>(
    r: &mut R,
    src: &Source,
    dtype: Option<DType>,
) -> Result<Tensor> {
    let bad = |msg: String| Error::format(src.what, msg);
    let truncated =
        |at: usize, part: &str| bad(format!("truncated at byte {at}, inside the {part}"));
    let mut pre = [0u8; 12];
    let got = read_full(r, &mut pre[..8]).map_err(src.io_err)?;
    let m = got.min(6);
    if got == 0 || pre[..m] != MAGIC[..m] {
        let found = pre[..m].escape_ascii();
        return Err(bad(format!(
            "bad magic \"{found}\", not an npy file (expected \"\\x93NUMPY\")"
        )));
    }
    if got < 8 {
        return Err(truncated(got, "preamble"));
    }
    let prelude = match (pre[6], pre[7]) {
        (1, 0) => 10,
        (2, 0) | (3, 0) => 12,
        (a, b) => {
            return Err(bad(format!(
                "unsupported format version {a}.{b} (1.0, 2.0, 3.0 are read)"
            )))
        }
    };
    let got = read_full(r, &mut pre[8..prelude]).map_err(src.io_err)?;
    if got < prelude - 8 {
        return Err(truncated(8 + got, "header length"));
    }
    let header_len = match prelude {
        10 => u64::from(u16::from_le_bytes([pre[8], pre[9]])),
        _ => u64::from(u32::from_le_bytes([pre[8], pre[9], pre[10], pre[11]])),
    };
    let data_start = prelude as u64 + header_len;
    if header_len > MAX_HEADER_LEN {
        return Err(bad(format!(
            "header length {header_len} exceeds the limit of {MAX_HEADER_LEN} bytes"
        )));
    }
    if data_start > src.len {
        let len = src.len;
        return Err(bad(format!(
            "truncated at byte {len}: the header claims to end at byte {data_start}"
        )));
    }
    let mut raw = vec![0u8; header_len as usize];
    let got = read_full(r, &mut raw).map_err(src.io_err)?;
    if got < raw.len() {
        return Err(truncated(prelude + got, "header"));
    }
    let text = match pre[6] {
        3 => String::from_utf8(raw)
            .map_err(|_| bad("version 3.0 header is not valid UTF-8".into()))?,
        _ => raw.iter().map(|&b| char::from(b)).collect(), // latin-1
    };
    let header = parse_header(&text).map_err(|msg| bad(format!("bad header: {msg}")))?;
    let (shape, descr_text) = (&header.shape, &header.descr);
    let descr = Descr::parse(descr_text).ok_or_else(|| {
        bad(format!(
            "unsupported dtype '{descr_text}' (ricci reads f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1)"
        ))
    })?;
    let overflow = || bad(format!("shape {shape:?} has too many elements"));
    let numel = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(overflow)?;
    let nbytes = numel.checked_mul(descr.size).ok_or_else(overflow)? as u64;
    let found = src.len - data_start;
    if nbytes != found {
        let cause = match nbytes > found {
            true => format!("truncated at byte {}", src.len),
            false => "data length does not match the shape".to_string(),
        };
        let need = format!("shape {shape:?} of '{descr_text}' needs {nbytes} data bytes");
        let have = format!("{found} follow the {data_start}-byte header");
        return Err(bad(format!("{cause}: {need}, but {have}")));
    }
    let tensor = with_type!(dtype.unwrap_or(descr.default_dtype()), T => {
        let data: Vec<T> = read_elements(r, descr, numel, data_start, src)?;
        build(data, shape, header.fortran_order)?
    });
    // A zip entry can hold more than it declared; a file cannot.
    if read_full(r, &mut [0u8]).map_err(src.io_err)? != 0 {
        return Err(bad(format!(
            "data continues past byte {}, where shape {shape:?} ends",
            src.len
        )));
    }
    Ok(tensor)
}

/// Reads `numel` elements of `descr`, converting chunk by chunk.
fn read_elements<T: Element, R: Read>(
    r: &mut R,
    descr: Descr,
    numel: usize,
    data_start: u64,
    src: &Source,
) -> Result<Vec<T>> {
    // The caller checked numel * size against the stream's length.
    let mut out = Vec::with_capacity(numel);
    let mut left = numel * descr.size;
    let mut buf = vec![0u8; left.min(CHUNK)];
    while left > 0 {
        let want = left.min(CHUNK);
        let got = read_full(r, &mut buf[..want]).map_err(src.io_err)?;
        if got < want {
            let at = data_start + ((numel * descr.size - left) + got) as u64;
            return Err(Error::format(
                src.what,
                format!("truncated at byte {at}, inside the data"),
            ));
        }
        decode(descr, &buf[..want], &mut out);
        left -= want;
    }
    Ok(out)
}

/// A row-major tensor of `shape` from C- or Fortran-ordered elements.
fn build<T: Element>(data: Vec<T>, shape: &[usize], fortran_order: bool) -> Result<Tensor> {
    if !fortran_order || shape.len() < 2 {
        return Tensor::from_vec(data, shape);
    }
    // Column-major data of shape [a, b, c] is row-major data of shape [c, b, a].
    let reversed: Vec<usize> = shape.iter().rev().copied().collect();
    let order: Vec<usize> = (0..shape.len()).rev().collect();
    Ok(Tensor::from_vec(data, &reversed)?
        .permute(order)?
        .contiguous())
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
pub(crate) fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Bool,
    Int,
    UInt,
    Float,
}

/// A parsed `descr` such as `<f4`: kind, bytes per element, byte order.
#[derive(Clone, Copy, Debug)]
struct Descr {
    kind: Kind,
    size: usize,
    big_endian: bool,
}

impl Descr {
    fn parse(s: &str) -> Option<Descr> {
        let (order, rest) = match s.as_bytes().first()? {
            c @ (b'<' | b'>' | b'|' | b'=') => (*c, s.get(1..)?),
            _ => (b'=', s),
        };
        let kind = match rest.as_bytes().first()? {
            b'b' => Kind::Bool,
            b'i' => Kind::Int,
            b'u' => Kind::UInt,
            b'f' => Kind::Float,
            _ => return None,
        };
        let size: usize = rest.get(1..)?.parse().ok()?;
        let valid = matches!(
            (kind, size),
            (Kind::Bool, 1) | (Kind::Int | Kind::UInt, 1 | 2 | 4 | 8) | (Kind::Float, 2 | 4 | 8)
        );
        let big_endian = match order {
            b'>' => true,
            b'<' => false,
            b'|' if size == 1 => false,
            b'=' => cfg!(target_endian = "big"),
            _ => return None,
        };
        valid.then_some(Descr {
            kind,
            size,
            big_endian,
        })
    }

    fn default_dtype(self) -> DType {
        match (self.kind, self.size) {
            (Kind::Float, 2 | 4) => DType::F32,
            _ => DType::F64,
        }
    }
}

/// Appends the elements in `bytes` (whole elements only) to `out`.
fn decode<T: Element>(d: Descr, bytes: &[u8], out: &mut Vec<T>) {
    macro_rules! run {
        ($n:literal, $to_f64:expr) => {
            out.extend(bytes.chunks_exact($n).map(|c| {
                let mut a = [0u8; $n];
                a.copy_from_slice(c);
                if d.big_endian {
                    a.reverse();
                }
                T::from_f64(($to_f64)(a))
            }))
        };
    }
    match (d.kind, d.size) {
        (Kind::Bool, _) => out.extend(bytes.iter().map(|&b| if b != 0 { T::ONE } else { T::ZERO })),
        (Kind::Float, 2) => run!(2, |a| f64::from(f16_to_f32(u16::from_le_bytes(a)))),
        (Kind::Float, 4) => run!(4, |a| f64::from(f32::from_le_bytes(a))),
        (Kind::Float, _) => run!(8, f64::from_le_bytes),
        (Kind::Int, 1) => run!(1, |a| f64::from(i8::from_le_bytes(a))),
        (Kind::Int, 2) => run!(2, |a| f64::from(i16::from_le_bytes(a))),
        (Kind::Int, 4) => run!(4, |a| f64::from(i32::from_le_bytes(a))),
        (Kind::Int, _) => run!(8, |a| i64::from_le_bytes(a) as f64),
        (Kind::UInt, 1) => run!(1, |a| f64::from(u8::from_le_bytes(a))),
        (Kind::UInt, 2) => run!(2, |a| f64::from(u16::from_le_bytes(a))),
        (Kind::UInt, 4) => run!(4, |a| f64::from(u32::from_le_bytes(a))),
        (Kind::UInt, _) => run!(8, |a| u64::from_le_bytes(a) as f64),
    }
}

/// The three keys of an npy header.
struct Header {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
}

/// Parses the header's Python dict literal (the subset numpy writes).
fn parse_header(text: &str) -> std::result::Result<Header, String> {
    let mut c = Cursor {
        s: text.as_bytes(),
        pos: 0,
    };
    let (mut descr, mut fortran_order, mut shape) = (None, None, None);
    c.expect(b'{')?;
    loop {
        if c.eat(b'}') {
            break;
        }
        let key = c.string()?;
        c.expect(b':')?;
        match key.as_str() {
            "descr" => descr = Some(c.string()?),
            "fortran_order" => fortran_order = Some(c.boolean()?),
            "shape" => shape = Some(c.tuple()?),
            other => return Err(format!("unexpected key '{other}'")),
        }
        if !c.eat(b',') {
            c.expect(b'}')?;
            break;
        }
    }
    c.skip_ws();
    if c.pos != c.s.len() {
        return Err(c.error("unexpected text after the dict"));
    }
    let missing = |k: &str| format!("missing key '{k}' in {}", excerpt(text));
    Ok(Header {
        descr: descr.ok_or_else(|| missing("descr"))?,
        fortran_order: fortran_order.ok_or_else(|| missing("fortran_order"))?,
        shape: shape.ok_or_else(|| missing("shape"))?,
    })
}

struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn skip_ws(&mut self) {
        while self.s.get(self.pos).is_some_and(u8::is_ascii_whitespace) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_ws();
        let hit = self.s.get(self.pos) == Some(&c);
        self.pos += usize::from(hit);
        hit
    }

    fn expect(&mut self, c: u8) -> std::result::Result<(), String> {
        if self.eat(c) {
            return Ok(());
        }
        Err(self.error(&format!("expected '{}'", char::from(c))))
    }

    fn error(&self, msg: &str) -> String {
        let text = String::from_utf8_lossy(self.s);
        format!("{msg} at character {} of {}", self.pos, excerpt(&text))
    }

    fn string(&mut self) -> std::result::Result<String, String> {
        self.skip_ws();
        let quote = match self.s.get(self.pos) {
            Some(&q @ (b'\'' | b'"')) => q,
            Some(b'[') => {
                return Err(self.error("structured dtypes (a list descr) are not supported"))
            }
            _ => return Err(self.error("expected a quoted string")),
        };
        let start = self.pos + 1;
        let len = self
            .s
            .get(start..)
            .and_then(|rest| rest.iter().position(|&b| b == quote));
        let len = len.ok_or_else(|| self.error("unterminated string"))?;
        self.pos = start + len + 1;
        Ok(String::from_utf8_lossy(&self.s[start..start + len]).into_owned())
    }

    fn boolean(&mut self) -> std::result::Result<bool, String> {
        self.skip_ws();
        let rest = self.s.get(self.pos..).unwrap_or_default();
        let (value, len) = match rest {
            [b'T', b'r', b'u', b'e', ..] => (true, 4),
            [b'F', b'a', b'l', b's', b'e', ..] => (false, 5),
            _ => return Err(self.error("expected True or False")),
        };
        self.pos += len;
        Ok(value)
    }

    fn tuple(&mut self) -> std::result::Result<Vec<usize>, String> {
        self.expect(b'(')?;
        let mut dims = Vec::new();
        loop {
            if self.eat(b')') {
                return Ok(dims);
            }
            if dims.len() == MAX_RANK {
                return Err(self.error(&format!("more than {MAX_RANK} dimensions")));
            }
            dims.push(self.uint()?);
            if !self.eat(b',') {
                self.expect(b')')?;
                return Ok(dims);
            }
        }
    }

    fn uint(&mut self) -> std::result::Result<usize, String> {
        self.skip_ws();
        let start = self.pos;
        while self.s.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
        let digits = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("");
        let n = digits
            .parse()
            .map_err(|_| self.error("expected a dimension (a non-negative integer)"))?;
        self.eat(b'L'); // Python 2 long literals
        Ok(n)
    }
}

/// The start of a possibly long header, for error messages.
fn excerpt(text: &str) -> String {
    let short: String = text.chars().take(120).collect();
    let dots = if short.len() < text.len() { "..." } else { "" };
    format!("{:?}{dots}", short.trim_end())
}

/// The npy header for `tensor`: C order, padded so the data starts at a
/// multiple of 64 bytes as numpy does.
fn header_bytes(tensor: &Tensor) -> Vec<u8> {
    let descr = match tensor.dtype() {
        DType::F32 => "<f4",
        DType::F64 => "<f8",
    };
    let dims: Vec<String> = tensor.shape().iter().map(|d| d.to_string()).collect();
    // Python's one-element tuple needs its trailing comma: (3,).
    let comma = if dims.len() == 1 { "," } else { "" };
    let shape = format!("({}{comma})", dims.join(", "));
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let padded = |prelude: usize| (prelude + dict.len() + 1).next_multiple_of(64) - prelude;
    let (version, header_len) = match padded(10) {
        n if n <= usize::from(u16::MAX) => (1u8, n),
        _ => (2u8, padded(12)),
    };
    let mut out = Vec::with_capacity(12 + header_len);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    match version {
        1 => out.extend_from_slice(&(header_len as u16).to_le_bytes()),
        _ => out.extend_from_slice(&(header_len as u32).to_le_bytes()),
    }
    out.extend_from_slice(dict.as_bytes());
    out.resize(out.len() + header_len - dict.len() - 1, b' ');
    out.push(b'\n');
    out
}

/// The size in bytes of the npy file [`write_npy_to`] writes for `tensor`.
pub(crate) fn npy_len(tensor: &Tensor) -> u64 {
    let data = tensor.numel() as u64 * tensor.dtype().size_in_bytes() as u64;
    header_bytes(tensor).len() as u64 + data
}

/// Writes `tensor` as a C-order npy stream.
pub(crate) fn write_npy_to<W: Write + ?Sized>(w: &mut W, tensor: &Tensor) -> io::Result<()> {
    w.write_all(&header_bytes(tensor))?;
    write_le(w, tensor)
}

/// Writes the elements of `tensor` in row-major order, little-endian.
pub(crate) fn write_le<W: Write + ?Sized>(w: &mut W, tensor: &Tensor) -> io::Result<()> {
    let tensor = tensor.contiguous();
    let (start, n) = (tensor.layout().offset(), tensor.numel());
    let storage = tensor.storage();
    with_dtype!(&*storage, T, s => {
        let s = s
            .get(start..start + n)
            .ok_or_else(|| io::Error::other("tensor layout reaches outside its storage"))?;
        let mut buf = Vec::with_capacity(CHUNK);
        for chunk in s.chunks(CHUNK / std::mem::size_of::<T>()) {
            buf.clear();
            for x in chunk {
                buf.extend_from_slice(&x.to_le_bytes());
            }
            w.write_all(&buf)?;
        }
        Ok(())
    })
}
