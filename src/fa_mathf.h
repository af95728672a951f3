/* fa_mathf.h -- branch-free float32 primitives that gcc can vectorise
 * (8 floats per AVX2 instruction, twice the lanes of fa_math.h).
 *
 * Used by the float32 kernels wherever the argument of exp is the input
 * itself (or an exact multiple of it), so no rounding of the argument is
 * amplified by exp.  Accuracy (measured by tests/test_activations.py against
 * float64 over dense sweeps): fa_expf <= 1 ulp, normal and subnormal results
 * alike; the activations built on them stay within the 4-ulp contract.
 * Coefficients: Cephes (S. L. Moshier) expf and tanhf minimax polynomials.
 */
#ifndef FA_MATHF_H
#define FA_MATHF_H

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

FA_INLINE float fa_from_bitsf(uint32_t u) { float f; memcpy(&f, &u, sizeof f); return f; }
FA_INLINE uint32_t fa_to_bitsf(float f) { uint32_t u; memcpy(&u, &f, sizeof u); return u; }

/* exp(x) for float.  x = k ln2 + r, |r| <= ln2/2, ln2 split in two (Cephes
 * C1 + C2) so k*C1 is exact; Cephes' degree-7 minimax for e^r.  The scale
 * 2^k is applied as two factors 2^(k/2) 2^(k - k/2), each a normal float, so
 * results in the subnormal range are rounded once and x < -104 gives 0.
 * x is clamped to [-104, 88.7]: exp(+large) is never needed by a caller
 * (they select x itself there).  NaN fails both clamps and propagates. */
FA_INLINE float fa_expf(float x)
{
    const float shifter = 0x1.8p23f;
    x = x < -104.0f ? -104.0f : x;
    x = x > 88.7f ? 88.7f : x;
    float kf = x * 1.44269504088896341f + shifter;       /* round(x / ln2) */
    int32_t k = (int32_t)(fa_to_bitsf(kf) - fa_to_bitsf(shifter));
    kf -= shifter;
    float r = x - kf * 0.693359375f;
    r = r - kf * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    int32_t k1 = k >> 1;                                 /* k in [-150, 128] */
    int32_t k2 = k - k1;
    float s1 = fa_from_bitsf((uint32_t)(k1 + 127) << 23);
    float s2 = fa_from_bitsf((uint32_t)(k2 + 127) << 23);
    return (p * s1) * s2;
}

/* expm1(x) for x <= 0 (every caller: elu family, tanh).  |x| < ln2: Taylor
 * to degree 9 (truncation 1e-8 relative); below, e^x <= 1/2 and e^x - 1 is
 * exact, so the error is that of fa_expf scaled by e^x/(1 - e^x) <= 1. */
FA_INLINE float fa_expm1f(float x)
{
    float p = 1.0f / 362880.0f;
    p = p * x + 1.0f / 40320.0f;
    p = p * x + 1.0f / 5040.0f;
    p = p * x + 1.0f / 720.0f;
    p = p * x + 1.0f / 120.0f;
    p = p * x + 1.0f / 24.0f;
    p = p * x + 1.0f / 6.0f;
    p = p * x + 0.5f;
    float small = x + x * (x * p);
    float big = fa_expf(x) - 1.0f;
    float ax = x < 0 ? -x : x;
    /* expm1 has x's sign: -0 + (+0) rounds to +0, and elu(-0) = alpha expm1(-0) = -0 */
    return copysignf(ax < 0.693147f ? small : big, x);
}

/* log1p(u) for u in [0, 1]: 2 atanh(s), s = u / (2 + u) in [0, 1/3], series
 * to s^15 (truncation (1/9)^8 / 17 = 1.4e-9 relative). */
FA_INLINE float fa_log1p01f(float u)
{
    float s = u / (2.0f + u);
    float s2 = s * s;
    float p = 1.0f / 15.0f;
    p = p * s2 + 1.0f / 13.0f;
    p = p * s2 + 1.0f / 11.0f;
    p = p * s2 + 1.0f / 9.0f;
    p = p * s2 + 1.0f / 7.0f;
    p = p * s2 + 1.0f / 5.0f;
    p = p * s2 + 1.0f / 3.0f;
    p = p * s2 + 1.0f;
    return 2.0f * s * p;
}

/* tanh(x): |x| < 0.625 Cephes' odd minimax polynomial; above,
 * 1 - 2 / (e^(2|x|) + 1) (>= 0.55, no cancellation), sign restored. */
FA_INLINE float fa_tanhf(float x)
{
    float ax = x < 0 ? -x : x;
    float z = x * x;
    float p = -5.70498872745e-3f;
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    float small = copysignf(p * z * x + x, x);     /* tanh(-0) = -0 */
    float big = 1.0f - 2.0f / (fa_expf(2.0f * ax) + 1.0f);
    big = x < 0 ? -big : big;
    return ax < 0.625f ? small : big;
}

#endif /* FA_MATHF_H */
