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
#define FA_SEL_NEG(x, a, b) _mm256_blendv_ps((b), (a), (x))   /* sign bit of x ? a : b */
#define FA_SEL_GT(u, v, a, b) _mm256_blendv_ps((b), (a), _mm256_cmp_ps((u), (v), _CMP_GT_OQ))
/* the 8-interval table: one vpermps per coefficient (index bits 0-2) */
#define FA_GELU_SHIFT FA_GELU8_SHIFT
#define FA_GELU_NC FA_GELU8_NC
#define FA_GELU_MID fa_gelu8_mid
#define FA_GELU_M fa_gelu8_m
#define FA_TLOOK(tab, idx) _mm256_permutevar8x32_ps(_mm256_load_ps(tab), (idx))
/* v 2^k, k <= 0 in the bits of kfs = k + 0x1.8p23: (v 2^(k+64)) 2^-64, each factor normal
 * for k >= -190, so a subnormal result is rounded once */
static inline __m256 fa_scale_avx2(__m256 v, __m256 kfs)
{
    __m256i b = _mm256_add_epi32(_mm256_castps_si256(kfs), _mm256_set1_epi32(191 - 0x4B400000));
    __m256 s = _mm256_castsi256_ps(_mm256_slli_epi32(b, 23));
    return _mm256_mul_ps(_mm256_mul_ps(v, s), _mm256_set1_ps(0x1p-64f));
}
#define FA_SCALE(v, kf, kfs) fa_scale_avx2((v), (kfs))
#include "fa_gelu_simd.h"
#define FA_DIVF _mm256_div_ps
#define FA_RCPF(d) _mm256_div_ps(_mm256_set1_ps(1.0f), (d))
#include "fa_expf_simd.h"

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
#define FA_DFMA _mm256_fmadd_pd        /* a b + c */
#define FA_DFNMA _mm256_fnmadd_pd      /* c - a b */
#define FA_DMIN _mm256_min_pd          /* NaN in either: the second operand */
#define FA_DMAX _mm256_max_pd
#define FA_DOR _mm256_or_pd
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
