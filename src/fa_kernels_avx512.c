/* fa_kernels_avx512.c -- the same loops compiled for AVX-512 (x86-64-v4:
 * F, VL, DQ, BW) with 512-bit vectors preferred: 16 floats per instruction.
 * On CPUs that split 512-bit operations in two (AMD Zen 4) the arithmetic
 * throughput is that of AVX2, but the instruction count halves, which is
 * what bounds these kernels: the transcendental loops ran 1.5-1.7x faster
 * than their AVX2 build on Zen 4, and the hand-vectorised exp family of
 * fa_avx512_hand.h another ~1.5x.  fa_gelu_simd.h (float32 gelu, both forms) and
 * fa_expf_simd.h (its silu loops) are swapped in as well.  Chosen by fa_dispatch.c only when cpuid
 * (and the OS, via XCR0) report all four extensions.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "fa_kernels.h"

#if FA_HAVE_AVX2_BUILD
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma,prefer-vector-width=512")
#endif

#define FA_IMPL_NAME fa_impl_avx512_auto
#define FA_HAVE_FMA 1      /* fa_acts.h: __builtin_fmaf is one instruction here */
#include "fa_kernels_impl.h"
#include "fa_avx512_hand.h"

/* the float32 GELU loops of fa_gelu_simd.h, 16 lanes */
#define FA_SIMD_W 16
#define FA_V __m512
#define FA_VI __m512i
#define FA_GS(name) name##_avx512
#define FA_SET1 _mm512_set1_ps
#define FA_SETZERO _mm512_setzero_ps
#define FA_LOADU _mm512_loadu_ps
#define FA_STOREU _mm512_storeu_ps
#define FA_ADD _mm512_add_ps
#define FA_SUB _mm512_sub_ps
#define FA_MUL _mm512_mul_ps
#define FA_DIV _mm512_div_ps
#define FA_FMA _mm512_fmadd_ps          /* a b + c */
#define FA_FMS _mm512_fmsub_ps          /* a b - c */
#define FA_FNMA _mm512_fnmadd_ps        /* c - a b */
#define FA_MIN _mm512_min_ps            /* NaN in either: the second operand */
#define FA_MAX _mm512_max_ps
#define FA_AND _mm512_and_ps
#define FA_OR _mm512_or_ps
#define FA_XOR _mm512_xor_ps
#define FA_ANDNOT _mm512_andnot_ps      /* ~a & b */
#define FA_ABS _mm512_abs_ps
#define FA_CASTI _mm512_castps_si512
#define FA_SRLI _mm512_srli_epi32
#define FA_CASTF _mm512_castsi512_ps
#define FA_ADDI32 _mm512_add_epi32
#define FA_SLLI32 _mm512_slli_epi32
#define FA_SEL_NEG(x, a, b) _mm512_mask_blend_ps(_mm512_movepi32_mask(_mm512_castps_si512(x)), (b), (a))
#define FA_SEL_GT(u, v, a, b) _mm512_mask_blend_ps(_mm512_cmp_ps_mask((u), (v), _CMP_GT_OQ), (b), (a))
#define FA_SCALE(v, kf, kfs) _mm512_scalef_ps((v), (kf))   /* one rounding, subnormals too */
/* the direct tables of exact gelu: 32 intervals, two 16-entry halves per coefficient
 * (vpermt2ps); the forward's min(|x|, amax) in one vrangeps (a NaN x gives amax, and the
 * result keeps the NaN through max(x, 0)) */
#define FA_FTAB_N 32
#define FA_FLOOK(tab, idx) _mm512_permutex2var_ps(_mm512_load_ps(tab), (idx), _mm512_load_ps((tab) + 16))
#define FA_ABSMIN(x, m) _mm512_range_ps((x), (m), 0x0A)   /* min of |x|, |m|; sign cleared */
/* one table for gelu and gelu' (FA_GELU_FV: p fits f, p' fits v) */
#define FA_GELU_FV 1
#define FA_GELUF_SCALE FA_GELUFV32_SCALE
#define FA_GELUF_AMAX FA_GELUFV32_AMAX
#define FA_GELUF_NC FA_GELUFV32_NC
#define FA_GELUF_E fa_gelufv32_e
#define FA_GELUF_C fa_gelufv32_c
#include "fa_gelu_simd.h"
/* n / d and 1 / d for d in [1, 2]: vrcp14ps (2^-14) and one correction step */
static inline __m512 fa_divf_avx512(__m512 n, __m512 d)
{
    __m512 r = _mm512_rcp14_ps(d);
    __m512 q = _mm512_mul_ps(n, r);
    return _mm512_fmadd_ps(r, _mm512_fnmadd_ps(d, q, n), q);
}
static inline __m512 fa_rcpf_avx512(__m512 d)
{
    __m512 r = _mm512_rcp14_ps(d);
    return _mm512_fmadd_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(1.0f)), r);
}
#define FA_DIVF fa_divf_avx512
#define FA_RCPF fa_rcpf_avx512
/* tanh's table: interval max(0, (bits(a) >> 21) - B), the subtraction saturating at 0 on
 * the low 16 bits (the high 16 bits of each lane are 0 on both sides) */
#define FA_TANHF_IDX(a)                                                                  \
    _mm512_subs_epu16(_mm512_srli_epi32(_mm512_castps_si512(a), FA_TANHF32_SHIFT),       \
                      _mm512_set1_epi32(FA_TANHF32_B))
#define FA_TANHF_E fa_tanhf32_e
#define FA_TANHF_C fa_tanhf32_c
#define FA_TANHF_NC FA_TANHF32_NC
#include "fa_expf_simd.h"

/* the float64 sigmoid and silu loops of fa_f64_simd.h, 8 lanes */
#define FA_DV __m512d
#define FA_DW 8
#define FA_D(name) d_##name##_avx512
#define FA_DSET1 _mm512_set1_pd
#define FA_DLOADU _mm512_loadu_pd
#define FA_DSTOREU _mm512_storeu_pd
#define FA_DADD _mm512_add_pd
#define FA_DSUB _mm512_sub_pd
#define FA_DMUL _mm512_mul_pd
#define FA_DDIV _mm512_div_pd
#define FA_DFMA _mm512_fmadd_pd        /* a b + c */
#define FA_DFNMA _mm512_fnmadd_pd      /* c - a b */
#define FA_DMIN _mm512_min_pd          /* NaN in either: the second operand */
#define FA_DMAX _mm512_max_pd
#define FA_DOR _mm512_or_pd
#define FA_DAND _mm512_and_pd
#define FA_DANDNOT _mm512_andnot_pd      /* ~a & b */
#define FA_DSEL_NEG(x, a, b) \
    _mm512_mask_blend_pd(_mm512_movepi64_mask(_mm512_castpd_si512(x)), (b), (a))
#define FA_DSCALE(v, k, kd) _mm512_scalef_pd((v), (k))   /* one rounding, subnormals too */
/* 1 / d for d in [1, 2]: vrcp14pd (2^-14) and two Newton steps (2^-56) */
static inline __m512d fa_drcp_avx512(__m512d d)
{
    __m512d r = _mm512_rcp14_pd(d);
    r = _mm512_fmadd_pd(r, _mm512_fnmadd_pd(d, r, _mm512_set1_pd(1.0)), r);
    return _mm512_fmadd_pd(r, _mm512_fnmadd_pd(d, r, _mm512_set1_pd(1.0)), r);
}
#define FA_DRCP fa_drcp_avx512
#include "fa_f64_simd.h"

/* the auto-vectorised table with the hand-vectorised loops swapped in;
 * built on the first call (from fa_set_isa, at import) */
const fa_impl *fa_avx512_table(void)
{
    static fa_impl table;
    static int ready = 0;
    if (!ready) {
        table = fa_impl_avx512_auto;
        fa_avx512_install_hand(&table);
        install_gelu_avx512(&table);
        /* of fa_expf_simd.h sigmoid's forward and silu: its select-free sigma core
         * (sig_core) against fa_avx512_hand.h's loops on a Xeon (Sapphire Rapids class),
         * 1e5 floats, one thread, out=: sigmoid forward 21.2 vs 26.4 us, silu forward
         * 22.4 vs 31-34 us and backward 26.6 vs 35-40 us (the e^-|x| form of
         * fa_expf_simd.h before it: 31-34 / 35-40 us); log_sigmoid' stays in the hand
         * loops (h_signeg, 18 us: fa_expf_simd.h's g / (1 + e^x) would turn g / inf into
         * NaN through FA_DIVF's correction step) */
        d_install_f64_avx512(&table);
        table.act[FA_ACT_tanh].fwd[FA_F32] = L_tanh_tab_fwd_avx512;
        table.act[FA_ACT_elu].fwd[FA_F32] = L_elu_fwd_avx512;
        table.act[FA_ACT_sigmoid].fwd[FA_F32] = L_sigmoid_fwd_avx512;
        table.act[FA_ACT_silu].fwd[FA_F32] = L_silu_fwd_avx512;
        table.act[FA_ACT_silu].bwd[FA_F32] = L_silu_bwd_avx512;
        table.act[FA_ACT_silu].bias_fwd[FA_F32] = L_silu_bias_fwd_avx512;
        table.act[FA_ACT_silu].bias_bwd[FA_F32] = L_silu_bias_bwd_avx512;
        table.act[FA_ACT_silu].bias_fwd_d[FA_F32] = L_silu_bias_fwd_d_avx512;
        table.act[FA_ACT_tanh].bias_fwd[FA_F32] = L_tanh_tab_bias_fwd_avx512;
        table.act[FA_ACT_elu].bias_fwd[FA_F32] = L_elu_bias_fwd_avx512;
        table.act[FA_ACT_sigmoid].bias_fwd[FA_F32] = L_sigmoid_bias_fwd_avx512;
        fa_mark_bias_split(&table, &fa_impl_avx512_auto);
        ready = 1;
    }
    return &table;
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#else
typedef int fa_no_avx512_build; /* ISO C wants at least one declaration */
#endif
