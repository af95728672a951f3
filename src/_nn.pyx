# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Native dense layers and the whole-MLP training step (fastact/nn.py is the Python side).

BLAS comes from scipy.linalg.cython_blas; the activation, bias and loss
kernels are fastact._activations' own dispatched loops, reached through the
C_API capsule (src/fa_api.h), so this module compiles no kernel twice.

Row-major products through column-major BLAS (DESIGN.md section 7):
    Z = X W     (rows x n) = (rows x k)(k x n):  gemm(N, N, n, rows, k, W, X, Z)
    G = Xᵀ D    (k x n)    = (k x rows)(rows x n): gemm(N, T, n, k, rows, D, X, G)
    DX = D Wᵀ   (rows x k) = (rows x n)(n x k):  gemm(T, N, k, rows, n, W, D, DX)

The Python layer has validated everything: arrays are C-contiguous, of one
dtype (float32 or float64), the shapes agree and fit in a BLAS int.  The
engine owns its buffers; a training step allocates nothing and runs without
the GIL from the first GEMM to the last parameter update.  Elementwise loops
run on the calling thread; the GEMMs use the BLAS's own threads (so the two
never compete for the cores).
"""
cimport numpy as cnp
from cpython.pycapsule cimport PyCapsule_GetPointer
from libc.math cimport sqrt, exp, log1p, fabs, isfinite
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.string cimport memset, memcpy
from scipy.linalg.cython_blas cimport sgemm, dgemm

import numpy as np
from fastact import _activations

cnp.import_array()

ctypedef void (*fwd_t)(int, int, const void *, void *, Py_ssize_t, const fa_params *) noexcept nogil
ctypedef void (*bwd_t)(int, int, const void *, const void *, void *, Py_ssize_t,
                       const fa_params *) noexcept nogil
ctypedef void (*bias_fwd_t)(int, int, const void *, const void *, void *, Py_ssize_t, Py_ssize_t,
                            const fa_params *) noexcept nogil
ctypedef void (*bias_bwd_t)(int, int, const void *, const void *, const void *, void *, double *,
                            Py_ssize_t, Py_ssize_t, const fa_params *) noexcept nogil
ctypedef void (*xent_t)(int, const void *, const int64_t *, const void *, void *, double *,
                        Py_ssize_t, Py_ssize_t, double) noexcept nogil
ctypedef void (*bias_fwd_d_t)(int, int, const void *, const void *, void *, void *, Py_ssize_t,
                              Py_ssize_t, const fa_params *) noexcept nogil
ctypedef int (*fused_t)(int, int) noexcept nogil
ctypedef int (*flags_t)() noexcept nogil
ctypedef void (*restore_t)(int) noexcept nogil

cdef extern from "fa_api.h" nogil:
    ctypedef struct fa_params:
        double a
        double b
        double c
        double d
    ctypedef struct fa_api_t:
        int version
        fwd_t fwd
        bwd_t bwd
        bias_fwd_t bias_fwd
        bias_bwd_t bias_bwd
        xent_t softmax_xent
        flags_t fp_flags
        restore_t fp_restore
        bias_fwd_d_t bias_fwd_d
        fused_t bias_fwd_d_fused
    int FA_API_VERSION
    const char *FA_API_CAPSULE
    int FA_F32
    int FA_F64

cdef const fa_api_t *K = <const fa_api_t *>PyCapsule_GetPointer(
    _activations.C_API, FA_API_CAPSULE)
if K.version != FA_API_VERSION:  # pragma: no cover - a mixed build
    raise ImportError("fastact._nn and fastact._activations come from different builds; "
                      "reinstall fastact (pip install .).")

ctypedef fused real:
    float
    double

cdef enum:
    LOSS_XENT = 0
    LOSS_MSE = 1
    LOSS_BCE = 2
    OPT_NONE = 0
    OPT_SGD = 1
    OPT_ADAM = 2
    OPT_ADAMW = 3

# the engine's codes for fastact.nn's loss and optimizer names
LOSSES = {"softmax_cross_entropy": LOSS_XENT, "mse": LOSS_MSE,
          "binary_cross_entropy_with_logits": LOSS_BCE}
OPTIMIZERS = {"sgd": OPT_SGD, "adam": OPT_ADAM, "adamw": OPT_ADAMW}


# ---- BLAS, row-major ---------------------------------------------------------

cdef void _gemm(int dt, char ta, char tb, int m, int n, int k, const void *A, int lda,
                const void *B, int ldb, double beta, void *C, int ldc) noexcept nogil:
    cdef float one_f = 1.0, beta_f = <float>beta
    cdef double one_d = 1.0, beta_d = beta
    if dt == FA_F32:
        sgemm(&ta, &tb, &m, &n, &k, &one_f, <float *>A, &lda, <float *>B, &ldb, &beta_f,
              <float *>C, &ldc)
    else:
        dgemm(&ta, &tb, &m, &n, &k, &one_d, <double *>A, &lda, <double *>B, &ldb, &beta_d,
              <double *>C, &ldc)


cdef void _zero(void *p, Py_ssize_t n, Py_ssize_t isz) noexcept nogil:
    if n > 0:
        memset(p, 0, <size_t>(n * isz))


cdef void mm_nn(int dt, Py_ssize_t isz, const void *X, const void *W, void *Z,
                int rows, int k, int n) noexcept nogil:
    """Z = X W"""
    if rows == 0 or n == 0:
        return
    if k == 0:
        _zero(Z, <Py_ssize_t>rows * n, isz)
        return
    _gemm(dt, b'N', b'N', n, rows, k, W, n, X, k, 0.0, Z, n)


cdef void mm_tn(int dt, Py_ssize_t isz, const void *X, const void *D, void *G,
                int rows, int k, int n) noexcept nogil:
    """G = Xᵀ D"""
    if k == 0 or n == 0:
        return
    if rows == 0:
        _zero(G, <Py_ssize_t>k * n, isz)
        return
    _gemm(dt, b'N', b'T', n, k, rows, D, n, X, k, 0.0, G, n)


cdef void mm_nt(int dt, Py_ssize_t isz, const void *D, const void *W, void *DX,
                int rows, int k, int n, double beta=0.0) noexcept nogil:
    """DX = D Wᵀ (+ DX when beta is 1: a residual connection's second gradient)"""
    if rows == 0 or k == 0:
        return
    if n == 0:
        if beta == 0.0:
            _zero(DX, <Py_ssize_t>rows * k, isz)
        return
    _gemm(dt, b'T', b'N', k, rows, n, W, n, D, n, beta, DX, k)


# ---- small typed loops ---------------------------------------------------------

cdef double _sumsq(const real *a, Py_ssize_t n) noexcept nogil:
    cdef double s = 0.0, v
    cdef Py_ssize_t i
    for i in range(n):
        v = a[i]
        s += v * v
    return s


cdef void _scale(real *a, Py_ssize_t n, double c) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        a[i] = <real>(a[i] * c)


cdef void _from_double(real *dst, const double *src, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        dst[i] = <real>src[i]


cdef void _fill(real *dst, Py_ssize_t n, double v) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        dst[i] = <real>v


cdef double _mse(const real *x, const real *t, real *g, Py_ssize_t n) noexcept nogil:
    """mean((x - t)^2) over all n elements; g = 2 (x - t) / n"""
    cdef double s = 0.0, d, inv = 1.0 / n
    cdef Py_ssize_t i
    for i in range(n):
        d = <double>x[i] - <double>t[i]
        s += d * d
        g[i] = <real>(2.0 * d * inv)
    return s * inv


cdef double _bce(const real *x, const real *t, real *g, Py_ssize_t n) noexcept nogil:
    """mean(softplus(x) - t x) over all n elements (PyTorch's BCEWithLogitsLoss),
    computed as max(x, 0) - t x + log1p(exp(-|x|)); g = (sigmoid(x) - t) / n"""
    cdef double s = 0.0, xi, ti, e, sig, inv = 1.0 / n
    cdef Py_ssize_t i
    for i in range(n):
        xi = x[i]
        ti = t[i]
        e = exp(-fabs(xi))
        s += (xi if xi > 0 else 0.0) - ti * xi + log1p(e)
        sig = 1.0 / (1.0 + e) if xi >= 0 else e / (1.0 + e)
        g[i] = <real>((sig - ti) * inv)
    return s * inv


# (the optimizer loops and the non-finite check are C: src/fa_nn_loops.h)


cdef void _moments(const real *a, Py_ssize_t n, double *mean, double *std) noexcept nogil:
    cdef double s = 0.0, d
    cdef Py_ssize_t i
    for i in range(n):
        s += a[i]
    s = s / n if n else 0.0
    mean[0] = s
    d = 0.0
    for i in range(n):
        d += (a[i] - s) * (a[i] - s)
    std[0] = sqrt(d / n) if n else 0.0


cdef double _small_fraction(const real *a, Py_ssize_t n, double thr) noexcept nogil:
    cdef Py_ssize_t i, c = 0
    for i in range(n):
        c += fabs(a[i]) < thr
    return <double>c / n if n else 0.0


cdef double _dead_fraction(const real *dz, Py_ssize_t rows, Py_ssize_t cols,
                           unsigned char *alive) noexcept nogil:
    """fraction of columns of dz that are zero in every row"""
    cdef Py_ssize_t r, j, dead = 0
    memset(alive, 0, <size_t>cols)
    for r in range(rows):
        for j in range(cols):
            alive[j] |= dz[r * cols + j] != 0
    for j in range(cols):
        dead += not alive[j]
    return <double>dead / cols if cols else 0.0


# ---- typed dispatch of the small loops -----------------------------------------

cdef inline double sumsq(int dt, const void *a, Py_ssize_t n) noexcept nogil:
    return _sumsq(<const float *>a, n) if dt == FA_F32 else _sumsq(<const double *>a, n)


cdef inline void scale(int dt, void *a, Py_ssize_t n, double c) noexcept nogil:
    if dt == FA_F32:
        _scale(<float *>a, n, c)
    else:
        _scale(<double *>a, n, c)


cdef inline void from_double(int dt, void *dst, const double *src, Py_ssize_t n) noexcept nogil:
    if dt == FA_F32:
        _from_double(<float *>dst, src, n)
    else:
        _from_double(<double *>dst, src, n)


# ---- the non-activation op loops (dropout, BatchNorm, PReLU, add, optimizers) ----------

include "_nn_ops.pxi"

# scikit-learn's loss, L2 penalty and optimizers (fastact.sklearn's native epochs)
include "_nn_sk.pxi"


# ---- dense layer: the functional API -------------------------------------------

cdef inline int _dt(cnp.ndarray a):
    return FA_F32 if cnp.PyArray_TYPE(a) == cnp.NPY_FLOAT32 else FA_F64


def dense_forward(int act, cnp.ndarray x, cnp.ndarray W, cnp.ndarray b, cnp.ndarray z,
                  cnp.ndarray y, double a, double b_, double c, double d):
    """z = x W (z may be y), y = act(z + b)."""
    cdef int dt = _dt(x)
    cdef Py_ssize_t isz = cnp.PyArray_ITEMSIZE(x)
    cdef int rows = <int>cnp.PyArray_DIM(x, 0), k = <int>cnp.PyArray_DIM(x, 1)
    cdef int n = <int>cnp.PyArray_DIM(W, 1)
    cdef void *xp = cnp.PyArray_DATA(x)
    cdef void *wp = cnp.PyArray_DATA(W)
    cdef void *bp = cnp.PyArray_DATA(b)
    cdef void *zp = cnp.PyArray_DATA(z)
    cdef void *yp = cnp.PyArray_DATA(y)
    cdef fa_params p
    p.a, p.b, p.c, p.d = a, b_, c, d
    cdef int flags = K.fp_flags()
    with nogil:
        mm_nn(dt, isz, xp, wp, zp, rows, k, n)
        K.bias_fwd(act, dt, zp, bp, yp, rows, n, &p)
        K.fp_restore(flags)


def dense_backward(int act, cnp.ndarray g, cnp.ndarray s, object b, cnp.ndarray x,
                   cnp.ndarray W, cnp.ndarray dz, object dx, cnp.ndarray dW,
                   cnp.ndarray db, double a, double b_, double c, double d):
    """dz = g act'(s (+ b)), db = sum_rows dz (double, added to), dW = xᵀ dz, dx = dz Wᵀ."""
    cdef int dt = _dt(x)
    cdef Py_ssize_t isz = cnp.PyArray_ITEMSIZE(x)
    cdef int rows = <int>cnp.PyArray_DIM(x, 0), k = <int>cnp.PyArray_DIM(x, 1)
    cdef int n = <int>cnp.PyArray_DIM(W, 1)
    cdef void *gp = cnp.PyArray_DATA(g)
    cdef void *sp = cnp.PyArray_DATA(s)
    cdef void *bp = NULL if b is None else cnp.PyArray_DATA(<cnp.ndarray>b)
    cdef void *xp = cnp.PyArray_DATA(x)
    cdef void *wp = cnp.PyArray_DATA(W)
    cdef void *dzp = cnp.PyArray_DATA(dz)
    cdef void *dxp = NULL if dx is None else cnp.PyArray_DATA(<cnp.ndarray>dx)
    cdef void *dwp = cnp.PyArray_DATA(dW)
    cdef double *dbp = <double *>cnp.PyArray_DATA(db)
    cdef fa_params p
    p.a, p.b, p.c, p.d = a, b_, c, d
    cdef int flags = K.fp_flags()
    with nogil:
        if rows > 0:
            K.bias_bwd(act, dt, gp, sp, bp, dzp, dbp, rows, n, &p)
        mm_tn(dt, isz, xp, dzp, dwp, rows, k, n)
        if dxp != NULL:
            mm_nt(dt, isz, dzp, wp, dxp, rows, k, n)
        K.fp_restore(flags)


def all_finite(cnp.ndarray a):
    """True when the C-contiguous float array a has no NaN or inf (allocates nothing)."""
    cdef Py_ssize_t n = cnp.PyArray_SIZE(a)
    cdef void *p = cnp.PyArray_DATA(a)
    cdef bint ok
    cdef int dt = _dt(a)
    with nogil:
        if dt == FA_F32:
            ok = not fa_nonfinite_f32(<const float *>p, n)
        else:
            ok = not fa_nonfinite_f64(<const double *>p, n)
    return ok


def bad_label(cnp.ndarray labels, int64_t n_classes):
    """The first label of the int64 array outside [0, n_classes), or None."""
    cdef Py_ssize_t i, n = cnp.PyArray_SIZE(labels), bad = -1
    cdef const int64_t *p = <const int64_t *>cnp.PyArray_DATA(labels)
    with nogil:
        for i in range(n):
            if p[i] < 0 or p[i] >= n_classes:
                bad = i
                break
    return None if bad < 0 else int(p[bad])


def _engine_softmax_xent(cnp.ndarray x, cnp.ndarray labels, cnp.ndarray grad, double scale):
    """The engine's loss loop on its own (for the tests): the summed row losses of
    softmax cross-entropy of the C-contiguous logits x (rows x C, float32 or float64)
    with int64 labels in [0, C) (not checked here), and grad (like x) = scale (softmax(x)
    - onehot(labels))."""
    if (x.ndim != 2 or x.dtype.char not in "fd" or grad.dtype != x.dtype or grad.size != x.size
            or not (x.flags.c_contiguous and grad.flags.c_contiguous
                    and labels.flags.c_contiguous) or labels.dtype != np.int64
            or labels.size != x.shape[0] or x.shape[1] < 1):
        raise ValueError("_engine_softmax_xent: x must be a C-contiguous 2-D float32 or float64 array with at "
                         "least one column, grad like it, labels int64 with one per row.")
    cdef int dt = _dt(x)
    cdef double s
    cdef cnp.ndarray scr = np.empty_like(x)
    with nogil:
        s = xent_rows(dt, cnp.PyArray_DATA(x), <const int64_t *>cnp.PyArray_DATA(labels),
                      cnp.PyArray_DATA(grad), cnp.PyArray_DATA(scr), cnp.PyArray_DIM(x, 0),
                      cnp.PyArray_DIM(x, 1), scale)
    return s


# ---- the network ops and the engine ----------------------------------------------

include "_nn_engine.pxi"


# ---- standalone BatchNorm and dropout (fastact.batchnorm_forward / dropout_forward) ----
# Threads split the columns (BatchNorm: each column's statistics are one thread's, so the
# sums do not depend on the thread count) or the elements (dropout: the mask is a function
# of the element index), from SERIAL_BELOW elements up, as the activation kernels do.

from cython.parallel cimport prange

cdef Py_ssize_t _SERIAL_BELOW = 65536


cdef int _parts(Py_ssize_t elems, Py_ssize_t units, int n_threads) noexcept nogil:
    """how many threads for `elems` elements split into at most `units` pieces"""
    cdef Py_ssize_t most
    if n_threads <= 1 or elems < _SERIAL_BELOW:
        return 1
    most = elems // (_SERIAL_BELOW // 2)
    if most > units:
        most = units
    return <int>(n_threads if n_threads < most else most) if most > 1 else 1


cdef inline Py_ssize_t _col_block(Py_ssize_t n, int parts) noexcept nogil:
    """columns per thread, a multiple of 16 (whole cache lines of float32)"""
    cdef Py_ssize_t cb = (n + parts - 1) // parts
    return ((cb + 15) // 16) * 16


cdef void _bn_fwd_block(int dt, const char *x, char *y, const char *gamma, const char *beta,
                        char *rm, char *rv, Py_ssize_t rows, Py_ssize_t n, Py_ssize_t ld,
                        Py_ssize_t isz, double *mean, double *invstd, double *sc,
                        double momentum, double eps, bint training) noexcept nogil:
    """statistics (training) or running statistics (evaluation), the running update, and
    y = (x - mean) sc + beta, for a block of n columns"""
    cdef Py_ssize_t j
    cdef double unbias = <double>rows / (rows - 1) if rows > 1 else 1.0, g, m, v
    if training:
        col_stats(dt, x, rows, n, ld, mean, invstd)
        for j in range(n):
            if rm != NULL:
                if dt == FA_F32:
                    m = (<float *>rm)[j]
                    v = (<float *>rv)[j]
                    (<float *>rm)[j] = <float>((1.0 - momentum) * m + momentum * mean[j])
                    (<float *>rv)[j] = <float>((1.0 - momentum) * v + momentum * invstd[j] * unbias)
                else:
                    m = (<double *>rm)[j]
                    v = (<double *>rv)[j]
                    (<double *>rm)[j] = (1.0 - momentum) * m + momentum * mean[j]
                    (<double *>rv)[j] = (1.0 - momentum) * v + momentum * invstd[j] * unbias
            invstd[j] = 1.0 / sqrt(invstd[j] + eps)
    else:
        for j in range(n):
            if dt == FA_F32:
                mean[j] = (<float *>rm)[j]
                invstd[j] = 1.0 / sqrt(<double>(<float *>rv)[j] + eps)
            else:
                mean[j] = (<double *>rm)[j]
                invstd[j] = 1.0 / sqrt((<double *>rv)[j] + eps)
    for j in range(n):
        g = (<const float *>gamma)[j] if dt == FA_F32 else (<const double *>gamma)[j]
        sc[j] = invstd[j] * g
    bn_affine(dt, x, y, rows, n, ld, mean, sc, beta)


def batchnorm_forward(cnp.ndarray x, cnp.ndarray gamma, cnp.ndarray beta, cnp.ndarray y,
                      cnp.ndarray mean, cnp.ndarray invstd, object running_mean,
                      object running_var, double momentum, double eps, bint training,
                      int n_threads):
    """y = gamma (x - mean) invstd + beta over the rows of x (rows x n, C order); mean and
    invstd (float64, n) are outputs: the batch statistics in training (the running ones
    updated in place when given), the running statistics' in evaluation.  Threads split
    the columns; each thread's statistics pass and normalising pass run back to back."""
    cdef int dt = _dt(x)
    cdef Py_ssize_t rows = cnp.PyArray_DIM(x, 0), n = cnp.PyArray_DIM(x, 1), j0, j1, cb, isz
    cdef Py_ssize_t nblocks
    cdef char *xp = <char *>cnp.PyArray_DATA(x)
    cdef char *yp = <char *>cnp.PyArray_DATA(y)
    cdef char *gp = <char *>cnp.PyArray_DATA(gamma)
    cdef char *bp = <char *>cnp.PyArray_DATA(beta)
    cdef char *rmp = NULL if running_mean is None else <char *>cnp.PyArray_DATA(<cnp.ndarray>running_mean)
    cdef char *rvp = NULL if running_var is None else <char *>cnp.PyArray_DATA(<cnp.ndarray>running_var)
    cdef double *mp = <double *>cnp.PyArray_DATA(mean)
    cdef double *sp = <double *>cnp.PyArray_DATA(invstd)
    cdef cnp.ndarray sc = np.empty(n, np.float64)
    cdef double *scp = <double *>cnp.PyArray_DATA(sc)
    cdef int parts, k
    isz = cnp.PyArray_ITEMSIZE(x)
    parts = _parts(rows * n, (n + 15) // 16, n_threads)
    cb = _col_block(n, parts)            # one block of whole rows' columns per thread
    nblocks = (n + cb - 1) // cb if n > 0 else 0
    with nogil:
        for k in prange(nblocks, num_threads=parts, schedule="static"):
            j0 = k * cb
            j1 = j0 + cb if j0 + cb < n else n
            _bn_fwd_block(dt, xp + j0 * isz, yp + j0 * isz, gp + j0 * isz, bp + j0 * isz,
                          rmp + j0 * isz if rmp != NULL else NULL,
                          rvp + j0 * isz if rvp != NULL else NULL, rows, j1 - j0, n, isz,
                          mp + j0, sp + j0, scp + j0, momentum, eps, training)


cdef void _bn_bwd_block(int dt, const char *g, const char *x, char *dx, const char *gamma,
                        Py_ssize_t rows, Py_ssize_t n, Py_ssize_t ld, const double *mean,
                        const double *invstd, double *dgamma, double *dbeta, double *c1,
                        double *m1, double *m2, bint training) noexcept nogil:
    """the two column sums, then dx, for a block of n columns"""
    cdef Py_ssize_t j
    cdef double gj
    memset(dgamma, 0, <size_t>n * sizeof(double))
    memset(dbeta, 0, <size_t>n * sizeof(double))
    bn_bwd_sums(dt, g, x, rows, n, ld, mean, invstd, dbeta, dgamma)
    for j in range(n):
        gj = (<const float *>gamma)[j] if dt == FA_F32 else (<const double *>gamma)[j]
        c1[j] = invstd[j] * gj
        m1[j] = dbeta[j] / rows if rows else 0.0
        m2[j] = dgamma[j] / rows if rows else 0.0
    if training:
        bn_bwd_dx(dt, g, x, dx, rows, n, ld, mean, invstd, c1, m1, m2)
    else:
        col_scale(dt, g, dx, rows, n, ld, c1)


def batchnorm_backward(cnp.ndarray g, cnp.ndarray x, cnp.ndarray gamma, cnp.ndarray mean,
                       cnp.ndarray invstd, cnp.ndarray dx, cnp.ndarray dgamma,
                       cnp.ndarray dbeta, bint training, int n_threads):
    """dgamma = sum g xhat, dbeta = sum g (float64, n); dx of batchnorm_forward; threads
    split the columns as in the forward."""
    cdef int dt = _dt(x)
    cdef Py_ssize_t rows = cnp.PyArray_DIM(x, 0), n = cnp.PyArray_DIM(x, 1), j0, j1, cb, isz
    cdef Py_ssize_t nblocks
    cdef char *gp = <char *>cnp.PyArray_DATA(g)
    cdef char *xp = <char *>cnp.PyArray_DATA(x)
    cdef char *dxp = <char *>cnp.PyArray_DATA(dx)
    cdef char *gmp = <char *>cnp.PyArray_DATA(gamma)
    cdef double *mp = <double *>cnp.PyArray_DATA(mean)
    cdef double *sp = <double *>cnp.PyArray_DATA(invstd)
    cdef double *dgp = <double *>cnp.PyArray_DATA(dgamma)
    cdef double *dbp = <double *>cnp.PyArray_DATA(dbeta)
    cdef cnp.ndarray c = np.empty((3, n), np.float64)
    cdef double *c1 = <double *>cnp.PyArray_DATA(c)
    cdef int parts, k
    isz = cnp.PyArray_ITEMSIZE(x)
    parts = _parts(rows * n, (n + 15) // 16, n_threads)
    cb = _col_block(n, parts)            # one block of whole rows' columns per thread
    nblocks = (n + cb - 1) // cb if n > 0 else 0
    with nogil:
        for k in prange(nblocks, num_threads=parts, schedule="static"):
            j0 = k * cb
            j1 = j0 + cb if j0 + cb < n else n
            _bn_bwd_block(dt, gp + j0 * isz, xp + j0 * isz, dxp + j0 * isz, gmp + j0 * isz,
                          rows, j1 - j0, n, mp + j0, sp + j0, dgp + j0, dbp + j0, c1 + j0,
                          c1 + n + j0, c1 + 2 * n + j0, training)


def _dropout_width(int w):
    """For the tests: dropout's mask loop takes blocks of w = 16 (AVX-512) or 8 elements, or
    (0) the CPU's choice; returns the width in use.  The mask is the same for every width."""
    return fa_dropout_set_width(w)


def _rsum_path(int v):
    """For the tests: the loops with their column sums in registers (the float32 PReLU
    backward, mul_colsum) run the AVX-512 (2), AVX2+FMA (1) or generic (0) code, capped
    at what this CPU runs, or (-1) the CPU's best; returns the path in use."""
    return fa_rsum_set_path(v)


def _prelu_bwd_f32(cnp.ndarray g, cnp.ndarray z, object b, cnp.ndarray a, bint per_unit,
                   bint generic):
    """For the tests: the engine's float32 PReLU backward of C-contiguous float32 (rows, n)
    g and z, bias b (n,) or None, slopes a (n or 1): (dz, db, da) from the loop the engine
    runs on this CPU (sums in registers), or (generic) from the plain loop it must equal
    bit for bit."""
    cdef Py_ssize_t rows = cnp.PyArray_DIM(g, 0), n = cnp.PyArray_DIM(g, 1)
    dz = np.empty_like(g)
    db = np.zeros(n, np.float64)
    da = np.zeros(n, np.float64)
    cdef const float *bp = NULL if b is None else <const float *>cnp.PyArray_DATA(<cnp.ndarray>b)
    cdef const float *gp = <const float *>cnp.PyArray_DATA(g)
    cdef const float *zp = <const float *>cnp.PyArray_DATA(z)
    cdef const float *ap = <const float *>cnp.PyArray_DATA(a)
    cdef float *dzp = <float *>cnp.PyArray_DATA(dz)
    cdef double *dbp = <double *>cnp.PyArray_DATA(db)
    cdef double *dap = <double *>cnp.PyArray_DATA(da)
    if generic:
        fa_prelu_bwd_f32_generic(gp, zp, bp, ap, per_unit, dzp, dbp, dap, rows, n)
    else:
        fa_prelu_bwd_f32(gp, zp, bp, ap, per_unit, dzp, dbp, dap, rows, n)
    return dz, db, da


def _mul_colsum(cnp.ndarray g, cnp.ndarray d):
    """For the tests: the engine's backward of a layer that kept its derivative, on
    C-contiguous (rows, n) g and d of one float dtype: (dz = g d, db = the column sums of
    dz in double, row after row)."""
    cdef Py_ssize_t rows = cnp.PyArray_DIM(g, 0), n = cnp.PyArray_DIM(g, 1)
    dz = np.empty_like(g)
    db = np.zeros(n, np.float64)
    mul_colsum(_dt(g), cnp.PyArray_DATA(g), cnp.PyArray_DATA(d), cnp.PyArray_DATA(dz),
               <double *>cnp.PyArray_DATA(db), rows, n)
    return dz, db


def dropout(cnp.ndarray x, cnp.ndarray y, double p, uint64_t seed, uint64_t step,
            uint64_t layer, int n_threads):
    """y = x mask / (1 - p) over the C-ordered elements of x (y may be x)."""
    cdef Py_ssize_t n = cnp.PyArray_SIZE(x), i0, i1, blk
    cdef char *xp = <char *>cnp.PyArray_DATA(x)
    cdef char *yp = <char *>cnp.PyArray_DATA(y)
    cdef int dt = _dt(x), k
    cdef Py_ssize_t isz = cnp.PyArray_ITEMSIZE(x)
    cdef uint64_t key = dropout_key(seed, step, layer)
    cdef uint32_t thr = dropout_threshold(p)
    cdef int parts = _parts(n, n // 64 + 1, n_threads)
    blk = ((n + parts - 1) // parts + 63) // 64 * 64
    with nogil:
        for k in prange(parts, num_threads=parts, schedule="static"):
            i0 = k * blk
            i1 = i0 + blk if i0 + blk < n else n
            if i0 < i1:
                # element i0 + i of the whole array (i0 even: one hash per two elements):
                # the key moves by i0 / 2 golden steps
                dropout_apply(dt, xp + i0 * isz, yp + i0 * isz, i1 - i0,
                              key + <uint64_t>(i0 // 2) * GOLDEN, thr, 1.0 / (1.0 - p))
