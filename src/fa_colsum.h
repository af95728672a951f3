/* fa_colsum.h -- column sums of a row-major block in registers, in double.
 *
 * The bias gradient of a dense layer is db[j] += sum_r dz[r, j], added row after row in
 * double.  A loop over the rows with db in memory loads and stores db once per row (gcc
 * keeps it there: db may alias dz), which costs more than the elementwise work of the
 * cheap activations.  Here the sums of FA_CS_W columns stay in four vectors of 8
 * doubles (GCC generic vectors: 4 zmm on AVX-512, 8 ymm on AVX2) while the rows go by,
 * starting from db's values and stored back at the end: the same additions in the same
 * order as the row loop, so the same bits.
 *
 *     ptrdiff_t j0 = 0;
 *     for (; j0 + FA_CS_W <= cols; j0 += FA_CS_W) {
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

#define FA_CS_W 32

#if defined(__AVX512F__)
#include <immintrin.h>
/* one vcvtps2pd to a zmm (gcc 12 splits __builtin_convertvector into two ymm halves and
 * an insert, which cost as much as the elementwise work of relu) */
static inline __attribute__((always_inline)) fa_f64v8 fa_cs_ld_f32(const float *p)
{
    return (fa_f64v8)_mm512_cvtps_pd(_mm256_loadu_ps(p));
}
#else
static inline __attribute__((always_inline)) fa_f64v8 fa_cs_ld_f32(const float *p)
{
    fa_f32v8 x;
    memcpy(&x, p, sizeof x);
    return __builtin_convertvector(x, fa_f64v8);
}
#endif

static inline __attribute__((always_inline)) fa_f64v8 fa_cs_ld_f64(const double *p)
{
    fa_f64v8 x;
    memcpy(&x, p, sizeof x);
    return x;
}

#define FA_CS_OPEN(dbp)                                                                    \
    fa_f64v8 fa_cs0_, fa_cs1_, fa_cs2_, fa_cs3_;                                           \
    memcpy(&fa_cs0_, (dbp), sizeof(fa_f64v8));                                             \
    memcpy(&fa_cs1_, (dbp) + 8, sizeof(fa_f64v8));                                         \
    memcpy(&fa_cs2_, (dbp) + 16, sizeof(fa_f64v8));                                        \
    memcpy(&fa_cs3_, (dbp) + 24, sizeof(fa_f64v8))

#define FA_CS_ROW(S, q)                                                                    \
    do {                                                                                   \
        fa_cs0_ += fa_cs_ld_##S(q);                                                        \
        fa_cs1_ += fa_cs_ld_##S((q) + 8);                                                  \
        fa_cs2_ += fa_cs_ld_##S((q) + 16);                                                 \
        fa_cs3_ += fa_cs_ld_##S((q) + 24);                                                 \
    } while (0)

#define FA_CS_CLOSE(dbp)                                                                   \
    do {                                                                                   \
        memcpy((dbp), &fa_cs0_, sizeof(fa_f64v8));                                         \
        memcpy((dbp) + 8, &fa_cs1_, sizeof(fa_f64v8));                                     \
        memcpy((dbp) + 16, &fa_cs2_, sizeof(fa_f64v8));                                    \
        memcpy((dbp) + 24, &fa_cs3_, sizeof(fa_f64v8));                                    \
    } while (0)

#endif
