"""fit of fastact.sklearn.MLPClassifier vs scikit-learn's MLPClassifier, one thread each.

    pytest benches/bench_sklearn.py --benchmark-only --benchmark-group-by=group

Cases (the issue's): digits (1,797 x 64, float64 as load_digits gives it), hidden
(64, 64), relu, adam, batch 64, 50 epochs; make_classification 20,000 x 100 (float64),
hidden (256, 256), batch 200, 5 epochs.  Both estimators get the same data, the same
hyperparameters and random_state; fastact trains in its default float32.  BLAS is held
to one thread with threadpoolctl (fastact's fit limits itself with n_threads=1).
ConvergenceWarning (max_iter reached, by design) is silenced.
"""

import warnings

import pytest
from sklearn.datasets import load_digits, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SKClassifier
from threadpoolctl import threadpool_limits

from fastact.sklearn import MLPClassifier

CASES = {
    "digits-64x64": (
        lambda: load_digits(return_X_y=True),
        dict(hidden_layer_sizes=(64, 64), batch_size=64, max_iter=50),
    ),
    "20000x100-256x256": (
        lambda: make_classification(20000, 100, n_informative=30, n_classes=4, random_state=0),
        dict(hidden_layer_sizes=(256, 256), batch_size=200, max_iter=5),
    ),
}
IMPLS = {
    "sklearn": lambda kw: SKClassifier(**kw),
    "fastact": lambda kw: MLPClassifier(n_threads=1, **kw),
}


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("case", list(CASES))
def test_fit(benchmark, case, impl):
    make, kw = CASES[case]
    X, y = make()
    kw = dict(activation="relu", solver="adam", random_state=0, **kw)
    benchmark.group = f"fit {case}"
    benchmark.extra_info.update(
        rows=X.shape[0], features=X.shape[1], **{k: str(v) for k, v in kw.items()}
    )

    def fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return IMPLS[impl](kw).fit(X, y)

    with threadpool_limits(1):
        est = benchmark.pedantic(fit, rounds=3, iterations=1, warmup_rounds=1)
    benchmark.extra_info["train_accuracy"] = float(est.score(X, y))
