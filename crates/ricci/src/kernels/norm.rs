//! Layer normalisation of contiguous rows.
//!
//! Each row `x` of length `n` becomes `(x - mean) / sqrt(var + eps) * w + b`
//! with the biased variance (divided by `n`), as PyTorch's `layer_norm`.
//! The mean and the variance are two passes over the row (the variance of
//! the centred values), not `E[x²] - E[x]²`, which cancels catastrophically
//! in f32 when the mean is large against the spread.

use rayon::prelude::*;

use super::par::{rows_per_task, threads, PAR_MIN_ELEMS};
use super::reduce::{dot_slice, sum_slice};
use super::simd::{dispatch_kernel, Kernel};
use crate::tensor::Element;

/// Writes the centred row `x - mean(x)` into `out` and returns
/// `1 / sqrt(var(x) + eps)`, the variance being the centred values' mean
/// square. Shared by the forward and backward rows so that the backward
/// sees exactly the forward's statistics.
#[inline(always)]
fn centre<T: Element>(x: &[T], out: &mut [T], inv_n: T, eps: T) -> T {
    let mean = sum_slice(x) * inv_n;
    out.iter_mut().zip(x).for_each(|(o, &x)| *o = x - mean);
    T::ONE / (dot_slice(out, out) * inv_n + eps).sqrt()
}

/// One row of [`layer_norm_rows`].
struct LayerNormRow<'a, T> {
    x: &'a [T],
    y: &'a mut [T],
    weight: Option<&'a [T]>,
    bias: Option<&'a [T]>,
    eps: T,
    inv_n: T,
}

impl<T: Element> Kernel for LayerNormRow<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let LayerNormRow {
            x,
            y,
            weight,
            bias,
            eps,
            inv_n,
        } = self;
        let rstd = centre(x, y, inv_n, eps);
        match (weight, bias) {
            (Some(w), Some(b)) => y
                .iter_mut()
                .zip(w.iter().zip(b))
                .for_each(|(y, (&w, &b))| *y = *y * rstd * w + b),
            (Some(w), None) => y.iter_mut().zip(w).for_each(|(y, &w)| *y = *y * rstd * w),
            (None, Some(b)) => y.iter_mut().zip(b).for_each(|(y, &b)| *y = *y * rstd + b),
            (None, None) => y.iter_mut().for_each(|y| *y *= rstd),
        }
    }
}

/// Normalises each length-`n` row of `src` into `out`, then scales by
/// `weight` and shifts by `bias` when given (each of length `n`).
/// Rows run in parallel above [`PAR_MIN_ELEMS`] elements.
pub fn layer_norm_rows<T: Element>(
    src: &[T],
    n: usize,
    weight: Option<&[T]>,
    bias: Option<&[T]>,
    eps: f64,
    out: &mut [T],
) {
    debug_assert_eq!(src.len(), out.len());
    debug_assert!(weight.is_none_or(|w| w.len() == n));
    debug_assert!(bias.is_none_or(|b| b.len() == n));
    if n == 0 || src.is_empty() {
        return;
    }
    let eps = T::from_f64(eps);
    let inv_n = T::from_f64(1.0 / n as f64);
    let row = |x: &[T], y: &mut [T]| {
        dispatch_kernel(LayerNormRow {
            x,
            y,
            weight,
            bias,
            eps,
            inv_n,
        })
    };
    if src.len() >= PAR_MIN_ELEMS && threads() > 1 {
        let rows = rows_per_task(src.len() / n, n);
        src.par_chunks(rows * n)
            .zip(out.par_chunks_mut(rows * n))
            .for_each(|(s, o)| {
                s.chunks_exact(n)
                    .zip(o.chunks_exact_mut(n))
                    .for_each(|(x, y)| row(x, y))
            });
    } else {
        src.chunks_exact(n)
            .zip(out.chunks_exact_mut(n))
            .for_each(|(x, y)| row(x, y));
    }
}

/// Rows of [`layer_norm_backward_rows`]: `dx` for each row, and the row
/// sums of `g · x̂` and `g` (the gradients of the weight and the bias)
/// accumulated into `dw` and `db`.
struct LayerNormGradRows<'a, T> {
    x: &'a [T],
    g: &'a [T],
    dx: &'a mut [T],
    weight: Option<&'a [T]>,
    dw: &'a mut [T],
    db: &'a mut [T],
    n: usize,
    eps: T,
    inv_n: T,
}

impl<T: Element> Kernel for LayerNormGradRows<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let LayerNormGradRows {
            x,
            g,
            dx,
            weight,
            dw,
            db,
            n,
            eps,
            inv_n,
        } = self;
        for ((x, g), dx) in x
            .chunks_exact(n)
            .zip(g.chunks_exact(n))
            .zip(dx.chunks_exact_mut(n))
        {
            // x̂ as the forward pass computes it (dx holds it for a moment).
            let rstd = centre(x, dx, inv_n, eps);
            dx.iter_mut().for_each(|d| *d *= rstd);
            dw.iter_mut()
                .zip(g.iter().zip(dx.iter()))
                .for_each(|(w, (&g, &xh))| *w += g * xh);
            db.iter_mut().zip(g).for_each(|(b, &g)| *b += g);
            // dx̂ = g · w; dx = rstd (dx̂ - mean(dx̂) - x̂ mean(dx̂ x̂)).
            let (mean_d, mean_dx) = match weight {
                Some(w) => {
                    let mut sd = T::ZERO;
                    let mut sdx = T::ZERO;
                    for ((&g, &w), &xh) in g.iter().zip(w).zip(dx.iter()) {
                        sd += g * w;
                        sdx += g * w * xh;
                    }
                    (sd * inv_n, sdx * inv_n)
                }
                None => (sum_slice(g) * inv_n, dot_slice(g, dx) * inv_n),
            };
            match weight {
                Some(w) => dx
                    .iter_mut()
                    .zip(g.iter().zip(w))
                    .for_each(|(d, (&g, &w))| *d = rstd * (g * w - mean_d - *d * mean_dx)),
                None => dx
                    .iter_mut()
                    .zip(g)
                    .for_each(|(d, &g)| *d = rstd * (g - mean_d - *d * mean_dx)),
            }
        }
    }
}

/// The backward pass of [`layer_norm_rows`] for output gradient `g`:
/// writes `dx` (every element) and returns the gradients of the weight and
/// the bias (`Σ_rows g · x̂` and `Σ_rows g`, length `n` each). `x̂` and the
/// row statistics are recomputed from `src` exactly as the forward pass
/// computes them.
pub fn layer_norm_backward_rows<T: Element>(
    src: &[T],
    g: &[T],
    n: usize,
    weight: Option<&[T]>,
    eps: f64,
    dx: &mut [T],
) -> (Vec<T>, Vec<T>) {
    debug_assert_eq!(src.len(), dx.len());
    debug_assert_eq!(src.len(), g.len());
    let (mut dw, mut db) = (vec![T::ZERO; n], vec![T::ZERO; n]);
    if n == 0 || src.is_empty() {
        return (dw, db);
    }
    let eps = T::from_f64(eps);
    let inv_n = T::from_f64(1.0 / n as f64);
    let run = |x: &[T], g: &[T], dx: &mut [T], dw: &mut [T], db: &mut [T]| {
        dispatch_kernel(LayerNormGradRows {
            x,
            g,
            dx,
            weight,
            dw,
            db,
            n,
            eps,
            inv_n,
        })
    };
    if src.len() >= PAR_MIN_ELEMS && threads() > 1 {
        let rows = rows_per_task(src.len() / n, n);
        let partials: Vec<(Vec<T>, Vec<T>)> = src
            .par_chunks(rows * n)
            .zip(g.par_chunks(rows * n))
            .zip(dx.par_chunks_mut(rows * n))
            .map(|((x, g), dx)| {
                let (mut pw, mut pb) = (vec![T::ZERO; n], vec![T::ZERO; n]);
                run(x, g, dx, &mut pw, &mut pb);
                (pw, pb)
            })
            .collect();
        for (pw, pb) in partials {
            dw.iter_mut().zip(pw).for_each(|(a, b)| *a += b);
            db.iter_mut().zip(pb).for_each(|(a, b)| *a += b);
        }
    } else {
        run(src, g, dx, &mut dw, &mut db);
    }
    (dw, db)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook formula in f64, one row at a time.
    fn naive(src: &[f64], n: usize, w: &[f64], b: &[f64], eps: f64) -> Vec<f64> {
        let mut out = Vec::new();
        for x in src.chunks(n) {
            let mean = x.iter().sum::<f64>() / n as f64;
            let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
            for (j, v) in x.iter().enumerate() {
                out.push((v - mean) / (var + eps).sqrt() * w[j] + b[j]);
            }
        }
        out
    }

    #[test]
    fn rows_match_the_formula_with_and_without_affine() {
        let n = 7;
        let src: Vec<f64> = (0..5 * n)
            .map(|i| ((i * 13) % 17) as f64 * 0.3 - 2.0)
            .collect();
        let w: Vec<f64> = (0..n).map(|j| 0.5 + j as f64 * 0.1).collect();
        let b: Vec<f64> = (0..n).map(|j| j as f64 * -0.2).collect();
        let ones = vec![1.0; n];
        let zeros = vec![0.0; n];
        // (weight, bias) given to the kernel, and the ones the formula uses.
        type Case<'a> = (Option<&'a [f64]>, Option<&'a [f64]>, &'a [f64], &'a [f64]);
        let cases: [Case; 4] = [
            (Some(&w), Some(&b), &w, &b),
            (Some(&w), None, &w, &zeros),
            (None, Some(&b), &ones, &b),
            (None, None, &ones, &zeros),
        ];
        for (wo, bo, wr, br) in cases {
            let mut out = vec![0.0; src.len()];
            layer_norm_rows(&src, n, wo, bo, 1e-5, &mut out);
            let want = naive(&src, n, wr, br, 1e-5);
            for (g, w) in out.iter().zip(&want) {
                assert!((g - w).abs() < 1e-12, "{g} vs {w}");
            }
        }
    }

    #[test]
    fn f32_rows_with_a_large_mean_keep_their_spread() {
        // E[x²] - E[x]² would lose a 1e-2 spread under a mean of 1e4 in f32
        // (its rounding error is ~1e4² · 6e-8 = 6, against a variance of 1e-4).
        let src: Vec<f32> = (0..64).map(|i| 1e4 + (i % 4) as f32 * 1e-2).collect();
        let mut out = vec![0.0f32; 64];
        layer_norm_rows(&src, 4, None, None, 0.0, &mut out);
        let wide: Vec<f64> = src.iter().map(|&x| x as f64).collect();
        let want = naive(&wide, 4, &[1.0; 4], &[0.0; 4], 0.0);
        for (g, w) in out.iter().zip(&want) {
            // The f32 mean itself is off by up to half an ulp of 1e4 (5e-4),
            // 5% of the spread; the one-pass formula would be off by 100%.
            assert!((*g as f64 - w).abs() < 0.1, "{g} vs {w}");
        }
    }
}
