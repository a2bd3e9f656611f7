//! Whole models built from [`crate::nn`] layers.

pub mod gpt;
