"""
Training an MLP on digits with ``fastact.MLP``
==============================================

:class:`fastact.MLP` trains a multi-layer perceptron with one native call per step (and
one per epoch inside ``fit``): forward, loss, backward and the optimizer's update of every
layer run without the GIL and allocate nothing.  Here it learns scikit-learn's 8×8 digits
(1,797 images, shipped with scikit-learn: no download), once plain and once with BatchNorm
and dropout, and its per-layer gradient diagnostics are read after training.
"""

import os
import tempfile

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import fastact

# %%
# The data
# --------
# Pixels are 0-16; scale them to [0, 1].  The network's dtype is float32, and ``fit``
# checks that ``X`` has it (there is no silent conversion).

X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
print(X_train.shape, X_test.shape)

# %%
# Two networks
# ------------
# The same two hidden layers of 128 ReLU units (``init="auto"``: He-normal for ReLU), the
# second with BatchNorm before each activation and dropout after it.

nets = {
    "plain": fastact.MLP([64, 128, 128, 10], "relu", seed=0),
    "BatchNorm + dropout 0.2": fastact.MLP(
        [64, 128, 128, 10], "relu", batchnorm="before", dropout=0.2, seed=0
    ),
}
histories = {}
for name, net in nets.items():
    histories[name] = net.fit(
        X_train,
        y_train,
        epochs=30,
        batch_size=64,
        optimizer=fastact.optim.Adam(lr=1e-3),
        validation_data=(X_test, y_test),
        verbose=0,
    )
    result = net.evaluate(X_test, y_test)
    print(f"{name:24s} test loss {result['loss']:.3f}, test accuracy {result['accuracy']:.3f}")

# %%
# Learning curves
# ---------------
# ``fit`` returns the history per epoch: training loss and accuracy, and the validation
# figures when ``validation_data`` is given.

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
for name, hist in histories.items():
    ax1.plot(hist["loss"], label=f"{name}, training")
    ax1.plot(hist["val_loss"], "--", label=f"{name}, test")
    ax2.plot(hist["val_accuracy"], label=name)
ax1.set(xlabel="epoch", ylabel="cross-entropy", yscale="log", title="loss")
ax2.set(xlabel="epoch", ylabel="accuracy", title="test accuracy", ylim=(0.8, 1.0))
ax1.legend(fontsize=8)
ax2.legend(fontsize=8)
fig.tight_layout()

# %%
# Gradient diagnostics
# --------------------
# ``compute_gradients`` runs forward and backward without updating and records, per dense
# layer, the gradient norms and the activations' statistics (computed inside the backward
# pass).

net = nets["plain"]
net.compute_gradients(X_train[:256], y_train[:256])
for i, d in enumerate(net.diagnostics()):
    print(
        f"layer {i}: |dW| {d['grad_W_norm']:.3g}  |dz| {d['grad_z_norm']:.3g}  "
        f"act std {d['act_std']:.3g}  dead units {d['dead_fraction']:.0%}"
    )

# %%
# Save, load, predict
# -------------------
# ``save`` writes the configuration and every parameter to an ``.npz`` (no pickle); the
# round trip is bit-exact.

with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "digits_mlp.npz")
    net.save(path)
    again = fastact.MLP.load(path)
assert np.array_equal(again.forward(X_test), net.forward(X_test))
print("first ten test predictions:", again.predict(X_test[:10]), "truth:", y_test[:10])
plt.show()
