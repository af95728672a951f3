"""Generate src/tanh_f32_coeffs.h: the table of the AVX-512 float32 tanh forward.

tanh is odd, so the kernel (src/fa_expf_simd.h, tanh_tab_v) evaluates t(a) = tanh(a) on
a = min(|x|, AMAX) and puts the sign of x back.  t comes straight from a table of
polynomials, no exp and no division: interval 0 is [0, 2^LO_OCT) (expanded about 0 with
no constant term: tanh(a) ~ a, relative error), then PER_OCT intervals per binade up to
AMAX, so that the interval number is read off the float's bits:

    n = max(0, (bits(a) >> (23 - log2(PER_OCT))) - B),  B = (127 + LO_OCT) PER_OCT - 1

(one shift and one saturating 16-bit subtraction), and each coefficient is fetched for
all 16 lanes by one permute of two registers (vpermt2ps, 32 entries).  Each polynomial
is in d = a - e_n, e_n the interval's left end (d exact by Sterbenz: a is in
[e_n, 1.25 e_n]).  Past a ~ 9.01 tanh rounds to 1 in float32: a is clamped to AMAX
inside the last interval, whose polynomial rounds to exactly 1 there.

Fit: weighted least squares on 800 Chebyshev nodes per interval in float64 (weights
1/tanh: relative error), coefficients rounded to float32 one at a time from the constant
up with the rest refitted.  The float32 Horner evaluation (one rounding per FMA) is then
checked on every float32 of every interval above 2^LO_OCT (every 97th below) against
float64 tanh, in ulp of the float32 truth, and the largest error is written to the header
(the kernel's own check, every float32:
`python tools/sweep_gelu_f32.py --funcs tanh_fwd --lo=-inf --hi=inf`).
Run from the repository root:  python tools/fit_tanh_f32.py   (needs numpy).
"""

import os

import numpy as np

# name, intervals per binade, interval 0 = [0, 2^lo_oct), entries, degree
TABLES = [
    ("fa_tanhf32", 4, -4, 32, 5),  # AVX-512: vpermt2ps, 2 x 16 entries
    # AVX2 (vpermps, 8 entries) would need ("fa_tanhf8", 1, -3, 8, 9): 0.99 ulp, but 11
    # permutes on one port per 8 floats measured slower than -e/(2 + e) there (34.6-35.0
    # against 32.8-33.6 us at 1e5, one thread), so the AVX2 path keeps tanh_v
]
AMAX = 9.5  # tanh(a) rounds to 1 in float32 from a ~ 9.0109


def horner32(coef, d32):
    """the kernel's float32 Horner evaluation (FMA: one rounding per step)"""
    p = np.full(d32.shape, np.float32(coef[-1]))
    for c in coef[-2::-1]:
        p = (p.astype(np.float64) * d32.astype(np.float64) + np.float64(c)).astype(np.float32)
    return p


def fit(lo, hi, e, deg, zero_c0, nodes=800):
    """tanh on [lo, hi] as a polynomial in d = a - e, float32 coefficients"""
    k = np.arange(nodes)
    a = (lo + hi) / 2 + (hi - lo) / 2 * np.cos(np.pi * (k + 0.5) / nodes)
    d = a - e
    y = np.tanh(a)
    w = 1 / y
    coef = np.zeros(deg + 1)
    resid = y.copy()
    for j in range(1 if zero_c0 else 0, deg + 1):
        V = d[:, None] ** np.arange(j, deg + 1)
        c, *_ = np.linalg.lstsq(V * w[:, None], resid * w, rcond=None)
        coef[j] = np.float32(c[0])
        resid = resid - coef[j] * d**j
    return coef.astype(np.float32)


def float_range(lo, hi):
    """every float32 in [lo, hi) (lo, hi > 0)"""
    b = np.arange(np.float32(lo).view(np.int32), np.float32(hi).view(np.int32), dtype=np.int32)
    return b.view(np.float32)


def ulp_err(p, a):
    t = np.tanh(a.astype(np.float64))
    return np.abs(p.astype(np.float64) - t) / np.spacing(t.astype(np.float32)).astype(np.float64)


def intervals(PER_OCT, LO_OCT, NENT):
    ents = [(0.0, 2.0**LO_OCT)]
    o = LO_OCT
    while 2.0**o < AMAX:
        for j in range(PER_OCT):
            lo, hi = 2.0**o * (1 + j / PER_OCT), 2.0**o * (1 + (j + 1) / PER_OCT)
            if lo < AMAX:
                ents.append((lo, hi))
        o += 1
    assert len(ents) <= NENT, len(ents)
    return ents


def table(NAME, PER_OCT, LO_OCT, NENT, DEG):
    ents = intervals(PER_OCT, LO_OCT, NENT)
    ends, coefs, worst, worst_at = [], [], 0.0, 0.0
    for n, (lo, hi) in enumerate(ents):
        top = min(hi, AMAX)
        e = 0.0 if n == 0 else lo
        c = fit(lo, top, e, DEG, n == 0)
        a = float_range(lo if n else 2.0**-60, np.nextafter(np.float32(top), np.float32(np.inf)))
        if n == 0:
            a = a[::97]
        d = (a.astype(np.float64) - e).astype(np.float32)
        assert np.all(d.astype(np.float64) == a.astype(np.float64) - e)  # exact
        u = ulp_err(horner32(c, d), a)
        if u.max() > worst:
            worst, worst_at = u.max(), a[u.argmax()]
        ends.append(e)
        coefs.append(c)
    last = horner32(coefs[-1], np.float32([9.0109, 9.25, AMAX]) - np.float32(ends[-1]))
    assert np.all(last == 1), last  # tanh(+-inf) == +-1 exactly
    while len(ends) < NENT:
        ends.append(0.0)
        coefs.append(np.zeros(DEG + 1, np.float32))
    coefs = np.array(coefs).T
    bias = (127 + LO_OCT) * PER_OCT - 1
    shift = 23 - int(np.log2(PER_OCT))
    up = NAME.upper()
    acc = "max %.2f ulp (a = %.9g)" % (worst, worst_at)
    head = [
        " * %s: interval 0 is [0, 2^%d), then %d intervals per binade; %d entries used of %d,"
        % (NAME, LO_OCT, PER_OCT, len(ents), NENT),
        " * degree %d; every float32 of [2^%d, AMAX] (every 97th below): %s." % (DEG, LO_OCT, acc),
    ]
    body = [
        "#define %s_SHIFT %d" % (up, shift),
        "#define %s_B %d" % (up, bias),
        "#define %s_NC %d" % (up, DEG + 1),
        "static const float %s_e[%d] __attribute__((aligned(64))) = {" % (NAME, NENT),
        "    " + ", ".join("%.9ef" % m for m in ends) + "};",
        "static const float %s_c[%d][%d] __attribute__((aligned(64))) = {" % (NAME, DEG + 1, NENT),
    ]
    for j in range(DEG + 1):
        body.append("    {" + ", ".join("%.9ef" % v for v in coefs[j]) + "},")
    body += ["};", ""]
    print("%s: %s" % (NAME, acc))
    return head, body


def main():
    head = [
        "/* tanh_f32_coeffs.h -- GENERATED by tools/fit_tanh_f32.py, do not edit.",
        " *",
        " * tanh(a), a = min(|x|, AMAX), as sum_j NAME_c[j][n] (a - NAME_e[n])^j,",
        " * n = max(0, (bits(a) >> SHIFT) - B), NAME_e[n] the interval's left end.",
    ]
    bodies = ["#define FA_TANHF_AMAX %.6ff" % AMAX, ""]
    for t in TABLES:
        h, b = table(*t)
        head += h
        bodies += b
    out = head + [" */", "#ifndef FA_TANH_F32_COEFFS_H", "#define FA_TANH_F32_COEFFS_H", ""]
    out += bodies + ["#endif"]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # (any cwd)
    with open(os.path.join(root, "src", "tanh_f32_coeffs.h"), "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    import argparse

    argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="No options: it writes into the repository's src/ where it says so.",
    ).parse_args()
    main()
