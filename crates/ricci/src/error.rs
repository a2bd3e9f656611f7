//! The one error type of ricci. Every variant carries the facts a user needs
//! to fix the call: the operation, the shapes, the dimension, the file.

use std::path::PathBuf;

use crate::tensor::DType;

/// Errors returned by ricci operations.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Operand shapes are incompatible for `op`.
    #[error("{op}: shape mismatch between {lhs:?} and {rhs:?}")]
    ShapeMismatch {
        op: &'static str,
        lhs: Vec<usize>,
        rhs: Vec<usize>,
    },
    /// A dimension index is outside `-rank..rank`.
    #[error("{op}: dimension {dim} out of range for a tensor of rank {rank}")]
    DimOutOfRange {
        op: &'static str,
        dim: i64,
        rank: usize,
    },
    /// Operands have different dtypes.
    #[error("{op}: dtype mismatch, {lhs} vs {rhs} (convert one with to_dtype)")]
    DTypeMismatch {
        op: &'static str,
        lhs: DType,
        rhs: DType,
    },
    /// An argument is invalid for `op`; `msg` says why.
    #[error("{op}: {msg}")]
    InvalidArgument { op: &'static str, msg: String },
    /// An einsum equation is malformed at `position`.
    #[error("einsum '{equation}' at position {position}: {msg}")]
    Einsum {
        equation: String,
        position: usize,
        msg: String,
    },
    /// A linear-algebra routine failed.
    #[error("{op}: {msg}")]
    Linalg { op: &'static str, msg: String },
    /// A matrix is singular: a zero pivot at row `pivot` (0-based) of
    /// batch item `batch_index` (row-major over the leading dims).
    #[error("{op}: matrix {batch_index} of the batch is singular (zero pivot at row {pivot})")]
    Singular {
        op: &'static str,
        batch_index: usize,
        pivot: usize,
    },
    /// A matrix is not (numerically) positive definite: the Cholesky pivot
    /// at row `pivot` of batch item `batch_index` is not positive.
    #[error("{op}: matrix {batch_index} of the batch is not positive definite (pivot {pivot} is not positive)")]
    NotPositiveDefinite {
        op: &'static str,
        batch_index: usize,
        pivot: usize,
    },
    /// An iterative routine stopped before converging.
    #[error("{op}: did not converge{}", iterations.map(|n| format!(" after {n} iterations")).unwrap_or_default())]
    NotConverged {
        op: &'static str,
        iterations: Option<usize>,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file's contents are malformed.
    #[error("bad {what}: {msg}")]
    Format { what: String, msg: String },
}

/// `Result` with ricci's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn invalid(op: &'static str, msg: impl Into<String>) -> Self {
        Error::InvalidArgument {
            op,
            msg: msg.into(),
        }
    }

    pub(crate) fn shape(op: &'static str, lhs: &[usize], rhs: &[usize]) -> Self {
        Error::ShapeMismatch {
            op,
            lhs: lhs.to_vec(),
            rhs: rhs.to_vec(),
        }
    }

    pub(crate) fn format(what: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Format {
            what: what.into(),
            msg: msg.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
