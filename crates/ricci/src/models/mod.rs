//! Pretrained model architectures built from ricci's ops.

pub mod bert;
