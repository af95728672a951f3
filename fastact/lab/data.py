"""The lab's data: a built-in teacher task, scikit-learn's digits, or the user's file.

    load_data("teacher")        # default: no download, the same arrays on every machine
    load_data("digits")         # scikit-learn's bundled 8x8 digits (needs scikit-learn)
    load_data("data.npz")       # arrays X (rows x features) and y (class labels)
    load_data("data.csv")       # numbers, comma-separated, last column the class label

Every data set is split once into a training part (gradient batches, training) and a
test part (accuracy), 80/20 by a fixed permutation, and its features are standardised
with the training part's mean and standard deviation (constant columns become 0).  The
split and the data do not depend on the lab's --seed: a seed changes the networks and the
order of the batches, never the task.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

# the teacher task: inputs N(0, 1), labels = argmax of a fixed random tanh network
TEACHER_SEED = 2010  # fixed: the task is the same for every --seed
TEACHER_SHAPE = (32, 64, 10)  # inputs, teacher hidden units, classes
TEACHER_ROWS = 5120
_SPLIT_SEED = 0
TEST_FRACTION = 0.2


@dataclass(frozen=True, eq=False)
class Data:
    """A classification task split into training and test parts.

    Made by fastact.lab.load_data.

    Parameters
    ----------
    name : str
        Shown in records and reports.
    X_train : ndarray of float64, shape (rows, features)
        The training inputs.
    y_train : ndarray of int64, shape (rows,)
        Their class labels, in [0, n_classes).
    X_test : ndarray of float64, shape (rows, features)
        The test inputs.
    y_test : ndarray of int64, shape (rows,)
        Their class labels.
    n_classes : int
        The number of classes.

    See Also
    --------
    fastact.lab.load_data : Make one.

    Examples
    --------
    >>> import fastact.lab
    >>> data = fastact.lab.load_data("teacher")
    >>> data
    Data('teacher': 4096 training + 1024 test rows, 32 features, 10 classes)
    >>> round(data.chance, 4), round(data.chance_loss, 4)
    (0.126, 2.281)
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int

    @property
    def n_features(self) -> int:
        """The number of input features."""
        return int(self.X_train.shape[1])

    @property
    def chance(self) -> float:
        """The test accuracy of always answering the most frequent training class."""
        top = np.bincount(self.y_train, minlength=self.n_classes).argmax()
        return float(np.mean(self.y_test == top))

    @property
    def chance_loss(self) -> float:
        """The cross-entropy of always predicting the training class frequencies: the loss
        a network reaches without learning anything about the inputs."""
        p = np.bincount(self.y_train, minlength=self.n_classes) / self.y_train.size
        p = p[p > 0]
        return float(-(p * np.log(p)).sum())

    def __repr__(self):
        return (
            f"Data({self.name!r}: {self.X_train.shape[0]} training + {self.X_test.shape[0]} "
            f"test rows, {self.n_features} features, {self.n_classes} classes)"
        )


def teacher() -> Data:
    """The default task: 5,120 standard-normal inputs of 32 features, labelled by the
    argmax of a fixed random network 32 -> 64 tanh -> 10 (weights N(0, 1/fan_in))."""
    rng = np.random.default_rng(TEACHER_SEED)
    n_in, n_hidden, n_out = TEACHER_SHAPE
    W1 = rng.standard_normal((n_in, n_hidden)) / np.sqrt(n_in)
    W2 = rng.standard_normal((n_hidden, n_out)) / np.sqrt(n_hidden)
    X = rng.standard_normal((TEACHER_ROWS, n_in))
    y = np.argmax(np.tanh(X @ W1) @ W2, axis=1)
    return _split("teacher", X, y)


def digits() -> Data:
    """scikit-learn's bundled digits: 1,797 images of 8x8 pixels, 10 classes."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError(
            "lab: data='digits' needs scikit-learn (pip install scikit-learn); "
            "or use data='teacher' (built in)."
        ) from None
    d = load_digits()
    return _split("digits", d.data.astype(np.float64), d.target)


def load_data(data) -> Data:
    """Load a classification task for the lab, split into training and test parts.

    Parameters
    ----------
    data : str, os.PathLike, Data or (X, y)
        "teacher" (built in: 5,120 normal inputs of 32 features labelled by a fixed
        random tanh network, 10 classes), "digits" (scikit-learn's), a .npz file with
        arrays X and y, a .csv file (the last column y), a Data (returned as it is), or
        an (X, y) pair of arrays.

    Returns
    -------
    Data
        The task, 80 % training and 20 % test rows (a fixed split).

    Raises
    ------
    TypeError
        If data is none of these.
    ValueError
        If a file has another extension or cannot be read as a task.
    FileNotFoundError
        If the file does not exist.
    ImportError
        If "digits" is asked for without scikit-learn.

    Examples
    --------
    >>> import numpy as np
    >>> import fastact.lab
    >>> X = np.random.default_rng(0).normal(size=(50, 3))
    >>> data = fastact.lab.load_data((X, (X[:, 0] > 0).astype(int)))
    >>> data
    Data('arrays': 40 training + 10 test rows, 3 features, 2 classes)
    """
    if isinstance(data, Data):
        return data
    if isinstance(data, tuple) and len(data) == 2:
        return from_arrays(*data, name="arrays")
    if not isinstance(data, (str, os.PathLike)):
        raise TypeError(
            f"lab: data must be 'teacher', 'digits', a path to a .npz or .csv file, "
            f"or an (X, y) pair; got {type(data).__name__}."
        )
    if data == "teacher":
        return teacher()
    if data == "digits":
        return digits()
    path = os.fspath(data)
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".npz", ".csv"):
        raise ValueError(
            f"lab: data {path!r} is neither 'teacher', 'digits' nor a .npz or .csv "
            "file; give a file ending in .npz (arrays X and y) or .csv (last "
            "column y)."
        )
    if not os.path.isfile(path):
        raise FileNotFoundError(f"lab: data file {path!r} does not exist.")
    name = os.path.basename(path)
    if ext == ".npz":
        hint = "write it with np.savez(path, X=X, y=y)"
        try:
            f = np.load(path, allow_pickle=False)
        except (OSError, EOFError, ValueError) as e:
            raise ValueError(f"lab: cannot read {path!r} as a .npz file ({e}); {hint}.") from None
        if not isinstance(f, np.lib.npyio.NpzFile):
            raise ValueError(
                f"lab: {path!r} holds a single array, not a .npz archive of X and y; {hint}."
            )
        with f:
            missing = [k for k in ("X", "y") if k not in f.files]
            if missing:
                raise ValueError(
                    f"lab: {path!r} has arrays {sorted(f.files)}; it needs 'X' "
                    f"(rows x features) and 'y' (one class label per row): {hint}."
                )
            try:
                X, y = f["X"], f["y"]
            except (OSError, EOFError, ValueError) as e:
                raise ValueError(
                    f"lab: cannot read the arrays of {path!r} ({e}); {hint} (numbers, not objects)."
                ) from None
        return from_arrays(X, y, name=name)
    return from_arrays(*_read_csv(path), name=name)


def _read_csv(path):
    """(X, y) from a comma-separated file of numbers, last column y; one header line of
    names is skipped."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = [ln.strip() for ln in f]
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"lab: cannot read {path!r} as a text .csv file ({e}).") from None
    rows = []
    for i, line in enumerate(lines, 1):
        if not line:
            continue
        cells = [c.strip() for c in line.split(",")]
        try:
            rows.append([float(c) for c in cells])
        except ValueError:
            if not rows and i == 1:  # a header of column names
                continue
            raise ValueError(f"lab: {path!r} line {i} is not all numbers: {line[:80]!r}.") from None
        if len(rows[-1]) != len(rows[0]):
            raise ValueError(
                f"lab: {path!r} is ragged: line {i} has {len(rows[-1])} columns, "
                f"the first data line {len(rows[0])}; every row needs the same "
                "number of columns (features..., label)."
            )
    if not rows:
        raise ValueError(f"lab: {path!r} holds no data rows.")
    if len(rows[0]) < 2:
        raise ValueError(
            f"lab: {path!r} has one column; it needs features and a last column of class labels."
        )
    a = np.array(rows, dtype=np.float64)
    return a[:, :-1], a[:, -1]


def from_arrays(X, y, *, name="arrays") -> Data:
    """Check (X, y), map the labels to 0..n_classes-1, split and standardise."""
    try:
        if np.iscomplexobj(X):  # (np.asarray would drop the imaginary part, warning)
            raise TypeError
        X = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"lab: X of {name!r} must be real numbers (rows x features).") from None
    y = np.asarray(y)
    if X.ndim != 2 or X.shape[1] < 1:
        raise ValueError(f"lab: X of {name!r} must be 2-D (rows x features); got shape {X.shape}.")
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(
            f"lab: y of {name!r} must hold one class label per row of X "
            f"({X.shape[0]}); got shape {y.shape}."
        )
    if not np.isfinite(X).all():
        raise ValueError(f"lab: X of {name!r} contains NaN or inf; clean the data first.")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all() or not np.all(y == np.round(y)):
            raise ValueError(
                f"lab: y of {name!r} must be class labels (integers); the lab "
                "trains classifiers, not regressors."
            )
    elif y.dtype.kind not in "iub":
        raise ValueError(f"lab: y of {name!r} must be integer class labels; got dtype {y.dtype}.")
    classes, y = np.unique(y, return_inverse=True)
    if classes.size < 2:
        raise ValueError(f"lab: y of {name!r} has a single class; a classifier needs at least 2.")
    if X.shape[0] < 10:
        raise ValueError(
            f"lab: {name!r} has {X.shape[0]} rows; the lab needs at least 10 "
            "(80% to train on, 20% to test)."
        )
    return _split(name, X, y.astype(np.int64))


def _split(name, X, y) -> Data:
    perm = np.random.default_rng(_SPLIT_SEED).permutation(X.shape[0])
    n_test = max(1, int(round(TEST_FRACTION * X.shape[0])))
    test, train = perm[:n_test], perm[n_test:]
    mean = X[train].mean(axis=0)
    std = X[train].std(axis=0)
    std[std == 0] = 1.0
    Xs = (X - mean) / std
    n_classes = int(y.max()) + 1
    return Data(
        name,
        np.ascontiguousarray(Xs[train]),
        np.ascontiguousarray(y[train], np.int64),
        np.ascontiguousarray(Xs[test]),
        np.ascontiguousarray(y[test], np.int64),
        n_classes,
    )
