"""The native backend: kernels that call the Cython entry points.

The public functions themselves are defined once in fastact/_api.py and bound
here to `NativeKernels`; fastact.reference binds the same definitions to plain
NumPy.  Each public call validates and allocates in Python
(fastact/_plumbing.py), then makes one call into fastact._activations
(src/_activations.pyx), which releases the GIL and runs the C kernels.

Forward:  ``fastact.<name>(x, <params>, *, out=None, n_threads=None) -> y``
Backward: ``fastact.<name>_backward(grad_out, saved, <params>, *, out=None,
n_threads=None) -> grad_in``, where ``saved`` is the forward input or output
as ``fastact.ACTIVATIONS[name].saves`` says.
"""

from __future__ import annotations

from . import _plumbing as P
from . import _validate as V
from ._api import KernelsBase, make_api

try:
    from . import _activations as _ext
except ImportError as exc:  # exercised on broken installs (tests/test_config.py)
    import importlib.util

    # not built at all: Python's own text ("... partially initialized module ... most
    # likely due to a circular import") points the wrong way
    why = (
        f"could not be imported: {exc}"
        if importlib.util.find_spec(f"{__package__}._activations") is not None
        else "is not built (no compiled _activations module beside this file)"
    )
    raise ImportError(
        f"fastact's native extension (fastact._activations) {why}. Build it with "
        "`pip install .` (or `pip install -e .`) from the source tree, which needs a C "
        "compiler, or set FASTACT_PUREPYTHON=1 to run the pure-NumPy reference instead "
        "(slow)."
    ) from None

_ID = _ext.ACT_IDS
_NOP = (0.0, 0.0, 0.0, 0.0)


class NativeKernels(KernelsBase):
    """Kernel provider for fastact._api.make_api: the compiled loops."""

    FAST_PRELU = True
    prelu1_bwd = staticmethod(_ext.prelu1_backward)

    # the whole call in Cython: the fast path, else self._slow_* (set up in __init__)
    unary = staticmethod(_ext.unary)
    binary = staticmethod(_ext.binary)

    def _slow_unary(self, x, out, n_threads, kname, p=_NOP):
        return P.unary(x, out, n_threads, self.fwd(kname, p))

    def _slow_binary(self, g, s, out, n_threads, kname, p=_NOP):
        return P.binary(g, s, out, n_threads, self.bwd(kname, p))

    def __init__(self):
        self._cache = {}
        _ext.set_fallbacks(self._slow_unary, self._slow_binary)

    def _cached(self, key, make):
        k = self._cache.get(key)
        if k is None:
            k = make()
            if len(self._cache) < 1024:  # many distinct parameter values: stop caching
                self._cache[key] = k
        return k

    def fwd(self, kname, p=_NOP):
        def make():
            kid, (a, b, c, d) = _ID[kname], p

            def kernel(x, y, nt):
                _ext.forward(kid, x, y, a, b, c, d, nt)

            return kernel

        return self._cached(("f", kname, p), make)

    def bwd(self, kname, p=_NOP):
        def make():
            kid, (a, b, c, d) = _ID[kname], p

            def kernel(g, s, o, nt):
                _ext.backward(kid, g, s, o, a, b, c, d, nt)

            return kernel

        return self._cached(("b", kname, p), make)

    def bias_fwd(self, kname, p=_NOP):
        kid, (a, b_, c, d) = _ID[kname], p

        def kernel(z, b, y, rows, cols, nt):
            _ext.bias_forward(kid, z, b, y, rows, cols, a, b_, c, d, nt)

        return kernel

    def bias_bwd(self, kname, p=_NOP):
        kid, (a, b_, c, d) = _ID[kname], p

        def kernel(g, s, b, dz, db, rows, cols, nt):
            _ext.bias_backward(kid, g, s, b, dz, db, rows, cols, a, b_, c, d, nt)

        return kernel

    @staticmethod
    def prelu_fwd(x, w, y, rows, cols, nt):
        if w.size != cols:
            # one slope for all: leaky_relu's loop computes the same (x * w rounded once)
            # without reading a slope per element
            p = V.params_leaky_relu(float(w[0]))
            _ext.forward(_ID["leaky_relu"], x, y, p[0], p[1], p[2], p[3], nt)
        else:
            _ext.prelu_forward(x, w, y, rows, cols, nt)

    @staticmethod
    def prelu_bwd(g, x, w, gx, gw, rows, cols, nt):
        _ext.prelu_backward(g, x, w, gx, gw, rows, cols, nt)

    def softmax_fwd(self, log_):
        def kernel(x, y, rows, cols, nt):
            _ext.softmax_forward(x, y, rows, cols, log_, nt)

        return kernel

    def softmax_bwd(self, log_):
        def kernel(g, y, gx, rows, cols, nt):
            _ext.softmax_backward(g, y, gx, rows, cols, log_, nt)

        return kernel

    @staticmethod
    def xent(x, labels, target, grad, loss, rows, cols, scale, nt):
        _ext.softmax_xent(x, labels, target, grad, loss, rows, cols, scale, nt)


_api = make_api(NativeKernels(), __name__)
globals().update(_api)
__all__ = sorted(_api)
