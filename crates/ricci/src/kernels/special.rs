//! Special functions the standard library lacks.

use std::f64::consts::PI;

use super::simd::fma;

/// The error function to about 1e-15 relative accuracy.
///
/// For |x| < 3 we use the series with all-positive terms
/// `erf(x) = 2/sqrt(pi) * exp(-x^2) * sum_n 2^n x^(2n+1) / (1*3*...*(2n+1))`,
/// which has no cancellation; beyond, `erfc` by its continued fraction
/// (evaluated with the modified Lentz method), which converges fast there.
pub fn erf(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    let ax = x.abs();
    let r = if ax < 3.0 {
        erf_series(ax)
    } else if ax > 6.5 {
        1.0
    } else {
        1.0 - erfc_continued_fraction(ax)
    };
    r.copysign(x)
}

/// GELU in f64, `x/2 (1 + erf(x / sqrt 2))`.
pub fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + erf(x * std::f64::consts::FRAC_1_SQRT_2))
}

fn erf_series(x: f64) -> f64 {
    let x2 = x * x;
    let mut term = x;
    let mut sum = x;
    // Terms grow until n ~ x^2, then shrink geometrically; for x < 3 the sum
    // has converged to f64 precision well before 120 terms.
    for n in 1..120 {
        term *= 2.0 * x2 / (2.0 * n as f64 + 1.0);
        sum += term;
        if term <= sum * 1e-17 {
            break;
        }
    }
    2.0 / PI.sqrt() * (-x2).exp() * sum
}

/// erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))), x > 0.
fn erfc_continued_fraction(x: f64) -> f64 {
    // f = x + a1/(x + a2/(x + ...)), a_k = k/2; modified Lentz.
    let tiny = 1e-300;
    let mut f = x;
    let mut c = x;
    let mut d = 0.0;
    for k in 1..200 {
        let a = k as f64 * 0.5;
        d = x + a * d;
        if d.abs() < tiny {
            d = tiny;
        }
        c = x + a / c;
        if c.abs() < tiny {
            c = tiny;
        }
        d = 1.0 / d;
        let delta = c * d;
        f *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    (-x * x).exp() / PI.sqrt() / f
}

/// A fast f32 erf: `x P(x^2) / Q(x^2)` with P, Q of degree 5, fitted for
/// minimax relative error (1.9e-8) by `scripts/fixtures/erf_f32_fit.py`.
/// With fused multiply-adds in f32 it is within 3.5e-7 absolute and 6 ulp
/// of erf everywhere; being odd in x with `P(0) = 2/sqrt(pi)`, it keeps full
/// relative accuracy near 0, where `1 - erfc` would cancel. One division
/// and ten multiply-adds, no exp; branch-free (selects only), so the f32
/// GELU loop vectorises. Beyond 3.92 erf rounds to 1 in f32; the result
/// is exactly 1 there.
#[inline(always)]
pub fn erf_f32(x: f32) -> f32 {
    erf_nonneg_f32(x.abs()).copysign(x)
}

/// GELU in f32, `x Φ(x) = x/2 + |x|/2 erf(|x| / sqrt 2)` (erf is odd, so
/// `x erf(x / sqrt 2) = |x| erf(|x| / sqrt 2)`): one multiply-add on top of
/// [`erf_f32`]'s rational, with no sign to restore and no `1 + erf` to form.
/// It saturates to exactly 0 far left and `x` far right, as `erf` does to
/// ±1, and is within 2e-7 |x| (plus the result's rounding) of the f64 GELU:
/// 1.65e-7 |x| at worst over the test's sweep.
#[inline(always)]
pub fn gelu_f32(x: f32) -> f32 {
    let a = x.abs();
    fma(
        0.5 * a,
        erf_nonneg_f32(a * std::f32::consts::FRAC_1_SQRT_2),
        0.5 * x,
    )
}

/// `erf(ax)` for `ax >= 0` (or NaN): the rational described at
/// [`erf_f32`], saturated to exactly 1 from `XMAX` on.
#[inline(always)]
fn erf_nonneg_f32(ax: f32) -> f32 {
    const XMAX: f32 = 3.92;
    // P(0) is the fitted value, one f32 ulp below 2/sqrt(pi): pinning it
    // there costs the minimax fit more further out than it gains near 0.
    #[allow(clippy::approx_constant)]
    const P: [f32; 6] = [
        1.128_379_1,
        0.190_407_47,
        0.052_748_732,
        0.003_765_628_7,
        0.000_284_877_55,
        2.050_006_5e-6,
    ];
    const Q: [f32; 5] = [
        0.502_077,
        0.114_109_41,
        0.014_969_241,
        0.001_162_528_4,
        3.809_061_3e-5,
    ];
    // Written so that NaN passes through (`f32::min` would drop it).
    let ax = if ax > XMAX { XMAX } else { ax };
    let t = ax * ax;
    let p = fma(
        t,
        fma(t, fma(t, fma(t, fma(t, P[5], P[4]), P[3]), P[2]), P[1]),
        P[0],
    );
    let q = fma(
        t,
        fma(t, fma(t, fma(t, fma(t, Q[4], Q[3]), Q[2]), Q[1]), Q[0]),
        1.0,
    );
    let r = ax * p / q;
    // From XMAX on erf rounds to 1; pin it there (the fused rational is one
    // ulp short at XMAX) and never let it pass 1 below.
    if ax >= XMAX || r > 1.0 {
        1.0
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::super::simd::{sweep, ulp_error};
    use super::*;

    #[test]
    fn erf_matches_known_values() {
        // Values of erf from tables (Abramowitz & Stegun table 7.1, extended precision).
        let cases = [
            (0.0, 0.0),
            (0.1, 0.112_462_916_018_284_9),
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (2.0, 0.995_322_265_018_952_7),
            (3.0, 0.999_977_909_503_001_4),
            (4.0, 0.999_999_984_582_742_1),
        ];
        for (x, want) in cases {
            let got = erf(x);
            assert!((got - want).abs() < 1e-15, "erf({x}) = {got}, want {want}");
            assert!((erf(-x) + want).abs() < 1e-15);
            let g32 = erf_f32(x as f32) as f64;
            assert!(
                (g32 - want).abs() < 3.5e-7,
                "erf_f32({x}) = {g32}, want {want}"
            );
        }
        assert_eq!(erf(10.0), 1.0);
        assert!(erf(f64::NAN).is_nan());
    }

    #[test]
    fn erf_is_continuous_at_the_switch() {
        let below = erf(3.0 - 1e-12);
        let above = erf(3.0 + 1e-12);
        assert!((below - above).abs() < 1e-14);
    }

    #[test]
    fn erf_f32_is_within_six_ulp_and_3_5e_7_of_f64_erf() {
        // Every 61st f32 from 0 to 5 (all binades, subnormals included),
        // against the f64 erf above.
        let (mut worst_ulp, mut worst_abs) = ((0.0, 0.0f32), (0.0, 0.0f32));
        for x in sweep(5.0, 61) {
            let want = erf(x as f64);
            let got = erf_f32(x);
            let abs = (got as f64 - want).abs();
            let ulps = ulp_error(got, want);
            if ulps > worst_ulp.0 {
                worst_ulp = (ulps, x);
            }
            if abs > worst_abs.0 {
                worst_abs = (abs, x);
            }
            assert_eq!(erf_f32(-x).to_bits(), (-got).to_bits(), "erf_f32(-{x})");
        }
        assert!(worst_ulp.0 <= 6.0, "{} ulp at {}", worst_ulp.0, worst_ulp.1);
        assert!(worst_abs.0 <= 3.5e-7, "{} at {}", worst_abs.0, worst_abs.1);
    }

    #[test]
    fn gelu_f32_is_within_2e_7_x_of_f64_gelu_and_saturates() {
        // Every 61st f32 in ±8 against the f64 GELU: the error is erf's
        // (3.5e-7 absolute, halved) scaled by |x|, plus the result's rounding.
        let mut worst = (0.0, 0.0f32);
        for x in sweep(8.0, 61).flat_map(|x| [x, -x]) {
            let want = gelu(x as f64);
            let got = gelu_f32(x) as f64;
            let err = (got - want).abs() - want.abs() * f32::EPSILON as f64;
            let scaled = err / (x as f64).abs().max(f32::MIN_POSITIVE as f64);
            if scaled > worst.0 {
                worst = (scaled, x);
            }
        }
        assert!(worst.0 <= 2e-7, "{} |x| at {}", worst.0, worst.1);
        // Exact 0 far left and exactly x far right, as x Φ(x) rounds there.
        for x in [5.55f32, 6.0, 100.0, 1e30] {
            assert_eq!(gelu_f32(x), x, "gelu_f32({x})");
            assert_eq!(gelu_f32(-x), 0.0, "gelu_f32(-{x})");
        }
        assert_eq!(gelu_f32(f32::INFINITY), f32::INFINITY);
        assert!(gelu_f32(f32::NAN).is_nan());
        // x/2 to full relative precision near 0.
        for x in [1e-30f32, 1e-8, -1e-8, f32::MIN_POSITIVE] {
            assert_eq!(gelu_f32(x), 0.5 * x, "gelu_f32({x})");
        }
    }

    #[test]
    fn erf_f32_special_values() {
        // erf x = 2x/sqrt(pi) to full relative precision for tiny x.
        for x in [1e-30f32, 1e-8, 1e-4, f32::MIN_POSITIVE] {
            let want = std::f64::consts::FRAC_2_SQRT_PI * x as f64;
            assert!(((erf_f32(x) as f64) / want - 1.0).abs() < 1.2e-7, "{x}");
        }
        assert_eq!(erf_f32(0.0).to_bits(), 0.0f32.to_bits());
        assert_eq!(erf_f32(-0.0).to_bits(), (-0.0f32).to_bits());
        // Exact saturation, so that GELU gives 0 (not a tiny residue) far left.
        for x in [3.92f32, 4.0, 10.0, 1e30, f32::INFINITY] {
            assert_eq!(erf_f32(x), 1.0, "erf_f32({x})");
            assert_eq!(erf_f32(-x), -1.0, "erf_f32(-{x})");
        }
        assert!(erf_f32(f32::NAN).is_nan());
    }
}
