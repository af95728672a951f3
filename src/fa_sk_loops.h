/* fa_sk_loops.h -- the per-step loops of scikit-learn's MLP training as fastact.sklearn
 * runs it in native epochs (Engine.sk_epoch, src/_nn_engine.pxi): the L2 penalty of
 * the dense weights (its gradient term and its sum of squares, both fused into the
 * update's pass) and scikit-learn's two optimizers (sklearn/neural_network/
 * _stochastic_optimizers.py).  Included by src/_nn.pyx (through src/_nn_sk.pxi); the
 * NumPy twin is fastact.reference.NumpyEngine.sk_epoch.
 *
 * Arithmetic is in the parameters' type, as scikit-learn's NumPy code does it for
 * float32 and float64 parameters.  Each loop is built for AVX-512, AVX2+FMA and the
 * baseline by gcc's target_clones, like src/fa_nn_loops.h (FMA contraction may change
 * the last bit between clones).
 */
#ifndef FA_SK_LOOPS_H
#define FA_SK_LOOPS_H

#include <math.h>
#include <stddef.h>

#ifndef FA_HAVE_AVX2_BUILD
#define FA_HAVE_AVX2_BUILD 1
#endif
#if FA_HAVE_AVX2_BUILD && defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) \
    && defined(__linux__)
#define FA_SK_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define FA_SK_CLONES
#endif

/* elements per pass: the sum of squares reads a chunk into L1 just before its update */
#define FA_SK_CHUNK 2048

#define FA_SK_LOOPS(T, S, SQRT)                                                                \
/* sum w^2 (in double; 32 running sums, so the loop vectorises into four independent    \
 * chains): scikit-learn's L2 term 0.5 alpha ||W||^2 / sum(s) of the loss.  Not a clone   \
 * itself: inlined into the clones below, with their instruction set. */                  \
static inline double fa_sk_sumsq_##S(const T *restrict w, ptrdiff_t n)                     \
{                                                                                          \
    double acc[32], s = 0.0;                                                               \
    ptrdiff_t i = 0;                                                                       \
    for (int j = 0; j < 32; j++) acc[j] = 0.0;                                             \
    for (; i + 32 <= n; i += 32)                                                           \
        for (int j = 0; j < 32; j++) acc[j] += (double)w[i + j] * (double)w[i + j];        \
    for (; i < n; i++) s += (double)w[i] * (double)w[i];                                   \
    for (int j = 0; j < 32; j++) s += acc[j];                                              \
    return s;                                                                              \
}                                                                                          \
/* AdamOptimizer, the gradient with the L2 term c p (c = alpha / sum(s) on the dense      \
 * weights, 0 elsewhere): g' = g + c p; m = b1 m + (1 - b1) g'; v = b2 v + (1 - b2) g'^2;   \
 * p += -lr_t m / (sqrt(v) + eps), lr_t = lr sqrt(1 - b2^t) / (1 - b1^t) (the caller's) */ \
FA_SK_CLONES static double fa_sk_adam_##S(T *restrict p, const T *restrict g,             \
                                          T *restrict m, T *restrict v, ptrdiff_t n,       \
                                          double b1, double b2, double lr_t, double eps,   \
                                          double c, int want_sq)                           \
{                                                                                          \
    const T tb1 = (T)b1, tc1 = (T)(1.0 - b1), tb2 = (T)b2, tc2 = (T)(1.0 - b2);            \
    const T tlr = (T)(-lr_t), teps = (T)eps, tc = (T)c;                                    \
    double sq = 0.0;                                                                       \
    for (ptrdiff_t i0 = 0; i0 < n; i0 += FA_SK_CHUNK) {                                    \
        const ptrdiff_t i1 = n - i0 < FA_SK_CHUNK ? n : i0 + FA_SK_CHUNK;                  \
        if (want_sq) sq += fa_sk_sumsq_##S(p + i0, i1 - i0); /* p before its update */    \
        for (ptrdiff_t i = i0; i < i1; i++) {                                              \
            T gi = g[i] + tc * p[i];                                                       \
            T mi = tb1 * m[i] + tc1 * gi;                                                  \
            T vi = tb2 * v[i] + tc2 * (gi * gi);                                           \
            m[i] = mi;                                                                     \
            v[i] = vi;                                                                     \
            p[i] = p[i] + tlr * mi / (SQRT(vi) + teps);                                    \
        }                                                                                  \
    }                                                                                      \
    return sq;                                                                             \
}                                                                                          \
/* SGDOptimizer, the gradient with the L2 term c p as in Adam: g' = g + c p;              \
 * vel = momentum vel - lr g'; p += momentum vel - lr g' (nesterov) or vel */              \
FA_SK_CLONES static double fa_sk_sgd_##S(T *restrict p, const T *restrict g,              \
                                         T *restrict vel, ptrdiff_t n, double lr,          \
                                         double momentum, int nesterov, double c,          \
                                         int want_sq)                                      \
{                                                                                          \
    const T tm = (T)momentum, tlr = (T)lr, tc = (T)c;                                      \
    double sq = 0.0;                                                                       \
    for (ptrdiff_t i0 = 0; i0 < n; i0 += FA_SK_CHUNK) {                                    \
        const ptrdiff_t i1 = n - i0 < FA_SK_CHUNK ? n : i0 + FA_SK_CHUNK;                  \
        if (want_sq) sq += fa_sk_sumsq_##S(p + i0, i1 - i0);                               \
        if (nesterov) {                                                                    \
            for (ptrdiff_t i = i0; i < i1; i++) {                                          \
                T gi = g[i] + tc * p[i];                                                   \
                T vi = tm * vel[i] - tlr * gi;                                             \
                vel[i] = vi;                                                               \
                p[i] = p[i] + (tm * vi - tlr * gi);                                        \
            }                                                                              \
        } else {                                                                           \
            for (ptrdiff_t i = i0; i < i1; i++) {                                          \
                T vi = tm * vel[i] - tlr * (g[i] + tc * p[i]);                             \
                vel[i] = vi;                                                               \
                p[i] = p[i] + vi;                                                          \
            }                                                                              \
        }                                                                                  \
    }                                                                                      \
    return sq;                                                                             \
}

FA_SK_LOOPS(float, f32, sqrtf)
FA_SK_LOOPS(double, f64, sqrt)

/* float32 Adam without the divider.  The loop above is bound by vsqrtps and vdivps (one
 * unit, some 22 cycles per 16 lanes on Sapphire Rapids, where the rest of the update
 * takes about 8): here sqrt(v) and the division come from vrsqrt14ps / vrcp14ps estimates
 * (14 bits) and one fused correction each (s = s0 + (v - s0^2) / (2 s0), q = q0 + (a - q0 d)
 * / d), some 2^-28 from exact before the final rounding, so the result is the correctly
 * rounded sqrt and quotient except within about 2^-4 ulp of a rounding boundary (then 1 ulp
 * off): the float32 update as scikit-learn's NumPy code forms it, to rounding.  v = 0
 * gives s = 0 exactly; a vector with a subnormal v, or an epsilon that is not a normal
 * float32, takes the exact loop. */
#if FA_HAVE_AVX2_BUILD && defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#include <float.h>
#define FA_SK_FAST_ADAM 1

__attribute__((target("avx512f"))) static void
fa_sk_adam_f32_avx512(float *restrict p, const float *restrict g, float *restrict m,
                      float *restrict v, ptrdiff_t n, float tb1, float tc1, float tb2,
                      float tc2, float tlr, float teps, float tc)
{   /* one chunk */
    const __m512 b1 = _mm512_set1_ps(tb1), c1 = _mm512_set1_ps(tc1);
    const __m512 b2 = _mm512_set1_ps(tb2), c2 = _mm512_set1_ps(tc2);
    const __m512 lr = _mm512_set1_ps(tlr), eps = _mm512_set1_ps(teps), c = _mm512_set1_ps(tc);
    const __m512 half = _mm512_set1_ps(0.5f), fmin = _mm512_set1_ps(FLT_MIN);
    const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f);
    ptrdiff_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 pi = _mm512_loadu_ps(p + i);
        /* g + c p, b1 m + (1 - b1) g, b2 v + (1 - b2) g^2: as the loop above (gcc fuses
         * the same products there) */
        __m512 gi = _mm512_fmadd_ps(c, pi, _mm512_loadu_ps(g + i));
        __m512 mi = _mm512_fmadd_ps(b1, _mm512_loadu_ps(m + i), _mm512_mul_ps(c1, gi));
        __m512 vi = _mm512_fmadd_ps(b2, _mm512_loadu_ps(v + i),
                                    _mm512_mul_ps(c2, _mm512_mul_ps(gi, gi)));
        _mm512_storeu_ps(m + i, mi);
        _mm512_storeu_ps(v + i, vi);
        __m512 a = _mm512_mul_ps(lr, mi);
        __mmask16 pos = _mm512_cmp_ps_mask(vi, zero, _CMP_GT_OQ);
        __mmask16 tiny = _mm512_mask_cmp_ps_mask(pos, vi, fmin, _CMP_LT_OQ);
        __m512 d;
        if (__builtin_expect(tiny != 0, 0)) {
            d = _mm512_add_ps(_mm512_sqrt_ps(vi), eps);
            _mm512_storeu_ps(p + i, _mm512_add_ps(pi, _mm512_div_ps(a, d)));
            continue;
        }
        /* 1 / sqrt(v) to about 2^-24 (one Newton step), then sqrt(v) = v y corrected */
        __m512 y = _mm512_maskz_rsqrt14_ps(pos, vi);
        __m512 hy = _mm512_mul_ps(half, y);
        y = _mm512_fmadd_ps(hy, _mm512_fnmadd_ps(_mm512_mul_ps(vi, y), y, one), y);
        hy = _mm512_mul_ps(half, y);
        __m512 s0 = _mm512_mul_ps(vi, y);                        /* 0 where v = 0 */
        __m512 r = _mm512_fnmadd_ps(s0, s0, vi);                 /* v - s0^2 */
        __m512 s = _mm512_fmadd_ps(r, hy, s0);
        d = _mm512_add_ps(s, eps);
        /* 1 / d to about 2^-24, then a / d = a rd corrected */
        __m512 rd = _mm512_rcp14_ps(d);
        rd = _mm512_fmadd_ps(rd, _mm512_fnmadd_ps(d, rd, one), rd);
        __m512 q0 = _mm512_mul_ps(a, rd);
        __m512 e = _mm512_fnmadd_ps(q0, d, a);                   /* a - q0 d */
        __m512 q = _mm512_fmadd_ps(e, rd, q0);
        _mm512_storeu_ps(p + i, _mm512_add_ps(pi, q));
    }
    for (; i < n; i++) {
        float gi = g[i] + tc * p[i];
        float mi = tb1 * m[i] + tc1 * gi;
        float vi = tb2 * v[i] + tc2 * (gi * gi);
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] + tlr * mi / (sqrtf(vi) + teps);
    }
}

/* the chunks of fa_sk_adam_f32 (the sum of squares inlined here, in AVX-512) */
__attribute__((target("avx512f"))) static double
fa_sk_adam_f32_chunks(float *restrict p, const float *restrict g, float *restrict m,
                      float *restrict v, ptrdiff_t n, double b1, double b2, double lr_t,
                      float teps, double c, int want_sq)
{
    double sq = 0.0;
    for (ptrdiff_t i0 = 0; i0 < n; i0 += FA_SK_CHUNK) {
        const ptrdiff_t i1 = n - i0 < FA_SK_CHUNK ? n : i0 + FA_SK_CHUNK;
        if (want_sq) sq += fa_sk_sumsq_f32(p + i0, i1 - i0);
        fa_sk_adam_f32_avx512(p + i0, g + i0, m + i0, v + i0, i1 - i0, (float)b1,
                              (float)(1.0 - b1), (float)b2, (float)(1.0 - b2), (float)(-lr_t),
                              teps, (float)c);
    }
    return sq;
}

static int fa_sk_avx512 = -1;

static double fa_sk_adam_f32_fast(float *restrict p, const float *restrict g,
                                  float *restrict m, float *restrict v, ptrdiff_t n,
                                  double b1, double b2, double lr_t, double eps, double c,
                                  int want_sq)
{
    const float teps = (float)eps;
    if (fa_sk_avx512 < 0) fa_sk_avx512 = __builtin_cpu_supports("avx512f") ? 1 : 0;
    if (!fa_sk_avx512 || !(teps >= FLT_MIN && teps <= 1.0f))
        return fa_sk_adam_f32(p, g, m, v, n, b1, b2, lr_t, eps, c, want_sq);
    return fa_sk_adam_f32_chunks(p, g, m, v, n, b1, b2, lr_t, teps, c, want_sq);
}
#else
#define FA_SK_FAST_ADAM 0
#define fa_sk_adam_f32_fast fa_sk_adam_f32
#endif

#undef FA_SK_LOOPS
#endif
