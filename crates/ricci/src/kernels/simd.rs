//! Runtime SIMD dispatch and vectorisable math.
//!
//! The build targets baseline x86-64 (SSE2) so the binary runs anywhere.
//! [`dispatch_kernel`] runs a [`Kernel`] inside a function compiled with
//! AVX2 + FMA when the CPU has them, where LLVM vectorises its loops 8
//! lanes wide. The math below is branch-free so that it vectorises at all
//! (`f32::exp` from libm does not).

/// A loop for [`dispatch_kernel`]. Implementations mark `run`
/// `#[inline(always)]`, so its body is always compiled inside the AVX2 +
/// FMA function. (A closure handed to such a function is compiled there
/// only if LLVM chooses to inline it, which it declined for larger bodies:
/// the binary-op and softmax row closures used to run as SSE2 code, with no
/// ymm register in them.)
pub trait Kernel {
    type Output;
    fn run(self) -> Self::Output;
}

/// Runs `k` compiled for AVX2 + FMA when the CPU supports them.
#[inline(always)]
pub fn dispatch_kernel<K: Kernel>(k: K) -> K::Output {
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx2_fma() {
            // SAFETY: the CPU supports the features this function enables.
            return unsafe { kernel_avx2_fma(k) };
        }
    }
    k.run()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn kernel_avx2_fma<K: Kernel>(k: K) -> K::Output {
    k.run()
}

#[cfg(target_arch = "x86_64")]
fn has_avx2_fma() -> bool {
    use std::sync::atomic::{AtomicU8, Ordering};
    static STATE: AtomicU8 = AtomicU8::new(0); // 0 unknown, 1 no, 2 yes
    match STATE.load(Ordering::Relaxed) {
        2 => true,
        1 => false,
        _ => {
            let yes = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
            STATE.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
            yes
        }
    }
}

/// `a * b + c` rounded once. Inside a [`Kernel`] run on AVX2 + FMA this is
/// one `vfmadd` instruction (half the latency of a multiply then an add on
/// a Horner chain: `tanh_f32` measured 1.4x faster); anywhere else it is a
/// call to libm's exact `fmaf` (DESIGN: 4x slower), so the functions below
/// give the same bits either way and belong in kernels.
#[inline(always)]
pub fn fma(a: f32, b: f32, c: f32) -> f32 {
    a.mul_add(b, c)
}

/// `e^x` in f32, branch-free (vectorises), within 2 ulp of the exact value.
///
/// `x = n ln2 + r` with `|r| <= ln2 / 2` (Cody-Waite split of ln 2), `e^r`
/// by its degree-7 Taylor polynomial (truncation error below 1e-8
/// relative), and `2^n` assembled from exponent bits in two halves so that
/// overflow gives `inf` and underflow gives 0 naturally.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding then subtracting 1.5 * 2^23 rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let xc = x.clamp(-104.0, 89.0);
    let shifted = fma(xc, LOG2E, ROUND);
    let n = shifted - ROUND;
    // The integer n sits in the low mantissa bits of `shifted`; reading it
    // from the bits (not `n as i32`, which is a scalar saturating cast)
    // keeps the loop vectorised.
    let ni = shifted.to_bits() as i32 - ROUND.to_bits() as i32;
    let r = fma(-n, LN2_LO, fma(-n, LN2_HI, xc));
    let mut p = 1.0 / 5040.0;
    for c in [
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = fma(p, r, c);
    }
    let h = ni >> 1;
    let s1 = f32::from_bits(((h + 127) as u32) << 23);
    let s2 = f32::from_bits(((ni - h + 127) as u32) << 23);
    let y = p * s1 * s2;
    // clamp() keeps NaN; make sure it comes out as NaN, not a finite number.
    if x.is_nan() {
        x
    } else {
        y
    }
}

/// `tanh x` in f32, branch-free (vectorises), within 2 ulp of the exact value.
///
/// Below `|x| = 0.55` (where tanh reaches 1/2) an odd polynomial
/// `x + x^3 R(x^2)` (R fitted by `scripts/fixtures/tanh_f32_fit.py`, under
/// 1 ulp): the textbook `1 - 2 / (e^2x + 1)` would cancel there, and
/// `tanh x = x` must hold to full relative accuracy for tiny `x`. Above it
/// that formula loses nothing, saturates to exactly 1 once `e^2x` is large
/// (`exp_f32` gives inf, `2 / inf = 0`), and propagates NaN. Both branches
/// are computed and one is selected, so there is no data-dependent branch;
/// the sign is restored with `copysign`, which keeps `tanh(-0) = -0`.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    const R: [f32; 5] = [
        -0.333_333_16,
        0.133_325_86,
        -0.053_852_31,
        0.021_071_678,
        -0.006_274_237_8,
    ];
    let a = x.abs();
    let t = a * a;
    let r = fma(t, fma(t, fma(t, fma(t, R[4], R[3]), R[2]), R[1]), R[0]);
    let small = fma(a * t, r, a);
    let large = 1.0 - 2.0 / (exp_f32(a + a) + 1.0);
    let y = if a < 0.55 { small } else { large };
    y.copysign(x)
}

/// `|got - want|` in units in the last place of `want` as an f32
/// (`2^(e - 23)` for `want` in `[2^e, 2^(e+1))`, 2^-149 among subnormals).
#[cfg(test)]
pub(crate) fn ulp_error(got: f32, want: f64) -> f64 {
    let e = want.abs().log2().floor().max(-126.0);
    (got as f64 - want).abs() / (e - 23.0).exp2()
}

/// Every `step`-th f32 from 0 up to `max` (bit patterns, so every binade
/// gets its share, subnormals included).
#[cfg(test)]
pub(crate) fn sweep(max: f32, step: u32) -> impl Iterator<Item = f32> {
    (0..max.to_bits())
        .step_by(step as usize)
        .map(f32::from_bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_f32_is_within_two_ulp_of_f64_exp() {
        let mut x = -103.0f32;
        while x < 88.7 {
            let want = (x as f64).exp();
            let got = exp_f32(x) as f64;
            let ulp = (want as f32).abs() as f64 * f32::EPSILON as f64;
            if want > 1.2e-38 {
                assert!(
                    (got - want).abs() <= 2.0 * ulp,
                    "exp({x}) = {got}, want {want}"
                );
            } else {
                assert!((got - want).abs() < 1.5e-38);
            }
            x += 0.0137;
        }
        assert_eq!(exp_f32(100.0), f32::INFINITY);
        assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp_f32(-200.0), 0.0);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert!(exp_f32(f32::NAN).is_nan());
        assert_eq!(exp_f32(0.0), 1.0);
    }

    #[test]
    fn tanh_f32_is_within_two_ulp_of_f64_tanh_and_odd() {
        let mut worst = (0.0, 0.0f32);
        for x in sweep(12.0, 97) {
            let got = tanh_f32(x);
            let err = ulp_error(got, (x as f64).tanh());
            if err > worst.0 {
                worst = (err, x);
            }
            assert_eq!(tanh_f32(-x).to_bits(), (-got).to_bits(), "tanh_f32(-{x})");
        }
        assert!(worst.0 <= 2.0, "{} ulp at {}", worst.0, worst.1);
    }

    #[test]
    fn tanh_f32_special_values() {
        // tanh x = x to full precision for tiny x, subnormals included.
        for x in [1e-30f32, 1e-10, 3e-5, 1e-40, f32::MIN_POSITIVE] {
            assert_eq!(tanh_f32(x), x);
            assert_eq!(tanh_f32(-x), -x);
        }
        assert_eq!(tanh_f32(0.0).to_bits(), 0.0f32.to_bits());
        assert_eq!(tanh_f32(-0.0).to_bits(), (-0.0f32).to_bits());
        // Saturation is exact: f32's tanh rounds to 1 from 9.01 on.
        for x in [9.1f32, 20.0, 100.0, 1e30, f32::MAX, f32::INFINITY] {
            assert_eq!(tanh_f32(x), 1.0, "tanh_f32({x})");
            assert_eq!(tanh_f32(-x), -1.0, "tanh_f32(-{x})");
        }
        assert!(tanh_f32(f32::NAN).is_nan());
        assert!(tanh_f32(-f32::NAN).is_nan());
        // Both sides of the switch between polynomial and exp form.
        for x in [0.549_999_9f32, 0.55, 0.550_000_1] {
            assert!(ulp_error(tanh_f32(x), (x as f64).tanh()) <= 1.5);
        }
    }
}
