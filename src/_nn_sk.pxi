# scikit-learn's MLP training step, as fastact.sklearn runs it in native epochs
# (Engine.sk_epoch): the output layer's loss and gradient with per-sample weights, the
# L2 penalty of the dense weights and scikit-learn's Adam and SGD updates.  Included by
# src/_nn.pyx before the engine.  The NumPy twin is fastact.reference.NumpyEngine.sk_epoch.
#
# scikit-learn (sklearn/neural_network/_multilayer_perceptron.py, _base.py), for a batch
# with sample weights s (all 1 without them) and S = sum s:
#   output delta  G = (link(z) - y) s / S        link: softmax, logistic, identity, exp
#   loss          sum_r s_r loss_r / S + 0.5 alpha sum ||W||^2 / S   (W before the update)
#   coef grad     xᵀ G + alpha W / S;  intercept grad  sum_r G_r
# where loss_r is -log(clip(p_label)) (softmax), -sum_c [y log clip(p) + (1 - y) log
# clip(1 - p)] (logistic; clip to [eps, 1 - eps] with eps of the dtype, as log_loss
# clips), 0.5 sum_c (z - y)^2 / C (squared error: its gradient is not divided by C) and
# sum_c [y log(y / p) - y + p] (half Poisson deviance, p = exp(z)).

from libc.math cimport log, pow

cdef extern from "fa_sk_loops.h" nogil:
    double fa_sk_adam_f32(float *p, const float *g, float *m, float *v, Py_ssize_t n, double b1,
                          double b2, double lr_t, double eps, double c, int want_sq)
    double fa_sk_adam_f64(double *p, const double *g, double *m, double *v, Py_ssize_t n,
                          double b1, double b2, double lr_t, double eps, double c, int want_sq)
    double fa_sk_sgd_f32(float *p, const float *g, float *vel, Py_ssize_t n, double lr,
                         double momentum, int nesterov, double c, int want_sq)
    double fa_sk_sgd_f64(double *p, const double *g, double *vel, Py_ssize_t n, double lr,
                         double momentum, int nesterov, double c, int want_sq)

cdef enum:
    SK_SOFTMAX = 0      # out_kind: the output activation (labels for softmax, else targets)
    SK_LOGISTIC = 1
    SK_IDENTITY = 2
    SK_EXP = 3
    SK_SGD = 1          # solver
    SK_ADAM = 2

SK_OUTPUTS = {"softmax": SK_SOFTMAX, "logistic": SK_LOGISTIC, "identity": SK_IDENTITY,
              "exp": SK_EXP}
SK_SOLVERS = {"sgd": SK_SGD, "adam": SK_ADAM}


cdef double _sk_softmax(const real *z, const int64_t *labels, real *g, const double *sw,
                        double sw_sum, Py_ssize_t rows, Py_ssize_t C, double eps,
                        double *e) noexcept nogil:
    """softmax output: p = exp(z - max) / sum (scikit-learn's softmax, one exp per element;
    e: C doubles of scratch), g = (p - onehot) s / S; returns the weighted mean of
    -log(clip(p_label))"""
    cdef Py_ssize_t r, j, lab
    cdef double total = 0.0, m, tot, w, f, p
    cdef const real *zr
    for r in range(rows):
        zr = z + r * C
        m = zr[0]
        for j in range(1, C):
            if zr[j] > m:
                m = zr[j]
        tot = 0.0
        for j in range(C):
            e[j] = exp(<double>zr[j] - m)
            tot += e[j]
        w = sw[r] if sw != NULL else 1.0
        f = w / sw_sum
        lab = labels[r]
        for j in range(C):
            g[r * C + j] = <real>((e[j] / tot - (1.0 if j == lab else 0.0)) * f)
        p = e[lab] / tot
        p = eps if p < eps else (1.0 - eps if p > 1.0 - eps else p)
        total -= w * log(p)
    return total / sw_sum


cdef double _sk_out_loss(int kind, const real *z, const real *t, real *g,
                         const double *sw, double sw_sum, Py_ssize_t rows, Py_ssize_t C,
                         double eps) noexcept nogil:
    """logistic, identity and exp outputs: g = (link(z) - t) s / S; returns the weighted
    mean loss (the module comment's loss_r)"""
    cdef Py_ssize_t r, j
    cdef double total = 0.0, rl, zi, ti, p, q, w, e
    for r in range(rows):
        w = sw[r] if sw != NULL else 1.0
        rl = 0.0
        for j in range(C):
            zi = z[r * C + j]
            ti = t[r * C + j]
            if kind == SK_LOGISTIC:
                if zi >= 0:
                    p = 1.0 / (1.0 + exp(-zi))
                else:
                    e = exp(zi)
                    p = e / (1.0 + e)
                q = p if p > eps else eps
                q = q if q < 1.0 - eps else 1.0 - eps
                if ti != 0.0:
                    rl -= ti * log(q)
                if ti != 1.0:
                    rl -= (1.0 - ti) * log(1.0 - q)
            elif kind == SK_IDENTITY:
                p = zi
                rl += 0.5 * (zi - ti) * (zi - ti) / C
            else:
                p = exp(zi)
                if ti != 0.0:
                    rl += ti * log(ti / p)
                rl += p - ti
            g[r * C + j] = <real>((p - ti) * w / sw_sum)
        total += w * rl
    return total / sw_sum


cdef double sk_out_loss(int dt, int kind, const void *z, const int64_t *labels,
                        const void *t, void *g, double *scratch, const double *sw,
                        double sw_sum, Py_ssize_t rows, Py_ssize_t C) noexcept nogil:
    """the output delta G into g and the batch's loss (without the L2 term); scratch: C
    doubles"""
    cdef double eps = 1.1920928955078125e-07 if dt == FA_F32 else 2.220446049250313e-16
    if dt == FA_F32:
        if kind == SK_SOFTMAX:
            return _sk_softmax(<const float *>z, labels, <float *>g, sw, sw_sum, rows, C, eps,
                               scratch)
        return _sk_out_loss(kind, <const float *>z, <const float *>t, <float *>g, sw, sw_sum,
                            rows, C, eps)
    if kind == SK_SOFTMAX:
        return _sk_softmax(<const double *>z, labels, <double *>g, sw, sw_sum, rows, C, eps,
                           scratch)
    return _sk_out_loss(kind, <const double *>z, <const double *>t, <double *>g, sw, sw_sum,
                        rows, C, eps)


cdef inline double sk_adam_lr(const double *h, long long t) noexcept nogil:
    """Adam's step size lr sqrt(1 - beta_2^t) / (1 - beta_1^t) at step t >= 1"""
    return h[0] * sqrt(1.0 - pow(h[2], <double>t)) / (1.0 - pow(h[1], <double>t))


cdef inline double sk_update(int dt, int solver, const double *h, char *p, const char *g,
                             char *s1, char *s2, Py_ssize_t n, double lr_t, double c,
                             bint want_sq) noexcept nogil:
    """the update of n parameters, their gradient with the L2 term c p; h: adam (lr, beta_1,
    beta_2, epsilon; lr_t: sk_adam_lr), sgd (lr, momentum, nesterov).  Returns the sum of
    squares of the parameters before the update when want_sq (else 0)."""
    if n <= 0:
        return 0.0
    if solver == SK_ADAM:
        if dt == FA_F32:
            return fa_sk_adam_f32(<float *>p, <const float *>g, <float *>s1, <float *>s2, n,
                                  h[1], h[2], lr_t, h[3], c, want_sq)
        return fa_sk_adam_f64(<double *>p, <const double *>g, <double *>s1, <double *>s2, n,
                              h[1], h[2], lr_t, h[3], c, want_sq)
    if dt == FA_F32:
        return fa_sk_sgd_f32(<float *>p, <const float *>g, <float *>s1, n, h[0], h[1],
                             h[2] != 0, c, want_sq)
    return fa_sk_sgd_f64(<double *>p, <const double *>g, <double *>s1, n, h[0], h[1],
                         h[2] != 0, c, want_sq)
