//! npy / npz / safetensors: round trips, files written by numpy and the
//! python `safetensors` package (scripts/fixtures/io.py states the values
//! used here), and malformed files, which must be errors and never panics.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use ricci::{io, DType, Error, Tensor};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/io");
/// `M23` of the script: [[-1, -0.5, 0], [0.5, 1, 1.5]].
const M23: [f64; 6] = [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5];

fn fixture(name: &str) -> PathBuf {
    Path::new(FIXTURES).join(name)
}

/// A fresh empty directory for one test.
fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ricci_io_{}_{test}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn values(t: &Tensor) -> Vec<f64> {
    t.to_vec_f64()
}

fn find<'a>(tensors: &'a [(String, Tensor)], name: &str) -> &'a Tensor {
    &tensors.iter().find(|(n, _)| n == name).unwrap().1
}

/// The error message of `result`, which must be a `Format` error.
fn format_error<T: std::fmt::Debug>(result: ricci::Result<T>) -> String {
    match result {
        Err(e @ Error::Format { .. }) => e.to_string(),
        other => panic!("expected a format error, got {other:?}"),
    }
}

/// Tensors a writer must handle: each dtype, a transposed (non-contiguous)
/// view, rank 0, an empty tensor, special values.
fn samples() -> Vec<(&'static str, Tensor)> {
    let m = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
    let special = vec![
        0.0f64,
        -0.0,
        f64::INFINITY,
        f64::MIN_POSITIVE,
        f64::NAN,
        1e-310,
    ];
    vec![
        ("m_f32", m.clone()),
        ("m_f32_t", m.t().unwrap()),
        (
            "cube_f64",
            Tensor::arange(0.0, 24.0, 1.0, DType::F64)
                .unwrap()
                .reshape([2, 3, 4])
                .unwrap(),
        ),
        (
            "cube_f64_permuted",
            Tensor::arange(0.0, 24.0, 1.0, DType::F64)
                .unwrap()
                .reshape([2, 3, 4])
                .unwrap()
                .permute([2, 0, 1])
                .unwrap(),
        ),
        ("special_f64", Tensor::from_vec(special, &[6]).unwrap()),
        ("scalar_f32", Tensor::scalar(-2.5f32)),
        ("scalar_f64", Tensor::scalar(7.25f64)),
        ("empty_f32", Tensor::zeros(&[0, 3], DType::F32)),
        ("empty_f64", Tensor::zeros(&[0], DType::F64)),
    ]
}

/// Same dtype, shape and bits (so NaN and -0.0 compare as stored).
fn assert_identical(name: &str, got: &Tensor, want: &Tensor) {
    assert_eq!(got.dtype(), want.dtype(), "{name}: dtype");
    assert_eq!(got.shape(), want.shape(), "{name}: shape");
    let bits = |t: &Tensor| values(t).iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(got), bits(want), "{name}: values");
}

#[test]
fn npy_round_trip_keeps_dtype_shape_and_bits() {
    let dir = temp_dir("npy_round_trip");
    for (name, t) in samples() {
        let back = io::npy_from_bytes(&io::npy_to_bytes(&t)).unwrap();
        assert_identical(name, &back, &t);
        let path = dir.join(format!("{name}.npy"));
        io::write_npy(&path, &t).unwrap();
        assert_identical(name, &io::read_npy(&path).unwrap(), &t);
    }
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn npy_writer_matches_numpy_byte_for_byte() {
    let m = Tensor::from_vec(M23.to_vec(), &[2, 3]).unwrap();
    assert_eq!(
        io::npy_to_bytes(&m),
        fs::read(fixture("c_f64.npy")).unwrap()
    );
    let m32 = m.to_dtype(DType::F32);
    assert_eq!(
        io::npy_to_bytes(&m32),
        fs::read(fixture("c_f32.npy")).unwrap()
    );
    // The Fortran-order file holds the same array; we write it C order.
    let f = io::read_npy(fixture("fortran_f64.npy")).unwrap();
    assert_eq!(
        io::npy_to_bytes(&f),
        fs::read(fixture("c_f64.npy")).unwrap()
    );
}

#[test]
fn reads_numpy_c_and_fortran_order() {
    for (file, dtype) in [
        ("c_f32.npy", DType::F32),
        ("c_f64.npy", DType::F64),
        ("fortran_f64.npy", DType::F64),
    ] {
        let t = io::read_npy(fixture(file)).unwrap();
        assert_eq!((t.dtype(), t.shape()), (dtype, &[2usize, 3][..]), "{file}");
        assert_eq!(values(&t), M23, "{file}");
    }
    let t = io::read_npy(fixture("fortran_f32_3d.npy")).unwrap();
    assert_eq!(t.shape(), &[2, 3, 4]);
    assert!(t.is_contiguous());
    assert_eq!(values(&t), (0..24).map(f64::from).collect::<Vec<_>>());
}

#[test]
fn reads_numpy_integers_and_bools_as_f64() {
    let t = io::read_npy(fixture("i32.npy")).unwrap();
    assert_eq!((t.dtype(), t.shape()), (DType::F64, &[4usize][..]));
    assert_eq!(values(&t), [-3.0, 0.0, 7.0, 2147483647.0]);
    let t = io::read_npy(fixture("i64.npy")).unwrap();
    assert_eq!((t.dtype(), t.shape()), (DType::F64, &[2usize, 2][..]));
    assert_eq!(values(&t), [-(2f64.powi(53)), 1.0, 2.0, 3.0]);
    let t = io::read_npy(fixture("bool.npy")).unwrap();
    assert_eq!((t.dtype(), values(&t)), (DType::F64, vec![1.0, 0.0, 1.0]));
    let t = io::read_npy_as(fixture("bool.npy"), DType::F32).unwrap();
    assert_eq!(t.to_vec::<f32>().unwrap(), [1.0, 0.0, 1.0]);
}

#[test]
fn reads_big_endian_half_and_every_header_version() {
    let t = io::read_npy(fixture("be_f32.npy")).unwrap();
    assert_eq!(t.to_vec::<f32>().unwrap(), [1.5, -2.25, 3e38]);
    let t = io::read_npy(fixture("be_f64.npy")).unwrap();
    assert_eq!((t.dtype(), values(&t)), (DType::F64, M23.to_vec()));
    let t = io::read_npy(fixture("f16.npy")).unwrap();
    assert_eq!(t.to_vec::<f32>().unwrap(), [1.0, -2.0, 0.5, 65504.0]);
    for file in ["v2_f32.npy", "v3_f64.npy"] {
        let t = io::read_npy(fixture(file)).unwrap();
        assert_eq!(
            (t.shape(), values(&t)),
            (&[2usize, 3][..], M23.to_vec()),
            "{file}"
        );
    }
}

#[test]
fn reads_numpy_scalar_and_empty_arrays() {
    let t = io::read_npy(fixture("scalar_f64.npy")).unwrap();
    assert_eq!((t.rank(), t.to_scalar::<f64>().unwrap()), (0, 3.5));
    let t = io::read_npy(fixture("empty_f32.npy")).unwrap();
    assert_eq!(
        (t.dtype(), t.shape(), t.numel()),
        (DType::F32, &[0usize, 3][..], 0)
    );
}

#[test]
fn read_npy_as_converts_any_stored_type() {
    let t = io::read_npy_as(fixture("c_f32.npy"), DType::F64).unwrap();
    assert_eq!((t.dtype(), values(&t)), (DType::F64, M23.to_vec()));
    let t = io::read_npy_as(fixture("fortran_f64.npy"), DType::F32).unwrap();
    assert_eq!(t.to_vec::<f32>().unwrap(), M23.map(|x| x as f32));
}

#[test]
fn reads_numpy_savez_and_savez_compressed() {
    for file in ["savez.npz", "savez_compressed.npz"] {
        let arrays = io::read_npz(fixture(file)).unwrap();
        let names: Vec<&str> = arrays.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["m", "ids", "t"], "{file}");
        let (m, ids, t) = (&arrays[0].1, &arrays[1].1, &arrays[2].1);
        assert_eq!(
            (m.dtype(), m.shape(), values(m)),
            (DType::F32, &[2usize, 3][..], M23.to_vec())
        );
        assert_eq!((ids.dtype(), values(ids)), (DType::F64, vec![4.0, 5.0]));
        assert_eq!(
            (t.shape(), values(t)),
            (&[2usize, 3, 4][..], (0..24).map(f64::from).collect())
        );
    }
}

#[test]
fn npz_round_trip_keeps_names_order_and_bits() {
    let dir = temp_dir("npz_round_trip");
    let path = dir.join("all.npz");
    let samples = samples();
    let named: Vec<(&str, &Tensor)> = samples.iter().map(|(n, t)| (*n, t)).collect();
    io::write_npz(&path, &named).unwrap();
    let back = io::read_npz(&path).unwrap();
    assert_eq!(back.len(), samples.len());
    for ((name, want), (got_name, got)) in samples.iter().zip(&back) {
        assert_eq!(name, got_name);
        assert_identical(name, got, want);
    }
    let t = &samples[0].1;
    let err = io::write_npz(&path, &[("a", t), ("a", t)]).unwrap_err();
    assert!(err.to_string().contains("repeated"), "{err}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn reads_python_safetensors_files() {
    let path = fixture("floats.safetensors");
    let tensors = io::read_safetensors(&path).unwrap();
    // safetensors stores the widest dtype first, then by name.
    let names: Vec<&str> = tensors.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["b", "w", "h"]);
    let (w, b, h) = (
        find(&tensors, "w"),
        find(&tensors, "b"),
        find(&tensors, "h"),
    );
    assert_eq!(
        (w.dtype(), w.shape(), values(w)),
        (DType::F32, &[2usize, 3][..], M23.to_vec())
    );
    assert_eq!(
        (b.dtype(), values(b)),
        (DType::F64, vec![0.25, -8.0, 1e300])
    );
    assert_eq!(
        (h.dtype(), values(h)),
        (DType::F32, vec![1.0, -2.0, 0.5, 65504.0])
    );
    let meta = io::read_safetensors_metadata(&path).unwrap();
    assert_eq!(meta.get("format").map(String::as_str), Some("np"));
    assert_eq!(meta.get("step").map(String::as_str), Some("7"));

    let x = io::read_safetensors(fixture("bf16.safetensors")).unwrap();
    assert_eq!(x[0].0, "x");
    assert_eq!(
        (x[0].1.shape(), x[0].1.to_vec::<f32>().unwrap()),
        (&[2usize, 2][..], vec![1.0, -2.5, 3.140625, 0.0])
    );
}

#[test]
fn safetensors_with_an_integer_tensor_is_an_error_naming_it() {
    let msg = format_error(io::read_safetensors(fixture("i64.safetensors")));
    assert!(msg.contains("'ids'") && msg.contains("I64"), "{msg}");
    assert!(msg.contains("i64.safetensors"), "{msg}");
}

#[test]
fn safetensors_round_trip_keeps_bits_and_metadata() {
    let dir = temp_dir("safetensors_round_trip");
    let path = dir.join("all.safetensors");
    let samples = samples();
    let named: Vec<(&str, &Tensor)> = samples.iter().map(|(n, t)| (*n, t)).collect();
    let meta = HashMap::from([("epoch".to_string(), "3".to_string())]);
    io::write_safetensors(&path, &named, Some(&meta)).unwrap();
    let back = io::read_safetensors(&path).unwrap();
    assert_eq!(back.len(), samples.len());
    for (name, want) in &samples {
        assert_identical(name, find(&back, name), want);
    }
    // F64 data first, so every tensor is aligned to its element size.
    let dtypes: Vec<DType> = back.iter().map(|(_, t)| t.dtype()).collect();
    assert!(
        dtypes.windows(2).all(|w| w != [DType::F32, DType::F64]),
        "{dtypes:?}"
    );
    assert_eq!(io::read_safetensors_metadata(&path).unwrap(), meta);
    let t = &samples[0].1;
    for names in [[("a", t), ("a", t)], [("__metadata__", t), ("b", t)]] {
        let err = io::write_safetensors(&path, &names, None).unwrap_err();
        assert!(err.to_string().contains("reserved or repeated"), "{err}");
    }
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn writes_are_atomic_and_report_the_path() {
    let dir = temp_dir("atomic");
    let path = dir.join("x.npy");
    fs::write(&path, b"old").unwrap();
    io::write_npy(&path, &Tensor::scalar(1.0f32)).unwrap();
    assert_eq!(
        io::read_npy(&path).unwrap().to_scalar::<f32>().unwrap(),
        1.0
    );
    let left: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["x.npy"], "no temporary file may remain");

    let missing = dir.join("no_such_dir").join("y.npy");
    match io::write_npy(&missing, &Tensor::scalar(1.0f32)) {
        Err(e @ Error::Io { .. }) => {
            // The destination is named, not the temporary file.
            assert_eq!(e.to_string().split(": ").next(), missing.to_str(), "{e}");
        }
        other => panic!("expected an Io error, got {other:?}"),
    }
    match io::read_npy(dir.join("absent.npy")) {
        Err(e @ Error::Io { .. }) => assert!(e.to_string().contains("absent.npy"), "{e}"),
        other => panic!("expected an Io error, got {other:?}"),
    }
    fs::remove_dir_all(&dir).unwrap();
}

/// An npy file with `header` (a dict literal) and `data` bytes, version 1.0.
fn npy_with_header(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// An npy file whose header has `descr` and `shape` (Python literals).
fn npy_with(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let header = format!("{{'descr': {descr}, 'fortran_order': False, 'shape': {shape}, }}");
    npy_with_header(&header, data)
}

#[test]
fn malformed_npy_files_are_errors_that_say_what_is_wrong() {
    let good = fs::read(fixture("c_f32.npy")).unwrap(); // 128-byte header, 24 data bytes
    let huge = "(4294967296, 4294967296, 4294967296)";
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("bad magic", b"PK\x03\x04 not npy".to_vec(), "bad magic"),
        ("empty", Vec::new(), "bad magic"),
        (
            "truncated preamble",
            good[..7].to_vec(),
            "truncated at byte 7",
        ),
        (
            "truncated header",
            good[..40].to_vec(),
            "truncated at byte 40",
        ),
        (
            "truncated data",
            good[..147].to_vec(),
            "truncated at byte 147",
        ),
        (
            "trailing data",
            [&good[..], b"xx"].concat(),
            "does not match the shape",
        ),
        (
            "version 9",
            [&b"\x93NUMPY\x09\x00"[..], &good[8..]].concat(),
            "version 9.0",
        ),
        (
            "huge shape",
            npy_with("'<f4'", "(1000000000000,)", &[0; 100]),
            "needs 4000000000000 data bytes",
        ),
        (
            "overflowing shape",
            npy_with("'<f8'", huge, &[]),
            "too many elements",
        ),
        (
            "dimension too big",
            npy_with("'<f8'", "(99999999999999999999999,)", &[]),
            "expected a dimension",
        ),
        (
            "negative dimension",
            npy_with("'<f8'", "(-1,)", &[]),
            "expected a dimension",
        ),
        (
            "complex dtype",
            npy_with("'<c8'", "(1,)", &[0; 8]),
            "unsupported dtype '<c8'",
        ),
        (
            "structured dtype",
            npy_with("[('a', '<f4')]", "(1,)", &[0; 4]),
            "structured",
        ),
        (
            "missing key",
            npy_with_header("{'descr': '<f4', 'shape': (1,), }", &[0; 4]),
            "missing key 'fortran_order'",
        ),
        (
            "unknown key",
            npy_with_header("{'descr': '<f4', 'fortran_order': False, 'x': 1}", &[]),
            "unexpected key 'x'",
        ),
        (
            "not a dict",
            npy_with_header("[1, 2, 3]", &[]),
            "expected '{'",
        ),
        (
            "unterminated",
            npy_with_header("{'descr': '<f4", &[]),
            "unterminated string",
        ),
        (
            "header length past the end",
            [&good[..8], &[0xff, 0xff][..], &good[10..20]].concat(),
            "header claims to end at byte 65545",
        ),
        (
            "header length too big",
            [&b"\x93NUMPY\x02\x00\xff\xff\xff\xff"[..], &[b' '; 50]].concat(),
            "exceeds the limit",
        ),
        (
            "bad utf-8 in v3",
            [&b"\x93NUMPY\x03\x00\x02\x00\x00\x00"[..], &[0xff, 0xfe]].concat(),
            "not valid UTF-8",
        ),
    ];
    for (case, bytes, expected) in cases {
        let msg = format_error(io::npy_from_bytes(&bytes));
        assert!(
            msg.contains(expected),
            "{case}: {msg:?} should mention {expected:?}"
        );
    }
    // Errors from files name the file.
    let dir = temp_dir("malformed_npy");
    let path = dir.join("cut.npy");
    fs::write(&path, &good[..100]).unwrap();
    let msg = format_error(io::read_npy(&path));
    assert!(
        msg.contains("cut.npy") && msg.contains("truncated at byte 100"),
        "{msg}"
    );
    fs::remove_dir_all(&dir).unwrap();
}

/// A safetensors file with `header` as its JSON and `data` after it.
fn safetensors_with_header(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

#[test]
fn malformed_safetensors_files_are_errors_that_say_what_is_wrong() {
    let good = fs::read(fixture("bf16.safetensors")).unwrap();
    let x = |dtype: &str, shape: &str, offsets: &str| {
        format!(r#"{{"x":{{"dtype":"{dtype}","shape":{shape},"data_offsets":{offsets}}}}}"#)
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("too short", vec![1, 2, 3], "truncated at byte 3"),
        (
            "header past the end",
            good[..40].to_vec(),
            "truncated at byte 40",
        ),
        (
            "huge header length",
            [&u64::MAX.to_le_bytes()[..], b"{}"].concat(),
            "exceeds the limit",
        ),
        (
            "invalid json",
            safetensors_with_header("{\"x\": {\"dtype\": ", &[]),
            "invalid JSON",
        ),
        (
            "not an object",
            safetensors_with_header("[1, 2]", &[]),
            "invalid JSON",
        ),
        (
            "offsets out of range",
            safetensors_with_header(&x("F32", "[1000]", "[0, 4000]"), &[0; 16]),
            "out of range",
        ),
        (
            "offsets reversed",
            safetensors_with_header(&x("F32", "[1]", "[8, 4]"), &[0; 8]),
            "out of range",
        ),
        (
            "huge shape",
            safetensors_with_header(&x("F32", "[1000000000000]", "[0, 16]"), &[0; 16]),
            "needs 4000000000000",
        ),
        (
            "overflowing shape",
            safetensors_with_header(
                &x("F64", "[4294967296, 4294967296, 4294967296]", "[0, 8]"),
                &[0; 8],
            ),
            "more than usize::MAX",
        ),
        (
            "gap",
            safetensors_with_header(&x("F32", "[1]", "[4, 8]"), &[0; 8]),
            "leave a gap",
        ),
        (
            "trailing data",
            safetensors_with_header(&x("F32", "[1]", "[0, 4]"), &[0; 12]),
            "cover 4 bytes but 12",
        ),
        (
            "unknown dtype",
            safetensors_with_header(&x("Q4", "[1]", "[0, 4]"), &[0; 4]),
            "tensor 'x': bad entry",
        ),
        (
            "integer dtype",
            safetensors_with_header(&x("I32", "[1]", "[0, 4]"), &[0; 4]),
            "dtype I32",
        ),
        (
            "bad metadata",
            safetensors_with_header(r#"{"__metadata__": {"a": 1}}"#, &[]),
            "__metadata__",
        ),
    ];
    let dir = temp_dir("malformed_safetensors");
    let path = dir.join("bad.safetensors");
    for (case, bytes, expected) in cases {
        fs::write(&path, &bytes).unwrap();
        let msg = format_error(io::read_safetensors(&path));
        assert!(
            msg.contains(expected),
            "{case}: {msg:?} should mention {expected:?}"
        );
        assert!(
            msg.contains("bad.safetensors"),
            "{case}: {msg:?} should name the file"
        );
    }
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn malformed_npz_files_are_errors() {
    let dir = temp_dir("malformed_npz");
    let path = dir.join("bad.npz");
    fs::write(&path, fs::read(fixture("c_f32.npy")).unwrap()).unwrap();
    let msg = format_error(io::read_npz(&path));
    assert!(msg.contains("bad.npz") && msg.contains("zip"), "{msg}");

    // A flipped data byte fails the CRC; flipped compressed bytes break the
    // deflate stream (or, rarely, still inflate and then fail the CRC).
    for (file, at) in [("savez.npz", 192), ("savez_compressed.npz", 80)] {
        let mut bytes = fs::read(fixture(file)).unwrap();
        bytes[at] ^= 0x55;
        fs::write(&path, &bytes).unwrap();
        let msg = format_error(io::read_npz(&path));
        assert!(
            msg.contains("entry 'm.npy': corrupt entry"),
            "{file}: {msg}"
        );
    }
    fs::remove_dir_all(&dir).unwrap();
}

/// Every prefix of every reference file, and every single-byte corruption
/// of the small ones, must give `Ok` or `Err`, never a panic; and every
/// strict prefix is an error.
#[test]
fn truncated_or_corrupted_files_never_panic() {
    let dir = temp_dir("never_panic");
    for entry in fs::read_dir(FIXTURES).unwrap() {
        let source = entry.unwrap().path();
        let name = source.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = fs::read(&source).unwrap();
        let path = dir.join(&name);
        let read = |bytes: &[u8]| -> ricci::Result<()> {
            if name.ends_with(".npy") {
                return io::npy_from_bytes(bytes).map(drop);
            }
            // Unlink first: ext4 flushes a file truncated and rewritten in place.
            let _ = fs::remove_file(&path);
            fs::write(&path, bytes).unwrap();
            match name.ends_with(".npz") {
                true => io::read_npz(&path).map(drop),
                false => io::read_safetensors(&path).map(drop),
            }
        };
        for cut in 0..bytes.len() {
            assert!(
                read(&bytes[..cut]).is_err(),
                "{name} cut at {cut} was accepted"
            );
        }
        for at in 0..bytes.len().min(400) {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0xa5;
            let _ = read(&flipped);
        }
    }
    fs::remove_dir_all(&dir).unwrap();
}
