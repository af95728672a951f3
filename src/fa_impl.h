/* fa_impl.h -- the table of loops that one instruction-set build exports.
 * Internal to the extension: fa_dispatch.c picks one table per process. */
#ifndef FA_IMPL_H
#define FA_IMPL_H

#include "fa_kernels.h"

typedef void (*fa_fwd_fn)(const void *x, void *y, ptrdiff_t n, const fa_params *p);
typedef void (*fa_bwd_fn)(const void *g, const void *s, void *out, ptrdiff_t n,
                          const fa_params *p);
typedef void (*fa_bias_fwd_fn)(const void *z, const void *b, void *y, ptrdiff_t rows,
                               ptrdiff_t cols, const fa_params *p);
/* y = f(z + b) and d = f'(z + b) in one pass (d may be z: each element read first) */
typedef void (*fa_bias_fwd_d_fn)(const void *z, const void *b, void *y, void *d,
                                 ptrdiff_t rows, ptrdiff_t cols, const fa_params *p);
typedef void (*fa_bias_bwd_fn)(const void *g, const void *s, const void *b, void *dz,
                               double *db, ptrdiff_t rows, ptrdiff_t cols, const fa_params *p);
typedef void (*fa_prelu_fwd_fn)(const void *x, const void *w, void *y, ptrdiff_t rows,
                                ptrdiff_t cols);
typedef void (*fa_prelu_bwd_fn)(const void *g, const void *x, const void *w, void *gx,
                                double *gw, ptrdiff_t rows, ptrdiff_t cols);
typedef void (*fa_softmax_fwd_fn)(int log_, const void *x, void *y, ptrdiff_t rows,
                                  ptrdiff_t cols);
typedef void (*fa_softmax_bwd_fn)(int log_, const void *g, const void *y, void *gx,
                                  ptrdiff_t rows, ptrdiff_t cols);
typedef void (*fa_xent_fn)(const void *x, const int64_t *labels, const void *t, void *g,
                           double *loss, ptrdiff_t rows, ptrdiff_t cols, double scale);

typedef struct {
    fa_fwd_fn fwd[2];
    fa_bwd_fn bwd[2];
    fa_bias_fwd_fn bias_fwd[2];
    fa_bias_bwd_fn bias_bwd[2];
    /* NULL where no fused loop exists (fa_bias_fwd_d composes fwd and bwd there) */
    fa_bias_fwd_d_fn bias_fwd_d[2];
    /* 1: fa_bias_fwd adds the bias and runs fwd over blocks of rows in L1 instead of
     * bias_fwd (set where a hand-vectorised fwd replaced the auto-vectorised one but
     * no bias loop came with it: fa_mark_bias_split) */
    unsigned char bias_split[2];
} fa_act_loops;

typedef struct {
    fa_act_loops act[FA_N_ACT];
    fa_prelu_fwd_fn prelu_fwd[2];
    fa_prelu_bwd_fn prelu_bwd[2];
    fa_softmax_fwd_fn softmax_fwd[2];
    fa_softmax_bwd_fn softmax_bwd[2];
    fa_xent_fn xent[2];
} fa_impl;

/* Software prefetch, FA_PF_BYTES ahead of each stream of an elementwise loop, one per
 * 64-byte line.  Measured on a Xeon (Sapphire Rapids class, shared VM), float32 exact
 * gelu forward at 1e6 elements (8 MB of traffic, past L2): 1.19-1.71 ms without, 1.19 ms
 * with any distance from 1 to 8 KB, 0.38 against 0.52-0.57 ms when the machine was quiet;
 * no change at 1e5 (in L2).  The hardware prefetchers alone do not keep the loops that
 * spend ~0.4 ns an element on arithmetic fed. */
#define FA_PF_BYTES 2048
#if defined(__GNUC__) || defined(__clang__)
#define FA_PREFETCH(p) __builtin_prefetch((const char *)(p) + FA_PF_BYTES, 0, 3)
#else
#define FA_PREFETCH(p) ((void)0)
#endif

/* mark bias_split in t: the activations whose fwd differs from the auto-vectorised
 * table's while their bias_fwd is still the auto-vectorised one */
static inline void fa_mark_bias_split(fa_impl *t, const fa_impl *autov)
{
    for (int a = 0; a < FA_N_ACT; a++)
        for (int d = 0; d < 2; d++)
            t->act[a].bias_split[d] = t->act[a].fwd[d] != autov->act[a].fwd[d]
                                      && t->act[a].bias_fwd[d] == autov->act[a].bias_fwd[d];
}

extern const fa_impl fa_impl_baseline;
#if FA_HAVE_AVX2_BUILD
const fa_impl *fa_avx2_table(void);
const fa_impl *fa_avx512_table(void);
#endif

#endif /* FA_IMPL_H */
