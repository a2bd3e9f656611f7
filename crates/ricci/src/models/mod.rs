//! Whole models built from ricci's ops and [`crate::nn`] layers: a GPT to
//! train and a BERT encoder for pretrained sentence-transformers checkpoints.

pub mod bert;
pub mod gpt;
