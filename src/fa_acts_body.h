/* fa_acts_body.h -- the math of every transcendental activation, written once.
 *
 * Included three times by fa_acts.h, each time with its own real type R,
 * constant wrapper C(v) = (R)(v) and primitives:
 *   _pf  float, the float polynomials of fa_mathf.h  (float32 fast path)
 *   _ps  R, the R polynomials of fa_math.h (float32 where an
 *        exp argument is itself rounded, e.g. softplus with beta != 1)
 * No include guard on purpose.
 *
 * Conventions: FN(name) is the suffixed name; x is the activation input, g
 * the incoming gradient, y the saved output.  Backward functions return the
 * derivative f'(.) only; the loops multiply by g, so NaN in g or in the saved
 * array propagates exactly as in g * f'(saved).
 *
 * Limits: where f(x) -> x as x -> +inf and f(x) -> 0 as x -> -inf, x is
 * clamped (to +-40 or +-1000, beyond which the R result no longer changes)
 * before the arithmetic, so that inf * 0 never makes a NaN out of +-inf.
 */

FA_INLINE R FN(clamp)(R x, R lo, R hi)
{
    x = x < lo ? lo : x;   /* NaN fails both comparisons and stays NaN */
    return x > hi ? hi : x;
}

/* sigma(x) and 1 - sigma(x) = sigma(-x), both without cancellation:
 * with t = e^-|x|, sigma(|x|) = 1 / (1 + t) and sigma(-|x|) = t / (1 + t),
 * each one division (one rounding) after exp. */
FA_INLINE void FN(sig_pair)(R x, R *s, R *c)
{
    R t = FA_EXP(-FA_FABS(x));
    R d = C(1.0) + t;
    *s = (x >= 0 ? C(1.0) : t) / d;
    *c = (x >= 0 ? t : C(1.0)) / d;
}

FA_INLINE R FN(sigmoid_fwd)(R x, fa_params p)
{
    (void)p;
    R s, c;
    FN(sig_pair)(x, &s, &c);
    return s;
}

FA_INLINE R FN(tanh_fwd)(R x, fa_params p)
{
    (void)p;
    return FA_TANH(x);
}

/* elu: x > 0 ? x : alpha * (exp(x) - 1); expm1 keeps small negative x exact. */
FA_INLINE R FN(elu_fwd)(R x, fa_params p)
{
    return x > 0 ? x : (R)p.a * FA_EXPM1(x);
}

/* selu = scale * elu(x, alpha) with the constants of Klambauer et al. */
FA_INLINE R FN(selu_fwd)(R x, fa_params p)
{
    (void)p;
    return FA_SELU_SCALE * (x > 0 ? x : FA_SELU_ALPHA * FA_EXPM1(x));
}

/* celu: x > 0 ? x : alpha * (exp(x / alpha) - 1); FA_INV_ALPHA(p) = 1 / alpha
 * (p.b as double, p.d as float; alpha in [2^-126, 2^126] keeps both normal).
 * When |t| = |x / alpha| is below half an ulp's weight (2^-25 in float, 2^-54 in
 * double), alpha expm1(t) = x (1 + t/2 + ...) rounds to x: x itself, since t may be
 * subnormal there (x near 0 with a large alpha) and alpha * expm1(t) would carry t's
 * lost digits (4.6% off at alpha = 2^126). */
FA_INLINE R FN(celu_fwd)(R x, fa_params p)
{
    R t = x * FA_INV_ALPHA(p);
    R tiny = sizeof(R) == 4 ? (R)0x1p-25 : (R)0x1p-54;
    return x > 0 ? x : (FA_FABS(t) < tiny ? x : (R)p.a * FA_EXPM1(t));
}

/* gelu (exact): x * Phi(x), Phi(x) = erfc(-x / sqrt 2) / 2.  On the negative
 * side Phi = erfc(|x|/sqrt2)/2 directly (1 + erf(x/sqrt2) would cancel);
 * on the positive side 1 - erfc(x/sqrt2)/2 has no cancellation.
 * |x| > 40: Phi is 0 or 1 to R precision. */
FA_INLINE R FN(gelu_phi)(R xc)
{
    R h = C(0.5) * FA_ERFC_POS(FA_FABS(xc) * C(0.70710678118654752440));
    return xc < 0 ? h : C(1.0) - h;
}
FA_INLINE R FN(gelu_fwd)(R x, fa_params p)
{
    (void)p;
    R xc = FN(clamp)(x, -C(40.0), C(40.0));
    return x > C(40.0) ? x : xc * FN(gelu_phi)(xc);
}
/* gelu'(x) = Phi(x) + x phi(x), phi(x) = exp(-x^2/2) / sqrt(2 pi). */
FA_INLINE R FN(gelu_bwd)(R x, fa_params p)
{
    (void)p;
    R xc = FN(clamp)(x, -C(40.0), C(40.0));
    return FN(gelu_phi)(xc) + xc * FA_EXP(-C(0.5) * xc * xc) * C(0.39894228040143267794);
}

/* gelu (tanh approximation): 0.5 x (1 + tanh(u)), u = sqrt(2/pi)(x + 0.044715 x^3).
 * 0.5 (1 + tanh(u)) = sigma(2u), which does not cancel for negative x. */
#define FA_GT_K0 C(0.79788456080286535588)   /* sqrt(2/pi) */
#define FA_GT_K1 C(0.044715)
FA_INLINE R FN(gelu_tanh_fwd)(R x, fa_params p)
{
    (void)p;
    R xc = FN(clamp)(x, -C(40.0), C(40.0));
    R u = FA_GT_K0 * (xc + FA_GT_K1 * xc * xc * xc);
    R s, c;
    FN(sig_pair)(C(2.0) * u, &s, &c);
    return x > C(40.0) ? x : xc * s;
}
/* d/dx [x sigma(2u)] = sigma(2u) + x sigma(2u) sigma(-2u) 2 u'(x). */
FA_INLINE R FN(gelu_tanh_bwd)(R x, fa_params p)
{
    (void)p;
    R xc = FN(clamp)(x, -C(40.0), C(40.0));
    R x2 = xc * xc;
    R u = FA_GT_K0 * (xc + FA_GT_K1 * x2 * xc);
    R du = FA_GT_K0 * (C(1.0) + C(3.0) * FA_GT_K1 * x2);
    R s, c;
    FN(sig_pair)(C(2.0) * u, &s, &c);
    return s + xc * s * c * C(2.0) * du;
}

/* silu: x sigma(x); silu' = sigma(x) (1 + x (1 - sigma(x))). */
FA_INLINE R FN(silu_fwd)(R x, fa_params p)
{
    (void)p;
    R xc = FN(clamp)(x, -C(1000.0), C(1000.0));
    R t = FA_EXP(-FA_FABS(xc));
    R y = (xc * (xc >= 0 ? C(1.0) : t)) / (C(1.0) + t);    /* x sigma(x), 3 roundings */
    return x > C(1000.0) ? x : y;
}
/* one division for both sigma(x) and sigma(-x): r = 1 / (1 + t), the other is t r
 * (a rounding more than sig_pair's two quotients, two divisions fewer per vector) */
FA_INLINE R FN(silu_bwd)(R x, fa_params p)
{
    (void)p;
    R xc = FN(clamp)(x, -C(1000.0), C(1000.0));
    R t = FA_EXP(-FA_FABS(xc));
    R r = C(1.0) / (C(1.0) + t);
    R tr = t * r;
    R s = xc >= 0 ? r : tr;
    R c = xc >= 0 ? tr : r;
    return s * (C(1.0) + xc * c);
}

/* mish: x tanh(softplus(x)).  With n = e^x and w = n (n + 2),
 * tanh(log(1 + n)) = w / (w + 2) exactly: no log, no tanh, no cancellation.
 * For x > 40, w / (w + 2) == 1 in R. */
FA_INLINE R FN(mish_fwd)(R x, fa_params p)
{
    (void)p;
    R xc = FN(clamp)(x, -C(1000.0), C(40.0));
    R n = FA_EXP(xc);
    R w = n * n + C(2.0) * n;             /* one rounding where FMA contracts it */
    return x > C(40.0) ? x : (xc * w) / (w + C(2.0));
}
/* mish' = t + x sigma(x) (1 - t^2), t = w / (w + 2), 1 - t = 2 / (w + 2). */
FA_INLINE R FN(mish_bwd)(R x, fa_params p)
{
    (void)p;
    R xc = FN(clamp)(x, -C(1000.0), C(40.0));
    R n = FA_EXP(xc);
    R w = n * n + C(2.0) * n;
    R inv = C(1.0) / (w + C(2.0));
    R t = w * inv;
    R sg = n / (C(1.0) + n);
    return t + xc * sg * (C(2.0) * inv) * (C(1.0) + t);
}

/* softplus: x*beta > threshold ? x : log(1 + exp(beta x)) / beta, with
 * log(1 + e^z) = max(z, 0) + log1p(e^-|z|) (no overflow).  p.a = beta,
 * p.c = 1 / beta; FA_THRESHOLD(p): p.b, or for float z the threshold rounded
 * down to float (p.d), so that z > threshold is decided exactly.
 * (z <= 0 ? 0 : z) keeps NaN.  For beta >= 1 (softplus, softplus_pow2),
 * e^z / beta <= e^z is subnormal wherever e^z is: nothing the contract keeps is lost. */
FA_INLINE R FN(softplus_fwd)(R x, fa_params p)
{
    R z = x * (R)p.a;
    R sp = (z <= 0 ? C(0.0) : z) + FA_LOG1P01(FA_EXP(-FA_FABS(z)));
    return z > FA_THRESHOLD(p) ? x : sp * (R)p.c;
}
#if FA_SP_FAR
/* softplus_far, beta < 1 (the double body only; float32 runs it in double): below
 * z = -708 e^z is subnormal, below -745 0, while e^z / beta is a normal number for a
 * small beta (2^-1000: down to z = -1400).  For z < -700 the result is
 * e^(z + 700) ((1/beta) e^-700) instead: z + 700 is exact (Sterbenz) down to z = -1400,
 * and (1/beta) e^-700 <= 4.4e3 is loop-invariant.  One exp either way: its argument is
 * selected.  Its own kernel id (fastact/_validate.py softplus_kernel): the select and
 * the exp argument that is no longer known to be <= 0 cost 15-20% per element, which
 * beta >= 1 does not need. */
#define FA_SP_SHIFT 700.0
#define FA_SP_E_SHIFT 0x1.14f2b0fb9307fp-1010   /* e^-700, correctly rounded */
FA_INLINE R FN(softplus_far_fwd)(R x, fa_params p)
{
    R z = x * (R)p.a;
    int far = z < -C(FA_SP_SHIFT);
    R e = FA_EXP(far ? z + C(FA_SP_SHIFT) : -FA_FABS(z));
    R sp = (z <= 0 ? C(0.0) : z) + FA_LOG1P01(e);
    R y = far ? e * ((R)p.c * C(FA_SP_E_SHIFT)) : sp * (R)p.c;
    return z > FA_THRESHOLD(p) ? x : y;
}
#undef FA_SP_SHIFT
#undef FA_SP_E_SHIFT
#endif
FA_INLINE R FN(softplus_bwd)(R x, fa_params p)
{
    R z = x * (R)p.a;
    R s, c;
    FN(sig_pair)(z, &s, &c);
    return z > FA_THRESHOLD(p) ? C(1.0) : s;
}

/* log_sigmoid: -softplus(-x) = min(x, 0) - log1p(e^-|x|); derivative sigma(-x). */
FA_INLINE R FN(log_sigmoid_fwd)(R x, fa_params p)
{
    (void)p;
    return (x >= 0 ? C(0.0) : x) - FA_LOG1P01(FA_EXP(-FA_FABS(x)));
}
FA_INLINE R FN(log_sigmoid_bwd)(R x, fa_params p)
{
    (void)p;
    R s, c;
    FN(sig_pair)(x, &s, &c);
    return c;
}
