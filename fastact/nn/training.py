"""The training loop (`net.fit`) and its progress bar."""

from __future__ import annotations

import numbers
import sys
import time

import numpy as np

from ..optim import Optimizer


def fit(
    self,
    X,
    y,
    epochs=1,
    batch_size=32,
    *,
    optimizer=None,
    shuffle=True,
    validation_data=None,
    callbacks=(),
    verbose=1,
) -> dict:
    """Train the network for `epochs` passes over (X, y) in mini-batches.

    Each batch is one native train_step (the last batch may be smaller), in training
    mode (batch statistics, dropout); the mode set by net.train()/net.eval() is restored
    afterwards.  With BatchNorm, a last batch of a single row is left out of that epoch
    (one row has no batch variance); shuffling moves it into another batch next epoch.

    Parameters
    ----------
    X : ndarray of shape (rows, n_in)
        The inputs, of the network's dtype, finite.
    y : array_like
        Class indices of shape (rows,) for softmax_cross_entropy; targets of shape
        (rows, n_out) (or (rows,) when n_out is 1) for the other losses.
    epochs : int, default 1
        The number of passes over the data.
    batch_size : int, default 32
        The rows per step (at most rows).
    optimizer : fastact.optim.Optimizer, optional
        Default: the one of the previous fit (net.optimizer), else Adam(lr=1e-3).
    shuffle : bool, default True
        Shuffle the rows each epoch (seeded by the network's seed).
    validation_data : (X_val, y_val), optional
        Evaluated after each epoch.
    callbacks : sequence of callable, default ()
        cb(net, epoch, logs) after each epoch; one returning True stops training.
    verbose : {1, 0}, default 1
        1 draws a progress bar when stderr is a terminal (nothing otherwise); 0 is silent.

    Returns
    -------
    dict
        The history, lists per epoch: "loss" (the mean training loss over the epoch's
        batches, before each update), "accuracy" (classification losses, of those same
        forward passes), "val_loss", "val_accuracy" (with validation_data), "time"
        (seconds).

    Raises
    ------
    TypeError
        If optimizer or callbacks has a wrong type, or X or y a wrong dtype.
    ValueError
        If epochs or batch_size is not a positive integer, validation_data is not a
        pair, or X or y is invalid (see compute_gradients).
    FloatingPointError
        If a step's loss or gradient is not finite (with on_nonfinite="raise").

    Examples
    --------
    >>> import numpy as np
    >>> import fastact
    >>> X = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
    >>> y = (X.sum(axis=1) > 0).astype(np.int64)
    >>> net = fastact.MLP([3, 16, 2], "tanh")
    >>> history = net.fit(X, y, epochs=5, batch_size=16, verbose=0)
    >>> sorted(history), len(history["loss"])
    (['accuracy', 'loss', 'time'], 5)
    """
    X = self._X(X, "fit")
    labels, target = self._y(y, X.shape[0], "fit")
    for v, nm in ((epochs, "epochs"), (batch_size, "batch_size")):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"fit: {nm} must be a positive integer; got {v!r}.")
    if optimizer is None:
        optimizer = getattr(self, "optimizer", None)
        if optimizer is None:
            from ..optim import Adam

            optimizer = Adam()
    if not isinstance(optimizer, Optimizer):
        raise TypeError(
            f"fit: optimizer must be a fastact.optim optimizer; got {type(optimizer).__name__}."
        )
    if validation_data is not None:
        try:
            Xv, yv = validation_data
        except (TypeError, ValueError):
            raise ValueError("fit: validation_data must be a pair (X_val, y_val).") from None
        Xv = self._X(Xv, "fit (validation_data)")
        self._y(yv, Xv.shape[0], "fit (validation_data)")
    if callbacks is None:
        callbacks = []
    elif callable(callbacks):
        raise TypeError(
            "fit: callbacks must be a list of callables cb(net, epoch, logs); "
            "got a single callable: pass callbacks=[cb]."
        )
    else:
        try:
            callbacks = list(callbacks)
        except TypeError:
            raise TypeError(
                "fit: callbacks must be a list of callables cb(net, epoch, "
                f"logs); got {callbacks!r}."
            ) from None
    for cb in callbacks:
        if not callable(cb):
            raise TypeError(f"fit: callbacks must be callables cb(net, epoch, logs); got {cb!r}.")
    rows = X.shape[0]
    bs = min(int(batch_size), rows)
    was, self.training = self.training, True
    try:
        self._check_batch(bs, "fit")  # BatchNorm needs batches of 2 rows to train on
    finally:
        self.training = was
    # (raises for another network's optimizer: not kept then)
    optimizer._bind(self.theta, self._program.layout)
    self.optimizer = optimizer
    self._engine.reserve(bs)
    bar = _Progress(verbose and _isatty(sys.stderr), epochs, -(-rows // bs))
    history = {"loss": [], "time": []}
    classify = self.loss != "mse"
    if classify:
        history["accuracy"] = []
    if validation_data is not None:
        history["val_loss"] = []
        if classify:
            history["val_accuracy"] = []
    Xb = lb = tb = None
    was_training = self.training
    self.training = True
    try:
        return _epochs(
            self,
            X,
            labels,
            target,
            rows,
            bs,
            epochs,
            optimizer,
            shuffle,
            None if validation_data is None else (Xv, yv),
            callbacks,
            bar,
            history,
            classify,
            Xb,
            lb,
            tb,
        )
    finally:
        self.training = was_training


def _epochs(
    self,
    X,
    labels,
    target,
    rows,
    bs,
    epochs,
    optimizer,
    shuffle,
    validation,
    callbacks,
    bar,
    history,
    classify,
    Xb,
    lb,
    tb,
):
    """The epochs: each one native call (Engine.epoch: shuffled batches gathered, the
    step and the update of every batch, no Python in between)."""
    skip_single = self._program.has_batchnorm
    nb = -(-rows // bs)
    losses = np.empty(nb, np.float64)
    correct = np.empty(nb, np.int64)
    sizes = np.full(nb, bs, np.int64)
    sizes[-1] = rows - bs * (nb - 1)
    per_row = 1 if self.loss == "softmax_cross_entropy" else self.n_out
    check = self.on_nonfinite != "ignore"
    for epoch in range(int(epochs)):
        t0 = time.perf_counter()
        order = self._rng.permutation(rows) if shuffle else None
        optimizer._bind(self.theta, self._program.layout)
        st = optimizer.state
        counter = self._counter
        done = self._engine.epoch(
            X,
            labels,
            target,
            order,
            bs,
            optimizer.kind,
            optimizer._hyper,
            st[0] if st else None,
            st[1] if len(st) > 1 else None,
            optimizer.t,
            training=True,
            seed=self.seed,
            counter=counter,
            check=check,
            skip_single=skip_single,
            losses=losses,
            correct=correct,
            diag=self.record_diagnostics,
        )
        failed = check and not self._engine.last_ok
        self._counter += done + int(failed)
        optimizer.t += done
        if failed:
            r0 = done * bs
            idx = slice(r0, r0 + bs) if order is None else order[r0 : r0 + bs]
            self._nonfinite(X[idx], float(losses[done]), counter + done, "fit", stacklevel=4)
            break  # (on_nonfinite="warn": fit stops here too, warned)
        used = correct[:done] >= 0
        n_used = sizes[:done][used]
        seen = int(n_used.sum())
        logs = {"loss": float(np.dot(losses[:done][used], n_used)) / seen}
        if classify:
            logs["accuracy"] = int(correct[:done][used].sum()) / (seen * per_row)
        bar.update(epoch, nb, logs["loss"])
        if validation is not None:
            ev = self.evaluate(*validation)
            logs["val_loss"] = ev["loss"]
            if classify:
                logs["val_accuracy"] = ev["accuracy"]
        logs["time"] = time.perf_counter() - t0
        for k, v in logs.items():
            history[k].append(v)
        bar.end_epoch(epoch, logs)
        stops = [cb(self, epoch, logs) for cb in callbacks]  # every callback runs
        if any(isinstance(r, (bool, np.bool_)) and r for r in stops):
            break
    return history


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class _Progress:
    """A one-line progress bar on stderr, redrawn at most 10 times a second."""

    def __init__(self, on, epochs, steps):
        self.on, self.epochs, self.steps, self.last = bool(on), epochs, steps, 0.0

    def update(self, epoch, step, loss):
        if not self.on:
            return
        now = time.perf_counter()
        if step != self.steps and now - self.last < 0.1:
            return
        self.last = now
        w = 30
        k = w * step // self.steps
        sys.stderr.write(
            f"\rEpoch {epoch + 1}/{self.epochs} [{'=' * k}{' ' * (w - k)}] "
            f"{step}/{self.steps} loss {loss:.4f}"
        )
        sys.stderr.flush()

    def end_epoch(self, epoch, logs):
        if not self.on:
            return
        extra = " ".join(f"{k} {v:.4f}" for k, v in logs.items() if k not in ("loss", "time"))
        sys.stderr.write(
            f"\r\x1b[2KEpoch {epoch + 1}/{self.epochs} loss {logs['loss']:.4f} {extra} "
            f"({logs['time']:.2f} s)\n"  # (ESC[2K: the bar's line cleared first: a TTY only)
        )
        sys.stderr.flush()
