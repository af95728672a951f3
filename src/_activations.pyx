# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Native entry points of fastact (the `def` layer of DESIGN.md section 2).

The Python layer (fastact/activations.py) has already validated every
argument: arrays are contiguous with the same layout, of one dtype (float32
or float64), outputs are allocated, shapes agree, n_threads >= 1.  Here we
only pick the dtype, split the work into parts, release the GIL and call the
C kernels (fa_kernels.h).  Nothing here loops over elements.

Threads: a call runs serially below SERIAL_BELOW elements; above, the work
is cut into at most n_threads contiguous parts (OpenMP prange).  Elementwise
results do not depend on the cut.  Reductions (bias and slope gradients)
are summed in fixed blocks of rows whose size depends only on the shape,
then added in block order, so they are bit-identical for any thread count.
"""
cimport numpy as cnp
from cython.parallel cimport prange
from libc.stdint cimport int64_t
from libc.stdlib cimport malloc, free

cnp.import_array()

cdef extern from "numpy/arrayobject.h":
    object PyArray_NewLikeArray(cnp.ndarray prototype, cnp.NPY_ORDER order,
                                cnp.PyArray_Descr *descr, int subok)

cdef extern from "fa_kernels.h" nogil:
    ctypedef struct fa_params:
        double a
        double b
        double c
        double d
    int FA_N_ACT
    int FA_F32
    int FA_F64
    int FA_ISA_BASELINE
    int FA_ISA_AVX2
    int FA_ISA_AVX512
    const char *fa_act_name(int act)
    void fa_fwd(int act, int dtype, const void *x, void *y, Py_ssize_t n, const fa_params *p)
    void fa_bwd(int act, int dtype, const void *g, const void *s, void *out, Py_ssize_t n,
                const fa_params *p)
    void fa_bias_fwd(int act, int dtype, const void *z, const void *b, void *y, Py_ssize_t rows,
                     Py_ssize_t cols, const fa_params *p)
    void fa_bias_bwd(int act, int dtype, const void *g, const void *s, const void *b, void *dz,
                     double *db, Py_ssize_t rows, Py_ssize_t cols, const fa_params *p)
    void fa_prelu_fwd(int dtype, const void *x, const void *w, void *y, Py_ssize_t rows,
                      Py_ssize_t cols)
    void fa_prelu_bwd(int dtype, const void *g, const void *x, const void *w, void *gx,
                      double *gw, Py_ssize_t rows, Py_ssize_t cols)
    void fa_softmax_fwd(int dtype, int log_, const void *x, void *y, Py_ssize_t rows,
                        Py_ssize_t cols)
    void fa_softmax_bwd(int dtype, int log_, const void *g, const void *y, void *gx,
                        Py_ssize_t rows, Py_ssize_t cols)
    void fa_softmax_xent(int dtype, const void *x, const int64_t *labels, const void *target,
                         void *grad, double *loss, Py_ssize_t rows, Py_ssize_t cols,
                         double scale)
    int fa_fp_flags()
    void fa_fp_restore(int flags)
    void fa_bias_fwd_d(int act, int dtype, const void *z, const void *b, void *y, void *d,
                       Py_ssize_t rows, Py_ssize_t cols, const fa_params *p)
    int fa_bias_fwd_d_fused(int act, int dtype)
    int fa_cpu_has_avx2_fma()
    int fa_cpu_has_avx512()
    int fa_avx2_compiled()
    int fa_get_isa()
    int fa_set_isa(int isa)
    int fa_pick_isa(int isa, int has_avx2_fma, int has_avx512)

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    static int fa_openmp_enabled(void) { return 1; }
    /* what a parallel region may get: omp_get_max_threads(), at most the thread limit
       (OMP_THREAD_LIMIT), which omp_get_max_threads() does not apply */
    static int fa_omp_max_threads(void) {
        int n = omp_get_max_threads(), lim = omp_get_thread_limit();
        return lim > 0 && lim < n ? lim : n;
    }
    static int fa_omp_thread_limit(void) { return omp_get_thread_limit(); }
    #else
    static int fa_openmp_enabled(void) { return 0; }
    static int fa_omp_max_threads(void) { return 1; }
    static int fa_omp_thread_limit(void) { return 0; }   /* no OpenMP: no limit to apply */
    #endif
    #if defined(_OPENMP) && !defined(_WIN32)
    #include <dlfcn.h>
    /* the file of the OpenMP runtime this extension's calls resolve to (what
       threadpoolctl must find and limit), or NULL */
    static const char *fa_omp_library(void) {
        Dl_info info;
        void *sym = (void *)&omp_get_max_threads;
        if (dladdr(sym, &info) && info.dli_fname) return info.dli_fname;
        return NULL;
    }
    #else
    static const char *fa_omp_library(void) { return NULL; }
    #endif
    """
    int fa_openmp_enabled() nogil
    int fa_omp_max_threads() nogil
    int fa_omp_thread_limit() nogil
    const char *fa_omp_library() nogil

cdef extern from *:
    """
    #ifndef FA_BUILD_FLAGS
    #define FA_BUILD_FLAGS "unknown"
    #endif
    #if defined(__clang__)
    #define FA_COMPILER "clang " __clang_version__
    #elif defined(__GNUC__)
    #define FA_COMPILER "gcc " __VERSION__
    #else
    #define FA_COMPILER "unknown compiler"
    #endif
    static const char *fa_build_flags(void) { return FA_BUILD_FLAGS; }
    static const char *fa_compiler(void) { return FA_COMPILER; }
    """
    const char *fa_build_flags()
    const char *fa_compiler()

# Below this many elements a call runs on the calling thread only: an OpenMP
# parallel region costs 1-2 us, which two threads win back from ~30k elements
# on the machines we measured (DESIGN.md section 7).  Tuned by benches, not at
# run time.
SERIAL_BELOW = 65536
cdef Py_ssize_t _SERIAL_BELOW = SERIAL_BELOW
# parts start on multiples of this many elements (64 bytes of float32)
cdef Py_ssize_t _ALIGN = 16
# rows of one reduction block hold about this many elements
cdef Py_ssize_t _BLOCK_ELEMS = 16384

N_ACT = FA_N_ACT
ACT_IDS = {fa_act_name(i).decode(): i for i in range(FA_N_ACT)}
# the kernel table for the package's other extension modules (src/fa_api.h)
cdef extern from "fa_api.h":
    ctypedef struct fa_api_t:
        pass
    const fa_api_t *fa_api()
    const char *FA_API_CAPSULE

from cpython.pycapsule cimport PyCapsule_New
C_API = PyCapsule_New(<void *>fa_api(), FA_API_CAPSULE, NULL)

ISA_NAMES = {FA_ISA_BASELINE: "baseline", FA_ISA_AVX2: "avx2+fma", FA_ISA_AVX512: "avx512"}
_ISA_CAPS = {"baseline": FA_ISA_BASELINE, "avx2": FA_ISA_AVX2, "avx512": FA_ISA_AVX512}


def build_info():
    return {"compiler": fa_compiler().decode(), "flags": fa_build_flags().decode(),
            "openmp": bool(fa_openmp_enabled()), "avx2_variant": bool(fa_avx2_compiled())}


def openmp_enabled():
    return bool(fa_openmp_enabled())


def omp_max_threads():
    """omp_get_max_threads() of the calling thread, now, at most omp_get_thread_limit()
    (OMP_THREAD_LIMIT); 1 without OpenMP."""
    return fa_omp_max_threads()


def omp_thread_limit():
    """omp_get_thread_limit() (OMP_THREAD_LIMIT; a huge number without one), 0 without
    OpenMP (no limit: every call runs on one thread anyway)."""
    return fa_omp_thread_limit()


def omp_library():
    """Path of the OpenMP runtime library the kernels use, or None (no OpenMP)."""
    cdef const char *p = fa_omp_library()
    return None if p == NULL else p.decode()


def cpu_has_avx2_fma():
    return bool(fa_cpu_has_avx2_fma())


def cpu_has_avx512():
    return bool(fa_cpu_has_avx512())


def avx2_compiled():
    return bool(fa_avx2_compiled())


def get_isa():
    return ISA_NAMES[fa_get_isa()]


def pick_isa(str cap, bint has_avx2_fma, bint has_avx512):
    """The loops set_isa(cap) would choose on a CPU with these features (no cpuid: what a
    CPU without AVX2 runs, asked on any machine)."""
    return ISA_NAMES[fa_pick_isa(_ISA_CAPS[cap], has_avx2_fma, has_avx512)]


def set_isa(str cap):
    """Use the best loops not above `cap` ("avx512", "avx2" or "baseline") this CPU runs."""
    fa_set_isa(_ISA_CAPS[cap])
    return get_isa()


cdef inline int _dtype(cnp.ndarray a):
    return FA_F32 if cnp.PyArray_TYPE(a) == cnp.NPY_FLOAT32 else FA_F64


cdef inline char *_ptr(cnp.ndarray a):
    return <char *>cnp.PyArray_DATA(a)


cdef inline Py_ssize_t _parts(Py_ssize_t n, int n_threads) noexcept nogil:
    """How many parts to cut n elements into."""
    if n_threads <= 1 or n < _SERIAL_BELOW:
        return 1
    cdef Py_ssize_t most = n // (_SERIAL_BELOW // 2)
    return n_threads if n_threads < most else most


cdef inline Py_ssize_t _part_len(Py_ssize_t n, Py_ssize_t parts) noexcept nogil:
    cdef Py_ssize_t m = (n + parts - 1) // parts
    return (m + _ALIGN - 1) // _ALIGN * _ALIGN


cdef inline fa_params _params(double a, double b, double c, double d) noexcept nogil:
    cdef fa_params p
    p.a = a
    p.b = b
    p.c = c
    p.d = d
    return p


cdef int _forward(int act, cnp.ndarray x, cnp.ndarray y, fa_params p, int n_threads) except -1:
    cdef int dt = _dtype(x)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(x), isz = cnp.PyArray_ITEMSIZE(x)
    cdef char *xp = _ptr(x)
    cdef char *yp = _ptr(y)
    cdef Py_ssize_t parts = _parts(n, n_threads), m, k, start, cnt
    cdef int flags = fa_fp_flags()
    with nogil:
        if parts == 1:
            fa_fwd(act, dt, xp, yp, n, &p)
        else:
            m = _part_len(n, parts)
            for k in prange(parts, num_threads=parts, schedule="static"):
                start = k * m
                cnt = n - start if n - start < m else m
                if cnt > 0:
                    fa_fwd(act, dt, xp + start * isz, yp + start * isz, cnt, &p)
        fa_fp_restore(flags)
    return 0


def forward(int act, cnp.ndarray x, cnp.ndarray y, double a, double b, double c, double d,
            int n_threads):
    """y = f(x), elementwise."""
    _forward(act, x, y, _params(a, b, c, d), n_threads)


cdef int _backward(int act, cnp.ndarray g, cnp.ndarray s, cnp.ndarray out, fa_params p,
                   int n_threads) except -1:
    cdef int dt = _dtype(g)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(g), isz = cnp.PyArray_ITEMSIZE(g)
    cdef char *gp = _ptr(g)
    cdef char *sp = _ptr(s)
    cdef char *op = _ptr(out)
    cdef Py_ssize_t parts = _parts(n, n_threads), m, k, start, cnt
    cdef int flags = fa_fp_flags()
    with nogil:
        if parts == 1:
            fa_bwd(act, dt, gp, sp, op, n, &p)
        else:
            m = _part_len(n, parts)
            for k in prange(parts, num_threads=parts, schedule="static"):
                start = k * m
                cnt = n - start if n - start < m else m
                if cnt > 0:
                    fa_bwd(act, dt, gp + start * isz, sp + start * isz, op + start * isz,
                           cnt, &p)
        fa_fp_restore(flags)
    return 0


def backward(int act, cnp.ndarray g, cnp.ndarray s, cnp.ndarray out, double a, double b,
             double c, double d, int n_threads):
    """out = g * f'(s), elementwise."""
    _backward(act, g, s, out, _params(a, b, c, d), n_threads)


# ---- fast paths: the common call decided in C, else None (the caller then
# runs the full Python plumbing, which also produces every error message) ----

cdef int _default_threads = 0     # > 0: pinned by set_num_threads; 0: follow OpenMP
cdef int _max_threads = 1


def set_default_threads(int n, int cap):
    """The pinned default n_threads (0: none; each call then uses min(cap,
    omp_get_max_threads())) and the largest count the fast path passes through
    (cap = the usable cores; the Python layer clamps larger ones)."""
    global _default_threads, _max_threads
    _default_threads = n
    _max_threads = cap


cdef inline int _threads(object n_threads):
    """n_threads for the fast path, or 0 when the Python layer must decide."""
    cdef int m
    if n_threads is None:
        if _default_threads > 0:
            return _default_threads
        # read per call (a thread-local load in libgomp), so OMP_NUM_THREADS and
        # threadpoolctl.threadpool_limits(user_api="openmp") apply
        m = fa_omp_max_threads()
        if m > _max_threads:
            return _max_threads
        return m if m > 0 else 1
    if type(n_threads) is int and 0 < n_threads <= _max_threads:   # Python comparisons
        return <int>n_threads
    return 0


def default_threads():
    """What a call with n_threads=None uses on the fast path, now."""
    return _threads(None)


cdef inline bint _simple(object a):
    """An aligned, native-byte-order, C- or Fortran-contiguous float32/float64 ndarray
    (not a subclass)."""
    if type(a) is not cnp.ndarray:
        return False
    cdef cnp.ndarray arr = <cnp.ndarray>a
    cdef int t = cnp.PyArray_TYPE(arr)
    return ((t == cnp.NPY_FLOAT32 or t == cnp.NPY_FLOAT64)
            and cnp.PyArray_ISALIGNED(arr) and cnp.PyArray_ISNOTSWAPPED(arr)
            and (cnp.PyArray_IS_C_CONTIGUOUS(arr) or cnp.PyArray_IS_F_CONTIGUOUS(arr)))


cdef inline bint _same_layout(cnp.ndarray a, cnp.ndarray b):
    cdef int nd = cnp.PyArray_NDIM(a), i
    if nd != cnp.PyArray_NDIM(b) or cnp.PyArray_TYPE(a) != cnp.PyArray_TYPE(b):
        return False
    for i in range(nd):
        if cnp.PyArray_DIM(a, i) != cnp.PyArray_DIM(b, i):
            return False
        if cnp.PyArray_DIM(a, i) > 1 and cnp.PyArray_STRIDE(a, i) != cnp.PyArray_STRIDE(b, i):
            return False
    return True


cdef inline bint _disjoint_or_same(cnp.ndarray o, cnp.ndarray a):
    """o and a share no byte, or are the very same elements (same data, same layout)."""
    cdef char *o0 = _ptr(o)
    cdef char *a0 = _ptr(a)
    cdef Py_ssize_t nb = cnp.PyArray_NBYTES(o), na = cnp.PyArray_NBYTES(a)
    if o0 == a0:
        return True              # layouts already checked equal by the caller
    return o0 + nb <= a0 or a0 + na <= o0


cdef inline object _fast_out(object out, cnp.ndarray like):
    """The output array for a fast call, or None if out= needs the Python layer."""
    if out is None:
        return PyArray_NewLikeArray(like, cnp.NPY_KEEPORDER, NULL, 0)
    if type(out) is not cnp.ndarray:
        return None
    cdef cnp.ndarray o = <cnp.ndarray>out
    if (not cnp.PyArray_ISWRITEABLE(o) or not cnp.PyArray_ISALIGNED(o)
            or not cnp.PyArray_ISNOTSWAPPED(o) or not _same_layout(o, like)):
        return None
    return o


def fast_forward(int act, object x, object out, object n_threads, double a, double b, double c,
                 double d):
    """forward() for the common call, or None."""
    if not _simple(x):
        return None
    cdef int nt = _threads(n_threads)
    if nt == 0:
        return None
    cdef cnp.ndarray xa = <cnp.ndarray>x
    y = _fast_out(out, xa)
    if y is None or not _disjoint_or_same(<cnp.ndarray>y, xa):
        return None
    _forward(act, xa, <cnp.ndarray>y, _params(a, b, c, d), nt)
    return y


def fast_backward(int act, object g, object s, object out, object n_threads, double a,
                  double b, double c, double d):
    """backward() for the common call, or None."""
    if not _simple(g) or not _simple(s):
        return None
    cdef int nt = _threads(n_threads)
    if nt == 0:
        return None
    cdef cnp.ndarray ga = <cnp.ndarray>g
    cdef cnp.ndarray sa = <cnp.ndarray>s
    if not _same_layout(ga, sa):
        return None
    o = _fast_out(out, ga)
    if o is None or not _disjoint_or_same(<cnp.ndarray>o, ga) \
            or not _disjoint_or_same(<cnp.ndarray>o, sa):
        return None
    _backward(act, ga, sa, <cnp.ndarray>o, _params(a, b, c, d), nt)
    return o


# ---- the whole elementwise call, entered straight from fastact/_api.py ----------
# (no Python frame between the public function and the kernel: ~0.05 us of a ~0.2 us
# call on a small array).  The fallbacks run the full Python plumbing (fastact/_plumbing.py),
# which also produces every error message; fastact/activations.py registers them.

cdef object _slow_unary = None
cdef object _slow_binary = None
cdef tuple _NOP = (0.0, 0.0, 0.0, 0.0)


def set_fallbacks(unary_, binary_):
    global _slow_unary, _slow_binary
    _slow_unary = unary_
    _slow_binary = binary_


def unary(x, out, n_threads, kname, tuple p=_NOP):
    """fastact's forward call: the fast path, else the Python plumbing."""
    kid = ACT_IDS[kname]
    y = fast_forward(kid, x, out, n_threads, p[0], p[1], p[2], p[3])
    if y is None:
        return _slow_unary(x, out, n_threads, kname, p)
    return y


def binary(g, s, out, n_threads, kname, tuple p=_NOP):
    """fastact's backward call: the fast path, else the Python plumbing."""
    kid = ACT_IDS[kname]
    o = fast_backward(kid, g, s, out, n_threads, p[0], p[1], p[2], p[3])
    if o is None:
        return _slow_binary(g, s, out, n_threads, kname, p)
    return o


cdef inline Py_ssize_t _row_parts(Py_ssize_t rows, Py_ssize_t cols, int n_threads) noexcept nogil:
    if rows <= 1:
        return 1
    cdef Py_ssize_t parts = _parts(rows * cols, n_threads)
    return parts if parts < rows else rows


def bias_forward(int act, cnp.ndarray z, cnp.ndarray bias, cnp.ndarray y, Py_ssize_t rows,
                 Py_ssize_t cols, double a, double b, double c, double d, int n_threads):
    """y[r, j] = f(z[r, j] + bias[j])."""
    cdef fa_params p = _params(a, b, c, d)
    cdef int dt = _dtype(z)
    cdef Py_ssize_t isz = cnp.PyArray_ITEMSIZE(z)
    cdef char *zp = _ptr(z)
    cdef char *bp = _ptr(bias)
    cdef char *yp = _ptr(y)
    cdef Py_ssize_t parts = _row_parts(rows, cols, n_threads), m, k, r0, nr
    cdef int flags = fa_fp_flags()
    with nogil:
        if parts == 1:
            fa_bias_fwd(act, dt, zp, bp, yp, rows, cols, &p)
        else:
            m = (rows + parts - 1) // parts
            for k in prange(parts, num_threads=parts, schedule="static"):
                r0 = k * m
                nr = rows - r0 if rows - r0 < m else m
                if nr > 0:
                    fa_bias_fwd(act, dt, zp + r0 * cols * isz, bp, yp + r0 * cols * isz,
                                nr, cols, &p)
        fa_fp_restore(flags)


def _bias_forward_d(int act, cnp.ndarray z, object bias, cnp.ndarray y, cnp.ndarray d,
                    Py_ssize_t rows, Py_ssize_t cols, double a, double b, double c, double d_):
    """For the tests: y = f(z + bias), d = f'(z + bias) as the network engine keeps them (d
    may be z; bias None: none; f input-saving).  Returns whether a fused loop ran."""
    cdef fa_params p = _params(a, b, c, d_)
    cdef int dt = _dtype(z)
    cdef char *bp = NULL if bias is None else _ptr(<cnp.ndarray>bias)
    cdef char *zp = _ptr(z)
    cdef char *yp = _ptr(y)
    cdef char *dp = _ptr(d)
    cdef int flags = fa_fp_flags()
    cdef int fused = fa_bias_fwd_d_fused(act, dt)
    with nogil:
        fa_bias_fwd_d(act, dt, zp, bp, yp, dp, rows, cols, &p)
        fa_fp_restore(flags)
    return bool(fused)


cdef inline Py_ssize_t _block_rows(Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    """Rows per reduction block: a function of the shape only (so the sums do not
    depend on the thread count), about _BLOCK_ELEMS elements, at most 64 blocks
    (so the double partial sums stay small next to the input)."""
    cdef Py_ssize_t br = _BLOCK_ELEMS // cols if cols > 0 else rows
    cdef Py_ssize_t at_most_64 = (rows + 63) // 64
    if br < at_most_64:
        br = at_most_64
    if br < 1:
        br = 1
    return br


cdef void _sum_blocks(double *partial, Py_ssize_t nblocks, Py_ssize_t cols,
                      double *total) noexcept nogil:
    cdef Py_ssize_t k, j
    for j in range(cols):
        total[j] = 0.0
    for k in range(nblocks):
        for j in range(cols):
            total[j] += partial[k * cols + j]


def bias_backward(int act, cnp.ndarray g, cnp.ndarray s, object bias, cnp.ndarray dz,
                  cnp.ndarray db, Py_ssize_t rows, Py_ssize_t cols, double a, double b,
                  double c, double d, int n_threads):
    """dz = g * f'(s (+ bias)), db[j] = sum_r dz[r, j] (float64 array db, overwritten).

    bias is None for activations that save their output."""
    cdef fa_params p = _params(a, b, c, d)
    cdef int dt = _dtype(g)
    cdef Py_ssize_t isz = cnp.PyArray_ITEMSIZE(g)
    cdef char *gp = _ptr(g)
    cdef char *sp = _ptr(s)
    cdef char *bp = NULL if bias is None else _ptr(<cnp.ndarray>bias)
    cdef char *dzp = _ptr(dz)
    cdef double *dbp = <double *>cnp.PyArray_DATA(db)
    cdef Py_ssize_t br = _block_rows(rows, cols)
    cdef Py_ssize_t nblocks = (rows + br - 1) // br if rows > 0 else 0
    cdef Py_ssize_t parts = _parts(rows * cols, n_threads), k, r0, nr, j, off
    cdef double *partial = NULL
    cdef int flags = fa_fp_flags()
    if nblocks > 1:
        partial = <double *>malloc(nblocks * cols * sizeof(double))
        if partial == NULL:
            raise MemoryError("no memory for the bias-gradient partial sums")
    with nogil:
        if nblocks <= 1:
            for j in range(cols):
                dbp[j] = 0.0
            fa_bias_bwd(act, dt, gp, sp, bp, dzp, dbp, rows, cols, &p)
        else:
            for k in prange(nblocks, num_threads=parts if parts < nblocks else nblocks,
                            schedule="static"):
                r0 = k * br
                nr = rows - r0 if rows - r0 < br else br
                off = r0 * cols * isz
                for j in range(cols):
                    partial[k * cols + j] = 0.0
                fa_bias_bwd(act, dt, gp + off, sp + off, bp, dzp + off, partial + k * cols,
                            nr, cols, &p)
            _sum_blocks(partial, nblocks, cols, dbp)
        fa_fp_restore(flags)
    free(partial)


def prelu_forward(cnp.ndarray x, cnp.ndarray w, cnp.ndarray y, Py_ssize_t rows, Py_ssize_t cols,
                  int n_threads):
    """y[r, j] = x > 0 ? x : w[j] x."""
    cdef int dt = _dtype(x)
    cdef Py_ssize_t isz = cnp.PyArray_ITEMSIZE(x)
    cdef char *xp = _ptr(x)
    cdef char *wp = _ptr(w)
    cdef char *yp = _ptr(y)
    cdef Py_ssize_t parts = _row_parts(rows, cols, n_threads), m, k, r0, nr
    cdef int flags = fa_fp_flags()
    with nogil:
        if parts == 1:
            fa_prelu_fwd(dt, xp, wp, yp, rows, cols)
        else:
            m = (rows + parts - 1) // parts
            for k in prange(parts, num_threads=parts, schedule="static"):
                r0 = k * m
                nr = rows - r0 if rows - r0 < m else m
                if nr > 0:
                    fa_prelu_fwd(dt, xp + r0 * cols * isz, wp, yp + r0 * cols * isz, nr, cols)
        fa_fp_restore(flags)


def prelu_backward(cnp.ndarray g, cnp.ndarray x, cnp.ndarray w, cnp.ndarray gx, cnp.ndarray gw,
                   Py_ssize_t rows, Py_ssize_t cols, int n_threads):
    """gx = g * (x > 0 ? 1 : w[j]); gw[j] = sum_r (x > 0 ? 0 : x g) (float64 gw, overwritten)."""
    cdef int dt = _dtype(g)
    cdef Py_ssize_t isz = cnp.PyArray_ITEMSIZE(g)
    cdef char *gp = _ptr(g)
    cdef char *xp = _ptr(x)
    cdef char *wp = _ptr(w)
    cdef char *gxp = _ptr(gx)
    cdef double *gwp = <double *>cnp.PyArray_DATA(gw)
    cdef Py_ssize_t br = _block_rows(rows, cols)
    cdef Py_ssize_t nblocks = (rows + br - 1) // br if rows > 0 else 0
    cdef Py_ssize_t parts = _parts(rows * cols, n_threads), k, r0, nr, j, off
    cdef double *partial = NULL
    cdef int flags = fa_fp_flags()
    if nblocks > 1:
        partial = <double *>malloc(nblocks * cols * sizeof(double))
        if partial == NULL:
            raise MemoryError("no memory for the slope-gradient partial sums")
    with nogil:
        if nblocks <= 1:
            for j in range(cols):
                gwp[j] = 0.0
            fa_prelu_bwd(dt, gp, xp, wp, gxp, gwp, rows, cols)
        else:
            for k in prange(nblocks, num_threads=parts if parts < nblocks else nblocks,
                            schedule="static"):
                r0 = k * br
                nr = rows - r0 if rows - r0 < br else br
                off = r0 * cols * isz
                for j in range(cols):
                    partial[k * cols + j] = 0.0
                fa_prelu_bwd(dt, gp + off, xp + off, wp, gxp + off, partial + k * cols, nr, cols)
            _sum_blocks(partial, nblocks, cols, gwp)
        fa_fp_restore(flags)
    free(partial)


DEF _P1_COLS = 64


def prelu1_backward(cnp.ndarray g, cnp.ndarray x, cnp.ndarray gx, cnp.ndarray w):
    """prelu_backward with one slope on contiguous arrays, on the calling thread (the
    caller keeps it to small arrays): gx = g * (x > 0 ? 1 : w[0]); returns the float64
    sum of (x > 0 ? 0 : x g).  w: the slope repeated _P1_COLS times, x's dtype.  The
    data is laid out as rows of _P1_COLS (+ one short row), summed per column in
    double, then the columns in order: a function of the size only."""
    cdef int dt = _dtype(g)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(g), isz = cnp.PyArray_ITEMSIZE(g)
    cdef Py_ssize_t rows = n // _P1_COLS, m = rows * _P1_COLS, j
    cdef char *gp = _ptr(g)
    cdef char *xp = _ptr(x)
    cdef char *wp = _ptr(w)
    cdef char *gxp = _ptr(gx)
    cdef double acc[_P1_COLS]
    cdef double tail[_P1_COLS]
    cdef double total = 0.0
    cdef int flags = fa_fp_flags()
    with nogil:
        for j in range(_P1_COLS):
            acc[j] = 0.0
            tail[j] = 0.0
        if rows > 0:
            fa_prelu_bwd(dt, gp, xp, wp, gxp, acc, rows, _P1_COLS)
        if n > m:
            fa_prelu_bwd(dt, gp + m * isz, xp + m * isz, wp, gxp + m * isz, tail, 1, n - m)
        for j in range(_P1_COLS):
            total += acc[j]
        for j in range(_P1_COLS):
            total += tail[j]
        fa_fp_restore(flags)
    return total


def softmax_forward(cnp.ndarray x, cnp.ndarray y, Py_ssize_t rows, Py_ssize_t cols, bint log_,
                    int n_threads):
    """Row-wise softmax or log_softmax."""
    cdef int dt = _dtype(x)
    cdef Py_ssize_t isz = cnp.PyArray_ITEMSIZE(x)
    cdef char *xp = _ptr(x)
    cdef char *yp = _ptr(y)
    cdef Py_ssize_t parts = _row_parts(rows, cols, n_threads), m, k, r0, nr
    cdef int flags = fa_fp_flags()
    with nogil:
        if parts == 1:
            fa_softmax_fwd(dt, log_, xp, yp, rows, cols)
        else:
            m = (rows + parts - 1) // parts
            for k in prange(parts, num_threads=parts, schedule="static"):
                r0 = k * m
                nr = rows - r0 if rows - r0 < m else m
                if nr > 0:
                    fa_softmax_fwd(dt, log_, xp + r0 * cols * isz, yp + r0 * cols * isz, nr, cols)
        fa_fp_restore(flags)


def softmax_backward(cnp.ndarray g, cnp.ndarray y, cnp.ndarray gx, Py_ssize_t rows,
                     Py_ssize_t cols, bint log_, int n_threads):
    """Backward of row-wise softmax / log_softmax from the output y."""
    cdef int dt = _dtype(g)
    cdef Py_ssize_t isz = cnp.PyArray_ITEMSIZE(g)
    cdef char *gp = _ptr(g)
    cdef char *yp = _ptr(y)
    cdef char *gxp = _ptr(gx)
    cdef Py_ssize_t parts = _row_parts(rows, cols, n_threads), m, k, r0, nr, off
    cdef int flags = fa_fp_flags()
    with nogil:
        if parts == 1:
            fa_softmax_bwd(dt, log_, gp, yp, gxp, rows, cols)
        else:
            m = (rows + parts - 1) // parts
            for k in prange(parts, num_threads=parts, schedule="static"):
                r0 = k * m
                nr = rows - r0 if rows - r0 < m else m
                off = r0 * cols * isz
                if nr > 0:
                    fa_softmax_bwd(dt, log_, gp + off, yp + off, gxp + off, nr, cols)
        fa_fp_restore(flags)


def softmax_xent(cnp.ndarray x, object labels, object target, cnp.ndarray grad, cnp.ndarray loss,
                 Py_ssize_t rows, Py_ssize_t cols, double scale, int n_threads):
    """Row losses into loss (float64, rows) and scale * gradient into grad.

    labels: int64 array of class indices, or None when target (probability rows) is given."""
    cdef int dt = _dtype(x)
    cdef Py_ssize_t isz = cnp.PyArray_ITEMSIZE(x)
    cdef char *xp = _ptr(x)
    cdef int64_t *lp = NULL if labels is None else <int64_t *>cnp.PyArray_DATA(<cnp.ndarray>labels)
    cdef char *tp = NULL if target is None else _ptr(<cnp.ndarray>target)
    cdef char *gp = _ptr(grad)
    cdef double *lossp = <double *>cnp.PyArray_DATA(loss)
    cdef Py_ssize_t parts = _row_parts(rows, cols, n_threads), m, k, r0, nr, off
    cdef int flags = fa_fp_flags()
    with nogil:
        if parts == 1:
            fa_softmax_xent(dt, xp, lp, tp, gp, lossp, rows, cols, scale)
        else:
            m = (rows + parts - 1) // parts
            for k in prange(parts, num_threads=parts, schedule="static"):
                r0 = k * m
                nr = rows - r0 if rows - r0 < m else m
                off = r0 * cols * isz
                if nr > 0:
                    fa_softmax_xent(dt, xp + off, NULL if lp == NULL else lp + r0,
                                    NULL if tp == NULL else tp + off, gp + off, lossp + r0,
                                    nr, cols, scale)
        fa_fp_restore(flags)
