/* fa_acts_body.h -- the math of every transcendental activation, written once.
 *
 * Included twice by fa_acts.h: once with the polynomial primitives of
 * fa_math.h (suffix _ps, used by the float32 kernels, evaluated in double and
 * rounded once) and once with the C library (suffix _lm, used by the float64
 * kernels).  No include guard on purpose.
 *
 * Conventions: FN(name) is the suffixed name; x is the activation input, g
 * the incoming gradient, y the saved output.  Backward functions return the
 * derivative f'(.) only; the loops multiply by g, so NaN in g or in the saved
 * array propagates exactly as in g * f'(saved).
 *
 * Limits: where f(x) -> x as x -> +inf and f(x) -> 0 as x -> -inf, x is
 * clamped (to +-40 or +-1000, beyond which the double result no longer changes)
 * before the arithmetic, so that inf * 0 never makes a NaN out of +-inf.
 */

/* sigma(x) and 1 - sigma(x) = sigma(-x), both without cancellation. */
static inline void FN(sig_pair)(double x, double *s, double *c)
{
    double t = FA_EXP(-fabs(x));
    double inv = 1.0 / (1.0 + t);
    *s = x >= 0 ? inv : t * inv;
    *c = x >= 0 ? t * inv : inv;
}

static inline double FN(sigmoid_fwd)(double x, fa_params p)
{
    (void)p;
    double s, c;
    FN(sig_pair)(x, &s, &c);
    return s;
}

static inline double FN(tanh_fwd)(double x, fa_params p)
{
    (void)p;
    return FA_TANH(x);
}

/* elu: x > 0 ? x : alpha * (exp(x) - 1); expm1 keeps small negative x exact. */
static inline double FN(elu_fwd)(double x, fa_params p)
{
    return x > 0 ? x : p.a * FA_EXPM1(x);
}

/* selu = scale * elu(x, alpha) with the constants of Klambauer et al. */
static inline double FN(selu_fwd)(double x, fa_params p)
{
    (void)p;
    return FA_SELU_SCALE * (x > 0 ? x : FA_SELU_ALPHA * FA_EXPM1(x));
}

/* celu: x > 0 ? x : alpha * (exp(x / alpha) - 1); p.b = 1 / alpha. */
static inline double FN(celu_fwd)(double x, fa_params p)
{
    return x > 0 ? x : p.a * FA_EXPM1(x * p.b);
}

/* gelu (exact): x * Phi(x), Phi(x) = erfc(-x / sqrt 2) / 2.  On the negative
 * side Phi = erfc(|x|/sqrt2)/2 directly (1 + erf(x/sqrt2) would cancel);
 * on the positive side 1 - erfc(x/sqrt2)/2 has no cancellation.
 * |x| > 40: Phi is 0 or 1 to double precision. */
static inline double FN(gelu_phi)(double xc)
{
    double h = 0.5 * FA_ERFC_POS(fabs(xc) * 0.70710678118654752440);
    return xc < 0 ? h : 1.0 - h;
}
static inline double FN(gelu_fwd)(double x, fa_params p)
{
    (void)p;
    double xc = fa_clamp(x, -40.0, 40.0);
    return x > 40.0 ? x : xc * FN(gelu_phi)(xc);
}
/* gelu'(x) = Phi(x) + x phi(x), phi(x) = exp(-x^2/2) / sqrt(2 pi). */
static inline double FN(gelu_bwd)(double x, fa_params p)
{
    (void)p;
    double xc = fa_clamp(x, -40.0, 40.0);
    return FN(gelu_phi)(xc) + xc * FA_EXP(-0.5 * xc * xc) * 0.39894228040143267794;
}

/* gelu (tanh approximation): 0.5 x (1 + tanh(u)), u = sqrt(2/pi)(x + 0.044715 x^3).
 * 0.5 (1 + tanh(u)) = sigma(2u), which does not cancel for negative x. */
#define FA_GT_K0 0.79788456080286535588   /* sqrt(2/pi) */
#define FA_GT_K1 0.044715
static inline double FN(gelu_tanh_fwd)(double x, fa_params p)
{
    (void)p;
    double xc = fa_clamp(x, -40.0, 40.0);
    double u = FA_GT_K0 * (xc + FA_GT_K1 * xc * xc * xc);
    double s, c;
    FN(sig_pair)(2.0 * u, &s, &c);
    return x > 40.0 ? x : xc * s;
}
/* d/dx [x sigma(2u)] = sigma(2u) + x sigma(2u) sigma(-2u) 2 u'(x). */
static inline double FN(gelu_tanh_bwd)(double x, fa_params p)
{
    (void)p;
    double xc = fa_clamp(x, -40.0, 40.0);
    double x2 = xc * xc;
    double u = FA_GT_K0 * (xc + FA_GT_K1 * x2 * xc);
    double du = FA_GT_K0 * (1.0 + 3.0 * FA_GT_K1 * x2);
    double s, c;
    FN(sig_pair)(2.0 * u, &s, &c);
    return s + xc * s * c * 2.0 * du;
}

/* silu: x sigma(x); silu' = sigma(x) (1 + x (1 - sigma(x))). */
static inline double FN(silu_fwd)(double x, fa_params p)
{
    (void)p;
    double xc = fa_clamp(x, -1000.0, 1000.0);
    double s, c;
    FN(sig_pair)(xc, &s, &c);
    return x > 1000.0 ? x : xc * s;
}
static inline double FN(silu_bwd)(double x, fa_params p)
{
    (void)p;
    double xc = fa_clamp(x, -1000.0, 1000.0);
    double s, c;
    FN(sig_pair)(xc, &s, &c);
    return s * (1.0 + xc * c);
}

/* mish: x tanh(softplus(x)).  With n = e^x and w = n (n + 2),
 * tanh(log(1 + n)) = w / (w + 2) exactly: no log, no tanh, no cancellation.
 * For x > 40, w / (w + 2) == 1 in double. */
static inline double FN(mish_fwd)(double x, fa_params p)
{
    (void)p;
    double xc = fa_clamp(x, -1000.0, 40.0);
    double n = FA_EXP(xc);
    double w = n * (n + 2.0);
    return x > 40.0 ? x : xc * (w / (w + 2.0));
}
/* mish' = t + x sigma(x) (1 - t^2), t = w / (w + 2), 1 - t = 2 / (w + 2). */
static inline double FN(mish_bwd)(double x, fa_params p)
{
    (void)p;
    double xc = fa_clamp(x, -1000.0, 40.0);
    double n = FA_EXP(xc);
    double w = n * (n + 2.0);
    double inv = 1.0 / (w + 2.0);
    double t = w * inv;
    double sg = n / (1.0 + n);
    return t + xc * sg * (2.0 * inv) * (1.0 + t);
}

/* softplus: x*beta > threshold ? x : log(1 + exp(beta x)) / beta, with
 * log(1 + e^z) = max(z, 0) + log1p(e^-|z|) (no overflow).  p.a = beta,
 * p.b = threshold, p.c = 1 / beta.  (z <= 0 ? 0 : z) keeps NaN. */
static inline double FN(softplus_fwd)(double x, fa_params p)
{
    double z = x * p.a;
    double sp = (z <= 0 ? 0.0 : z) + FA_LOG1P01(FA_EXP(-fabs(z)));
    return z > p.b ? x : sp * p.c;
}
static inline double FN(softplus_bwd)(double x, fa_params p)
{
    double z = x * p.a;
    double s, c;
    FN(sig_pair)(z, &s, &c);
    return z > p.b ? 1.0 : s;
}

/* log_sigmoid: -softplus(-x) = min(x, 0) - log1p(e^-|x|); derivative sigma(-x). */
static inline double FN(log_sigmoid_fwd)(double x, fa_params p)
{
    (void)p;
    return (x >= 0 ? 0.0 : x) - FA_LOG1P01(FA_EXP(-fabs(x)));
}
static inline double FN(log_sigmoid_bwd)(double x, fa_params p)
{
    (void)p;
    double s, c;
    FN(sig_pair)(x, &s, &c);
    return c;
}
