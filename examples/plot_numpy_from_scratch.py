"""
A two-layer network from scratch, with fastact's kernels
========================================================

A network written by hand in NumPy: a hidden layer of GELU units and a softmax output,
trained with plain gradient descent on three interleaved spirals.  NumPy does the matrix
products; fastact's drop-in kernels do the rest:

- :func:`fastact.bias_act` computes ``gelu(z + b)`` in one pass (the dense layer's
  epilogue), and :func:`fastact.bias_act_backward` returns the gradient at ``z`` and the
  bias gradient in one pass back;
- :func:`fastact.softmax_cross_entropy` returns the mean loss and its exact gradient with
  respect to the logits.

Before training, the hand-written backward pass is checked against the true gradient:
central finite differences of the loss, in float64, for every one of the 387 parameters.
"""

import matplotlib.pyplot as plt
import numpy as np

import fastact

# %%
# The data: three spirals
# -----------------------
# 100 points per class in the plane; no straight line separates them.

rng = np.random.default_rng(0)
n_per_class, n_classes = 100, 3
X = np.empty((n_per_class * n_classes, 2))
y = np.empty(n_per_class * n_classes, dtype=np.int64)
for k in range(n_classes):
    r = np.linspace(0.05, 1.0, n_per_class)
    theta = np.linspace(4.0 * k, 4.0 * (k + 1), n_per_class) + 0.2 * rng.standard_normal(
        n_per_class
    )
    rows = slice(n_per_class * k, n_per_class * (k + 1))
    X[rows] = np.column_stack([r * np.sin(theta), r * np.cos(theta)])
    y[rows] = k

# %%
# The network
# -----------
# ``forward`` keeps what the backward pass needs.  GELU's backward is computed from its
# *input* (``fastact.ACTIVATIONS["gelu"].saves == "input"``), so the cache keeps ``z``, the
# hidden layer's pre-activation before the bias.

print("gelu's backward takes its", fastact.ACTIVATIONS["gelu"].saves)

n_hidden = 64


def init_params(dtype):
    g = np.random.default_rng(1)
    return {
        "W1": (g.standard_normal((2, n_hidden)) * np.sqrt(2.0 / 2)).astype(dtype),
        "b1": np.zeros(n_hidden, dtype),
        "W2": (g.standard_normal((n_hidden, n_classes)) * np.sqrt(1.0 / n_hidden)).astype(dtype),
        "b2": np.zeros(n_classes, dtype),
    }


def forward(p, X):
    z = X @ p["W1"]
    h = fastact.bias_act(z, p["b1"], "gelu")  # gelu(z + b1), one pass
    logits = h @ p["W2"] + p["b2"]
    return logits, (X, z, h)


def loss_and_grads(p, X, y):
    logits, (X, z, h) = forward(p, X)
    loss, dlogits = fastact.softmax_cross_entropy(logits, y)  # mean loss, exact gradient
    grads = {"W2": h.T @ dlogits, "b2": dlogits.sum(axis=0)}
    dh = dlogits @ p["W2"].T
    dz, grads["b1"] = fastact.bias_act_backward(dh, z, "gelu", bias=p["b1"])
    grads["W1"] = X.T @ dz
    return loss, grads


# %%
# Check the backward pass against the true gradient
# -------------------------------------------------
# In float64, each parameter in turn is moved by ±h and the loss recomputed; the central
# difference ``(L(θ+h) - L(θ-h)) / 2h`` is the derivative up to O(h²) truncation and the
# loss's rounding.  The backward pass must agree with it on every entry.

params = init_params(np.float64)
_, grads = loss_and_grads(params, X, y)
h = 1e-6
worst = 0.0
for name, value in params.items():
    numeric = np.empty_like(value)
    for i in np.ndindex(value.shape):
        saved = value[i]
        value[i] = saved + h
        up, _ = loss_and_grads(params, X, y)
        value[i] = saved - h
        down, _ = loss_and_grads(params, X, y)
        value[i] = saved
        numeric[i] = (up - down) / (2 * h)
    err = np.max(np.abs(grads[name] - numeric)) / np.max(np.abs(numeric))
    worst = max(worst, err)
    print(f"{name}: {value.size:4d} entries, max |analytic - numeric| / max |numeric| {err:.1e}")
assert worst < 1e-6, worst
n_params = sum(v.size for v in params.values())
print(f"largest relative error over all {n_params} parameters: {worst:.1e}")

# %%
# Train in float32
# ----------------
# The same code, now in float32 (fastact computes each dtype in its own precision), with
# full-batch gradient descent.

params = init_params(np.float32)
X32 = X.astype(np.float32)
lr, losses = 1.0, []
for _ in range(2000):
    loss, grads = loss_and_grads(params, X32, y)
    losses.append(loss)
    for name in params:
        params[name] -= lr * grads[name]
accuracy = np.mean(np.argmax(forward(params, X32)[0], axis=1) == y)
print(f"loss {losses[0]:.3f} -> {losses[-1]:.3f}; training accuracy {accuracy:.3f}")

# %%
# What it learned
# ---------------

xx, yy = np.meshgrid(np.linspace(-1.1, 1.1, 300), np.linspace(-1.1, 1.1, 300))
grid = np.column_stack([xx.ravel(), yy.ravel()]).astype(np.float32)
regions = np.argmax(forward(params, grid)[0], axis=1).reshape(xx.shape)

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.5))
ax1.plot(losses)
ax1.set(xlabel="step", ylabel="cross-entropy", yscale="log", title="training loss")
ax2.contourf(xx, yy, regions, alpha=0.3, levels=np.arange(-0.5, n_classes), cmap="viridis")
ax2.scatter(X[:, 0], X[:, 1], c=y, s=12, cmap="viridis", edgecolors="k", linewidths=0.3)
ax2.set(title="decision regions, GELU hidden layer", aspect="equal")
fig.tight_layout()
plt.show()
