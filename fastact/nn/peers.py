"""The training step of a network as fastact's peers run it: NumPy written well, and
PyTorch eager; plus the limit, the step's GEMMs alone.  Used by benches/bench_nn.py and
`fastact bench --nn`, so both time the same candidates.

A network here is (depth, width, batch, activation, variant) with variant one of
"plain", "batchnorm" (dense -> BatchNorm -> activation), "dropout" (p = 0.5 after each
hidden activation) and "residual" (h + f(h) on every hidden layer but the first);
n_in = width, 10 classes, softmax cross-entropy, float32, SGD with a fixed learning rate.
"""

from __future__ import annotations

import numpy as np

VARIANTS = ("plain", "batchnorm", "dropout", "residual")
GRID_ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "prelu", "elu", "gelu", "silu")
CLASSES = 10
LR = 0.001
DROP_P = 0.5


def mlp_options(variant):
    """MLP keywords of a variant: "plain", or parts joined by "+" ("batchnorm+dropout")"""
    opts = {}
    for part in variant.split("+"):
        if part not in VARIANTS:
            raise ValueError(
                f"unknown variant {part!r}; choose from {list(VARIANTS)} (or several joined by '+')"
            )
        opts.update(
            {
                "plain": {},
                "batchnorm": {"batchnorm": "before"},
                "dropout": {"dropout": DROP_P},
                "residual": {"residual": True},
            }[part]
        )
    return opts


def make_net(cls, depth, width, activation, variant, seed=1):
    # (a timed network may diverge after many steps on one batch; that is not an error here)
    return cls(
        [width] + [width] * depth + [CLASSES],
        activation,
        seed=seed,
        on_nonfinite="ignore",
        **mlp_options(variant),
    )


def data(width, rows, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((rows, width)).astype(np.float32), rng.integers(0, CLASSES, rows)


# ---- NumPy, written well -------------------------------------------------------------


def _np_act(name):
    """(forward, derivative from (input z, output a)) in float32 NumPy"""
    f32 = np.float32
    if name == "sigmoid":

        def f(z):
            return 1 / (1 + np.exp(-z))

        return f, lambda z, a: a * (1 - a)
    if name == "tanh":
        return np.tanh, lambda z, a: 1 - a * a
    if name == "relu":
        return (lambda z: np.maximum(z, 0)), (lambda z, a: (z > 0).astype(np.float32))
    if name == "leaky_relu":
        return (lambda z: np.where(z > 0, z, f32(0.01) * z)), (
            lambda z, a: np.where(z > 0, f32(1), f32(0.01))
        )
    if name == "elu":
        return (lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0)))), (
            lambda z, a: np.where(z > 0, f32(1), a + 1)
        )
    if name == "gelu":
        from scipy.special import erf

        r2 = f32(np.sqrt(2))  # (a float64 scalar would make z / it, and erf, float64)

        def f(z):
            return z * (0.5 * (1 + erf(z / r2)))

        def d(z, a):
            cdf = 0.5 * (1 + erf(z / r2))
            return cdf + z * np.exp(-0.5 * z * z) / np.float32(np.sqrt(2 * np.pi))

        return f, d
    if name == "silu":

        def f(z):
            return z / (1 + np.exp(-z))

        def d(z, a):
            s = 1 / (1 + np.exp(-z))
            return s * (1 + z * (1 - s))

        return f, d
    raise ValueError(f"no NumPy step for {name!r}")


class NumpyStep:
    """One SGD step as a competent NumPy user writes it (float32 throughout, in-place
    updates, the stable log-softmax, BatchNorm's backward through the usual three
    terms, dropout masks from a Generator)."""

    def __init__(self, net, activation, variant):
        self.W = [W.copy() for W, _ in net.params]
        self.b = [b.copy() for _, b in net.params]
        self.act = activation
        self.variant = variant
        n = len(self.W) - 1
        self.gamma = [np.ones(W.shape[1], np.float32) for W in self.W[:n]]
        self.beta = [np.zeros(W.shape[1], np.float32) for W in self.W[:n]]
        self.slope = [np.float32(0.25)] * n
        self.f, self.d = (None, None) if activation == "prelu" else _np_act(activation)
        self.rng = np.random.default_rng(0)

    def _act(self, l, z):
        if self.act == "prelu":
            return np.where(z > 0, z, self.slope[l] * z)
        return self.f(z)

    def _deriv(self, l, z, a):
        if self.act == "prelu":
            return np.where(z > 0, np.float32(1), self.slope[l])
        return self.d(z, a)

    def __call__(self, X, y):
        v = self.variant
        n = len(self.W) - 1
        cache = []
        h = X
        for l in range(n):
            z = h @ self.W[l] + self.b[l]
            bn = None
            if "batchnorm" in v:
                mu = z.mean(axis=0)
                var = z.var(axis=0)
                inv = 1 / np.sqrt(var + np.float32(1e-5))
                xhat = (z - mu) * inv
                u = self.gamma[l] * xhat + self.beta[l]
                bn = (xhat, inv)
            else:
                u = z
            a = self._act(l, u)
            mask = None
            if "dropout" in v:
                mask = (self.rng.random(a.shape, np.float32) >= DROP_P) * np.float32(
                    1 / (1 - DROP_P)
                )
                out = a * mask
            else:
                out = a
            if "residual" in v and l > 0:
                out = out + h
            cache.append((h, u, a, bn, mask))
            h = out
        zL = h @ self.W[n] + self.b[n]
        zL -= zL.max(axis=1, keepdims=True)
        e = np.exp(zL)
        s = e.sum(axis=1, keepdims=True)
        rows = X.shape[0]
        loss = float(np.mean(np.log(s[:, 0]) - zL[np.arange(rows), y]))
        g = e / s
        g[np.arange(rows), y] -= 1
        g /= rows
        gW = h.T @ g
        gb = g.sum(axis=0)
        g = g @ self.W[n].T
        self.W[n] -= LR * gW
        self.b[n] -= LR * gb
        for l in range(n - 1, -1, -1):
            hin, u, a, bn, mask = cache[l]
            gout = g
            if mask is not None:
                g = g * mask
            du = g * self._deriv(l, u, a)
            if self.act == "prelu":
                gs = float(np.sum(g * np.where(u > 0, 0, u)))
            if bn is not None:
                xhat, inv = bn
                dgamma = (du * xhat).sum(axis=0)
                dbeta = du.sum(axis=0)
                dz = (self.gamma[l] * inv / rows) * (rows * du - dbeta - xhat * dgamma)
                self.gamma[l] -= LR * dgamma
                self.beta[l] -= LR * dbeta
            else:
                dz = du
            gW = hin.T @ dz
            gb = dz.sum(axis=0)
            if l > 0:
                g = dz @ self.W[l].T
                if "residual" in v:
                    g += gout
            self.W[l] -= LR * gW
            self.b[l] -= LR * gb
            if self.act == "prelu":
                self.slope[l] = np.float32(self.slope[l] - LR * gs)
        return loss


# ---- PyTorch eager ---------------------------------------------------------------------


def torch_step(net, activation, variant, X, y, threads=1):
    """(step(X, y) -> loss) for the same network in PyTorch eager, or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    nn = torch.nn
    acts = {
        "sigmoid": nn.Sigmoid,
        "tanh": nn.Tanh,
        "relu": nn.ReLU,
        "leaky_relu": nn.LeakyReLU,
        "prelu": nn.PReLU,
        "elu": nn.ELU,
        "gelu": nn.GELU,
        "silu": nn.SiLU,
    }

    class Residual(nn.Module):
        def __init__(self, f):
            super().__init__()
            self.f = f

        def forward(self, x):
            return x + self.f(x)

    layers = []
    params = net.params
    for i, (W, b) in enumerate(params):
        lin = nn.Linear(W.shape[0], W.shape[1])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W.T.copy()))
            lin.bias.copy_(torch.from_numpy(b.copy()))
        if i == len(params) - 1:
            layers.append(lin)
            break
        block = [lin]
        if "batchnorm" in variant:
            block.append(nn.BatchNorm1d(W.shape[1]))
        block.append(acts[activation]())
        if "dropout" in variant:
            block.append(nn.Dropout(DROP_P))
        f = nn.Sequential(*block)
        layers.append(Residual(f) if "residual" in variant and i > 0 else f)
    model = nn.Sequential(*layers)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    lossf = nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(np.asarray(y, np.int64))

    def step(X_, y_):
        opt.zero_grad(set_to_none=True)
        loss = lossf(model(Xt), yt)
        loss.backward()
        opt.step()
        return float(loss.detach())

    return step


def candidates(depth, width, rows, activation, variant, impls, threads=1):
    """{name: step(X, y)} for the requested candidates ("fastact", "gemm", "numpy",
    "reference", "torch"; and "kernels", "update": the step's elementwise ops and its
    update alone, with "gemm" the parts of its lower bound), all starting from the same
    weights; the GEMM limit and the parts return None, the others the loss before their
    update."""
    import fastact

    X, y = data(width, rows)
    net = make_net(fastact.MLP, depth, width, activation, variant)
    out = {}
    for impl in impls:
        if impl == "fastact":
            n = make_net(fastact.MLP, depth, width, activation, variant)
            opt = fastact.optim.SGD(LR)
            out[impl] = (lambda n, opt: lambda X_, y_: n.train_step(X_, y_, opt))(n, opt)  # noqa: B023
        elif impl == "gemm":
            n = make_net(fastact.MLP, depth, width, activation, variant)
            n._engine.reserve(rows)
            out[impl] = (lambda e: lambda X_, y_: e.gemms_only(X_))(n._engine)
        elif impl == "kernels":  # the elementwise ops alone (a part of the lower bound)
            n = make_net(fastact.MLP, depth, width, activation, variant)
            n._engine.reserve(rows)
            out[impl] = (lambda e: lambda X_, y_: e.kernels_only(X_))(n._engine._e)
        elif impl == "update":  # the SGD update alone (a part of the lower bound)
            n = make_net(fastact.MLP, depth, width, activation, variant)
            opt = fastact.optim.SGD(LR)
            opt._bind(n.theta)
            out[impl] = (lambda e, h: lambda X_, y_: e.update_only(1, h))(n._engine._e, opt._hyper)
        elif impl == "reference":
            n = make_net(fastact.reference.MLP, depth, width, activation, variant)
            opt = fastact.optim.SGD(LR)
            out[impl] = (lambda n, opt: lambda X_, y_: n.train_step(X_, y_, opt))(n, opt)  # noqa: B023
        elif impl == "numpy":
            out[impl] = NumpyStep(net, activation, variant)
        elif impl == "torch":
            s = torch_step(net, activation, variant, X, y, threads)
            if s is not None:
                out[impl] = s
        else:
            raise ValueError(
                f"unknown candidate {impl!r}; choose from fastact, gemm, kernels, update, "
                "numpy, reference, torch."
            )
    return out, X, y, net
