/* fa_dispatch.c -- choose the loops for this CPU once, and the C entry points.
 *
 * At import fastact calls fa_set_isa(FA_ISA_AVX512): the best of AVX-512,
 * AVX2+FMA and the baseline that this CPU runs (and this build has).
 * FASTACT_ISA=avx2 or =baseline caps it, so tests can run every path.
 */
#include <fenv.h>
#include <string.h>
#include "fa_impl.h"

/* The kernels may raise spurious floating-point exception flags (discarded branches
 * under -fno-trapping-math); every entry point saves the flags before and clears the
 * new ones after, so NumPy never reports them.  On x86-64 the kernels compute only in
 * SSE/AVX registers, so only the MXCSR flags can change: read and (only when a flag
 * was raised) rewrite MXCSR directly.  glibc's feclearexcept also saves and reloads
 * the whole x87 environment (fnstenv/fldenv), ~80 ns a call, most of a 16-element
 * call's cost.  Elsewhere: <fenv.h>. */
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define FA_MXCSR_FLAGS (FE_ALL_EXCEPT & 0x3f)
int fa_fp_flags(void) { return (int)(_mm_getcsr() & FA_MXCSR_FLAGS); }
void fa_fp_restore(int flags)
{
    unsigned int csr = _mm_getcsr();
    unsigned int raised = csr & FA_MXCSR_FLAGS & ~(unsigned int)flags;
    if (raised) _mm_setcsr(csr & ~raised);
}
#else
int fa_fp_flags(void) { return fetestexcept(FE_ALL_EXCEPT); }
void fa_fp_restore(int flags) { feclearexcept(FE_ALL_EXCEPT & ~flags); }
#endif

static const fa_impl *fa_cur = &fa_impl_baseline;

/* 2048 ones of each dtype: the incoming gradient that makes bwd give f' itself
 * (fa_bias_fwd_d's fallback); filled by fa_set_isa, at import, before any call */
static float fa_ones_f[2048];
static double fa_ones_d[2048];
static int fa_cur_isa = FA_ISA_BASELINE;

#define FA_NAME_ENTRY(name) #name,
static const char *const fa_names[FA_N_ACT] = {FA_ACTIVATIONS(FA_NAME_ENTRY)};
#undef FA_NAME_ENTRY

const char *fa_act_name(int act)
{
    return (act >= 0 && act < FA_N_ACT) ? fa_names[act] : NULL;
}

int fa_avx2_compiled(void) { return FA_HAVE_AVX2_BUILD; }

int fa_cpu_has_avx2_fma(void)
{
#if FA_HAVE_AVX2_BUILD && defined(__GNUC__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

int fa_cpu_has_avx512(void)
{
#if FA_HAVE_AVX2_BUILD && defined(__GNUC__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")
        && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw")
        && fa_cpu_has_avx2_fma();
#else
    return 0;
#endif
}

int fa_get_isa(void) { return fa_cur_isa; }

/* The table a CPU with these features gets under the cap `isa` (pure: no cpuid, so the
 * tests can ask what a CPU without AVX2 picks: fastact._activations.pick_isa). */
int fa_pick_isa(int isa, int has_avx2_fma, int has_avx512)
{
#if FA_HAVE_AVX2_BUILD
    if (isa >= FA_ISA_AVX512 && has_avx512 && has_avx2_fma) return FA_ISA_AVX512;
    if (isa >= FA_ISA_AVX2 && has_avx2_fma) return FA_ISA_AVX2;
#endif
    (void)isa; (void)has_avx2_fma; (void)has_avx512;
    return FA_ISA_BASELINE;
}

int fa_set_isa(int isa)
{
    int pick = fa_pick_isa(isa, fa_cpu_has_avx2_fma(), fa_cpu_has_avx512());
    static int ones_filled = 0;      /* (the first call, at import, with the GIL held) */
    if (!ones_filled) {
        for (int i = 0; i < 2048; i++) {
            fa_ones_f[i] = 1.0f;
            fa_ones_d[i] = 1.0;
        }
        ones_filled = 1;
    }
#if FA_HAVE_AVX2_BUILD
    if (pick == FA_ISA_AVX512) {
        fa_cur = fa_avx512_table();
        fa_cur_isa = FA_ISA_AVX512;
        return fa_cur_isa;
    }
    if (pick == FA_ISA_AVX2) {
        fa_cur = fa_avx2_table();
        fa_cur_isa = FA_ISA_AVX2;
        return fa_cur_isa;
    }
#endif
    (void)pick;     /* (a build without the AVX2 variants has only the baseline) */
    fa_cur = &fa_impl_baseline;
    fa_cur_isa = FA_ISA_BASELINE;
    return fa_cur_isa;
}

static inline ptrdiff_t fa_isz(int dtype) { return dtype == FA_F32 ? 4 : 8; }

/* The elements before out's first 64-byte boundary, when n is large enough for it to
 * matter (0 otherwise): the loops then store whole cache lines (NumPy aligns large
 * arrays to 16 bytes only; a store that straddles two lines costs up to a third more
 * time at 1e5 elements in L2).  Every loop gives each element the same result however
 * the array is split (the thread chunks rely on it too), so the head is just a short
 * call. */
static inline ptrdiff_t fa_align_head(const void *out, ptrdiff_t n, int dtype)
{
    uintptr_t a = (uintptr_t)out, sz = (uintptr_t)fa_isz(dtype);
    if (n < 1024 || (a & 63u) == 0 || (a & (sz - 1)) != 0) return 0;
    return (ptrdiff_t)((64u - (a & 63u)) / sz);
}

void fa_fwd(int act, int dtype, const void *x, void *y, ptrdiff_t n, const fa_params *p)
{
    if (act == FA_ACT_identity) {          /* libc's copy beats any loop of ours */
        if (x != y) memmove(y, x, (size_t)n * (dtype == FA_F32 ? 4u : 8u));
        return;
    }
    ptrdiff_t h = fa_align_head(y, n, dtype);
    if (h) {
        fa_cur->act[act].fwd[dtype](x, y, h, p);
        x = (const char *)x + h * fa_isz(dtype);
        y = (char *)y + h * fa_isz(dtype);
        n -= h;
    }
    fa_cur->act[act].fwd[dtype](x, y, n, p);
}

void fa_bwd(int act, int dtype, const void *g, const void *s, void *out, ptrdiff_t n,
            const fa_params *p)
{
    if (act == FA_ACT_identity) {
        if (g != out) memmove(out, g, (size_t)n * (dtype == FA_F32 ? 4u : 8u));
        return;
    }
    ptrdiff_t h = fa_align_head(out, n, dtype), sz = fa_isz(dtype);
    /* g and s on one alignment and out on another: two aligned loads beat one store */
    if (((uintptr_t)g & 63u) == ((uintptr_t)s & 63u) && ((uintptr_t)g & 63u) != ((uintptr_t)out & 63u))
        h = fa_align_head(g, n, dtype);
    if (h) {
        fa_cur->act[act].bwd[dtype](g, s, out, h, p);
        g = (const char *)g + h * sz;
        s = (const char *)s + h * sz;
        out = (char *)out + h * sz;
        n -= h;
    }
    fa_cur->act[act].bwd[dtype](g, s, out, n, p);
}

/* out = z + b over nb rows (the identity's bias loop), or z itself when b is NULL (out may
 * be z) */
static void fa_add_bias_rows(int dtype, const void *z, const void *b, void *out, ptrdiff_t nb,
                             ptrdiff_t cols)
{
    const fa_params p0 = {0.0, 0.0, 0.0, 0.0};
    if (b)
        fa_cur->act[FA_ACT_identity].bias_fwd[dtype](z, b, out, nb, cols, &p0);
    else if (z != out)
        memmove(out, z, (size_t)(nb * cols) * (dtype == FA_F32 ? 4u : 8u));
}

/* rows per block of about 2048 elements (in L1) */
static ptrdiff_t fa_block_rows(ptrdiff_t cols) { return cols >= 2048 ? 1 : 2048 / cols; }

/* y = f(z + b) as y = z + b, then f over y in place, a block of rows at a time: the same
 * results as f(z + b) by fwd */
static void fa_bias_fwd_split(const fa_act_loops *L, int dtype, const void *z, const void *b,
                              void *y, ptrdiff_t rows, ptrdiff_t cols, const fa_params *p)
{
    const size_t isz = dtype == FA_F32 ? 4u : 8u;
    const ptrdiff_t blk = fa_block_rows(cols);
    for (ptrdiff_t r0 = 0; r0 < rows; r0 += blk) {
        const ptrdiff_t nb = rows - r0 < blk ? rows - r0 : blk;
        const size_t off = (size_t)(r0 * cols) * isz;
        char *yb = (char *)y + off;
        fa_add_bias_rows(dtype, (const char *)z + off, b, yb, nb, cols);
        L->fwd[dtype](yb, yb, nb * cols, p);
    }
}

void fa_bias_fwd(int act, int dtype, const void *z, const void *b, void *y, ptrdiff_t rows,
                 ptrdiff_t cols, const fa_params *p)
{
    const fa_act_loops *L = &fa_cur->act[act];
    if (rows <= 0 || cols <= 0) return;
    if (!L->bias_split[dtype])
        L->bias_fwd[dtype](z, b, y, rows, cols, p);
    else if (b != NULL)
        fa_bias_fwd_split(L, dtype, z, b, y, rows, cols, p);
    else
        L->fwd[dtype](z, y, rows * cols, p);
}

int fa_bias_fwd_d_fused(int act, int dtype)
{
    return act >= 0 && act < FA_N_ACT && (dtype == FA_F32 || dtype == FA_F64)
           && fa_cur->act[act].bias_fwd_d[dtype] != NULL;
}

void fa_bias_fwd_d(int act, int dtype, const void *z, const void *b, void *y, void *d,
                   ptrdiff_t rows, ptrdiff_t cols, const fa_params *p)
{
    const fa_act_loops *L = &fa_cur->act[act];
    if (rows <= 0 || cols <= 0) return;
    if (L->bias_fwd_d[dtype]) {
        L->bias_fwd_d[dtype](z, b, y, d, rows, cols, p);
        return;
    }
    /* u = z + b into d, y = f(u), d = f'(u) = bwd(1, u) (f input-saving: its backward
     * reads the input), a block of rows at a time (the ones: 2048 at a time) */
    const size_t isz = dtype == FA_F32 ? 4u : 8u;
    const ptrdiff_t blk = fa_block_rows(cols);
    const void *ones = dtype == FA_F32 ? (const void *)fa_ones_f : (const void *)fa_ones_d;
    for (ptrdiff_t r0 = 0; r0 < rows; r0 += blk) {
        const ptrdiff_t nb = rows - r0 < blk ? rows - r0 : blk;
        const size_t off = (size_t)(r0 * cols) * isz;
        char *db = (char *)d + off;
        fa_add_bias_rows(dtype, (const char *)z + off, b, db, nb, cols);
        for (ptrdiff_t c0 = 0; c0 < nb * cols; c0 += 2048) {
            const ptrdiff_t m = nb * cols - c0 < 2048 ? nb * cols - c0 : 2048;
            char *u = db + (size_t)c0 * isz;
            L->fwd[dtype](u, (char *)y + off + (size_t)c0 * isz, m, p);
            L->bwd[dtype](ones, u, u, m, p);
        }
    }
}

void fa_bias_bwd(int act, int dtype, const void *g, const void *s, const void *b, void *dz,
                 double *db, ptrdiff_t rows, ptrdiff_t cols, const fa_params *p)
{
    fa_cur->act[act].bias_bwd[dtype](g, s, b, dz, db, rows, cols, p);
}

void fa_prelu_fwd(int dtype, const void *x, const void *w, void *y, ptrdiff_t rows,
                  ptrdiff_t cols)
{
    fa_cur->prelu_fwd[dtype](x, w, y, rows, cols);
}

void fa_prelu_bwd(int dtype, const void *g, const void *x, const void *w, void *gx,
                  double *gw, ptrdiff_t rows, ptrdiff_t cols)
{
    fa_cur->prelu_bwd[dtype](g, x, w, gx, gw, rows, cols);
}

void fa_softmax_fwd(int dtype, int log_, const void *x, void *y, ptrdiff_t rows, ptrdiff_t cols)
{
    fa_cur->softmax_fwd[dtype](log_, x, y, rows, cols);
}

void fa_softmax_bwd(int dtype, int log_, const void *g, const void *y, void *gx, ptrdiff_t rows,
                    ptrdiff_t cols)
{
    fa_cur->softmax_bwd[dtype](log_, g, y, gx, rows, cols);
}

void fa_softmax_xent(int dtype, const void *x, const int64_t *labels, const void *target,
                     void *grad, double *loss, ptrdiff_t rows, ptrdiff_t cols, double scale)
{
    fa_cur->xent[dtype](x, labels, target, grad, loss, rows, cols, scale);
}

#include "fa_api.h"

static const fa_api_t fa_api_table = {
    FA_API_VERSION, fa_fwd, fa_bwd, fa_bias_fwd, fa_bias_bwd, fa_softmax_xent,
    fa_fp_flags, fa_fp_restore, fa_bias_fwd_d, fa_bias_fwd_d_fused,
};

const fa_api_t *fa_api(void) { return &fa_api_table; }
