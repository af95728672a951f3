"""
fastact's MLPClassifier in a scikit-learn grid search
=====================================================

:class:`fastact.sklearn.MLPClassifier` takes scikit-learn's ``MLPClassifier`` parameters
(and a few of fastact's: any fastact activation, ``batchnorm``, ``dropout``,
``residual``, ``dtype``, ``n_threads``) and runs each batch as one native training step.
It is a scikit-learn estimator like any other: here it sits in a pipeline behind a
scaler, and :class:`~sklearn.model_selection.GridSearchCV` tunes its activation and its
L2 penalty on the digits data set by 3-fold cross-validation.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fastact.sklearn import MLPClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)

# %%
# The search
# ----------
# Three activations (two of them, GELU and SiLU, are not among scikit-learn's own) times
# three values of ``alpha``.  Each fit stops after 30 epochs; scikit-learn then warns that
# the optimizer has not converged, which is expected for so short a budget, so the warning
# is silenced.

pipe = make_pipeline(
    StandardScaler(),
    MLPClassifier(hidden_layer_sizes=(64,), max_iter=30, random_state=0),
)
grid = {
    "mlpclassifier__activation": ["relu", "gelu", "silu"],
    "mlpclassifier__alpha": [1e-4, 1e-2, 1.0],
}
search = GridSearchCV(pipe, grid, cv=3)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    search.fit(X_train, y_train)

print("best parameters:", search.best_params_)
print(f"cross-validated accuracy {search.best_score_:.3f}")
print(f"held-out test accuracy   {search.score(X_test, y_test):.3f}")

# %%
# Every candidate
# ---------------

acts, alphas = grid["mlpclassifier__activation"], grid["mlpclassifier__alpha"]
scores = np.empty((len(acts), len(alphas)))
for params, score in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"]):
    i = acts.index(params["mlpclassifier__activation"])
    j = alphas.index(params["mlpclassifier__alpha"])
    scores[i, j] = score

fig, ax = plt.subplots(figsize=(5.5, 3.8))
im = ax.imshow(scores, cmap="viridis")
ax.set_xticks(range(len(alphas)), [f"{a:g}" for a in alphas])
ax.set_yticks(range(len(acts)), acts)
ax.set(xlabel="alpha (L2 penalty)", ylabel="activation", title="mean cross-validated accuracy")
for i in range(len(acts)):
    for j in range(len(alphas)):
        light = scores[i, j] < (scores.min() + scores.max()) / 2
        ax.text(j, i, f"{scores[i, j]:.3f}", ha="center", va="center", color="w" if light else "k")
fig.colorbar(im)
fig.tight_layout()
plt.show()

# %%
# The fitted estimator
# --------------------
# The best pipeline was refitted on the whole training split.  Its fitted attributes are
# scikit-learn's (``coefs_``, ``intercepts_``, ``loss_curve_``, ``n_iter_``, ...);
# ``coefs_`` are views into the native network's weights, in its dtype (float32 by
# default).

best = search.best_estimator_[-1]
print([w.shape for w in best.coefs_], best.coefs_[0].dtype, f"n_iter_={best.n_iter_}")
