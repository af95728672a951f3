"""Validate, allocate, lay out, compute, deliver: the body of every public function.

Each function here takes the user's arguments and a `kernel` callable that
does the arithmetic on contiguous arrays of one dtype; the native API passes
the Cython entry points, `fastact.reference` passes NumPy code.  So the two
backends share every check, error message, layout rule and `out=` rule.

Rules:
- inputs: float32/float64 as they are, integers -> float64, else TypeError;
- any shape and strides: non-contiguous inputs are copied to the layout of
  the first input (C, or Fortran when it is Fortran-contiguous); so are
  misaligned ones (V.contiguous; np.ascontiguousarray keeps a misaligned
  array as it is, and the kernels dereference typed pointers);
- out=: exact shape and dtype, writeable; it may be an input itself where the
  kernel reads each element before writing it (all elementwise kernels),
  never a partial overlap; a non-contiguous out gets the result copied in.
"""

from __future__ import annotations

import numpy as np

from . import _validate as V


def aligned_zeros(shape, dtype):
    """np.zeros(shape, dtype) starting on a 64-byte boundary (a cache line; NumPy aligns
    large arrays to 16 bytes only): for the parameters, gradients and optimizer state that
    the network's loops stream through."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape, dtype=np.int64))
    raw = np.zeros(n + 64 // dtype.itemsize, dtype)
    k = (-raw.ctypes.data % 64) // dtype.itemsize
    return raw[k : k + n].reshape(shape)


def _maybe_scalar(y, x_in, out):
    if out is None and y.ndim == 0 and not isinstance(x_in, np.ndarray):
        return y[()]
    return y


def unary(x_in, out, n_threads, kernel):
    """y = f(x) elementwise; kernel(x, y, n_threads)."""
    x = V.as_float_array(x_in, "x")
    nt = V.check_threads(n_threads)
    order = V.layout_order(x)
    xc = V.contiguous(x, order)
    if out is not None:
        V.check_out(out, x.shape, x.dtype)
        V.check_overlap(out, x, "out", "x", identical_ok=True)
    t = V.Target(out, x.shape, x.dtype, order)
    if x.size:
        kernel(xc, t.buf, nt)
    return _maybe_scalar(t.result(), x_in, out)


def binary(g_in, s_in, out, n_threads, kernel, saved_name="saved"):
    """out = g * f'(s) elementwise; kernel(g, s, out, n_threads)."""
    g = V.as_float_array(g_in, "grad_out")
    s = V.as_float_array(s_in, saved_name)
    V.check_same_dtype(g, s, "grad_out", saved_name)
    V.check_same_shape(g, s, "grad_out", saved_name)
    nt = V.check_threads(n_threads)
    order = V.layout_order(g)
    gc = V.contiguous(g, order)
    sc = V.contiguous(s, order)
    if out is not None:
        V.check_out(out, g.shape, g.dtype)
        V.check_overlap(out, g, "out", "grad_out", identical_ok=True)
        V.check_overlap(out, s, "out", saved_name, identical_ok=True)
    t = V.Target(out, g.shape, g.dtype, order)
    if g.size:
        kernel(gc, sc, t.buf, nt)
    return _maybe_scalar(t.result(), g_in, out)


def _rows_cols(shape):
    cols = shape[-1] if len(shape) else 1
    size = 1
    for d in shape:
        size *= d
    return (size // cols if cols else 0), cols


def _bias(bias_in, z, func):
    b = V.as_float_array(bias_in, "bias")
    V.check_same_dtype(z, b, "z" if func == "bias_act" else "grad_out", "bias")
    cols = z.shape[-1]
    if b.shape != (cols,):
        raise ValueError(
            f"{func}: bias must have shape ({cols},) to broadcast over the rows of a "
            f"z of shape {z.shape}; got {b.shape}."
        )
    return V.contiguous(b, "C")


def bias_forward(z_in, bias_in, out, n_threads, kernel):
    """y = f(z + bias), bias over the last axis; kernel(z, b, y, rows, cols, n_threads)."""
    z = V.as_float_array(z_in, "z")
    if z.ndim < 1:
        raise ValueError(
            "bias_act: z must have at least one dimension (rows x features); got a scalar."
        )
    b = _bias(bias_in, z, "bias_act")
    nt = V.check_threads(n_threads)
    zc = V.contiguous(z, "C")
    if out is not None:
        V.check_out(out, z.shape, z.dtype)
        V.check_overlap(out, z, "out", "z", identical_ok=True)
        V.check_overlap(out, b, "out", "bias", identical_ok=False)
    t = V.Target(out, z.shape, z.dtype, "C")
    rows, cols = _rows_cols(z.shape)
    if z.size:
        kernel(zc, b, t.buf, rows, cols, nt)
    return t.result()


def bias_backward(g_in, s_in, bias_in, needs_bias, out, n_threads, kernel):
    """(dz, db): dz = g * f'(s (+ bias)), db = dz summed over the rows, in double.

    kernel(g, s, b_or_None, dz, db_f64, rows, cols, n_threads)."""
    g = V.as_float_array(g_in, "grad_out")
    if g.ndim < 1:
        raise ValueError(
            "bias_act_backward: grad_out must have at least one dimension; got a scalar."
        )
    s = V.as_float_array(s_in, "saved")
    V.check_same_dtype(g, s, "grad_out", "saved")
    V.check_same_shape(g, s, "grad_out", "saved")
    b = None
    if needs_bias:
        if bias_in is None:
            raise ValueError(
                "bias_act_backward: this activation saves its input, so `saved` is z (before the "
                "bias) and bias= is required to rebuild z + bias; pass bias=the forward's bias."
            )
        b = _bias(bias_in, g, "bias_act_backward")
    elif bias_in is not None:
        _bias(bias_in, g, "bias_act_backward")  # still validated, then unused
    nt = V.check_threads(n_threads)
    gc = V.contiguous(g, "C")
    sc = V.contiguous(s, "C")
    if out is not None:
        V.check_out(out, g.shape, g.dtype)
        V.check_overlap(out, g, "out", "grad_out", identical_ok=True)
        V.check_overlap(out, s, "out", "saved", identical_ok=True)
        if b is not None:
            V.check_overlap(out, b, "out", "bias", identical_ok=False)
    t = V.Target(out, g.shape, g.dtype, "C")
    rows, cols = _rows_cols(g.shape)
    db = np.zeros(cols, np.float64)
    if g.size:
        kernel(gc, sc, b, t.buf, db, rows, cols, nt)
    with np.errstate(over="ignore"):  # a sum beyond float32's range is inf, quietly
        grad_bias = db.astype(g.dtype)
    return t.result(), grad_bias


def prelu_forward(x_in, weight, out, n_threads, kernel):
    """y = x > 0 ? x : w x with w per last-axis feature; kernel(x, w, y, rows, cols, nt)."""
    x = V.as_float_array(x_in, "x")
    w = V.prelu_weight(weight, x)
    nt = V.check_threads(n_threads)
    xc = V.contiguous(x, "C")
    rows, cols = _rows_cols(x.shape)
    # w: one value per column, or a single value (the kernel broadcasts it)
    if out is not None:
        V.check_out(out, x.shape, x.dtype)
        V.check_overlap(out, x, "out", "x", identical_ok=True)
    t = V.Target(out, x.shape, x.dtype, "C")
    if x.size:
        kernel(xc, w, t.buf, rows, cols, nt)
    return _maybe_scalar(t.result(), x_in, out)


_SCALAR_W_COLS = 1024


def prelu_backward(g_in, x_in, weight, out, n_threads, kernel):
    """(grad_in, grad_weight); kernel(g, x, w, gx, gw_f64, rows, cols, nt)."""
    g = V.as_float_array(g_in, "grad_out")
    x = V.as_float_array(x_in, "saved")
    V.check_same_dtype(g, x, "grad_out", "saved")
    V.check_same_shape(g, x, "grad_out", "saved")
    w = V.prelu_weight(weight, x)
    wshape = np.shape(weight)
    nt = V.check_threads(n_threads)
    gc = V.contiguous(g, "C")
    xc = V.contiguous(x, "C")
    rows, cols = _rows_cols(x.shape)
    scalar_w = w.size != cols or (cols == 1 and len(wshape) == 0)
    if w.size != cols:
        w = np.full(cols, w[0], x.dtype)
    if out is not None:
        V.check_out(out, x.shape, x.dtype)
        V.check_overlap(out, g, "out", "grad_out", identical_ok=True)
        V.check_overlap(out, x, "out", "saved", identical_ok=True)
    t = V.Target(out, x.shape, x.dtype, "C")
    if scalar_w and x.size > _SCALAR_W_COLS:
        # one slope: the sum runs over every element, so lay the data out as rows of
        # _SCALAR_W_COLS (+ a tail row) rather than one row of x.shape[-1] columns (a
        # float64 partial sum per element of a 1-D input, read back and summed)
        n = x.size
        c = _SCALAR_W_COLS
        m = n // c * c
        gf, xf, of = gc.reshape(-1), xc.reshape(-1), t.buf.reshape(-1)
        gw = np.zeros(c, np.float64)
        kernel(gf[:m], xf[:m], np.full(c, w[0], x.dtype), of[:m], gw, m // c, c, nt)
        if m < n:
            gt = np.zeros(n - m, np.float64)
            kernel(gf[m:], xf[m:], np.full(n - m, w[0], x.dtype), of[m:], gt, 1, n - m, nt)
            gw = np.concatenate([gw, gt])
    else:
        gw = np.zeros(cols, np.float64)
        if x.size:
            kernel(gc, xc, w, t.buf, gw, rows, cols, nt)
    with np.errstate(over="ignore", invalid="ignore"):  # beyond the dtype's range: inf
        if scalar_w:
            gw = np.array(gw.sum())
        gw = gw.astype(x.dtype)
    if (
        x.dtype == np.float64
        and not np.isfinite(gw).all()
        and not np.may_share_memory(t.buf, gc)  # (in place: the inputs are gone)
        and not np.may_share_memory(t.buf, xc)
    ):
        gw = _prelu_gw_split(gc, xc, rows, cols, scalar_w, gw)
    return _maybe_scalar(t.result(), g_in, out), gw.reshape(wshape)


_BIG = 2.0**500  # products at least this large are summed scaled by 2**-1060


def _prelu_gw_split(g, x, rows, cols, scalar_w, gw):
    """float64 slope gradients whose double sums overflowed on the way (a partial sum
    beyond the range, or +inf and -inf partials: NaN) though the inputs are finite:
    summed again in two parts, the products below 2**500 as they are (no partial sum of
    them can overflow) and the larger ones scaled by 2**-1060 (exactly; normal numbers,
    so nothing is lost), then put together: inf only when the sum itself is beyond
    float64's range.  A sum with a NaN or an inf among its inputs keeps the direct
    answer."""
    g2, x2 = g.reshape(rows, cols), x.reshape(rows, cols)
    axis = None if scalar_w else 0
    with np.errstate(all="ignore"):
        neg = ~(x2 > 0)
        scaled = (x2 * 2.0**-530) * (g2 * 2.0**-530)
        big = neg & (np.abs(scaled) >= _BIG * 2.0**-1060)
        small = np.where(neg & ~big, x2 * g2, 0.0).sum(axis=axis)
        large = np.where(big, scaled, 0.0).sum(axis=axis)
        fixed = (large * 2.0**530) * 2.0**530 + small
        finite = np.isfinite(g2).all(axis=axis) & np.isfinite(x2).all(axis=axis)
    return np.where(finite & ~np.isfinite(gw), fixed, gw)


def rowwise_forward(x_in, out, n_threads, kernel, func):
    """softmax family over the last axis; kernel(x, y, rows, cols, nt)."""
    x = V.as_float_array(x_in, "x")
    if x.ndim < 1:
        raise ValueError(
            f"{func}: x must have at least one dimension (the axis to normalise); got a scalar."
        )
    nt = V.check_threads(n_threads)
    xc = V.contiguous(x, "C")
    if out is not None:
        V.check_out(out, x.shape, x.dtype)
        V.check_overlap(out, x, "out", "x", identical_ok=True)
    t = V.Target(out, x.shape, x.dtype, "C")
    rows, cols = _rows_cols(x.shape)
    if x.size:
        kernel(xc, t.buf, rows, cols, nt)
    return t.result()


def rowwise_backward(g_in, y_in, out, n_threads, kernel, func):
    """kernel(g, y, gx, rows, cols, nt)."""
    g = V.as_float_array(g_in, "grad_out")
    if g.ndim < 1:
        raise ValueError(f"{func}: grad_out must have at least one dimension; got a scalar.")
    y = V.as_float_array(y_in, "saved")
    V.check_same_dtype(g, y, "grad_out", "saved")
    V.check_same_shape(g, y, "grad_out", "saved")
    nt = V.check_threads(n_threads)
    gc = V.contiguous(g, "C")
    yc = V.contiguous(y, "C")
    if out is not None:
        V.check_out(out, g.shape, g.dtype)
        V.check_overlap(out, g, "out", "grad_out", identical_ok=True)
        V.check_overlap(out, y, "out", "saved", identical_ok=True)
    t = V.Target(out, g.shape, g.dtype, "C")
    rows, cols = _rows_cols(g.shape)
    if g.size:
        kernel(gc, yc, t.buf, rows, cols, nt)
    return t.result()


def cross_entropy(logits_in, labels_in, out, n_threads, kernel):
    """(mean loss as a float, grad_logits).

    kernel(x, labels_int64_or_None, target_or_None, grad, loss_rows_f64, rows, cols, scale, nt)."""
    x = V.as_float_array(logits_in, "logits")
    if x.ndim != 2:
        raise ValueError(
            f"softmax_cross_entropy: logits must be 2-D (batch, classes); got shape {x.shape}."
        )
    rows, cols = x.shape
    if rows == 0:
        raise ValueError(
            "softmax_cross_entropy: the batch is empty; a mean over 0 rows is undefined."
        )
    if cols == 0:
        raise ValueError("softmax_cross_entropy: logits have 0 classes.")
    lab = labels_in if isinstance(labels_in, np.ndarray) else np.asarray(labels_in)
    labels = target = None
    if lab.ndim == 1:
        if lab.dtype.kind not in "iu":
            raise TypeError(
                "softmax_cross_entropy: 1-D labels are class indices and must be integers; "
                f"got dtype {lab.dtype}. Convert with labels.astype(np.int64), or pass "
                f"probability rows of shape {x.shape}."
            )
        if lab.shape[0] != rows:
            raise ValueError(
                f"softmax_cross_entropy: {lab.shape[0]} labels for {rows} rows of logits."
            )
        bad = (lab < 0) | (lab >= cols)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"softmax_cross_entropy: labels must be class indices in [0, {cols}); "
                f"labels[{i}] = {lab[i]}."
            )
        labels = V.contiguous(np.asarray(lab, dtype=np.int64), "C")
    elif lab.ndim == 2:
        if lab.dtype.kind == "f" and not lab.dtype.isnative:
            lab = lab.astype(lab.dtype.newbyteorder("="))  # byte-swapped: as the logits
        if lab.dtype not in (V.F32, V.F64):
            raise TypeError(
                f"softmax_cross_entropy: 2-D labels are probability rows and must be float32 or "
                f"float64; got dtype {lab.dtype}. Convert with labels.astype(np.float64), or pass "
                f"class indices as a 1-D integer array."
            )
        if lab.shape != x.shape:
            raise ValueError(
                f"softmax_cross_entropy: probability labels must have the logits' shape {x.shape}; "
                f"got {lab.shape}."
            )
        target = V.contiguous(np.asarray(lab, dtype=x.dtype), "C")
    else:
        raise ValueError(
            f"softmax_cross_entropy: labels must be 1-D class indices or 2-D probability rows; "
            f"got shape {lab.shape}."
        )
    nt = V.check_threads(n_threads)
    xc = V.contiguous(x, "C")
    if out is not None:
        V.check_out(out, x.shape, x.dtype)
        V.check_overlap(out, x, "out", "logits", identical_ok=False)
        if target is not None:
            V.check_overlap(out, target, "out", "labels", identical_ok=False)
    t = V.Target(out, x.shape, x.dtype, "C")
    loss_rows = np.empty(rows, np.float64)
    kernel(xc, labels, target, t.buf, loss_rows, rows, cols, 1.0 / rows, nt)
    return float(loss_rows.sum() / rows), t.result()
