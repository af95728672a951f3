"""Generate src/gelu_f32_coeffs.h: the tables of the float32 exact-GELU kernels.

With a = |x|, Q(a) = Phi(-a) the Gaussian upper tail and phi the Gaussian density,

    gelu(x)  = max(x, 0) - f(a),            f(a) = a Q(a)
    gelu'(x) = v(a) (x < 0), 1 - v(a) (x >= 0),   v(a) = Q(a) - a phi(a)

and the kernels (src/fa_gelu_simd.h) evaluate f and v straight from a table of
polynomials: one per interval of width W = 1/SCALE, interval n = round(a SCALE) (read
off the low bits of the float a SCALE + 1.5 2^23, so that one permute fetches each
coefficient for every lane), no exp.  Each polynomial is in d = a - e_n with e_n the
interval's right end (e_0 = 0: interval 0 keeps a exact near 0, and f(0) = 0 exactly):
f and v decay like exp(-a^2/2), so towards the right end every term of the Horner sum
has the same sign (no cancellation; expanded about the centre, the float evaluation lost
up to 3.4 ulp at a ~ 5), and d is exact (Sterbenz).

The accuracy contract (docs/guide/accuracy.md) asks 4 ulp of gelu where |gelu| >= 1e-6
(a <= 5.1 on the negative side) and 1e-7 absolute below, and 8 ulp + 2e-7 |g| of gelu'.
So past ZERO_FROM (f < 6e-8, |v| < 2e-8) the intervals are all-zero polynomials and |x|
is clamped into the first of them: gelu(x) = 0 for x below ~ -5.6, gelu'(x) = 0 below
~ -6.1 (and x, 1 above), within the contract's absolute terms.

Fit: weighted least squares on 800 Chebyshev nodes per interval, in float64 (weights
1/f: relative error; for v, 1/(|v| + 2e-8): relative, and absolute across its zero at
a ~ 0.75), coefficients rounded to float32 one at a time from the constant up with the
rest refitted.  The float32 Horner evaluation (one rounding per FMA) is checked on 20001
points per interval and its largest error written to the header.
  fa_gelufv32:             W = 1/4, 32 entries (vpermt2ps: 2 x 16), AVX-512: ONE table
                           for f and v = f': p fits f and its derivative p' fits v at
                           the same time (the rows of both in one least-squares system,
                           f's relative to 1e-7 of f, v's absolute to 1e-7), so that a
                           dense layer's forward gets gelu and gelu' from one set of
                           lookups (q = p' by the Horner recursion q = q d + p), and the
                           backward evaluates the same q.
  fa_geluf8 / fa_gelub8:   W = 1,    8 entries (vpermps ymm), AVX2
Run from the repository root:  python tools/fit_gelu_f32.py   (needs numpy, scipy).
"""

import os

import numpy as np
from scipy.special import ndtr

# name, function, SCALE (1 / interval width), entries, degree, ZERO_FROM
TABLES = [
    ("fa_gelufv32", "fv", 4, 32, 6, 6.125),
    ("fa_geluf8", "f", 1, 8, 10, 6.5),
    ("fa_gelub8", "v", 1, 8, 9, 6.5),
]


def f_fwd(a):
    """f(a) = a Q(a) = a Phi(-a), float64"""
    return a * ndtr(-a)


def v_bwd(a):
    """v(a) = Q(a) - a phi(a) = gelu'(-a), float64"""
    return ndtr(-a) - a * np.exp(-0.5 * a * a) / np.sqrt(2 * np.pi)


FUNCS = {"f": (f_fwd, 0.0), "v": (v_bwd, 2e-8)}  # function, floor of the weights' 1/(|.| + floor)
# the joint table's weights: f's rows to 1e-7 relative where a <= 5.125 (1e-8 absolute
# beyond), v's rows to 1e-7 absolute
FV_TOL_F, FV_TOL_V = 1e-7, 1e-7


def horner32(coef, d32):
    """the kernel's float32 Horner evaluation (FMA: one rounding per step)"""
    p = np.full(d32.shape, np.float32(coef[-1]))
    for c in coef[-2::-1]:
        p = (p.astype(np.float64) * d32.astype(np.float64) + np.float64(c)).astype(np.float32)
    return p


def horner_pq32(coef, d32):
    """the kernel's float32 evaluation of p and q = p' (fa_gelu_simd.h, gelu_pq: q = q d + p
    before p = p d + c at each step; FMA: one rounding per step)"""
    p = np.full(d32.shape, np.float32(coef[-1]))
    q = np.zeros(d32.shape, np.float32)
    d = d32.astype(np.float64)
    for c in coef[-2::-1]:
        q = (q.astype(np.float64) * d + p.astype(np.float64)).astype(np.float32)
        p = (p.astype(np.float64) * d + np.float64(c)).astype(np.float32)
    return p, q


def fit(fn, floor, lo, hi, e, deg, nodes=800):
    """fn on [lo, hi] as a polynomial in d = a - e, float32 coefficients (f: no constant
    term in interval 0, where e = 0 and f(0) = 0)"""
    k = np.arange(nodes)
    a = (lo + hi) / 2 + (hi - lo) / 2 * np.cos(np.pi * (k + 0.5) / nodes)
    d = a - e
    y = fn(a)
    w = 1 / (np.abs(y) + floor)
    coef = np.zeros(deg + 1)
    resid = y.copy()
    for j in range(1 if (e == 0.0 and fn is f_fwd) else 0, deg + 1):
        V = d[:, None] ** np.arange(j, deg + 1)
        c, *_ = np.linalg.lstsq(V * w[:, None], resid * w, rcond=None)
        coef[j] = np.float32(c[0])
        resid = resid - coef[j] * d**j
    return coef.astype(np.float32)


def fit_fv(lo, hi, e, deg, nodes=800):
    """f and v = f' on [lo, hi] by one polynomial p in d = a - e (p fits f, p' fits v:
    both sets of rows in one weighted least-squares system), float32 coefficients (no
    constant term in interval 0: f(0) = 0)"""
    k = np.arange(nodes)
    a = (lo + hi) / 2 + (hi - lo) / 2 * np.cos(np.pi * (k + 0.5) / nodes)
    d = a - e
    rf, rv = f_fwd(a), v_bwd(a)
    wf = np.where(a <= 5.125, 1 / (np.abs(rf) * FV_TOL_F + 1e-300), 1 / 1e-8)
    wv = np.full_like(a, 1 / FV_TOL_V)
    coef = np.zeros(deg + 1)
    for j in range(1 if e == 0.0 else 0, deg + 1):
        js = np.arange(j, deg + 1)
        A = np.vstack(
            [d[:, None] ** js * wf[:, None], js * d[:, None] ** np.maximum(js - 1, 0) * wv[:, None]]
        )
        c, *_ = np.linalg.lstsq(A, np.concatenate([rf * wf, rv * wv]), rcond=None)
        coef[j] = np.float32(c[0])
        rf = rf - coef[j] * d**j
        if j > 0:
            rv = rv - j * coef[j] * d ** (j - 1)
    return coef.astype(np.float32)


def _check_f(a, a64, p):
    t = f_fwd(a64)
    err = np.abs(p - t)
    ulp = err / np.spacing(t.astype(np.float32))
    near = a <= 5.125
    return ulp[near].max(initial=0.0), err[~near].max(initial=0.0)


def _check_v(a64, q):
    t = v_bwd(a64)
    worst = 0.0
    for got, want in ((q.astype(np.float64), t), ((1 - q).astype(np.float64), 1 - t)):
        tol = 8 * np.spacing(np.abs(want).astype(np.float32)).astype(np.float64) + 2e-7
        worst = max(worst, (np.abs(got - want) / tol).max())
    return worst


def check(which, lo, hi, e, coef, n=20001):
    """the float32 evaluation's largest error on [lo, hi]: f: in ulp of the float32 truth
    where a <= 5.125 (|gelu| >= 1e-6 up to ~5.1) and absolute beyond; v: as a fraction
    of the backward contract's tolerance 8 ulp + 2e-7 (g = 1), of v (x < 0) and of 1 - v
    (x > 0, rounded as the kernel rounds it); fv: both, (f ulp, f absolute, v)"""
    a = np.unique(np.linspace(lo, hi, n).astype(np.float32))
    a = a[a > 0]
    d = (a.astype(np.float64) - e).astype(np.float32)  # exact (Sterbenz)
    a64 = a.astype(np.float64)
    if which == "fv":
        p, q = horner_pq32(coef, d)
        return (*_check_f(a, a64, p), _check_v(a64, q))
    p = horner32(coef, d)
    if which == "f":
        return _check_f(a, a64, p)
    return _check_v(a64, p), 0.0


def table(name, which, scale, nent, deg, zero_from):
    w = 1.0 / scale
    ends, coefs = [], []
    worst = worst_abs = worst_v = 0.0
    amax = None
    for n in range(nent):
        lo, hi = max(0.0, (n - 0.5) * w), (n + 0.5) * w
        if lo >= zero_from:
            amax = n * w if amax is None else amax
            ends.append(0.0)
            coefs.append(np.zeros(deg + 1, np.float32))
            continue
        e = 0.0 if n == 0 else hi
        if which == "fv":
            c = fit_fv(lo, hi, e, deg)
            u, ab, vv = check(which, lo, hi, e, c)
            worst_v = max(worst_v, vv)
        else:
            c = fit(*FUNCS[which], lo, hi, e, deg)
            u, ab = check(which, lo, hi, e, c)
        worst, worst_abs = max(worst, u), max(worst_abs, ab)
        ends.append(e)
        coefs.append(c)
    beyond = max(abs(FUNCS[k][0](zero_from)) for k in which)
    assert amax is not None and beyond < (6e-8 if which == "f" else 2e-8)
    coefs = np.array(coefs).T
    up = name.upper()
    if which == "f":
        acc = "max %.2f ulp of f where a <= 5.125, %.1e absolute beyond" % (worst, worst_abs)
    elif which == "v":
        acc = "max error %.3f of the backward contract's tolerance (g = 1)" % worst
    else:
        acc = (
            "max %.2f ulp of f where a <= 5.125, %.1e absolute beyond;\n * q = p' (v): max "
            "error %.3f of the backward contract's tolerance (g = 1)" % (worst, worst_abs, worst_v)
        )
    out = [
        " * %s: %s, interval n = round(a * %g), %d entries, degree %d; zero above"
        % (name, which, scale, nent, deg),
        " * a = %g (|%s| < %.1e there), a clamped to %g; float32 Horner evaluation:"
        % (zero_from, which, beyond, amax),
        " * " + acc + ".",
    ]
    body = [
        "#define %s_SCALE %.1ff" % (up, scale),
        "#define %s_AMAX %.6ff" % (up, amax),
        "#define %s_NC %d" % (up, deg + 1),
        "static const float %s_e[%d] __attribute__((aligned(64))) = {" % (name, nent),
        "    " + ", ".join("%.9ef" % m for m in ends) + "};",
        "static const float %s_c[%d][%d] __attribute__((aligned(64))) = {" % (name, deg + 1, nent),
    ]
    for j in range(deg + 1):
        body.append("    {" + ", ".join("%.9ef" % v for v in coefs[j]) + "},")
    body.append("};")
    print("%s: %s" % (name, acc))
    return out, body


def main():
    head = [
        "/* gelu_f32_coeffs.h -- GENERATED by tools/fit_gelu_f32.py, do not edit.",
        " *",
        " * f(a) = a Phi(-a) (gelu(x) = max(x, 0) - f(|x|)) and v(a) = Phi(-a) - a phi(a)",
        " * (gelu'(x) = v(|x|) for x < 0, 1 - v(|x|) for x >= 0), a = |x|, as",
        " * sum_j NAME_c[j][n] (a - NAME_e[n])^j, n = round(a * SCALE), the low bits of the",
        " * float a * SCALE + 1.5 2^23 (float32 coefficients; NAME_e[n] the interval's right end).",
    ]
    bodies = []
    for name, which, scale, nent, deg, zf in TABLES:
        h, b = table(name, which, scale, nent, deg, zf)
        head += h
        bodies += b + [""]
    out = (
        head
        + [" */", "#ifndef FA_GELU_F32_COEFFS_H", "#define FA_GELU_F32_COEFFS_H", ""]
        + bodies
        + ["#endif"]
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # (any cwd)
    with open(os.path.join(root, "src", "gelu_f32_coeffs.h"), "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    import argparse

    argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="No options: it writes into the repository's src/ where it says so.",
    ).parse_args()
    main()
