/* fa_nn_loops.h -- the elementwise loops of the network ops that are not activation
 * kernels: dropout's counter-based mask and BatchNorm's column statistics, affine map
 * and backward sums.  Included by src/_nn.pyx (through src/_nn_ops.pxi).
 *
 * Each loop is built three times by gcc's target_clones (x86-64-v4: AVX-512,
 * x86-64-v3: AVX2+FMA, and the portable baseline) and the loader picks the best the
 * CPU runs (DESIGN.md section 7: target_clones builds and dispatches through
 * setuptools and survives auditwheel).  FASTACT_AVX2=0 builds the baseline only.
 * The loops are written so that every clone gives the same dropout mask bit for bit
 * (integer hashing and one rounded multiply); the BatchNorm loops may differ in the
 * last bit between clones (FMA contraction), within the accuracy the tests ask.
 */
#ifndef FA_NN_LOOPS_H
#define FA_NN_LOOPS_H

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fa_math.h"     /* fa_exp (read only here: the kernels' file) */
#include "fa_mathf.h"    /* fa_expf */
#include "fa_colsum.h"   /* fa_f32v8, fa_f64v8 */

#ifndef FA_HAVE_AVX2_BUILD
#define FA_HAVE_AVX2_BUILD 1
#endif
#if FA_HAVE_AVX2_BUILD && defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) \
    && defined(__linux__)
#define FA_NN_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define FA_NN_V4 1
#else
#define FA_NN_CLONES
#endif

/* SplitMix64 (Steele, Lea & Flood 2014): one hash gives two elements of a mask.  With
 * h_k = mix(key + (k + 1) G), element 2k keeps its value when the low 32 bits of h_k are
 * >= thr = min(round(p 2^32), 2^32 - 1), element 2k + 1 when the high 32 bits are:
 * P(keep) = 1 - p to 2^-33 (so the expected output, scaled by 1 / (1 - p), to 2^-33 /
 * (1 - p) relative). */
#define FA_GOLDEN 0x9E3779B97F4A7C15ULL

static inline uint64_t fa_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static inline uint64_t fa_dropout_key(uint64_t seed, uint64_t step, uint64_t layer)
{
    return fa_mix64(fa_mix64(fa_mix64(seed + FA_GOLDEN) + step + FA_GOLDEN) + layer + FA_GOLDEN);
}

/* Dropout: y[i] = x[i] scale where element i is kept, else 0 (y may be x).  Element i's
 * word is word i of the hash stream h_0, h_1, ... read as pairs of 32-bit words (low word
 * first).  Blocks of W elements: W / 2 hashes (a vector of 64-bit lanes) are the W words
 * (a vector of 32-bit lanes).  Written with GCC's generic vectors (gcc vectorises neither
 * the scalar hash nor the select after it): W = 16 (512-bit vectors) for AVX-512, whose
 * vpmullq multiplies 64-bit lanes; W = 8 (256-bit) elsewhere, where a 64-bit product
 * takes three 32-bit ones and wider generic vectors spill. */
typedef uint64_t fa_u64v8 __attribute__((vector_size(64)));
typedef uint64_t fa_u64v4 __attribute__((vector_size(32)));
typedef uint32_t fa_u32v16 __attribute__((vector_size(64)));
typedef uint32_t fa_u32v8 __attribute__((vector_size(32)));
typedef int32_t fa_i32v16 __attribute__((vector_size(64)));
typedef int32_t fa_i32v8 __attribute__((vector_size(32)));
typedef int32_t fa_i32v4 __attribute__((vector_size(16)));
typedef int64_t fa_i64v8 __attribute__((vector_size(64)));
typedef int64_t fa_i64v4 __attribute__((vector_size(32)));
typedef float fa_f32v16 __attribute__((vector_size(64)));

#define FA_AI static inline __attribute__((always_inline))

/* W elements from counter c: keep (all ones where kept, else 0), then y = x scale & keep
 * (float32: one vector; float64: two halves of W / 2 doubles).  H = W / 2. */
#define FA_DROPOUT_BLOCKS(W, H)                                                            \
FA_AI void fa_keep_w##W(uint64_t c, uint32_t thr, fa_i32v##W *keep)                        \
{                                                                                          \
    fa_u64v##H z;                                                                          \
    for (int k = 0; k < H; k++) z[k] = (uint64_t)k;                                        \
    z = c + z * FA_GOLDEN;                                                                 \
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;                                           \
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;                                           \
    z = z ^ (z >> 31);                                                                     \
    fa_u32v##W w;                                                                          \
    fa_words_##W(&z, &w);                                                                  \
    *keep = (fa_i32v##W)(w >= thr);                                                        \
}                                                                                          \
FA_AI void fa_drop_f32_w##W(const float *x, float *y, const fa_i32v##W *keep, float scale)\
{                                                                                          \
    fa_f32v##W v;                                                                          \
    fa_i32v##W r;                                                                          \
    memcpy(&v, x, sizeof v);                                                               \
    v = v * scale;                                                                         \
    memcpy(&r, &v, sizeof r);                                                              \
    r &= *keep;                                                                            \
    memcpy(y, &r, sizeof r);                                                               \
}                                                                                          \
FA_AI void fa_drop_f64_w##W(const double *x, double *y, const fa_i32v##W *keep,         \
                             double scale)                                                 \
{                                                                                          \
    for (int h = 0; h < 2; h++) {                                                          \
        fa_i32v##H k;                                                                      \
        fa_f64v##H v;                                                                      \
        fa_i64v##H r;                                                                      \
        memcpy(&k, (const int32_t *)keep + H * h, sizeof k);                               \
        memcpy(&v, x + H * h, sizeof v);                                                   \
        v = v * scale;                                                                     \
        memcpy(&r, &v, sizeof r);                                                          \
        r &= __builtin_convertvector(k, fa_i64v##H);                                       \
        memcpy(y + H * h, &r, sizeof r);                                                   \
    }                                                                                      \
}

/* the hashes' 32-bit words, low word first */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define FA_WORDS(W, H)                                                                     \
FA_AI void fa_words_##W(const fa_u64v##H *z, fa_u32v##W *w) { memcpy(w, z, sizeof *w); }
#else
#define FA_WORDS(W, H)                                                                     \
FA_AI void fa_words_##W(const fa_u64v##H *z, fa_u32v##W *w)                                \
{                                                                                          \
    for (int j = 0; j < H; j++) {                                                          \
        (*w)[2 * j] = (uint32_t)(*z)[j];                                                   \
        (*w)[2 * j + 1] = (uint32_t)((*z)[j] >> 32);                                       \
    }                                                                                      \
}
#endif
FA_WORDS(16, 8)
FA_WORDS(8, 4)
FA_DROPOUT_BLOCKS(16, 8)
FA_DROPOUT_BLOCKS(8, 4)

/* whole blocks of W, then the last n % W elements through a block on the stack */
#define FA_DROPOUT(T, S, W, ATTR)                                                          \
ATTR static void fa_dropout_##S##_w##W(const T *x, T *y, ptrdiff_t n, uint64_t key,        \
                                       uint32_t thr, T scale)                              \
{                                                                                          \
    const uint64_t base = key + FA_GOLDEN;                                                 \
    fa_i32v##W keep;                                                                       \
    ptrdiff_t i = 0;                                                                       \
    for (; i + W <= n; i += W) {                                                           \
        fa_keep_w##W(base + (uint64_t)(i >> 1) * FA_GOLDEN, thr, &keep);                   \
        fa_drop_##S##_w##W(x + i, y + i, &keep, scale);                                    \
    }                                                                                      \
    if (i < n) {                                                                           \
        T t[W] = {0};                                                                      \
        for (ptrdiff_t j = 0; i + j < n; j++) t[j] = x[i + j];                             \
        fa_keep_w##W(base + (uint64_t)(i >> 1) * FA_GOLDEN, thr, &keep);                   \
        fa_drop_##S##_w##W(t, t, &keep, scale);                                            \
        for (ptrdiff_t j = 0; i + j < n; j++) y[i + j] = t[j];                             \
    }                                                                                      \
}

#ifdef FA_NN_V4
#define FA_NN_V4_ONLY __attribute__((target("arch=x86-64-v4")))
#define FA_NN_V3_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
FA_DROPOUT(float, f32, 16, FA_NN_V4_ONLY)
FA_DROPOUT(double, f64, 16, FA_NN_V4_ONLY)
#else
#define FA_NN_V3_CLONES
#endif
FA_DROPOUT(float, f32, 8, FA_NN_V3_CLONES)
FA_DROPOUT(double, f64, 8, FA_NN_V3_CLONES)

/* W = 16 where the CPU runs AVX-512 (the same mask and results whichever runs), unless
 * fa_dropout_set_width (the tests: each width on the CPU at hand) says otherwise.  The
 * choice is a relaxed atomic: threads that race to make it all store the same value. */
#ifdef FA_NN_V4
static int fa_nn_v4 = -1;
static inline int fa_dropout_wide(void)
{
    int v = __atomic_load_n(&fa_nn_v4, __ATOMIC_RELAXED);
    if (v < 0) {
        __builtin_cpu_init();
        v = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
            && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")
            && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        __atomic_store_n(&fa_nn_v4, v, __ATOMIC_RELAXED);
    }
    return v;
}
/* 16 or 8 elements a block; 0: the CPU's choice.  Returns the width now in use. */
static int fa_dropout_set_width(int w)
{
    __atomic_store_n(&fa_nn_v4, w == 16 ? 1 : (w == 8 ? 0 : -1), __ATOMIC_RELAXED);
    return fa_dropout_wide() ? 16 : 8;
}
#define FA_DROPOUT_PICK(T, S)                                                              \
static void fa_dropout_##S(const T *x, T *y, ptrdiff_t n, uint64_t key, uint32_t thr,      \
                           T scale)                                                        \
{                                                                                          \
    if (fa_dropout_wide())                                                                 \
        fa_dropout_##S##_w16(x, y, n, key, thr, scale);                                    \
    else                                                                                   \
        fa_dropout_##S##_w8(x, y, n, key, thr, scale);                                     \
}
#else
static int fa_dropout_set_width(int w)
{
    (void)w;
    return 8;
}
#define FA_DROPOUT_PICK(T, S)                                                              \
static void fa_dropout_##S(const T *x, T *y, ptrdiff_t n, uint64_t key, uint32_t thr,      \
                           T scale)                                                        \
{                                                                                          \
    fa_dropout_##S##_w8(x, y, n, key, thr, scale);                                         \
}
#endif
FA_DROPOUT_PICK(float, f32)
FA_DROPOUT_PICK(double, f64)

#define FA_NN_LOOPS(T, S)                                                                  \
/* Column loops: rows of ld elements, columns [0, n) (a block of columns when ld > n,
 * so that threads can split the columns).
 * s[j] += sum_r x[r, j] */                                                                \
FA_NN_CLONES static void fa_col_sum_##S(const T *restrict x, ptrdiff_t rows, ptrdiff_t n, ptrdiff_t ld,  \
                                        double *restrict s)                                \
{                                                                                          \
    for (ptrdiff_t r = 0; r < rows; r++) {                                                 \
        const T *restrict row = x + r * ld;                                                 \
        for (ptrdiff_t j = 0; j < n; j++) s[j] += (double)row[j];                          \
    }                                                                                      \
}                                                                                          \
/* s1[j] += sum_r (x[r, j] - c[j]), s2[j] += sum_r (x[r, j] - c[j])^2 with c a shift (the
 * first row: the "shifted data" one-pass variance, which cancels only when the mean is
 * many standard deviations from a sample) */                                             \
FA_NN_CLONES static void fa_col_shifted_sums_##S(const T *restrict x, ptrdiff_t rows,      \
                                                 ptrdiff_t n, ptrdiff_t ld,                \
                                                 const double *restrict c,                 \
                                                 double *restrict s1, double *restrict s2) \
{                                                                                          \
    for (ptrdiff_t r = 0; r < rows; r++) {                                                 \
        const T *restrict row = x + r * ld;                                                \
        for (ptrdiff_t j = 0; j < n; j++) {                                                \
            double d = (double)row[j] - c[j];                                              \
            s1[j] += d;                                                                    \
            s2[j] += d * d;                                                                \
        }                                                                                  \
    }                                                                                      \
}                                                                                          \
/* s[j] += sum_r (x[r, j] - mean[j])^2 */                                                  \
FA_NN_CLONES static void fa_col_sqdev_##S(const T *restrict x, ptrdiff_t rows, ptrdiff_t n, ptrdiff_t ld, \
                                          const double *restrict mean, double *restrict s) \
{                                                                                          \
    for (ptrdiff_t r = 0; r < rows; r++) {                                                 \
        const T *restrict row = x + r * ld;                                                 \
        for (ptrdiff_t j = 0; j < n; j++) {                                                \
            double d = (double)row[j] - mean[j];                                           \
            s[j] += d * d;                                                                 \
        }                                                                                  \
    }                                                                                      \
}                                                                                          \
/* u = (x - mean) sc + beta, sc = gamma / sqrt(var + eps) (u may be x) */                  \
FA_NN_CLONES static void fa_bn_affine_##S(const T *x, T *u, ptrdiff_t rows, ptrdiff_t n, ptrdiff_t ld,   \
                                          const double *restrict mean,                     \
                                          const double *restrict sc,                       \
                                          const T *restrict beta)                          \
{                                                                                          \
    for (ptrdiff_t r = 0; r < rows; r++) {                                                 \
        const T *xr = x + r * ld;                                                           \
        T *ur = u + r * ld;                                                                 \
        for (ptrdiff_t j = 0; j < n; j++)                                                  \
            ur[j] = (T)(((double)xr[j] - mean[j]) * sc[j] + (double)beta[j]);              \
    }                                                                                      \
}                                                                                          \
/* sdu[j] += sum_r du, sdux[j] += sum_r du (x - mean) invstd */                            \
FA_NN_CLONES static void fa_bn_bwd_sums_##S(const T *restrict du, const T *restrict x,     \
                                            ptrdiff_t rows, ptrdiff_t n, ptrdiff_t ld,                   \
                                            const double *restrict mean,                   \
                                            const double *restrict invstd,                 \
                                            double *restrict sdu, double *restrict sdux)   \
{                                                                                          \
    for (ptrdiff_t r = 0; r < rows; r++) {                                                 \
        const T *restrict dr = du + r * ld, *restrict xr = x + r * ld;                       \
        for (ptrdiff_t j = 0; j < n; j++) {                                                \
            double d = (double)dr[j];                                                      \
            sdu[j] += d;                                                                   \
            sdux[j] += d * (((double)xr[j] - mean[j]) * invstd[j]);                        \
        }                                                                                  \
    }                                                                                      \
}                                                                                          \
/* dx = c1 (du - m1 - (x - mean) invstd m2) (training; dx may be du) */                    \
FA_NN_CLONES static void fa_bn_bwd_dx_##S(const T *du, const T *x, T *dx, ptrdiff_t rows,  \
                                          ptrdiff_t n, ptrdiff_t ld, const double *restrict mean,        \
                                          const double *restrict invstd,                   \
                                          const double *restrict c1,                       \
                                          const double *restrict m1,                       \
                                          const double *restrict m2)                       \
{                                                                                          \
    for (ptrdiff_t r = 0; r < rows; r++) {                                                 \
        const T *dr = du + r * ld, *xr = x + r * ld;                                         \
        T *o = dx + r * ld;                                                                 \
        for (ptrdiff_t j = 0; j < n; j++)                                                  \
            o[j] = (T)(c1[j] * ((double)dr[j] - m1[j]                                      \
                                - ((double)xr[j] - mean[j]) * invstd[j] * m2[j]));         \
    }                                                                                      \
}                                                                                          \
/* o = a c per column (evaluation-mode BatchNorm backward; o may be a) */                  \
FA_NN_CLONES static void fa_col_scale_##S(const T *a, T *o, ptrdiff_t rows, ptrdiff_t n, ptrdiff_t ld,   \
                                          const double *restrict c)                        \
{                                                                                          \
    for (ptrdiff_t r = 0; r < rows; r++) {                                                 \
        const T *ar = a + r * ld;                                                           \
        T *orow = o + r * ld;                                                               \
        for (ptrdiff_t j = 0; j < n; j++) orow[j] = (T)((double)ar[j] * c[j]);             \
    }                                                                                      \
}

FA_NN_LOOPS(float, f32_generic)
FA_NN_LOOPS(double, f64)

/* float32 BatchNorm passes in float arithmetic (16 lanes on AVX-512 instead of 8 doubles),
 * without losing accuracy to a large mean: x - mean is formed as (x - mh) - ml with the
 * mean split into two floats (mh + ml = mean to 2^-48), so the centred value carries a
 * relative error of about 2^-24 whatever |mean| / std is.  Sums still accumulate in
 * double.  Columns go in chunks of FA_BN_CHUNK so the per-column float constants sit on
 * the stack.
 *
 * A per-column float constant that is not finite in float (the scale gamma / sqrt(var +
 * eps) of a zero-variance column with an eps below about 1 / (FLT_MAX gamma)^2, or the
 * backward's A, B, C) would give 0 inf = NaN where the double arithmetic of the NumPy twin
 * gives beta, 0 or +-inf.  Such columns ("wide": decided once per column, after one
 * vectorised check of the chunk, never per element) are computed in double instead, with
 * the twin's formula: one row at a time into a small buffer before the float pass over
 * that row, written after it (the output may be the input), so the float pass and its
 * results for the other columns are unchanged.  The backward's sum du xhat does the same
 * for a column whose invstd exceeds FLT_MAX (a spread below ~1e-38, where mh + ml no longer
 * holds the mean). */
#define FA_BN_CHUNK 256

static inline int fa_f32_wide(double v)
{
    return !(fabs(v) <= (double)FLT_MAX);     /* NaN too: its column is NaN either way */
}

/* whether any of v[0..nb) is inf or NaN: one vectorised pass, before any list is made */
static inline __attribute__((always_inline)) int fa_f32_any_wide(const float *v, ptrdiff_t nb)
{
    int any = 0;
    for (ptrdiff_t j = 0; j < nb; j++) any |= !(fabsf(v[j]) <= FLT_MAX);
    return any;
}

static inline void fa_split_mean(const double *mean, ptrdiff_t nb, float *mh, float *ml)
{
    for (ptrdiff_t j = 0; j < nb; j++) {
        mh[j] = (float)mean[j];
        ml[j] = (float)(mean[j] - (double)mh[j]);
    }
}

/* one row of the float pass of fa_bn_affine_f32 (ur may be xr) */
static inline __attribute__((always_inline)) void
fa_bn_affine_row_f32(const float *xr, float *ur, ptrdiff_t nb, const float *mh, const float *ml,
                     const float *s, const float *restrict b)
{
    for (ptrdiff_t j = 0; j < nb; j++) {
        float d = (xr[j] - mh[j]) - ml[j];
        ur[j] = d * s[j] + b[j];
    }
}

FA_NN_CLONES static void fa_bn_affine_f32(const float *x, float *u, ptrdiff_t rows,
                                          ptrdiff_t n, ptrdiff_t ld,
                                          const double *restrict mean,
                                          const double *restrict sc,
                                          const float *restrict beta)
{
    float mh[FA_BN_CHUNK], ml[FA_BN_CHUNK], s[FA_BN_CHUNK], wv[FA_BN_CHUNK];
    int wide[FA_BN_CHUNK];
    for (ptrdiff_t j0 = 0; j0 < n; j0 += FA_BN_CHUNK) {
        ptrdiff_t nb = n - j0 < FA_BN_CHUNK ? n - j0 : FA_BN_CHUNK, nw = 0;
        fa_split_mean(mean + j0, nb, mh, ml);
        for (ptrdiff_t j = 0; j < nb; j++) s[j] = (float)sc[j0 + j];
        if (fa_f32_any_wide(s, nb))
            for (ptrdiff_t j = 0; j < nb; j++)
                if (fa_f32_wide(s[j])) {
                    wide[nw++] = (int)j;
                    s[j] = 0.0f;              /* (the float pass's value is overwritten) */
                }
        const float *b = beta + j0;
        if (nw == 0) {
            for (ptrdiff_t r = 0; r < rows; r++)
                fa_bn_affine_row_f32(x + r * ld + j0, u + r * ld + j0, nb, mh, ml, s, b);
            continue;
        }
        for (ptrdiff_t r = 0; r < rows; r++) {
            const float *xr = x + r * ld + j0;
            float *ur = u + r * ld + j0;
            for (ptrdiff_t k = 0; k < nw; k++) {
                ptrdiff_t j = wide[k];
                wv[k] = (float)(((double)xr[j] - mean[j0 + j]) * sc[j0 + j] + (double)b[j]);
            }
            fa_bn_affine_row_f32(xr, ur, nb, mh, ml, s, b);
            for (ptrdiff_t k = 0; k < nw; k++) ur[wide[k]] = wv[k];
        }
    }
}

FA_NN_CLONES static void fa_bn_bwd_sums_f32(const float *restrict du, const float *restrict x,
                                            ptrdiff_t rows, ptrdiff_t n, ptrdiff_t ld,
                                            const double *restrict mean,
                                            const double *restrict invstd,
                                            double *restrict sdu, double *restrict sdux)
{
    float mh[FA_BN_CHUNK], ml[FA_BN_CHUNK];
    double a1[FA_BN_CHUNK], a2[FA_BN_CHUNK];
    for (ptrdiff_t j0 = 0; j0 < n; j0 += FA_BN_CHUNK) {
        ptrdiff_t nb = n - j0 < FA_BN_CHUNK ? n - j0 : FA_BN_CHUNK;
        fa_split_mean(mean + j0, nb, mh, ml);
        for (ptrdiff_t j = 0; j < nb; j++) a1[j] = a2[j] = 0.0;
        for (ptrdiff_t r = 0; r < rows; r++) {
            const float *dr = du + r * ld + j0, *xr = x + r * ld + j0;
            for (ptrdiff_t j = 0; j < nb; j++) {
                float d = (xr[j] - mh[j]) - ml[j];
                a1[j] += (double)dr[j];
                a2[j] += (double)(dr[j] * d);
            }
        }
        int any = 0;
        for (ptrdiff_t j = 0; j < nb; j++) {        /* sum du xhat = invstd sum du (x - mean) */
            sdu[j0 + j] += a1[j];
            any |= fa_f32_wide(invstd[j0 + j]);
        }
        if (!any) {
            for (ptrdiff_t j = 0; j < nb; j++) sdux[j0 + j] += a2[j] * invstd[j0 + j];
            continue;
        }
        for (ptrdiff_t j = 0; j < nb; j++) {
            if (!fa_f32_wide(invstd[j0 + j])) {
                sdux[j0 + j] += a2[j] * invstd[j0 + j];
                continue;
            }
            /* invstd beyond float: a spread below ~1e-38 (subnormal), where mh + ml no
             * longer carries the mean and its error would be scaled by invstd: in double */
            double w = 0.0, m = mean[j0 + j], is = invstd[j0 + j];
            for (ptrdiff_t r = 0; r < rows; r++) {
                ptrdiff_t i = r * ld + j0 + j;
                w += (double)du[i] * (((double)x[i] - m) * is);
            }
            sdux[j0 + j] += w;
        }
    }
}

/* one row of the float pass of fa_bn_bwd_dx_f32 (o may be dr) */
static inline __attribute__((always_inline)) void
fa_bn_bwd_dx_row_f32(const float *dr, const float *xr, float *o, ptrdiff_t nb,
                     const float *mh, const float *ml, const float *A, const float *B,
                     const float *C)
{
    for (ptrdiff_t j = 0; j < nb; j++) {
        float d = (xr[j] - mh[j]) - ml[j];
        o[j] = dr[j] * A[j] + (d * B[j] + C[j]);
    }
}

/* dx = c1 (du - m1 - xhat m2) = du A + (x - mean) B + C with A = c1, B = -c1 invstd m2,
 * C = -c1 m1 (dx may be du) */
FA_NN_CLONES static void fa_bn_bwd_dx_f32(const float *du, const float *x, float *dx,
                                          ptrdiff_t rows, ptrdiff_t n, ptrdiff_t ld,
                                          const double *restrict mean,
                                          const double *restrict invstd,
                                          const double *restrict c1,
                                          const double *restrict m1,
                                          const double *restrict m2)
{
    float mh[FA_BN_CHUNK], ml[FA_BN_CHUNK], A[FA_BN_CHUNK], B[FA_BN_CHUNK], C[FA_BN_CHUNK];
    float wv[FA_BN_CHUNK];
    int wide[FA_BN_CHUNK];
    for (ptrdiff_t j0 = 0; j0 < n; j0 += FA_BN_CHUNK) {
        ptrdiff_t nb = n - j0 < FA_BN_CHUNK ? n - j0 : FA_BN_CHUNK, nw = 0;
        fa_split_mean(mean + j0, nb, mh, ml);
        for (ptrdiff_t j = 0; j < nb; j++) {
            A[j] = (float)c1[j0 + j];
            B[j] = (float)(-c1[j0 + j] * invstd[j0 + j] * m2[j0 + j]);
            C[j] = (float)(-c1[j0 + j] * m1[j0 + j]);
        }
        if (fa_f32_any_wide(A, nb) | fa_f32_any_wide(B, nb) | fa_f32_any_wide(C, nb))
            for (ptrdiff_t j = 0; j < nb; j++)
                if (fa_f32_wide(A[j]) || fa_f32_wide(B[j]) || fa_f32_wide(C[j])) {
                    wide[nw++] = (int)j;
                    A[j] = B[j] = C[j] = 0.0f;  /* (the float pass's value is overwritten) */
                }
        if (nw == 0) {
            for (ptrdiff_t r = 0; r < rows; r++)
                fa_bn_bwd_dx_row_f32(du + r * ld + j0, x + r * ld + j0, dx + r * ld + j0, nb,
                                     mh, ml, A, B, C);
            continue;
        }
        for (ptrdiff_t r = 0; r < rows; r++) {
            const float *dr = du + r * ld + j0, *xr = x + r * ld + j0;
            float *o = dx + r * ld + j0;
            for (ptrdiff_t k = 0; k < nw; k++) {
                ptrdiff_t j = wide[k], jj = j0 + j;
                wv[k] = (float)(c1[jj] * ((double)dr[j] - m1[jj]
                                          - ((double)xr[j] - mean[jj]) * invstd[jj] * m2[jj]));
            }
            fa_bn_bwd_dx_row_f32(dr, xr, o, nb, mh, ml, A, B, C);
            for (ptrdiff_t k = 0; k < nw; k++) o[wide[k]] = wv[k];
        }
    }
}

/* the other float32 column loops keep the generic (double) arithmetic */
#define fa_col_sum_f32 fa_col_sum_f32_generic
#define fa_col_shifted_sums_f32 fa_col_shifted_sums_f32_generic
#define fa_col_sqdev_f32 fa_col_sqdev_f32_generic
#define fa_col_scale_f32 fa_col_scale_f32_generic

/* ---- the training step's whole-parameter passes ------------------------------------ */

typedef uint32_t fa_u32_alias __attribute__((may_alias));
typedef uint64_t fa_u64_alias __attribute__((may_alias));

/* 1 when some element is NaN or +-inf (its exponent bits all ones): an integer max
 * reduction, which vectorises without reassociating floating-point sums */
FA_NN_CLONES static int fa_nonfinite_f32(const float *a, ptrdiff_t n)
{
    const fa_u32_alias *u = (const fa_u32_alias *)a;
    uint32_t mx = 0;
    for (ptrdiff_t i = 0; i < n; i++) {
        uint32_t e = u[i] & 0x7f800000u;
        mx = e > mx ? e : mx;
    }
    return mx == 0x7f800000u;
}

FA_NN_CLONES static int fa_nonfinite_f64(const double *a, ptrdiff_t n)
{
    const fa_u64_alias *u = (const fa_u64_alias *)a;
    uint64_t mx = 0;
    for (ptrdiff_t i = 0; i < n; i++) {
        uint64_t e = u[i] & 0x7ff0000000000000ull;
        mx = e > mx ? e : mx;
    }
    return mx == 0x7ff0000000000000ull;
}

/* The float64 updates (the float32 ones, in float, follow).
 * torch.optim.SGD (dampening 0): g += wd p; buf = g (first step) or momentum buf + g;
 * g = g + momentum buf (nesterov) or buf; p -= lr g.  In double, rounded where PyTorch
 * stores (buf, p); one branch-free loop per case. */
#define FA_NN_OPT(T, S)                                                                    \
FA_NN_CLONES static void fa_sgd_##S(T *restrict p, const T *restrict g, T *restrict buf,   \
                                    ptrdiff_t n, double lr, double momentum, double wd,    \
                                    int nesterov, int first)                               \
{                                                                                          \
    if (momentum == 0.0) {                                                                 \
        if (wd == 0.0) {                                                                   \
            for (ptrdiff_t i = 0; i < n; i++) p[i] = (T)((double)p[i] - lr * (double)g[i]); \
        } else {                                                                           \
            for (ptrdiff_t i = 0; i < n; i++)                                              \
                p[i] = (T)((double)p[i] - lr * ((double)g[i] + wd * (double)p[i]));        \
        }                                                                                  \
        return;                                                                            \
    }                                                                                      \
    if (first) {                                                                           \
        for (ptrdiff_t i = 0; i < n; i++) buf[i] = (T)((double)g[i] + wd * (double)p[i]);  \
    } else {                                                                               \
        for (ptrdiff_t i = 0; i < n; i++)                                                  \
            buf[i] = (T)(momentum * (double)buf[i] + (double)g[i] + wd * (double)p[i]);    \
    }                                                                                      \
    if (nesterov) {                                                                        \
        for (ptrdiff_t i = 0; i < n; i++)                                                  \
            p[i] = (T)((double)p[i] - lr * ((double)g[i] + wd * (double)p[i]               \
                                            + momentum * (double)buf[i]));                 \
    } else {                                                                               \
        for (ptrdiff_t i = 0; i < n; i++) p[i] = (T)((double)p[i] - lr * (double)buf[i]);  \
    }                                                                                      \
}                                                                                          \
/* torch.optim.Adam (L2: g += wd p) / AdamW (decoupled: p *= 1 - lr wd first); t >= 1;    \
 * m, v and the decayed p rounded to T where PyTorch stores them */                        \
FA_NN_CLONES static void fa_adam_##S(T *restrict p, const T *restrict g, T *restrict m,    \
                                     T *restrict v, ptrdiff_t n, double lr, double b1,     \
                                     double b2, double eps, double wd, int decoupled,      \
                                     double bc1, double bc2s)                              \
{                                                                                          \
    const double step = lr / bc1;                                                          \
    const double shrink = decoupled ? 1.0 - lr * wd : 1.0;                                 \
    const double l2 = decoupled ? 0.0 : wd;                                                \
    for (ptrdiff_t i = 0; i < n; i++) {                                                    \
        double pi = (double)(T)((double)p[i] * shrink);                                    \
        double gi = (double)g[i] + l2 * (double)p[i];                                      \
        T mi = (T)(b1 * (double)m[i] + (1.0 - b1) * gi);                                   \
        T vi = (T)(b2 * (double)v[i] + (1.0 - b2) * gi * gi);                              \
        m[i] = mi;                                                                         \
        v[i] = vi;                                                                         \
        p[i] = (T)(pi - step * (double)mi / (sqrt((double)vi) / bc2s + eps));              \
    }                                                                                      \
}

FA_NN_OPT(double, f64)

/* The float32 updates: every operation in float, each rounded (no FMA contraction: the
 * pragma below), so that every clone (AVX-512, AVX2, baseline) gives the same bits and
 * fastact.reference's float32 update, NumPy operation by operation, gives them too.  PyTorch
 * rounds the same operations, except that ATen's vectorised add-with-alpha and lerp use
 * fmadd (the L2 term, lerp's product, SGD's p + (-lr) d): there the two may differ by an
 * ulp of that operation's result.  Every scalar is rounded to float once per call.  gcc
 * vectorises the loops 16 floats to an AVX-512 vector (vsqrtps / vdivps zmm), 8 on AVX2;
 * the double loops above, which convert every operand float -> double -> float, took
 * 3.5x as long for Adam (Intel Xeon, AVX-512, one thread: 64.5 -> 18.4 us for 33,930
 * parameters, 1251 -> 357 us for 604,510; docs/guide/performance_journal.md). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif
#if defined(__clang__)
#pragma clang fp contract(off)
#endif

/* torch.optim.SGD (dampening 0), its single-tensor CPU path: g' = g + wd p
 * (grad.add(param, alpha=wd)); buf = g' (first step) or buf momentum + g'
 * (buf.mul_(momentum).add_(g')); d = g' + momentum buf (nesterov) or buf;
 * p = p + (-lr) d (param.add_(d, alpha=-lr)). */
FA_NN_CLONES static void fa_sgd_f32(float *restrict p, const float *restrict g,
                                    float *restrict buf, ptrdiff_t n, double lr,
                                    double momentum, double wd, int nesterov, int first)
{
    const float nlr = (float)-lr, fm = (float)momentum, fwd = (float)wd;
    if (momentum == 0.0) {
        if (wd == 0.0) {
            for (ptrdiff_t i = 0; i < n; i++) p[i] = p[i] + nlr * g[i];
        } else {
            for (ptrdiff_t i = 0; i < n; i++) p[i] = p[i] + nlr * (g[i] + fwd * p[i]);
        }
        return;
    }
    for (ptrdiff_t i = 0; i < n; i++) {     /* one pass (gcc unswitches the two flags) */
        float gi = g[i] + fwd * p[i];
        float b = first ? gi : buf[i] * fm + gi;
        buf[i] = b;
        p[i] = p[i] + nlr * (nesterov ? gi + fm * b : b);
    }
}

/* torch.optim.Adam / AdamW, their single-tensor CPU path (PyTorch's default on CPU):
 *   AdamW: p = p (1 - lr wd)                          param.mul_(1 - lr * wd)
 *   Adam:  g' = g + wd p (only when wd != 0)          grad.add(param, alpha=wd)
 *   m = m + w (g' - m), w = 1 - b1,                   exp_avg.lerp_(grad, 1 - b1)
 *       or g' + (w - 1) (g' - m) when w >= 0.5 (ATen's lerp, its two branches)
 *   v = v b2 + (1 - b2) g' g'                         exp_avg_sq.mul_(b2).addcmul_(...)
 *   p = p + (-lr / bc1) m / (sqrt(v) / bc2s + eps)    param.addcdiv_(exp_avg, denom, ...)
 * with bc1 = 1 - b1^t, bc2s = sqrt(1 - b2^t) (the caller's, in double as PyTorch's). */
FA_NN_CLONES static void fa_adam_f32(float *restrict p, const float *restrict g,
                                     float *restrict m, float *restrict v, ptrdiff_t n,
                                     double lr, double b1, double b2, double eps, double wd,
                                     int decoupled, double bc1, double bc2s)
{
    const float w = (float)(1.0 - b1);
    const int small = w < 0.5f;                 /* ATen's lerp: which end it starts from */
    const float cw = small ? w : w - 1.0f;      /* (w - 1 exact for w in [0.5, 1]) */
    const float fb2 = (float)b2, c2 = (float)(1.0 - b2);
    const float fbc2s = (float)bc2s, feps = (float)eps, nstep = (float)-(lr / bc1);
    const float shrink = (float)(1.0 - lr * wd), l2 = (float)wd;
    if (decoupled) {
        for (ptrdiff_t i = 0; i < n; i++) {
            float pi = p[i] * shrink;           /* exact when wd = 0 (shrink = 1) */
            float gi = g[i], d = gi - m[i];
            float mi = (small ? m[i] : gi) + cw * d;
            float vi = v[i] * fb2;
            vi = vi + c2 * gi * gi;
            m[i] = mi;
            v[i] = vi;
            p[i] = pi + nstep * mi / (sqrtf(vi) / fbc2s + feps);
        }
    } else {
        for (ptrdiff_t i = 0; i < n; i++) {
            float pi = p[i];
            float gi = wd != 0.0 ? g[i] + l2 * pi : g[i], d = gi - m[i];
            float mi = (small ? m[i] : gi) + cw * d;
            float vi = v[i] * fb2;
            vi = vi + c2 * gi * gi;
            m[i] = mi;
            v[i] = vi;
            p[i] = pi + nstep * mi / (sqrtf(vi) / fbc2s + feps);
        }
    }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif
#if defined(__clang__)
#pragma clang fp contract(on)
#endif

/* ---- learnable PReLU with the dense layer's bias fused: u = z + b, y = u > 0 ? u : a u
 * (a: one slope per column, or one for all).  One branch-free loop per case. */
/* one slope (not per unit): its gradient is the sum of the columns' terms, in order */
static inline void fa_prelu_slope_total(double *da, ptrdiff_t n, int per_unit)
{
    if (per_unit) return;
    double t = 0.0;
    for (ptrdiff_t j = 0; j < n; j++) t += da[j];
    da[0] = t;
}

#define FA_NN_PRELU(T, S)                                                                  \
FA_NN_CLONES static void fa_prelu_fwd_##S(const T *restrict z, const T *restrict b,        \
                                          const T *restrict a, int per_unit,               \
                                          T *restrict y, ptrdiff_t rows, ptrdiff_t n)      \
{                                                                                          \
    const T a0 = a[0];                                                                     \
    for (ptrdiff_t r = 0; r < rows; r++) {                                                 \
        const T *zr = z + r * n;                                                           \
        T *yr = y + r * n;                                                                 \
        if (b && per_unit)                                                                 \
            for (ptrdiff_t j = 0; j < n; j++) { T u = zr[j] + b[j]; yr[j] = u > 0 ? u : a[j] * u; } \
        else if (b)                                                                        \
            for (ptrdiff_t j = 0; j < n; j++) { T u = zr[j] + b[j]; yr[j] = u > 0 ? u : a0 * u; } \
        else if (per_unit)                                                                 \
            for (ptrdiff_t j = 0; j < n; j++) { T u = zr[j]; yr[j] = u > 0 ? u : a[j] * u; } \
        else                                                                               \
            for (ptrdiff_t j = 0; j < n; j++) { T u = zr[j]; yr[j] = u > 0 ? u : a0 * u; } \
    }                                                                                      \
}                                                                                          \
/* dz = g (u > 0 ? 1 : a), db[j] += dz, da[j] += g u where u <= 0 (exact products, double \
 * sums); with one slope da[0] gets the total.  da and db hold n doubles, zeroed by the    \
 * caller; dz may be g. */                                                                 \
/* columns j0 .. n - 1 of every row, the rows in order (the register-sum loops below hand \
 * their last columns here) */                                                             \
static inline void fa_prelu_bwd_cols_##S(const T *g, const T *restrict z,                  \
                                         const T *restrict b, const T *restrict a,         \
                                         int per_unit, T *dz, double *restrict db,         \
                                         double *restrict da, ptrdiff_t rows, ptrdiff_t n, \
                                         ptrdiff_t j0)                                     \
{                                                                                          \
    const T a0 = a[0];                                                                     \
    for (ptrdiff_t r = 0; r < rows; r++) {                                                 \
        const T *gr = g + r * n, *zr = z + r * n;                                          \
        T *dr = dz + r * n;                                                                \
        for (ptrdiff_t j = j0; j < n; j++) {                                               \
            T u = b ? zr[j] + b[j] : zr[j];                                                \
            T aj = per_unit ? a[j] : a0;                                                   \
            T gi = gr[j];                                                                  \
            int neg = u <= 0;                                                              \
            da[j] += neg ? (double)gi * (double)u : 0.0;                                   \
            T d = neg ? aj * gi : gi;                                                      \
            dr[j] = d;                                                                     \
            db[j] += (double)d;                                                            \
        }                                                                                  \
    }                                                                                      \
}                                                                                          \
FA_NN_CLONES static void fa_prelu_bwd_##S(const T *g, const T *restrict z,                 \
                                          const T *restrict b, const T *restrict a,        \
                                          int per_unit, T *dz, double *restrict db,        \
                                          double *restrict da, ptrdiff_t rows, ptrdiff_t n) \
{                                                                                          \
    fa_prelu_bwd_cols_##S(g, z, b, a, per_unit, dz, db, da, rows, n, 0);                  \
    fa_prelu_slope_total(da, n, per_unit);                                                 \
}

FA_NN_PRELU(float, f32_generic)
FA_NN_PRELU(double, f64)
#define fa_prelu_fwd_f32 fa_prelu_fwd_f32_generic

/* The float32 PReLU backward with its two column sums in registers: columns in blocks of
 * 16 (AVX-512) or 8 (AVX2+FMA) floats, the rows inside, each column summed over the rows
 * in order as fa_prelu_bwd_f32_generic does, so the same bits (da and db are zero on
 * entry; the products g u are exact in double; a skipped term is the generic loop's
 * + 0.0, which cannot change a sum that starts at +0); the last columns by the same
 * scalar steps.  The generic loop's sums went through memory, a load-add-store chain per
 * row and column vector: 10% of an 8 x 64 prelu step. */
#ifdef FA_NN_V4
#include <immintrin.h>
__attribute__((target("arch=x86-64-v4"))) static void
fa_prelu_bwd_f32_v4(const float *g, const float *z, const float *b, const float *a,
                    int per_unit, float *dz, double *db, double *da, ptrdiff_t rows, ptrdiff_t n)
{
    const __m512 zero = _mm512_setzero_ps();
    ptrdiff_t j0 = 0;
    for (; j0 + 16 <= n; j0 += 16) {
        const __m512 bj = b ? _mm512_loadu_ps(b + j0) : zero;
        const __m512 sj = per_unit ? _mm512_loadu_ps(a + j0) : _mm512_set1_ps(a[0]);
        __m512d sb0 = _mm512_setzero_pd(), sb1 = sb0, sa0 = sb0, sa1 = sb0;
        for (ptrdiff_t r = 0; r < rows; r++) {
            const ptrdiff_t o = r * n + j0;
            __m512 gv = _mm512_loadu_ps(g + o);
            __m512 u = _mm512_add_ps(_mm512_loadu_ps(z + o), bj);
            __mmask16 m = _mm512_cmp_ps_mask(u, zero, _CMP_LE_OQ);
            __m512 d = _mm512_mask_mul_ps(gv, m, sj, gv);
            _mm512_storeu_ps(dz + o, d);
            __m512d g0 = _mm512_cvtps_pd(_mm512_castps512_ps256(gv));
            __m512d g1 = _mm512_cvtps_pd(_mm512_extractf32x8_ps(gv, 1));
            __m512d u0 = _mm512_cvtps_pd(_mm512_castps512_ps256(u));
            __m512d u1 = _mm512_cvtps_pd(_mm512_extractf32x8_ps(u, 1));
            sa0 = _mm512_mask_add_pd(sa0, (__mmask8)m, sa0, _mm512_mul_pd(g0, u0));
            sa1 = _mm512_mask_add_pd(sa1, (__mmask8)(m >> 8), sa1, _mm512_mul_pd(g1, u1));
            sb0 = _mm512_add_pd(sb0, _mm512_cvtps_pd(_mm512_castps512_ps256(d)));
            sb1 = _mm512_add_pd(sb1, _mm512_cvtps_pd(_mm512_extractf32x8_ps(d, 1)));
        }
        _mm512_storeu_pd(db + j0, _mm512_add_pd(_mm512_loadu_pd(db + j0), sb0));
        _mm512_storeu_pd(db + j0 + 8, _mm512_add_pd(_mm512_loadu_pd(db + j0 + 8), sb1));
        _mm512_storeu_pd(da + j0, _mm512_add_pd(_mm512_loadu_pd(da + j0), sa0));
        _mm512_storeu_pd(da + j0 + 8, _mm512_add_pd(_mm512_loadu_pd(da + j0 + 8), sa1));
    }
    fa_prelu_bwd_cols_f32_generic(g, z, b, a, per_unit, dz, db, da, rows, n, j0);
}
__attribute__((target("arch=x86-64-v3"))) static void
fa_prelu_bwd_f32_v3(const float *g, const float *z, const float *b, const float *a,
                    int per_unit, float *dz, double *db, double *da, ptrdiff_t rows, ptrdiff_t n)
{
    const __m256 zero = _mm256_setzero_ps();
    const __m256d zerod = _mm256_setzero_pd();
    ptrdiff_t j0 = 0;
    for (; j0 + 8 <= n; j0 += 8) {
        const __m256 bj = b ? _mm256_loadu_ps(b + j0) : zero;
        const __m256 sj = per_unit ? _mm256_loadu_ps(a + j0) : _mm256_set1_ps(a[0]);
        __m256d sb0 = zerod, sb1 = zerod, sa0 = zerod, sa1 = zerod;
        for (ptrdiff_t r = 0; r < rows; r++) {
            const ptrdiff_t o = r * n + j0;
            __m256 gv = _mm256_loadu_ps(g + o);
            __m256 u = _mm256_add_ps(_mm256_loadu_ps(z + o), bj);
            __m256 m = _mm256_cmp_ps(u, zero, _CMP_LE_OQ);
            __m256 d = _mm256_blendv_ps(gv, _mm256_mul_ps(sj, gv), m);
            _mm256_storeu_ps(dz + o, d);
            __m256d g0 = _mm256_cvtps_pd(_mm256_castps256_ps128(gv));
            __m256d g1 = _mm256_cvtps_pd(_mm256_extractf128_ps(gv, 1));
            __m256d u0 = _mm256_cvtps_pd(_mm256_castps256_ps128(u));
            __m256d u1 = _mm256_cvtps_pd(_mm256_extractf128_ps(u, 1));
            /* u <= 0 again in double (u converts exactly): the lanes' 64-bit masks */
            __m256d m0 = _mm256_cmp_pd(u0, zerod, _CMP_LE_OQ);
            __m256d m1 = _mm256_cmp_pd(u1, zerod, _CMP_LE_OQ);
            sa0 = _mm256_add_pd(sa0, _mm256_and_pd(m0, _mm256_mul_pd(g0, u0)));
            sa1 = _mm256_add_pd(sa1, _mm256_and_pd(m1, _mm256_mul_pd(g1, u1)));
            sb0 = _mm256_add_pd(sb0, _mm256_cvtps_pd(_mm256_castps256_ps128(d)));
            sb1 = _mm256_add_pd(sb1, _mm256_cvtps_pd(_mm256_extractf128_ps(d, 1)));
        }
        _mm256_storeu_pd(db + j0, _mm256_add_pd(_mm256_loadu_pd(db + j0), sb0));
        _mm256_storeu_pd(db + j0 + 4, _mm256_add_pd(_mm256_loadu_pd(db + j0 + 4), sb1));
        _mm256_storeu_pd(da + j0, _mm256_add_pd(_mm256_loadu_pd(da + j0), sa0));
        _mm256_storeu_pd(da + j0 + 4, _mm256_add_pd(_mm256_loadu_pd(da + j0 + 4), sa1));
    }
    fa_prelu_bwd_cols_f32_generic(g, z, b, a, per_unit, dz, db, da, rows, n, j0);
}
/* The path of the loops with their column sums in registers (the PReLU backward here,
 * fa_mul_colsum_f32 below): 2: AVX-512, 1: AVX2+FMA, 0: the generic loop: the best this
 * CPU runs, or what fa_rsum_set_path (the tests: each path the CPU has) asked for; a
 * relaxed atomic, as dropout's width */
static int fa_rsum_isa = -1;
static int fa_rsum_best(void)
{
    __builtin_cpu_init();
    int v3 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    int v4 = v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
             && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    return v4 ? 2 : (v3 ? 1 : 0);
}
/* v in 0..2 (capped at the CPU's best), or -1: the CPU's best.  Returns the path in use. */
static int fa_rsum_set_path(int v)
{
    int best = fa_rsum_best();
    v = (v < 0 || v > best) ? best : v;
    __atomic_store_n(&fa_rsum_isa, v, __ATOMIC_RELAXED);
    return v;
}
static void fa_prelu_bwd_f32(const float *g, const float *z, const float *b, const float *a,
                             int per_unit, float *dz, double *db, double *da, ptrdiff_t rows,
                             ptrdiff_t n)
{
    int v = __atomic_load_n(&fa_rsum_isa, __ATOMIC_RELAXED);
    if (v < 0) {
        v = fa_rsum_best();
        __atomic_store_n(&fa_rsum_isa, v, __ATOMIC_RELAXED);
    }
    if (v == 0) {
        fa_prelu_bwd_f32_generic(g, z, b, a, per_unit, dz, db, da, rows, n);
        return;
    }
    if (v == 2)
        fa_prelu_bwd_f32_v4(g, z, b, a, per_unit, dz, db, da, rows, n);
    else
        fa_prelu_bwd_f32_v3(g, z, b, a, per_unit, dz, db, da, rows, n);
    fa_prelu_slope_total(da, n, per_unit);
}
#else
#define fa_prelu_bwd_f32 fa_prelu_bwd_f32_generic
static int fa_rsum_set_path(int v)
{
    (void)v;
    return 0;
}
#endif

/* ---- the residual add: o = a + b (o may be a or b) ---------------------------------- */
#define FA_NN_ADD(T, S)                                                                    \
FA_NN_CLONES static void fa_add_##S(const T *a, const T *b, T *o, ptrdiff_t n)            \
{                                                                                          \
    for (ptrdiff_t i = 0; i < n; i++) o[i] = a[i] + b[i];                                  \
}

FA_NN_ADD(float, f32)
FA_NN_ADD(double, f64)

/* dz = g d and db[j] += dz[r, j] in double, over the rows in order (the bias loops' sums),
 * the backward of a dense layer whose forward kept d = f'(z + b) (fa_bias_fwd_d); float64
 * as written, float32 below with the sums in registers (fa_colsum.h's register sums are
 * not for these target_clones functions: they pick the instruction set at preprocessing) */
#define FA_NN_MUL_COLSUM(T, S)                                                             \
FA_NN_CLONES static void fa_mul_colsum_##S(const T *g, const T *d, T *dz, double *db,      \
                                           ptrdiff_t rows, ptrdiff_t n)                    \
{                                                                                          \
    for (ptrdiff_t r = 0; r < rows; r++)                                                   \
        for (ptrdiff_t j = 0; j < n; j++) {                                                \
            const T v = g[r * n + j] * d[r * n + j];                                       \
            dz[r * n + j] = v;                                                             \
            db[j] += (double)v;                                                            \
        }                                                                                  \
}

FA_NN_MUL_COLSUM(double, f64)

/* float32: 32 columns of sums in four vectors of 8 doubles over the rows (GCC's generic
 * vectors; gcc keeps db in memory across the rows of the loop above), added to db at the
 * end: with db zero on entry, as the engine calls it, the row-by-row loop's sums; the
 * columns from j0 on */
FA_NN_CLONES static void fa_mul_colsum_f32_at(const float *g, const float *d, float *dz,
                                              double *db, ptrdiff_t rows, ptrdiff_t n,
                                              ptrdiff_t j0)
{
    for (; j0 + 32 <= n; j0 += 32) {
        fa_f64v8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        for (ptrdiff_t r = 0; r < rows; r++) {
            const float *gr = g + r * n + j0, *dr = d + r * n + j0;
            float *o = dz + r * n + j0;
            fa_f32v8 v[4];
            for (int q = 0; q < 4; q++) {
                fa_f32v8 x, y;
                memcpy(&x, gr + 8 * q, sizeof x);
                memcpy(&y, dr + 8 * q, sizeof y);
                v[q] = x * y;
                memcpy(o + 8 * q, &v[q], sizeof v[q]);
            }
            a0 += __builtin_convertvector(v[0], fa_f64v8);
            a1 += __builtin_convertvector(v[1], fa_f64v8);
            a2 += __builtin_convertvector(v[2], fa_f64v8);
            a3 += __builtin_convertvector(v[3], fa_f64v8);
        }
        for (int j = 0; j < 8; j++) {
            db[j0 + j] += a0[j];
            db[j0 + 8 + j] += a1[j];
            db[j0 + 16 + j] += a2[j];
            db[j0 + 24 + j] += a3[j];
        }
    }
    if (j0 < n) {
        double acc[32] = {0};
        for (ptrdiff_t r = 0; r < rows; r++)
            for (ptrdiff_t j = j0; j < n; j++) {
                const float v = g[r * n + j] * d[r * n + j];
                dz[r * n + j] = v;
                acc[j - j0] += (double)v;
            }
        for (ptrdiff_t j = j0; j < n; j++) db[j] += acc[j - j0];
    }
}

#ifdef FA_NN_V4
/* AVX-512: the same sums with one vcvtps2pd to a zmm per 8 floats (gcc 12 splits the
 * generic vectors' conversion into two ymm halves and an insert, 40% of the loop) */
__attribute__((target("arch=x86-64-v4"))) static void
fa_mul_colsum_f32_v4(const float *g, const float *d, float *dz, double *db, ptrdiff_t rows,
                     ptrdiff_t n)
{
    ptrdiff_t j0 = 0;
    for (; j0 + 32 <= n; j0 += 32) {
        __m512d a0 = _mm512_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
        for (ptrdiff_t r = 0; r < rows; r++) {
            const ptrdiff_t o = r * n + j0;
            const __m512 v0 = _mm512_mul_ps(_mm512_loadu_ps(g + o), _mm512_loadu_ps(d + o));
            const __m512 v1 =
                _mm512_mul_ps(_mm512_loadu_ps(g + o + 16), _mm512_loadu_ps(d + o + 16));
            _mm512_storeu_ps(dz + o, v0);
            _mm512_storeu_ps(dz + o + 16, v1);
            a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm512_castps512_ps256(v0)));
            a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(_mm512_extractf32x8_ps(v0, 1)));
            a2 = _mm512_add_pd(a2, _mm512_cvtps_pd(_mm512_castps512_ps256(v1)));
            a3 = _mm512_add_pd(a3, _mm512_cvtps_pd(_mm512_extractf32x8_ps(v1, 1)));
        }
        _mm512_storeu_pd(db + j0, _mm512_add_pd(_mm512_loadu_pd(db + j0), a0));
        _mm512_storeu_pd(db + j0 + 8, _mm512_add_pd(_mm512_loadu_pd(db + j0 + 8), a1));
        _mm512_storeu_pd(db + j0 + 16, _mm512_add_pd(_mm512_loadu_pd(db + j0 + 16), a2));
        _mm512_storeu_pd(db + j0 + 24, _mm512_add_pd(_mm512_loadu_pd(db + j0 + 24), a3));
    }
    fa_mul_colsum_f32_at(g, d, dz, db, rows, n, j0);
}

/* AVX2+FMA: eight ymm of sums, one vcvtps2pd per 4 floats (gcc 12 builds the generic
 * vectors' conversion for this clone from 2-double pieces, some through the stack) */
__attribute__((target("arch=x86-64-v3"))) static void
fa_mul_colsum_f32_v3(const float *g, const float *d, float *dz, double *db, ptrdiff_t rows,
                     ptrdiff_t n)
{
    ptrdiff_t j0 = 0;
    for (; j0 + 32 <= n; j0 += 32) {
        __m256d a[8];
        for (int q = 0; q < 8; q++) a[q] = _mm256_setzero_pd();
        for (ptrdiff_t r = 0; r < rows; r++) {
            const ptrdiff_t o = r * n + j0;
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++) {
                const __m256 v =
                    _mm256_mul_ps(_mm256_loadu_ps(g + o + 8 * q), _mm256_loadu_ps(d + o + 8 * q));
                _mm256_storeu_ps(dz + o + 8 * q, v);
                a[2 * q] = _mm256_add_pd(a[2 * q], _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
                a[2 * q + 1] =
                    _mm256_add_pd(a[2 * q + 1], _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
            }
        }
        for (int q = 0; q < 8; q++)
            _mm256_storeu_pd(db + j0 + 4 * q, _mm256_add_pd(_mm256_loadu_pd(db + j0 + 4 * q), a[q]));
    }
    fa_mul_colsum_f32_at(g, d, dz, db, rows, n, j0);
}

static void fa_mul_colsum_f32(const float *g, const float *d, float *dz, double *db,
                              ptrdiff_t rows, ptrdiff_t n)
{
    int v = __atomic_load_n(&fa_rsum_isa, __ATOMIC_RELAXED);
    if (v < 0) {
        v = fa_rsum_best();
        __atomic_store_n(&fa_rsum_isa, v, __ATOMIC_RELAXED);
    }
    if (v == 2)
        fa_mul_colsum_f32_v4(g, d, dz, db, rows, n);
    else if (v == 1)
        fa_mul_colsum_f32_v3(g, d, dz, db, rows, n);
    else
        fa_mul_colsum_f32_at(g, d, dz, db, rows, n, 0);
}
#else
static void fa_mul_colsum_f32(const float *g, const float *d, float *dz, double *db,
                              ptrdiff_t rows, ptrdiff_t n)
{
    fa_mul_colsum_f32_at(g, d, dz, db, rows, n, 0);
}
#endif

/* ---- the engine's loss: softmax cross-entropy with integer labels, fused ------------
 * Per row (x: C logits, k its label): m = max_j x_j, e_j = exp(x_j - m) (one exp per
 * element, in float arithmetic for float32), s1 = sum_j e_j - 1 without cancellation
 * (an element whose e_j is exactly 1, the maximum among them, adds nothing; then their
 * number less one is added), loss_r = log1p(s1) - (x_k - m) in double, and the gradient
 * g_j = scale e_j / (1 + s1), g_k = scale (e_k / (1 + s1) - 1), formed as
 * -scale s1 / (1 + s1) when k is the only element with e_k = 1 (no cancellation when
 * p_k is near 1).  For float32, x_j - m is rounded: its rounding error r (TwoSum) is put
 * back as e_j (1 + r), so e_j is within about 1.5 ulp of exp of the exact difference.
 * Sums accumulate in double.
 *
 * Vectorised whatever C is: rows go in blocks of about FA_XENT_BLOCK elements.  Few
 * classes (C <= FA_XENT_FEW: 10 classes fill no vector of a row) transpose the block into
 * the scratch (column j of the block is contiguous) and every per-row step runs across
 * the rows; more classes go row by row with FA_XL explicit lanes in the reductions (the
 * same order of additions in every clone, so the same bits on every CPU).  The logs of
 * a block are one vectorised loop (fa_log1p_nn; libm's log1p per row cost 20 ns).
 * Non-finite logits as fastact.softmax_cross_entropy's kernel: a NaN or +inf in a row
 * makes its loss and gradient NaN, an all -inf row too; a -inf logit among finite ones
 * has probability 0 (loss +inf when it is the label's).  Returns sum_r loss_r. */
#define FA_XENT_BLOCK 1024
#define FA_XENT_FEW 32
#define FA_XL 16

/* log1p(s) for s >= 0 or NaN (a sum of probabilities), branch-free: u = 1 + s rounded
 * and c = (s - (u - 1)) / u its correction (u - 1 is exact); u = 2^k f with f in
 * [sqrt(1/2), sqrt(2)); log f = 2 atanh z, z = (f - 1) / (f + 1), |z| <= 0.1716, by its
 * series to z^23 (truncation 2e-19 relative); a few 1e-16 relative in all. */
static inline double fa_log1p_nn(double s)
{
    const double u = 1.0 + s;
    const double c = (s - (u - 1.0)) / u;
    const uint64_t b = fa_to_bits(u);
    int64_t k = (int64_t)((b >> 52) & 0x7ff) - 1023;
    double f = fa_from_bits((b & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL);
    const int big = f > 1.4142135623730951;
    f = big ? 0.5 * f : f;
    k += big;
    const double z = (f - 1.0) / (f + 1.0), z2 = z * z;
    double p = 1.0 / 23;
    p = p * z2 + 1.0 / 21;
    p = p * z2 + 1.0 / 19;
    p = p * z2 + 1.0 / 17;
    p = p * z2 + 1.0 / 15;
    p = p * z2 + 1.0 / 13;
    p = p * z2 + 1.0 / 11;
    p = p * z2 + 1.0 / 9;
    p = p * z2 + 1.0 / 7;
    p = p * z2 + 1.0 / 5;
    p = p * z2 + 1.0 / 3;
    const double kd = (double)k;
    const double r = kd * FA_LN2_HI + ((2.0 * z + 2.0 * z * (z2 * p)) + (kd * FA_LN2_LO + c));
    return s == s ? r : s;
}

#define FA_NN_XENT(T, S, EXP, CORR)                                                        \
static inline T fa_xent_rowmax_##S(const T *restrict x, ptrdiff_t C)                       \
{                                                                                          \
    T m[FA_XL];                                                                            \
    for (int l = 0; l < FA_XL; l++) m[l] = (T)-INFINITY;                                   \
    ptrdiff_t j = 0;                                                                       \
    for (; j + FA_XL <= C; j += FA_XL)                                                     \
        for (int l = 0; l < FA_XL; l++) m[l] = x[j + l] > m[l] ? x[j + l] : m[l];          \
    for (int l = 0; j + l < C; l++) m[l] = x[j + l] > m[l] ? x[j + l] : m[l];              \
    T r = m[0];   /* NaN entries are skipped here and propagate through exp */             \
    for (int l = 1; l < FA_XL; l++) r = m[l] > r ? m[l] : r;                               \
    return r;                                                                              \
}                                                                                          \
/* s1 = sum_j (e_j == 1 ? 0 : e_j) in double; *ones = how many e_j are 1 */                \
static inline double fa_xent_rowsum_##S(const T *restrict e, ptrdiff_t C, ptrdiff_t *ones) \
{                                                                                          \
    double a[FA_XL];                                                                       \
    int c[FA_XL];                                                                          \
    for (int l = 0; l < FA_XL; l++) { a[l] = 0.0; c[l] = 0; }                              \
    ptrdiff_t j = 0;                                                                       \
    for (; j + FA_XL <= C; j += FA_XL)                                                     \
        for (int l = 0; l < FA_XL; l++) {                                                  \
            T v = e[j + l];                                                                \
            int one = v == (T)1;                                                           \
            a[l] += one ? 0.0 : (double)v;                                                 \
            c[l] += one;                                                                   \
        }                                                                                  \
    for (int l = 0; j + l < C; l++) {                                                      \
        T v = e[j + l];                                                                    \
        int one = v == (T)1;                                                               \
        a[l] += one ? 0.0 : (double)v;                                                     \
        c[l] += one;                                                                       \
    }                                                                                      \
    double s = 0.0;                                                                        \
    ptrdiff_t n = 0;                                                                       \
    for (int l = 0; l < FA_XL; l++) { s += a[l]; n += c[l]; }                              \
    *ones = n;                                                                             \
    return s;                                                                              \
}                                                                                          \
/* exp(x - m) with the rounding error of x - m put back (float32) */                       \
static inline T fa_xent_exp_##S(T x, T m)                                                  \
{                                                                                          \
    const T d = x - m;                                                                     \
    T e = EXP(d);                                                                          \
    if (CORR) {   /* TwoSum: d + err = x - m exactly; none where exp(d) is 0 */            \
        const T xa = d + m, mb = d - xa;                                                   \
        T err = (x - xa) - (m + mb);                                                       \
        err = d > (T)-104 ? err : (T)0;                                                    \
        e = e + e * err;                                                                   \
    }                                                                                      \
    return e;                                                                              \
}                                                                                          \
FA_NN_CLONES static double fa_xent_##S(const T *restrict x, const int64_t *restrict labels, \
                                       T *restrict g, T *restrict scr, ptrdiff_t rows,     \
                                       ptrdiff_t C, double scale)                          \
{                                                                                          \
    T mr[FA_XENT_BLOCK];                                                                   \
    double s1[FA_XENT_BLOCK], ls[FA_XENT_BLOCK];                                           \
    int ones[FA_XENT_BLOCK];                                                               \
    const ptrdiff_t rb = C < FA_XENT_BLOCK ? FA_XENT_BLOCK / C : 1;                        \
    double total = 0.0;                                                                    \
    for (ptrdiff_t r0 = 0; r0 < rows; r0 += rb) {                                          \
        const ptrdiff_t nb = rows - r0 < rb ? rows - r0 : rb;                              \
        const T *xb = x + r0 * C;                                                          \
        T *gb = g + r0 * C;                                                                \
        if (C <= FA_XENT_FEW) {                                                            \
            /* t = the block transposed: t[j nb + r] = x[r, j]; then across the rows */    \
            T *t = scr;                                                                    \
            for (ptrdiff_t r = 0; r < nb; r++)                                             \
                for (ptrdiff_t j = 0; j < C; j++) t[j * nb + r] = xb[r * C + j];           \
            for (ptrdiff_t r = 0; r < nb; r++) { mr[r] = (T)-INFINITY; s1[r] = 0.0; ones[r] = 0; } \
            for (ptrdiff_t j = 0; j < C; j++) {                                            \
                const T *tj = t + j * nb;                                                  \
                for (ptrdiff_t r = 0; r < nb; r++) mr[r] = tj[r] > mr[r] ? tj[r] : mr[r];  \
            }                                                                              \
            for (ptrdiff_t j = 0; j < C; j++) {                                            \
                T *tj = t + j * nb;                                                        \
                for (ptrdiff_t r = 0; r < nb; r++) {                                       \
                    const T e = fa_xent_exp_##S(tj[r], mr[r]);                             \
                    const int one = e == (T)1;                                             \
                    tj[r] = e;                                                             \
                    s1[r] += one ? 0.0 : (double)e;                                        \
                    ones[r] += one;                                                        \
                }                                                                          \
            }                                                                              \
            for (ptrdiff_t r = 0; r < nb; r++) {                                           \
                s1[r] += (double)(ones[r] - 1);                                            \
                ls[r] = fa_log1p_nn(s1[r]);                                                \
            }                                                                              \
            for (ptrdiff_t r = 0; r < nb; r++) {                                           \
                const T invT = (T)(scale / (1.0 + s1[r]));                                 \
                for (ptrdiff_t j = 0; j < C; j++) gb[r * C + j] = t[j * nb + r] * invT;    \
            }                                                                              \
        } else {                                                                           \
            for (ptrdiff_t r = 0; r < nb; r++) {                                           \
                const T *xr = xb + r * C;                                                  \
                T *gr = gb + r * C;                                                        \
                const T m = fa_xent_rowmax_##S(xr, C);                                     \
                mr[r] = m;                                                                 \
                for (ptrdiff_t j = 0; j < C; j++) gr[j] = fa_xent_exp_##S(xr[j], m);       \
                ptrdiff_t n1;                                                              \
                s1[r] = fa_xent_rowsum_##S(gr, C, &n1) + (double)(n1 - 1);                 \
                ones[r] = (int)(n1 < 2 ? n1 : 2);                                          \
            }                                                                              \
            for (ptrdiff_t r = 0; r < nb; r++) ls[r] = fa_log1p_nn(s1[r]);                 \
            for (ptrdiff_t r = 0; r < nb; r++) {                                           \
                const T invT = (T)(scale / (1.0 + s1[r]));                                 \
                T *gr = gb + r * C;                                                        \
                for (ptrdiff_t j = 0; j < C; j++) gr[j] = gr[j] * invT;                    \
            }                                                                              \
        }                                                                                  \
        /* the label's element (its unscaled e recovered exactly where it matters: e_k is  \
         * 1 when k is a maximum) and the losses */                                        \
        for (ptrdiff_t r = 0; r < nb; r++) {                                               \
            const int64_t k = labels[r0 + r];                                              \
            const double s = 1.0 + s1[r];                                                  \
            const T xk = xb[r * C + k];                                                    \
            const double ek = (double)fa_xent_exp_##S(xk, mr[r]);                          \
            gb[r * C + k] = (T)((ek == 1.0 && ones[r] == 1) ? (0.0 - s1[r]) * (scale / s)  \
                                                            : scale * (ek / s - 1.0));     \
            total += ls[r] - ((double)xk - (double)mr[r]);                                 \
        }                                                                                  \
    }                                                                                      \
    return total;                                                                          \
}

FA_NN_XENT(float, f32, fa_expf, 1)
FA_NN_XENT(double, f64, fa_exp, 0)

/* ---- flush-to-zero / denormals-are-zero around an engine call ---------------------
 * A subnormal float (|x| < 2^-126 in float32, 2^-1022 in float64) costs a microcode
 * assist of ~100+ cycles per operation on x86, in the activation loops and in the BLAS
 * kernels alike: one layer that emits a few thousand of them (gelu's accurate negative
 * tail below x = -13, a vanishing gradient) can make the next GEMMs several times
 * slower.  The engine sets MXCSR's FTZ (results that would be subnormal become 0) and
 * DAZ (subnormal inputs read as 0) bits for the length of a call and puts back the
 * caller's two bits afterwards, keeping the other MXCSR bits (rounding, masks, flags)
 * as the call leaves them.  Only the calling thread's MXCSR changes: BLAS worker threads
 * keep their own mode.  Elsewhere (no SSE control register) these do nothing. */
#if defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#define FA_FTZ_DAZ 0x8040u
static inline int fa_ftz_supported(void) { return 1; }
static inline unsigned fa_ftz_enter(void)
{
    unsigned csr = _mm_getcsr();
    if ((csr & FA_FTZ_DAZ) != FA_FTZ_DAZ) _mm_setcsr(csr | FA_FTZ_DAZ);
    return csr & FA_FTZ_DAZ;
}
static inline void fa_ftz_leave(unsigned saved)
{
    unsigned csr = _mm_getcsr();
    if ((csr & FA_FTZ_DAZ) != saved) _mm_setcsr((csr & ~FA_FTZ_DAZ) | saved);
}
static inline unsigned fa_ftz_bits(void) { return _mm_getcsr() & FA_FTZ_DAZ; }
#else
static inline int fa_ftz_supported(void) { return 0; }
static inline unsigned fa_ftz_enter(void) { return 0; }
static inline void fa_ftz_leave(unsigned saved) { (void)saved; }
static inline unsigned fa_ftz_bits(void) { return 0; }
#endif

#endif /* FA_NN_LOOPS_H */
