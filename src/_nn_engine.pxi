# The network engine: runs a program of layer ops (fastact/nn/program.py builds it)
# forward, through the loss, backward and through the optimizer, in one call
# without the GIL.  Included by src/_nn.pyx.
#
# A program is a table: one row of NI int64 fields and one of NF float64 fields
# per op.  Ops read and write *tensors* (rows x width, C order): tensor 0 is the
# input X, the others live in one buffer at offsets fixed by reserve() (an op's
# output may share its input's memory when the program says so: the bias +
# activation pass over a GEMM's output when the activation's backward reads the
# output).  Gradients live in a few "slots" of capacity x max-width elements that
# the program assigns by liveness (a plain chain ping-pongs between two).
# The field and op codes must equal fastact/nn/program.py's (a test checks).

cdef enum:
    OP_GEMM = 0         # y = x W
    OP_BIAS_ACT = 1     # y = act(x + b), or act(x) without a bias
    OP_BN = 2           # y = act(gamma (x [+ b] - mean) / sqrt(var + eps) + beta)
    OP_DROPOUT = 3      # y = x mask / (1 - p) in training, x in evaluation
    OP_ADD = 4          # y = x + x2 (a residual connection)
    OP_PRELU = 5        # y = prelu(x + b; learnable slopes)
    OP_BIAS_ACT_ADD = 6  # y = act(x + b) + x2 in one pass (a residual branch's last op);
    #                     act(x + b) kept in the aux tensor when the backward reads it

cdef enum:
    I_KIND = 0
    I_IN = 1
    I_IN2 = 2
    I_OUT = 3
    I_K = 4             # width of the input
    I_N = 5             # width of the output
    I_W = 6             # offsets into theta / grad (-1: none)
    I_B = 7
    I_GAMMA = 8
    I_BETA = 9
    I_SLOPE = 10
    I_PER_UNIT = 11
    I_RM = 12           # offsets into the state array (running statistics)
    I_RV = 13
    I_ACT = 14          # activation kernel id, its backward reads the input when SAVES_IN
    I_SAVES_IN = 15
    I_DIAG = 16         # diagnostics row (-1: none)
    I_ACT_OP = 17       # this op's activation is its layer's (fills the activation columns)
    I_LAYER = 18        # dropout: the layer number in the mask's key
    I_AUX = 19          # BatchNorm with an input-saving activation: tensor of the pre-activation
    I_GIN = 20          # gradient slot of the input (-1: the input is X, no gradient)
    I_GOUT = 21
    I_GIN2 = 22
    I_ACC = 23          # bit 0: add into the input's slot, bit 1: into the second input's
    I_STAT = 24         # BatchNorm: offset of its 4 n doubles of statistics and sums
    NI = 25

cdef enum:
    F_A = 0             # the activation's parameters (fa_params a, b, c, d)
    F_P = 4             # dropout probability
    F_EPS = 5
    F_MOM = 6
    F_THR = 7           # saturation threshold of the diagnostics
    NF = 8

OP_CODES = {"gemm": OP_GEMM, "bias_act": OP_BIAS_ACT, "batchnorm": OP_BN,
            "dropout": OP_DROPOUT, "add": OP_ADD, "prelu": OP_PRELU,
            "bias_act_add": OP_BIAS_ACT_ADD}
FIELDS = {"NI": NI, "NF": NF, "I_KIND": I_KIND, "I_IN": I_IN, "I_IN2": I_IN2, "I_OUT": I_OUT,
          "I_K": I_K, "I_N": I_N, "I_W": I_W, "I_B": I_B, "I_GAMMA": I_GAMMA,
          "I_BETA": I_BETA, "I_SLOPE": I_SLOPE, "I_PER_UNIT": I_PER_UNIT, "I_RM": I_RM,
          "I_RV": I_RV, "I_ACT": I_ACT, "I_SAVES_IN": I_SAVES_IN, "I_DIAG": I_DIAG,
          "I_ACT_OP": I_ACT_OP, "I_LAYER": I_LAYER, "I_AUX": I_AUX, "I_GIN": I_GIN,
          "I_GOUT": I_GOUT, "I_GIN2": I_GIN2, "I_ACC": I_ACC, "I_STAT": I_STAT,
          "F_A": F_A, "F_P": F_P, "F_EPS": F_EPS, "F_MOM": F_MOM, "F_THR": F_THR}
# diagnostics: one row of N_DIAG values per dense layer, in the order of
# fastact.nn.DIAG_COLUMNS
cdef int N_DIAG = 9


def _aligned(Py_ssize_t n, dtype, fill=0):
    """n elements of dtype set to fill, starting on a 64-byte boundary (a cache line:
    NumPy aligns large arrays to 16 bytes only, so that every 64-byte vector of the
    engine's loops would straddle two lines)"""
    isz = np.dtype(dtype).itemsize
    a = np.empty(n + 64 // isz, dtype)
    off = (-a.ctypes.data % 64) // isz
    a = a[off:off + n]
    if fill is not None:
        a.fill(fill)
    return a


cdef inline Py_ssize_t _stagger(Py_ssize_t o, Py_ssize_t t, Py_ssize_t isz) noexcept:
    """the elements to add to offset o so that it is t * 1088 bytes mod 4096 (0 <= . < 4096
    bytes; the modules' % is C's, which keeps the sign)"""
    cdef Py_ssize_t r = (t * 1088 - o * isz) % 4096
    return (r + 4096 if r < 0 else r) // isz


cdef inline uint32_t dropout_threshold(double p) noexcept nogil:
    """min(round(p 2^32), 2^32 - 1): the 32-bit words >= it are the kept elements"""
    cdef double t = p * 4294967296.0 + 0.5
    return 4294967295U if t >= 4294967295.0 else <uint32_t>t


cdef class Engine:
    """All the buffers and the native step of one network program.

    theta, grad (the flat parameters and their gradients) and state (the running
    statistics) are owned by the Python object and kept alive here.  Tensor
    buffers are sized for `capacity` rows; reserve() grows them (outside any step).
    """
    cdef int dt, loss, diag_ok, busy, n_ops, n_tensors, out_t, n_slots, n_rows_diag, ok
    cdef bint flush
    # the update fused into the backward (see _backward): the optimizer of this step, or
    # OPT_NONE; fusable: every parameter belongs to exactly one op's parameter ranges
    cdef int fz_opt
    cdef bint fz_check, fz_bad      # the non-finite check done op by op, and its finding
    cdef bint fusable, fuse_on
    cdef const double *fz_h
    cdef char *fz_s1
    cdef char *fz_s2
    cdef long long fz_t
    cdef Py_ssize_t isz, cap, maxw, n_params, sstride
    cdef cnp.ndarray ops_i, ops_f, widths, alias, toff
    cdef cnp.ndarray theta, grad, state, buf, gbuf, ones, scratch, work, stats
    cdef cnp.ndarray xb, lb, tb, state_prev
    cdef char *p_state_prev
    cdef Py_ssize_t state_bytes
    cdef cnp.ndarray alive, diag
    cdef char *p_theta
    cdef char *p_grad
    cdef char *p_state
    cdef char *p_buf
    cdef char *p_g
    cdef char *p_ones
    cdef char *p_scr
    cdef double *p_work
    cdef double *p_stats
    cdef double *p_diag
    cdef int64_t *p_oi
    cdef double *p_of
    cdef int64_t *p_w
    cdef int64_t *p_toff
    cdef unsigned char *p_alive
    # per op: 1 where the forward keeps f'(z + b) over z for its backward (fa_bias_fwd_d)
    cdef cnp.ndarray keep_d
    cdef unsigned char *p_kd
    # per op: 1 where this call's forward kept f' (a fused loop on the SIMD path in use
    # then), read by its backward: a path changed since construction keeps nothing
    cdef cnp.ndarray kept
    cdef unsigned char *p_kept
    cdef bint kd_on, kd_now     # kd_now: this call's forward is followed by a backward

    def __init__(self, int dtype_code, cnp.ndarray ops_i, cnp.ndarray ops_f, widths, alias,
                 int out_tensor, int n_slots, int n_diag_rows, Py_ssize_t n_stats, int loss,
                 cnp.ndarray theta, cnp.ndarray grad, cnp.ndarray state):
        self.dt = dtype_code
        self.isz = 4 if dtype_code == FA_F32 else 8
        self.ops_i = np.ascontiguousarray(ops_i, dtype=np.int64).reshape(-1, NI)
        self.ops_f = np.ascontiguousarray(ops_f, dtype=np.float64).reshape(-1, NF)
        self.n_ops = self.ops_i.shape[0]
        self.widths = np.ascontiguousarray(widths, dtype=np.int64)
        self.alias = np.ascontiguousarray(alias, dtype=np.int64)
        self.n_tensors = self.widths.shape[0]
        self.out_t = out_tensor
        self.n_slots = n_slots
        self.n_rows_diag = n_diag_rows
        self.loss = loss
        self.theta = theta
        self.grad = grad
        self.state = state
        self.n_params = theta.shape[0]
        # the widest tensor but the input (whose gradient is never formed)
        self.maxw = max(1, int(self.widths[1:].max())) if self.n_tensors > 1 else 1
        self.cap = 0
        self.diag = np.zeros((max(n_diag_rows, 1), N_DIAG), np.float64)
        self.diag_ok = 0
        self.ok = 1
        self.flush = True
        self.fz_opt = OPT_NONE
        owner = np.zeros(self.n_params, np.int64)
        for row in self.ops_i:
            for f, size in ((I_W, row[I_K] * row[I_N]), (I_B, row[I_N]), (I_GAMMA, row[I_N]),
                            (I_BETA, row[I_N]),
                            (I_SLOPE, row[I_N] if row[I_PER_UNIT] else 1)):
                if row[f] >= 0:
                    owner[row[f]:row[f] + size] += 1
        self.fusable = bool(np.all(owner == 1))
        self.fuse_on = True
        self.work = np.zeros(4 * self.maxw, np.float64)
        self.stats = np.zeros(max(n_stats, 1), np.float64)
        self.alive = np.zeros(self.maxw, np.uint8)
        self.p_theta = <char *>cnp.PyArray_DATA(self.theta)
        self.p_grad = <char *>cnp.PyArray_DATA(self.grad)
        self.p_state = <char *>cnp.PyArray_DATA(self.state)
        # the running statistics before a checked step, put back when the step fails
        self.state_prev = np.empty_like(state)
        self.p_state_prev = <char *>cnp.PyArray_DATA(self.state_prev)
        self.state_bytes = state.shape[0] * self.isz
        self.p_work = <double *>cnp.PyArray_DATA(self.work)
        self.p_stats = <double *>cnp.PyArray_DATA(self.stats)
        self.p_diag = <double *>cnp.PyArray_DATA(self.diag)
        self.p_oi = <int64_t *>cnp.PyArray_DATA(self.ops_i)
        self.p_of = <double *>cnp.PyArray_DATA(self.ops_f)
        self.p_w = <int64_t *>cnp.PyArray_DATA(self.widths)
        self.p_alive = <unsigned char *>cnp.PyArray_DATA(self.alive)
        self.keep_d = self._keep_derivative_ops()
        self.p_kd = <unsigned char *>cnp.PyArray_DATA(self.keep_d)
        self.kept = np.zeros_like(self.keep_d)
        self.p_kept = <unsigned char *>cnp.PyArray_DATA(self.kept)
        self.kd_on = True
        self.reserve(1)

    def _keep_derivative_ops(self):
        """1 for each bias + activation op whose forward can keep f'(z + b) over its input
        z for the backward (which is then dz = g f', no second evaluation of the
        activation): an input-saving activation with a fused forward-and-derivative loop
        on this CPU, and z a GEMM's output that nothing else reads or shares."""
        kd = np.zeros(max(self.n_ops, 1), np.uint8)
        ops = self.ops_i
        for i in range(1, self.n_ops):
            x = ops[i, I_IN]
            if not (ops[i, I_KIND] == OP_BIAS_ACT and ops[i, I_SAVES_IN] and x > 0
                    and ops[i - 1, I_KIND] == OP_GEMM and ops[i - 1, I_OUT] == x
                    and K.bias_fwd_d_fused(<int>ops[i, I_ACT], self.dt)):
                continue
            readers = int(np.sum((ops[:, I_IN] == x) | (ops[:, I_IN2] == x)
                                 | (ops[:, I_AUX] == x)))
            shared = self.alias[x] >= 0 or bool(np.any(self.alias == x))
            if readers == 1 and not shared:
                kd[i] = 1
        return kd

    @property
    def keep_derivative(self):
        """True (the default): a dense layer with an input-saving activation that has a
        fused forward-and-derivative loop (float32 silu and gelu's tanh form on the AVX2
        and AVX-512 paths, exact gelu on AVX-512)
        keeps f'(z + b) in place of z from its forward, and its backward is dz = g f'
        (the same bits; a forward with no backward after it computes no f'); False: the
        backward evaluates f' again (for measurements)."""
        return bool(self.kd_on)

    @keep_derivative.setter
    def keep_derivative(self, bint on):
        if self.busy:
            raise RuntimeError(
                "keep_derivative cannot change while this network runs a call in another "
                "thread; set it before or after.")
        self.kd_on = on

    @property
    def capacity(self):
        return self.cap

    @property
    def diagnostics(self):
        return self.diag[:self.n_rows_diag].copy() if self.diag_ok else None

    @property
    def flush_subnormals(self):
        """True (the default): every call runs with the CPU's flush-to-zero and
        denormals-are-zero modes on (x86-64 MXCSR FTZ and DAZ, the caller's bits put back
        after the call): subnormal results and inputs count as 0, so no operation pays the
        CPU's slow path for them.  False: IEEE subnormals, as NumPy and the twin compute."""
        return bool(self.flush)

    @flush_subnormals.setter
    def flush_subnormals(self, bint on):
        if self.busy:   # a running call reads the mode again when it puts the caller's back
            raise RuntimeError(
                "flush_subnormals cannot change while this network runs a call in another "
                "thread; set it before or after.")
        self.flush = on

    @property
    def fuse_update(self):
        """True (the default): a step that neither clips gradients nor checks them for
        non-finite values updates each op's parameters right after the op's backward
        (while they are in cache), and a step that checks checks them there; False: one
        check pass and one update pass after the backward (the same results; for
        measurements)."""
        return bool(self.fuse_on)

    @fuse_update.setter
    def fuse_update(self, bint on):
        self.fuse_on = on

    @property
    def last_ok(self):
        """False when the last checked step met a non-finite loss or gradient (and so
        left the parameters and the optimizer state as they were)."""
        return bool(self.ok)

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
        # tensor t starts at t * 1088 bytes mod 4096 (gradient slot s likewise): buffers
        # of a power-of-two size would otherwise all start at the same offset in a 4 KiB
        # page, and a loop that loads from one and stores to another at the same index
        # would stall on the false store-to-load dependencies (4K aliasing)
        toff, o = [0] * self.n_tensors, 0
        for t in range(1, self.n_tensors):
            a = int(self.alias[t])
            if a >= 0:
                toff[t] = toff[a]
            else:
                o += _stagger(o, t, self.isz)
                toff[t] = o
                o += rows * int(self.widths[t])
        # every new buffer first, into locals: a MemoryError on any of them leaves the
        # engine with its old buffers and pointers, whole (the old ones are freed only
        # when the new ones replace them below, where nothing can fail)
        toff_a = np.array(toff, dtype=np.int64)
        buf = _aligned(max(o, 1), dtype)
        sstride = rows * self.maxw + _stagger(rows * self.maxw, 1, self.isz)
        # zeros: gemms_only (the benchmarks' limit) multiplies whatever the slots hold
        gbuf = _aligned(max(self.n_slots, 1) * sstride, dtype)
        ones = _aligned(rows * self.maxw, dtype, 1)
        scratch = _aligned(rows * self.maxw, dtype, None)
        self.toff, self.buf, self.sstride, self.gbuf = toff_a, buf, sstride, gbuf
        self.ones, self.scratch = ones, scratch
        # a shuffled batch of an epoch: its rows of X, labels and targets (epoch() sizes
        # them when it first shuffles: nothing input-wide otherwise)
        self.xb = np.zeros(0, dtype)
        self.lb = np.zeros(0, np.int64)
        self.tb = np.zeros(0, dtype)
        self.p_toff = <int64_t *>cnp.PyArray_DATA(self.toff)
        self.p_buf = <char *>cnp.PyArray_DATA(self.buf)
        self.p_g = <char *>cnp.PyArray_DATA(self.gbuf)
        self.p_ones = <char *>cnp.PyArray_DATA(self.ones)
        self.p_scr = <char *>cnp.PyArray_DATA(self.scratch)
        self.cap = rows

    # -- addressing --
    cdef inline char *_T(self, int64_t t, const char *X) noexcept nogil:
        """the buffer of tensor t (X for t = 0)"""
        if t == 0:
            return <char *>X
        return self.p_buf + self.p_toff[t] * self.isz

    cdef inline char *_G(self, int64_t slot) noexcept nogil:
        return self.p_g + slot * self.sstride * self.isz

    cdef inline char *_P(self, int64_t off) noexcept nogil:
        return self.p_theta + off * self.isz if off >= 0 else NULL

    # -- forward --
    cdef void _forward(self, const char *X, Py_ssize_t rows, bint training, uint64_t seed,
                       uint64_t counter) noexcept nogil:
        cdef int i
        for i in range(self.n_ops):
            self._op_fwd(self.p_oi + i * NI, self.p_of + i * NF, X, rows, training, seed,
                         counter)

    cdef void _op_fwd(self, const int64_t *oi, const double *of, const char *X, Py_ssize_t rows,
                      bint training, uint64_t seed, uint64_t counter) noexcept nogil:
        cdef int64_t kind = oi[I_KIND]
        cdef char *x = self._T(oi[I_IN], X)
        cdef char *y = self._T(oi[I_OUT], X)
        cdef Py_ssize_t n = oi[I_N], k = oi[I_K], j
        cdef fa_params p
        p.a, p.b, p.c, p.d = of[F_A], of[F_A + 1], of[F_A + 2], of[F_A + 3]
        if kind == OP_GEMM:
            mm_nn(self.dt, self.isz, x, self._P(oi[I_W]), y, <int>rows, <int>k, <int>n)
        elif kind == OP_BIAS_ACT:
            j = (oi - self.p_oi) // NI
            self.p_kept[j] = (self.kd_now and self.p_kd[j]
                              and K.bias_fwd_d_fused(<int>oi[I_ACT], self.dt))
            if self.p_kept[j]:      # f' kept over x
                K.bias_fwd_d(<int>oi[I_ACT], self.dt, x, self._P(oi[I_B]), y, x, rows, n, &p)
            elif oi[I_B] >= 0:
                K.bias_fwd(<int>oi[I_ACT], self.dt, x, self._P(oi[I_B]), y, rows, n, &p)
            else:
                K.fwd(<int>oi[I_ACT], self.dt, x, y, rows * n, &p)
        elif kind == OP_BN:
            self._bn_fwd(oi, of, x, y, X, rows, n, training, &p)
        elif kind == OP_DROPOUT:
            if training and of[F_P] > 0:
                dropout_apply(self.dt, x, y, rows * n, dropout_key(seed, counter, oi[I_LAYER]),
                              dropout_threshold(of[F_P]), 1.0 / (1.0 - of[F_P]))
            elif x != y:
                memcpy(y, x, <size_t>(rows * n * self.isz))
        elif kind == OP_ADD:
            add_arrays(self.dt, x, self._T(oi[I_IN2], X), y, rows * n)
        elif kind == OP_BIAS_ACT_ADD:
            self._bias_act_add_fwd(oi, x, y, X, rows, n, &p)
        elif kind == OP_PRELU:
            if self.dt == FA_F32:
                fa_prelu_fwd_f32(<const float *>x, <const float *>self._P(oi[I_B]),
                                 <const float *>self._P(oi[I_SLOPE]), oi[I_PER_UNIT] != 0,
                                 <float *>y, rows, n)
            else:
                fa_prelu_fwd_f64(<const double *>x, <const double *>self._P(oi[I_B]),
                                 <const double *>self._P(oi[I_SLOPE]), oi[I_PER_UNIT] != 0,
                                 <double *>y, rows, n)

    cdef void _bias_act_add_fwd(self, const int64_t *oi, char *x, char *y, const char *X,
                                Py_ssize_t rows, Py_ssize_t n, fa_params *p) noexcept nogil:
        """y = act(x + b) + x2 in blocks of rows that stay in L1: the activation's output
        goes to the aux tensor (when the backward reads it) or to a block of scratch, and
        the add reads it from there (no pass of its own over the tensor)"""
        cdef char *x2 = self._T(oi[I_IN2], X)
        cdef char *h = self._T(oi[I_AUX], X) if oi[I_AUX] >= 0 else NULL
        cdef char *b = self._P(oi[I_B])
        cdef char *hb
        cdef int act = <int>oi[I_ACT]
        cdef Py_ssize_t r0 = 0, nb, off
        cdef Py_ssize_t blk = (16384 // self.isz) // n if n < 16384 // self.isz else 1
        while r0 < rows:
            nb = rows - r0 if rows - r0 < blk else blk
            off = r0 * n * self.isz
            hb = h + off if h != NULL else self.p_scr
            if b != NULL:
                K.bias_fwd(act, self.dt, x + off, b, hb, nb, n, p)
            else:
                K.fwd(act, self.dt, x + off, hb, nb * n, p)
            add_arrays(self.dt, hb, x2 + off, y + off, nb * n)
            r0 += nb

    cdef void _bn_fwd(self, const int64_t *oi, const double *of, char *x, char *y,
                      const char *X, Py_ssize_t rows, Py_ssize_t n, bint training,
                      fa_params *p) noexcept nogil:
        cdef double *mean = self.p_stats + oi[I_STAT]
        cdef double *invstd = mean + n
        cdef double *sc = self.p_work
        cdef double mom = of[F_MOM], eps = of[F_EPS], unbias
        cdef Py_ssize_t j, r0, nb, blk
        cdef char *u = self._T(oi[I_AUX], X) if oi[I_AUX] >= 0 else y
        cdef char *rm = self.p_state + oi[I_RM] * self.isz
        cdef char *rv = self.p_state + oi[I_RV] * self.isz
        cdef char *gamma = self._P(oi[I_GAMMA])
        cdef char *beta = self._P(oi[I_BETA])
        cdef char *pb = self._P(oi[I_B])
        cdef int act = <int>oi[I_ACT]
        cdef double bj = 0.0
        # pb: a dense layer's bias folded in (x is the GEMM's output, x + b the layer's):
        # the statistics of x + b are x's with the mean shifted by b, and x + b - mean is
        # x - (mean - b), so the bias enters only the running mean and evaluation's shift
        if training:
            col_stats(self.dt, x, rows, n, n, mean, invstd)
            unbias = <double>rows / (rows - 1) if rows > 1 else 1.0
            for j in range(n):
                if pb != NULL:
                    bj = (<float *>pb)[j] if self.dt == FA_F32 else (<double *>pb)[j]
                if self.dt == FA_F32:
                    (<float *>rm)[j] = <float>((1.0 - mom) * (<float *>rm)[j]
                                               + mom * (mean[j] + bj))
                    (<float *>rv)[j] = <float>((1.0 - mom) * (<float *>rv)[j]
                                               + mom * invstd[j] * unbias)
                else:
                    (<double *>rm)[j] = (1.0 - mom) * (<double *>rm)[j] + mom * (mean[j] + bj)
                    (<double *>rv)[j] = (1.0 - mom) * (<double *>rv)[j] + mom * invstd[j] * unbias
                invstd[j] = 1.0 / sqrt(invstd[j] + eps)
        else:
            for j in range(n):
                if pb != NULL:
                    bj = (<float *>pb)[j] if self.dt == FA_F32 else (<double *>pb)[j]
                if self.dt == FA_F32:
                    mean[j] = <double>(<float *>rm)[j] - bj
                    invstd[j] = 1.0 / sqrt(<double>(<float *>rv)[j] + eps)
                else:
                    mean[j] = (<double *>rm)[j] - bj
                    invstd[j] = 1.0 / sqrt((<double *>rv)[j] + eps)
        for j in range(n):
            sc[j] = invstd[j] * ((<float *>gamma)[j] if self.dt == FA_F32 else (<double *>gamma)[j])
        blk = BLOCK_ELEMS // n if n < BLOCK_ELEMS else 1
        r0 = 0
        while r0 < rows:
            nb = rows - r0 if rows - r0 < blk else blk
            bn_affine(self.dt, x + r0 * n * self.isz, u + r0 * n * self.isz, nb, n, n, mean, sc,
                      beta)
            if act != 0 or u != y:
                K.fwd(act, self.dt, u + r0 * n * self.isz, y + r0 * n * self.isz, nb * n, p)
            r0 += nb

    # -- loss --
    cdef double _loss(self, const char *out, Py_ssize_t rows, const int64_t *labels,
                      const char *target, char *g) noexcept nogil:
        """the loss of the network's output `out` (rows x C) and its gradient into g"""
        cdef Py_ssize_t C = self.p_w[self.out_t], n = rows * C
        if self.loss == LOSS_XENT:
            # the engine's own fused loop (one exp per element), not the public kernel
            return xent_rows(self.dt, out, labels, g, self.p_scr, rows, C, 1.0 / rows) / rows
        if self.dt == FA_F32:
            if self.loss == LOSS_MSE:
                return _mse(<const float *>out, <const float *>target, <float *>g, n)
            return _bce(<const float *>out, <const float *>target, <float *>g, n)
        if self.loss == LOSS_MSE:
            return _mse(<const double *>out, <const double *>target, <double *>g, n)
        return _bce(<const double *>out, <const double *>target, <double *>g, n)

    # -- backward --
    cdef void _backward(self, const char *X, Py_ssize_t rows, bint training, uint64_t seed,
                        uint64_t counter, bint diag) noexcept nogil:
        cdef int i
        for i in range(self.n_ops - 1, -1, -1):
            self._op_bwd(self.p_oi + i * NI, self.p_of + i * NF, X, rows, training, seed,
                         counter, diag)
            if self.fz_check:
                self.fz_bad |= self._op_nonfinite(self.p_oi + i * NI)
            if self.fz_opt != OPT_NONE:
                self._op_update(self.p_oi + i * NI)

    cdef int _op_params(self, const int64_t *oi, Py_ssize_t *off,
                        Py_ssize_t *cnt) noexcept nogil:
        """the ranges of theta / grad that hold this op's parameters (at most 5); returns
        how many"""
        cdef Py_ssize_t n = oi[I_N]
        cdef int m = 0, f
        cdef int fields[5]
        fields[:] = [I_W, I_B, I_GAMMA, I_BETA, I_SLOPE]
        for f in fields:
            if oi[f] >= 0:
                off[m] = oi[f]
                cnt[m] = (oi[I_K] * n if f == I_W else
                          (1 if f == I_SLOPE and not oi[I_PER_UNIT] else n))
                m += 1
        return m

    cdef void _op_update(self, const int64_t *oi) noexcept nogil:
        """the optimizer's update of one op's parameters, right after the op's backward
        has formed their gradients and used them for the last time (so they are still in
        cache): the same loops, element by element the same arithmetic as one update of
        all parameters after the backward (used when the step neither clips nor checks
        for non-finite gradients, both of which need every gradient first)"""
        cdef Py_ssize_t off[5]
        cdef Py_ssize_t cnt[5]
        cdef int j, m = self._op_params(oi, off, cnt)
        for j in range(m):
            self._update_range(self.fz_opt, self.fz_h, self.fz_s1, self.fz_s2, self.fz_t,
                               off[j], cnt[j])

    cdef bint _op_nonfinite(self, const int64_t *oi) noexcept nogil:
        """some gradient of this op's parameters is NaN or inf (checked right after the
        op's backward formed them, while they are in cache)"""
        cdef Py_ssize_t off[5]
        cdef Py_ssize_t cnt[5]
        cdef int j, m = self._op_params(oi, off, cnt)
        cdef bint bad = False
        for j in range(m):
            if self.dt == FA_F32:
                bad |= fa_nonfinite_f32(<const float *>self.p_grad + off[j], cnt[j])
            else:
                bad |= fa_nonfinite_f64(<const double *>self.p_grad + off[j], cnt[j])
        return bad

    cdef bint _grad_bad(self) noexcept nogil:
        """some gradient is NaN or inf: what the backward found op by op, or one pass"""
        if self.fz_check:
            self.fz_check = False
            return self.fz_bad
        if self.dt == FA_F32:
            return fa_nonfinite_f32(<const float *>self.p_grad, self.n_params)
        return fa_nonfinite_f64(<const double *>self.p_grad, self.n_params)

    cdef inline bint _fuse(self, int opt, const double *h, char *s1, char *s2, long long t,
                           bint check) noexcept nogil:
        """arm the fused update for this step when it applies (True when armed), or the
        non-finite check op by op when the step checks"""
        self.fz_check = check and self.fusable and self.fuse_on
        self.fz_bad = False
        if opt == OPT_NONE or check or h[5] > 0 or not (self.fusable and self.fuse_on):
            self.fz_opt = OPT_NONE
            return False
        self.fz_opt, self.fz_h, self.fz_s1, self.fz_s2, self.fz_t = opt, h, s1, s2, t
        return True

    cdef void _op_bwd(self, const int64_t *oi, const double *of, const char *X, Py_ssize_t rows,
                      bint training, uint64_t seed, uint64_t counter, bint diag) noexcept nogil:
        cdef int64_t kind = oi[I_KIND]
        cdef char *x = self._T(oi[I_IN], X)
        cdef char *y = self._T(oi[I_OUT], X)
        cdef Py_ssize_t n = oi[I_N], k = oi[I_K], m = rows * n
        cdef char *g = self._G(oi[I_GOUT])
        cdef char *gi = self._G(oi[I_GIN]) if oi[I_GIN] >= 0 else g
        cdef char *s
        cdef char *ya
        cdef char *bsave
        cdef bint kd
        cdef double *w0 = self.p_work
        cdef double *w1 = self.p_work + self.maxw
        cdef int64_t r = oi[I_DIAG]
        cdef double *dg = self.p_diag + r * N_DIAG
        cdef fa_params p
        p.a, p.b, p.c, p.d = of[F_A], of[F_A + 1], of[F_A + 2], of[F_A + 3]
        if kind == OP_GEMM:
            mm_tn(self.dt, self.isz, x, g, self.p_grad + oi[I_W] * self.isz, <int>rows, <int>k,
                  <int>n)
            if diag and r >= 0:
                dg[0] = sqrt(sumsq(self.dt, self.p_grad + oi[I_W] * self.isz, k * n))
            if oi[I_GIN] >= 0:
                mm_nt(self.dt, self.isz, g, self._P(oi[I_W]), gi, <int>rows, <int>k, <int>n,
                      1.0 if oi[I_ACC] & 1 else 0.0)
        elif kind == OP_BIAS_ACT or kind == OP_BIAS_ACT_ADD:
            # the fused add's output is not the activation's: that is aux, or not kept
            ya = y
            if kind == OP_BIAS_ACT_ADD:
                ya = self._T(oi[I_AUX], X) if oi[I_AUX] >= 0 else NULL
            s = x if oi[I_SAVES_IN] else ya
            bsave = self._P(oi[I_B]) if oi[I_SAVES_IN] else NULL
            kd = kind == OP_BIAS_ACT and self.kd_now and self.p_kept[(oi - self.p_oi) // NI]
            memset(w0, 0, <size_t>n * sizeof(double))
            if kd:              # x holds f'(x + b) from the forward
                mul_colsum(self.dt, g, x, gi, w0, rows, n)
            else:
                K.bias_bwd(<int>oi[I_ACT], self.dt, g, s, bsave, gi, w0, rows, n, &p)
            if oi[I_B] >= 0:
                from_double(self.dt, self.p_grad + oi[I_B] * self.isz, w0, n)
                if diag and r >= 0:
                    dg[1] = sqrt(sumsq(self.dt, self.p_grad + oi[I_B] * self.isz, n))
            if diag and r >= 0 and oi[I_ACT_OP]:
                if ya == NULL:      # the activation's output, again, for its moments
                    if bsave != NULL:
                        K.bias_fwd(<int>oi[I_ACT], self.dt, x, bsave, self.p_scr, rows, n, &p)
                    else:
                        K.fwd(<int>oi[I_ACT], self.dt, x, self.p_scr, rows * n, &p)
                    self._y_moments(dg, self.p_scr, rows * n)
                if kd:
                    memcpy(self.p_scr, x, <size_t>(m * self.isz))
                else:
                    memset(w1, 0, <size_t>n * sizeof(double))
                    K.bias_bwd(<int>oi[I_ACT], self.dt, self.p_ones, s, bsave, self.p_scr, w1,
                               rows, n, &p)
                self._diag_act(dg, ya, gi, rows, n, of[F_THR])
            if kind == OP_BIAS_ACT_ADD:
                self._skip_grad(oi, g, m)
        elif kind == OP_BN:
            self._bn_bwd(oi, of, x, y, g, gi, X, rows, n, training, diag, &p)
        elif kind == OP_DROPOUT:
            if oi[I_GIN] >= 0:
                if training and of[F_P] > 0:
                    dropout_apply(self.dt, g, gi, m, dropout_key(seed, counter, oi[I_LAYER]),
                                  dropout_threshold(of[F_P]), 1.0 / (1.0 - of[F_P]))
                elif gi != g:
                    memcpy(gi, g, <size_t>(m * self.isz))
        elif kind == OP_ADD:
            # the first input's gradient is this gradient (same slot); the second's too
            self._skip_grad(oi, g, m)
        elif kind == OP_PRELU:
            self._prelu_bwd(oi, of, x, y, g, gi, rows, n, diag)

    cdef inline void _skip_grad(self, const int64_t *oi, char *g, Py_ssize_t m) noexcept nogil:
        """an add's second input (the skip connection) gets the output's gradient g: in the
        same slot (nothing to do) unless another consumer has already written it"""
        if oi[I_GIN2] >= 0:
            if oi[I_ACC] & 2:
                add_arrays(self.dt, g, self._G(oi[I_GIN2]), self._G(oi[I_GIN2]), m)
            elif oi[I_GIN2] != oi[I_GOUT]:
                memcpy(self._G(oi[I_GIN2]), g, <size_t>(m * self.isz))

    cdef void _prelu_bwd(self, const int64_t *oi, const double *of, char *x, char *y, char *g,
                         char *gi, Py_ssize_t rows, Py_ssize_t n, bint diag) noexcept nogil:
        cdef double *w0 = self.p_work
        cdef double *w1 = self.p_work + self.maxw
        cdef int64_t r = oi[I_DIAG]
        cdef double *dg = self.p_diag + r * N_DIAG
        cdef bint pu = oi[I_PER_UNIT] != 0
        cdef Py_ssize_t ns = n if pu else 1
        memset(w0, 0, <size_t>n * sizeof(double))
        memset(w1, 0, <size_t>n * sizeof(double))
        if self.dt == FA_F32:
            fa_prelu_bwd_f32(<const float *>g, <const float *>x, <const float *>self._P(oi[I_B]),
                             <const float *>self._P(oi[I_SLOPE]), pu, <float *>gi, w0, w1,
                             rows, n)
        else:
            fa_prelu_bwd_f64(<const double *>g, <const double *>x,
                             <const double *>self._P(oi[I_B]),
                             <const double *>self._P(oi[I_SLOPE]), pu, <double *>gi, w0, w1,
                             rows, n)
        from_double(self.dt, self.p_grad + oi[I_SLOPE] * self.isz, w1, ns)
        if oi[I_B] >= 0:
            from_double(self.dt, self.p_grad + oi[I_B] * self.isz, w0, n)
            if diag and r >= 0:
                dg[1] = sqrt(sumsq(self.dt, self.p_grad + oi[I_B] * self.isz, n))
        if diag and r >= 0 and oi[I_ACT_OP]:
            if self.dt == FA_F32:
                _prelu_deriv(<const float *>x, <const float *>self._P(oi[I_B]),
                             <const float *>self._P(oi[I_SLOPE]), pu, <float *>self.p_scr,
                             rows, n)
            else:
                _prelu_deriv(<const double *>x, <const double *>self._P(oi[I_B]),
                             <const double *>self._P(oi[I_SLOPE]), pu, <double *>self.p_scr,
                             rows, n)
            self._diag_act(dg, y, gi, rows, n, of[F_THR])

    cdef void _bn_bwd(self, const int64_t *oi, const double *of, char *x, char *y, char *g,
                      char *gi, const char *X, Py_ssize_t rows, Py_ssize_t n, bint training,
                      bint diag, fa_params *p) noexcept nogil:
        cdef double *mean = self.p_stats + oi[I_STAT]
        cdef double *invstd = mean + n
        cdef double *sdu = mean + 2 * n
        cdef double *sdux = mean + 3 * n
        cdef double *c1 = self.p_work
        cdef double *m1 = self.p_work + self.maxw
        cdef double *m2 = self.p_work + 2 * self.maxw
        cdef char *saved = self._T(oi[I_AUX], X) if oi[I_AUX] >= 0 else y
        cdef char *gamma = self._P(oi[I_GAMMA])
        cdef int act = <int>oi[I_ACT]
        cdef int64_t r = oi[I_DIAG]
        cdef double *dg = self.p_diag + r * N_DIAG
        cdef Py_ssize_t j, r0, nb, blk, off
        # du = g act'(saved) goes to the input's gradient gi (g when in place): g itself
        # is left as it is, for a residual add whose skip connection shares its slot
        cdef char *du = gi if act != 0 else g
        memset(sdu, 0, <size_t>n * sizeof(double))
        memset(sdux, 0, <size_t>n * sizeof(double))
        blk = BLOCK_ELEMS // n if n < BLOCK_ELEMS else 1
        r0 = 0
        while r0 < rows:          # du = g act'(saved), and the two column sums
            nb = rows - r0 if rows - r0 < blk else blk
            off = r0 * n * self.isz
            if act != 0:
                K.bwd(act, self.dt, g + off, saved + off, du + off, nb * n, p)
            bn_bwd_sums(self.dt, du + off, x + off, nb, n, n, mean, invstd, sdu, sdux)
            r0 += nb
        from_double(self.dt, self.p_grad + oi[I_GAMMA] * self.isz, sdux, n)
        from_double(self.dt, self.p_grad + oi[I_BETA] * self.isz, sdu, n)
        for j in range(n):
            c1[j] = invstd[j] * ((<float *>gamma)[j] if self.dt == FA_F32 else (<double *>gamma)[j])
        if oi[I_B] >= 0:
            # the folded bias: its gradient is sum_r dx = c1 (sdu - rows m1 - m2 sum_r xhat)
            # = 0 in training (the output does not depend on it), sum_r du c1 otherwise
            for j in range(n):
                m1[j] = 0.0 if training else c1[j] * sdu[j]
            from_double(self.dt, self.p_grad + oi[I_B] * self.isz, m1, n)
            if diag and r >= 0:
                dg[1] = sqrt(sumsq(self.dt, self.p_grad + oi[I_B] * self.isz, n))
        if diag and r >= 0:
            dg[7] = sqrt(sumsq(self.dt, self.p_grad + oi[I_GAMMA] * self.isz, n))
            dg[8] = sqrt(sumsq(self.dt, self.p_grad + oi[I_BETA] * self.isz, n))
            if oi[I_ACT_OP]:
                K.bwd(act, self.dt, self.p_ones, saved, self.p_scr, rows * n, p)
                self._diag_act(dg, y, du, rows, n, of[F_THR])
        if oi[I_GIN] < 0:
            return
        for j in range(n):
            m1[j] = sdu[j] / rows
            m2[j] = sdux[j] / rows
        if training:
            bn_bwd_dx(self.dt, du, x, gi, rows, n, n, mean, invstd, c1, m1, m2)
        else:
            col_scale(self.dt, du, gi, rows, n, n, c1)

    cdef void _diag_act(self, double *dg, const char *y, const char *dz, Py_ssize_t rows,
                        Py_ssize_t n, double thr) noexcept nogil:
        """the activation columns of a diagnostics row: |dz|, moments of y (already there
        when y is NULL), the fraction of |f'| < thr (f' already in scratch) and of units
        whose dz is zero on the whole batch"""
        dg[2] = sqrt(sumsq(self.dt, dz, rows * n))
        if y != NULL:
            self._y_moments(dg, y, rows * n)
        if self.dt == FA_F32:
            dg[5] = _small_fraction(<const float *>self.p_scr, rows * n, thr)
            dg[6] = _dead_fraction(<const float *>dz, rows, n, self.p_alive)
        else:
            dg[5] = _small_fraction(<const double *>self.p_scr, rows * n, thr)
            dg[6] = _dead_fraction(<const double *>dz, rows, n, self.p_alive)

    cdef inline void _y_moments(self, double *dg, const char *y, Py_ssize_t m) noexcept nogil:
        if self.dt == FA_F32:
            _moments(<const float *>y, m, &dg[3], &dg[4])
        else:
            _moments(<const double *>y, m, &dg[3], &dg[4])

    # -- optimizer --
    cdef double _update(self, int opt, const double *h, char *s1, char *s2,
                        long long t) noexcept nogil:
        """clip (h[5] > 0: max global norm) and apply the optimizer; returns the grad norm"""
        cdef char *grad = self.p_grad
        cdef Py_ssize_t n = self.n_params
        cdef double norm = -1.0, coef
        if h[5] > 0:
            norm = sqrt(sumsq(self.dt, grad, n))
            coef = h[5] / (norm + 1e-6)
            if coef < 1.0:
                scale(self.dt, grad, n, coef)
        self._update_range(opt, h, s1, s2, t, 0, n)
        return norm

    cdef void _update_range(self, int opt, const double *h, char *s1, char *s2, long long t,
                            Py_ssize_t off, Py_ssize_t n) noexcept nogil:
        """the optimizer's update of parameters [off, off + n)"""
        cdef char *theta = self.p_theta + off * self.isz
        cdef char *grad = self.p_grad + off * self.isz
        if s1 != NULL:
            s1 = s1 + off * self.isz
        if s2 != NULL:
            s2 = s2 + off * self.isz
        cdef double bc1, bc2s
        if opt == OPT_SGD:
            # h: lr, momentum, weight_decay, nesterov, -, max_norm
            if self.dt == FA_F32:
                fa_sgd_f32(<float *>theta, <const float *>grad, <float *>s1, n, h[0], h[1], h[2],
                           h[3] != 0, t == 1)
            else:
                fa_sgd_f64(<double *>theta, <const double *>grad, <double *>s1, n, h[0], h[1],
                           h[2], h[3] != 0, t == 1)
        elif opt == OPT_ADAM or opt == OPT_ADAMW:
            # h: lr, beta1, beta2, eps, weight_decay, max_norm
            bc1 = 1.0 - h[1] ** t
            bc2s = sqrt(1.0 - h[2] ** t)
            if self.dt == FA_F32:
                fa_adam_f32(<float *>theta, <const float *>grad, <float *>s1, <float *>s2, n,
                            h[0], h[1], h[2], h[3], h[4], opt == OPT_ADAMW, bc1, bc2s)
            else:
                fa_adam_f64(<double *>theta, <const double *>grad, <double *>s1, <double *>s2,
                            n, h[0], h[1], h[2], h[3], h[4], opt == OPT_ADAMW, bc1, bc2s)

    cpdef bint batch_ok(self, X, y):
        """True when (X, y) is a batch a step can use as it is and fits the buffers: X a
        C-contiguous aligned (rows, n_in) array of the engine's dtype, 0 < rows <=
        capacity, every value finite; y int64 labels of shape (rows,) in [0, classes)
        (cross-entropy) or a finite (rows, n_out) array of the dtype.  False sends the
        batch to the Python checks (which convert it, raise the error or grow the
        buffers): this is only the fast path of the usual case."""
        if type(X) is not np.ndarray or type(y) is not np.ndarray:
            return False
        cdef cnp.ndarray x = <cnp.ndarray>X, t = <cnp.ndarray>y
        cdef int npy = cnp.NPY_FLOAT32 if self.dt == FA_F32 else cnp.NPY_FLOAT64
        cdef int need = cnp.NPY_ARRAY_C_CONTIGUOUS | cnp.NPY_ARRAY_ALIGNED
        cdef Py_ssize_t rows, n, C = self.p_w[self.out_t], i
        cdef const int64_t *lab
        cdef bint bad = False
        if (cnp.PyArray_NDIM(x) != 2 or cnp.PyArray_TYPE(x) != npy
                or not cnp.PyArray_ISNOTSWAPPED(x) or not cnp.PyArray_ISNOTSWAPPED(t)
                or cnp.PyArray_DIM(x, 1) != self.p_w[0]
                or (cnp.PyArray_FLAGS(x) & need) != need):
            return False
        rows = cnp.PyArray_DIM(x, 0)
        if rows == 0 or rows > self.cap:
            return False
        if (cnp.PyArray_FLAGS(t) & need) != need:
            return False
        if self.loss == LOSS_XENT:
            if (cnp.PyArray_NDIM(t) != 1 or cnp.PyArray_TYPE(t) != cnp.NPY_INT64
                    or cnp.PyArray_DIM(t, 0) != rows):
                return False
            lab = <const int64_t *>cnp.PyArray_DATA(t)
            with nogil:
                for i in range(rows):
                    bad |= (lab[i] < 0) | (lab[i] >= C)
            if bad:
                return False
        else:
            if (cnp.PyArray_NDIM(t) != 2 or cnp.PyArray_TYPE(t) != npy
                    or cnp.PyArray_DIM(t, 0) != rows or cnp.PyArray_DIM(t, 1) != C):
                return False
        n = rows * self.p_w[0]
        with nogil:
            if self.dt == FA_F32:
                bad = fa_nonfinite_f32(<const float *>cnp.PyArray_DATA(x), n)
                if self.loss != LOSS_XENT and not bad:
                    bad = fa_nonfinite_f32(<const float *>cnp.PyArray_DATA(t), rows * C)
            else:
                bad = fa_nonfinite_f64(<const double *>cnp.PyArray_DATA(x), n)
                if self.loss != LOSS_XENT and not bad:
                    bad = fa_nonfinite_f64(<const double *>cnp.PyArray_DATA(t), rows * C)
        return not bad

    # -- the entry points --
    def step(self, cnp.ndarray X, object labels, object target, bint diag, object kind="",
             cnp.ndarray hyper=None, cnp.ndarray state1=None, cnp.ndarray state2=None,
             long long t=0, bint training=True, uint64_t seed=0, uint64_t counter=0,
             bint check=False):
        """Forward, loss, backward (into grad) and, with opt != OPT_NONE, the optimizer
        update, for one batch X (rows <= capacity).  Training mode: batch statistics
        (running statistics updated) and dropout masks keyed by (seed, counter, layer).
        check: when the loss or a gradient is not finite, skip the update and set
        last_ok to False.  kind: the optimizer's name ("" for none: no update).  Returns
        the loss."""
        return self._step(X, labels, target, diag, kind, hyper, state1, state2, t, training,
                          seed, counter, check)

    def try_step(self, X, y, bint diag, object kind, cnp.ndarray hyper,
                 cnp.ndarray state1, cnp.ndarray state2, long long t, bint training,
                 uint64_t seed, uint64_t counter, bint check):
        """step() of the usual batch in one call: when batch_ok(X, y) and X has 2 rows or
        more, y goes in as the labels (cross-entropy) or the target and the loss comes
        back; otherwise None, and nothing ran (the caller's full checks take the batch:
        conversions, errors, BatchNorm's refusal of one row, larger buffers)."""
        if not self.batch_ok(X, y) or cnp.PyArray_DIM(<cnp.ndarray>X, 0) < 2:
            return None
        if self.loss == LOSS_XENT:
            return self._step(X, y, None, diag, kind, hyper, state1, state2, t, training,
                              seed, counter, check)
        return self._step(X, None, y, diag, kind, hyper, state1, state2, t, training, seed,
                          counter, check)

    cdef double _step(self, cnp.ndarray X, object labels, object target, bint diag,
                      object kind, cnp.ndarray hyper, cnp.ndarray state1,
                      cnp.ndarray state2, long long t, bint training, uint64_t seed,
                      uint64_t counter, bint check) except? -1.0:
        cdef int opt = OPT_NONE if not kind else OPTIMIZERS[kind]
        cdef Py_ssize_t rows = cnp.PyArray_DIM(X, 0)
        cdef const char *xp = <const char *>cnp.PyArray_DATA(X)
        cdef const int64_t *lp = NULL if labels is None else <const int64_t *>cnp.PyArray_DATA(<cnp.ndarray>labels)
        cdef const char *tp = NULL if target is None else <const char *>cnp.PyArray_DATA(<cnp.ndarray>target)
        cdef const double *h = NULL if hyper is None else <const double *>cnp.PyArray_DATA(hyper)
        cdef char *s1 = NULL if state1 is None else <char *>cnp.PyArray_DATA(state1)
        cdef char *s2 = NULL if state2 is None else <char *>cnp.PyArray_DATA(state2)
        cdef char *g0 = self._G(self.p_oi[(self.n_ops - 1) * NI + I_GOUT])
        cdef double loss
        cdef int flags = K.fp_flags()
        cdef unsigned ftz
        cdef bint ok = True, fused
        self._enter(rows)
        with nogil:
            ftz = fa_ftz_enter() if self.flush else 0
            if check and training and self.state_bytes:
                memcpy(self.p_state_prev, self.p_state, <size_t>self.state_bytes)
            self.kd_now = self.kd_on
            self._forward(xp, rows, training, seed, counter)
            loss = self._loss(self._T(self.out_t, xp), rows, lp, tp, g0)
            fused = self._fuse(opt, h, s1, s2, t, check)
            self._backward(xp, rows, training, seed, counter, diag)
            self.fz_opt = OPT_NONE
            if check:
                ok = isfinite(loss) and not self._grad_bad()
            if opt != OPT_NONE and ok and not fused:
                self._update(opt, h, s1, s2, t)
            if not ok and training and self.state_bytes:
                memcpy(self.p_state, self.p_state_prev, <size_t>self.state_bytes)
            if self.flush:
                fa_ftz_leave(ftz)
            K.fp_restore(flags)
        self.ok = ok
        self.busy = 0
        if diag:
            self.diag_ok = 1
        return loss

    cdef Py_ssize_t _correct(self, const char *out, Py_ssize_t rows, const int64_t *labels,
                             const char *target) noexcept nogil:
        """how many predictions of the batch are right: argmax = label (cross-entropy), or
        (output > 0) = (target > 1/2) per element (binary cross-entropy); 0 for mse"""
        cdef Py_ssize_t C = self.p_w[self.out_t], r, j, best, good = 0
        cdef double v, top
        if self.loss == LOSS_MSE:
            return 0
        for r in range(rows):
            if self.loss == LOSS_XENT:
                best = 0
                top = (<const float *>out)[r * C] if self.dt == FA_F32 else (<const double *>out)[r * C]
                for j in range(1, C):
                    v = (<const float *>out)[r * C + j] if self.dt == FA_F32 else (<const double *>out)[r * C + j]
                    if v > top:
                        top = v
                        best = j
                good += best == labels[r]
            else:
                for j in range(C):
                    if self.dt == FA_F32:
                        good += ((<const float *>out)[r * C + j] > 0) == ((<const float *>target)[r * C + j] > 0.5)
                    else:
                        good += ((<const double *>out)[r * C + j] > 0) == ((<const double *>target)[r * C + j] > 0.5)
        return good

    def epoch(self, cnp.ndarray X, object labels, object target, object order, Py_ssize_t bs,
              int opt, cnp.ndarray hyper, cnp.ndarray state1, cnp.ndarray state2,
              long long t0, bint training, uint64_t seed, uint64_t counter0, bint check,
              bint skip_single, cnp.ndarray losses, cnp.ndarray correct, bint diag=False):
        """One pass over X in batches of bs rows (the rows in `order`, an int64 permutation,
        or in order), each a training step with the update: no Python between the steps.
        losses[b] (float64) and correct[b] (int64) get each batch's loss and right
        predictions; with skip_single a last batch of one row is left out (-1 in
        correct).  Steps run until one meets a non-finite loss or gradient (when check:
        last_ok False, that step not applied).  Returns the number of steps applied."""
        cdef Py_ssize_t rows = cnp.PyArray_DIM(X, 0), k = self.p_w[0], C = self.p_w[self.out_t]
        cdef const char *xp = <const char *>cnp.PyArray_DATA(X)
        cdef const int64_t *lp = NULL if labels is None else <const int64_t *>cnp.PyArray_DATA(<cnp.ndarray>labels)
        cdef const char *tp = NULL if target is None else <const char *>cnp.PyArray_DATA(<cnp.ndarray>target)
        cdef const int64_t *op = NULL if order is None else <const int64_t *>cnp.PyArray_DATA(<cnp.ndarray>order)
        cdef const double *h = <const double *>cnp.PyArray_DATA(hyper)
        cdef char *s1 = NULL if state1 is None else <char *>cnp.PyArray_DATA(state1)
        cdef char *s2 = NULL if state2 is None else <char *>cnp.PyArray_DATA(state2)
        if order is not None and self.xb.shape[0] < self.cap * k:
            # all three first (a MemoryError leaves the old ones, consistent)
            xb_new = _aligned(self.cap * k, self.buf.dtype)
            lb_new = np.zeros(self.cap, np.int64)
            tb_new = _aligned(self.cap * C, self.buf.dtype)
            self.xb, self.lb, self.tb = xb_new, lb_new, tb_new
        cdef double *lo = <double *>cnp.PyArray_DATA(losses)
        cdef int64_t *co = <int64_t *>cnp.PyArray_DATA(correct)
        cdef char *xb = <char *>cnp.PyArray_DATA(self.xb)
        cdef int64_t *lb = <int64_t *>cnp.PyArray_DATA(self.lb)
        cdef char *tb = <char *>cnp.PyArray_DATA(self.tb)
        cdef const char *bx
        cdef const int64_t *bl
        cdef const char *bt
        cdef char *g0 = self._G(self.p_oi[(self.n_ops - 1) * NI + I_GOUT])
        cdef Py_ssize_t r0, n, i, src, b = 0, done = 0
        cdef double loss
        cdef bint ok = True, fused
        cdef int flags = K.fp_flags()
        cdef unsigned ftz
        self._enter(bs)
        with nogil:
            ftz = fa_ftz_enter() if self.flush else 0
            r0 = 0
            while r0 < rows:
                n = rows - r0 if rows - r0 < bs else bs
                if n == 1 and skip_single and r0 > 0:
                    co[b] = -1
                    lo[b] = 0.0
                    b += 1
                    break
                if op == NULL:
                    bx = xp + r0 * k * self.isz
                    bl = lp + r0 if lp != NULL else NULL
                    bt = tp + r0 * C * self.isz if tp != NULL else NULL
                else:
                    for i in range(n):
                        src = op[r0 + i]
                        memcpy(xb + i * k * self.isz, xp + src * k * self.isz, <size_t>(k * self.isz))
                        if lp != NULL:
                            lb[i] = lp[src]
                        if tp != NULL:
                            memcpy(tb + i * C * self.isz, tp + src * C * self.isz, <size_t>(C * self.isz))
                    bx = xb
                    bl = lb if lp != NULL else NULL
                    bt = tb if tp != NULL else NULL
                if check and training and self.state_bytes:
                    memcpy(self.p_state_prev, self.p_state, <size_t>self.state_bytes)
                self.kd_now = self.kd_on
                self._forward(bx, n, training, seed, counter0 + <uint64_t>b)
                loss = self._loss(self._T(self.out_t, bx), n, bl, bt, g0)
                co[b] = self._correct(self._T(self.out_t, bx), n, bl, bt)
                lo[b] = loss
                fused = self._fuse(opt, h, s1, s2, t0 + done + 1, check)
                self._backward(bx, n, training, seed, counter0 + <uint64_t>b, diag)
                self.fz_opt = OPT_NONE
                if check:
                    ok = isfinite(loss) and not self._grad_bad()
                    if not ok:
                        if training and self.state_bytes:
                            memcpy(self.p_state, self.p_state_prev, <size_t>self.state_bytes)
                        b += 1
                        break
                if not fused:
                    self._update(opt, h, s1, s2, t0 + done + 1)
                done += 1
                b += 1
                r0 += n
            if self.flush:
                fa_ftz_leave(ftz)
            K.fp_restore(flags)
        self.busy = 0
        self.ok = ok
        if diag and b > 0:
            self.diag_ok = 1
        return done

    def gemms_only(self, cnp.ndarray X):
        """Only the matrix products of one step on X (for the benchmarks: the limit of a
        step with this BLAS; in the step's floating-point mode, flush_subnormals).  Leaves
        the buffers and grad with meaningless values."""
        cdef Py_ssize_t rows = cnp.PyArray_DIM(X, 0)
        cdef const char *xp = <const char *>cnp.PyArray_DATA(X)
        cdef int i
        cdef const int64_t *oi
        cdef unsigned ftz
        cdef int flags = K.fp_flags()
        self._enter(rows)
        with nogil:
            ftz = fa_ftz_enter() if self.flush else 0
            for i in range(self.n_ops):
                oi = self.p_oi + i * NI
                if oi[I_KIND] == OP_GEMM:
                    mm_nn(self.dt, self.isz, self._T(oi[I_IN], xp), self._P(oi[I_W]),
                          self._T(oi[I_OUT], xp), <int>rows, <int>oi[I_K], <int>oi[I_N])
            for i in range(self.n_ops - 1, -1, -1):
                oi = self.p_oi + i * NI
                if oi[I_KIND] == OP_GEMM:
                    mm_tn(self.dt, self.isz, self._T(oi[I_IN], xp), self._G(oi[I_GOUT]),
                          self.p_grad + oi[I_W] * self.isz, <int>rows, <int>oi[I_K],
                          <int>oi[I_N])
                    if oi[I_GIN] >= 0:  # (beta = 1 where the step accumulates: residual)
                        mm_nt(self.dt, self.isz, self._G(oi[I_GOUT]), self._P(oi[I_W]),
                              self._G(oi[I_GIN]), <int>rows, <int>oi[I_K], <int>oi[I_N],
                              1.0 if oi[I_ACC] & 1 else 0.0)
            if self.flush:
                fa_ftz_leave(ftz)
            K.fp_restore(flags)
        self.busy = 0

    def kernels_only(self, cnp.ndarray X):
        """Only the elementwise ops of one training step on X, forward then backward (bias
        + activation, BatchNorm, dropout, residual add, PReLU; no GEMM, loss or update), in
        the step's floating-point mode (for the benchmarks: with gemms_only and
        update_only, the lower bound of a step).  Leaves meaningless values behind."""
        cdef Py_ssize_t rows = cnp.PyArray_DIM(X, 0)
        cdef const char *xp = <const char *>cnp.PyArray_DATA(X)
        cdef int i
        cdef unsigned ftz
        cdef int flags = K.fp_flags()
        self._enter(rows)
        with nogil:
            ftz = fa_ftz_enter() if self.flush else 0
            self.kd_now = self.kd_on
            for i in range(self.n_ops):
                if self.p_oi[i * NI + I_KIND] != OP_GEMM:
                    self._op_fwd(self.p_oi + i * NI, self.p_of + i * NF, xp, rows, True, 0, 0)
            for i in range(self.n_ops - 1, -1, -1):
                if self.p_oi[i * NI + I_KIND] != OP_GEMM:
                    self._op_bwd(self.p_oi + i * NI, self.p_of + i * NF, xp, rows, True, 0, 0,
                                 False)
            if self.flush:
                fa_ftz_leave(ftz)
            K.fp_restore(flags)
        self.busy = 0

    def update_only(self, int opt, cnp.ndarray hyper, cnp.ndarray state1=None,
                    cnp.ndarray state2=None, long long t=1):
        """Only the optimizer update of a step (grad as it is), in the step's floating-point
        mode (for the benchmarks: the update's share of a step)."""
        cdef const double *h = <const double *>cnp.PyArray_DATA(hyper)
        cdef char *s1 = NULL if state1 is None else <char *>cnp.PyArray_DATA(state1)
        cdef char *s2 = NULL if state2 is None else <char *>cnp.PyArray_DATA(state2)
        cdef unsigned ftz
        cdef int flags = K.fp_flags()
        self._enter(0)
        with nogil:
            ftz = fa_ftz_enter() if self.flush else 0
            self._update(opt, h, s1, s2, t)
            if self.flush:
                fa_ftz_leave(ftz)
            K.fp_restore(flags)
        self.busy = 0

    def output(self, Py_ssize_t rows):
        """A view of the output tensor's buffer for the last `rows`-row batch."""
        cdef Py_ssize_t C = self.p_w[self.out_t], o = self.p_toff[self.out_t]
        return self.buf[o:o + rows * C].reshape(rows, C)

    def forward(self, cnp.ndarray X, cnp.ndarray out):
        """out = the network's output (before the loss's link) for X in evaluation mode,
        in blocks of `capacity` rows."""
        cdef Py_ssize_t rows = cnp.PyArray_DIM(X, 0), r0, nr
        cdef Py_ssize_t k = self.p_w[0], C = self.p_w[self.out_t]
        cdef const char *xp = <const char *>cnp.PyArray_DATA(X)
        cdef char *op = <char *>cnp.PyArray_DATA(out)
        cdef int flags = K.fp_flags()
        cdef unsigned ftz
        self._enter(0)
        with nogil:
            ftz = fa_ftz_enter() if self.flush else 0
            r0 = 0
            while r0 < rows:
                nr = rows - r0 if rows - r0 < self.cap else self.cap
                self.kd_now = False
                self._forward(xp + r0 * k * self.isz, nr, False, 0, 0)
                memcpy(op + r0 * C * self.isz, self._T(self.out_t, xp + r0 * k * self.isz),
                       <size_t>(nr * C * self.isz))
                r0 += nr
            if self.flush:
                fa_ftz_leave(ftz)
            K.fp_restore(flags)
        self.busy = 0

    def loss_of(self, cnp.ndarray X, object labels, object target):
        """the loss over X in evaluation mode (in blocks of `capacity` rows; the gradient
        buffers are scratch)"""
        cdef Py_ssize_t rows = cnp.PyArray_DIM(X, 0), r0, nr
        cdef Py_ssize_t k = self.p_w[0], C = self.p_w[self.out_t]
        cdef const char *xp = <const char *>cnp.PyArray_DATA(X)
        cdef const int64_t *lp = NULL if labels is None else <const int64_t *>cnp.PyArray_DATA(<cnp.ndarray>labels)
        cdef const char *tp = NULL if target is None else <const char *>cnp.PyArray_DATA(<cnp.ndarray>target)
        cdef char *g0 = self.p_g
        cdef double total = 0.0
        cdef int flags = K.fp_flags()
        cdef unsigned ftz
        self._enter(0)
        with nogil:
            ftz = fa_ftz_enter() if self.flush else 0
            r0 = 0
            while r0 < rows:
                nr = rows - r0 if rows - r0 < self.cap else self.cap
                self.kd_now = False
                self._forward(xp + r0 * k * self.isz, nr, False, 0, 0)
                total += nr * self._loss(self._T(self.out_t, xp + r0 * k * self.isz), nr,
                                         lp + r0 if lp != NULL else NULL,
                                         tp + r0 * C * self.isz if tp != NULL else NULL, g0)
                r0 += nr
            if self.flush:
                fa_ftz_leave(ftz)
            K.fp_restore(flags)
        self.busy = 0
        return total / rows if rows else 0.0

    # -- scikit-learn's minibatch epoch (fastact.sklearn; the loops are src/_nn_sk.pxi) --
    cdef double _sk_update(self, const int64_t *segs, Py_ssize_t n_segs, int solver,
                           const double *h, char *s1, char *s2, long long t,
                           double c) noexcept nogil:
        """scikit-learn's update of every parameter, the L2 term c W on the dense weights
        (segs: their offset, size pairs, in increasing offsets) and none on the rest
        (biases, BatchNorm, PReLU); returns sum ||W||^2 before the update when c != 0 (a
        negative weight sum makes c negative: its L2 term counts too, as scikit-learn's)"""
        cdef Py_ssize_t i, pos = 0, off, n
        cdef Py_ssize_t isz = self.isz
        cdef double lr_t = sk_adam_lr(h, t) if solver == SK_ADAM else 0.0, sq = 0.0
        for i in range(n_segs + 1):
            off = segs[2 * i] if i < n_segs else self.n_params
            n = segs[2 * i + 1] if i < n_segs else 0
            sk_update(self.dt, solver, h, self.p_theta + pos * isz, self.p_grad + pos * isz,
                      s1 + pos * isz, s2 + pos * isz if s2 != NULL else NULL, off - pos, lr_t,
                      0.0, False)
            sq += sk_update(self.dt, solver, h, self.p_theta + off * isz,
                            self.p_grad + off * isz, s1 + off * isz,
                            s2 + off * isz if s2 != NULL else NULL, n, lr_t, c, c != 0)
            pos = off + n
        return sq

    def _sk_check(self, X, labels, target, weights, order, bs, out_kind, solver, hyper,
                  state1, state2, losses):
        """sk_epoch's arguments, checked before any pointer is taken (the estimator passes
        them right; this keeps a wrong call from reading or writing out of bounds)"""
        dtype = self.theta.dtype
        rows = X.shape[0] if X.ndim == 2 else -1
        k, C = int(self.widths[0]), int(self.widths[self.out_t])

        def array(a, name, dt, size):
            if not (isinstance(a, np.ndarray) and a.dtype == dt and a.flags.c_contiguous
                    and a.size == size):
                raise ValueError(f"sk_epoch: {name} must be a C-contiguous {np.dtype(dt)} "
                                 f"array of {size} elements.")

        if solver not in SK_SOLVERS.values() or out_kind not in SK_OUTPUTS.values():
            raise ValueError(f"sk_epoch: unknown solver {solver} or out_kind {out_kind}; "
                             f"valid: {SK_SOLVERS}, {SK_OUTPUTS}.")
        if rows < 0 or X.shape[1] != k:
            raise ValueError(f"sk_epoch: X must be 2-D with {k} columns; got {X.shape}.")
        array(X, "X", dtype, rows * k)
        if out_kind == SK_SOFTMAX:
            array(labels, "labels (softmax)", np.int64, rows)
            if rows and (labels.min() < 0 or labels.max() >= C):
                raise ValueError(f"sk_epoch: labels must be in [0, {C}).")
        else:
            array(target, "target", dtype, rows * C)
        if weights is not None:
            array(weights, "weights", np.float64, rows)
        if order is not None:
            array(order, "order", np.int64, rows)
            if rows and (order.min() < 0 or order.max() >= rows):
                raise ValueError(f"sk_epoch: order must index the {rows} rows.")
        if bs < 1:
            raise ValueError(f"sk_epoch: bs must be >= 1; got {bs}.")
        array(hyper, "hyper", np.float64, 4 if solver == SK_ADAM else 3)
        array(state1, "state1", dtype, self.n_params)
        if solver == SK_ADAM:
            array(state2, "state2 (adam)", dtype, self.n_params)
        array(losses, "losses", np.float64, losses.size if losses is not None else -1)
        if losses.size < (rows + bs - 1) // bs:
            raise ValueError(f"sk_epoch: losses needs a slot per batch, "
                             f"{(rows + bs - 1) // bs}; got {losses.size}.")

    def sk_epoch(self, cnp.ndarray X, object labels, object target, object weights,
                 object order, Py_ssize_t bs, int out_kind, int solver, cnp.ndarray hyper,
                 cnp.ndarray state1, cnp.ndarray state2, long long t0, double alpha,
                 uint64_t seed, uint64_t counter, bint skip_single, cnp.ndarray losses):
        """One epoch of scikit-learn's MLP minibatch loop: batches of bs rows of X (the rows
        in `order`, an int64 permutation, or in order), each a training step with
        scikit-learn's loss (out_kind: SK_OUTPUTS; labels for softmax, else targets),
        per-sample weights (float64, or None), L2 penalty alpha on the dense weights and
        update (solver: SK_SOLVERS; hyper: adam (lr, beta_1, beta_2, epsilon), sgd (lr,
        momentum, nesterov); state1/state2 its moments or velocity; t0 steps done before).
        losses[b] gets batch b's loss (with the L2 term); with skip_single a last batch of
        one row is left out.  Stops before the update of a step whose loss or gradient is
        not finite (last_ok False, running statistics put back).  Returns the number of
        steps applied."""
        self._sk_check(X, labels, target, weights, order, bs, out_kind, solver, hyper, state1,
                       state2, losses)
        cdef Py_ssize_t rows = cnp.PyArray_DIM(X, 0), k = self.p_w[0], C = self.p_w[self.out_t]
        cdef const char *xp = <const char *>cnp.PyArray_DATA(X)
        # only the argument this output reads (_sk_check checked that one)
        cdef const int64_t *lp = (NULL if labels is None or out_kind != SK_SOFTMAX
                                  else <const int64_t *>cnp.PyArray_DATA(<cnp.ndarray>labels))
        cdef const char *tp = (NULL if target is None or out_kind == SK_SOFTMAX
                               else <const char *>cnp.PyArray_DATA(<cnp.ndarray>target))
        cdef const double *wp = NULL if weights is None else <const double *>cnp.PyArray_DATA(<cnp.ndarray>weights)
        cdef const int64_t *op = NULL if order is None else <const int64_t *>cnp.PyArray_DATA(<cnp.ndarray>order)
        cdef const double *h = <const double *>cnp.PyArray_DATA(hyper)
        cdef char *s1 = <char *>cnp.PyArray_DATA(state1)
        cdef char *s2 = NULL if state2 is None else <char *>cnp.PyArray_DATA(state2)
        # the dense weights (offset, size), by offset: the parameters with the L2 penalty
        gemm = self.ops_i[self.ops_i[:, I_KIND] == OP_GEMM]
        gemm = gemm[np.argsort(gemm[:, I_W])]
        cdef cnp.ndarray segs_a = np.ascontiguousarray(
            np.stack([gemm[:, I_W], gemm[:, I_K] * gemm[:, I_N]], axis=1).reshape(-1),
            dtype=np.int64)
        cdef const int64_t *segs = <const int64_t *>cnp.PyArray_DATA(segs_a)
        cdef Py_ssize_t n_segs = gemm.shape[0]
        if order is not None and self.xb.shape[0] < self.cap * k:
            # all three first (a MemoryError leaves the old ones, consistent)
            xb_new = _aligned(self.cap * k, self.buf.dtype)
            lb_new = np.zeros(self.cap, np.int64)
            tb_new = _aligned(self.cap * C, self.buf.dtype)
            self.xb, self.lb, self.tb = xb_new, lb_new, tb_new
        cdef cnp.ndarray wbuf = np.zeros(bs if order is not None and wp != NULL else 0, np.float64)
        cdef double *wb = <double *>cnp.PyArray_DATA(wbuf)
        cdef double *lo = <double *>cnp.PyArray_DATA(losses)
        cdef char *xb = <char *>cnp.PyArray_DATA(self.xb)
        cdef int64_t *lb = <int64_t *>cnp.PyArray_DATA(self.lb)
        cdef char *tb = <char *>cnp.PyArray_DATA(self.tb)
        cdef const char *bx
        cdef const int64_t *bl
        cdef const char *bt
        cdef const double *bw
        cdef char *g0 = self._G(self.p_oi[(self.n_ops - 1) * NI + I_GOUT])
        cdef Py_ssize_t r0, n, i, src, b = 0, done = 0
        cdef double loss, sw_sum
        cdef bint ok = True
        cdef int flags = K.fp_flags()
        cdef unsigned ftz
        self._enter(bs)
        with nogil:
            ftz = fa_ftz_enter() if self.flush else 0
            r0 = 0
            while r0 < rows:
                n = rows - r0 if rows - r0 < bs else bs
                if n == 1 and skip_single and r0 > 0:
                    lo[b] = 0.0
                    break
                if op == NULL:
                    bx = xp + r0 * k * self.isz
                    bl = lp + r0 if lp != NULL else NULL
                    bt = tp + r0 * C * self.isz if tp != NULL else NULL
                    bw = wp + r0 if wp != NULL else NULL
                else:
                    fa_sk_gather(xb, xp, op + r0, n, k * self.isz)
                    for i in range(n):
                        src = op[r0 + i]
                        if lp != NULL:
                            lb[i] = lp[src]
                        if tp != NULL:
                            memcpy(tb + i * C * self.isz, tp + src * C * self.isz, <size_t>(C * self.isz))
                        if wp != NULL:
                            wb[i] = wp[src]
                    bx = xb
                    bl = lb if lp != NULL else NULL
                    bt = tb if tp != NULL else NULL
                    bw = wb if wp != NULL else NULL
                sw_sum = <double>n
                if bw != NULL:
                    sw_sum = 0.0
                    for i in range(n):
                        sw_sum += bw[i]
                if self.state_bytes:
                    memcpy(self.p_state_prev, self.p_state, <size_t>self.state_bytes)
                self.kd_now = self.kd_on
                self._forward(bx, n, True, seed, counter + <uint64_t>b)
                loss = sk_out_loss(self.dt, out_kind, self._T(self.out_t, bx), bl, bt, g0,
                                   self.p_work, bw, sw_sum, n, C)
                # the non-finite check op by op, right after each op's backward (in cache)
                self.fz_opt = OPT_NONE
                self.fz_check = self.fusable and self.fuse_on
                self.fz_bad = False
                self._backward(bx, n, True, seed, counter + <uint64_t>b, False)
                lo[b] = loss
                b += 1
                ok = isfinite(loss) and not self._grad_bad()
                if not ok:
                    if self.state_bytes:
                        memcpy(self.p_state, self.p_state_prev, <size_t>self.state_bytes)
                    break
                # the L2 term of the loss: the weights before the update, summed in its pass
                lo[b - 1] += 0.5 * alpha * self._sk_update(
                    segs, n_segs, solver, h, s1, s2, t0 + done + 1, alpha / sw_sum) / sw_sum
                done += 1
                r0 += n
            if self.flush:
                fa_ftz_leave(ftz)
            K.fp_restore(flags)
        self.busy = 0
        self.ok = ok
        return done
