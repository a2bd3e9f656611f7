//! `a+b=c` with `digits`-digit operands, as a sequence task: the model reads
//! `482+139=` and writes the sum. Operands are zero-padded to a fixed width
//! and the sum is written least-significant digit first (`621` as `1260`,
//! four digits), the order in which a person adds with carries; a
//! transformer learns this order far faster than the reverse one.
//! Examples are shown to the user in the usual order.
//!
//! A fixed, seeded set of problems is held out: training never draws them,
//! and exact-match accuracy is measured on them.

use std::collections::HashSet;

use crate::error::{Error, Result};
use crate::models::gpt::Gpt;
use crate::tensor::{DType, Rng, Tensor};

const PLUS: usize = 10;
const EQUALS: usize = 11;

/// The addition task.
///
/// ```
/// use ricci::data::Addition;
/// let task = Addition::new(3, 100, 0)?;
/// assert_eq!(task.encode(482, 139), "482+139=1260");
/// assert_eq!(task.vocab_size(), 12);
/// assert_eq!(task.block_size(), 11);
/// # Ok::<(), ricci::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Addition {
    digits: usize,
    test: Vec<(u64, u64)>,
    held_out: HashSet<(u64, u64)>,
}

impl Addition {
    /// The task with `digits`-digit operands (1 to 9) and `n_test` held-out
    /// problems drawn with `seed`.
    pub fn new(digits: usize, n_test: usize, seed: u64) -> Result<Addition> {
        if !(1..=9).contains(&digits) {
            return Err(Error::invalid(
                "Addition",
                format!("digits must be 1..=9, got {digits}"),
            ));
        }
        let max = 10u64.pow(digits as u32);
        if n_test as u64 * 2 > max * max {
            return Err(Error::invalid(
                "Addition",
                format!(
                    "{n_test} held-out problems would leave too few to train on ({} in all)",
                    max * max
                ),
            ));
        }
        let mut rng = Rng::new(seed ^ 0xADD);
        let mut held_out = HashSet::new();
        let mut test = Vec::with_capacity(n_test);
        while test.len() < n_test {
            let p = (rng.below(max), rng.below(max));
            if held_out.insert(p) {
                test.push(p);
            }
        }
        Ok(Addition {
            digits,
            test,
            held_out,
        })
    }

    pub fn digits(&self) -> usize {
        self.digits
    }

    /// Ten digits, `+` and `=`.
    pub fn vocab_size(&self) -> usize {
        12
    }

    /// Characters of the vocabulary, in id order.
    pub fn vocab(&self) -> &'static str {
        "0123456789+="
    }

    /// Length of a problem with its answer: `a+b=` then `digits + 1` digits.
    pub fn sequence_len(&self) -> usize {
        3 * self.digits + 3
    }

    /// The context a model needs: the sequence minus its last token.
    pub fn block_size(&self) -> usize {
        self.sequence_len() - 1
    }

    /// The held-out problems.
    pub fn test_set(&self) -> &[(u64, u64)] {
        &self.test
    }

    /// The training sequence of `a + b` as text (sum reversed).
    pub fn encode(&self, a: u64, b: u64) -> String {
        self.tokens(a, b)
            .iter()
            .map(|&t| self.vocab().as_bytes()[t] as char)
            .collect()
    }

    fn tokens(&self, a: u64, b: u64) -> Vec<usize> {
        let d = self.digits;
        let mut t = Vec::with_capacity(self.sequence_len());
        push_digits(&mut t, a, d, false);
        t.push(PLUS);
        push_digits(&mut t, b, d, false);
        t.push(EQUALS);
        push_digits(&mut t, a + b, d + 1, true);
        t
    }

    /// A random training batch `(inputs, targets)`, both `[batch, block_size]`:
    /// targets are the next tokens, `-1` on the question so only the answer is learned.
    pub fn batch(
        &self,
        batch_size: usize,
        rng: &mut Rng,
        dtype: DType,
    ) -> Result<(Tensor, Tensor)> {
        let max = 10u64.pow(self.digits as u32);
        let problems: Vec<(u64, u64)> = (0..batch_size)
            .map(|_| loop {
                let p = (rng.below(max), rng.below(max));
                if !self.held_out.contains(&p) {
                    break p;
                }
            })
            .collect();
        self.sequences(&problems, dtype)
    }

    /// `(inputs, targets)` for the given problems, as [`Addition::batch`] makes them.
    pub fn sequences(&self, problems: &[(u64, u64)], dtype: DType) -> Result<(Tensor, Tensor)> {
        let (len, answer_from) = (self.block_size(), 2 * self.digits + 1);
        let mut x = Vec::with_capacity(problems.len() * len);
        let mut y = Vec::with_capacity(problems.len() * len);
        for &(a, b) in problems {
            let t = self.tokens(a, b);
            x.extend(t[..len].iter().map(|&v| v as f64));
            y.extend((0..len).map(|i| {
                if i >= answer_from {
                    t[i + 1] as f64
                } else {
                    -1.0
                }
            }));
        }
        let shape = [problems.len(), len];
        Ok((
            Tensor::from_vec(x, &shape)?.to_dtype(dtype),
            Tensor::from_vec(y, &shape)?.to_dtype(dtype),
        ))
    }

    /// The model's greedy answers to `problems`, as numbers.
    pub fn solve(&self, model: &Gpt, problems: &[(u64, u64)]) -> Result<Vec<u64>> {
        let d = self.digits;
        let mut answers = Vec::with_capacity(problems.len());
        for chunk in problems.chunks(500) {
            let prompts: Vec<f64> = chunk
                .iter()
                .flat_map(|&(a, b)| {
                    self.tokens(a, b)[..2 * d + 2]
                        .iter()
                        .map(|&t| t as f64)
                        .collect::<Vec<_>>()
                })
                .collect();
            let prompts =
                Tensor::from_vec(prompts, &[chunk.len(), 2 * d + 2])?.to_dtype(model.dtype());
            let out = model.generate(&prompts, d + 1, 0.0, None, &mut Rng::new(0))?;
            let width = out.shape()[1];
            for row in out.to_vec_f64().chunks(width) {
                // Reversed digits back to a number; a non-digit token makes it wrong.
                let mut value = 0u64;
                let mut valid = true;
                for &t in row[2 * d + 2..].iter().rev() {
                    if t >= 10.0 {
                        valid = false;
                    }
                    value = value * 10 + (t as u64 % 10);
                }
                answers.push(if valid { value } else { u64::MAX });
            }
        }
        Ok(answers)
    }

    /// Exact-match accuracy on the held-out problems.
    pub fn accuracy(&self, model: &Gpt) -> Result<f64> {
        let answers = self.solve(model, &self.test)?;
        let right = self
            .test
            .iter()
            .zip(&answers)
            .filter(|(&(a, b), &s)| a + b == s)
            .count();
        Ok(right as f64 / self.test.len().max(1) as f64)
    }
}

/// Appends the `width` decimal digits of `n`, most significant first unless `reversed`.
fn push_digits(out: &mut Vec<usize>, n: u64, width: usize, reversed: bool) {
    let mut digits: Vec<usize> = (0..width)
        .map(|i| ((n / 10u64.pow(i as u32)) % 10) as usize)
        .collect();
    if !reversed {
        digits.reverse();
    }
    out.extend(digits);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_never_contain_held_out_problems_and_mask_the_question() {
        let task = Addition::new(1, 40, 3).unwrap();
        let mut rng = Rng::new(1);
        let (x, y) = task.batch(500, &mut rng, DType::F64).unwrap();
        let (x, y) = (x.to_vec_f64(), y.to_vec_f64());
        for (row, tgt) in x.chunks(5).zip(y.chunks(5)) {
            let p = (row[0] as u64, row[2] as u64);
            assert!(!task.held_out.contains(&p), "{p:?} is held out");
            assert_eq!(&tgt[..3], &[-1.0; 3]);
            let sum = p.0 + p.1;
            assert_eq!(tgt[3..], [(sum % 10) as f64, (sum / 10) as f64]);
        }
    }
}
