"""fastact.optim: constructor checks, binding, and the update formulas.

The formulas are checked twice: against an independent NumPy transcription of
torch.optim's update rules written here (rtol 1e-12), and, when torch is
installed, against torch.optim itself on the same parameters and gradients
(rtol 1e-10).  In float32, 20 steps against torch.optim (a few float32 epsilons
per step) and the NumPy twin's float32 update (bit for bit).  Every test runs on
the native MLP and on fastact.reference.MLP (under FASTACT_PUREPYTHON=1 both are
the reference).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

import fastact
from fastact import reference as ref
from fastact.optim import SGD, Adam, AdamW, Optimizer

CLASSES = [pytest.param(fastact.MLP, id="fastact"), pytest.param(ref.MLP, id="reference")]
SIZES = [5, 7, 3]
STEPS = 3


def esc(s):
    return re.escape(s)


def data(rows=16, seed=1):
    r = np.random.default_rng(seed)
    X = r.standard_normal((rows, SIZES[0]))
    y = r.integers(0, SIZES[-1], rows).astype(np.int64)
    return X, y


def make_net(cls, seed=0):
    return cls(SIZES, "tanh", dtype=np.float64, seed=seed)


# ---- constructor validation -------------------------------------------------------

NOT_FINITE = [float("nan"), float("inf"), -float("inf"), True, False, "0.1", None, 1j]


@pytest.mark.parametrize("bad", NOT_FINITE, ids=repr)
@pytest.mark.parametrize(
    "make, cls, name",
    [
        (lambda v: SGD(v), "SGD", "lr"),
        (lambda v: SGD(0.1, momentum=v), "SGD", "momentum"),
        (lambda v: SGD(0.1, weight_decay=v), "SGD", "weight_decay"),
        (lambda v: SGD(0.1, max_grad_norm=v), "SGD", "max_grad_norm"),
        (lambda v: Adam(lr=v), "Adam", "lr"),
        (lambda v: Adam(betas=(v, 0.9)), "Adam", "betas[0]"),
        (lambda v: Adam(betas=(0.9, v)), "Adam", "betas[1]"),
        (lambda v: Adam(eps=v), "Adam", "eps"),
        (lambda v: Adam(weight_decay=v), "Adam", "weight_decay"),
        (lambda v: Adam(max_grad_norm=v), "Adam", "max_grad_norm"),
        (lambda v: AdamW(lr=v), "AdamW", "lr"),
        (lambda v: AdamW(betas=(v, 0.9)), "AdamW", "betas[0]"),
        (lambda v: AdamW(betas=(0.9, v)), "AdamW", "betas[1]"),
        (lambda v: AdamW(eps=v), "AdamW", "eps"),
        (lambda v: AdamW(weight_decay=v), "AdamW", "weight_decay"),
        (lambda v: AdamW(max_grad_norm=v), "AdamW", "max_grad_norm"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_not_a_finite_real(make, cls, name, bad):
    if bad is None and (name == "max_grad_norm" or (name == "weight_decay" and cls != "SGD")):
        make(bad)  # None: no clipping / Adam's and AdamW's default decay
        return
    with pytest.raises(
        ValueError, match=esc(f"{cls}: {name} must be a finite real number; got {bad!r}.")
    ):
        make(bad)


@pytest.mark.parametrize(
    "make, msg",
    [
        (lambda: SGD(-0.1), "SGD: lr must be >= 0.0; got -0.1."),
        (lambda: SGD(0.1, momentum=-0.5), "SGD: momentum must be >= 0.0; got -0.5."),
        (lambda: SGD(0.1, weight_decay=-1e-4), "SGD: weight_decay must be >= 0.0; got -0.0001."),
        (lambda: Adam(lr=-1e-3), "Adam: lr must be >= 0.0; got -0.001."),
        (lambda: Adam(eps=-1e-8), "Adam: eps must be > 0.0; got -1e-08."),
        (lambda: Adam(weight_decay=-1), "Adam: weight_decay must be >= 0.0; got -1.0."),
        (lambda: Adam(betas=(-0.1, 0.9)), "Adam: betas[0] must be >= 0.0; got -0.1."),
        (lambda: Adam(betas=(0.9, -0.1)), "Adam: betas[1] must be >= 0.0; got -0.1."),
        (lambda: AdamW(lr=-1), "AdamW: lr must be >= 0.0; got -1.0."),
        (lambda: AdamW(weight_decay=-0.01), "AdamW: weight_decay must be >= 0.0; got -0.01."),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_negative(make, msg):
    with pytest.raises(ValueError, match=esc(msg)):
        make()


@pytest.mark.parametrize("opt", [Adam, AdamW])
@pytest.mark.parametrize(
    "betas, which, value",
    [((1.0, 0.999), 0, 1.0), ((0.9, 1.0), 1, 1.0), ((1.5, 0.999), 0, 1.5), ((0.9, 2), 1, 2.0)],
)
def test_beta_at_least_one(opt, betas, which, value):
    with pytest.raises(
        ValueError, match=esc(f"{opt.__name__}: betas[{which}] must be < 1.0; got {value}.")
    ):
        opt(betas=betas)


@pytest.mark.parametrize("opt", [Adam, AdamW])
@pytest.mark.parametrize(
    "betas",
    [0.9, (0.9,), (0.9, 0.99, 0.999), None, [], iter([0.9])],
    ids=["scalar", "one", "three", "None", "empty", "short-iter"],
)
def test_betas_not_a_pair(opt, betas):
    with pytest.raises(
        ValueError, match=esc(f"{opt.__name__}: betas must be a pair (beta1, beta2); got ")
    ):
        opt(betas=betas)


def test_betas_any_pair_iterable():
    assert Adam(betas=[0.5, 0.75]).betas == (0.5, 0.75)
    assert Adam(betas=np.array([0.5, 0.75])).betas == (0.5, 0.75)
    assert type(Adam(betas=(np.float32(0.5), 1 - 2**-4)).betas[0]) is float


@pytest.mark.parametrize("momentum", [0, 0.0])
def test_nesterov_needs_momentum(momentum):
    with pytest.raises(
        ValueError, match=esc("SGD: nesterov=True needs momentum > 0 (as in torch.optim.SGD).")
    ):
        SGD(0.1, momentum=momentum, nesterov=True)
    with pytest.raises(ValueError, match=esc("SGD: nesterov=True needs momentum > 0")):
        SGD(0.1, momentum=momentum, nesterov=np.True_)


@pytest.mark.parametrize("bad", [1, 0, "yes", None, 1.0])
def test_nesterov_not_bool(bad):
    with pytest.raises(TypeError, match=esc(f"SGD: nesterov must be True or False; got {bad!r}.")):
        SGD(0.1, momentum=0.9, nesterov=bad)


def test_nesterov_numpy_bool():
    assert SGD(0.1, momentum=0.9, nesterov=np.True_).nesterov is True
    assert SGD(0.1, nesterov=np.False_).nesterov is False


@pytest.mark.parametrize("bad", [0, 0.0, -1, -1e-9])
@pytest.mark.parametrize(
    "make, cls",
    [
        (lambda v: SGD(0.1, max_grad_norm=v), "SGD"),
        (lambda v: Adam(max_grad_norm=v), "Adam"),
        (lambda v: AdamW(max_grad_norm=v), "AdamW"),
    ],
    ids=["SGD", "Adam", "AdamW"],
)
def test_max_grad_norm_not_positive(make, cls, bad):
    with pytest.raises(
        ValueError, match=esc(f"{cls}: max_grad_norm must be > 0.0; got {float(bad)}.")
    ):
        make(bad)


def test_sgd_lr_required():
    with pytest.raises(TypeError):
        SGD()


# ---- defaults, repr, hparams --------------------------------------------------------


def test_weight_decay_defaults():
    assert Adam().weight_decay == 0.0
    assert AdamW().weight_decay == 1e-2
    assert AdamW(weight_decay=None).weight_decay == 1e-2
    assert Adam(weight_decay=None).weight_decay == 0.0
    assert AdamW(weight_decay=0).weight_decay == 0.0
    assert SGD(0.1).weight_decay == 0.0
    # the hyperparameter vector handed to the native step
    np.testing.assert_array_equal(AdamW()._hyper, [1e-3, 0.9, 0.999, 1e-8, 1e-2, 0.0])
    np.testing.assert_array_equal(Adam()._hyper, [1e-3, 0.9, 0.999, 1e-8, 0.0, 0.0])
    np.testing.assert_array_equal(
        SGD(0.5, 0.9, True, 1e-4, 2.0)._hyper, [0.5, 0.9, 1e-4, 1.0, 0.0, 2.0]
    )


def test_kinds_and_state_sizes():
    assert (SGD(0.1).kind, Adam().kind, AdamW().kind) == ("sgd", "adam", "adamw")
    assert SGD(0.1).n_state == 0
    assert SGD(0.1, momentum=0.9).n_state == 1
    assert Adam().n_state == 2 and AdamW().n_state == 2
    assert isinstance(AdamW(), Adam) and isinstance(AdamW(), Optimizer)
    for o in (SGD(0.1), Adam(), AdamW()):
        assert o.t == 0 and o.state == []


def test_repr():
    assert repr(SGD(0.1, momentum=0.9, nesterov=True)) == (
        "SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.0, max_grad_norm=None)"
    )
    assert repr(Adam()) == (
        "Adam(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.0, max_grad_norm=None)"
    )
    assert repr(AdamW(lr=0.01, max_grad_norm=1.5)) == (
        "AdamW(lr=0.01, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.01, max_grad_norm=1.5)"
    )
    assert AdamW().hparams() == {
        "lr": 1e-3,
        "betas": (0.9, 0.999),
        "eps": 1e-8,
        "weight_decay": 1e-2,
        "max_grad_norm": None,
    }


# ---- binding ----------------------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize(
    "make",
    [lambda: SGD(0.1), lambda: SGD(0.1, momentum=0.9), lambda: Adam(), lambda: AdamW()],
    ids=["SGD", "SGD-momentum", "Adam", "AdamW"],
)
def test_optimizer_serves_one_network(cls, make):
    X, y = data()
    a, b = make_net(cls), make_net(cls)
    opt = make()
    a.train_step(X, y, opt)
    assert opt.t == 1
    assert len(opt.state) == opt.n_state
    for s in opt.state:
        assert s.shape == a.theta.shape and s.dtype == a.theta.dtype
    before = b.theta.copy()
    with pytest.raises(
        ValueError,
        match=esc(
            f"this {type(opt).__name__} already holds the state of another network; "
            "create one optimizer per network."
        ),
    ):
        b.train_step(X, y, opt)
    np.testing.assert_array_equal(b.theta, before)  # refused before touching b
    assert opt.t == 1
    a.train_step(X, y, opt)  # still serves its own network
    assert opt.t == 2
    with pytest.raises(ValueError, match="already holds the state of another network"):
        b.fit(X, y, epochs=1, batch_size=8, optimizer=opt, verbose=0)
    # the refused optimizer is not kept: fit without one makes a fresh Adam
    assert getattr(b, "optimizer", None) is None
    b.fit(X, y, epochs=1, batch_size=8, verbose=0)
    assert isinstance(b.optimizer, Adam) and b.optimizer is not opt


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("make", [lambda: SGD(0.1, momentum=0.9), lambda: Adam(0.01)])
def test_a_copied_optimizer_resumes_with_a_copied_network(cls, make):
    import copy
    import pickle

    X, y = data()
    a = make_net(cls)
    opt = make()
    for _ in range(2):
        a.train_step(X, y, opt)
    twins = [
        (copy.deepcopy(a), copy.deepcopy(opt)),
        (pickle.loads(pickle.dumps(a)), pickle.loads(pickle.dumps(opt))),
    ]
    for _ in range(3):
        a.train_step(X, y, opt)
    for net, o in twins:
        assert o.t == 2
        for _ in range(3):
            net.train_step(X, y, o)
        np.testing.assert_array_equal(net.theta, a.theta)
        assert o.t == opt.t == 5
    o = copy.deepcopy(opt)
    with pytest.raises(
        ValueError,
        match=esc(
            f"this {type(o).__name__} (a copy) holds the state of a network with another "
            f"parameter layout ({a.theta.size} float64 in its flat array; this network's has "
        ),
    ):
        cls([5, 9, 3], "tanh", dtype=np.float64, seed=0).train_step(X, y, o)
    if isinstance(o, SGD):
        with pytest.raises(ValueError, match="momentum cannot be switched on or off"):
            o.momentum = 0.0


def test_the_base_class_and_unknown_kinds_are_refused():
    with pytest.raises(
        TypeError, match=esc("Optimizer is the base class of fastact.optim's optimizers")
    ):
        Optimizer()

    class Mine(SGD):
        kind = "lion"

    X, y = data()
    net = make_net(fastact.MLP)
    theta = net.theta.copy()
    for call in (
        lambda: net.train_step(X, y, Mine(0.1)),
        lambda: net.fit(X, y, epochs=1, optimizer=Mine(0.1), verbose=0),
    ):
        with pytest.raises(TypeError, match=esc("Mine is not one of fastact's optimizers")):
            call()
    np.testing.assert_array_equal(net.theta, theta)


def test_adam_eps_must_be_a_normal_number_of_the_networks_dtype():
    with pytest.raises(ValueError, match=esc("Adam: eps must be > 0.0; got -1.0.")):
        Adam(eps=-1.0)
    for make in (lambda: Adam(eps=0.0), lambda: AdamW(eps=0)):
        with pytest.raises(ValueError, match=esc("eps must be > 0.0; got 0.0.")):
            make()
    with pytest.raises(
        ValueError, match=esc("Adam: eps must be at least 2.2250738585072014e-308 (the smallest")
    ):
        Adam(eps=1e-320)  # subnormal: flushed to 0 in the update
    X, y = data()
    net = fastact.MLP(SIZES, "tanh", dtype=np.float32, seed=0)
    opt = Adam(eps=1e-40)  # a double, but 0 or subnormal in float32
    with pytest.raises(
        ValueError, match=esc("Adam: eps must be at least 1.1754943508222875e-38 for a float32")
    ):
        net.train_step(X.astype(np.float32), y, opt)
    assert opt.t == 0 and not opt.state
    opt = Adam()
    net.train_step(X.astype(np.float32), y, opt)
    with pytest.raises(ValueError, match=esc("Adam: eps must be at least 1.1754943508222875e-38")):
        opt.eps = 1e-40  # bound to a float32 network: its dtype decides


def test_a_copied_optimizer_needs_the_same_layout():
    import copy

    X, y = data(rows=16)
    X4 = X[:, :4]
    a = fastact.MLP([4, 4, 3], "tanh", dtype=np.float64, seed=0)
    b = fastact.MLP([4, 1, 4, 3], "tanh", dtype=np.float64, seed=0)
    assert a.theta.shape == b.theta.shape  # the same flat size: only the layout tells
    opt = Adam(1e-2)
    a.train_step(X4, y, opt)
    with pytest.raises(ValueError, match=esc("(a copy) holds the state of a network with another")):
        b.train_step(X4, y, copy.deepcopy(opt))
    c = copy.deepcopy(a)
    c.train_step(X4, y, copy.deepcopy(opt))  # the same layout: adopted


@pytest.mark.parametrize("cls", CLASSES)
def test_optimizer_refuses_other_dtype_same_size(cls):
    X, y = data()
    a = make_net(cls)
    b = cls(SIZES, "tanh", dtype=np.float32, seed=0)
    opt = Adam()
    a.train_step(X, y, opt)
    with pytest.raises(ValueError, match="this Adam already holds the state of another network"):
        b.train_step(X.astype(np.float32), y, opt)


# ---- the update formulas, against a NumPy transcription of torch.optim ----------------


class NumpySGD:
    def __init__(self, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        self.lr, self.mu, self.nesterov, self.wd = lr, momentum, nesterov, weight_decay
        self.buf, self.t = None, 0

    def step(self, p, g):
        self.t += 1
        d = g + self.wd * p
        if self.mu:
            self.buf = d.copy() if self.buf is None else self.mu * self.buf + d
            d = d + self.mu * self.buf if self.nesterov else self.buf
        return p - self.lr * d


class NumpyAdam:
    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
        self.lr, (self.b1, self.b2), self.eps, self.wd = lr, betas, eps, weight_decay
        self.decoupled = decoupled
        self.m = self.v = None
        self.t = 0

    def step(self, p, g):
        self.t += 1
        if self.m is None:
            self.m, self.v = np.zeros_like(p), np.zeros_like(p)
        if self.decoupled:
            p = p * (1 - self.lr * self.wd)
            d = g
        else:
            d = g + self.wd * p
        self.m = self.b1 * self.m + (1 - self.b1) * d
        self.v = self.b2 * self.v + (1 - self.b2) * d * d
        bc1 = 1 - self.b1**self.t
        bc2 = 1 - self.b2**self.t
        return p - self.lr / bc1 * self.m / (np.sqrt(self.v) / math.sqrt(bc2) + self.eps)


FORMULAS = [
    pytest.param(lambda: SGD(0.1), lambda: NumpySGD(0.1), id="sgd"),
    pytest.param(
        lambda: SGD(0.1, weight_decay=0.05), lambda: NumpySGD(0.1, weight_decay=0.05), id="sgd-wd"
    ),
    pytest.param(lambda: SGD(0.1, momentum=0.9), lambda: NumpySGD(0.1, 0.9), id="sgd-momentum"),
    pytest.param(
        lambda: SGD(0.1, momentum=0.8, nesterov=True),
        lambda: NumpySGD(0.1, 0.8, nesterov=True),
        id="sgd-nesterov",
    ),
    pytest.param(
        lambda: SGD(0.05, momentum=0.9, nesterov=True, weight_decay=0.1),
        lambda: NumpySGD(0.05, 0.9, True, 0.1),
        id="sgd-nesterov-wd",
    ),
    pytest.param(
        lambda: SGD(0.05, momentum=0.7, weight_decay=0.1),
        lambda: NumpySGD(0.05, 0.7, False, 0.1),
        id="sgd-momentum-wd",
    ),
    pytest.param(lambda: Adam(lr=0.05), lambda: NumpyAdam(0.05), id="adam"),
    pytest.param(
        lambda: Adam(lr=0.05, betas=(0.8, 0.95), eps=1e-6),
        lambda: NumpyAdam(0.05, (0.8, 0.95), 1e-6),
        id="adam-betas",
    ),
    pytest.param(
        lambda: Adam(lr=0.05, weight_decay=0.1),
        lambda: NumpyAdam(0.05, weight_decay=0.1),
        id="adam-wd",
    ),
    pytest.param(
        lambda: AdamW(lr=0.05),
        lambda: NumpyAdam(0.05, weight_decay=1e-2, decoupled=True),
        id="adamw",
    ),
    pytest.param(
        lambda: AdamW(lr=0.05, betas=(0.7, 0.9), eps=1e-5, weight_decay=0.3),
        lambda: NumpyAdam(0.05, (0.7, 0.9), 1e-5, 0.3, decoupled=True),
        id="adamw-wd",
    ),
]


def gradients_at(twin, theta, X, y):
    """The gradient train_step will use: the twin's compute_gradients at theta."""
    twin.theta[...] = theta
    twin.compute_gradients(X, y)
    return twin.grad_flat.copy()


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("make, make_ref", FORMULAS)
def test_update_formula(cls, make, make_ref):
    X, y = data()
    net, twin = make_net(cls), make_net(cls)
    opt, want = make(), make_ref()
    for step in range(1, STEPS + 1):
        theta = net.theta.copy()
        g = gradients_at(twin, theta, X, y)
        assert np.linalg.norm(g) > 1e-3
        loss = net.train_step(X, y, opt)
        assert loss == pytest.approx(twin.compute_gradients(X, y), rel=1e-13)
        # net.grads holds the gradient the update used (no clipping here)
        np.testing.assert_allclose(net.grad_flat, g, rtol=1e-13, atol=1e-300)
        expect = want.step(theta, g)
        assert not np.allclose(net.theta, theta, rtol=1e-6, atol=0)  # it moved
        np.testing.assert_allclose(
            net.theta, expect, rtol=1e-12, atol=1e-15, err_msg=f"step {step}"
        )
        assert opt.t == step


@pytest.mark.parametrize("cls", CLASSES)
def test_update_formula_uses_layer_views(cls):
    """The update reaches every layer's W and b through net.params."""
    X, y = data()
    net = make_net(cls)
    before = [(W.copy(), b.copy()) for W, b in net.params]
    net.train_step(X, y, SGD(0.1))
    for (W, b), (W0, b0), (gW, gb) in zip(net.params, before, net.grads):
        np.testing.assert_allclose(W, W0 - 0.1 * gW, rtol=1e-14, atol=1e-17)
        np.testing.assert_allclose(b, b0 - 0.1 * gb, rtol=1e-14, atol=1e-17)
        assert np.abs(gb).max() > 0


@pytest.mark.parametrize("cls", CLASSES)
def test_sgd_zero_lr_changes_nothing(cls):
    X, y = data()
    net = make_net(cls)
    theta = net.theta.copy()
    for opt in (SGD(0.0, momentum=0.9, weight_decay=0.1), Adam(lr=0.0), AdamW(lr=0.0)):
        n = make_net(cls)
        n.train_step(X, y, opt)
        n.train_step(X, y, opt)
        np.testing.assert_array_equal(n.theta, theta)


# ---- against torch.optim ------------------------------------------------------------

TORCH = [
    pytest.param(lambda: SGD(0.1), ("SGD", dict(lr=0.1)), id="sgd"),
    pytest.param(
        lambda: SGD(0.1, weight_decay=0.05), ("SGD", dict(lr=0.1, weight_decay=0.05)), id="sgd-wd"
    ),
    pytest.param(
        lambda: SGD(0.1, momentum=0.9), ("SGD", dict(lr=0.1, momentum=0.9)), id="sgd-momentum"
    ),
    pytest.param(
        lambda: SGD(0.05, momentum=0.9, nesterov=True, weight_decay=0.1),
        ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1)),
        id="sgd-nesterov-wd",
    ),
    pytest.param(lambda: Adam(lr=0.05), ("Adam", dict(lr=0.05)), id="adam"),
    pytest.param(
        lambda: Adam(lr=0.05, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1),
        ("Adam", dict(lr=0.05, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)),
        id="adam-wd",
    ),
    pytest.param(lambda: AdamW(lr=0.05), ("AdamW", dict(lr=0.05)), id="adamw-default-wd"),
    pytest.param(
        lambda: AdamW(lr=0.05, betas=(0.7, 0.9), eps=1e-5, weight_decay=0.3),
        ("AdamW", dict(lr=0.05, betas=(0.7, 0.9), eps=1e-5, weight_decay=0.3)),
        id="adamw-wd",
    ),
]


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("make, torch_spec", TORCH)
def test_against_torch(cls, make, torch_spec):
    torch = pytest.importorskip("torch")
    X, y = data()
    net, twin = make_net(cls), make_net(cls)
    opt = make()
    p = torch.nn.Parameter(torch.tensor(net.theta.copy(), dtype=torch.float64))
    name, kw = torch_spec
    topt = getattr(torch.optim, name)([p], **kw)
    for step in range(1, STEPS + 1):
        # torch gets the gradient at its own parameters, the net at its own
        g = gradients_at(twin, p.detach().numpy(), X, y)
        p.grad = torch.tensor(g, dtype=torch.float64)
        topt.step()
        net.train_step(X, y, opt)
        np.testing.assert_allclose(
            net.theta, p.detach().numpy(), rtol=1e-10, atol=1e-13, err_msg=f"step {step}"
        )


@pytest.mark.parametrize("cls", CLASSES)
def test_clipping_against_torch(cls):
    torch = pytest.importorskip("torch")
    X, y = data()
    net, twin = make_net(cls), make_net(cls)
    norm = np.linalg.norm(gradients_at(twin, net.theta, X, y))
    m = norm / 3
    opt = Adam(lr=0.05, max_grad_norm=m)
    p = torch.nn.Parameter(torch.tensor(net.theta.copy(), dtype=torch.float64))
    topt = torch.optim.Adam([p], lr=0.05)
    for _ in range(STEPS):
        p.grad = torch.tensor(gradients_at(twin, p.detach().numpy(), X, y), dtype=torch.float64)
        torch.nn.utils.clip_grad_norm_([p], m)
        topt.step()
        net.train_step(X, y, opt)
        np.testing.assert_allclose(net.grad_flat, p.grad.numpy(), rtol=1e-10, atol=1e-15)
        np.testing.assert_allclose(net.theta, p.detach().numpy(), rtol=1e-10, atol=1e-13)


# ---- float32: 20 steps against torch.optim and the NumPy twin --------------------------

F32_STEPS = 20
F32 = [
    pytest.param(
        lambda: Adam(lr=1e-2, weight_decay=0.1),
        ("Adam", dict(lr=1e-2, weight_decay=0.1)),
        id="adam-l2",
    ),
    pytest.param(
        lambda: AdamW(lr=1e-2, weight_decay=0.1),
        ("AdamW", dict(lr=1e-2, weight_decay=0.1)),
        id="adamw",
    ),
    pytest.param(  # 1 - beta1 >= 0.5: the other branch of ATen's lerp
        lambda: AdamW(lr=1e-2, betas=(0.3, 0.9), eps=1e-6, weight_decay=0.05),
        ("AdamW", dict(lr=1e-2, betas=(0.3, 0.9), eps=1e-6, weight_decay=0.05)),
        id="adamw-beta1-0.3",
    ),
    pytest.param(
        lambda: SGD(0.05, momentum=0.9, nesterov=True, weight_decay=1e-2),
        ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-2)),
        id="sgd-nesterov-wd",
    ),
]


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("make, torch_spec", F32)
def test_float32_steps_against_torch_and_twin(cls, make, torch_spec):
    """20 float32 steps of a small network; torch.optim and the twin's update get, each
    step, the gradient the network's own update used (net.grad_flat), so only the
    optimizers' arithmetic is compared.

    The twin computes the float32 update operation by operation as the native loop does
    (no FMA contraction on either side): equal bit for bit, parameters and state.

    torch.optim computes in float32 too, the same operations in the same order, except
    where ATen fuses a multiply-add (lerp, add with alpha): each step's update may then
    differ by a few float32 ulps of the update (Adam's ratio m / sqrt(v) also turns an
    ulp of a small, cancelled g + wd p into a larger relative change) and each parameter
    by an ulp of itself; these add up over the steps.  Hence |net - torch| <= 4 eps32
    steps (|torch| + lr), eps32 = 2^-23: 80 eps32 = 9.5e-6 relative for 20 steps; measured
    at most 12 eps32 with PyTorch 2.13 (AdamW 11.7, Adam 10.8; 37 eps32 for the former
    update in double)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    X = rng.standard_normal((32, 6)).astype(np.float32)
    y = rng.integers(0, 3, 32)
    net = cls([6, 16, 16, 3], "tanh", dtype=np.float32, seed=4)
    twin = ref.MLP([6, 16, 16, 3], "tanh", dtype=np.float32, seed=4)
    opt = make()
    name, kw = torch_spec
    p = torch.nn.Parameter(torch.tensor(net.theta.copy()))
    topt = getattr(torch.optim, name)([p], foreach=False, **kw)
    state = [np.zeros_like(twin.theta) for _ in range(opt.n_state)] + [None, None]
    tol = 4 * F32_STEPS * float(np.finfo(np.float32).eps)
    for step in range(1, F32_STEPS + 1):
        theta = net.theta.copy()
        net.train_step(X, y, opt)
        g = net.grad_flat.copy()
        assert g.dtype == np.float32 and np.linalg.norm(g) > 1e-3
        p.grad = torch.tensor(g)
        topt.step()
        twin.theta[...] = theta
        twin._engine.grad[...] = g
        twin._engine._update(opt.kind, opt._hyper, state[0], state[1], step)
        np.testing.assert_array_equal(net.theta, twin.theta, err_msg=f"step {step}")
        for a, b in zip(opt.state, state):
            np.testing.assert_array_equal(a, b, err_msg=f"step {step}")
    assert net.theta.dtype == np.float32
    assert not np.allclose(net.theta, cls([6, 16, 16, 3], "tanh", dtype=np.float32, seed=4).theta)
    np.testing.assert_allclose(net.theta, p.detach().numpy(), rtol=tol, atol=tol * kw["lr"])


# ---- max_grad_norm --------------------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize(
    "make",
    [
        lambda m: SGD(0.1, max_grad_norm=m),
        lambda m: SGD(0.1, momentum=0.9, max_grad_norm=m),
        lambda m: Adam(lr=0.01, max_grad_norm=m),
        lambda m: AdamW(lr=0.01, max_grad_norm=m),
    ],
    ids=["SGD", "SGD-momentum", "Adam", "AdamW"],
)
def test_max_grad_norm_clips(cls, make):
    X, y = data()
    net, twin = make_net(cls), make_net(cls)
    g = gradients_at(twin, net.theta, X, y)
    N = float(np.linalg.norm(g))
    m = N / 4
    net.train_step(X, y, make(m))
    got = float(np.sqrt(sum(np.sum(gW**2) + np.sum(gb**2) for gW, gb in net.grads)))
    assert got == pytest.approx(m * N / (N + 1e-6), rel=1e-9)
    assert got < 0.26 * N
    # every entry scaled by the same factor: the direction is kept
    np.testing.assert_allclose(net.grad_flat, g * (m / (N + 1e-6)), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("cls", CLASSES)
def test_max_grad_norm_update_uses_clipped(cls):
    X, y = data()
    net, twin = make_net(cls), make_net(cls)
    theta = net.theta.copy()
    g = gradients_at(twin, theta, X, y)
    N = float(np.linalg.norm(g))
    m = N / 2
    net.train_step(X, y, SGD(0.1, max_grad_norm=m))
    np.testing.assert_allclose(
        net.theta, theta - 0.1 * g * (m / (N + 1e-6)), rtol=1e-12, atol=1e-15
    )


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("factor", [10.0, 1.0 + 1e-3])
def test_max_grad_norm_above_norm_changes_nothing(cls, factor):
    X, y = data()
    net, twin = make_net(cls), make_net(cls)
    theta = net.theta.copy()
    g = gradients_at(twin, theta, X, y)
    N = float(np.linalg.norm(g))
    net.train_step(X, y, SGD(0.1, max_grad_norm=factor * N))
    np.testing.assert_allclose(net.grad_flat, g, rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(net.theta, theta - 0.1 * g, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("cls", CLASSES)
def test_max_grad_norm_float32(cls):
    X, y = data()
    X = X.astype(np.float32)
    net = cls(SIZES, "tanh", dtype=np.float32, seed=0)
    twin = cls(SIZES, "tanh", dtype=np.float32, seed=0)
    twin.compute_gradients(X, y)
    g = twin.grad_flat.astype(np.float64)
    N = float(np.linalg.norm(g))
    m = N / 5
    net.train_step(X, y, SGD(0.1, max_grad_norm=m))
    assert float(np.linalg.norm(net.grad_flat.astype(np.float64))) == pytest.approx(
        m * N / (N + 1e-6), rel=1e-5
    )


# -- hyperparameters changed between steps ------------------------------------------


@pytest.mark.parametrize(
    "attr,bad,msg",
    [
        ("lr", -1.0, "SGD: lr must be >= 0.0; got -1.0."),
        ("momentum", float("nan"), "SGD: momentum must be a finite real number; got nan."),
        ("weight_decay", True, "SGD: weight_decay must be a finite real number; got True."),
        ("nesterov", 1, "SGD: nesterov must be True or False; got 1."),
        ("max_grad_norm", 0.0, "SGD: max_grad_norm must be > 0.0; got 0.0."),
    ],
)
def test_sgd_assignment_is_validated(attr, bad, msg):
    o = SGD(0.1, momentum=0.5)
    before = o._hyper.copy()
    with pytest.raises((ValueError, TypeError), match=esc(msg)):
        setattr(o, attr, bad)
    assert np.array_equal(o._hyper, before)


@pytest.mark.parametrize(
    "attr,bad,msg",
    [
        ("lr", "x", "Adam: lr must be a finite real number; got 'x'."),
        ("betas", (0.9, 1.0), "Adam: betas[1] must be < 1.0; got 1.0."),
        ("betas", 0.9, "Adam: betas must be a pair (beta1, beta2); got 0.9."),
        ("eps", -1e-8, "Adam: eps must be > 0.0; got -1e-08."),
    ],
)
def test_adam_assignment_is_validated(attr, bad, msg):
    o = Adam()
    with pytest.raises((ValueError, TypeError), match=esc(msg)):
        setattr(o, attr, bad)


def test_assignment_reaches_the_native_update():
    o = Adam(1e-3)
    o.lr = 0.5
    o.betas = (0.8, 0.99)
    o.weight_decay = 0.25
    o.max_grad_norm = 2.0
    assert o._hyper.tolist() == [0.5, 0.8, 0.99, 1e-8, 0.25, 2.0]
    assert o.hparams() == {
        "lr": 0.5,
        "betas": (0.8, 0.99),
        "eps": 1e-8,
        "weight_decay": 0.25,
        "max_grad_norm": 2.0,
    }
    o.max_grad_norm = None
    assert o._hyper[5] == 0.0 and o.max_grad_norm is None


def test_nesterov_and_momentum_stay_consistent():
    o = SGD(0.1, momentum=0.9, nesterov=True)
    with pytest.raises(ValueError, match=esc("SGD: nesterov=True needs momentum > 0")):
        o.momentum = 0.0
    o.nesterov = False
    o.momentum = 0.0
    assert o.n_state == 0


@pytest.mark.parametrize("cls", CLASSES)
def test_momentum_cannot_be_switched_once_bound(cls):
    net = make_net(cls)
    X, y = data()
    o = SGD(0.1, momentum=0.9)
    net.train_step(X, y, o)
    o.momentum = 0.5  # on -> on is fine
    net.train_step(X, y, o)
    with pytest.raises(
        ValueError,
        match=esc(
            "SGD: momentum cannot be switched on or off once "
            "the optimizer holds state; create a new optimizer."
        ),
    ):
        o.momentum = 0.0
    plain = SGD(0.1)
    net.train_step(X, y, plain)
    with pytest.raises(ValueError, match=esc("SGD: momentum cannot be switched on or off")):
        plain.momentum = 0.9


@pytest.mark.parametrize("cls", CLASSES)
def test_optimizer_of_a_deleted_network(cls):
    import gc

    X, y = data()
    o = SGD(0.1, momentum=0.9)
    net = make_net(cls)
    net.train_step(X, y, o)
    del net
    gc.collect()
    with pytest.raises(
        ValueError,
        match=esc(
            "this SGD holds the state of a network that no longer exists; create a new optimizer"
        ),
    ):
        make_net(cls).train_step(X, y, o)


@pytest.mark.parametrize("mod", [fastact, ref])
def test_lr_and_weight_decay_beyond_the_network_dtype_are_refused(mod):
    """1e39 is finite in double, which the checks used, and inf in a float32 network's
    update: the step wrote inf into the weights and returned normally."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((16, 4)).astype(np.float32)
    y = np.arange(16) % 3
    for opt, name in ((SGD(1e39), "lr"), (SGD(0.1, weight_decay=1e39), "weight_decay")):
        net = mod.MLP([4, 8, 3], seed=0)
        before = net.theta.copy()
        msg = f"SGD: {name}=1e+39 is beyond float32's range for a float32 network"
        with pytest.raises(ValueError, match=re.escape(msg)):
            net.train_step(X, y, opt)
        assert np.array_equal(net.theta, before)
    opt = Adam()
    net = mod.MLP([4, 8, 3], seed=0)
    net.train_step(X, y, opt)
    with pytest.raises(ValueError, match=re.escape("Adam: lr=1e+39 is beyond float32's range")):
        opt.lr = 1e39
    assert opt.lr == 1e-3
    net64 = mod.MLP([4, 8, 3], seed=0, dtype=np.float64)  # finite in float64: taken
    net64.train_step(X.astype(np.float64), y, SGD(1e-3, weight_decay=1e39))
    assert np.isfinite(net64.theta).all()


def test_a_misspelt_hyperparameter_is_an_error():
    """`opt.learning_rate = ...` (or an Adam's momentum) was silently stored and ignored."""
    opt = Adam()
    with pytest.raises(
        AttributeError,
        match=re.escape(
            "Adam has no hyperparameter 'learning_rate'; its hyperparameters are betas, eps, "
            "lr, max_grad_norm, weight_decay."
        ),
    ):
        opt.learning_rate = 0.1
    with pytest.raises(AttributeError, match="SGD has no hyperparameter 'betas'"):
        SGD(0.1).betas = (0.9, 0.99)
    opt.lr = 0.5  # the real ones still assign
    assert opt.lr == 0.5 and opt._hyper[0] == 0.5


def test_a_copy_for_another_layout_of_the_same_size_says_so():
    import copy

    rng = np.random.default_rng(0)
    a, b = fastact.MLP([4, 8, 3]), fastact.MLP([5, 8, 3])
    assert a.theta.size == b.theta.size  # (the weight matrices start on 16-element lines)
    opt = Adam()
    a.train_step(rng.standard_normal((8, 4)).astype(np.float32), np.arange(8) % 3, opt)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "holds the state of a network with another parameter layout (the same "
            f"{a.theta.size} float32 in its flat array, in other layers' shapes)"
        ),
    ):
        b.train_step(np.ones((4, 5), np.float32), np.zeros(4, int), copy.deepcopy(opt))
