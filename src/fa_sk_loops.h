/* fa_sk_loops.h -- the per-step loops of scikit-learn's MLP training as fastact.sklearn
 * runs it in native epochs (Engine.sk_epoch, src/_nn_engine.pxi): the L2 penalty of
 * the dense weights and scikit-learn's two optimizers (sklearn/neural_network/
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

#define FA_SK_LOOPS(T, S, SQRT)                                                                \
/* the L2 penalty of one weight matrix: g += c w (c = alpha / sum of the batch's sample    \
 * weights); returns sum w^2 (in double) for the loss's 0.5 alpha ||W||^2 / sum term */    \
FA_SK_CLONES static double fa_sk_decay_##S(const T *restrict w, T *restrict g, ptrdiff_t n, \
                                           double c)                                       \
{                                                                                          \
    const T tc = (T)c;                                                                     \
    double acc[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0}, s = 0.0;                     \
    ptrdiff_t i = 0;                                                                       \
    for (; i + 8 <= n; i += 8) {       /* eight running sums: the loop vectorises */       \
        for (int j = 0; j < 8; j++) {                                                      \
            acc[j] += (double)w[i + j] * (double)w[i + j];                                 \
            g[i + j] = g[i + j] + tc * w[i + j];                                           \
        }                                                                                  \
    }                                                                                      \
    for (; i < n; i++) {                                                                   \
        s += (double)w[i] * (double)w[i];                                                  \
        g[i] = g[i] + tc * w[i];                                                           \
    }                                                                                      \
    for (int j = 0; j < 8; j++) s += acc[j];                                               \
    return s;                                                                              \
}                                                                                          \
/* AdamOptimizer: m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;                          \
 * p += -lr_t m / (sqrt(v) + eps), lr_t = lr sqrt(1 - b2^t) / (1 - b1^t) (the caller's) */ \
FA_SK_CLONES static void fa_sk_adam_##S(T *restrict p, const T *restrict g, T *restrict m, \
                                        T *restrict v, ptrdiff_t n, double b1, double b2,  \
                                        double lr_t, double eps)                           \
{                                                                                          \
    const T tb1 = (T)b1, tc1 = (T)(1.0 - b1), tb2 = (T)b2, tc2 = (T)(1.0 - b2);            \
    const T tlr = (T)(-lr_t), teps = (T)eps;                                               \
    for (ptrdiff_t i = 0; i < n; i++) {                                                    \
        T gi = g[i];                                                                       \
        T mi = tb1 * m[i] + tc1 * gi;                                                      \
        T vi = tb2 * v[i] + tc2 * (gi * gi);                                               \
        m[i] = mi;                                                                         \
        v[i] = vi;                                                                         \
        p[i] = p[i] + tlr * mi / (SQRT(vi) + teps);                                        \
    }                                                                                      \
}                                                                                          \
/* SGDOptimizer: vel = momentum vel - lr g; p += momentum vel - lr g (nesterov) or vel */  \
FA_SK_CLONES static void fa_sk_sgd_##S(T *restrict p, const T *restrict g, T *restrict vel, \
                                       ptrdiff_t n, double lr, double momentum,            \
                                       int nesterov)                                       \
{                                                                                          \
    const T tm = (T)momentum, tlr = (T)lr;                                                 \
    if (nesterov) {                                                                        \
        for (ptrdiff_t i = 0; i < n; i++) {                                                \
            T vi = tm * vel[i] - tlr * g[i];                                               \
            vel[i] = vi;                                                                   \
            p[i] = p[i] + (tm * vi - tlr * g[i]);                                          \
        }                                                                                  \
    } else {                                                                               \
        for (ptrdiff_t i = 0; i < n; i++) {                                                \
            T vi = tm * vel[i] - tlr * g[i];                                               \
            vel[i] = vi;                                                                   \
            p[i] = p[i] + vi;                                                              \
        }                                                                                  \
    }                                                                                      \
}

FA_SK_LOOPS(float, f32, sqrtf)
FA_SK_LOOPS(double, f64, sqrt)

#undef FA_SK_LOOPS
#endif
