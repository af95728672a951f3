/* fa_avx512_hand.h -- hand-vectorised AVX-512 float32 loops for the exp family.
 *
 * Included by fa_kernels_avx512.c only (AVX-512 target).  gcc vectorises the
 * scalar math of fa_mathf.h well, but it has no way to express 2^k scaling or
 * rounding in one instruction, and those dominate the instruction count of the
 * exp-based kernels, which is what bounds them on Zen 4.  Here exp uses
 * vscalefps (scales by 2^k, subnormal results and underflow to 0 included) and
 * the same operation sequence as fa_expf (fused where gcc fuses).  Measured on
 * 3 million points: sigmoid, tanh, silu and log_sigmoid (forward and backward)
 * and softplus backward equal the AVX2 build bit for bit; softplus forward
 * differs by 1 ulp in places (its accuracy is checked on its own, exhaustively
 * in [-20, 20]).  Since then log_sigmoid' has its own backward-only exp here
 * (h_signeg) and fa_expf_simd.h another on AVX2: those two differ from each other
 * (both swept over every float32 of [-104, 104]).  The test suite runs every path
 * against the reference.
 *
 * NaN semantics follow the C selects: max(lo, x) / min(hi, x) keep a NaN x,
 * ordered comparisons are false for NaN.
 */
#include <immintrin.h>

#define V16 __m512
#define SET1 _mm512_set1_ps

static inline V16 h_expf(V16 x)
{
    const V16 shifter = SET1(0x1.8p23f);
    x = _mm512_max_ps(SET1(-104.0f), x);
    x = _mm512_min_ps(SET1(88.7f), x);
    V16 kf = _mm512_fmadd_ps(x, SET1(1.44269504088896341f), shifter);
    kf = _mm512_sub_ps(kf, shifter);
    V16 r = _mm512_fnmadd_ps(kf, SET1(0.693359375f), x);
    r = _mm512_fnmadd_ps(kf, SET1(-2.12194440e-4f), r);
    V16 p = SET1(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, SET1(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, SET1(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, SET1(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, SET1(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, SET1(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r);
    p = _mm512_add_ps(p, SET1(1.0f));
    return _mm512_scalef_ps(p, kf);
}

static inline V16 h_neg_abs(V16 x) { return _mm512_or_ps(x, SET1(-0.0f)); }

/* a -/+ log1p(u), u in [0, 1]: mode 1 a - 2sp fused, mode 2 a + 2sp unfused, as
 * gcc compiles the portable loops (log_sigmoid / softplus) */
static inline V16 h_add_log1p01(V16 a, V16 u, int mode)
{
    V16 s = _mm512_div_ps(u, _mm512_add_ps(SET1(2.0f), u));
    V16 s2 = _mm512_mul_ps(s, s);
    V16 p = SET1(1.0f / 15.0f);
    p = _mm512_fmadd_ps(p, s2, SET1(1.0f / 13.0f));
    p = _mm512_fmadd_ps(p, s2, SET1(1.0f / 11.0f));
    p = _mm512_fmadd_ps(p, s2, SET1(1.0f / 9.0f));
    p = _mm512_fmadd_ps(p, s2, SET1(1.0f / 7.0f));
    p = _mm512_fmadd_ps(p, s2, SET1(1.0f / 5.0f));
    p = _mm512_fmadd_ps(p, s2, SET1(1.0f / 3.0f));
    p = _mm512_fmadd_ps(p, s2, SET1(1.0f));
    V16 s2x = _mm512_mul_ps(SET1(2.0f), s);
    if (mode == 2)                 /* unfused: where gcc keeps the add separate */
        return _mm512_add_ps(a, _mm512_mul_ps(s2x, p));
    return mode ? _mm512_fnmadd_ps(s2x, p, a) : _mm512_fmadd_ps(s2x, p, a);
}

/* sigma(x) (which = 0) or sigma(-x) (which = 1), one division after exp */
static inline V16 h_sig(V16 x, int which)
{
    V16 t = h_expf(h_neg_abs(x));
    V16 d = _mm512_add_ps(SET1(1.0f), t);
    __mmask16 ge = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ);
    V16 num = which ? _mm512_mask_blend_ps(ge, SET1(1.0f), t) : _mm512_mask_blend_ps(ge, t, SET1(1.0f));
    return _mm512_div_ps(num, d);
}

/* the lanes of a vector that hold elements: all 16, or the tail's */
static inline __mmask16 h_lanes(ptrdiff_t left)
{
    return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
}

/* the loop skeleton: full vectors, then one masked vector for the tail */
#define H_LOOP1(NAME, BODY)                                                    \
    static void NAME(const void *xv, void *yv, ptrdiff_t n, const fa_params *pp) \
    {                                                                          \
        const float *xs = (const float *)xv;                                   \
        float *ys = (float *)yv;                                               \
        const fa_params p = *pp;                                               \
        (void)p;                                                               \
        for (ptrdiff_t i = 0; i < n; i += 16) {                                \
            __mmask16 m = h_lanes(n - i);                                      \
            FA_PREFETCH(xs + i);                                               \
            FA_PREFETCH(ys + i);                                               \
            V16 x = _mm512_maskz_loadu_ps(m, xs + i);                          \
            V16 y;                                                             \
            BODY                                                               \
            _mm512_mask_storeu_ps(ys + i, m, y);                               \
        }                                                                      \
    }

#define H_LOOP2(NAME, BODY)                                                    \
    static void NAME(const void *gv, const void *xv, void *ov, ptrdiff_t n,    \
                     const fa_params *pp)                                      \
    {                                                                          \
        const float *gs = (const float *)gv, *xs = (const float *)xv;          \
        float *os = (float *)ov;                                               \
        const fa_params p = *pp;                                               \
        (void)p;                                                               \
        for (ptrdiff_t i = 0; i < n; i += 16) {                                \
            __mmask16 m = h_lanes(n - i);                                      \
            FA_PREFETCH(gs + i);                                               \
            FA_PREFETCH(xs + i);                                               \
            FA_PREFETCH(os + i);                                               \
            V16 g = _mm512_maskz_loadu_ps(m, gs + i);                          \
            V16 x = _mm512_maskz_loadu_ps(m, xs + i);                          \
            V16 d;                                                             \
            BODY                                                               \
            _mm512_mask_storeu_ps(os + i, m, _mm512_mul_ps(g, d));             \
        }                                                                      \
    }

/* sigmoid(x) */
H_LOOP1(H_sigmoid_fwd_f32, { y = h_sig(x, 0); })

/* tanh: Cephes polynomial below 0.625, 1 - 2 / (e^(2|x|) + 1) above (fa_tanhf) */
H_LOOP1(H_tanh_fwd_f32, {
    V16 ax = _mm512_abs_ps(x);
    V16 z = _mm512_mul_ps(x, x);
    V16 q = SET1(-5.70498872745e-3f);
    q = _mm512_fmadd_ps(q, z, SET1(2.06390887954e-2f));
    q = _mm512_fmadd_ps(q, z, SET1(-5.37397155531e-2f));
    q = _mm512_fmadd_ps(q, z, SET1(1.33314422036e-1f));
    q = _mm512_fmadd_ps(q, z, SET1(-3.33332819422e-1f));
    V16 small = _mm512_fmadd_ps(_mm512_mul_ps(q, z), x, x);
    small = _mm512_or_ps(_mm512_abs_ps(small), _mm512_and_ps(x, SET1(-0.0f)));   /* tanh(-0) = -0 */
    V16 e = h_expf(_mm512_mul_ps(SET1(2.0f), ax));
    V16 big = _mm512_sub_ps(SET1(1.0f), _mm512_div_ps(SET1(2.0f), _mm512_add_ps(e, SET1(1.0f))));
    __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    big = _mm512_mask_sub_ps(big, neg, _mm512_setzero_ps(), big);
    __mmask16 lt = _mm512_cmp_ps_mask(ax, SET1(0.625f), _CMP_LT_OQ);
    y = _mm512_mask_blend_ps(lt, big, small);
})

/* silu: x clamped to +-1000; (x * num) / (1 + t); x itself above 1000 */
H_LOOP1(H_silu_fwd_f32, {
    V16 xc = _mm512_min_ps(SET1(1000.0f), _mm512_max_ps(SET1(-1000.0f), x));
    V16 t = h_expf(h_neg_abs(xc));
    __mmask16 ge = _mm512_cmp_ps_mask(xc, _mm512_setzero_ps(), _CMP_GE_OQ);
    V16 num = _mm512_mul_ps(xc, _mm512_mask_blend_ps(ge, t, SET1(1.0f)));
    y = _mm512_div_ps(num, _mm512_add_ps(SET1(1.0f), t));
    __mmask16 big = _mm512_cmp_ps_mask(x, SET1(1000.0f), _CMP_GT_OQ);
    y = _mm512_mask_blend_ps(big, y, x);
})

/* silu' = s (1 + x c), s = sigma(x), c = sigma(-x) */
H_LOOP2(H_silu_bwd_f32, {
    V16 xc = _mm512_min_ps(SET1(1000.0f), _mm512_max_ps(SET1(-1000.0f), x));
    V16 t = h_expf(h_neg_abs(xc));
    V16 dd = _mm512_add_ps(SET1(1.0f), t);
    __mmask16 ge = _mm512_cmp_ps_mask(xc, _mm512_setzero_ps(), _CMP_GE_OQ);
    V16 s = _mm512_div_ps(_mm512_mask_blend_ps(ge, t, SET1(1.0f)), dd);
    V16 c = _mm512_div_ps(_mm512_mask_blend_ps(ge, SET1(1.0f), t), dd);
    d = _mm512_mul_ps(s, _mm512_fmadd_ps(xc, c, SET1(1.0f)));
})

/* log_sigmoid = min(x, 0) - log1p(e^-|x|); derivative sigma(-x) */
H_LOOP1(H_log_sigmoid_fwd_f32, {
    __mmask16 ge = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ);
    V16 lo = _mm512_mask_blend_ps(ge, x, _mm512_setzero_ps());
    y = h_add_log1p01(lo, h_expf(h_neg_abs(x)), 1);
})
/* sigma(-x) = 1 / (1 + e^x) for log_sigmoid': the backward's contract (8 ulp + 2e-7 |g|)
 * lets e^x be 2^f 2^floor(y), y = x log2(e) rounded once (relative error |y| 2^-24 in e^x,
 * where it matters: |x| < 6 or so, below 2e-7 elsewhere against the result), f = y -
 * floor(y) in [0, 1) by one vreduceps, 2^f by a degree-5 minimax polynomial (1.3e-7,
 * tools/fit_sigmoid_neg.py), 2^floor(y) by vscalefps; then 1 / (1 + e^x) by vrcp14ps and
 * one Newton step (2^-28).  No select, no division, no clamp: 14 operations against 22 and
 * a division for h_sig(x, 1).  x = -inf: f = 0, e^x = 0, exactly 1 (vrcp14ps(1) = 1);
 * x = +inf or e^x overflowing: 1 + e^x = inf, r = 0 and the Newton residual 1 - inf 0 is
 * NaN, which the min turns into 1 (min returns its second operand for a NaN): exactly 0;
 * NaN x: r is NaN and stays NaN. */
static inline V16 h_signeg(V16 x)
{
    V16 y = _mm512_mul_ps(x, SET1(1.44269504088896341f));
    V16 f = _mm512_reduce_ps(y, 0x09);                  /* y - floor(y), inexact suppressed */
    V16 p = SET1(0x1.eb6438p-10f);
    p = _mm512_fmadd_ps(p, f, SET1(0x1.26d1bap-7f));
    p = _mm512_fmadd_ps(p, f, SET1(0x1.c9455cp-5f));
    p = _mm512_fmadd_ps(p, f, SET1(0x1.ebd718p-3f));
    p = _mm512_fmadd_ps(p, f, SET1(0x1.62e4e8p-1f));
    p = _mm512_fmadd_ps(p, f, SET1(0x1.fffffep-1f));
    V16 d = _mm512_add_ps(_mm512_scalef_ps(p, y), SET1(1.0f));   /* 1 + e^x */
    V16 r = _mm512_rcp14_ps(d);
    V16 e = _mm512_min_ps(_mm512_fnmadd_ps(d, r, SET1(1.0f)), SET1(1.0f));
    return _mm512_fmadd_ps(r, e, r);
}
H_LOOP2(H_log_sigmoid_bwd_f32, { d = h_signeg(x); })

/* softplus with beta = 2^k >= 1 (z = beta x exact; e^z / beta <= e^z is subnormal
 * wherever e^z is, so the float exp's underflow loses nothing the contract keeps):
 * p.a = beta, p.c = 1/beta, p.d = the threshold rounded down to float */
H_LOOP1(H_softplus_pow2_fwd_f32, {
    V16 z = _mm512_mul_ps(x, SET1((float)p.a));
    __mmask16 le = _mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_LE_OQ);
    V16 hi = _mm512_mask_blend_ps(le, z, _mm512_setzero_ps());
    V16 sp = h_add_log1p01(hi, h_expf(h_neg_abs(z)), 2);
    __mmask16 over = _mm512_cmp_ps_mask(z, SET1((float)p.d), _CMP_GT_OQ);   /* threshold, rounded down */
    y = _mm512_mask_blend_ps(over, _mm512_mul_ps(sp, SET1((float)p.c)), x);
})
H_LOOP2(H_softplus_pow2_bwd_f32, {
    V16 z = _mm512_mul_ps(x, SET1((float)p.a));
    __mmask16 over = _mm512_cmp_ps_mask(z, SET1((float)p.d), _CMP_GT_OQ);
    d = _mm512_mask_blend_ps(over, h_sig(z, 0), SET1(1.0f));
})

/* relu' from the output: 1 where y > 0, 0 where y <= 0, NaN where y is NaN */
H_LOOP2(H_relu_bwd_f32, {
    __mmask16 pos = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ);
    __mmask16 nonpos = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LE_OQ);
    d = _mm512_mask_blend_ps(pos, _mm512_mask_blend_ps(nonpos, x, _mm512_setzero_ps()),
                             SET1(1.0f));
})

/* hardtanh' (and relu6') from the output: 1 inside (min, max), 0 outside, NaN for NaN */
H_LOOP2(H_hardtanh_bwd_f32, {
    V16 lo = SET1((float)p.a);
    V16 hi = SET1((float)p.b);
    __mmask16 in = _mm512_cmp_ps_mask(x, lo, _CMP_GT_OQ) & _mm512_cmp_ps_mask(x, hi, _CMP_LT_OQ);
    __mmask16 out = _mm512_cmp_ps_mask(x, lo, _CMP_LE_OQ) | _mm512_cmp_ps_mask(x, hi, _CMP_GE_OQ);
    d = _mm512_mask_blend_ps(in, _mm512_mask_blend_ps(out, x, _mm512_setzero_ps()), SET1(1.0f));
})

/* softsign: x / (1 + |x|) with the reciprocal from vrcp14ps and one Newton step
 * (relative error ~2^-28; measured <= 3 ulp, from the rounding of 1 + |x|); for
 * |x| > 2^26 (inf included) the float result is +-1. */
H_LOOP1(H_softsign_fwd_f32, {
    V16 ax = _mm512_abs_ps(x);
    V16 d = _mm512_add_ps(SET1(1.0f), ax);
    V16 r = _mm512_rcp14_ps(d);
    r = _mm512_mul_ps(r, _mm512_fnmadd_ps(d, r, SET1(2.0f)));
    y = _mm512_mul_ps(x, r);
    __mmask16 huge = _mm512_cmp_ps_mask(ax, SET1(0x1p26f), _CMP_GT_OQ);
    V16 sgn = _mm512_or_ps(_mm512_and_ps(x, SET1(-0.0f)), SET1(1.0f));
    y = _mm512_mask_blend_ps(huge, y, sgn);
})

#undef V16
#undef SET1

/* swap the hand-vectorised loops into the AVX-512 table (once, at first use) */
static void fa_avx512_install_hand(fa_impl *t)
{
    t->act[FA_ACT_sigmoid].fwd[FA_F32] = H_sigmoid_fwd_f32;
    t->act[FA_ACT_tanh].fwd[FA_F32] = H_tanh_fwd_f32;
    t->act[FA_ACT_silu].fwd[FA_F32] = H_silu_fwd_f32;
    t->act[FA_ACT_silu].bwd[FA_F32] = H_silu_bwd_f32;
    t->act[FA_ACT_log_sigmoid].fwd[FA_F32] = H_log_sigmoid_fwd_f32;
    t->act[FA_ACT_log_sigmoid].bwd[FA_F32] = H_log_sigmoid_bwd_f32;
    t->act[FA_ACT_softplus_pow2].fwd[FA_F32] = H_softplus_pow2_fwd_f32;
    t->act[FA_ACT_softplus_pow2].bwd[FA_F32] = H_softplus_pow2_bwd_f32;
    t->act[FA_ACT_relu].bwd[FA_F32] = H_relu_bwd_f32;
    t->act[FA_ACT_hardtanh].bwd[FA_F32] = H_hardtanh_bwd_f32;
    t->act[FA_ACT_softsign].fwd[FA_F32] = H_softsign_fwd_f32;
}
