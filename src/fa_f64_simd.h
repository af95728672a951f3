/* fa_f64_simd.h -- float64 sigmoid, tanh, silu (forward and backward) and log_sigmoid'
 * with explicit vectors.
 *
 * Included by fa_kernels_avx2.c (FA_DW = 4) and fa_kernels_avx512.c (FA_DW = 8), which
 * define the FA_D* vector macros.  Same math as the portable bodies (fa_acts_body.h over
 * fa_math.h: t = e^-|x| by the degree-12 Taylor exp, sigma = (x >= 0 ? 1 : t) / (1 + t)),
 * with two changes that gcc cannot make on its own:
 *   - the quotient by 1 + t (in [1, 2]) is FA_DRCP: on AVX-512 vrcp14pd (2^-14) and two
 *     Newton steps (~2^-56 before the last rounding, a few 1e-16 relative in all),
 *     instead of vdivpd, whose 512-bit form issues once per ~16 cycles on Intel cores and
 *     bounded these loops (float64 silu ran at 0.86-0.93x PyTorch); on AVX2 a division
 *     (the 256-bit divider keeps up there);
 *   - 2^k is applied by FA_DSCALE (vscalefpd on AVX-512, two exponent factors on AVX2),
 *     so subnormal results are rounded once, as fa_exp does.
 * The float64 contract is 1e-12 relative; these stay within a few 1e-16.
 */

/* e^z - 1 = 2^k (1 + q) - 1 for -746 <= z <= 0: returns q = e^r - 1 (fa_exp's polynomial
 * without its final + 1), k (an integer double) and kd = k + 0x1.8p52 (k in its bits) */
static inline FA_DV FA_D(expm1_core)(FA_DV z, FA_DV *k_out, FA_DV *kd_out)
{
    const FA_DV shifter = FA_DSET1(0x1.8p52);
    FA_DV kd = FA_DFMA(z, FA_DSET1(0x1.71547652b82fep0), shifter);
    FA_DV k = FA_DSUB(kd, shifter);
    FA_DV r = FA_DFNMA(k, FA_DSET1(FA_LN2_HI), z);
    r = FA_DFNMA(k, FA_DSET1(FA_LN2_LO), r);
    FA_DV p = FA_DSET1(1.0 / 479001600.0);
    p = FA_DFMA(p, r, FA_DSET1(1.0 / 39916800.0));
    p = FA_DFMA(p, r, FA_DSET1(1.0 / 3628800.0));
    p = FA_DFMA(p, r, FA_DSET1(1.0 / 362880.0));
    p = FA_DFMA(p, r, FA_DSET1(1.0 / 40320.0));
    p = FA_DFMA(p, r, FA_DSET1(1.0 / 5040.0));
    p = FA_DFMA(p, r, FA_DSET1(1.0 / 720.0));
    p = FA_DFMA(p, r, FA_DSET1(1.0 / 120.0));
    p = FA_DFMA(p, r, FA_DSET1(1.0 / 24.0));
    p = FA_DFMA(p, r, FA_DSET1(1.0 / 6.0));
    p = FA_DFMA(p, r, FA_DSET1(0.5));
    *k_out = k;
    *kd_out = kd;
    return FA_DFMA(p, FA_DMUL(r, r), r);
}

/* tanh as in fa_expf_simd.h: with e = expm1(-2|x|) in (-1, 0], tanh|x| = -e / (2 + e),
 * e = 2^k q + (2^k - 1) (2^k - 1 exact for k >= -53; below, tanh is 1 in double), the
 * sign of x put back (tanh(-0) = -0).  Replaces fa_tanh's two polynomials (its expm1
 * evaluates both the Taylor series and exp for every element) and division. */
static inline FA_DV FA_D(tanh_v)(FA_DV x)
{
    const FA_DV sgn = FA_DSET1(-0.0);
    FA_DV z = FA_DMAX(FA_DSET1(-40.0), FA_DOR(FA_DADD(x, x), sgn));   /* -2|x|, NaN kept */
    FA_DV k, kd;
    FA_DV q = FA_D(expm1_core)(z, &k, &kd);
    FA_DV t = FA_DSCALE(FA_DSET1(1.0), k, kd);                         /* 2^k */
    FA_DV ne = FA_DFNMA(t, q, FA_DSUB(FA_DSET1(1.0), t));              /* -expm1(-2|x|) */
    FA_DV y = FA_DMUL(ne, FA_DRCP(FA_DSUB(FA_DSET1(2.0), ne)));
    return FA_DOR(FA_DANDNOT(sgn, y), FA_DAND(sgn, x));
}

/* e^-|x|, |x| clamped to 746 (the result is 0 beyond); NaN kept */
static inline FA_DV FA_D(exp_neg_abs)(FA_DV x)
{
    FA_DV z = FA_DMAX(FA_DSET1(-746.0), FA_DOR(x, FA_DSET1(-0.0)));   /* -|x| */
    FA_DV k, kd;
    FA_DV q = FA_D(expm1_core)(z, &k, &kd);        /* e^r - 1 of the reduced argument */
    return FA_DSCALE(FA_DADD(q, FA_DSET1(1.0)), k, kd);
}

/* sigma(x) */
static inline FA_DV FA_D(sigmoid_v)(FA_DV x)
{
    FA_DV t = FA_D(exp_neg_abs)(x);
    FA_DV r = FA_DRCP(FA_DADD(FA_DSET1(1.0), t));
    return FA_DSEL_NEG(x, FA_DMUL(t, r), r);
}

/* sigma(-x) = 1 / (1 + e^x): log_sigmoid'.  The float64 contract is 1e-12 relative, so
 * e^x needs a degree-10 or 9 polynomial (tools/fit_sigmoid_neg.py), not the Taylor series
 * of degree 12, and no select: 1 / (1 + e^x) is right on both sides (e^x may overflow:
 * 1 / inf = 0), where the e^-|x| form needs one.  Largest relative error measured: 6e-15
 * (AVX-512) and 2e-14 (AVX2) on [-60, 60], 5e-14 up to |x| = 709 (docs/guide/accuracy.md).
 *   AVX-512: e^x = 2^f 2^floor(y), y = x log2(e) rounded once (|x| 1.1e-16 relative in
 *   e^x), f = y - floor(y) in [0, 1) by vreducepd, 2^f by the degree-10 polynomial (4e-16),
 *   2^floor(y) by vscalefpd (no clamp: f = 0 for |y| >= 2^52 and infinities), 1 / d by
 *   vrcp14pd and one fourth-order step r (1 + e + e^2 + e^3), e = 1 - d r (2^-56); for
 *   d = inf, r = 0 and e = 1 - inf 0 is NaN, which the min turns into 1 (min returns its
 *   second operand for a NaN): exactly 0; d = 1 (x below -37.5): exactly 1.
 *   AVX2: x clamped to [-40, 710], r = x - n ln2 with one double ln2 (n = round(x log2(e));
 *   |n| 3.3e-17 relative in e^x, below 3.4e-14), e^r / 2 by the halved degree-9 polynomial
 *   (1.9e-14), 2^n added into its exponent bits (always a normal double), d = 2 (e^r / 2)
 *   2^n + 1 in one FMA (inf for x >= 710), then g / d, g divided rather than multiplied
 *   by a quotient (one operation and one rounding less; vrcp14pd is AVX-512 only).
 *   The FMA ports bound this loop, not the divider: each FMA dropped (the second ln2
 *   constant, the tenth degree) gained ~6% at 1e5. */
#if FA_DW == 8
static inline FA_DV FA_D(sigmoid_neg_v)(FA_DV x)
{
    FA_DV y = FA_DMUL(x, FA_DSET1(0x1.71547652b82fep0));
    FA_DV f = _mm512_reduce_pd(y, 0x09);                /* y - floor(y), inexact suppressed */
    FA_DV p = FA_DSET1(0x1.57abd0af446adp-27);
    p = FA_DFMA(p, f, FA_DSET1(0x1.95480f1723331p-24));
    p = FA_DFMA(p, f, FA_DSET1(0x1.65801c61dd860p-20));
    p = FA_DFMA(p, f, FA_DSET1(0x1.ff816c0810ef7p-17));
    p = FA_DFMA(p, f, FA_DSET1(0x1.430b987b1eaeap-13));
    p = FA_DFMA(p, f, FA_DSET1(0x1.5d87e288334afp-10));
    p = FA_DFMA(p, f, FA_DSET1(0x1.3b2ab7bc315adp-7));
    p = FA_DFMA(p, f, FA_DSET1(0x1.c6b08d6a405ccp-5));
    p = FA_DFMA(p, f, FA_DSET1(0x1.ebfbdff8452c3p-3));
    p = FA_DFMA(p, f, FA_DSET1(0x1.62e42fefa3773p-1));
    p = FA_DFMA(p, f, FA_DSET1(0x1.0000000000001p+0));
    FA_DV d = FA_DADD(_mm512_scalef_pd(p, y), FA_DSET1(1.0));   /* 1 + e^x */
    FA_DV r = _mm512_rcp14_pd(d);
    FA_DV e = FA_DMIN(FA_DFNMA(d, r, FA_DSET1(1.0)), FA_DSET1(1.0));
    FA_DV q = FA_DFMA(FA_DFMA(e, e, e), e, e);                  /* e + e^2 + e^3 */
    return FA_DFMA(r, q, r);
}
#else
static inline FA_DV FA_D(log_sigmoid_bwd_g)(FA_DV g, FA_DV x)
{
    const FA_DV shifter = FA_DSET1(0x1.8p52);
    FA_DV xc = FA_DMIN(FA_DSET1(710.0), FA_DMAX(FA_DSET1(-40.0), x));   /* NaN kept */
    FA_DV kd = FA_DFMA(xc, FA_DSET1(0x1.71547652b82fep0), shifter);
    FA_DV n = FA_DSUB(kd, shifter);
    FA_DV r = FA_DFNMA(n, FA_DSET1(0x1.62e42fefa39efp-1), xc);   /* ln2 (1 - 3.3e-17) */
    FA_DV p = FA_DSET1(0x1.72e1382ee1ff3p-20);                   /* e^r / 2 */
    p = FA_DFMA(p, r, FA_DSET1(0x1.a17e336dab91fp-17));
    p = FA_DFMA(p, r, FA_DSET1(0x1.a019949f940cap-14));
    p = FA_DFMA(p, r, FA_DSET1(0x1.6c162b7fd9ab1p-11));
    p = FA_DFMA(p, r, FA_DSET1(0x1.11111123c9907p-8));
    p = FA_DFMA(p, r, FA_DSET1(0x1.55555588d5163p-6));
    p = FA_DFMA(p, r, FA_DSET1(0x1.5555555550d52p-4));
    p = FA_DFMA(p, r, FA_DSET1(0x1.ffffffffe73cap-3));
    p = FA_DFMA(p, r, FA_DSET1(0x1.0000000000006p-1));
    p = FA_DFMA(p, r, FA_DSET1(0x1.000000000003dp-1));
    FA_DV u = _mm256_castsi256_pd(_mm256_add_epi64(_mm256_castpd_si256(p),
                                                   _mm256_slli_epi64(_mm256_castpd_si256(kd), 52)));
    return FA_DDIV(g, FA_DFMA(u, FA_DSET1(2.0), FA_DSET1(1.0)));   /* g / (1 + e^x) */
}
#endif

/* silu = x sigma(x); x clamped to +-1000 in the product (no inf * 0), x itself above */
static inline FA_DV FA_D(silu_v)(FA_DV x)
{
    FA_DV t = FA_D(exp_neg_abs)(x);
    FA_DV xc = FA_DMIN(FA_DSET1(1000.0), FA_DMAX(FA_DSET1(-1000.0), x));   /* NaN kept */
    FA_DV r = FA_DRCP(FA_DADD(FA_DSET1(1.0), t));
    FA_DV y = FA_DMUL(FA_DSEL_NEG(x, FA_DMUL(xc, t), xc), r);
    return FA_DSEL_NEG(FA_DSUB(FA_DSET1(1000.0), x), x, y);
}

/* silu' = s (1 + x c), s = sigma(x), c = sigma(-x) */
static inline FA_DV FA_D(silu_dx)(FA_DV x)
{
    FA_DV t = FA_D(exp_neg_abs)(x);
    FA_DV xc = FA_DMIN(FA_DSET1(1000.0), FA_DMAX(FA_DSET1(-1000.0), x));
    FA_DV r = FA_DRCP(FA_DADD(FA_DSET1(1.0), t));
    FA_DV tr = FA_DMUL(t, r);
    FA_DV s = FA_DSEL_NEG(x, tr, r);
    FA_DV c = FA_DSEL_NEG(x, r, tr);
    return FA_DMUL(s, FA_DFMA(xc, c, FA_DSET1(1.0)));
}

#define FA_D_LOOP1(NAME, CORE)                                                 \
    static void NAME(const void *xv, void *yv, ptrdiff_t n, const fa_params *pp) \
    {                                                                          \
        const double *xs = (const double *)xv;                                 \
        double *ys = (double *)yv;                                             \
        (void)pp;                                                              \
        ptrdiff_t i = 0;                                                       \
        for (; i + FA_DW <= n; i += FA_DW) {                                   \
            FA_PREFETCH(xs + i);                                               \
            FA_PREFETCH(ys + i);                                               \
            FA_DSTOREU(ys + i, CORE(FA_DLOADU(xs + i)));                       \
        }                                                                      \
        if (i < n) {                                                           \
            double buf[FA_DW] = {0};                                           \
            for (ptrdiff_t j = 0; j < n - i; j++) buf[j] = xs[i + j];          \
            FA_DSTOREU(buf, CORE(FA_DLOADU(buf)));                             \
            for (ptrdiff_t j = 0; j < n - i; j++) ys[i + j] = buf[j];          \
        }                                                                      \
    }
/* g f'(x) over two arrays: APPLY(CORE, g, x) gives the product, from a core of x alone
 * (FA_D_LOOP2: g times CORE(x)) or from a core that takes g as well (FA_D_LOOP2G) */
#define FA_D_LOOP2_(NAME, APPLY, CORE)                                         \
    static void NAME(const void *gv, const void *xv, void *ov, ptrdiff_t n,    \
                     const fa_params *pp)                                      \
    {                                                                          \
        const double *gs = (const double *)gv, *xs = (const double *)xv;       \
        double *os = (double *)ov;                                             \
        (void)pp;                                                              \
        ptrdiff_t i = 0;                                                       \
        for (; i + FA_DW <= n; i += FA_DW) {                                   \
            FA_PREFETCH(gs + i);                                               \
            FA_PREFETCH(xs + i);                                               \
            FA_PREFETCH(os + i);                                               \
            FA_DSTOREU(os + i, APPLY(CORE, FA_DLOADU(gs + i), FA_DLOADU(xs + i))); \
        }                                                                      \
        if (i < n) {                                                           \
            double bx[FA_DW] = {0}, bg[FA_DW] = {0};                           \
            for (ptrdiff_t j = 0; j < n - i; j++) { bx[j] = xs[i + j]; bg[j] = gs[i + j]; } \
            FA_DSTOREU(bx, APPLY(CORE, FA_DLOADU(bg), FA_DLOADU(bx)));         \
            for (ptrdiff_t j = 0; j < n - i; j++) os[i + j] = bx[j];           \
        }                                                                      \
    }
#define FA_D_LOOP_MUL(CORE, g, x) FA_DMUL((g), CORE(x))
#define FA_D_LOOP_G(COREG, g, x) COREG((g), (x))
#define FA_D_LOOP2(NAME, CORE) FA_D_LOOP2_(NAME, FA_D_LOOP_MUL, CORE)
#define FA_D_LOOP2G(NAME, COREG) FA_D_LOOP2_(NAME, FA_D_LOOP_G, COREG)
#if FA_DW == 8
#define FA_D_LSB(g, x) FA_DMUL((g), FA_D(sigmoid_neg_v)(x))
#else
#define FA_D_LSB(g, x) FA_D(log_sigmoid_bwd_g)((g), (x))
#endif

FA_D_LOOP1(FA_D(L_sigmoid_fwd_f64), FA_D(sigmoid_v))
FA_D_LOOP1(FA_D(L_tanh_fwd_f64), FA_D(tanh_v))
FA_D_LOOP2G(FA_D(L_log_sigmoid_bwd_f64), FA_D_LSB)
FA_D_LOOP1(FA_D(L_silu_fwd_f64), FA_D(silu_v))
FA_D_LOOP2(FA_D(L_silu_bwd_f64), FA_D(silu_dx))

static void FA_D(install_f64)(fa_impl *t)
{
    t->act[FA_ACT_sigmoid].fwd[FA_F64] = FA_D(L_sigmoid_fwd_f64);
    t->act[FA_ACT_tanh].fwd[FA_F64] = FA_D(L_tanh_fwd_f64);
    t->act[FA_ACT_log_sigmoid].bwd[FA_F64] = FA_D(L_log_sigmoid_bwd_f64);
    t->act[FA_ACT_silu].fwd[FA_F64] = FA_D(L_silu_fwd_f64);
    t->act[FA_ACT_silu].bwd[FA_F64] = FA_D(L_silu_bwd_f64);
}
