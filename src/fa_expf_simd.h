/* fa_expf_simd.h -- float32 sigmoid, silu, log_sigmoid' and softplus' (beta = 2^k)
 * with explicit vectors.
 *
 * Included after fa_gelu_simd.h by fa_kernels_avx2.c and fa_kernels_avx512.c (same
 * vector macros, same exp: FA_GS(expm1_core), 2^k applied last, subnormal results
 * rounded once).  gcc's vectorisation of the portable bodies (fa_acts_body.h over
 * fa_mathf.h) builds 2^k from two integer-made factors and keeps every select of
 * the scalar code; here e^-|x| costs the Cephes polynomial, one FMA pair of range
 * reduction and one scaling, and the division is FA_DIVF: on AVX-512 a reciprocal
 * estimate (vrcp14ps, 2^-14) and one correction of the quotient
 * (q + r (n - d q): ~2^-28 relative before the last rounding, so within a hair of
 * the correctly rounded n / d), which frees the divider that bounds these loops on
 * Intel cores; on AVX2 a plain division (fast enough there: it overlaps the rest).
 *
 * sigma(x) = (x >= 0 ? 1 : t) / (1 + t), t = e^-|x|, as fa_acts_body.h's sig_pair, for
 * softplus' (sigmoid_sel_v); sigmoid, silu and silu' use the select-free sig_core below
 * (1e5 floats, one thread, out=, before -> after: AVX-512 sigmoid 26.4 -> 21.2 us, silu
 * 31-34 -> 22.4 us, silu' 35-40 -> 26.6 us; AVX2 40 -> 29, 50 -> 31, 54 -> 35 us).
 */

/* e^-|x| for |x| <= 104 (clamped: sigma and silu are settled there) */
static inline FA_V FA_GS(exp_neg_abs)(FA_V x)
{
    FA_V ax = FA_MIN(FA_SET1(104.0f), FA_ABS(x));     /* NaN kept (second operand) */
    FA_V kf, kfs;
    FA_V q = FA_EXPM1_1(FA_OR(ax, FA_SET1(-0.0f)), &kf, &kfs);
    return FA_SCALE(FA_ADD(q, FA_SET1(1.0f)), kf, kfs);
}

/* sigma(x) by the select form: softplus' (beta = 2^k) on AVX2 */
static inline FA_V FA_GS(sigmoid_sel_v)(FA_V x)
{
    FA_V t = FA_GS(exp_neg_abs)(x);
    return FA_DIVF(FA_SEL_NEG(x, t, FA_SET1(1.0f)), FA_ADD(FA_SET1(1.0f), t));
}

/* The sigma core of sigmoid, silu and silu' (one form for x of either sign, no select):
 * for xc = x clamped to [-104, 20] (NaN kept: max / min return their second operand;
 * sigma rounds to 1 above 17 and to 0 below -103.9), m = round(xc log2(e)) by the
 * shifter, w = xc - m ln2 with ln2 in two floats (the single constant of log_sigmoid'
 * would cost m 1.9e-9 relative: too much for the forward's 4 ulp), p = e^-w by a
 * degree-6 minimax polynomial in w (6.1e-8, tools/fit_sigmoid_neg.py "f32_er6", odd
 * coefficients negated), so that e^-xc = p 2^-m and
 *     sigma(xc) = 2^m / (p + 2^m),    sigma(-xc) = p / (p + 2^m).
 * Everything is carried scaled by 2^64 (P = 2^64 p: the coefficients scaled, exactly;
 * B = 2^(m + 64), in [2^-86, 2^93]: a normal float, with no overflow for any xc), so
 * that D = P + B is finite and normal, r = 1 / D, s = B r (subnormal sigmas rounded
 * once: sigmoid(-90) is not 0) and c = P r, no inf, no NaN for any x but NaN.
 *   AVX-512: B by vscalefps, r by vrcp14ps and one Newton step (2^-28);
 *   AVX2: B in the exponent bits (2^64's plus m's), r by the division.
 * Returns s = sigma(xc), c = sigma(-xc) in *c if c is not NULL. */
#define FA_SIG_C(c) FA_SET1((c) * 0x1p64f)
static inline FA_V FA_GS(sig_core)(FA_V xc, FA_V *c)
{
    FA_V ks = FA_FMA(xc, FA_SET1(FA_GS_LOG2E), FA_SET1(FA_GS_SHIFTER));
    FA_V m = FA_SUB(ks, FA_SET1(FA_GS_SHIFTER));
    FA_V w = FA_FNMA(m, FA_SET1(0x1.62e43p-1f), xc);
    w = FA_FNMA(m, FA_SET1(-0x1.05c61p-29f), w);
    FA_V p = FA_SIG_C(0x1.685168p-10f);
    p = FA_FMA(p, w, FA_SIG_C(-0x1.123bdap-7f));
    p = FA_FMA(p, w, FA_SIG_C(0x1.555b98p-5f));
    p = FA_FMA(p, w, FA_SIG_C(-0x1.55548ep-3f));
    p = FA_FMA(p, w, FA_SIG_C(0x1.fffff8p-2f));
    p = FA_FMA(p, w, FA_SIG_C(-1.0f));
    p = FA_FMA(p, w, FA_SIG_C(1.0f));
#if FA_SIMD_W == 16
    FA_V b = _mm512_scalef_ps(FA_SET1(0x1p64f), m);
    FA_V d = FA_ADD(p, b);
    FA_V r = _mm512_rcp14_ps(d);
    r = FA_FMA(r, FA_FNMA(d, r, FA_SET1(1.0f)), r);
#else
    FA_V b = FA_CASTF(FA_ADDI32(FA_SLLI32(FA_CASTI(ks), 23), FA_CASTI(FA_SET1(0x1p64f))));
    FA_V r = FA_DIVF(FA_SET1(1.0f), FA_ADD(p, b));
#endif
    if (c) *c = FA_MUL(p, r);
    return FA_MUL(b, r);
}
#undef FA_SIG_C

static inline FA_V FA_GS(sigmoid_v)(FA_V x)
{
    return FA_GS(sig_core)(FA_MIN(FA_SET1(20.0f), FA_MAX(FA_SET1(-104.0f), x)), NULL);
}

/* g sigma(-x) = g / (1 + e^x): log_sigmoid' times g (g divided, not multiplied by a
 * quotient: one operation less, one rounding less).  The backward's contract (8 ulp + 2e-7 |g|)
 * lets e^x be cheaper than the forward's exp (tools/fit_sigmoid_neg.py): x clamped to
 * [-20, 89] (NaN kept: max / min return their second operand), n = round(x log2(e)) by
 * the shifter, r = x - n ln2 with one float ln2 (n <= 128: 2.4e-7 relative at most, where
 * the result is below 1e-38), e^r / 2 by a degree-5 minimax polynomial (1.75e-7) with
 * halved coefficients, 2^n added into its exponent bits (|n| <= 128 and e^r / 2 in
 * [0.35, 0.71]: always a normal float), and d = 2 (e^r / 2) 2^n + 1 in one FMA, which
 * overflows to inf for x >= 89 (1 / inf = 0: log_sigmoid'(inf) = 0) and is exactly 1 below
 * x = -17 (log_sigmoid'(-inf) = 1).  No select: 14 operations and one division, against
 * 25 and a division for the e^-|x| form (on AVX2 a vrcpps + Newton quotient measured
 * slower than the division there: 48 against 38 us at 1e5; the division stays).  AVX2
 * only: the AVX-512 table takes fa_avx512_hand.h's loop (FA_DIVF's correction step would
 * turn g / inf into NaN there). */
static inline FA_V FA_GS(log_sigmoid_bwd_g)(FA_V g, FA_V x)
{
    FA_V xc = FA_MIN(FA_SET1(89.0f), FA_MAX(FA_SET1(-20.0f), x));
    FA_V ks = FA_FMA(xc, FA_SET1(FA_GS_LOG2E), FA_SET1(FA_GS_SHIFTER));
    FA_V n = FA_SUB(ks, FA_SET1(FA_GS_SHIFTER));
    FA_V r = FA_FNMA(n, FA_SET1(0.693147182464599609375f), xc);
    FA_V p = FA_SET1(0x1.1065c8p-8f);
    p = FA_FMA(p, r, FA_SET1(0x1.5775c2p-6f));
    p = FA_FMA(p, r, FA_SET1(0x1.5558e4p-4f));
    p = FA_FMA(p, r, FA_SET1(0x1.fffcaep-3f));
    p = FA_FMA(p, r, FA_SET1(0x1.fffff8p-2f));
    p = FA_FMA(p, r, FA_SET1(0x1.000002p-1f));
    FA_V u = FA_CASTF(FA_ADDI32(FA_CASTI(p), FA_SLLI32(FA_CASTI(ks), 23)));   /* p 2^n */
    return FA_DIVF(g, FA_FMA(u, FA_SET1(2.0f), FA_SET1(1.0f)));
}

/* silu = x sigma(x) and silu' = s (1 + x c), s = sigma(x), c = sigma(-x), from one
 * sig_core: x is clamped to [-104, inf] in the product (s = 0 below -104: silu(-inf) =
 * -0, no inf * 0) and to [-104, 20] in silu' (s = 1 and x c below half an ulp above 20);
 * a NaN x stays NaN through s.  No select: ~22 vector operations for silu and silu'
 * together, against ~40 for the e^-|x| form. */
static inline FA_V FA_GS(silu_vd)(FA_V x, FA_V *d)
{
    FA_V xl = FA_MAX(FA_SET1(-104.0f), x);
    FA_V xc = FA_MIN(FA_SET1(20.0f), xl);
    FA_V c;
    FA_V s = FA_GS(sig_core)(xc, &c);
    *d = FA_MUL(s, FA_FMA(xc, c, FA_SET1(1.0f)));
    return FA_MUL(xl, s);
}

static inline FA_V FA_GS(silu_v)(FA_V x)
{
    FA_V xl = FA_MAX(FA_SET1(-104.0f), x);
    return FA_MUL(xl, FA_GS(sig_core)(FA_MIN(FA_SET1(20.0f), xl), NULL));
}

static inline FA_V FA_GS(silu_dx)(FA_V x)
{
    FA_V d;
    (void)FA_GS(silu_vd)(x, &d);
    return d;
}

/* tanh: with e = expm1(-2|x|) in (-1, 0], tanh|x| = -e / (2 + e), no cancellation
 * anywhere (Sleef's form): e = 2^k q + (2^k - 1) from the exp core (q = e^r - 1, k <= 0,
 * 2^k - 1 exact for k >= -24, one rounding in the FMA), the quotient by FA_DIVF
 * (2 + e in (1, 2]), the sign of x put back by a bit select (tanh(-0) = -0).  One
 * branch-free path for every x: ~25 vector operations, against ~35 for the polynomial
 * below 0.625 plus 1 - 2 / (e^2|x| + 1) above, each computed for every lane.
 * -2|x| clamped to -19 (|x| > 9.5: tanh is 1 in float); NaN kept (second operand). */
static inline FA_V FA_GS(tanh_v)(FA_V x)
{
    const FA_V sgn = FA_SET1(-0.0f);
    FA_V z = FA_MAX(FA_SET1(-19.0f), FA_OR(FA_ADD(x, x), sgn));   /* -2|x| */
    FA_V kf, kfs;
    FA_V q = FA_EXPM1_1(z, &kf, &kfs);
    FA_V t = FA_SCALE(FA_SET1(1.0f), kf, kfs);                      /* 2^k */
    FA_V ne = FA_FNMA(t, q, FA_SUB(FA_SET1(1.0f), t));              /* -expm1(-2|x|) */
    FA_V y = FA_DIVF(ne, FA_SUB(FA_SET1(2.0f), ne));
    return FA_OR(FA_ANDNOT(sgn, y), FA_AND(sgn, x));
}

#ifdef FA_TANHF_IDX
/* tanh from a table of polynomials (AVX-512: tools/fit_tanh_f32.py, src/tanh_f32_coeffs.h),
 * no exp and no division: a = min(|x|, 9.5) (NaN kept: second operand), interval
 * n = max(0, (bits(a) >> 21) - B) (FA_TANHF_IDX: one shift, one saturating 16-bit
 * subtraction; interval 0 is [0, 1/16), then 4 per binade up to [8, 10)), one permute per
 * coefficient, the degree-5 Horner sum in d = a - e_n (exact), the sign of x put back by
 * a bit or (tanh(-0) = -0, and a NaN stays NaN through d).  16 vector operations per 16
 * floats (tanh_v: ~25); AVX-512 only (on AVX2 the 8-entry table needs degree 9 and
 * measured slower than tanh_v).  Every float32: tools/sweep_gelu_f32.py --funcs tanh_fwd. */
#include "tanh_f32_coeffs.h"
static inline FA_V FA_GS(tanh_tab_v)(FA_V x)
{
    const FA_V sgn = FA_SET1(-0.0f);
    FA_V a = FA_MIN(FA_SET1(FA_TANHF_AMAX), FA_ABS(x));
    FA_VI idx = FA_TANHF_IDX(a);
    FA_V d = FA_SUB(a, FA_FLOOK(FA_TANHF_E, idx));            /* exact */
    FA_V p = FA_FLOOK(FA_TANHF_C[FA_TANHF_NC - 1], idx);
    for (int j = FA_TANHF_NC - 2; j >= 0; j--)                /* unrolled: a constant count */
        p = FA_FMA(p, d, FA_FLOOK(FA_TANHF_C[j], idx));
    return FA_OR(p, FA_AND(sgn, x));
}
FA_GS_LOOP1(FA_GS(L_tanh_tab_fwd), FA_GS(tanh_tab_v))
FA_GS_BIAS_F(FA_GS(L_tanh_tab_bias_fwd), FA_GS(tanh_tab_v))
#endif

/* elu = x for x > 0, else alpha expm1(x) (alpha = p.a rounded to float, as the portable
 * loop): expm1 = 2^k q + (2^k - 1) from the exp core as in tanh_v, x clamped to -19
 * (expm1 is -1 in float below -17.4), x's sign bit put on expm1 (it is <= 0 wherever it
 * is used) so that elu(-0) = -0 and elu(+0) = +0; NaN kept (x > 0 is false, the core
 * keeps it) */
static inline FA_V FA_GS(elu_v)(FA_V x, FA_V alpha)
{
    const FA_V sgn = FA_SET1(-0.0f);
    FA_V kf, kfs;
    FA_V q = FA_EXPM1_1(FA_MAX(FA_SET1(-19.0f), x), &kf, &kfs);
    FA_V t = FA_SCALE(FA_SET1(1.0f), kf, kfs);                      /* 2^k */
    FA_V em1 = FA_OR(FA_FMA(t, q, FA_SUB(t, FA_SET1(1.0f))), FA_AND(x, sgn));
    return FA_SEL_GT(x, FA_SETZERO(), x, FA_MUL(alpha, em1));
}

static void FA_GS(L_elu_fwd)(const void *xv, void *yv, ptrdiff_t n, const fa_params *pp)
{
    const float *xs = (const float *)xv;
    float *ys = (float *)yv;
    const FA_V alpha = FA_SET1((float)pp->a);
    ptrdiff_t i = 0;
    for (; i + FA_SIMD_W <= n; i += FA_SIMD_W) {
        FA_PREFETCH(xs + i);
        FA_PREFETCH(ys + i);
        FA_STOREU(ys + i, FA_GS(elu_v)(FA_LOADU(xs + i), alpha));
    }
    if (i < n) {
        float bx[FA_SIMD_W] = {0};
        for (ptrdiff_t j = 0; j < n - i; j++) bx[j] = xs[i + j];
        FA_STOREU(bx, FA_GS(elu_v)(FA_LOADU(bx), alpha));
        for (ptrdiff_t j = 0; j < n - i; j++) ys[i + j] = bx[j];
    }
}

/* softplus' for beta = 2^k (z = beta x exact): z > threshold ? 1 : sigma(z);
 * p.a = beta, p.d = the threshold rounded down to float (as fa_avx512_hand.h) */
static void FA_GS(L_softplus_pow2_bwd)(const void *gv, const void *xv, void *ov, ptrdiff_t n,
                                       const fa_params *pp)
{
    const float *gs = (const float *)gv, *xs = (const float *)xv;
    float *os = (float *)ov;
    const FA_V beta = FA_SET1((float)pp->a), thr = FA_SET1((float)pp->d);
#define FA_GS_SP_D(x) ({ FA_V z_ = FA_MUL((x), beta);                                  \
                         FA_SEL_GT(z_, thr, FA_SET1(1.0f), FA_GS(sigmoid_sel_v)(z_)); })
    ptrdiff_t i = 0;
    for (; i + FA_SIMD_W <= n; i += FA_SIMD_W) {
        FA_PREFETCH(gs + i);
        FA_PREFETCH(xs + i);
        FA_PREFETCH(os + i);
        FA_STOREU(os + i, FA_MUL(FA_LOADU(gs + i), FA_GS_SP_D(FA_LOADU(xs + i))));
    }
    if (i < n) {
        float bx[FA_SIMD_W] = {0}, bg[FA_SIMD_W] = {0};
        for (ptrdiff_t j = 0; j < n - i; j++) { bx[j] = xs[i + j]; bg[j] = gs[i + j]; }
        FA_STOREU(bx, FA_MUL(FA_LOADU(bg), FA_GS_SP_D(FA_LOADU(bx))));
        for (ptrdiff_t j = 0; j < n - i; j++) os[i + j] = bx[j];
    }
#undef FA_GS_SP_D
}

FA_GS_LOOP1(FA_GS(L_sigmoid_fwd), FA_GS(sigmoid_v))
/* the dense layer's y = f(z + b) in one pass (not the sum into y, then f over y) */
FA_GS_BIAS_F(FA_GS(L_sigmoid_bias_fwd), FA_GS(sigmoid_v))
FA_GS_BIAS_F(FA_GS(L_tanh_bias_fwd), FA_GS(tanh_v))
FA_GS_BIAS_F_(FA_GS(L_elu_bias_fwd), FA_GS_CALLP, FA_GS(elu_v), FA_SET1((float)pp->a))
FA_GS_LOOP1(FA_GS(L_tanh_fwd), FA_GS(tanh_v))
FA_GS_LOOP1(FA_GS(L_silu_fwd), FA_GS(silu_v))
FA_GS_LOOP2(FA_GS(L_silu_bwd), FA_GS(silu_dx))
FA_GS_LOOP2G(FA_GS(L_log_sigmoid_bwd), FA_GS(log_sigmoid_bwd_g))
FA_GS_BIAS(FA_GS(L_silu_bias_fwd), FA_GS(L_silu_bias_bwd), FA_GS(silu_v), FA_GS(silu_dx))

/* silu's dense-layer forward that keeps the derivative (FA_GS_BIAS_D, fa_gelu_simd.h) */
FA_GS_BIAS_D(FA_GS(L_silu_bias_fwd_d), FA_GS(silu_vd))

static void FA_GS(install_expf)(fa_impl *t)
{
    t->act[FA_ACT_sigmoid].fwd[FA_F32] = FA_GS(L_sigmoid_fwd);
    t->act[FA_ACT_tanh].fwd[FA_F32] = FA_GS(L_tanh_fwd);
    t->act[FA_ACT_elu].fwd[FA_F32] = FA_GS(L_elu_fwd);
    t->act[FA_ACT_silu].fwd[FA_F32] = FA_GS(L_silu_fwd);
    t->act[FA_ACT_silu].bwd[FA_F32] = FA_GS(L_silu_bwd);
    t->act[FA_ACT_log_sigmoid].bwd[FA_F32] = FA_GS(L_log_sigmoid_bwd);
    t->act[FA_ACT_softplus_pow2].bwd[FA_F32] = FA_GS(L_softplus_pow2_bwd);
    t->act[FA_ACT_silu].bias_fwd[FA_F32] = FA_GS(L_silu_bias_fwd);
    t->act[FA_ACT_silu].bias_bwd[FA_F32] = FA_GS(L_silu_bias_bwd);
    t->act[FA_ACT_silu].bias_fwd_d[FA_F32] = FA_GS(L_silu_bias_fwd_d);
    t->act[FA_ACT_sigmoid].bias_fwd[FA_F32] = FA_GS(L_sigmoid_bias_fwd);
    t->act[FA_ACT_tanh].bias_fwd[FA_F32] = FA_GS(L_tanh_bias_fwd);
    t->act[FA_ACT_elu].bias_fwd[FA_F32] = FA_GS(L_elu_bias_fwd);
}
