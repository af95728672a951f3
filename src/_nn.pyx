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
from libc.stdint cimport int64_t
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
    int FA_API_VERSION
    const char *FA_API_CAPSULE
    int FA_F32
    int FA_F64

cdef const fa_api_t *K = <const fa_api_t *>PyCapsule_GetPointer(_activations.C_API,
                                                               FA_API_CAPSULE)
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
# diagnostics: one row of N_DIAG values per layer, in the order of fastact.nn.DIAG_COLUMNS
cdef int N_DIAG = 7


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
                int rows, int k, int n) noexcept nogil:
    """DX = D Wᵀ"""
    if rows == 0 or k == 0:
        return
    if n == 0:
        _zero(DX, <Py_ssize_t>rows * k, isz)
        return
    _gemm(dt, b'T', b'N', k, rows, n, W, n, D, n, 0.0, DX, k)


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


cdef bint _all_finite(const real *a, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    cdef int bad = 0
    for i in range(n):
        bad |= not isfinite(a[i])
    return not bad


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


cdef void _sgd(real *p, const real *g, real *buf, Py_ssize_t n, double lr, double momentum,
               double wd, bint nesterov, bint first) noexcept nogil:
    """torch.optim.SGD (dampening 0): g += wd p; buf = g (first step) or momentum buf + g;
    g = g + momentum buf (nesterov) or buf; p -= lr g.  One branch-free loop per case, so
    the compiler vectorises each."""
    cdef Py_ssize_t i
    cdef double gi
    cdef real b
    if momentum == 0.0:
        if wd == 0.0:
            for i in range(n):
                p[i] = <real>(<double>p[i] - lr * <double>g[i])
        else:
            for i in range(n):
                p[i] = <real>(<double>p[i] - lr * (<double>g[i] + wd * <double>p[i]))
        return
    if first:
        for i in range(n):
            buf[i] = <real>(<double>g[i] + wd * <double>p[i])
    else:
        for i in range(n):
            buf[i] = <real>(momentum * <double>buf[i] + <double>g[i] + wd * <double>p[i])
    if nesterov:
        for i in range(n):
            p[i] = <real>(<double>p[i] - lr * (<double>g[i] + wd * <double>p[i]
                                                + momentum * <double>buf[i]))
    else:
        for i in range(n):
            p[i] = <real>(<double>p[i] - lr * <double>buf[i])


cdef void _adam(real *p, const real *g, real *m, real *v, Py_ssize_t n, double lr, double b1,
                double b2, double eps, double wd, bint decoupled, long long t) noexcept nogil:
    """torch.optim.Adam (L2: g += wd p) / AdamW (decoupled: p *= 1 - lr wd first); t >= 1.
    Branch-free so that it vectorises; m, v and the decayed p are rounded to the dtype where
    PyTorch stores them."""
    cdef Py_ssize_t i
    cdef double gi, pi, bc1 = 1.0 - b1 ** t, bc2s = sqrt(1.0 - b2 ** t)
    cdef double step = lr / bc1
    cdef double shrink = 1.0 - lr * wd if decoupled else 1.0
    cdef double l2 = 0.0 if decoupled else wd
    cdef real mi, vi
    for i in range(n):
        pi = <real>(<double>p[i] * shrink)
        gi = <double>g[i] + l2 * <double>p[i]
        mi = <real>(b1 * <double>m[i] + (1.0 - b1) * gi)
        vi = <real>(b2 * <double>v[i] + (1.0 - b2) * gi * gi)
        m[i] = mi
        v[i] = vi
        p[i] = <real>(pi - step * <double>mi / (sqrt(<double>vi) / bc2s + eps))


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
            ok = _all_finite(<const float *>p, n)
        else:
            ok = _all_finite(<const double *>p, n)
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


# ---- the MLP engine ---------------------------------------------------------------

cdef class Engine:
    """All the buffers and the native step of one MLP.

    theta and grad are flat arrays (the network's parameters and gradients,
    per layer W (n_in x n_out) then b (n_out)), owned by the Python object and
    kept alive here.  Activation buffers are sized for `capacity` rows;
    reserve() grows them (outside any step).
    """
    cdef int dt, L, loss, diag_ok, busy
    cdef Py_ssize_t isz, cap, maxw, n_params
    cdef cnp.ndarray sizes, acts, params, saves_in, thresholds, w_off, b_off
    cdef cnp.ndarray theta, grad, buf, gbuf, ones, scratch, rowloss, db, db2, alive, diag
    cdef cnp.ndarray a_off, z_off
    # raw pointers into the arrays above (set in __init__ and reserve), for the nogil code
    cdef char *p_theta
    cdef char *p_grad
    cdef char *p_buf
    cdef char *p_g
    cdef char *p_ones
    cdef char *p_scr
    cdef double *p_rowloss
    cdef double *p_db
    cdef double *p_db2
    cdef double *p_diag
    cdef double *p_prm
    cdef double *p_thr
    cdef int64_t *p_sizes
    cdef int64_t *p_woff
    cdef int64_t *p_boff
    cdef int64_t *p_aoff
    cdef int64_t *p_zoff
    cdef int *p_acts
    cdef unsigned char *p_alive

    def __init__(self, int dtype_code, sizes, acts, params, saves_in, thresholds, int loss,
                 cnp.ndarray theta, cnp.ndarray grad):
        self.dt = dtype_code
        self.isz = 4 if dtype_code == FA_F32 else 8
        self.sizes = np.ascontiguousarray(sizes, dtype=np.int64)
        self.L = len(self.sizes) - 1
        self.acts = np.ascontiguousarray(acts, dtype=np.int32)
        self.params = np.ascontiguousarray(params, dtype=np.float64).reshape(self.L, 4)
        self.saves_in = np.ascontiguousarray(saves_in, dtype=np.int32)
        self.thresholds = np.ascontiguousarray(thresholds, dtype=np.float64)
        self.loss = loss
        self.theta = theta
        self.grad = grad
        self.n_params = theta.shape[0]
        w_off, b_off, o = [], [], 0
        for l in range(self.L):
            w_off.append(o)
            o += int(self.sizes[l]) * int(self.sizes[l + 1])
            b_off.append(o)
            o += int(self.sizes[l + 1])
        assert o == self.n_params
        self.w_off = np.array(w_off, dtype=np.int64)
        self.b_off = np.array(b_off, dtype=np.int64)
        self.maxw = int(self.sizes[1:].max())      # widest layer output (dx of layer 0 is never formed)
        self.cap = 0
        self.diag = np.zeros((self.L, N_DIAG), np.float64)
        self.diag_ok = 0
        self.db = np.zeros(self.maxw, np.float64)
        self.db2 = np.zeros(self.maxw, np.float64)
        self.alive = np.zeros(self.maxw, np.uint8)
        self.p_theta = <char *>cnp.PyArray_DATA(self.theta)
        self.p_grad = <char *>cnp.PyArray_DATA(self.grad)
        self.p_db = <double *>cnp.PyArray_DATA(self.db)
        self.p_db2 = <double *>cnp.PyArray_DATA(self.db2)
        self.p_diag = <double *>cnp.PyArray_DATA(self.diag)
        self.p_prm = <double *>cnp.PyArray_DATA(self.params)
        self.p_thr = <double *>cnp.PyArray_DATA(self.thresholds)
        self.p_sizes = <int64_t *>cnp.PyArray_DATA(self.sizes)
        self.p_woff = <int64_t *>cnp.PyArray_DATA(self.w_off)
        self.p_boff = <int64_t *>cnp.PyArray_DATA(self.b_off)
        self.p_acts = <int *>cnp.PyArray_DATA(self.acts)
        self.p_alive = <unsigned char *>cnp.PyArray_DATA(self.alive)
        self.reserve(1)

    @property
    def capacity(self):
        return self.cap

    @property
    def diagnostics(self):
        return self.diag.copy() if self.diag_ok else None

    cdef int _enter(self, Py_ssize_t rows) except -1:
        """Claim the engine for one call (with the GIL held, so the check is atomic)."""
        if self.busy:
            raise RuntimeError(
                "this network is already running a step, forward or evaluation in another "
                "thread; an MLP is not shareable between threads: give each thread its own "
                "network (or copy.deepcopy it).")
        if rows > self.cap:
            raise ValueError(f"{rows} rows exceed the engine's capacity {self.cap}; call "
                             "reserve(rows) first.")
        self.busy = 1
        return 0

    def reserve(self, Py_ssize_t rows):
        """Size the per-row buffers for batches of up to `rows` rows."""
        if rows <= self.cap:
            return
        self._enter(0)          # the engine is ours while the old buffers are replaced
        try:
            self._grow(rows)
        finally:
            self.busy = 0

    cdef _grow(self, Py_ssize_t rows):
        dtype = np.float32 if self.dt == FA_F32 else np.float64
        a_off, z_off, o = [], [], 0
        for l in range(self.L):
            n = int(self.sizes[l + 1])
            a_off.append(o)
            o += rows * n
            if self.saves_in[l]:
                z_off.append(o)
                o += rows * n
            else:
                z_off.append(-1)
        self.a_off = np.array(a_off, dtype=np.int64)
        self.z_off = np.array(z_off, dtype=np.int64)
        self.buf = np.empty(o, dtype)
        self.gbuf = np.empty(2 * rows * self.maxw, dtype)
        self.ones = np.ones(rows * self.maxw, dtype)
        self.scratch = np.empty(rows * self.maxw, dtype)
        self.rowloss = np.empty(rows, np.float64)
        self.p_aoff = <int64_t *>cnp.PyArray_DATA(self.a_off)
        self.p_zoff = <int64_t *>cnp.PyArray_DATA(self.z_off)
        self.p_buf = <char *>cnp.PyArray_DATA(self.buf)
        self.p_g = <char *>cnp.PyArray_DATA(self.gbuf)
        self.p_ones = <char *>cnp.PyArray_DATA(self.ones)
        self.p_scr = <char *>cnp.PyArray_DATA(self.scratch)
        self.p_rowloss = <double *>cnp.PyArray_DATA(self.rowloss)
        self.cap = rows

    cdef char *_A(self, int l, const char *X) noexcept nogil:
        """the input of layer l (X for l = 0), i.e. the output of layer l - 1"""
        if l == 0:
            return <char *>X
        return self.p_buf + self.p_aoff[l - 1] * self.isz

    cdef void _forward(self, const char *X, Py_ssize_t rows) noexcept nogil:
        cdef int l, k, n
        cdef char *theta = self.p_theta
        cdef char *buf = self.p_buf
        cdef int64_t *sizes = self.p_sizes
        cdef int64_t *w_off = self.p_woff
        cdef int64_t *b_off = self.p_boff
        cdef int64_t *z_off = self.p_zoff
        cdef int *acts = self.p_acts
        cdef double *prm = self.p_prm
        cdef fa_params p
        cdef char *z
        cdef char *y
        for l in range(self.L):
            k = <int>sizes[l]
            n = <int>sizes[l + 1]
            y = self._A(l + 1, X)
            z = buf + z_off[l] * self.isz if z_off[l] >= 0 else y
            mm_nn(self.dt, self.isz, self._A(l, X), theta + w_off[l] * self.isz, z,
                  <int>rows, k, n)
            p.a, p.b, p.c, p.d = prm[4 * l], prm[4 * l + 1], prm[4 * l + 2], prm[4 * l + 3]
            K.bias_fwd(acts[l], self.dt, z, theta + b_off[l] * self.isz, y, rows, n, &p)

    cdef double _loss(self, const char *out, Py_ssize_t rows, const int64_t *labels,
                      const char *target, char *g) noexcept nogil:
        """the loss of the network's output `out` (rows x C) and its gradient into g"""
        cdef Py_ssize_t C = self.p_sizes[self.L], r, n = rows * C
        cdef double s = 0.0
        cdef double *rl = self.p_rowloss
        if self.loss == LOSS_XENT:
            K.softmax_xent(self.dt, out, labels, NULL, g, rl, rows, C, 1.0 / rows)
            for r in range(rows):
                s += rl[r]
            return s / rows
        if self.dt == FA_F32:
            if self.loss == LOSS_MSE:
                return _mse(<const float *>out, <const float *>target, <float *>g, n)
            return _bce(<const float *>out, <const float *>target, <float *>g, n)
        if self.loss == LOSS_MSE:
            return _mse(<const double *>out, <const double *>target, <double *>g, n)
        return _bce(<const double *>out, <const double *>target, <double *>g, n)

    cdef void _backward(self, const char *X, Py_ssize_t rows, char *g0, bint diag) noexcept nogil:
        """back-propagate the output gradient in g0 through every layer into self.grad"""
        cdef int l, k, n
        cdef char *theta = self.p_theta
        cdef char *grad = self.p_grad
        cdef char *buf = self.p_buf
        cdef char *g1 = self.p_g
        cdef char *tmp
        cdef char *s
        cdef const char *bsave
        cdef int64_t *sizes = self.p_sizes
        cdef int64_t *w_off = self.p_woff
        cdef int64_t *b_off = self.p_boff
        cdef int64_t *z_off = self.p_zoff
        cdef int *acts = self.p_acts
        cdef double *prm = self.p_prm
        cdef double *db = self.p_db
        cdef double *db2 = self.p_db2
        cdef double *thr = self.p_thr
        cdef double *dg = self.p_diag
        cdef char *ones = self.p_ones
        cdef char *scr = self.p_scr
        cdef unsigned char *alive = self.p_alive
        cdef fa_params p
        if g0 == g1:                       # ping-pong between the two halves of gbuf
            g1 = g1 + self.cap * self.maxw * self.isz
        for l in range(self.L - 1, -1, -1):
            k = <int>sizes[l]
            n = <int>sizes[l + 1]
            p.a, p.b, p.c, p.d = prm[4 * l], prm[4 * l + 1], prm[4 * l + 2], prm[4 * l + 3]
            if z_off[l] >= 0:
                s = buf + z_off[l] * self.isz
                bsave = theta + b_off[l] * self.isz
            else:
                s = self._A(l + 1, X)
                bsave = NULL
            memset(db, 0, <size_t>n * sizeof(double))
            K.bias_bwd(acts[l], self.dt, g0, s, bsave, g0, db, rows, n, &p)   # g0 := dz
            from_double(self.dt, grad + b_off[l] * self.isz, db, n)
            mm_tn(self.dt, self.isz, self._A(l, X), g0, grad + w_off[l] * self.isz,
                  <int>rows, k, n)
            if diag:
                dg[l * N_DIAG + 0] = sqrt(sumsq(self.dt, grad + w_off[l] * self.isz, <Py_ssize_t>k * n))
                dg[l * N_DIAG + 1] = sqrt(sumsq(self.dt, grad + b_off[l] * self.isz, n))
                dg[l * N_DIAG + 2] = sqrt(sumsq(self.dt, g0, rows * n))
                memset(db2, 0, <size_t>n * sizeof(double))
                K.bias_bwd(acts[l], self.dt, ones, s, bsave, scr, db2, rows, n, &p)   # f'(z)
                if self.dt == FA_F32:
                    _moments(<const float *>self._A(l + 1, X), rows * n, &dg[l * N_DIAG + 3],
                             &dg[l * N_DIAG + 4])
                    dg[l * N_DIAG + 5] = _small_fraction(<const float *>scr, rows * n, thr[l])
                    dg[l * N_DIAG + 6] = _dead_fraction(<const float *>g0, rows, n, alive)
                else:
                    _moments(<const double *>self._A(l + 1, X), rows * n, &dg[l * N_DIAG + 3],
                             &dg[l * N_DIAG + 4])
                    dg[l * N_DIAG + 5] = _small_fraction(<const double *>scr, rows * n, thr[l])
                    dg[l * N_DIAG + 6] = _dead_fraction(<const double *>g0, rows, n, alive)
            if l > 0:
                mm_nt(self.dt, self.isz, g0, theta + w_off[l] * self.isz, g1, <int>rows, k, n)
                tmp = g0
                g0 = g1
                g1 = tmp

    cdef double _update(self, int opt, const double *h, char *s1, char *s2,
                        long long t) noexcept nogil:
        """clip (h[5] > 0: max global norm) and apply the optimizer; returns the grad norm"""
        cdef char *theta = self.p_theta
        cdef char *grad = self.p_grad
        cdef Py_ssize_t n = self.n_params
        cdef double norm = -1.0, coef
        if h[5] > 0:
            norm = sqrt(sumsq(self.dt, grad, n))
            coef = h[5] / (norm + 1e-6)
            if coef < 1.0:
                scale(self.dt, grad, n, coef)
        if opt == OPT_SGD:
            # h: lr, momentum, weight_decay, nesterov, -, max_norm
            if self.dt == FA_F32:
                _sgd(<float *>theta, <const float *>grad, <float *>s1, n, h[0], h[1], h[2],
                     h[3] != 0, t == 1)
            else:
                _sgd(<double *>theta, <const double *>grad, <double *>s1, n, h[0], h[1], h[2],
                     h[3] != 0, t == 1)
        elif opt == OPT_ADAM or opt == OPT_ADAMW:
            # h: lr, beta1, beta2, eps, weight_decay, max_norm
            if self.dt == FA_F32:
                _adam(<float *>theta, <const float *>grad, <float *>s1, <float *>s2, n, h[0],
                      h[1], h[2], h[3], h[4], opt == OPT_ADAMW, t)
            else:
                _adam(<double *>theta, <const double *>grad, <double *>s1, <double *>s2, n,
                      h[0], h[1], h[2], h[3], h[4], opt == OPT_ADAMW, t)
        return norm

    def step(self, cnp.ndarray X, object labels, object target, bint diag, int opt=OPT_NONE,
             cnp.ndarray hyper=None, cnp.ndarray state1=None, cnp.ndarray state2=None,
             long long t=0):
        """Forward, loss, backward (into grad) and, with opt != OPT_NONE, the optimizer
        update, for one batch X (rows <= capacity).  Returns the loss."""
        cdef Py_ssize_t rows = cnp.PyArray_DIM(X, 0)
        cdef const char *xp = <const char *>cnp.PyArray_DATA(X)
        cdef const int64_t *lp = NULL if labels is None else <const int64_t *>cnp.PyArray_DATA(<cnp.ndarray>labels)
        cdef const char *tp = NULL if target is None else <const char *>cnp.PyArray_DATA(<cnp.ndarray>target)
        cdef const double *h = NULL if hyper is None else <const double *>cnp.PyArray_DATA(hyper)
        cdef char *s1 = NULL if state1 is None else <char *>cnp.PyArray_DATA(state1)
        cdef char *s2 = NULL if state2 is None else <char *>cnp.PyArray_DATA(state2)
        cdef char *g0 = self.p_g
        cdef double loss
        cdef int flags = K.fp_flags()
        self._enter(rows)
        with nogil:
            self._forward(xp, rows)
            loss = self._loss(self._A(self.L, xp), rows, lp, tp, g0)
            self._backward(xp, rows, g0, diag)
            if opt != OPT_NONE:
                self._update(opt, h, s1, s2, t)
            K.fp_restore(flags)
        self.busy = 0
        if diag:
            self.diag_ok = 1
        return loss

    def gemms_only(self, cnp.ndarray X):
        """Only the matrix products of one step on X (for the benchmarks: the limit of a
        step with this BLAS).  Leaves the buffers and grad with meaningless values."""
        cdef Py_ssize_t rows = cnp.PyArray_DIM(X, 0)
        cdef const char *xp = <const char *>cnp.PyArray_DATA(X)
        cdef int l, k, n
        cdef char *g0 = self.p_g
        cdef char *g1 = self.p_g + self.cap * self.maxw * self.isz
        cdef char *tmp
        self._enter(rows)
        with nogil:
            for l in range(self.L):
                mm_nn(self.dt, self.isz, self._A(l, xp), self.p_theta + self.p_woff[l] * self.isz,
                      self._A(l + 1, xp), <int>rows, <int>self.p_sizes[l], <int>self.p_sizes[l + 1])
            for l in range(self.L - 1, -1, -1):
                k = <int>self.p_sizes[l]
                n = <int>self.p_sizes[l + 1]
                mm_tn(self.dt, self.isz, self._A(l, xp), g0, self.p_grad + self.p_woff[l] * self.isz,
                      <int>rows, k, n)
                if l > 0:
                    mm_nt(self.dt, self.isz, g0, self.p_theta + self.p_woff[l] * self.isz, g1,
                          <int>rows, k, n)
                    tmp = g0
                    g0 = g1
                    g1 = tmp
        self.busy = 0

    def output(self, Py_ssize_t rows):
        """A view of the last layer's output buffer for the last `rows`-row batch."""
        cdef Py_ssize_t C = self.p_sizes[self.L], o = self.p_aoff[self.L - 1]
        return self.buf[o:o + rows * C].reshape(rows, C)

    def forward(self, cnp.ndarray X, cnp.ndarray out):
        """out = the network's output (before the loss's link) for X, in blocks of
        `capacity` rows."""
        cdef Py_ssize_t rows = cnp.PyArray_DIM(X, 0), r0, nr
        cdef Py_ssize_t k = self.sizes[0], C = self.sizes[self.L]
        cdef const char *xp = <const char *>cnp.PyArray_DATA(X)
        cdef char *op = <char *>cnp.PyArray_DATA(out)
        cdef int flags = K.fp_flags()
        self._enter(0)
        with nogil:
            r0 = 0
            while r0 < rows:
                nr = rows - r0 if rows - r0 < self.cap else self.cap
                self._forward(xp + r0 * k * self.isz, nr)
                memcpy(op + r0 * C * self.isz, self._A(self.L, xp + r0 * k * self.isz),
                       <size_t>(nr * C * self.isz))
                r0 += nr
            K.fp_restore(flags)
        self.busy = 0

    def loss_of(self, cnp.ndarray X, object labels, object target):
        """the loss over X (in blocks of `capacity` rows; the gradient buffers are scratch)"""
        cdef Py_ssize_t rows = cnp.PyArray_DIM(X, 0), r0, nr
        cdef Py_ssize_t k = self.sizes[0], C = self.sizes[self.L]
        cdef const char *xp = <const char *>cnp.PyArray_DATA(X)
        cdef const int64_t *lp = NULL if labels is None else <const int64_t *>cnp.PyArray_DATA(<cnp.ndarray>labels)
        cdef const char *tp = NULL if target is None else <const char *>cnp.PyArray_DATA(<cnp.ndarray>target)
        cdef char *g0 = self.p_g
        cdef double total = 0.0
        cdef int flags = K.fp_flags()
        self._enter(0)
        with nogil:
            r0 = 0
            while r0 < rows:
                nr = rows - r0 if rows - r0 < self.cap else self.cap
                self._forward(xp + r0 * k * self.isz, nr)
                total += nr * self._loss(self._A(self.L, xp + r0 * k * self.isz), nr,
                                         lp + r0 if lp != NULL else NULL,
                                         tp + r0 * C * self.isz if tp != NULL else NULL, g0)
                r0 += nr
            K.fp_restore(flags)
        self.busy = 0
        return total / rows if rows else 0.0
