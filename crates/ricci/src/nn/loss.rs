//! Losses.

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Mean cross-entropy between `logits` `[.., classes]` and integer class
/// ids `targets` (the leading shape of `logits`, ids stored as floats), as
/// PyTorch's `F.cross_entropy(logits.view(-1, V), targets.view(-1),
/// ignore_index=...)`: positions whose target equals `ignore_index` add
/// nothing and are not counted in the mean. With every position ignored the
/// mean is 0/0 = NaN, as in PyTorch.
///
/// Written as `log_softmax`, `gather` and a masked mean, so gradients of any
/// order follow.
///
/// ```
/// use ricci::{nn::cross_entropy, Tensor};
/// let logits = Tensor::from_vec(vec![0.0f64, 0.0, 5.0, 0.0], &[2, 2])?;
/// let targets = Tensor::from_vec(vec![1.0f64, -1.0], &[2])?;
/// let loss = cross_entropy(&logits, &targets, Some(-1))?;
/// assert!((loss.to_scalar::<f64>()? - 2f64.ln()).abs() < 1e-12);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn cross_entropy(
    logits: &Tensor,
    targets: &Tensor,
    ignore_index: Option<i64>,
) -> Result<Tensor> {
    let r = logits.rank();
    if r == 0 || targets.shape() != &logits.shape()[..r - 1] {
        return Err(Error::shape(
            "cross_entropy",
            logits.shape(),
            targets.shape(),
        ));
    }
    logits.same_dtype("cross_entropy", targets)?;
    let classes = logits.shape()[r - 1];
    let n = targets.numel();
    // Read the targets once: valid ids become gather indices, ignored ones a
    // zero weight (gathering index 0 for them keeps shapes simple).
    let ids = targets.to_vec_f64();
    let mut index = Vec::with_capacity(n);
    let mut weight = Vec::with_capacity(n);
    for (pos, &t) in ids.iter().enumerate() {
        if ignore_index.is_some_and(|ig| t == ig as f64) {
            index.push(0.0);
            weight.push(0.0);
        } else if t >= 0.0 && t.fract() == 0.0 && (t as usize) < classes {
            index.push(t);
            weight.push(1.0);
        } else {
            return Err(Error::invalid(
                "cross_entropy",
                format!("target {t} at position {pos} is not a class id in 0..{classes}"),
            ));
        }
    }
    let count: f64 = weight.iter().sum();
    let dtype = logits.dtype();
    let index = Tensor::from_vec(index, &[n, 1])?.to_dtype(dtype);
    let weight = Tensor::from_vec(weight, &[n, 1])?.to_dtype(dtype);
    let logp = logits.reshape([n, classes])?.log_softmax(-1)?;
    let picked = logp.gather(1, &index)?;
    Ok(picked.mul(&weight)?.sum_all().mul_scalar(-1.0 / count))
}
