//! Reading and writing tensors: NumPy `.npy`/`.npz` and safetensors.
//!
//! | format | read | write |
//! |---|---|---|
//! | `.npy` | f2 f4 f8, i1..i8, u1..u8, b1; either byte order; C or Fortran order; versions 1.0-3.0 | `<f4`/`<f8`, C order |
//! | `.npz` | `np.savez` (stored) and `np.savez_compressed` (deflate) | stored, like `np.savez` |
//! | safetensors | F32, F64; F16 and BF16 widened to F32 (memory-mapped) | F32, F64, with metadata |
//!
//! Every writer goes through [`write_atomic_with`]: a temporary file in the
//! same directory, fsync, rename, so a crash never leaves a half-written
//! file behind. Readers treat files as hostile: a malformed file is an
//! [`Error::Format`](crate::Error::Format) naming the file and what is wrong
//! (with the byte offset where it was cut short), never a panic, and nothing
//! is allocated for a header's claims before they are checked against the
//! real size of the file.
//!
//! ```
//! use ricci::{io, Tensor};
//! let dir = std::env::temp_dir();
//! let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
//! io::write_npy(dir.join("ricci_doc_io.npy"), &x)?;
//! io::write_safetensors(dir.join("ricci_doc_io.safetensors"), &[("x", &x)], None)?;
//! let a = io::read_npy(dir.join("ricci_doc_io.npy"))?;
//! let b = io::read_safetensors(dir.join("ricci_doc_io.safetensors"))?;
//! assert_eq!(a.to_vec::<f32>()?, b[0].1.to_vec::<f32>()?);
//! # std::fs::remove_file(dir.join("ricci_doc_io.npy")).ok();
//! # std::fs::remove_file(dir.join("ricci_doc_io.safetensors")).ok();
//! # Ok::<(), ricci::Error>(())
//! ```

mod atomic;
mod npy;
mod npz;
mod safetensors;

pub use self::atomic::{write_atomic, write_atomic_with};
pub use self::npy::{npy_from_bytes, npy_to_bytes, read_npy, read_npy_as, write_npy};
pub use self::npz::{read_npz, write_npz};
pub use self::safetensors::{
    read_safetensors, read_safetensors_floats, read_safetensors_metadata, read_safetensors_where,
    write_safetensors,
};
