//! Data for training: a built-in addition task ([`Addition`]) and
//! character-level text from any UTF-8 file ([`CharText`]), with seeded
//! random batches in the `(inputs, targets)` form a language model trains
//! on: targets are the inputs shifted by one, `-1` where nothing is to be
//! predicted.

mod addition;
mod text;

pub use addition::Addition;
pub use text::{encode_with, CharText};

/// Which part of a dataset to draw from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Val,
}
