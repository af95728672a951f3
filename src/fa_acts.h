/* fa_acts.h -- scalar forward and backward of every activation, one place.
 *
 * For each activation NAME this header defines four inline functions that the
 * loops in fa_kernels_impl.h call:
 *
 *     float  fa_NAME_fwd_f(double x, fa_params p)             float32 forward
 *     double fa_NAME_fwd_d(double x, fa_params p)             float64 forward
 *     float  fa_NAME_bwd_f(double g, double s, fa_params p)   g * f'(.) float32
 *     double fa_NAME_bwd_d(double g, double s, fa_params p)   g * f'(.) float64
 *
 * s is the saved array: the forward output or input, as the activation table
 * in fastact/_registry.py says ("saves").  float32 arguments arrive widened to
 * double (exactly), so the bias-fused loops can pass z + b without rounding.
 *
 * Three kinds of bodies:
 *   - selects and short arithmetic (identity, relu, hardtanh, softsign,
 *     hardsigmoid, hardswish, the backward from the output of sigmoid, tanh,
 *     elu, selu, celu): computed in the array's own type (<= 2.3 ulp).
 *   - leaky_relu: x * slope rounded once: in float when the slope is a
 *     float32, as fma(x, hi, x lo) with slope = hi + lo on FMA builds, else
 *     in double (see below).
 *   - transcendental: fa_acts_body.h, written once over a real type R and
 *     included twice: float polynomials (_pf, fa_mathf.h) for float32 where
 *     exp's argument is exact, double polynomials (_ps, fa_math.h) for
 *     float64 and for the other float32 cases.
 *
 * Adding an activation: its math here (or in fa_acts_body.h), one line in
 * FA_ACTIVATIONS of fa_kernels.h, one row in fastact/_registry.py, and its
 * NumPy twin in fastact/reference.py.
 */
#ifndef FA_ACTS_H
#define FA_ACTS_H

#include <math.h>
#include "fa_kernels.h"
#include "fa_math.h"
#include "fa_mathf.h"

#define FA_SELU_ALPHA 1.6732632423543772848170429916717
#define FA_SELU_SCALE 1.0507009873554804934193349852946

/* ---- the transcendental bodies, twice ------------------------------------ */
#define FN(name) name##_pf
#define R float
#define C(v) ((float)(v))
#define FA_FABS fabsf
#define FA_EXP fa_expf
#define FA_EXPM1 fa_expm1f
#define FA_LOG1P01 fa_log1p01f
#define FA_TANH fa_tanhf
#define FA_ERFC_POS(t) ((float)fa_erfc_pos((double)(t)))   /* gelu stays on _ps */
#define FA_INV_ALPHA(p) ((float)(p).d)
#define FA_THRESHOLD(p) ((float)(p).d)
#define FA_SP_FAR 0
#include "fa_acts_body.h"
#undef FN
#undef R
#undef C
#undef FA_FABS
#undef FA_EXP
#undef FA_EXPM1
#undef FA_LOG1P01
#undef FA_TANH
#undef FA_ERFC_POS
#undef FA_INV_ALPHA
#undef FA_THRESHOLD
#undef FA_SP_FAR

#define FN(name) name##_ps
#define R double
#define C(v) ((double)(v))
#define FA_FABS fabs
#define FA_EXP fa_exp
#define FA_EXPM1 fa_expm1
#define FA_LOG1P01 fa_log1p01
#define FA_TANH fa_tanh
#define FA_ERFC_POS fa_erfc_pos
#define FA_INV_ALPHA(p) ((p).b)
#define FA_THRESHOLD(p) ((p).b)
#define FA_SP_FAR 1
#include "fa_acts_body.h"
#undef FN
#undef R
#undef C
#undef FA_FABS
#undef FA_EXP
#undef FA_EXPM1
#undef FA_LOG1P01
#undef FA_TANH
#undef FA_ERFC_POS
#undef FA_INV_ALPHA
#undef FA_THRESHOLD
#undef FA_SP_FAR

/* ---- helpers that stamp out the f/d pairs -------------------------------- */
#define FA_FWD_TRANS(name)                                                        \
    FA_INLINE float fa_##name##_fwd_f(double x, fa_params p)                  \
    { return (float)name##_fwd_ps(x, p); }                                        \
    FA_INLINE double fa_##name##_fwd_d(double x, fa_params p)                \
    { return name##_fwd_ps(x, p); }

/* float32 through the float polynomials (_pf): exp arguments are exact */
#define FA_FWD_FAST(name)                                                         \
    FA_INLINE float fa_##name##_fwd_f(double x, fa_params p)                  \
    { return name##_fwd_pf((float)x, p); }                                        \
    FA_INLINE double fa_##name##_fwd_d(double x, fa_params p)                \
    { return name##_fwd_ps(x, p); }
#define FA_BWD_FAST(name)                                                         \
    FA_INLINE float fa_##name##_bwd_f(double g, double x, fa_params p)        \
    { return (float)g * name##_bwd_pf((float)x, p); }                             \
    FA_INLINE double fa_##name##_bwd_d(double g, double x, fa_params p)      \
    { return g * name##_bwd_ps(x, p); }

/* backward from the input through the transcendental derivative */
#define FA_BWD_TRANS(name)                                                        \
    FA_INLINE float fa_##name##_bwd_f(double g, double x, fa_params p)        \
    { return (float)(g * name##_bwd_ps(x, p)); }                                  \
    FA_INLINE double fa_##name##_bwd_d(double g, double x, fa_params p)      \
    { return g * name##_bwd_ps(x, p); }

/* forward or backward as plain double arithmetic in the variables x / g, s, p */
#define FA_FWD_DOUBLE(name, EXPR)                                                 \
    FA_INLINE double fa_##name##_fwd_d(double x, fa_params p)                 \
    { (void)p; return (EXPR); }                                                   \
    FA_INLINE float fa_##name##_fwd_f(double x, fa_params p)                  \
    { return (float)fa_##name##_fwd_d(x, p); }
#define FA_BWD_DOUBLE(name, DERIV)                                                \
    FA_INLINE double fa_##name##_bwd_d(double g, double s, fa_params p)       \
    { (void)p; return g * (DERIV); }                                              \
    FA_INLINE float fa_##name##_bwd_f(double g, double s, fa_params p)        \
    { return (float)fa_##name##_bwd_d(g, s, p); }

/* selects computed in the array's own type T (exact) */
#define FA_FWD_NATIVE(name, EXPR)                                                 \
    FA_INLINE float fa_##name##_fwd_f(double xd, fa_params p)                 \
    { typedef float T; T x = (T)xd; (void)p; return (EXPR); }                      \
    FA_INLINE double fa_##name##_fwd_d(double xd, fa_params p)                \
    { typedef double T; T x = xd; (void)p; return (EXPR); }
#define FA_BWD_NATIVE(name, DERIV)                                                \
    FA_INLINE float fa_##name##_bwd_f(double gd, double sd, fa_params p)      \
    { typedef float T; T g = (T)gd, s = (T)sd; (void)p; (void)s; return g * (DERIV); }      \
    FA_INLINE double fa_##name##_bwd_d(double gd, double sd, fa_params p)     \
    { typedef double T; T g = gd, s = sd; (void)p; (void)s; return g * (DERIV); }

/* ---- the activations ------------------------------------------------------ *
 * Derivatives at kinks follow PyTorch: relu'(0) = 0, hardtanh'(min) = 0, ...
 * A NaN in the saved array gives a NaN derivative: (c1 ? a : (c2 ? b : s))
 * falls through to s when both comparisons fail. */

/* identity: y = x; backward from the output (ignored): g */
FA_FWD_NATIVE(identity, x)
FA_BWD_NATIVE(identity, (T)1)

/* sigmoid: 1 / (1 + e^-x); backward from the output: y (1 - y) */
FA_FWD_FAST(sigmoid)
FA_BWD_NATIVE(sigmoid, s * ((T)1 - s))

/* tanh; backward from the output: 1 - y^2 = (1 - y)(1 + y), exact for float y */
FA_FWD_FAST(tanh)
FA_BWD_NATIVE(tanh, ((T)1 - s) * ((T)1 + s))

/* relu: max(x, 0) keeping NaN; backward from the output: y > 0 */
FA_FWD_NATIVE(relu, x <= 0 ? (T)0 : x)
FA_BWD_NATIVE(relu, s > 0 ? (T)1 : (s <= 0 ? (T)0 : s))

/* leaky_relu(negative_slope = p.a): backward from the output needs p.a >= 0;
 * a zero slope gives 0 at -inf (the limit), not -inf * 0 */
FA_FWD_DOUBLE(leaky_relu_dbl, x > 0 ? x : (p.a == 0 && x == x ? 0.0 : x * p.a))
FA_BWD_DOUBLE(leaky_relu_dbl, s > 0 ? 1.0 : (s <= 0 ? p.a : s))
/* float32: p.d = 2 when the slope is a float32 (p.b): x * slope in float, rounded once,
 * the double path's bits.  p.d = 1 (with FMA): the slope as hi + lo (p.b, p.c, float32
 * of the slope's sign, from Python, for 2^-60 < |slope| < 2^60), x * slope =
 * fma(x, hi, x lo): the exact product up to 2^-48 relative, rounded once, so the double
 * path's result but for near-ties; same signs, so x = -inf gives the right inf.  Both
 * in 16-lane float vectors instead of converting to and from double.  p.d = 0: double.
 * p.d is loop-invariant: gcc unswitches the loop on it. */
#if defined(FA_HAVE_FMA)
#define FA_LEAKY_SPLIT(v) __builtin_fmaf((v), (float)p.b, (v) * (float)p.c)
#else
#define FA_LEAKY_SPLIT(v) ((float)((double)(v) * p.a))
#endif
FA_INLINE float fa_leaky_relu_fwd_f(double xd, fa_params p)
{
    float x = (float)xd;
    if (p.d == 2) return x > 0 ? x : x * (float)p.b;
    if (p.d == 1) return x > 0 ? x : FA_LEAKY_SPLIT(x);
    return fa_leaky_relu_dbl_fwd_f(xd, p);
}
FA_INLINE float fa_leaky_relu_bwd_f(double gd, double sd, fa_params p)
{
    float g = (float)gd, s = (float)sd;
    if (p.d == 2) return s > 0 ? g : (s <= 0 ? g * (float)p.b : g * s);
    if (p.d == 1) return s > 0 ? g : (s <= 0 ? FA_LEAKY_SPLIT(g) : g * s);
    return fa_leaky_relu_dbl_bwd_f(gd, sd, p);
}
#define fa_leaky_relu_fwd_d fa_leaky_relu_dbl_fwd_d
#define fa_leaky_relu_bwd_d fa_leaky_relu_dbl_bwd_d

/* elu(alpha = p.a): backward from the output: y + alpha for y <= 0 (alpha >= 0) */
FA_FWD_FAST(elu)
FA_BWD_NATIVE(elu, s > 0 ? (T)1 : (s <= 0 ? s + (T)p.a : s))

/* selu: backward from the output: scale for y > 0, y + scale*alpha otherwise */
FA_FWD_FAST(selu)
FA_BWD_NATIVE(selu, s > 0 ? (T)FA_SELU_SCALE : (s <= 0 ? s + (T)(FA_SELU_SCALE * FA_SELU_ALPHA) : s))

/* celu(alpha = p.a > 0, 1/alpha = p.b, or p.d for float): backward from the output: y/alpha + 1 */
FA_FWD_FAST(celu)
FA_BWD_NATIVE(celu, s > 0 ? (T)1 : (s <= 0 ? s * (T)(sizeof(T) == 4 ? p.d : p.b) + (T)1 : s))

/* gelu, gelu_tanh, silu, mish, softplus, log_sigmoid: from the input.
 * float32 gelu and gelu_tanh: these double bodies are the baseline build's; the AVX2
 * and AVX-512 tables replace them with the float kernels of fa_gelu_simd.h. */
FA_FWD_TRANS(gelu)
FA_BWD_TRANS(gelu)
FA_FWD_TRANS(gelu_tanh)
FA_BWD_TRANS(gelu_tanh)
FA_FWD_FAST(silu)
FA_BWD_FAST(silu)
FA_FWD_FAST(mish)
FA_BWD_FAST(mish)
/* softplus: float32 in double (_ps): z = beta x is a rounded product whose
 * error exp would amplify (relative error |z| 2^-24).  softplus_pow2, for a
 * beta that is a power of two >= 1, where z is exact: the float polynomials.
 * softplus_far, for any beta < 1 (where e^z / beta can be a normal number where
 * e^z underflows), both dtypes in double with the far tail of fa_acts_body.h; its
 * backward is softplus's.  fastact/_validate.py softplus_kernel picks the id. */
FA_FWD_TRANS(softplus)
FA_BWD_TRANS(softplus)
#define softplus_far_bwd_ps softplus_bwd_ps
FA_FWD_TRANS(softplus_far)
FA_BWD_TRANS(softplus_far)
#define softplus_pow2_fwd_pf softplus_fwd_pf
#define softplus_pow2_bwd_pf softplus_bwd_pf
#define softplus_pow2_fwd_ps softplus_fwd_ps
#define softplus_pow2_bwd_ps softplus_bwd_ps
FA_FWD_FAST(softplus_pow2)
FA_BWD_FAST(softplus_pow2)
FA_FWD_FAST(log_sigmoid)
FA_BWD_FAST(log_sigmoid)

/* softsign: x / (1 + |x|), +-inf -> +-1; backward from the input: 1 / (1 + |x|)^2 */
FA_FWD_NATIVE(softsign,
              (x < 0 ? -x : x) == (T)INFINITY ? (x > 0 ? (T)1 : (T)-1) : x / ((T)1 + (x < 0 ? -x : x)))
FA_BWD_NATIVE(softsign, (T)1 / (((T)1 + (s < 0 ? -s : s)) * ((T)1 + (s < 0 ? -s : s))))

/* hardtanh(min_val = p.a, max_val = p.b) and relu6 = hardtanh(0, 6); from the output */
FA_FWD_NATIVE(hardtanh, x < (T)p.a ? (T)p.a : (x > (T)p.b ? (T)p.b : x))
FA_BWD_NATIVE(hardtanh, (s > (T)p.a && s < (T)p.b) ? (T)1
                        : ((s <= (T)p.a || s >= (T)p.b) ? (T)0 : s))

/* hardsigmoid: clamp(x/6 + 1/2, 0, 1); backward from the input: 1/6 on (-3, 3) */
FA_FWD_NATIVE(hardsigmoid, x <= (T)-3 ? (T)0 : (x >= (T)3 ? (T)1 : (x + (T)3) * (T)(1.0 / 6.0)))
FA_BWD_NATIVE(hardsigmoid, (s > (T)-3 && s < (T)3) ? (T)(1.0 / 6.0) : ((s <= (T)-3 || s >= (T)3) ? (T)0 : s))

/* hardswish: x * hardsigmoid(x); backward from the input, PyTorch's branches (2.x, those
 * of the forward): x <= -3: 0;  -3 < x < 3: x/3 + 1/2;  x >= 3: 1 */
FA_FWD_NATIVE(hardswish, x <= (T)-3 ? (T)0 : (x >= (T)3 ? x : x * (x + (T)3) * (T)(1.0 / 6.0)))
FA_BWD_NATIVE(hardswish, s <= (T)-3 ? (T)0 : (s < (T)3 ? s * (T)(1.0 / 3.0) + (T)0.5 : (s >= (T)3 ? (T)1 : s)))

#endif /* FA_ACTS_H */
