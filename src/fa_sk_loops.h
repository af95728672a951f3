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

#undef FA_SK_LOOPS
#endif
