//! Reading and writing tensors: npy/npz and safetensors; atomic writes.
