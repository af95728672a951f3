/* fa_gelu_simd.h -- float32 GELU (exact and tanh forms) in float arithmetic, vectorised.
 *
 * Included by fa_kernels_avx2.c (FA_SIMD_W = 8, AVX2+FMA) and fa_kernels_avx512.c
 * (FA_SIMD_W = 16, AVX-512), which define the handful of vector macros below; the
 * math is written once.  The baseline build keeps the double-precision bodies of
 * fa_acts_body.h (_ps), so every path is correct and these loops only replace the
 * float32 forward and backward of gelu and gelu_tanh in the two SIMD tables.
 *
 * Exact gelu.  With a = |x|, Q(a) = Phi(-a) the Gaussian upper tail, phi the density:
 *     gelu(x) = max(x, 0) - f(a),  f(a) = a Q(a)
 *     gelu'(x) = v(a) for x < 0, 1 - v(a) for x >= 0,  v(a) = Q(a) - a phi(a)
 * f and v come straight from a table of polynomials, no exp: one per interval of width
 * 1/SCALE, interval n = round(a SCALE) read off the low bits of the float
 * a SCALE + 1.5 2^23 (one FMA), each coefficient fetched for all lanes by one permute
 * (AVX-512: 32 intervals of width 1/4, vpermt2ps, ONE table of degree 6 whose p fits f
 * and whose derivative p' fits v (FA_GELU_FV: a dense layer's forward gets gelu and
 * gelu' from one set of lookups); AVX2: 8 of width 1, vpermps, a table for f of degree
 * 10 and one for v of degree 9; tools/fit_gelu_f32.py, src/gelu_f32_coeffs.h).  Each
 * polynomial is in d = a - e_n, e_n the interval's right end (e_0 = 0): d is exact, and
 * since f and v decay like exp(-a^2/2) every term of the Horner sum has the same sign
 * there, so the float evaluation does not cancel.  The contract needs f to 4 ulp only
 * where |gelu| >= 1e-6 (a <= 5.1) and to 1e-7 absolute beyond, v to 8 ulp + 2e-7:
 * past a ~ 6.1 (AVX-512) or 6.5 (AVX2) the tables hold zeros and a is clamped into them,
 * so gelu(x) is 0 below (|gelu| < 2e-8 there) and x above; gelu'(x) 0 and 1.
 * 19 vector operations per 16 floats for the AVX-512 forward (the previous
 * erfcx-table-times-exp form took 38); its backward, p' by the Horner recursion, ~28.
 *
 * gelu_tanh: x sigma(2u), 2u = c0 x + c1 x^3 with c0 = 2 sqrt(2/pi), c1 = 0.044715 c0,
 * the argument 2u carried as a double-float (hi + lo, ~44 bits) built from exact
 * products (FMA) and a two-sum: exp then sees the same argument the float64
 * reference does, to ~1e-11 absolute up to |2u| = 127.  t = e^-|2u|, then
 * sigma(2u) = (x < 0 ? t : 1) / (1 + t), and the derivative
 * sigma(2u) + x sigma(2u) sigma(-2u) 2u' with sigma sigma(-) = t / (1 + t)^2.
 * |x| is clamped to 11.5 (|2u| = 127: e^-127 x 300 underflows).
 *
 * Accuracy: tools/sweep_gelu_f32.py checks every float32 in the range where the
 * result is neither 0 nor x, on every path (README, Accuracy, has the numbers).
 */
#include "gelu_f32_coeffs.h"

#ifndef FA_GELU_SIMD_ONCE
#define FA_GELU_SIMD_ONCE
/* exp reduction: Cephes' split of ln 2 (C1 has 9 bits: k*C1 exact) and its expf minimax */
#define FA_GS_LOG2E 1.44269504088896341f
#define FA_GS_C1 0.693359375f
#define FA_GS_C2 -2.12194440e-4f
#define FA_GS_SHIFTER 0x1.8p23f
/* gelu_tanh: c0 = 2 sqrt(2/pi) and c1 = 0.044715 c0 as float pairs hi + lo */
#define FA_GT2_C0 1.5957691216057308  /* double */
#define FA_GT2_C1 (1.5957691216057308 * 0.044715)
#define FA_GT_XMAX 11.5f
#endif

/* e^(zh + zl) = (1 + q) 2^k for |zl| <= ulp(zh), zh <= 0, zh >= -130: returns q = e^r - 1
 * (|r| <= ln2/2 + |zl|), so that callers form c e^r = fma(c, q, c) in one rounding, and
 * *kf = k (a float integer), *kfs = k + 0x1.8p23 (its bits carry k) */
static inline FA_V FA_GS(expm1_core)(FA_V zh, FA_V zl, int has_lo, FA_V *kf, FA_V *kfs)
{
    FA_V ks = FA_FMA(zh, FA_SET1(FA_GS_LOG2E), FA_SET1(FA_GS_SHIFTER));
    FA_V k = FA_SUB(ks, FA_SET1(FA_GS_SHIFTER));
    FA_V r = FA_FNMA(k, FA_SET1(FA_GS_C1), zh);      /* exact */
    r = FA_FNMA(k, FA_SET1(FA_GS_C2), r);
    if (has_lo)
        r = FA_ADD(r, zl);
    FA_V p = FA_SET1(1.9875691500e-4f);
    p = FA_FMA(p, r, FA_SET1(1.3981999507e-3f));
    p = FA_FMA(p, r, FA_SET1(8.3334519073e-3f));
    p = FA_FMA(p, r, FA_SET1(4.1665795894e-2f));
    p = FA_FMA(p, r, FA_SET1(1.6666665459e-1f));
    p = FA_FMA(p, r, FA_SET1(5.0000001201e-1f));
    *kf = k;
    *kfs = ks;
    return FA_FMA(p, FA_MUL(r, r), r);
}
#define FA_EXPM1_SPLIT(zh, zl, kf, kfs) FA_GS(expm1_core)((zh), (zl), 1, (kf), (kfs))
#define FA_EXPM1_1(z, kf, kfs) FA_GS(expm1_core)((z), (z), 0, (kf), (kfs))

/* sum_j c[j][n] (a - e[n])^j, n = round(a scale): a direct table of gelu_f32_coeffs.h
 * (rows of FA_FTAB_N entries; a >= 0 clamped into the table, or NaN) */
static inline FA_V FA_GS(table_poly)(FA_V a, float scale, const float *e, const float *c, int nc)
{
    FA_VI idx = FA_CASTI(FA_FMA(a, FA_SET1(scale), FA_SET1(FA_GS_SHIFTER)));
    FA_V d = FA_SUB(a, FA_FLOOK(e, idx));          /* exact */
    FA_V p = FA_FLOOK(c + (nc - 1) * FA_FTAB_N, idx);
    for (int j = nc - 2; j >= 0; j--)              /* unrolled: nc is a constant */
        p = FA_FMA(p, d, FA_FLOOK(c + j * FA_FTAB_N, idx));
    return p;
}

#if defined(FA_GELU_FV)
/* One table for both (AVX-512): p(d) fits f and p'(d) fits v = f' (tools/fit_gelu_f32.py,
 * fa_gelufv32), q = p'(d) by the Horner recursion q = q d + p before each p = p d + c:
 * the forward's p is plain Horner's, and a dense layer's forward gets gelu and gelu' from
 * one set of lookups (gelu_vd), the same bits as gelu_fwd and gelu_dx.  |x| is clamped
 * to AMAX (a NaN x: NaN through min, and through max(x, 0) in the forward). */
static inline FA_V FA_GS(gelu_pq)(FA_V x, FA_V *q)
{
    FA_V ac = FA_MIN(FA_SET1(FA_GELUF_AMAX), FA_ABS(x));   /* NaN kept (second operand) */
    FA_VI idx = FA_CASTI(FA_FMA(ac, FA_SET1(FA_GELUF_SCALE), FA_SET1(FA_GS_SHIFTER)));
    FA_V d = FA_SUB(ac, FA_FLOOK(FA_GELUF_E, idx));          /* exact */
    FA_V p = FA_FLOOK(FA_GELUF_C[FA_GELUF_NC - 1], idx);
    FA_V qq = FA_SETZERO();
    for (int j = FA_GELUF_NC - 2; j >= 0; j--) {             /* unrolled: a constant count */
        qq = FA_FMA(qq, d, p);
        p = FA_FMA(p, d, FA_FLOOK(FA_GELUF_C[j], idx));
    }
    *q = qq;
    return p;
}

static inline FA_V FA_GS(gelu_fwd)(FA_V x)
{
    FA_V ac = FA_ABSMIN(x, FA_SET1(FA_GELUF_AMAX));   /* min(|x|, AMAX); a NaN x: any */
    FA_V f = FA_GS(table_poly)(ac, FA_GELUF_SCALE, FA_GELUF_E, &FA_GELUF_C[0][0], FA_GELUF_NC);
    return FA_SUB(FA_MAX(FA_SETZERO(), x), f);
}

static inline FA_V FA_GS(gelu_dx)(FA_V x)
{
    FA_V q;
    (void)FA_GS(gelu_pq)(x, &q);
    return FA_SEL_NEG(x, q, FA_SUB(FA_SET1(1.0f), q));
}

static inline FA_V FA_GS(gelu_vd)(FA_V x, FA_V *d)
{
    FA_V q;
    FA_V f = FA_GS(gelu_pq)(x, &q);
    *d = FA_SEL_NEG(x, q, FA_SUB(FA_SET1(1.0f), q));
    return FA_SUB(FA_MAX(FA_SETZERO(), x), f);
}
#else
/* gelu(x) = max(x, 0) - f(|x|) */
static inline FA_V FA_GS(gelu_fwd)(FA_V x)
{
    FA_V ac = FA_ABSMIN(x, FA_SET1(FA_GELUF_AMAX));   /* min(|x|, AMAX); a NaN x: any */
    FA_V f = FA_GS(table_poly)(ac, FA_GELUF_SCALE, FA_GELUF_E, &FA_GELUF_C[0][0], FA_GELUF_NC);
    FA_V pos = FA_MAX(FA_SETZERO(), x);            /* x >= 0: x (NaN kept), else 0 */
    return FA_SUB(pos, f);                         /* x Q, or x - x Q */
}

/* gelu'(x) = v(|x|) for x < 0, 1 - v(|x|) for x >= 0 */
static inline FA_V FA_GS(gelu_dx)(FA_V x)
{
    FA_V ac = FA_MIN(FA_SET1(FA_GELUB_AMAX), FA_ABS(x));   /* NaN kept (second operand) */
    FA_V v = FA_GS(table_poly)(ac, FA_GELUB_SCALE, FA_GELUB_E, &FA_GELUB_C[0][0], FA_GELUB_NC);
    return FA_SEL_NEG(x, v, FA_SUB(FA_SET1(1.0f), v));
}
#endif

/* gelu_tanh: e^-|2u| = (1 + q) 2^k; returns q, the clamped x and x^2 */
static inline FA_V FA_GS(gelu_tanh_q)(FA_V x, FA_V *xc_out, FA_V *s_out, FA_V *kf, FA_V *kfs)
{
    const float c0h = (float)FA_GT2_C0, c0l = (float)(FA_GT2_C0 - (double)(float)FA_GT2_C0);
    const float c1h = (float)FA_GT2_C1, c1l = (float)(FA_GT2_C1 - (double)(float)FA_GT2_C1);
    FA_V xc = FA_MIN(FA_SET1(FA_GT_XMAX), FA_MAX(FA_SET1(-FA_GT_XMAX), x));   /* NaN kept */
    FA_V s = FA_MUL(xc, xc);
    FA_V sl = FA_FMS(xc, xc, s);
    FA_V p = FA_MUL(FA_SET1(c1h), s);
    FA_V pe = FA_FMS(FA_SET1(c1h), s, p);
    /* two-sum c0h + p = mh + ml */
    FA_V mh = FA_ADD(FA_SET1(c0h), p);
    FA_V bb = FA_SUB(mh, FA_SET1(c0h));
    FA_V ml = FA_ADD(FA_SUB(FA_SET1(c0h), FA_SUB(mh, bb)), FA_SUB(p, bb));
    ml = FA_ADD(ml, pe);
    ml = FA_FMA(FA_SET1(c1h), sl, ml);
    ml = FA_FMA(FA_SET1(c1l), s, ml);
    ml = FA_ADD(ml, FA_SET1(c0l));
    /* 2u = x (mh + ml) = vh + vl */
    FA_V vh = FA_MUL(xc, mh);
    FA_V vl = FA_FMS(xc, mh, vh);
    vl = FA_FMA(xc, ml, vl);
    FA_V sgn = FA_SET1(-0.0f);
    FA_V zh = FA_OR(vh, sgn);                       /* -|2u| */
    FA_V zl = FA_XOR(vl, FA_ANDNOT(vh, sgn));
    *xc_out = xc;
    *s_out = s;
    return FA_EXPM1_SPLIT(zh, zl, kf, kfs);
}

/* x sigma(2u): x / (1 + t) for x >= 0; for x < 0, (x e^r / (1 + t)) 2^k, the scaling last */
static inline FA_V FA_GS(gelu_tanh_fwd)(FA_V x)
{
    FA_V xc, s, kf, kfs;
    FA_V q = FA_GS(gelu_tanh_q)(x, &xc, &s, &kf, &kfs);
    FA_V t = FA_SCALE(FA_ADD(q, FA_SET1(1.0f)), kf, kfs);
    FA_V dn = FA_ADD(FA_SET1(1.0f), t);
    FA_V neg = FA_SCALE(FA_DIV(FA_FMA(xc, q, xc), dn), kf, kfs);
    return FA_SEL_NEG(x, neg, FA_DIV(x, dn));
}

/* sigma(2u) + 2x u' sigma(2u) sigma(-2u), sigma sigma(-) = t / (1 + t)^2:
 * x >= 0: rd + t z, x < 0: (e^r (rd + z)) 2^k, with rd = 1 / (1 + t), z = 2x u' rd^2 */
static inline FA_V FA_GS(gelu_tanh_dx)(FA_V x)
{
    const float k2 = (float)FA_GT2_C0, k6 = (float)(3.0 * FA_GT2_C1);
    FA_V xc, s, kf, kfs;
    FA_V q = FA_GS(gelu_tanh_q)(x, &xc, &s, &kf, &kfs);
    FA_V t = FA_SCALE(FA_ADD(q, FA_SET1(1.0f)), kf, kfs);
    FA_V rd = FA_DIV(FA_SET1(1.0f), FA_ADD(FA_SET1(1.0f), t));
    FA_V du2 = FA_FMA(FA_SET1(k6), s, FA_SET1(k2));   /* 2 u'(x) */
    FA_V z = FA_MUL(FA_MUL(FA_MUL(xc, du2), rd), rd);
    FA_V hn = FA_ADD(rd, z);
    FA_V neg = FA_SCALE(FA_FMA(hn, q, hn), kf, kfs);
    return FA_SEL_NEG(x, neg, FA_FMA(t, z, rd));
}

/* ---- the loops: full vectors, then the tail through a zero-padded buffer ---- */
#define FA_GS_LOOP1(NAME, CORE)                                                \
    static void NAME(const void *xv, void *yv, ptrdiff_t n, const fa_params *pp) \
    {                                                                          \
        const float *xs = (const float *)xv;                                   \
        float *ys = (float *)yv;                                               \
        (void)pp;                                                              \
        ptrdiff_t i = 0;                                                       \
        for (; i + FA_SIMD_W <= n; i += FA_SIMD_W) {                           \
            FA_PREFETCH(xs + i);                                               \
            FA_PREFETCH(ys + i);                                               \
            FA_STOREU(ys + i, CORE(FA_LOADU(xs + i)));                         \
        }                                                                      \
        if (i < n) {                                                           \
            float buf[FA_SIMD_W] = {0};                                        \
            for (ptrdiff_t j = 0; j < n - i; j++) buf[j] = xs[i + j];          \
            FA_STOREU(buf, CORE(FA_LOADU(buf)));                               \
            for (ptrdiff_t j = 0; j < n - i; j++) ys[i + j] = buf[j];          \
        }                                                                      \
    }
/* g f'(x) over two arrays: APPLY(CORE, g, x) gives the product, from a core of x alone
 * (FA_GS_LOOP2: g times CORE(x)) or from a core that takes g as well (FA_GS_LOOP2G) */
#define FA_GS_LOOP2_(NAME, APPLY, CORE)                                        \
    static void NAME(const void *gv, const void *xv, void *ov, ptrdiff_t n,    \
                     const fa_params *pp)                                      \
    {                                                                          \
        const float *gs = (const float *)gv, *xs = (const float *)xv;          \
        float *os = (float *)ov;                                               \
        (void)pp;                                                              \
        ptrdiff_t i = 0;                                                       \
        for (; i + FA_SIMD_W <= n; i += FA_SIMD_W) {                           \
            FA_PREFETCH(gs + i);                                               \
            FA_PREFETCH(xs + i);                                               \
            FA_PREFETCH(os + i);                                               \
            FA_STOREU(os + i, APPLY(CORE, FA_LOADU(gs + i), FA_LOADU(xs + i))); \
        }                                                                      \
        if (i < n) {                                                           \
            float bx[FA_SIMD_W] = {0}, bg[FA_SIMD_W] = {0};                    \
            for (ptrdiff_t j = 0; j < n - i; j++) { bx[j] = xs[i + j]; bg[j] = gs[i + j]; } \
            FA_STOREU(bx, APPLY(CORE, FA_LOADU(bg), FA_LOADU(bx)));            \
            for (ptrdiff_t j = 0; j < n - i; j++) os[i + j] = bx[j];           \
        }                                                                      \
    }
#define FA_GS_LOOP_MUL(CORE, g, x) FA_MUL((g), CORE(x))
#define FA_GS_LOOP_G(COREG, g, x) COREG((g), (x))
#define FA_GS_LOOP2(NAME, CORE) FA_GS_LOOP2_(NAME, FA_GS_LOOP_MUL, CORE)
#define FA_GS_LOOP2G(NAME, COREG) FA_GS_LOOP2_(NAME, FA_GS_LOOP_G, COREG)

/* the dense-layer loops (fa_kernels_impl.h's bias_fwd / bias_bwd, same contract):
 * y = f(z + b) row by row, the float sum rounded as the portable loop rounds it; and
 * dz = g f'(s (+ b)), then db[j] += dz[j] in double, in the same order as there (the
 * sums of FA_CS_W columns in registers, fa_colsum.h) */
#define FA_GS_CALL1(CORE, u, prm) CORE(u)
#define FA_GS_CALLP(CORE, u, prm) CORE((u), (prm))
/* the forward: APPLY(CORE, u, prm) with prm = PARAM (an expression of pp, evaluated once) */
#define FA_GS_BIAS_F_(NAMEF, APPLY, COREF, PARAM)                              \
    static void NAMEF(const void *zv, const void *bv, void *yv, ptrdiff_t rows, \
                      ptrdiff_t cols, const fa_params *pp)                     \
    {                                                                          \
        const float *b = (const float *)bv;                                    \
        const FA_V prm = PARAM;                                                \
        (void)pp;                                                              \
        (void)prm;                                                             \
        for (ptrdiff_t r = 0; r < rows; r++) {                                 \
            const float *z = (const float *)zv + r * cols;                     \
            float *y = (float *)yv + r * cols;                                 \
            ptrdiff_t j = 0;                                                   \
            for (; j + FA_SIMD_W <= cols; j += FA_SIMD_W)                      \
                FA_STOREU(y + j, APPLY(COREF, FA_ADD(FA_LOADU(z + j), FA_LOADU(b + j)), prm)); \
            if (j < cols) {                                                    \
                float bz[FA_SIMD_W] = {0}, bb[FA_SIMD_W] = {0};                \
                for (ptrdiff_t k = 0; k < cols - j; k++) { bz[k] = z[j + k]; bb[k] = b[j + k]; } \
                FA_STOREU(bz, APPLY(COREF, FA_ADD(FA_LOADU(bz), FA_LOADU(bb)), prm)); \
                for (ptrdiff_t k = 0; k < cols - j; k++) y[j + k] = bz[k];     \
            }                                                                  \
        }                                                                      \
    }
#define FA_GS_BIAS_F(NAMEF, COREF) FA_GS_BIAS_F_(NAMEF, FA_GS_CALL1, COREF, FA_SETZERO())
#define FA_GS_BIAS(NAMEF, NAMEB, COREF, CORED)                                 \
    FA_GS_BIAS_F(NAMEF, COREF)                                                 \
    static void NAMEB(const void *gv, const void *sv, const void *bv, void *dzv, \
                      double *db, ptrdiff_t rows, ptrdiff_t cols, const fa_params *pp) \
    {                                                                          \
        const float *b = (const float *)bv;                                    \
        (void)pp;                                                              \
        ptrdiff_t j0 = 0;                                                      \
        for (; FA_CS_ON && j0 + FA_CS_W <= cols; j0 += FA_CS_W) {              \
            FA_CS_OPEN(db + j0);                                               \
            for (ptrdiff_t r = 0; r < rows; r++) {                             \
                const float *g = (const float *)gv + r * cols + j0;            \
                const float *s = (const float *)sv + r * cols + j0;            \
                float *dz = (float *)dzv + r * cols + j0;                      \
                for (ptrdiff_t j = 0; j < FA_CS_W; j += FA_SIMD_W) {           \
                    FA_V x = FA_LOADU(s + j);                                  \
                    if (b) x = FA_ADD(x, FA_LOADU(b + j0 + j));                \
                    FA_STOREU(dz + j, FA_MUL(FA_LOADU(g + j), CORED(x)));      \
                }                                                              \
                FA_CS_ROW(f32, dz);                                            \
            }                                                                  \
            FA_CS_CLOSE(db + j0);                                              \
        }                                                                      \
        if (j0 == cols) return;                                                \
        for (ptrdiff_t r = 0; r < rows; r++) {                                 \
            const float *g = (const float *)gv + r * cols, *s = (const float *)sv + r * cols; \
            float *dz = (float *)dzv + r * cols;                               \
            ptrdiff_t j = j0;                                                  \
            for (; j + FA_SIMD_W <= cols; j += FA_SIMD_W) {                    \
                FA_V x = FA_LOADU(s + j);                                      \
                if (b) x = FA_ADD(x, FA_LOADU(b + j));                         \
                FA_STOREU(dz + j, FA_MUL(FA_LOADU(g + j), CORED(x)));          \
            }                                                                  \
            if (j < cols) {                                                    \
                float bs[FA_SIMD_W] = {0}, bg[FA_SIMD_W] = {0};                \
                for (ptrdiff_t k = 0; k < cols - j; k++) {                     \
                    bs[k] = b ? s[j + k] + b[j + k] : s[j + k];                \
                    bg[k] = g[j + k];                                          \
                }                                                              \
                FA_STOREU(bs, FA_MUL(FA_LOADU(bg), CORED(FA_LOADU(bs))));      \
                for (ptrdiff_t k = 0; k < cols - j; k++) dz[j + k] = bs[k];    \
            }                                                                  \
            for (ptrdiff_t k = j0; k < cols; k++) db[k] += (double)dz[k];      \
        }                                                                      \
    }

/* the dense layer's forward that keeps the derivative (fa_bias_fwd_d): u = z + b (b may
 * be NULL), y = f(u), d = f'(u), row by row; d may be z (each vector read first) */
#define FA_GS_BIAS_D(NAME, COREVD)                                             \
    static void NAME(const void *zv, const void *bv, void *yv, void *dv, ptrdiff_t rows, \
                     ptrdiff_t cols, const fa_params *pp)                      \
    {                                                                          \
        const float *b = (const float *)bv;                                    \
        (void)pp;                                                              \
        for (ptrdiff_t r = 0; r < rows; r++) {                                 \
            const float *z = (const float *)zv + r * cols;                     \
            float *y = (float *)yv + r * cols, *d = (float *)dv + r * cols;    \
            ptrdiff_t j = 0;                                                   \
            FA_V dj;                                                           \
            for (; j + FA_SIMD_W <= cols; j += FA_SIMD_W) {                    \
                FA_V u = FA_LOADU(z + j);                                      \
                if (b) u = FA_ADD(u, FA_LOADU(b + j));                         \
                FA_STOREU(y + j, COREVD(u, &dj));                              \
                FA_STOREU(d + j, dj);                                          \
            }                                                                  \
            if (j < cols) {                                                    \
                float bu[FA_SIMD_W] = {0}, bd[FA_SIMD_W];                      \
                for (ptrdiff_t k = 0; k < cols - j; k++)                       \
                    bu[k] = b ? z[j + k] + b[j + k] : z[j + k];                \
                FA_STOREU(bu, COREVD(FA_LOADU(bu), &dj));                      \
                FA_STOREU(bd, dj);                                             \
                for (ptrdiff_t k = 0; k < cols - j; k++) {                     \
                    y[j + k] = bu[k];                                          \
                    d[j + k] = bd[k];                                          \
                }                                                              \
            }                                                                  \
        }                                                                      \
    }

/* gelu_tanh and its derivative together, sharing e^-|2u| and 1 + e^-|2u| (the same
 * operations as gelu_tanh_fwd and gelu_tanh_dx, so the same bits): the kernels of a
 * 20 x 64 x 128 network 230 -> 155 us on AVX-512.  Exact gelu's is gelu_vd (AVX-512, one
 * table); on AVX2 its two tables share nothing but |x| (kept together they measured the
 * same as apart), so it keeps no derivative there. */
static inline FA_V FA_GS(gelu_tanh_vd)(FA_V x, FA_V *dout)
{
    const float k2 = (float)FA_GT2_C0, k6 = (float)(3.0 * FA_GT2_C1);
    FA_V xc, s, kf, kfs;
    FA_V q = FA_GS(gelu_tanh_q)(x, &xc, &s, &kf, &kfs);
    FA_V t = FA_SCALE(FA_ADD(q, FA_SET1(1.0f)), kf, kfs);
    FA_V dn = FA_ADD(FA_SET1(1.0f), t);
    FA_V neg = FA_SCALE(FA_DIV(FA_FMA(xc, q, xc), dn), kf, kfs);
    FA_V rd = FA_DIV(FA_SET1(1.0f), dn);
    FA_V du2 = FA_FMA(FA_SET1(k6), s, FA_SET1(k2));
    FA_V z = FA_MUL(FA_MUL(FA_MUL(xc, du2), rd), rd);
    FA_V hn = FA_ADD(rd, z);
    FA_V dneg = FA_SCALE(FA_FMA(hn, q, hn), kf, kfs);
    *dout = FA_SEL_NEG(x, dneg, FA_FMA(t, z, rd));
    return FA_SEL_NEG(x, neg, FA_DIV(x, dn));
}

FA_GS_LOOP1(FA_GS(L_gelu_fwd), FA_GS(gelu_fwd))
FA_GS_LOOP2(FA_GS(L_gelu_bwd), FA_GS(gelu_dx))
FA_GS_LOOP1(FA_GS(L_gelu_tanh_fwd), FA_GS(gelu_tanh_fwd))
FA_GS_LOOP2(FA_GS(L_gelu_tanh_bwd), FA_GS(gelu_tanh_dx))
FA_GS_BIAS(FA_GS(L_gelu_bias_fwd), FA_GS(L_gelu_bias_bwd), FA_GS(gelu_fwd), FA_GS(gelu_dx))
FA_GS_BIAS(FA_GS(L_gelu_tanh_bias_fwd), FA_GS(L_gelu_tanh_bias_bwd), FA_GS(gelu_tanh_fwd),
           FA_GS(gelu_tanh_dx))
FA_GS_BIAS_D(FA_GS(L_gelu_tanh_bias_fwd_d), FA_GS(gelu_tanh_vd))
#if defined(FA_GELU_FV)
FA_GS_BIAS_D(FA_GS(L_gelu_bias_fwd_d), FA_GS(gelu_vd))
#endif

static void FA_GS(install_gelu)(fa_impl *t)
{
    t->act[FA_ACT_gelu].fwd[FA_F32] = FA_GS(L_gelu_fwd);
    t->act[FA_ACT_gelu].bwd[FA_F32] = FA_GS(L_gelu_bwd);
    t->act[FA_ACT_gelu_tanh].fwd[FA_F32] = FA_GS(L_gelu_tanh_fwd);
    t->act[FA_ACT_gelu_tanh].bwd[FA_F32] = FA_GS(L_gelu_tanh_bwd);
    t->act[FA_ACT_gelu].bias_fwd[FA_F32] = FA_GS(L_gelu_bias_fwd);
    t->act[FA_ACT_gelu].bias_bwd[FA_F32] = FA_GS(L_gelu_bias_bwd);
    t->act[FA_ACT_gelu_tanh].bias_fwd[FA_F32] = FA_GS(L_gelu_tanh_bias_fwd);
    t->act[FA_ACT_gelu_tanh].bias_bwd[FA_F32] = FA_GS(L_gelu_tanh_bias_bwd);
    t->act[FA_ACT_gelu_tanh].bias_fwd_d[FA_F32] = FA_GS(L_gelu_tanh_bias_fwd_d);
#if defined(FA_GELU_FV)
    t->act[FA_ACT_gelu].bias_fwd_d[FA_F32] = FA_GS(L_gelu_bias_fwd_d);
#endif
}
