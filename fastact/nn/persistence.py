"""Saving and loading networks: one .npz with the configuration as JSON, the flat
parameters, the running statistics and dropout's step counter; no pickle, bit-exact."""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np

_READS = {"fastact.MLP/2": "fastact.MLP/1"}  # formats a class also reads (older versions)


def save(self, path) -> None:
    """Write the network to `path`: one .npz file, no pickle.

    It holds the configuration (as JSON), the parameters, the running statistics, the
    mode (net.training), dropout's step counter and the state of fit's shuffling, so
    training resumes bit for bit.  Not the optimizer (its state is the optimizer
    object's).

    Parameters
    ----------
    path : str, os.PathLike or file-like
        Where to write (the name is used as given: no ".npz" is appended).

    See Also
    --------
    load : Read it back.

    Examples
    --------
    >>> import numpy as np
    >>> import fastact
    >>> net = fastact.MLP([3, 8, 2], "relu", seed=3)
    >>> net.save("net.npz")
    >>> again = fastact.MLP.load("net.npz")
    >>> bool(np.array_equal(again.theta, net.theta))
    True
    """
    meta = {
        "format": self._format,
        **self.config(),
        "counter": self._counter,
        "training": self.training,
        "rng": self._rng.bit_generator.state,  # fit's shuffling (JSON keeps its big ints)
    }
    arrays = {"config": np.array(json.dumps(meta)), "theta": self.theta, "state": self.state}
    if isinstance(path, (str, os.PathLike)):
        with open(path, "wb") as f:  # np.savez(path) would append ".npz" to the name
            np.savez(f, **arrays)
    else:
        np.savez(path, **arrays)


def load(cls, path):
    """Read a network written by save(), parameters and running statistics bit for bit.

    Parameters
    ----------
    path : str, os.PathLike or file-like
        The .npz file.

    Returns
    -------
    Sequential or MLP
        A new network of this class.

    Raises
    ------
    ValueError
        If the file is not a fastact network of this class (or a format it reads).

    See Also
    --------
    save : Write one.
    """
    name = cls.__name__
    opened = None
    if isinstance(path, (str, os.PathLike)):
        opened = open(path, "rb")  # closed here even when the zip is damaged
    try:
        loaded = np.load(opened or path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError(
                f"{name}.load: {path!r} is a single .npy array, not a fastact {name} "
                f"file (write one with net.save(), read it with {name}.load())."
            )
        with loaded as f:
            if "config" not in f.files or "theta" not in f.files:
                raise ValueError(
                    f"{name}.load: {path!r} is not a fastact {name} file "
                    "(it lacks 'config' or 'theta')."
                )
            meta = json.loads(str(f["config"]))
            theta = f["theta"]
            state = f["state"] if "state" in f.files else None
    except (
        zipfile.BadZipFile,
        EOFError,
        OSError,
        KeyError,
        UnicodeDecodeError,
        json.JSONDecodeError,
    ) as e:
        raise ValueError(
            f"{name}.load: {path!r} is not a readable fastact {name} file "
            f"(a truncated or damaged .npz?): {type(e).__name__}: {e}"
        ) from None
    except ValueError as e:
        if str(e).startswith(f"{name}.load:"):
            raise
        if "pickle" in str(e) and not _is_zip(opened or path):  # np.load's last guess
            raise ValueError(
                f"{name}.load: {path!r} is not a .npz file (fastact networks are "
                "written by net.save())."
            ) from None
        raise ValueError(
            f"{name}.load: {path!r} is not a readable fastact {name} file: {e}"
        ) from None
    finally:
        if opened is not None:
            opened.close()
    fmt = meta.get("format") if isinstance(meta, dict) else None
    if fmt is None or fmt not in (cls._format, _READS.get(cls._format)):
        other = fmt.split("/")[0] if isinstance(fmt, str) else None
        if other in ("fastact.MLP", "fastact.Sequential") and not cls._format.startswith(
            other + "/"
        ):  # another class's file: each class reads its own
            raise ValueError(
                f"{name}.load: {path!r} holds a {other} (format {fmt!r}); load it with "
                f"{other}.load."
            )
        raise ValueError(
            f"{name}.load: {path!r} has format {fmt!r}; this version reads {cls._format!r}."
        )
    try:
        net = cls._from_config(meta)
        counter = int(meta.get("counter", 0))
        if not 0 <= counter < 2**64:
            raise ValueError(f"dropout's step counter {counter} is not a uint64")
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ValueError(
            f"{name}.load: {path!r} holds a damaged configuration: {type(e).__name__}: {e}"
        ) from None
    net.flush_subnormals = bool(meta.get("flush_subnormals", True))
    if theta.ndim == 1 and theta.dtype == net.theta.dtype:
        theta = net._program.unpack(theta)  # written before the weights were aligned
    if theta.shape != net.theta.shape or theta.dtype != net.theta.dtype:
        raise ValueError(
            f"{name}.load: {path!r} holds {theta.size} {theta.dtype} parameters; "
            f"the configuration needs {net.n_params} {net.theta.dtype}"
            + (
                f" ({net.theta.size} with the alignment gaps this version writes)."
                if net.theta.size != net.n_params
                else "."
            )
        )
    if state is None:
        if net.state.size:  # (files of the first format had no BatchNorm)
            raise ValueError(
                f"{name}.load: {path!r} has no running statistics (member 'state') but its "
                "configuration has BatchNorm: the file is damaged."
            )
        state = net.state  # an older file: no running statistics (none needed)
    if state.shape != net.state.shape or state.dtype != net.state.dtype:
        raise ValueError(
            f"{name}.load: {path!r} holds {state.size} {state.dtype} running "
            f"statistics; the configuration needs {net.state.size} "
            f"{net.state.dtype}."
        )
    net.theta[...] = theta
    net.state[...] = state
    net._counter = counter
    net.training = bool(meta.get("training", True))
    if "rng" in meta:  # (older files: the shuffling starts afresh from the seed)
        try:
            net._rng.bit_generator.state = meta["rng"]
        except (TypeError, ValueError, KeyError) as e:
            raise ValueError(
                f"{name}.load: {path!r} holds an unreadable shuffling state: {e}"
            ) from None
    return net


def _is_zip(f) -> bool:
    """the file (path or seekable file object) starts as a zip archive (.npz) does"""
    try:
        if isinstance(f, (str, os.PathLike)):
            with open(f, "rb") as h:
                head = h.read(4)
        else:
            pos = f.tell()
            f.seek(0)
            head = f.read(4)
            f.seek(pos)
    except (OSError, AttributeError, ValueError):
        return True  # (cannot tell: keep NumPy's own message)
    return head in (b"PK\x03\x04", b"PK\x05\x06")


def rebuild(cls, meta, theta, state, rng_state, diagnostics, counter, training):
    net = cls._from_config(meta, diagnostics=diagnostics)
    net.flush_subnormals = bool(meta.get("flush_subnormals", True))
    net.theta[...] = net._program.unpack(np.asarray(theta))
    net.state[...] = state
    net._rng.bit_generator.state = rng_state
    net._counter = counter
    net.training = training
    return net
