# The elementwise work of the network ops that are not activation kernels:
# batch normalisation, dropout, learnable PReLU and the residual add.  Included
# by src/_nn.pyx (the engine and the standalone batchnorm_* / dropout_* entry
# points share these loops, so each piece of math exists once).
#
# Loops run over one row (or a block of contiguous rows) at a time: 1-D
# contiguous loops vectorise, 2-D memoryview loops do not (DESIGN.md section 7).
# Per-column statistics and parameter gradients accumulate in double.

from libc.stdint cimport uint64_t

# rows per block of the fused passes: the block stays in L1/L2 between the
# activation kernel and the loop around it
cdef Py_ssize_t BLOCK_ELEMS = 8192


# ---- dropout: a counter-based mask --------------------------------------------------
# SplitMix64 (Steele, Lea & Flood 2014; the finaliser of java.util.SplittableRandom):
# element i of a layer keeps its value when the top 53 bits of mix(key + (i + 1) G)
# are >= round(p 2^53), so P(keep) = 1 - p to 2^-53.  key mixes (seed, step, layer);
# the mask is a pure function of (seed, step, layer, i): the same for any thread
# count, never stored, and reproduced bit for bit by fastact.reference.dropout_mask.

cdef uint64_t GOLDEN = 0x9E3779B97F4A7C15ULL


cdef inline uint64_t mix64(uint64_t z) noexcept nogil:
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL
    return z ^ (z >> 31)


cdef inline uint64_t dropout_key(uint64_t seed, uint64_t step, uint64_t layer) noexcept nogil:
    return mix64(mix64(mix64(seed + GOLDEN) + step + GOLDEN) + layer + GOLDEN)


cdef void _dropout(const real *x, real *y, Py_ssize_t n, Py_ssize_t i0, uint64_t key,
                   uint64_t thr, real scale) noexcept nogil:
    """y[i] = x[i] * scale where element i0 + i is kept, else 0 (y may be x)"""
    cdef Py_ssize_t i
    cdef uint64_t h
    cdef uint64_t base = key + <uint64_t>(i0 + 1) * GOLDEN
    for i in range(n):
        h = mix64(base + <uint64_t>i * GOLDEN)
        y[i] = x[i] * scale if (h >> 11) >= thr else <real>0


cdef inline void dropout_apply(int dt, const void *x, void *y, Py_ssize_t n, uint64_t key,
                               uint64_t thr, double scale) noexcept nogil:
    if dt == FA_F32:
        _dropout(<const float *>x, <float *>y, n, 0, key, thr, <float>scale)
    else:
        _dropout(<const double *>x, <double *>y, n, 0, key, thr, scale)


# ---- batch normalisation ------------------------------------------------------------
# PyTorch BatchNorm1d: training normalises with the batch mean and the biased
# variance; running_var is updated with the unbiased one.  The statistics are
# two passes in double (mean, then the centred squares), so a large mean does not
# cancel the variance away.

cdef void _col_stats(const real *x, Py_ssize_t rows, Py_ssize_t n, double *mean,
                     double *var) noexcept nogil:
    """mean[j], var[j] (biased) of the columns of x (rows x n)"""
    cdef Py_ssize_t r, j
    cdef const real *row
    cdef double d, inv = 1.0 / rows
    memset(mean, 0, <size_t>n * sizeof(double))
    memset(var, 0, <size_t>n * sizeof(double))
    for r in range(rows):
        row = x + r * n
        for j in range(n):
            mean[j] += row[j]
    for j in range(n):
        mean[j] *= inv
    for r in range(rows):
        row = x + r * n
        for j in range(n):
            d = row[j] - mean[j]
            var[j] += d * d
    for j in range(n):
        var[j] *= inv


cdef void _bn_affine(const real *x, real *u, Py_ssize_t rows, Py_ssize_t n,
                     const double *mean, const double *sc, const real *beta) noexcept nogil:
    """u = (x - mean) sc + beta, sc = gamma / sqrt(var + eps)"""
    cdef Py_ssize_t r, j
    cdef const real *xr
    cdef real *ur
    for r in range(rows):
        xr = x + r * n
        ur = u + r * n
        for j in range(n):
            ur[j] = <real>((xr[j] - mean[j]) * sc[j] + beta[j])


cdef void _bn_bwd_sums(const real *du, const real *x, Py_ssize_t rows, Py_ssize_t n,
                       const double *mean, const double *invstd, double *sdu,
                       double *sdux) noexcept nogil:
    """sdu[j] += sum_r du, sdux[j] += sum_r du xhat with xhat = (x - mean) invstd"""
    cdef Py_ssize_t r, j
    cdef const real *dr
    cdef const real *xr
    for r in range(rows):
        dr = du + r * n
        xr = x + r * n
        for j in range(n):
            sdu[j] += dr[j]
            sdux[j] += dr[j] * ((xr[j] - mean[j]) * invstd[j])


cdef void _bn_bwd_dx(const real *du, const real *x, real *dx, Py_ssize_t rows,
                     Py_ssize_t n, const double *mean, const double *invstd,
                     const double *c1, const double *m1, const double *m2) noexcept nogil:
    """dx = c1 (du - m1 - xhat m2): c1 = gamma invstd, m1 = mean(du), m2 = mean(du xhat)
    (training mode; dx may be du)"""
    cdef Py_ssize_t r, j
    cdef const real *dr
    cdef const real *xr
    cdef real *o
    for r in range(rows):
        dr = du + r * n
        xr = x + r * n
        o = dx + r * n
        for j in range(n):
            o[j] = <real>(c1[j] * (dr[j] - m1[j] - (xr[j] - mean[j]) * invstd[j] * m2[j]))


cdef void _col_scale(const real *a, real *o, Py_ssize_t rows, Py_ssize_t n,
                     const double *c) noexcept nogil:
    """o = a c (per column; evaluation-mode BatchNorm backward)"""
    cdef Py_ssize_t r, j
    cdef const real *ar
    cdef real *orow
    for r in range(rows):
        ar = a + r * n
        orow = o + r * n
        for j in range(n):
            orow[j] = <real>(ar[j] * c[j])


# ---- learnable PReLU (with the dense layer's bias fused) -----------------------------

cdef void _prelu_fwd(const real *z, const real *b, const real *a, bint per_unit,
                     real *y, Py_ssize_t rows, Py_ssize_t n) noexcept nogil:
    """u = z + b (b may be NULL); y = u if u > 0 else a u (a: one slope or one per column)"""
    cdef Py_ssize_t r, j
    cdef const real *zr
    cdef real *yr
    cdef real u, s
    cdef real a0 = a[0]
    for r in range(rows):
        zr = z + r * n
        yr = y + r * n
        if per_unit:
            if b != NULL:
                for j in range(n):
                    u = zr[j] + b[j]
                    yr[j] = u if u > 0 else a[j] * u
            else:
                for j in range(n):
                    u = zr[j]
                    yr[j] = u if u > 0 else a[j] * u
        else:
            if b != NULL:
                for j in range(n):
                    u = zr[j] + b[j]
                    yr[j] = u if u > 0 else a0 * u
            else:
                for j in range(n):
                    u = zr[j]
                    yr[j] = u if u > 0 else a0 * u


cdef void _prelu_bwd(const real *g, const real *z, const real *b, const real *a,
                     bint per_unit, real *dz, double *db, double *da, Py_ssize_t rows,
                     Py_ssize_t n) noexcept nogil:
    """dz = g (1 if u > 0 else a), db[j] += dz, da[j or 0] += g u where u <= 0
    (u = z + b recomputed; dz may be g)"""
    cdef Py_ssize_t r, j
    cdef const real *gr
    cdef const real *zr
    cdef real *dr
    cdef real u, gi, aj
    cdef double s
    for r in range(rows):
        gr = g + r * n
        zr = z + r * n
        dr = dz + r * n
        s = 0.0
        for j in range(n):
            u = zr[j] + (b[j] if b != NULL else <real>0)
            gi = gr[j]
            aj = a[j] if per_unit else a[0]
            if per_unit:
                da[j] += <double>gi * u if u <= 0 else 0.0
            else:
                s += <double>gi * u if u <= 0 else 0.0
            gi = gi if u > 0 else aj * gi
            dr[j] = gi
            db[j] += gi
        if not per_unit:
            da[0] += s


cdef void _prelu_deriv(const real *z, const real *b, const real *a, bint per_unit, real *o,
                       Py_ssize_t rows, Py_ssize_t n) noexcept nogil:
    """o = f'(u) (for the saturation diagnostics)"""
    cdef Py_ssize_t r, j
    cdef real u
    for r in range(rows):
        for j in range(n):
            u = z[r * n + j] + (b[j] if b != NULL else <real>0)
            o[r * n + j] = <real>1 if u > 0 else (a[j] if per_unit else a[0])


# ---- residual add ----------------------------------------------------------------------

cdef void _add(const real *a, const real *b, real *o, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        o[i] = a[i] + b[i]


cdef inline void add_arrays(int dt, const void *a, const void *b, void *o,
                            Py_ssize_t n) noexcept nogil:
    if dt == FA_F32:
        _add(<const float *>a, <const float *>b, <float *>o, n)
    else:
        _add(<const double *>a, <const double *>b, <double *>o, n)
