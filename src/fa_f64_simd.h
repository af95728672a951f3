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

/* sigma(-x): log_sigmoid' */
static inline FA_DV FA_D(sigmoid_neg_v)(FA_DV x)
{
    FA_DV t = FA_D(exp_neg_abs)(x);
    FA_DV r = FA_DRCP(FA_DADD(FA_DSET1(1.0), t));
    return FA_DSEL_NEG(x, r, FA_DMUL(t, r));
}

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
#define FA_D_LOOP2(NAME, CORE)                                                 \
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
            FA_DSTOREU(os + i, FA_DMUL(FA_DLOADU(gs + i), CORE(FA_DLOADU(xs + i)))); \
        }                                                                      \
        if (i < n) {                                                           \
            double bx[FA_DW] = {0}, bg[FA_DW] = {0};                           \
            for (ptrdiff_t j = 0; j < n - i; j++) { bx[j] = xs[i + j]; bg[j] = gs[i + j]; } \
            FA_DSTOREU(bx, FA_DMUL(FA_DLOADU(bg), CORE(FA_DLOADU(bx))));       \
            for (ptrdiff_t j = 0; j < n - i; j++) os[i + j] = bx[j];           \
        }                                                                      \
    }

FA_D_LOOP1(FA_D(L_sigmoid_fwd_f64), FA_D(sigmoid_v))
FA_D_LOOP1(FA_D(L_tanh_fwd_f64), FA_D(tanh_v))
FA_D_LOOP2(FA_D(L_log_sigmoid_bwd_f64), FA_D(sigmoid_neg_v))
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
