/* fa_kernels_avx2.c -- the same loops compiled for AVX2 + FMA (x86-64-v3), plus the
 * explicit-vector float32 loops of fa_gelu_simd.h and fa_expf_simd.h (8 lanes), swapped
 * into the table by fa_avx2_table().
 *
 * The target pragma applies to every function defined after it, including
 * the inline math of fa_acts.h / fa_math.h, so the whole kernel body is
 * built for AVX2+FMA while the rest of the extension stays baseline.
 * fa_dispatch.c only calls this table after cpuid says AVX2 and FMA are
 * there.  On other compilers or architectures this file defines nothing.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "fa_kernels.h"

#if FA_HAVE_AVX2_BUILD
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx2,fma")
#endif

#define FA_IMPL_NAME fa_impl_avx2_auto
#define FA_HAVE_FMA 1      /* fa_acts.h: __builtin_fmaf is one instruction here */
#include "fa_kernels_impl.h"

/* the float32 GELU loops of fa_gelu_simd.h, 8 lanes */
#include <immintrin.h>
#define FA_SIMD_W 8
#define FA_V __m256
#define FA_VI __m256i
#define FA_GS(name) name##_avx2
#define FA_SET1 _mm256_set1_ps
#define FA_SETZERO _mm256_setzero_ps
#define FA_LOADU _mm256_loadu_ps
#define FA_STOREU _mm256_storeu_ps
#define FA_ADD _mm256_add_ps
#define FA_SUB _mm256_sub_ps
#define FA_MUL _mm256_mul_ps
#define FA_DIV _mm256_div_ps
#define FA_FMA _mm256_fmadd_ps          /* a b + c */
#define FA_FMS _mm256_fmsub_ps          /* a b - c */
#define FA_FNMA _mm256_fnmadd_ps        /* c - a b */
#define FA_MIN _mm256_min_ps            /* NaN in either: the second operand */
#define FA_MAX _mm256_max_ps
#define FA_AND _mm256_and_ps
#define FA_OR _mm256_or_ps
#define FA_XOR _mm256_xor_ps
#define FA_ANDNOT _mm256_andnot_ps      /* ~a & b */
#define FA_ABS(x) _mm256_andnot_ps(_mm256_set1_ps(-0.0f), (x))
#define FA_CASTI _mm256_castps_si256
#define FA_SRLI _mm256_srli_epi32
#define FA_CASTF _mm256_castsi256_ps
#define FA_ADDI32 _mm256_add_epi32
#define FA_SLLI32 _mm256_slli_epi32
#define FA_SEL_NEG(x, a, b) _mm256_blendv_ps((b), (a), (x))   /* sign bit of x ? a : b */
#define FA_SEL_GT(u, v, a, b) _mm256_blendv_ps((b), (a), _mm256_cmp_ps((u), (v), _CMP_GT_OQ))
/* v 2^k, k <= 0 in the bits of kfs = k + 0x1.8p23: (v 2^(k+64)) 2^-64, each factor normal
 * for k >= -190, so a subnormal result is rounded once */
static inline __m256 fa_scale_avx2(__m256 v, __m256 kfs)
{
    __m256i b = _mm256_add_epi32(_mm256_castps_si256(kfs), _mm256_set1_epi32(191 - 0x4B400000));
    __m256 s = _mm256_castsi256_ps(_mm256_slli_epi32(b, 23));
    return _mm256_mul_ps(_mm256_mul_ps(v, s), _mm256_set1_ps(0x1p-64f));
}
#define FA_SCALE(v, kf, kfs) fa_scale_avx2((v), (kfs))
/* the direct tables of exact gelu: 8 intervals, one vpermps per coefficient */
#define FA_FTAB_N 8
#define FA_FLOOK(tab, idx) _mm256_permutevar8x32_ps(_mm256_load_ps(tab), (idx))
#define FA_ABSMIN(x, m) _mm256_min_ps((m), FA_ABS(x))   /* NaN kept (second operand) */
#define FA_GELUF_SCALE FA_GELUF8_SCALE
#define FA_GELUF_AMAX FA_GELUF8_AMAX
#define FA_GELUF_NC FA_GELUF8_NC
#define FA_GELUF_E fa_geluf8_e
#define FA_GELUF_C fa_geluf8_c
#define FA_GELUB_SCALE FA_GELUB8_SCALE
#define FA_GELUB_AMAX FA_GELUB8_AMAX
#define FA_GELUB_NC FA_GELUB8_NC
#define FA_GELUB_E fa_gelub8_e
#define FA_GELUB_C fa_gelub8_c
#include "fa_gelu_simd.h"
#define FA_DIVF _mm256_div_ps
#define FA_RCPF(d) _mm256_div_ps(_mm256_set1_ps(1.0f), (d))
#include "fa_expf_simd.h"

/* ---- float32 piecewise-linear loops, 8 lanes --------------------------------------
 * gcc vectorises the C selects of fa_acts.h (NaN falls through to s) into vcmpps +
 * vblendvps chains (vblendvps: 2-3 uops on Intel cores), 9-17 uops a vector for relu',
 * at 0.6-0.85x PyTorch at 1e5 elements.  Here the same functions as masks:
 * d = (inside & value) | (unordered(s) & s), then g * d, or min / max for the clamps
 * (both keep a NaN x as the second operand).  Bit for bit the portable results. */
#define PW_ONE _mm256_set1_ps(1.0f)
/* the helpers of both dtypes (P: pw for float, pwd for double; T, V, SFX: the element
 * type, the vector, the intrinsics' suffix, ps / pd) */
#define PW_HELPERS(P, T, V, SFX)                                                   \
    static inline V P##_nan_of(V s)      /* s where s is NaN, else +0 */           \
    {                                                                              \
        return _mm256_and_##SFX(_mm256_cmp_##SFX(s, s, _CMP_UNORD_Q), s);          \
    }                                                                              \
    /* relu' from the output: 1 for y > 0, 0 for y <= 0 */                         \
    static inline V P##_relu_d(V s)                                                \
    {                                                                              \
        V in = _mm256_cmp_##SFX(s, _mm256_setzero_##SFX(), _CMP_GT_OQ);            \
        return _mm256_or_##SFX(_mm256_and_##SFX(in, _mm256_set1_##SFX((T)1)), P##_nan_of(s)); \
    }                                                                              \
    /* hardtanh' from the output: 1 inside (a, b) */                               \
    static inline V P##_hardtanh_d(V s, V a, V b)                                  \
    {                                                                              \
        V in = _mm256_and_##SFX(_mm256_cmp_##SFX(s, a, _CMP_GT_OQ),                \
                                _mm256_cmp_##SFX(s, b, _CMP_LT_OQ));               \
        return _mm256_or_##SFX(_mm256_and_##SFX(in, _mm256_set1_##SFX((T)1)), P##_nan_of(s)); \
    }                                                                              \
    /* hardsigmoid' from the input: 1/6 on (-3, 3) */                              \
    static inline V P##_hardsigmoid_d(V s)                                         \
    {                                                                              \
        V in = _mm256_and_##SFX(_mm256_cmp_##SFX(s, _mm256_set1_##SFX((T)-3), _CMP_GT_OQ), \
                                _mm256_cmp_##SFX(s, _mm256_set1_##SFX((T)3), _CMP_LT_OQ)); \
        return _mm256_or_##SFX(_mm256_and_##SFX(in, _mm256_set1_##SFX((T)(1.0 / 6.0))), \
                               P##_nan_of(s));                                     \
    }                                                                              \
    /* hardtanh / relu6 = min(b, max(a, x)); hardsigmoid = min(1, max(0, (x + 3) / 6)), \
     * (x + 3) / 6 being >= 1 for x >= 3 and <= 0 for x <= -3 (NaN: the second operand) */ \
    static inline V P##_hardtanh(V x, V a, V b)                                    \
    {                                                                              \
        return _mm256_min_##SFX(b, _mm256_max_##SFX(a, x));                        \
    }                                                                              \
    static inline V P##_hardsigmoid(V x)                                           \
    {                                                                              \
        V v = _mm256_mul_##SFX(_mm256_add_##SFX(x, _mm256_set1_##SFX((T)3)),       \
                               _mm256_set1_##SFX((T)(1.0 / 6.0)));                 \
        return _mm256_min_##SFX(_mm256_set1_##SFX((T)1),                           \
                                _mm256_max_##SFX(_mm256_setzero_##SFX(), v));      \
    }
PW_HELPERS(pw, float, __m256, ps)
/* hardswish' from the input: 0 up to -3, s/3 + 1/2 on (-3, 3) (one FMA, as gcc contracts
 * the portable body), 1 from 3 on */
static inline __m256 pw_hardswish_d(__m256 s)
{
    __m256 v = _mm256_fmadd_ps(s, _mm256_set1_ps((float)(1.0 / 3.0)), _mm256_set1_ps(0.5f));
    __m256 mid = _mm256_and_ps(_mm256_cmp_ps(s, _mm256_set1_ps(-3.0f), _CMP_GT_OQ),
                               _mm256_cmp_ps(s, _mm256_set1_ps(3.0f), _CMP_LT_OQ));
    __m256 hi = _mm256_cmp_ps(s, _mm256_set1_ps(3.0f), _CMP_GE_OQ);
    return _mm256_or_ps(_mm256_or_ps(_mm256_and_ps(mid, v), _mm256_and_ps(hi, PW_ONE)),
                        pw_nan_of(s));
}
/* hardswish = x <= -3 ? 0 : (x >= 3 ? x : x (x + 3) / 6), the portable body's roundings */
static inline __m256 pw_hardswish(__m256 x)
{
    __m256 v = _mm256_mul_ps(_mm256_mul_ps(x, _mm256_add_ps(x, _mm256_set1_ps(3.0f))),
                             _mm256_set1_ps((float)(1.0 / 6.0)));
    __m256 hi = _mm256_cmp_ps(x, _mm256_set1_ps(3.0f), _CMP_GE_OQ);
    __m256 lo = _mm256_cmp_ps(x, _mm256_set1_ps(-3.0f), _CMP_LE_OQ);
    return _mm256_andnot_ps(lo, _mm256_blendv_ps(v, x, hi));
}
/* leaky_relu' from the output (slope >= 0): g for y > 0, g * slope for y <= 0, g y for
 * NaN; g * slope as fa_acts.h has it: one float product (p.d = 2) or fma(g, hi, g lo) */
static inline __m256 pw_leaky_bwd(__m256 g, __m256 s, __m256 hi, __m256 lo, int split)
{
    __m256 neg = split ? _mm256_fmadd_ps(g, hi, _mm256_mul_ps(g, lo)) : _mm256_mul_ps(g, hi);
    __m256 pos = _mm256_cmp_ps(s, _mm256_setzero_ps(), _CMP_GT_OQ);
    __m256 le = _mm256_cmp_ps(s, _mm256_setzero_ps(), _CMP_LE_OQ);
    __m256 nan = _mm256_cmp_ps(s, s, _CMP_UNORD_Q);
    return _mm256_or_ps(_mm256_or_ps(_mm256_and_ps(pos, g), _mm256_and_ps(le, neg)),
                        _mm256_and_ps(nan, _mm256_mul_ps(g, s)));
}
/* the loops without software prefetch (it slowed these copy-speed loops at 1e5); T, V,
 * W, SFX: the element type, the vector, its lanes, the intrinsics' suffix (ps / pd) */
#define PW_LOOP1_T(NAME, CORE, T, V, W, SFX)                                   \
    static void NAME(const void *xv, void *yv, ptrdiff_t n, const fa_params *pp) \
    {                                                                          \
        const T *xs = (const T *)xv;                                           \
        T *ys = (T *)yv;                                                       \
        const V pa_ = _mm256_set1_##SFX((T)pp->a), pb_ = _mm256_set1_##SFX((T)pp->b); \
        (void)pa_; (void)pb_;   /* hardtanh bounds, loaded once */          \
        ptrdiff_t i = 0;                                                       \
        for (; i + W <= n; i += W) _mm256_storeu_##SFX(ys + i, CORE(_mm256_loadu_##SFX(xs + i))); \
        if (i < n) {                                                           \
            T buf[W] = {0};                                                    \
            for (ptrdiff_t j = 0; j < n - i; j++) buf[j] = xs[i + j];          \
            _mm256_storeu_##SFX(buf, CORE(_mm256_loadu_##SFX(buf)));           \
            for (ptrdiff_t j = 0; j < n - i; j++) ys[i + j] = buf[j];          \
        }                                                                      \
    }
#define PW_LOOP2_T(NAME, CORE, T, V, W, SFX)                                   \
    static void NAME(const void *gv, const void *xv, void *ov, ptrdiff_t n,    \
                     const fa_params *pp)                                      \
    {                                                                          \
        const T *gs = (const T *)gv, *xs = (const T *)xv;                      \
        T *os = (T *)ov;                                                       \
        const V pa_ = _mm256_set1_##SFX((T)pp->a), pb_ = _mm256_set1_##SFX((T)pp->b); \
        (void)pa_; (void)pb_;                                                  \
        ptrdiff_t i = 0;                                                       \
        for (; i + W <= n; i += W)                                             \
            _mm256_storeu_##SFX(os + i, CORE(_mm256_loadu_##SFX(gs + i), _mm256_loadu_##SFX(xs + i))); \
        if (i < n) {                                                           \
            T bx[W] = {0}, bg[W] = {0};                                        \
            for (ptrdiff_t j = 0; j < n - i; j++) { bx[j] = xs[i + j]; bg[j] = gs[i + j]; } \
            _mm256_storeu_##SFX(bx, CORE(_mm256_loadu_##SFX(bg), _mm256_loadu_##SFX(bx))); \
            for (ptrdiff_t j = 0; j < n - i; j++) os[i + j] = bx[j];           \
        }                                                                      \
    }
#define PW_LOOP1(NAME, CORE) PW_LOOP1_T(NAME, CORE, float, __m256, 8, ps)
#define PW_LOOP2(NAME, CORE) PW_LOOP2_T(NAME, CORE, float, __m256, 8, ps)
#define PW_HT(x) pw_hardtanh((x), pa_, pb_)
#define PW_HT_D(x) pw_hardtanh_d((x), pa_, pb_)
#define PW_RELU_B(g, s) _mm256_mul_ps((g), pw_relu_d(s))
#define PW_HT_B(g, s) _mm256_mul_ps((g), PW_HT_D(s))
#define PW_HS_B(g, s) _mm256_mul_ps((g), pw_hardsigmoid_d(s))
#define PW_HW_B(g, s) _mm256_mul_ps((g), pw_hardswish_d(s))
PW_LOOP2(L_relu_bwd_pw_avx2, PW_RELU_B)
PW_LOOP2(L_hardtanh_bwd_pw_avx2, PW_HT_B)
PW_LOOP2(L_hardsigmoid_bwd_pw_avx2, PW_HS_B)
PW_LOOP2(L_hardswish_bwd_pw_avx2, PW_HW_B)
PW_LOOP1(L_hardtanh_fwd_pw_avx2, PW_HT)
PW_LOOP1(L_hardsigmoid_fwd_pw_avx2, pw_hardsigmoid)
PW_LOOP1(L_hardswish_fwd_pw_avx2, pw_hardswish)
#define PW_LK2(g, s) pw_leaky_bwd((g), (s), hi_, lo_, 0)
#define PW_LK1(g, s) pw_leaky_bwd((g), (s), hi_, lo_, 1)
static void L_leaky_relu_bwd_pw_avx2(const void *gv, const void *xv, void *ov, ptrdiff_t n,
                                     const fa_params *pp)
{
    const __m256 hi_ = _mm256_set1_ps((float)pp->b), lo_ = _mm256_set1_ps((float)pp->c);
    const float *gs = (const float *)gv, *xs = (const float *)xv;
    float *os = (float *)ov;
    if (pp->d != 1 && pp->d != 2) {     /* the slope in double: the portable loop */
        fa_impl_avx2_auto.act[FA_ACT_leaky_relu].bwd[FA_F32](gv, xv, ov, n, pp);
        return;
    }
    ptrdiff_t i = 0;
    if (pp->d == 2) {
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(os + i, PW_LK2(_mm256_loadu_ps(gs + i), _mm256_loadu_ps(xs + i)));
    } else {
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(os + i, PW_LK1(_mm256_loadu_ps(gs + i), _mm256_loadu_ps(xs + i)));
    }
    if (i < n) {
        float bx[8] = {0}, bg[8] = {0};
        for (ptrdiff_t j = 0; j < n - i; j++) { bx[j] = xs[i + j]; bg[j] = gs[i + j]; }
        __m256 r = pp->d == 2 ? PW_LK2(_mm256_loadu_ps(bg), _mm256_loadu_ps(bx))
                              : PW_LK1(_mm256_loadu_ps(bg), _mm256_loadu_ps(bx));
        _mm256_storeu_ps(bx, r);
        for (ptrdiff_t j = 0; j < n - i; j++) os[i + j] = bx[j];
    }
}

/* ---- float64 piecewise-linear loops, 4 lanes: the float32 masks above in doubles ----
 * gcc's blend chains took 18 instructions, three of them 2-uop vblendvpd, for 4 doubles
 * of hardtanh' (here 9) and 10 for hardtanh (here 3).  1e5 doubles, two threads, out=:
 * relu6' 28-30 -> 17-18 us, relu6 17-18 -> 10-11 us, hardsigmoid' 25-30 -> 17 us.  Bit
 * for bit the portable results. */
PW_HELPERS(pwd, double, __m256d, pd)
#define PWD_LOOP1(NAME, CORE) PW_LOOP1_T(NAME, CORE, double, __m256d, 4, pd)
#define PWD_LOOP2(NAME, CORE) PW_LOOP2_T(NAME, CORE, double, __m256d, 4, pd)
#define PWD_HT(x) pwd_hardtanh((x), pa_, pb_)
#define PWD_RELU_B(g, s) _mm256_mul_pd((g), pwd_relu_d(s))
#define PWD_HT_B(g, s) _mm256_mul_pd((g), pwd_hardtanh_d((s), pa_, pb_))
#define PWD_HS_B(g, s) _mm256_mul_pd((g), pwd_hardsigmoid_d(s))
PWD_LOOP2(L_relu_bwd_pwd_avx2, PWD_RELU_B)
PWD_LOOP2(L_hardtanh_bwd_pwd_avx2, PWD_HT_B)
PWD_LOOP2(L_hardsigmoid_bwd_pwd_avx2, PWD_HS_B)
PWD_LOOP1(L_hardtanh_fwd_pwd_avx2, PWD_HT)
PWD_LOOP1(L_hardsigmoid_fwd_pwd_avx2, pwd_hardsigmoid)

/* the float64 sigmoid and silu loops of fa_f64_simd.h, 4 lanes */
#define FA_DV __m256d
#define FA_DW 4
#define FA_D(name) d_##name##_avx2
#define FA_DSET1 _mm256_set1_pd
#define FA_DLOADU _mm256_loadu_pd
#define FA_DSTOREU _mm256_storeu_pd
#define FA_DADD _mm256_add_pd
#define FA_DSUB _mm256_sub_pd
#define FA_DMUL _mm256_mul_pd
#define FA_DDIV _mm256_div_pd
#define FA_DFMA _mm256_fmadd_pd        /* a b + c */
#define FA_DFNMA _mm256_fnmadd_pd      /* c - a b */
#define FA_DMIN _mm256_min_pd          /* NaN in either: the second operand */
#define FA_DMAX _mm256_max_pd
#define FA_DOR _mm256_or_pd
#define FA_DAND _mm256_and_pd
#define FA_DANDNOT _mm256_andnot_pd      /* ~a & b */
#define FA_DSEL_NEG(x, a, b) _mm256_blendv_pd((b), (a), (x))   /* sign bit of x ? a : b */
/* v 2^k, -1076 <= k <= 0 in the bits of kd = k + 0x1.8p52: (v 2^(k+54)) 2^-54, the first
 * product exact (a normal power of two), so a subnormal result is rounded once */
static inline __m256d fa_dscale_avx2(__m256d v, __m256d kd)
{
    __m256i b = _mm256_add_epi64(_mm256_castpd_si256(kd),
                                 _mm256_set1_epi64x(1077 - 0x4338000000000000LL));
    __m256d s = _mm256_castsi256_pd(_mm256_slli_epi64(b, 52));
    return _mm256_mul_pd(_mm256_mul_pd(v, s), _mm256_set1_pd(0x1p-54));
}
#define FA_DSCALE(v, k, kd) fa_dscale_avx2((v), (kd))
#define FA_DRCP(d) _mm256_div_pd(_mm256_set1_pd(1.0), (d))
#include "fa_f64_simd.h"

/* the auto-vectorised table with the float32 GELU loops swapped in (first call, at import) */
const fa_impl *fa_avx2_table(void)
{
    static fa_impl table;
    static int ready = 0;
    if (!ready) {
        table = fa_impl_avx2_auto;
        install_gelu_avx2(&table);
        install_expf_avx2(&table);
        d_install_f64_avx2(&table);
        table.act[FA_ACT_relu].bwd[FA_F32] = L_relu_bwd_pw_avx2;
        table.act[FA_ACT_hardtanh].bwd[FA_F32] = L_hardtanh_bwd_pw_avx2;
        table.act[FA_ACT_hardsigmoid].bwd[FA_F32] = L_hardsigmoid_bwd_pw_avx2;
        table.act[FA_ACT_hardswish].bwd[FA_F32] = L_hardswish_bwd_pw_avx2;
        table.act[FA_ACT_hardtanh].fwd[FA_F32] = L_hardtanh_fwd_pw_avx2;
        table.act[FA_ACT_hardsigmoid].fwd[FA_F32] = L_hardsigmoid_fwd_pw_avx2;
        table.act[FA_ACT_hardswish].fwd[FA_F32] = L_hardswish_fwd_pw_avx2;
        table.act[FA_ACT_leaky_relu].bwd[FA_F32] = L_leaky_relu_bwd_pw_avx2;
        table.act[FA_ACT_relu].bwd[FA_F64] = L_relu_bwd_pwd_avx2;
        table.act[FA_ACT_hardtanh].bwd[FA_F64] = L_hardtanh_bwd_pwd_avx2;
        table.act[FA_ACT_hardsigmoid].bwd[FA_F64] = L_hardsigmoid_bwd_pwd_avx2;
        table.act[FA_ACT_hardtanh].fwd[FA_F64] = L_hardtanh_fwd_pwd_avx2;
        table.act[FA_ACT_hardsigmoid].fwd[FA_F64] = L_hardsigmoid_fwd_pwd_avx2;
        fa_mark_bias_split(&table, &fa_impl_avx2_auto);
        ready = 1;
    }
    return &table;
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#else
typedef int fa_no_avx2_build; /* ISO C wants at least one declaration */
#endif
