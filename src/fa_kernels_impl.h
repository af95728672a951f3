/* fa_kernels_impl.h -- every loop, generated from the activation list.
 *
 * Included once per instruction set by fa_kernels_<isa>.c, which defines
 * FA_IMPL_NAME (the fa_impl table it exports) before including this file.
 * The loops are stamped out per activation and dtype by macros, not called
 * through a function pointer per element: the scalar math is inlined and
 * the loop body vectorises (check with -fopt-info-vec).
 *
 * Elementwise loops carry FA_IVDEP: y[i] depends on x[i] only, so they are
 * correct when y == x (in-place); partial overlaps are excluded by the Python
 * layer.  Without it gcc versions the loop on an overlap test and runs the
 * in-place case scalar.
 */
#include "fa_impl.h"
#include "fa_acts.h"
#include "fa_colsum.h"

#if defined(__clang__)
#define FA_IVDEP _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__)
#define FA_IVDEP _Pragma("GCC ivdep")
#else
#define FA_IVDEP
#endif

/* ---- elementwise and bias-fused loops, per activation and dtype --------- */
/* Plain loops, no software prefetch (the hand-vectorised loops have it, FA_PREFETCH):
 * prefetching a chunk at a time here gained 5-13% at 1e6 elements for the
 * transcendental loops, but cost ~10% at 1e5 for the piecewise-linear ones on AVX2, left
 * gcc's softsign loop scalar (13x slower), and made the chunked and plain loops round
 * some float32 softplus results differently (breaking the bit-identical results across
 * thread counts, test_threads_bit_identical_elementwise). */
#define FA_GEN_TYPED(name, T, S, FWD, BWD)                                              \
    static void L_##name##_fwd_##S(const void *xv, void *yv, ptrdiff_t n,               \
                                   const fa_params *pp)                                 \
    {                                                                                   \
        const T *x = (const T *)xv;                                                     \
        T *y = (T *)yv;                                                                 \
        const fa_params p = *pp;                                                        \
        FA_IVDEP                                                                        \
        for (ptrdiff_t i = 0; i < n; i++) y[i] = FWD((double)x[i], p);                  \
    }                                                                                   \
    static void L_##name##_bwd_##S(const void *gv, const void *sv, void *ov, ptrdiff_t n, \
                                   const fa_params *pp)                                 \
    {                                                                                   \
        const T *g = (const T *)gv, *s = (const T *)sv;                                 \
        T *o = (T *)ov;                                                                 \
        const fa_params p = *pp;                                                        \
        FA_IVDEP                                                                        \
        for (ptrdiff_t i = 0; i < n; i++) o[i] = BWD((double)g[i], (double)s[i], p);    \
    }                                                                                   \
    static void L_##name##_bias_fwd_##S(const void *zv, const void *bv, void *yv,       \
                                        ptrdiff_t rows, ptrdiff_t cols,                 \
                                        const fa_params *pp)                            \
    {                                                                                   \
        const T *b = (const T *)bv;                                                     \
        const fa_params p = *pp;                                                        \
        for (ptrdiff_t r = 0; r < rows; r++) {                                          \
            const T *z = (const T *)zv + r * cols;                                      \
            T *y = (T *)yv + r * cols;                                                  \
            FA_IVDEP                                                                    \
            for (ptrdiff_t j = 0; j < cols; j++)                                        \
                y[j] = FWD((double)(T)(z[j] + b[j]), p);                                \
        }                                                                               \
    }                                                                                   \
    /* the column sums in registers (fa_colsum.h), FA_CS_W columns at a time; the last  \
     * columns row by row */                                                            \
    static void L_##name##_bias_bwd_##S(const void *gv, const void *sv, const void *bv, \
                                        void *dzv, double *db, ptrdiff_t rows,          \
                                        ptrdiff_t cols, const fa_params *pp)            \
    {                                                                                   \
        const T *b = (const T *)bv;                                                     \
        const fa_params p = *pp;                                                        \
        ptrdiff_t j0 = 0;                                                               \
        for (; FA_CS_ON && j0 + FA_CS_W <= cols; j0 += FA_CS_W) {                       \
            FA_CS_OPEN(db + j0);                                                        \
            for (ptrdiff_t r = 0; r < rows; r++) {                                      \
                const T *g = (const T *)gv + r * cols + j0;                             \
                const T *s = (const T *)sv + r * cols + j0;                             \
                T *dz = (T *)dzv + r * cols + j0;                                       \
                if (b) {                                                                \
                    FA_IVDEP                                                            \
                    for (ptrdiff_t j = 0; j < FA_CS_W; j++)                             \
                        dz[j] = BWD((double)g[j], (double)(T)(s[j] + b[j0 + j]), p);    \
                } else {                                                                \
                    FA_IVDEP                                                            \
                    for (ptrdiff_t j = 0; j < FA_CS_W; j++)                             \
                        dz[j] = BWD((double)g[j], (double)s[j], p);                     \
                }                                                                       \
                FA_CS_ROW(S, dz);                                                       \
            }                                                                           \
            FA_CS_CLOSE(db + j0);                                                       \
        }                                                                               \
        if (j0 == cols) return;                                                         \
        for (ptrdiff_t r = 0; r < rows; r++) {                                          \
            const T *g = (const T *)gv + r * cols, *s = (const T *)sv + r * cols;       \
            T *dz = (T *)dzv + r * cols;                                                \
            if (b) {                                                                    \
                FA_IVDEP                                                                \
                for (ptrdiff_t j = j0; j < cols; j++) {                                 \
                    T v = BWD((double)g[j], (double)(T)(s[j] + b[j]), p);               \
                    dz[j] = v;                                                          \
                    db[j] += (double)v;                                                 \
                }                                                                       \
            } else {                                                                    \
                FA_IVDEP                                                                \
                for (ptrdiff_t j = j0; j < cols; j++) {                                 \
                    T v = BWD((double)g[j], (double)s[j], p);                           \
                    dz[j] = v;                                                          \
                    db[j] += (double)v;                                                 \
                }                                                                       \
            }                                                                           \
        }                                                                               \
    }

#define FA_GEN(name)                                                                    \
    FA_GEN_TYPED(name, float, f32, fa_##name##_fwd_f, fa_##name##_bwd_f)                \
    FA_GEN_TYPED(name, double, f64, fa_##name##_fwd_d, fa_##name##_bwd_d)
FA_ACTIVATIONS(FA_GEN)
#undef FA_GEN

/* ---- prelu: one slope per column ------------------------------------------ */
#define FA_GEN_PRELU(T, S)                                                              \
    static void L_prelu_fwd_##S(const void *xv, const void *wv, void *yv, ptrdiff_t rows, \
                                ptrdiff_t cols)                                         \
    {                                                                                   \
        const T *w = (const T *)wv;                                                     \
        for (ptrdiff_t r = 0; r < rows; r++) {                                          \
            const T *x = (const T *)xv + r * cols;                                      \
            T *y = (T *)yv + r * cols;                                                  \
            FA_IVDEP                                                                    \
            for (ptrdiff_t j = 0; j < cols; j++) {                                      \
                double v = (double)x[j], wj = (double)w[j];                             \
                /* a zero slope gives 0 even at -inf (not -inf * 0); NaN stays */        \
                y[j] = (T)(v > 0 ? v : (wj == 0 && v == v ? 0.0 : wj * v));             \
            }                                                                           \
        }                                                                               \
    }                                                                                   \
    static void L_prelu_bwd_##S(const void *gv, const void *xv, const void *wv,         \
                                void *gxv, double *gw, ptrdiff_t rows, ptrdiff_t cols)  \
    {                                                                                   \
        const T *w = (const T *)wv;                                                     \
        for (ptrdiff_t r = 0; r < rows; r++) {                                          \
            const T *x = (const T *)xv + r * cols, *g = (const T *)gv + r * cols;       \
            T *gx = (T *)gxv + r * cols;                                                \
            FA_IVDEP                                                                    \
            for (ptrdiff_t j = 0; j < cols; j++) {                                      \
                double v = (double)x[j], gg = (double)g[j];                             \
                /* NaN in x: both selects fall through to v and give NaN */             \
                double d = v > 0 ? 1.0 : (v <= 0 ? (double)w[j] : v);                  \
                gx[j] = (T)(gg * d);                                                    \
                gw[j] += v > 0 ? 0.0 : v * gg;                                          \
            }                                                                           \
        }                                                                               \
    }
FA_GEN_PRELU(float, f32)
FA_GEN_PRELU(double, f64)

/* ---- softmax family, row by row; sums in double ---------------------------- */
#define FA_GEN_SOFTMAX(T, S, EXP)                                                       \
    static double fa_rowmax_##S(const T *x, ptrdiff_t cols)                             \
    {                                                                                   \
        double m = -INFINITY;                                                           \
        for (ptrdiff_t j = 0; j < cols; j++) m = (double)x[j] > m ? (double)x[j] : m;   \
        return m;  /* NaN entries are skipped here and propagate through exp */         \
    }                                                                                   \
    /* log(sum_j exp(x_j - m)) as log1p of the sum without the first maximum's term   \
     * (exactly 1): log(1 + s) of the rounded sum loses s's digits when s is tiny (a  \
     * confident row: log_softmax of its top logit near -1e-13 was 1e-4 off) */        \
    static double fa_log_sum1_##S(const T *x, ptrdiff_t cols, double m)                 \
    {                                                                                   \
        double s1 = 0.0;                                                                \
        int one = 0;                                                                    \
        for (ptrdiff_t j = 0; j < cols; j++) {                                          \
            double d = (double)x[j] - m;                                                \
            if (!one && d == 0.0) {                                                     \
                one = 1;                                                                \
                continue;                                                               \
            }                                                                           \
            s1 += EXP(d);                                                               \
        }                                                                               \
        return log1p(s1);                                                               \
    }                                                                                   \
    static void L_softmax_fwd_##S(int log_, const void *xv, void *yv, ptrdiff_t rows,   \
                                  ptrdiff_t cols)                                       \
    {                                                                                   \
        for (ptrdiff_t r = 0; r < rows; r++) {                                          \
            const T *x = (const T *)xv + r * cols;                                      \
            T *y = (T *)yv + r * cols;                                                  \
            double m = fa_rowmax_##S(x, cols), sum = 0.0;                               \
            if (log_) {                                                                 \
                double ls = fa_log_sum1_##S(x, cols, m); /* (x - m) - ls, that order */ \
                FA_IVDEP                                                                \
                for (ptrdiff_t j = 0; j < cols; j++) y[j] = (T)(((double)x[j] - m) - ls); \
            } else {                                                                    \
                FA_IVDEP                                                                \
                for (ptrdiff_t j = 0; j < cols; j++) {                                  \
                    double e = EXP((double)x[j] - m);                                   \
                    sum += e;                                                           \
                }                                                                       \
                double inv = 1.0 / sum;                                                 \
                FA_IVDEP                                                                \
                for (ptrdiff_t j = 0; j < cols; j++)                                    \
                    y[j] = (T)(EXP((double)x[j] - m) * inv);                            \
            }                                                                           \
        }                                                                               \
    }                                                                                   \
    static void L_softmax_bwd_##S(int log_, const void *gv, const void *yv, void *gxv,  \
                                  ptrdiff_t rows, ptrdiff_t cols)                       \
    {                                                                                   \
        for (ptrdiff_t r = 0; r < rows; r++) {                                          \
            const T *g = (const T *)gv + r * cols, *y = (const T *)yv + r * cols;       \
            T *gx = (T *)gxv + r * cols;                                                \
            double acc = 0.0;                                                           \
            if (log_) {                                                                 \
                for (ptrdiff_t j = 0; j < cols; j++) acc += (double)g[j];               \
                FA_IVDEP                                                                \
                for (ptrdiff_t j = 0; j < cols; j++)                                    \
                    gx[j] = (T)((double)g[j] - EXP((double)y[j]) * acc);                \
            } else {                                                                    \
                for (ptrdiff_t j = 0; j < cols; j++) acc += (double)g[j] * (double)y[j]; \
                FA_IVDEP                                                                \
                for (ptrdiff_t j = 0; j < cols; j++)                                    \
                    gx[j] = (T)((double)y[j] * ((double)g[j] - acc));                   \
            }                                                                           \
        }                                                                               \
    }                                                                                   \
    static void L_softmax_xent_##S(const void *xv, const int64_t *labels, const void *tv, \
                                   void *gv, double *loss, ptrdiff_t rows, ptrdiff_t cols, \
                                   double scale)                                        \
    {                                                                                   \
        for (ptrdiff_t r = 0; r < rows; r++) {                                          \
            const T *x = (const T *)xv + r * cols;                                      \
            T *g = (T *)gv + r * cols;                                                  \
            double m = fa_rowmax_##S(x, cols);                                          \
            double ls = fa_log_sum1_##S(x, cols, m); /* log_softmax = (x - m) - ls */   \
            if (labels) {                                                               \
                int64_t k = labels[r];                                                  \
                FA_IVDEP                                                                \
                for (ptrdiff_t j = 0; j < cols; j++)                                    \
                    g[j] = (T)(scale * EXP(((double)x[j] - m) - ls));                   \
                g[k] = (T)(scale * (EXP(((double)x[k] - m) - ls) - 1.0));               \
                loss[r] = ls - ((double)x[k] - m);                                      \
            } else {                                                                    \
                const T *t = (const T *)tv + r * cols;                                  \
                double tsum = 0.0, l = 0.0;                                             \
                for (ptrdiff_t j = 0; j < cols; j++) {                                  \
                    double tj = (double)t[j];                                           \
                    tsum += tj;                                                         \
                    /* a zero target ignores its logit, even an infinite one */        \
                    l += tj == 0.0 ? 0.0 : tj * (ls - ((double)x[j] - m));              \
                }                                                                       \
                FA_IVDEP                                                                \
                for (ptrdiff_t j = 0; j < cols; j++)                                    \
                    g[j] = (T)(scale * (EXP(((double)x[j] - m) - ls) * tsum - (double)t[j])); \
                loss[r] = l;                                                            \
            }                                                                           \
        }                                                                               \
    }
FA_GEN_SOFTMAX(float, f32, fa_exp)
FA_GEN_SOFTMAX(double, f64, exp)

/* ---- the exported table ---------------------------------------------------- */
#define FA_ROW(name)                                                                    \
    {{L_##name##_fwd_f32, L_##name##_fwd_f64},                                          \
     {L_##name##_bwd_f32, L_##name##_bwd_f64},                                          \
     {L_##name##_bias_fwd_f32, L_##name##_bias_fwd_f64},                                \
     {L_##name##_bias_bwd_f32, L_##name##_bias_bwd_f64}},

const fa_impl FA_IMPL_NAME = {
    {FA_ACTIVATIONS(FA_ROW)},
    {L_prelu_fwd_f32, L_prelu_fwd_f64},
    {L_prelu_bwd_f32, L_prelu_bwd_f64},
    {L_softmax_fwd_f32, L_softmax_fwd_f64},
    {L_softmax_bwd_f32, L_softmax_bwd_f64},
    {L_softmax_xent_f32, L_softmax_xent_f64},
};
#undef FA_ROW
