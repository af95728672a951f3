/* fa_math.h -- branch-free double-precision primitives that gcc can vectorise.
 *
 * Used by every float64 kernel, and by the float32 kernels where an exp
 * argument is itself a rounded product (gelu, softplus with beta not a power
 * of two): each primitive is accurate to a few 1e-16 relative (stated per
 * function), far inside the float64 contract of 1e-12 and, for float32, a
 * result within 1 ulp (0.5 ulp from the final rounding).
 *
 * Every function here is a straight line of arithmetic, selects (?:) and
 * integer bit operations: no calls, no branches that depend on data, so a
 * loop over them vectorises (4 doubles per AVX2 instruction).  Out-of-range
 * arguments are clamped, never trapped; NaN propagates through every path.
 */
#ifndef FA_MATH_H
#define FA_MATH_H

#include <stdint.h>
#include <string.h>
#include <math.h>

/* FA_INLINE: the math primitives and activation bodies are always inlined, so the
 * loops of fa_kernels_impl.h vectorise.  gcc's unit-growth limits otherwise stop inlining
 * once a translation unit holds enough other inline code: adding the explicit-vector
 * loops to fa_kernels_avx2.c / fa_kernels_avx512.c left fa_exp a scalar call in the
 * float64 gelu and celu loops (5x slower) until this. */
#ifndef FA_INLINE
#if defined(__GNUC__) || defined(__clang__)
#define FA_INLINE static inline __attribute__((always_inline))
#else
#define FA_INLINE static inline
#endif
#endif

#include "erfcx_coeffs.h"

FA_INLINE double fa_from_bits(uint64_t u) { double d; memcpy(&d, &u, sizeof d); return d; }
FA_INLINE uint64_t fa_to_bits(double d) { uint64_t u; memcpy(&u, &d, sizeof u); return u; }

/* exp(x).  Range reduction x = k ln2 + r, |r| <= ln2/2 (Cody-Waite, ln2 split
 * so that k*FA_LN2_HI is exact), then the Taylor polynomial of degree 12:
 * truncation error (ln2/2)^13/13! = 1.7e-16 relative at the ends of the
 * range.  2^k is applied as two factors 2^(k/2) 2^(k - k/2), each a normal
 * double, so subnormal results are rounded once and x < -745.2 gives 0.
 * x is clamped to [-746, 709.7] (exp(709.7) = 1.6e308: callers never need
 * more, they select x itself for large x).  NaN fails both clamps and flows on. */
#define FA_LN2_HI 0x1.62e42fee00000p-1   /* 18 significant bits: k*HI is exact */
#define FA_LN2_LO 0x1.a39ef35793c76p-33
FA_INLINE double fa_exp(double x)
{
    const double shifter = 0x1.8p52;   /* adding it rounds to an integer in the low bits */
    x = x < -746.0 ? -746.0 : x;
    x = x > 709.7 ? 709.7 : x;
    double kd = x * 0x1.71547652b82fep0 + shifter;   /* round(x / ln2) */
    int64_t k = (int64_t)(fa_to_bits(kd) - fa_to_bits(shifter));   /* in [-1077, 1024] */
    kd -= shifter;
    double r = x - kd * FA_LN2_HI;
    r = r - kd * FA_LN2_LO;
    double p = 1.0 / 479001600.0;                    /* 1/12! */
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * (r * r) + r + 1.0;
    int64_t k1 = k >> 1;
    int64_t k2 = k - k1;
    double s1 = fa_from_bits((uint64_t)(k1 + 1023) << 52);
    double s2 = fa_from_bits((uint64_t)(k2 + 1023) << 52);
    return (p * s1) * s2;
}

/* expm1(x) = exp(x) - 1 without cancellation near 0.  For |x| < ln2/2 the
 * Taylor series to degree 12 (truncation 5e-16 relative); elsewhere
 * exp(x) - 1 loses nothing because |exp(x) - 1| >= 0.29.  x = -inf gives -1. */
FA_INLINE double fa_expm1(double x)
{
    double p = 1.0 / 479001600.0;                    /* 1/12! */
    p = p * x + 1.0 / 39916800.0;
    p = p * x + 1.0 / 3628800.0;
    p = p * x + 1.0 / 362880.0;
    p = p * x + 1.0 / 40320.0;
    p = p * x + 1.0 / 5040.0;
    p = p * x + 1.0 / 720.0;
    p = p * x + 1.0 / 120.0;
    p = p * x + 1.0 / 24.0;
    p = p * x + 1.0 / 6.0;
    p = p * x + 0.5;
    double small = x + x * (x * p);
    double big = fa_exp(x) - 1.0;
    /* expm1 has x's sign: -0 + (+0) rounds to +0, and elu(-0) = alpha expm1(-0) = -0 */
    return copysign(fabs(x) < 0.34657359027997264 ? small : big, x);
}

/* log1p(u) for u in [0, 1] (the only use: log1p(exp(-|x|))).
 * With s = u / (2 + u), which needs no rounding of 1 + u, log1p(u) =
 * 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...), s in [0, 1/3].  Terms to s^31:
 * truncation (1/9)^16 * 3/33 = 5e-17 relative. */
FA_INLINE double fa_log1p01(double u)
{
    double s = u / (2.0 + u);
    double s2 = s * s;
    double p = 1.0 / 31.0;
    p = p * s2 + 1.0 / 29.0;
    p = p * s2 + 1.0 / 27.0;
    p = p * s2 + 1.0 / 25.0;
    p = p * s2 + 1.0 / 23.0;
    p = p * s2 + 1.0 / 21.0;
    p = p * s2 + 1.0 / 19.0;
    p = p * s2 + 1.0 / 17.0;
    p = p * s2 + 1.0 / 15.0;
    p = p * s2 + 1.0 / 13.0;
    p = p * s2 + 1.0 / 11.0;
    p = p * s2 + 1.0 / 9.0;
    p = p * s2 + 1.0 / 7.0;
    p = p * s2 + 1.0 / 5.0;
    p = p * s2 + 1.0 / 3.0;
    p = p * s2 + 1.0;
    return 2.0 * s * p;
}

/* tanh(x) = sign(x) * (-e) / (2 + e) with e = expm1(-2|x|) in (-1, 0]:
 * no cancellation anywhere (both e and 2 + e are computed to full relative
 * precision); tanh(+-inf) = +-1, tanh(-0) = -0. */
FA_INLINE double fa_tanh(double x)
{
    double e = fa_expm1(-2.0 * fabs(x));
    return copysign(-e / (2.0 + e), x);
}

/* erfc(t) for t >= 0, as erfcx(t) * exp(-t^2): erfcx from the fitted
 * polynomial in erfcx_coeffs.h (see tools/fit_erfcx.py), exp from fa_exp.
 * t is clamped to 1e6 by the caller's clamp of x, so no inf reaches erfcx. */
FA_INLINE double fa_erfc_pos(double t)
{
    return fa_erfcx_poly(t) * fa_exp(-t * t);
}

#endif /* FA_MATH_H */
