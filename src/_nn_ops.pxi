# The elementwise work of the network ops that are not activation kernels:
# batch normalisation, dropout, learnable PReLU and the residual add.  Included
# by src/_nn.pyx (the engine and the standalone batchnorm_* / dropout_* entry
# points share these loops, so each piece of math exists once).
#
# Loops run over one row (or a block of contiguous rows) at a time: 1-D
# contiguous loops vectorise, 2-D memoryview loops do not (DESIGN.md section 7).
# Per-column statistics and parameter gradients accumulate in double.

# rows per block of the fused passes: the block stays in L1/L2 between the
# activation kernel and the loop around it
cdef Py_ssize_t BLOCK_ELEMS = 8192


# ---- dropout and BatchNorm: C loops built for AVX-512 / AVX2+FMA / baseline ----------
# (src/fa_nn_loops.h).  Dropout: SplitMix64 (Steele, Lea & Flood 2014; the finaliser of
# java.util.SplittableRandom): one hash h_k = mix(key + (k + 1) G) decides two elements:
# element 2k of a layer keeps its value when the low 32 bits of h_k are >= thr = min(round(p
# 2^32), 2^32 - 1), element 2k + 1 when the high 32 bits are, so P(keep) = 1 - p to 2^-32
# (and half the hashes of one per element).  key mixes
# (seed, step, layer); the mask is a pure function of (seed, step, layer, i): the same
# for any thread count, never stored, and reproduced bit for bit by
# fastact.reference.dropout_keep.  BatchNorm (PyTorch BatchNorm1d): training normalises
# with the batch mean and the biased variance; running_var is updated with the unbiased
# one.  The statistics are two passes in double (mean, then the centred squares: col_stats),
# so a large mean does not cancel the variance away.

cdef extern from "fa_nn_loops.h" nogil:
    uint64_t dropout_key "fa_dropout_key"(uint64_t seed, uint64_t step, uint64_t layer)
    int fa_dropout_set_width(int w)
    void fa_dropout_f32(const float *x, float *y, Py_ssize_t n, uint64_t key, uint32_t thr,
                        float scale)
    void fa_dropout_f64(const double *x, double *y, Py_ssize_t n, uint64_t key, uint32_t thr,
                        double scale)
    void fa_col_sum_f32(const float *x, Py_ssize_t rows, Py_ssize_t n, Py_ssize_t ld, double *s)
    void fa_col_sum_f64(const double *x, Py_ssize_t rows, Py_ssize_t n, Py_ssize_t ld, double *s)
    void fa_col_sqdev_f32(const float *x, Py_ssize_t rows, Py_ssize_t n, Py_ssize_t ld, const double *mean,
                          double *s)
    void fa_col_sqdev_f64(const double *x, Py_ssize_t rows, Py_ssize_t n, Py_ssize_t ld, const double *mean,
                          double *s)
    void fa_bn_affine_f32(const float *x, float *u, Py_ssize_t rows, Py_ssize_t n, Py_ssize_t ld,
                          const double *mean, const double *sc, const float *beta)
    void fa_bn_affine_f64(const double *x, double *u, Py_ssize_t rows, Py_ssize_t n, Py_ssize_t ld,
                          const double *mean, const double *sc, const double *beta)
    void fa_bn_bwd_sums_f32(const float *du, const float *x, Py_ssize_t rows, Py_ssize_t n, Py_ssize_t ld,
                            const double *mean, const double *invstd, double *sdu,
                            double *sdux)
    void fa_bn_bwd_sums_f64(const double *du, const double *x, Py_ssize_t rows, Py_ssize_t n, Py_ssize_t ld,
                            const double *mean, const double *invstd, double *sdu,
                            double *sdux)
    void fa_bn_bwd_dx_f32(const float *du, const float *x, float *dx, Py_ssize_t rows,
                          Py_ssize_t n, Py_ssize_t ld, const double *mean, const double *invstd,
                          const double *c1, const double *m1, const double *m2)
    void fa_bn_bwd_dx_f64(const double *du, const double *x, double *dx, Py_ssize_t rows,
                          Py_ssize_t n, Py_ssize_t ld, const double *mean, const double *invstd,
                          const double *c1, const double *m1, const double *m2)
    void fa_col_scale_f32(const float *a, float *o, Py_ssize_t rows, Py_ssize_t n, Py_ssize_t ld,
                          const double *c)
    void fa_col_scale_f64(const double *a, double *o, Py_ssize_t rows, Py_ssize_t n, Py_ssize_t ld,
                          const double *c)
    void fa_col_shifted_sums_f32(const float *x, Py_ssize_t rows, Py_ssize_t n, Py_ssize_t ld,
                                 const double *c, double *s1, double *s2)
    void fa_col_shifted_sums_f64(const double *x, Py_ssize_t rows, Py_ssize_t n,
                                 Py_ssize_t ld, const double *c, double *s1, double *s2)
    void fa_prelu_fwd_f32(const float *z, const float *b, const float *a, int per_unit,
                          float *y, Py_ssize_t rows, Py_ssize_t n)
    void fa_prelu_fwd_f64(const double *z, const double *b, const double *a, int per_unit,
                          double *y, Py_ssize_t rows, Py_ssize_t n)
    void fa_prelu_bwd_f32(const float *g, const float *z, const float *b, const float *a,
                          int per_unit, float *dz, double *db, double *da, Py_ssize_t rows,
                          Py_ssize_t n)
    int fa_rsum_set_path(int v)
    void fa_prelu_bwd_f32_generic(const float *g, const float *z, const float *b,
                                  const float *a, int per_unit, float *dz, double *db,
                                  double *da, Py_ssize_t rows, Py_ssize_t n)
    void fa_prelu_bwd_f64(const double *g, const double *z, const double *b, const double *a,
                          int per_unit, double *dz, double *db, double *da, Py_ssize_t rows,
                          Py_ssize_t n)
    int fa_nonfinite_f32(const float *a, Py_ssize_t n)
    int fa_nonfinite_f64(const double *a, Py_ssize_t n)
    double fa_xent_f32(const float *x, const int64_t *labels, float *g, float *scr,
                       Py_ssize_t rows, Py_ssize_t C, double scale)
    double fa_xent_f64(const double *x, const int64_t *labels, double *g, double *scr,
                       Py_ssize_t rows, Py_ssize_t C, double scale)
    void fa_mul_colsum_f32(const float *g, const float *d, float *dz, double *db,
                           Py_ssize_t rows, Py_ssize_t n)
    void fa_mul_colsum_f64(const double *g, const double *d, double *dz, double *db,
                           Py_ssize_t rows, Py_ssize_t n)
    void fa_add_f32(const float *a, const float *b, float *o, Py_ssize_t n)
    void fa_add_f64(const double *a, const double *b, double *o, Py_ssize_t n)
    int fa_ftz_supported()
    unsigned fa_ftz_enter()
    void fa_ftz_leave(unsigned saved)
    unsigned fa_ftz_bits()
    void fa_sgd_f32(float *p, const float *g, float *buf, Py_ssize_t n, double lr,
                    double momentum, double wd, int nesterov, int first)
    void fa_sgd_f64(double *p, const double *g, double *buf, Py_ssize_t n, double lr,
                    double momentum, double wd, int nesterov, int first)
    void fa_adam_f32(float *p, const float *g, float *m, float *v, Py_ssize_t n, double lr,
                     double b1, double b2, double eps, double wd, int decoupled, double bc1,
                     double bc2s)
    void fa_adam_f64(double *p, const double *g, double *m, double *v, Py_ssize_t n,
                     double lr, double b1, double b2, double eps, double wd, int decoupled,
                     double bc1, double bc2s)


cdef uint64_t GOLDEN = 0x9E3779B97F4A7C15ULL


cdef inline void dropout_apply(int dt, const void *x, void *y, Py_ssize_t n, uint64_t key,
                               uint32_t thr, double scale) noexcept nogil:
    if dt == FA_F32:
        fa_dropout_f32(<const float *>x, <float *>y, n, key, thr, <float>scale)
    else:
        fa_dropout_f64(<const double *>x, <double *>y, n, key, thr, scale)


cdef void col_stats(int dt, const void *x, Py_ssize_t rows, Py_ssize_t n, Py_ssize_t ld,
                    double *mean, double *var) noexcept nogil:
    """mean[j], var[j] (biased) of the n columns of x (rows of ld elements), in two passes
    in double: the mean, then the centred squares.  (One pass of sums shifted by the first
    row lost digits when that row was far from the mean, and gave inf - inf = NaN for
    columns near 1e154 in float64, where the centred squares overflow to a variance of
    inf: the normalised output is then 0, as the NumPy twin's and PyTorch's.)"""
    cdef Py_ssize_t j
    memset(mean, 0, <size_t>n * sizeof(double))
    memset(var, 0, <size_t>n * sizeof(double))
    if dt == FA_F32:
        fa_col_sum_f32(<const float *>x, rows, n, ld, mean)
    else:
        fa_col_sum_f64(<const double *>x, rows, n, ld, mean)
    for j in range(n):
        mean[j] = mean[j] / rows
    if dt == FA_F32:
        fa_col_sqdev_f32(<const float *>x, rows, n, ld, mean, var)
    else:
        fa_col_sqdev_f64(<const double *>x, rows, n, ld, mean, var)
    for j in range(n):
        var[j] = var[j] / rows


cdef inline void bn_affine(int dt, const void *x, void *u, Py_ssize_t rows, Py_ssize_t n,
                           Py_ssize_t ld, const double *mean, const double *sc,
                           const void *beta) noexcept nogil:
    if dt == FA_F32:
        fa_bn_affine_f32(<const float *>x, <float *>u, rows, n, ld, mean, sc,
                         <const float *>beta)
    else:
        fa_bn_affine_f64(<const double *>x, <double *>u, rows, n, ld, mean, sc,
                         <const double *>beta)


cdef inline void bn_bwd_sums(int dt, const void *du, const void *x, Py_ssize_t rows,
                             Py_ssize_t n, Py_ssize_t ld, const double *mean,
                             const double *invstd, double *sdu, double *sdux) noexcept nogil:
    if dt == FA_F32:
        fa_bn_bwd_sums_f32(<const float *>du, <const float *>x, rows, n, ld, mean, invstd, sdu,
                           sdux)
    else:
        fa_bn_bwd_sums_f64(<const double *>du, <const double *>x, rows, n, ld, mean, invstd,
                           sdu, sdux)


cdef inline void bn_bwd_dx(int dt, const void *du, const void *x, void *dx, Py_ssize_t rows,
                           Py_ssize_t n, Py_ssize_t ld, const double *mean,
                           const double *invstd, const double *c1, const double *m1,
                           const double *m2) noexcept nogil:
    if dt == FA_F32:
        fa_bn_bwd_dx_f32(<const float *>du, <const float *>x, <float *>dx, rows, n, ld, mean,
                         invstd, c1, m1, m2)
    else:
        fa_bn_bwd_dx_f64(<const double *>du, <const double *>x, <double *>dx, rows, n, ld, mean,
                         invstd, c1, m1, m2)


cdef inline void col_scale(int dt, const void *a, void *o, Py_ssize_t rows, Py_ssize_t n,
                           Py_ssize_t ld, const double *c) noexcept nogil:
    if dt == FA_F32:
        fa_col_scale_f32(<const float *>a, <float *>o, rows, n, ld, c)
    else:
        fa_col_scale_f64(<const double *>a, <double *>o, rows, n, ld, c)


# ---- learnable PReLU: the derivative for the diagnostics (the loops are C) ------------

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

cdef inline void add_arrays(int dt, const void *a, const void *b, void *o,
                            Py_ssize_t n) noexcept nogil:
    """o = a + b (the C loop of src/fa_nn_loops.h: AVX-512 / AVX2 / baseline clones)"""
    if dt == FA_F32:
        fa_add_f32(<const float *>a, <const float *>b, <float *>o, n)
    else:
        fa_add_f64(<const double *>a, <const double *>b, <double *>o, n)


cdef inline void mul_colsum(int dt, const void *g, const void *d, void *dz, double *db,
                            Py_ssize_t rows, Py_ssize_t n) noexcept nogil:
    """dz = g d, db[j] += sum_r dz[r, j] (in double)"""
    if dt == FA_F32:
        fa_mul_colsum_f32(<const float *>g, <const float *>d, <float *>dz, db, rows, n)
    else:
        fa_mul_colsum_f64(<const double *>g, <const double *>d, <double *>dz, db, rows, n)


# ---- the engine's loss: softmax cross-entropy with labels (src/fa_nn_loops.h) -----------

cdef inline double xent_rows(int dt, const void *x, const int64_t *labels, void *g,
                             void *scr, Py_ssize_t rows, Py_ssize_t C,
                             double scale) noexcept nogil:
    """sum over the rows of -log softmax(x)[label]; g = scale (softmax(x) - onehot); scr:
    scratch of rows x C elements (float32: the rounding errors of x - max)"""
    if dt == FA_F32:
        return fa_xent_f32(<const float *>x, labels, <float *>g, <float *>scr, rows, C, scale)
    return fa_xent_f64(<const double *>x, labels, <double *>g, <double *>scr, rows, C, scale)
