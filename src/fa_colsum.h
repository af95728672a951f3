/* fa_colsum.h -- column sums of a row-major block in registers, in double.
 *
 * The bias gradient of a dense layer is db[j] += sum_r dz[r, j], added row after row in
 * double.  A loop over the rows with db in memory loads and stores db once per row (gcc
 * keeps it there: db may alias dz), which costs more than the elementwise work of the
 * cheap activations.  Here the sums of FA_CS_W = 32 columns stay in registers (4 zmm on
 * AVX-512, 8 ymm on AVX2; the baseline build keeps the row loops) while the rows go by,
 * starting from db's values and stored back at the end: the same additions in the same
 * order as the row loop, so the same bits.
 *
 *     ptrdiff_t j0 = 0;
 *     for (; FA_CS_ON && j0 + FA_CS_W <= cols; j0 += FA_CS_W) {
 *         FA_CS_OPEN(db + j0);
 *         for (r = 0; r < rows; r++) {
 *             ... write dz[r, j0 .. j0 + FA_CS_W) ...
 *             FA_CS_ROW(f32, dz + r * cols + j0);
 *         }
 *         FA_CS_CLOSE(db + j0);
 *     }
 *     ... the columns from j0 on, row by row ...
 *
 * FA_CS_ROW reads the row block back just after it was written: a store-to-load
 * forward, no trip to memory. */
#ifndef FA_COLSUM_H
#define FA_COLSUM_H
#include <string.h>

typedef float fa_f32v8 __attribute__((vector_size(32)));
typedef double fa_f64v8 __attribute__((vector_size(64)));
typedef double fa_f64v4 __attribute__((vector_size(32)));

#define FA_CS_W 32

#if defined(__AVX512F__)
/* four zmm of sums, each 8 floats widened by one vcvtps2pd (gcc 12 splits
 * __builtin_convertvector to 8 doubles into two ymm halves and an insert, which cost as
 * much as the elementwise work of relu) */
#include <immintrin.h>
#define FA_CS_ON 1
#define FA_CS_N 4
#define FA_CS_L 8
typedef fa_f64v8 fa_cs_acc;
static inline __attribute__((always_inline)) fa_cs_acc fa_cs_ld_f32(const float *p)
{
    return (fa_cs_acc)_mm512_cvtps_pd(_mm256_loadu_ps(p));
}
#elif defined(__AVX__)
/* eight ymm of sums, each 4 floats widened by one vcvtps2pd (64-byte generic vectors
 * went through the stack here, and gcc 12 builds __builtin_convertvector to 4 doubles
 * from two 2-double conversions and an insert, some through the stack) */
#include <immintrin.h>
#define FA_CS_ON 1
#define FA_CS_N 8
#define FA_CS_L 4
typedef fa_f64v4 fa_cs_acc;
static inline __attribute__((always_inline)) fa_cs_acc fa_cs_ld_f32(const float *p)
{
    return (fa_cs_acc)_mm256_cvtps_pd(_mm_loadu_ps(p));
}
#else
/* 16 xmm registers cannot hold 32 columns of double sums: the callers' row loops
 * (FA_CS_ON 0; what follows only has to compile) */
typedef double fa_f64v2 __attribute__((vector_size(16)));
#define FA_CS_ON 0
#define FA_CS_N 16
#define FA_CS_L 2
typedef fa_f64v2 fa_cs_acc;
static inline __attribute__((always_inline)) fa_cs_acc fa_cs_ld_f32(const float *p)
{
    return (fa_cs_acc){(double)p[0], (double)p[1]};
}
#endif

static inline __attribute__((always_inline)) fa_cs_acc fa_cs_ld_f64(const double *p)
{
    fa_cs_acc x;
    memcpy(&x, p, sizeof x);
    return x;
}

/* FA_CS_N accumulators of FA_CS_L doubles: FA_CS_W columns */
#define FA_CS_OPEN(dbp)                                                                    \
    fa_cs_acc fa_cs_[FA_CS_N];                                                             \
    memcpy(fa_cs_, (dbp), sizeof fa_cs_)

#define FA_CS_ROW(S, q)                                                                    \
    do {                                                                                   \
        _Pragma("GCC unroll 8") for (int fa_q_ = 0; fa_q_ < FA_CS_N; fa_q_++)              \
            fa_cs_[fa_q_] += fa_cs_ld_##S((q) + FA_CS_L * fa_q_);                          \
    } while (0)

#define FA_CS_CLOSE(dbp) memcpy((dbp), fa_cs_, sizeof fa_cs_)

#endif
