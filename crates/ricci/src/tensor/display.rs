//! `Display` in numpy's style, summarised when large.
//!
//! `format!("{x}")` prints what `str(np.asarray(x))` prints (numpy 2.x
//! defaults: precision 8, `floatmode="maxprec"`, line width 75, threshold
//! 1000, 3 edge items). The rules, ported from numpy's `arrayprint.py`:
//!
//! - Every element is formatted with one format chosen from all (shown)
//!   finite elements: scientific when the largest non-zero `|x|` is at least
//!   `1e8` (`1e6` for f32, numpy's `10**min(8, finfo.precision)`), or the
//!   smallest is below `1e-4`, or their ratio exceeds `1e3`; positional
//!   otherwise. The comparisons are done in the tensor's dtype, as numpy does.
//! - Positional digits are the shortest that round-trip in the dtype, cut to
//!   at most 8 after the point; integer parts are right-aligned and
//!   fractions left-aligned with spaces (`[1.  2.5 3. ]`). Scientific
//!   mantissas are zero-padded to a common length (`[1.5e-05 1.0e+00]`).
//! - Rows wrap at 75 columns; nested rows start one space deeper per level;
//!   blocks of rank `k >= 3` are separated by `k - 2` blank lines.
//! - Over 1000 elements, each dim longer than 6 shows its first and last 3
//!   items around `...`, and only those items choose the format.
//! - A rank-0 tensor prints as a numpy scalar: shortest round-trip digits,
//!   positional iff `1e-4 <= |x| < 1e16` (`1e6` for f32) or `x == 0`.

use std::fmt;

use super::{with_dtype, DType, Element, Tensor};

/// Elements above which the output is summarised (numpy's `threshold`).
const THRESHOLD: usize = 1000;
/// Items shown at each end of a summarised dim (numpy's `edgeitems`).
const EDGE_ITEMS: usize = 3;
/// Columns before a row wraps (numpy's `linewidth`).
const LINE_WIDTH: usize = 75;
/// Most digits after the point (numpy's `precision`).
const PRECISION: usize = 8;

impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dtype = self.dtype();
        if self.rank() == 0 {
            return f.write_str(&format_scalar(self.to_vec_f64()[0], dtype));
        }
        if self.numel() == 0 {
            return f.write_str("[]");
        }
        let summarise = self.numel() > THRESHOLD;
        let kept: Vec<Vec<usize>> = self
            .shape()
            .iter()
            .map(|&n| {
                if summarise && n > 2 * EDGE_ITEMS {
                    (0..EDGE_ITEMS).chain(n - EDGE_ITEMS..n).collect()
                } else {
                    (0..n).collect()
                }
            })
            .collect();
        let values = if summarise {
            edge_values(self, &kept)
        } else {
            self.to_vec_f64()
        };
        let printer = Printer {
            shape: kept.iter().map(Vec::len).collect(),
            summarised: self
                .shape()
                .iter()
                .map(|&n| summarise && n > 2 * EDGE_ITEMS)
                .collect(),
            words: format_elements(&values, dtype),
        };
        f.write_str(&printer.array(0, 0, " ", LINE_WIDTH))
    }
}

/// The elements of `t` at the cartesian product of `kept[d]` (indices per
/// dim), row-major, read straight from storage so a huge tensor is not copied.
fn edge_values(t: &Tensor, kept: &[Vec<usize>]) -> Vec<f64> {
    let layout = t.layout();
    let storage = t.storage();
    let count: usize = kept.iter().map(Vec::len).product();
    let mut out = Vec::with_capacity(count);
    let mut pos = vec![0usize; kept.len()];
    let mut index = vec![0usize; kept.len()];
    with_dtype!(&*storage, T, s => {
        for _ in 0..count {
            for (d, &p) in pos.iter().enumerate() {
                index[d] = kept[d][p];
            }
            out.push(s[layout.offset_of(&index)].to_f64());
            // Odometer step over `pos`, last dim fastest.
            for d in (0..pos.len()).rev() {
                pos[d] += 1;
                if pos[d] < kept[d].len() {
                    break;
                }
                pos[d] = 0;
            }
        }
    });
    out
}

/// A finite value in decimal: `digits[0]` has weight `10^exp`, the rest
/// follow; no trailing zeros, and no digits at all for zero.
#[derive(Clone, Debug, PartialEq)]
struct Decimal {
    neg: bool,
    digits: Vec<u8>,
    exp: i32,
}

impl Decimal {
    /// Parses Rust's `{:e}` (`-1.25e-7`) or fixed (`-0.00125`) output.
    fn parse(s: &str) -> Decimal {
        let (neg, s) = s.strip_prefix('-').map_or((false, s), |r| (true, r));
        let (mantissa, exp10) = s.split_once('e').map_or((s, 0), |(m, e)| {
            (m, e.parse::<i32>().expect("exponent of {:e} is an integer"))
        });
        let int_len = mantissa.find('.').unwrap_or(mantissa.len()) as i32;
        let all: Vec<u8> = mantissa.bytes().filter(|&b| b != b'.').collect();
        let lead = all.iter().take_while(|&&b| b == b'0').count();
        let mut digits = all[lead..].to_vec();
        while digits.last() == Some(&b'0') {
            digits.pop();
        }
        let exp = if digits.is_empty() {
            0
        } else {
            exp10 + int_len - 1 - lead as i32
        };
        Decimal { neg, digits, exp }
    }

    /// The exact value: a binary fraction `m * 2^-k` (`m` odd) has exactly
    /// `k` decimal places, so fixed formatting with `k` places is exact.
    fn exact(x: f64, dtype: DType) -> Decimal {
        let places = (-binary_exponent(x, dtype)).max(0) as usize;
        Decimal::parse(&match dtype {
            DType::F32 => format!("{:.*}", places, x as f32),
            DType::F64 => format!("{:.*}", places, x),
        })
    }

    /// The shortest digits that read back as `x` in `dtype`, as numpy's
    /// Dragon4 picks them.
    fn shortest(x: f64, dtype: DType) -> Decimal {
        let short = Decimal::parse(&match dtype {
            DType::F32 => format!("{:e}", x as f32),
            DType::F64 => format!("{x:e}"),
        });
        // When `x` lies exactly halfway between two shortest candidates,
        // Rust takes the upper and Dragon4 the even one (f32 165545.625
        // prints as 165545.62 in numpy). A tie needs the exact expansion
        // to end one place after the shortest; for a fraction `m * 2^-k`
        // that last place is `10^-k`, so most values skip the exact digits.
        let pos = short.last_pos();
        let pow2 = binary_exponent(x, dtype);
        if short.digits.is_empty() || (pow2 < 0 && pow2 != pos - 1) || (pow2 >= 0 && pos < 1) {
            return short;
        }
        let exact = Decimal::exact(x, dtype);
        if exact.last_pos() != pos - 1 || exact.digits.last() != Some(&b'5') {
            return short;
        }
        let even = exact.round_at(pos);
        if even != short && even.reads_back_as(x, dtype) {
            even
        } else {
            short
        }
    }

    /// Power of ten of the last digit (0 for zero).
    fn last_pos(&self) -> i32 {
        self.exp + 1 - self.digits.len().max(1) as i32
    }

    /// Rounded to the place `10^pos`, ties to even (as Dragon4 at a cutoff).
    fn round_at(&self, pos: i32) -> Decimal {
        let keep = self.exp - pos + 1;
        if self.digits.is_empty() || keep >= self.digits.len() as i32 {
            return self.clone();
        }
        let zero = Decimal {
            neg: self.neg,
            digits: Vec::new(),
            exp: 0,
        };
        if keep < 0 {
            return zero;
        }
        let keep = keep as usize;
        let next = self.digits[keep];
        // Digits are trimmed, so anything after `next` is non-zero.
        let more = self.digits.len() > keep + 1;
        let last_odd = keep > 0 && (self.digits[keep - 1] - b'0') % 2 == 1;
        let up = next > b'5' || (next == b'5' && (more || last_odd));
        let mut digits = self.digits[..keep].to_vec();
        let mut exp = self.exp;
        if up {
            let mut i = keep;
            loop {
                if i == 0 {
                    digits.insert(0, b'1');
                    exp += 1;
                    break;
                }
                i -= 1;
                if digits[i] == b'9' {
                    digits[i] = b'0';
                } else {
                    digits[i] += 1;
                    break;
                }
            }
        }
        while digits.last() == Some(&b'0') {
            digits.pop();
        }
        if digits.is_empty() {
            return zero;
        }
        Decimal {
            neg: self.neg,
            digits,
            exp,
        }
    }

    /// Whether these digits parse back to `x` in `dtype`.
    fn reads_back_as(&self, x: f64, dtype: DType) -> bool {
        let s = format!(
            "{}{}e{}",
            if self.neg { "-" } else { "" },
            std::str::from_utf8(&self.digits).expect("ASCII digits"),
            self.last_pos()
        );
        match dtype {
            DType::F32 => s.parse::<f32>().ok() == Some(x as f32),
            DType::F64 => s.parse::<f64>().ok() == Some(x),
        }
    }

    /// Positional parts: integer (with sign) and fraction digits.
    fn positional(&self) -> (String, String) {
        let sign = if self.neg { "-" } else { "" };
        let digit = |p: i32| -> char {
            let i = self.exp - p;
            if i < 0 || i >= self.digits.len() as i32 {
                '0'
            } else {
                self.digits[i as usize] as char
            }
        };
        let int: String = if self.exp < 0 || self.digits.is_empty() {
            "0".into()
        } else {
            (0..=self.exp).rev().map(digit).collect()
        };
        let frac: String = (self.last_pos().min(0)..0).rev().map(digit).collect();
        (format!("{sign}{int}"), frac)
    }

    /// Scientific parts: integer digit (with sign), fraction digits, exponent.
    fn scientific(&self) -> (String, String, i32) {
        let sign = if self.neg { "-" } else { "" };
        match self.digits.split_first() {
            None => (format!("{sign}0"), String::new(), 0),
            Some((&first, rest)) => (
                format!("{sign}{}", first as char),
                String::from_utf8(rest.to_vec()).expect("ASCII digits"),
                self.exp,
            ),
        }
    }
}

/// `e` with `x = m * 2^e` and `m` odd, for a finite non-zero `x` in `dtype`.
fn binary_exponent(x: f64, dtype: DType) -> i32 {
    let (mantissa, exp) = match dtype {
        DType::F32 => {
            let b = (x as f32).to_bits();
            let (m, e) = (u64::from(b & 0x7f_ffff), ((b >> 23) & 0xff) as i32);
            if e == 0 {
                (m, -149)
            } else {
                (m | 1 << 23, e - 150)
            }
        }
        DType::F64 => {
            let b = x.to_bits();
            let (m, e) = (b & ((1 << 52) - 1), ((b >> 52) & 0x7ff) as i32);
            if e == 0 {
                (m, -1074)
            } else {
                (m | 1 << 52, e - 1075)
            }
        }
    };
    exp + mantissa.trailing_zeros().min(64) as i32
}

/// `x` positional with its shortest digits, but at most `PRECISION` after
/// the point (numpy's `dragon4_positional(unique=True, trim='.')`).
fn positional(x: f64, dtype: DType) -> (String, String) {
    let short = Decimal::shortest(x, dtype);
    if short.last_pos() >= -(PRECISION as i32) {
        return short.positional();
    }
    Decimal::exact(x, dtype)
        .round_at(-(PRECISION as i32))
        .positional()
}

/// `x` scientific with its shortest mantissa, but at most `PRECISION`
/// digits after the point (numpy's `dragon4_scientific(unique=True)`).
fn scientific(x: f64, dtype: DType) -> (String, String, i32) {
    let short = Decimal::shortest(x, dtype);
    if short.digits.len() <= PRECISION + 1 {
        return short.scientific();
    }
    scientific_digits(x, dtype, PRECISION)
}

/// `x` scientific with `digits` after the point, exact digits rounded to
/// even (trailing zeros trimmed; the caller pads).
fn scientific_digits(x: f64, dtype: DType, digits: usize) -> (String, String, i32) {
    let exact = Decimal::exact(x, dtype);
    exact.round_at(exact.exp - digits as i32).scientific()
}

/// `e+05`, `e-100`: sign always, at least `digits` digits.
fn exponent(exp: i32, digits: usize) -> String {
    let sign = if exp < 0 { '-' } else { '+' };
    format!("e{sign}{:0digits$}", exp.unsigned_abs())
}

/// A rank-0 tensor as numpy prints a scalar (`str(np.float64(x))`).
fn format_scalar(x: f64, dtype: DType) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x < 0.0 { "-inf" } else { "inf" }.into();
    }
    // numpy compares in double here, also for float32: the float32 nearest
    // 1e-4 is below the double 1e-4, so `np.float32(1e-4)` prints `1e-04`.
    let cutoff = match dtype {
        DType::F32 => 1e6,
        DType::F64 => 1e16,
    };
    let short = Decimal::shortest(x, dtype);
    if x == 0.0 || (1e-4..cutoff).contains(&x.abs()) {
        let (int, frac) = short.positional();
        let frac = if frac.is_empty() { "0".into() } else { frac };
        format!("{int}.{frac}")
    } else {
        let (int, frac, exp) = short.scientific();
        let point = if frac.is_empty() { "" } else { "." };
        format!("{int}{point}{frac}{}", exponent(exp, 2))
    }
}

/// Every element with one common format, in the order of `values`
/// (numpy's `FloatingFormat`: a first pass over all finite values fixes
/// the widths, a second pads each value to them).
fn format_elements(values: &[f64], dtype: DType) -> Vec<String> {
    let finite: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    let exp_format = needs_exp_format(&finite, dtype);
    // (integer part with sign, fraction digits, exponent) of finite values.
    let parts: Vec<Option<(String, String, i32)>> = values
        .iter()
        .map(|&x| {
            x.is_finite().then(|| {
                if exp_format {
                    scientific(x, dtype)
                } else {
                    let (int, frac) = positional(x, dtype);
                    (int, frac, 0)
                }
            })
        })
        .collect();
    let shown = || parts.iter().flatten();
    let mut pad_left = shown().map(|p| p.0.len()).max().unwrap_or(0);
    let frac_len = shown().map(|p| p.1.len()).max().unwrap_or(0);
    let exp_digits = shown()
        .map(|p| p.2.unsigned_abs().to_string().len().max(2))
        .max()
        .unwrap_or(0);
    let pad_right = if exp_format {
        frac_len + 2 + exp_digits
    } else {
        frac_len
    };
    if finite.len() != values.len() {
        // Room for "nan", "inf" or "-inf" right-aligned in the common width.
        let neg_inf = values.contains(&f64::NEG_INFINITY);
        let longest: usize = if neg_inf { 4 } else { 3 };
        pad_left = pad_left.max(longest.saturating_sub(pad_right + 1));
    }
    let width = pad_left + pad_right + 1;
    values
        .iter()
        .zip(parts)
        .map(|(&x, part)| match part {
            None if x.is_nan() => format!("{:>width$}", "nan"),
            None if x < 0.0 => format!("{:>width$}", "-inf"),
            None => format!("{:>width$}", "inf"),
            Some((int, frac, exp)) if exp_format => {
                // numpy's `min_digits` pads a short mantissa with further
                // exact digits, not zeros: f32 79811032 alone prints as
                // `7.981103e+07` but next to a longer one as `7.9811032e+07`.
                let (int, frac, exp) = if frac.len() < frac_len {
                    scientific_digits(x, dtype, frac_len)
                } else {
                    (int, frac, exp)
                };
                format!(
                    "{int:>pad_left$}.{frac:0<frac_len$}{}",
                    exponent(exp, exp_digits)
                )
            }
            Some((int, frac, _)) => format!("{int:>pad_left$}.{frac:<pad_right$}"),
        })
        .collect()
}

/// numpy's choice of scientific notation, computed in the dtype: a float32
/// `1e-4` is not below `np.float32(1e-4)`, though it is below the double `1e-4`.
fn needs_exp_format(finite: &[f64], dtype: DType) -> bool {
    fn check<T: Element + PartialOrd>(finite: &[f64], cutoff_max: f64) -> bool {
        let abs: Vec<T> = finite
            .iter()
            .filter(|&&x| x != 0.0)
            .map(|&x| T::from_f64(x.abs()))
            .collect();
        let Some(&first) = abs.first() else {
            return false;
        };
        let (mut max, mut min) = (first, first);
        for &x in &abs[1..] {
            if x > max {
                max = x;
            }
            if x < min {
                min = x;
            }
        }
        // max / min may overflow to inf, which is still "> 1e3".
        max >= T::from_f64(cutoff_max) || min < T::from_f64(1e-4) || max / min > T::from_f64(1e3)
    }
    match dtype {
        DType::F32 => check::<f32>(finite, 1e6),
        DType::F64 => check::<f64>(finite, 1e8),
    }
}

/// The (possibly summarised) elements and how to lay them out.
struct Printer {
    /// Shape of `values` (summarised dims keep `2 * EDGE_ITEMS` items).
    shape: Vec<usize>,
    /// Per dim: print `...` between the leading and trailing items.
    summarised: Vec<bool>,
    /// Each shown element, formatted and padded.
    words: Vec<String>,
}

impl Printer {
    /// numpy's `_formatArray` recursion: the sub-array at `axis` starting
    /// at flat position `base`, with `indent` before every line after the
    /// first and `width` columns available.
    fn array(&self, axis: usize, base: usize, indent: &str, width: usize) -> String {
        if axis == self.shape.len() {
            return self.words[base].clone();
        }
        let stride: usize = self.shape[axis + 1..].iter().product();
        let n = self.shape[axis];
        let next_indent = format!("{indent} ");
        // The closing "]" takes a column from every nested level.
        let next_width = width.saturating_sub(1);
        let (leading, trailing) = if self.summarised[axis] {
            (EDGE_ITEMS, EDGE_ITEMS)
        } else {
            (0, n)
        };
        let item = |i: usize| self.array(axis + 1, base + i * stride, &next_indent, next_width);
        // Items in print order, `None` standing for the "..." gap.
        let order: Vec<Option<usize>> = (0..leading)
            .map(Some)
            .chain(self.summarised[axis].then_some(None))
            .chain((n - trailing..n).map(Some))
            .collect();
        let mut s = String::new();
        if axis + 1 == self.shape.len() {
            // Last axis: words separated by spaces, wrapped at `width - 1`
            // so the closing bracket still fits.
            let elem_width = width.saturating_sub(1);
            let mut line = indent.to_string();
            for (k, &i) in order.iter().enumerate() {
                let word = i.map_or_else(|| "...".to_string(), item);
                let wraps = line.len() + word.len() > elem_width && line.len() > indent.len();
                if wraps {
                    s.push_str(line.trim_end());
                    s.push('\n');
                    line = indent.to_string();
                }
                line.push_str(&word);
                if k + 1 < order.len() {
                    line.push(' ');
                }
            }
            s.push_str(&line);
        } else {
            // Outer axes: one row per line, plus a blank line per extra level.
            let line_sep = "\n".repeat(self.shape.len() - axis - 1);
            for (k, &i) in order.iter().enumerate() {
                s.push_str(indent);
                s.push_str(&i.map_or_else(|| "...".to_string(), item));
                if k + 1 < order.len() {
                    s.push_str(&line_sep);
                }
            }
        }
        format!("[{}]", &s[indent.len()..])
    }
}

#[cfg(test)]
mod tests {
    //! Expected strings are numpy 2.4's `str(x)` for the python shown above
    //! each (`import numpy as np`, default print options).

    use crate::{DType, Tensor};

    fn f64s(v: &[f64], shape: &[usize]) -> Tensor {
        Tensor::from_vec(v.to_vec(), shape).unwrap()
    }
    fn f32s(v: &[f32], shape: &[usize]) -> Tensor {
        Tensor::from_vec(v.to_vec(), shape).unwrap()
    }
    fn arange(n: usize, shape: &[usize]) -> Tensor {
        Tensor::arange(0.0, n as f64, 1.0, DType::F64)
            .unwrap()
            .reshape(shape)
            .unwrap()
    }
    /// `x` with every element mapped by `f` (kept independent of the ops under test elsewhere).
    fn map(x: &Tensor, f: impl Fn(f64) -> f64) -> Tensor {
        let v: Vec<f64> = x.to_vec_f64().into_iter().map(f).collect();
        f64s(&v, x.shape())
    }

    #[test]
    fn vector_pads_fractions_to_a_common_width() {
        // np.array([1., 2.5, 3.])
        assert_eq!(f64s(&[1.0, 2.5, 3.0], &[3]).to_string(), "[1.  2.5 3. ]");
        // np.array([-1., 0., 10.])
        assert_eq!(f64s(&[-1.0, 0.0, 10.0], &[3]).to_string(), "[-1.  0. 10.]");
        // np.array([0.5, -100.25])
        assert_eq!(f64s(&[0.5, -100.25], &[2]).to_string(), "[   0.5  -100.25]");
    }

    #[test]
    fn positional_digits_stop_at_eight_after_the_point() {
        // np.array([0.123456789, 2.])
        assert_eq!(
            f64s(&[0.123456789, 2.0], &[2]).to_string(),
            "[0.12345679 2.        ]"
        );
    }

    #[test]
    fn matrices_and_higher_ranks_nest_with_blank_lines() {
        // np.arange(6.).reshape(2, 3)
        assert_eq!(arange(6, &[2, 3]).to_string(), "[[0. 1. 2.]\n [3. 4. 5.]]");
        // np.arange(24.).reshape(2, 3, 4)
        assert_eq!(
            arange(24, &[2, 3, 4]).to_string(),
            "[[[ 0.  1.  2.  3.]\n  [ 4.  5.  6.  7.]\n  [ 8.  9. 10. 11.]]\n\n [[12. 13. 14. 15.]\n  [16. 17. 18. 19.]\n  [20. 21. 22. 23.]]]"
        );
        // np.arange(16.).reshape(2, 2, 2, 2) - 8
        assert_eq!(
            map(&arange(16, &[2, 2, 2, 2]), |x| x - 8.0).to_string(),
            "[[[[-8. -7.]\n   [-6. -5.]]\n\n  [[-4. -3.]\n   [-2. -1.]]]\n\n\n [[[ 0.  1.]\n   [ 2.  3.]]\n\n  [[ 4.  5.]\n   [ 6.  7.]]]]"
        );
    }

    #[test]
    fn long_rows_wrap_at_75_columns() {
        // np.arange(30.)
        assert_eq!(
            arange(30, &[30]).to_string(),
            "[ 0.  1.  2.  3.  4.  5.  6.  7.  8.  9. 10. 11. 12. 13. 14. 15. 16. 17.\n 18. 19. 20. 21. 22. 23. 24. 25. 26. 27. 28. 29.]"
        );
    }

    #[test]
    fn mixed_magnitudes_switch_to_scientific() {
        // np.array([1e-5, 1., 1e3])
        assert_eq!(
            f64s(&[1e-5, 1.0, 1e3], &[3]).to_string(),
            "[1.e-05 1.e+00 1.e+03]"
        );
        // np.array([1e8, 1.])
        assert_eq!(f64s(&[1e8, 1.0], &[2]).to_string(), "[1.e+08 1.e+00]");
        // np.array([-0.0, 1e-5])
        assert_eq!(f64s(&[-0.0, 1e-5], &[2]).to_string(), "[-0.e+00  1.e-05]");
    }

    #[test]
    fn float32_prints_its_own_shortest_digits() {
        // np.array([0.1, 0.2, 1/3], dtype=np.float32)
        assert_eq!(
            f32s(&[0.1, 0.2, 1.0 / 3.0], &[3]).to_string(),
            "[0.1        0.2        0.33333334]"
        );
        // np.array([165545.625, 79811032.], dtype=np.float32): Dragon4 breaks
        // the 165545.62|5 tie to even, and pads 7.981103 with exact digits.
        assert_eq!(
            f32s(&[165545.625f64 as f32, 79811032.0], &[2]).to_string(),
            "[1.6554562e+05 7.9811032e+07]"
        );
    }

    #[test]
    fn nan_and_inf_align_with_the_numbers() {
        // np.array([np.nan, 1.5, -np.inf])
        assert_eq!(
            f64s(&[f64::NAN, 1.5, f64::NEG_INFINITY], &[3]).to_string(),
            "[ nan  1.5 -inf]"
        );
    }

    #[test]
    fn rank_zero_prints_a_bare_scalar_and_empty_prints_brackets() {
        // str(np.array(x)) for each x
        assert_eq!(Tensor::scalar(1.5f64).to_string(), "1.5");
        assert_eq!(Tensor::scalar(1e20f64).to_string(), "1e+20");
        assert_eq!(Tensor::scalar(1e15f64).to_string(), "1000000000000000.0");
        assert_eq!(Tensor::scalar(-0.0f64).to_string(), "-0.0");
        assert_eq!(Tensor::scalar(f64::NAN).to_string(), "nan");
        // np.array(1e6, dtype=np.float32), np.array(0.1, dtype=np.float32)
        assert_eq!(Tensor::scalar(1e6f32).to_string(), "1e+06");
        assert_eq!(Tensor::scalar(0.1f32).to_string(), "0.1");
        // np.zeros((0, 3))
        assert_eq!(Tensor::zeros(&[0, 3], DType::F64).to_string(), "[]");
    }

    #[test]
    fn large_vector_is_summarised_by_its_ends() {
        // np.arange(2000.)
        assert_eq!(
            arange(2000, &[2000]).to_string(),
            "[0.000e+00 1.000e+00 2.000e+00 ... 1.997e+03 1.998e+03 1.999e+03]"
        );
    }

    #[test]
    fn large_matrix_is_summarised_in_both_dims() {
        // np.arange(2500.).reshape(50, 50)
        let x = arange(2500, &[50, 50]);
        assert_eq!(
            x.to_string(),
            "[[0.000e+00 1.000e+00 2.000e+00 ... 4.700e+01 4.800e+01 4.900e+01]\n [5.000e+01 5.100e+01 5.200e+01 ... 9.700e+01 9.800e+01 9.900e+01]\n [1.000e+02 1.010e+02 1.020e+02 ... 1.470e+02 1.480e+02 1.490e+02]\n ...\n [2.350e+03 2.351e+03 2.352e+03 ... 2.397e+03 2.398e+03 2.399e+03]\n [2.400e+03 2.401e+03 2.402e+03 ... 2.447e+03 2.448e+03 2.449e+03]\n [2.450e+03 2.451e+03 2.452e+03 ... 2.497e+03 2.498e+03 2.499e+03]]"
        );
        // np.arange(2500.).reshape(50, 50).T (a strided view)
        assert_eq!(
            x.t().unwrap().to_string(),
            "[[0.000e+00 5.000e+01 1.000e+02 ... 2.350e+03 2.400e+03 2.450e+03]\n [1.000e+00 5.100e+01 1.010e+02 ... 2.351e+03 2.401e+03 2.451e+03]\n [2.000e+00 5.200e+01 1.020e+02 ... 2.352e+03 2.402e+03 2.452e+03]\n ...\n [4.700e+01 9.700e+01 1.470e+02 ... 2.397e+03 2.447e+03 2.497e+03]\n [4.800e+01 9.800e+01 1.480e+02 ... 2.398e+03 2.448e+03 2.498e+03]\n [4.900e+01 9.900e+01 1.490e+02 ... 2.399e+03 2.449e+03 2.499e+03]]"
        );
        // np.arange(2500.).reshape(50, 50) % 7 - 3
        assert_eq!(
            map(&x, |v| v % 7.0 - 3.0).to_string(),
            "[[-3. -2. -1. ...  2.  3. -3.]\n [-2. -1.  0. ...  3. -3. -2.]\n [-1.  0.  1. ... -3. -2. -1.]\n ...\n [ 2.  3. -3. ...  0.  1.  2.]\n [ 3. -3. -2. ...  1.  2.  3.]\n [-3. -2. -1. ...  2.  3. -3.]]"
        );
    }

    #[test]
    fn large_cube_summarises_blocks_between_blank_lines() {
        // np.arange(1331.).reshape(11, 11, 11) % 10
        let x = map(&arange(1331, &[11, 11, 11]), |v| v % 10.0);
        assert_eq!(x.to_string(), "[[[0. 1. 2. ... 8. 9. 0.]\n  [1. 2. 3. ... 9. 0. 1.]\n  [2. 3. 4. ... 0. 1. 2.]\n  ...\n  [8. 9. 0. ... 6. 7. 8.]\n  [9. 0. 1. ... 7. 8. 9.]\n  [0. 1. 2. ... 8. 9. 0.]]\n\n [[1. 2. 3. ... 9. 0. 1.]\n  [2. 3. 4. ... 0. 1. 2.]\n  [3. 4. 5. ... 1. 2. 3.]\n  ...\n  [9. 0. 1. ... 7. 8. 9.]\n  [0. 1. 2. ... 8. 9. 0.]\n  [1. 2. 3. ... 9. 0. 1.]]\n\n [[2. 3. 4. ... 0. 1. 2.]\n  [3. 4. 5. ... 1. 2. 3.]\n  [4. 5. 6. ... 2. 3. 4.]\n  ...\n  [0. 1. 2. ... 8. 9. 0.]\n  [1. 2. 3. ... 9. 0. 1.]\n  [2. 3. 4. ... 0. 1. 2.]]\n\n ...\n\n [[8. 9. 0. ... 6. 7. 8.]\n  [9. 0. 1. ... 7. 8. 9.]\n  [0. 1. 2. ... 8. 9. 0.]\n  ...\n  [6. 7. 8. ... 4. 5. 6.]\n  [7. 8. 9. ... 5. 6. 7.]\n  [8. 9. 0. ... 6. 7. 8.]]\n\n [[9. 0. 1. ... 7. 8. 9.]\n  [0. 1. 2. ... 8. 9. 0.]\n  [1. 2. 3. ... 9. 0. 1.]\n  ...\n  [7. 8. 9. ... 5. 6. 7.]\n  [8. 9. 0. ... 6. 7. 8.]\n  [9. 0. 1. ... 7. 8. 9.]]\n\n [[0. 1. 2. ... 8. 9. 0.]\n  [1. 2. 3. ... 9. 0. 1.]\n  [2. 3. 4. ... 0. 1. 2.]\n  ...\n  [8. 9. 0. ... 6. 7. 8.]\n  [9. 0. 1. ... 7. 8. 9.]\n  [0. 1. 2. ... 8. 9. 0.]]]");
    }
}
