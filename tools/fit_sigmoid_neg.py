"""Print the exp polynomials of the log_sigmoid' kernels (sigma(-x) = 1 / (1 + e^x))
and of the float32 sigma core of sigmoid and silu.

The backward contract (docs/guide/accuracy.md) is 8 ulp + 2e-7 |g| in float32 and
1e-12 relative in float64, looser than the forward's, so e^x needs fewer terms than the
forward's exp (Cephes' degree-7 float polynomial, the degree-12 double Taylor series):

  f32_2f  2^f, f in [0, 1), degree 5 (AVX-512: f = y - floor(y) of y = x log2(e) by
          vreduceps, 2^floor(y) by vscalefps)
  f32_er  e^r, |r| <= ln2/2 (+ slack for the one-constant reduction r = x - n ln2),
          degree 5 (AVX2: 2^n put into the exponent bits)
  f32_er6 e^r, |r| <= ln2/2 (+ slack), degree 6 (6.1e-8): the forward's sigma core of
          sigmoid, silu and silu' (src/fa_expf_simd.h's sig_core, both SIMD paths, which
          evaluate it at w = -r with the odd coefficients negated; the forward's 4-ulp
          contract wants more than degree 5's 1.75e-7)
  f64_2f  2^f, f in [0, 1), degree 10 (AVX-512, float64; degree 9 measured no faster)
  f64_er  e^r, |r| <= ln2/2, degree 9 (AVX2, float64: 1.9e-14, 50 times inside the
          contract; one FMA less than degree 10 made the loop 12% faster there)

float32: Lawson-weighted least squares for the relative error on 2000 Chebyshev nodes,
coefficients rounded to float32 from the constant up with the rest refitted; float64:
mpmath's Chebyshev fit (near-minimax; rounding the coefficients to double adds ~1e-16).
The largest relative error of the evaluation (float32: Horner with one rounding per FMA)
is printed with each set.  Run:  python tools/fit_sigmoid_neg.py  (numpy, mpmath).
"""

import mpmath as mp
import numpy as np

mp.mp.dps = 40
LN2_HALF = 0.3467  # ln2 / 2 = 0.34657..., with slack for the reduction's rounding


def fit32(func, lo, hi, deg, n=2000, iters=60):
    k = np.arange(n)
    x = (lo + hi) / 2 + (hi - lo) / 2 * np.cos(np.pi * (k + 0.5) / n)
    y = np.array([float(func(mp.mpf(v))) for v in x])
    V = np.vander(x, deg + 1, increasing=True)
    w = np.ones(n)
    for _ in range(iters):  # Lawson: reweight towards the largest errors (minimax)
        sw = np.sqrt(w)
        c = np.linalg.lstsq(V / y[:, None] * sw[:, None], sw, rcond=None)[0]
        e = np.abs(V @ c / y - 1)
        w = w * e
        w /= w.sum()
    c32 = []
    for j in range(deg + 1):
        done = V[:, :j] @ np.array(c32) if j else 0.0
        cc = np.linalg.lstsq(V[:, j:] / y[:, None], 1 - done / y, rcond=None)[0]
        c32.append(float(np.float32(cc[0])))
    return c32


def horner32(c, x):
    p = np.full(x.shape, np.float32(c[-1]))
    for cj in c[-2::-1]:  # one rounding per FMA: the float64 product of floats is exact
        p = (p.astype(np.float64) * x.astype(np.float64) + cj).astype(np.float32)
    return p


def fit64(func, lo, hi, deg):
    c, _ = mp.chebyfit(func, [lo, hi], deg + 1, error=True)
    return [float(v) for v in c[::-1]]  # constant first


def check(c, func, lo, hi, f32):
    x = np.linspace(lo, hi, 4001)
    if f32:
        x = x.astype(np.float32)
        got = horner32(c, x).astype(np.float64)
    else:
        got = np.polyval(c[::-1], x)
    want = np.array([float(func(mp.mpf(float(v)))) for v in x])
    return float(np.abs(got / want - 1).max())


def main():
    two = lambda f: mp.power(2, f)
    sets = [
        ("f32_2f", two, 0.0, 1.0, 5, True),
        ("f32_er", mp.exp, -LN2_HALF, LN2_HALF, 5, True),
        ("f32_er6", mp.exp, -LN2_HALF, LN2_HALF, 6, True),
        ("f64_2f", two, 0.0, 1.0, 10, False),
        ("f64_er", mp.exp, -LN2_HALF, LN2_HALF, 9, False),
    ]
    for name, func, lo, hi, deg, f32 in sets:
        c = fit32(func, lo, hi, deg) if f32 else fit64(func, lo, hi, deg)
        err = check(c, func, lo, hi, f32)
        print(f"{name}: degree {deg} on [{lo}, {hi}], max relative error {err:.3g}")
        for j, v in enumerate(c):
            print(f"    c{j} = {v.hex()}  /* {v!r} */")


if __name__ == "__main__":
    import argparse

    argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="No options: run from the repository root (it writes into src/ where it says so).",
    ).parse_args()
    main()
