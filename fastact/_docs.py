"""The numpydoc docstrings of the activation functions, made from the registry.

One template renders the docstring of every forward and backward activation function
of fastact/_api.py, for both backends (``fastact.gelu`` and ``fastact.reference.gelu``),
from the function's row in fastact/_registry.py: the formula and derivative, what the
backward saves, the parameters with their defaults and ranges, the ``out=`` and
``n_threads=`` rules, the errors, and an Examples block.  The short docstring written
beside each function in _api.py becomes the first line of its Notes.

The Examples print values rounded to 4 decimals (``np.round(y, 4)``), so they read the
same on every SIMD path and in pure-NumPy mode; tests/test_docs.py runs them as
doctests against both backends.  Adding an activation: its row in EXAMPLES below (the
outputs are what ``fastact.reference`` prints) and, if it takes parameters, its lines in
PARAMS and PARAM_ERRORS.
"""

from __future__ import annotations

import textwrap

from . import _registry as R

_X = "np.array([-2.0, -0.5, 0.0, 0.5, 2.0])"
_X_HARD = "np.array([-4.0, -1.0, 0.0, 1.0, 4.0])"
_X_ROWS = "np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])"
_G_ROWS = "np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])"

# name -> (x, the example's parameters as source text, forward output, backward output with
# grad_out = ones (rows: _G_ROWS)); the outputs are np.round(..., 4) of fastact.reference
EXAMPLES = {
    "identity": (
        _X,
        "",
        "array([-2. , -0.5,  0. ,  0.5,  2. ])",
        "array([1., 1., 1., 1., 1.])",
    ),
    "sigmoid": (
        _X,
        "",
        "array([0.1192, 0.3775, 0.5   , 0.6225, 0.8808])",
        "array([0.105, 0.235, 0.25 , 0.235, 0.105])",
    ),
    "tanh": (
        _X,
        "",
        "array([-0.964 , -0.4621,  0.    ,  0.4621,  0.964 ])",
        "array([0.0707, 0.7864, 1.    , 0.7864, 0.0707])",
    ),
    "relu": (
        _X,
        "",
        "array([0. , 0. , 0. , 0.5, 2. ])",
        "array([0., 0., 0., 1., 1.])",
    ),
    "leaky_relu": (
        _X,
        "negative_slope=0.1",
        "array([-0.2 , -0.05,  0.  ,  0.5 ,  2.  ])",
        "array([0.1, 0.1, 0.1, 1. , 1. ])",
    ),
    "prelu": (
        _X,
        "0.25",
        "array([-0.5  , -0.125,  0.   ,  0.5  ,  2.   ])",
        "array([0.25, 0.25, 0.25, 1.  , 1.  ])",
    ),
    "elu": (
        _X,
        "",
        "array([-0.8647, -0.3935,  0.    ,  0.5   ,  2.    ])",
        "array([0.1353, 0.6065, 1.    , 1.    , 1.    ])",
    ),
    "selu": (
        _X,
        "",
        "array([-1.5202, -0.6918,  0.    ,  0.5254,  2.1014])",
        "array([0.2379, 1.0663, 1.7581, 1.0507, 1.0507])",
    ),
    "celu": (
        _X,
        "alpha=0.5",
        "array([-0.4908, -0.3161,  0.    ,  0.5   ,  2.    ])",
        "array([0.0183, 0.3679, 1.    , 1.    , 1.    ])",
    ),
    "gelu": (
        _X,
        "",
        "array([-0.0455, -0.1543,  0.    ,  0.3457,  1.9545])",
        "array([-0.0852,  0.1325,  0.5   ,  0.8675,  1.0852])",
    ),
    "silu": (
        _X,
        "",
        "array([-0.2384, -0.1888,  0.    ,  0.3112,  1.7616])",
        "array([-0.0908,  0.26  ,  0.5   ,  0.74  ,  1.0908])",
    ),
    "mish": (
        _X,
        "",
        "array([-0.2525, -0.2207,  0.    ,  0.3752,  1.944 ])",
        "array([-0.1084,  0.2895,  0.6   ,  0.8864,  1.0693])",
    ),
    "softplus": (
        _X,
        "",
        "array([0.1269, 0.4741, 0.6931, 0.9741, 2.1269])",
        "array([0.1192, 0.3775, 0.5   , 0.6225, 0.8808])",
    ),
    "softsign": (
        _X,
        "",
        "array([-0.6667, -0.3333,  0.    ,  0.3333,  0.6667])",
        "array([0.1111, 0.4444, 1.    , 0.4444, 0.1111])",
    ),
    "hardtanh": (
        _X,
        "min_val=-1.0, max_val=1.0",
        "array([-1. , -0.5,  0. ,  0.5,  1. ])",
        "array([0., 1., 1., 1., 0.])",
    ),
    "relu6": (
        "np.array([-1.0, 0.5, 3.0, 6.5, 8.0])",
        "",
        "array([0. , 0.5, 3. , 6. , 6. ])",
        "array([0., 1., 1., 0., 0.])",
    ),
    "hardsigmoid": (
        _X_HARD,
        "",
        "array([0.    , 0.3333, 0.5   , 0.6667, 1.    ])",
        "array([0.    , 0.1667, 0.1667, 0.1667, 0.    ])",
    ),
    "hardswish": (
        _X_HARD,
        "",
        "array([ 0.    , -0.3333,  0.    ,  0.6667,  4.    ])",
        "array([0.    , 0.1667, 0.5   , 0.8333, 1.    ])",
    ),
    "log_sigmoid": (
        _X,
        "",
        "array([-2.1269, -0.9741, -0.6931, -0.4741, -0.1269])",
        "array([0.8808, 0.6225, 0.5   , 0.3775, 0.1192])",
    ),
    "softmax": (
        _X_ROWS,
        "",
        "array([[0.09  , 0.2447, 0.6652],\n       [0.3333, 0.3333, 0.3333]])",
        "array([[ 0.0819, -0.022 , -0.0599],\n       [-0.1111, -0.1111,  0.2222]])",
    ),
    "log_softmax": (
        _X_ROWS,
        "",
        "array([[-2.4076, -1.4076, -0.4076],\n       [-1.0986, -1.0986, -1.0986]])",
        "array([[ 0.91  , -0.2447, -0.6652],\n       [-0.3333, -0.3333,  0.6667]])",
    ),
}

# (activation, parameter) -> (numpydoc type line, description)
PARAMS = {
    ("leaky_relu", "negative_slope"): (
        "float, default 0.01",
        "The slope where x <= 0; any finite number.  The backward reads the sign of "
        "the saved output, so it needs negative_slope >= 0 (a negative slope: prelu).",
    ),
    ("prelu", "weight"): (
        "float or array_like of shape (x.shape[-1],)",
        "The slope where x <= 0: one value, or one per feature (the last axis); finite "
        "real numbers, rounded to x's dtype (a float array must have x's dtype).",
    ),
    ("elu", "alpha"): (
        "float, default 1.0",
        "The value elu tends to as x -> -inf is -alpha; finite.  The backward needs alpha >= 0.",
    ),
    ("celu", "alpha"): (
        "float, default 1.0",
        "The scale of the negative part, in [2**-126, 2**126] (so that alpha and "
        "1 / alpha are normal float32 numbers).",
    ),
    ("gelu", "approximate"): (
        "{'none', 'tanh'}, default 'none'",
        "'none': the exact x * Phi(x) (through erfc, accurate in both tails); 'tanh': "
        "PyTorch's tanh approximation.",
    ),
    ("softplus", "beta"): (
        "float, default 1.0",
        "The sharpness: log(1 + exp(beta x)) / beta; finite and > 0.",
    ),
    ("softplus", "threshold"): (
        "float, default 20.0",
        "Where beta * x > threshold the result is x itself (PyTorch's rule); finite and > 0.",
    ),
    ("hardtanh", "min_val"): ("float, default -1.0", "The lower bound; finite, < max_val."),
    ("hardtanh", "max_val"): ("float, default 1.0", "The upper bound; finite, > min_val."),
}

# activation -> (TypeError clause, ValueError clause, extra ValueError clause of the backward)
PARAM_ERRORS = {
    "leaky_relu": ("negative_slope is not a real number", "negative_slope is not finite", "< 0"),
    "prelu": (
        "weight is not real, or is a float array of another dtype than x",
        "weight is not finite in x's dtype, has more than one dimension, or holds neither "
        "1 value nor x.shape[-1]",
        "",
    ),
    "elu": ("alpha is not a real number", "alpha is not finite", "< 0"),
    "celu": ("alpha is not a real number", "alpha is outside [2**-126, 2**126]", ""),
    "gelu": ("", "approximate is neither 'none' nor 'tanh'", ""),
    "softplus": (
        "beta or threshold is not a real number",
        "beta or threshold is not finite and > 0",
        "",
    ),
    "hardtanh": (
        "min_val or max_val is not a real number",
        "min_val or max_val is not finite, or min_val >= max_val",
        "",
    ),
}


def public(module: str) -> tuple:
    """(the prefix the examples call through, the twin's prefix) for make_api's module."""
    if module == "fastact.reference":
        return "fastact.reference", "fastact"
    return "fastact", "fastact.reference"


def _section(title: str, body: str) -> str:
    return f"{title}\n{'-' * len(title)}\n{body.rstrip()}\n"


def _item(head: str, text: str) -> str:
    return head + "\n" + textwrap.fill(text, 84, initial_indent="    ", subsequent_indent="    ")


def _para(text: str) -> str:
    return textwrap.fill(text, 88)


_THREADS = (
    "Threads for this call: None (the default) uses fastact.get_num_threads(); k > 0 at "
    "most k (clamped to the usable cores); -1 all usable cores, -2 all but one.  Arrays "
    "below 65,536 elements run on the calling thread; the result never depends on it."
)


def _param_items(name: str, params) -> list:
    return [_item(f"{p} : {_param(name, p)[0]}", _param(name, p)[1]) for p in params]


def _param(act: str, p: str) -> tuple:
    # a parameter without its lines here still renders (and tests/test_docs.py says so)
    return PARAMS.get((act, p), ("object", ""))


def _errors(name: str, backward: bool, rowwise: bool) -> str:
    te, ve, ve_bwd = PARAM_ERRORS.get(name, ("", "", ""))
    args = "grad_out or saved" if backward else "x"
    t = [
        f"{args} is not float32, float64 or integer (bool, float16, complex, object and "
        "masked arrays are refused)"
    ]
    v = []
    if backward:
        t.append("grad_out and saved differ in dtype")
        v.append("grad_out and saved differ in shape")
    if rowwise:
        v.append(f"{'grad_out' if backward else 'x'} is 0-d (a scalar)")
    t += ["out is not an ndarray of the result's dtype", "n_threads is not an int or None"]
    v += [
        "out has another shape, is read-only or partly overlaps an input",
        "n_threads is 0 or below minus the usable cores",
    ]
    if te:
        t.append(te)
    if ve:
        v.append(ve + (f" or {ve_bwd}" if backward and ve_bwd else ""))
    return "\n".join(
        [
            _item("TypeError", "If " + "; ".join(t) + "."),
            _item("ValueError", "If " + "; ".join(v) + "."),
        ]
    )


def _call(args: str, ex_params: str) -> str:
    return args + (", " + ex_params if ex_params else "")


def render(name: str, module: str, note: str | None) -> str:
    """The docstring of the forward function `name` (or `<act>_backward`) of `module`."""
    backward = name.endswith("_backward")
    act = name[: -len("_backward")] if backward else name
    row = R._SPEC[act]
    params, saves, formula, deriv, kind = row[1], row[2], row[3], row[4], row[5]
    rowwise = kind == "rowwise"
    fa, twin = public(module)
    # an activation without its EXAMPLES row still imports; its docstring then lacks
    # Examples, which tests/test_docs.py reports (EX01)
    x_src, ex_params, fwd_out, bwd_out = EXAMPLES.get(act, (None, "", "", ""))
    native = fa == "fastact"
    note = " ".join((note or "").split())

    if not backward:
        summary = (
            f"Apply {act} along the last axis of x."
            if rowwise
            else f"Apply the {act} activation elementwise."
        )
        how = (
            "One pass of the native kernel, in x's own precision."
            if native
            else f"The NumPy twin of {twin}.{act}: the same signature, checks and errors, "
            "the arithmetic in float64 rounded once to x's dtype."
        )
        extended = _para(f"``{act}(x) = {formula}``.  {how}")
        x_doc = (
            "The input, at least 1-D (each row along the last axis is normalised)"
            if rowwise
            else "The input, any shape"
        ) + (
            ".  float32 and float64 are computed in their own precision, integers in "
            "float64; a Python scalar gives a NumPy scalar."
        )
        inplace = (
            f"  In place destroys the input that {act}_backward needs: for inference only."
            if saves == "input"
            else ""
        )
        items = [_item("x : array_like", x_doc)]
        items += _param_items(act, params)
        items.append(
            _item(
                "out : ndarray, optional",
                "The array to write the result into (its shape and dtype, writeable), and "
                "returned.  It may be x itself (in place) but must not partly overlap it."
                + inplace,
            )
        )
        items.append(_item("n_threads : int, optional", _THREADS))
        returns = _item(
            "ndarray",
            f"{act}(x): x's shape and dtype (float64 for integers); out when given.",
        )
        see = [
            f"{fa}.{act}_backward : The gradient, from the saved {saves}.",
            f"{twin}.{act} : The "
            + ("NumPy twin (the test oracle)." if native else "native kernel."),
        ]
        if act in R.BIAS_ACT_NAMES:
            see.append(f"{fa}.bias_act : {act}(z + bias) in one pass (a dense layer's epilogue).")
        see.append(f"{fa}.ACTIVATIONS : The registry: formula, derivative, saves, parameters.")
        examples = [
            ">>> import numpy as np",
            f">>> import {fa}",
            f">>> x = {x_src}",
            f">>> y = {fa}.{act}({_call('x', ex_params)})",
            ">>> np.round(y, 4)",
            fwd_out,
            "",
            "float32 stays float32, and out= may be the input itself:",
            "",
            ">>> x32 = x.astype(np.float32)",
            f">>> {fa}.{act}({_call('x32', ex_params)}, out=x32) is x32",
            "True",
        ]
        summary_parts = [summary, "", extended]
    else:
        summary = f"Backpropagate grad_out through {act}, from its saved {saves}."
        symbol = "x" if saves == "input" else "y"
        saved_doc = (
            "The forward's input x" if saves == "input" else f"The forward's output y = {act}(x)"
        ) + ", of grad_out's shape and dtype."
        if rowwise:
            extended = _para(
                f"The vector-Jacobian product of {act} per row along the last axis: "
                f"``{deriv.replace(' (a vector-Jacobian product)', '')}`` with g = grad_out "
                "and y the saved output."
            )
        else:
            how = (
                "One pass of the native kernel." if native else f"The NumPy twin of {twin}.{name}."
            )
            if act == "prelu":
                rule = (
                    "``grad_in = grad_out * (1 if x > 0 else weight)`` and ``grad_weight = "
                    "sum(grad_out * (0 if x > 0 else x))`` over every axis but the weight's, "
                    "from the saved input x."
                )
            else:
                rule = (
                    f"``grad_in = grad_out * {act}'``, where ``{act}' = {deriv}`` is "
                    f"computed from the saved {saves} {symbol}."
                )
            extended = _para(f"{rule}  {how}")
        items = [
            _item(
                "grad_out : array_like", f"The gradient of the loss with respect to {act}'s output."
            ),
            _item("saved : array_like", saved_doc),
        ]
        items += [
            _item(head, text + "  The forward's value.")
            for head, text in ((f"{p} : {_param(act, p)[0]}", _param(act, p)[1]) for p in params)
        ]
        items.append(
            _item(
                "out : ndarray, optional",
                "The array to write the gradient with respect to the input into (its shape "
                "and dtype, writeable), and returned.  It may be grad_out or saved itself "
                "(in place) but must not partly overlap them.",
            )
        )
        items.append(_item("n_threads : int, optional", _THREADS))
        if act == "prelu":
            returns = "\n".join(
                [
                    _item(
                        "grad_in : ndarray",
                        "The gradient with respect to x: grad_out's shape and dtype; out when "
                        "given.",
                    ),
                    _item(
                        "grad_weight : ndarray",
                        "The gradient with respect to weight, of weight's shape (summed in "
                        "double over every other axis).",
                    ),
                ]
            )
        else:
            returns = _item(
                "ndarray",
                "The gradient with respect to x: grad_out's shape and dtype; out when given.",
            )
        see = [
            f"{fa}.{act} : The forward.",
            f"{twin}.{name} : The "
            + ("NumPy twin (the test oracle)." if native else "native kernel."),
        ]
        if act in R.BIAS_ACT_NAMES:
            see.append(
                f"{fa}.bias_act_backward : The fused backward of act(z + bias), "
                "with the bias gradient."
            )
        examples = [
            ">>> import numpy as np",
            f">>> import {fa}",
            f">>> {fa}.ACTIVATIONS[{act!r}].saves",
            repr(saves),
            f">>> x = {x_src}",
        ]
        if rowwise:
            examples += [f">>> g = {_G_ROWS}"]
        else:
            examples += [">>> g = np.ones_like(x)"]
        if saves == "input":
            saved_arg = "x"
        else:
            examples.append(f">>> y = {fa}.{act}({_call('x', ex_params)})")
            saved_arg = "y"
        if act == "prelu":
            examples += [
                f">>> gx, gw = {fa}.{name}({_call(f'g, {saved_arg}', ex_params)})",
                ">>> np.round(gx, 4)",
                bwd_out,
                ">>> float(np.round(gw, 4))",
                "-2.5",
            ]
        else:
            examples += [
                f">>> gx = {fa}.{name}({_call(f'g, {saved_arg}', ex_params)})",
                ">>> np.round(gx, 4)",
                bwd_out,
            ]
        summary_parts = [summary, "", extended]

    if backward:
        notes = f"The forward: ``{act}(x) = {formula}``."
    else:
        notes = f"The derivative: ``{deriv}``" + (
            f", with y = {act}(x)." if saves == "output" else "."
        )
    notes = _para(
        f"{notes}  {act}_backward takes the forward's {saves} "
        f"(``ACTIVATIONS[{act!r}].saves == {saves!r}``)." + (f"  {note}" if note else "")
    )
    raises = _errors(act, backward, rowwise)
    if x_src is None:
        examples = []
    parts = [
        "\n".join(summary_parts) + "\n",
        _section("Parameters", "\n".join(items)),
        _section("Returns", returns),
        _section("Raises", raises),
        _section("See Also", "\n".join(see)),
        _section("Notes", notes),
    ]
    if examples:
        parts.append(_section("Examples", "\n".join(examples)))
    return "\n".join(parts)


# the public functions of make_api that are not one activation: written out, with
# {fa} the module the examples call through and {twin} the other backend
HANDWRITTEN = {
    "softmax_cross_entropy": """\
Compute the mean softmax cross-entropy of logits and its gradient, in one pass.

``loss = mean_r sum_j -t[r, j] log_softmax(x)[r, j]`` with t the one-hot rows of
``labels`` (class indices) or ``labels`` itself (probability rows); the loss is summed
in double.  The gradient is exact: ``(softmax(x) * sum_j t[r, j] - t) / rows``.

Parameters
----------
logits : array_like of shape (rows, classes)
    The scores before the softmax; float32 or float64 (integers in float64).
labels : array_like of shape (rows,) or (rows, classes)
    Class indices in [0, classes) (a 1-D integer array), or probability rows of the
    logits' shape (float32 or float64).
out : ndarray, optional
    The array to write grad_logits into (the logits' shape and dtype, writeable);
    it must not overlap logits or labels.
n_threads : int, optional
    Threads for this call: None (the default) uses fastact.get_num_threads(); k > 0
    at most k, -1 all usable cores, -2 all but one.

Returns
-------
loss : float
    The mean over the rows.
grad_logits : ndarray
    The gradient of loss with respect to logits; out when given.

Raises
------
TypeError
    If 1-D labels are not integers, 2-D labels are not float32 or float64, or an array,
    out or n_threads has a wrong type.
ValueError
    If logits are not 2-D, have no rows or no classes; if labels have another number of
    rows, a class index outside [0, classes), another shape, or more than 2 dimensions;
    if out has another shape, is read-only or overlaps an input; if n_threads is 0.

See Also
--------
{fa}.log_softmax : log_softmax(x) along the last axis.
{twin}.softmax_cross_entropy : The other backend's twin.

Examples
--------
>>> import numpy as np
>>> import {fa}
>>> logits = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.0]])
>>> loss, grad = {fa}.softmax_cross_entropy(logits, np.array([0, 1]))
>>> round(loss, 4)
0.3069
>>> np.round(grad, 4)
array([[-0.1705,  0.1212,  0.0493],
       [ 0.0556, -0.0893,  0.0337]])

Probability rows give the same loss for one-hot rows:

>>> onehot = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
>>> round({fa}.softmax_cross_entropy(logits, onehot)[0], 4)
0.3069
""",
    "bias_act": """\
Apply act(z + bias) in one pass, bias broadcast over the rows.

The epilogue of a dense layer (``z = x @ W``): the bias add and the activation fused
into one pass over memory, in z's own precision.  Elementwise activations with scalar
parameters only (every name of fastact.ACTIVATIONS but prelu, softmax and log_softmax).

Parameters
----------
z : array_like
    The pre-activations, at least 1-D; the last axis holds the features.
bias : array_like of shape (z.shape[-1],)
    One value per feature, of z's dtype.
activation : str or Activation
    The activation's name (or its ACTIVATIONS entry), e.g. "relu", "gelu".
out : ndarray, optional
    The array to write the result into (z's shape and dtype, writeable); it may be z
    itself but must not overlap bias.
n_threads : int, optional
    Threads for this call: None (the default) uses fastact.get_num_threads(); k > 0
    at most k, -1 all usable cores, -2 all but one.
**params
    The activation's parameters, as the activation function takes them
    (negative_slope=, alpha=, approximate=, beta=, threshold=, min_val=, max_val=).

Returns
-------
ndarray
    act(z + bias), z's shape and dtype; out when given.

Raises
------
TypeError
    If an array is not float32, float64 or integer, z and bias differ in dtype, or a
    parameter is unknown to the activation or not a real number.
ValueError
    If the activation is unknown or row-wise (or prelu), z is 0-d, bias is not of shape
    (z.shape[-1],), a parameter is out of range, out does not fit, or n_threads is 0.

See Also
--------
{fa}.bias_act_backward : Its gradient, with the bias gradient.
{twin}.bias_act : The other backend's twin.

Examples
--------
>>> import numpy as np
>>> import {fa}
>>> z = np.array([[-1.0, 0.5], [2.0, -0.5]])
>>> bias = np.array([0.5, -0.5])
>>> {fa}.bias_act(z, bias, "relu")
array([[0. , 0. ],
       [2.5, 0. ]])
>>> np.round({fa}.bias_act(z, bias, "leaky_relu", negative_slope=0.1), 4)
array([[-0.05,  0.  ],
       [ 2.5 , -0.1 ]])
""",
    "bias_act_backward": """\
Backpropagate through y = act(z + bias): the gradients of z and of bias, in one pass.

``grad_z = grad_out * act'(z + bias)`` and ``grad_bias = grad_z`` summed over the
rows (in double).  ``saved`` is what the activation saves
(``ACTIVATIONS[name].saves``): the output y, or the input z (before the bias), in
which case bias= is needed to rebuild z + bias.

Parameters
----------
grad_out : array_like
    The gradient of the loss with respect to y, at least 1-D.
saved : array_like
    y (activations that save their output) or z (those that save their input), of
    grad_out's shape and dtype.
activation : str or Activation
    The activation's name (or its ACTIVATIONS entry), as given to bias_act.
bias : array_like of shape (grad_out.shape[-1],), optional
    The forward's bias: required when the activation saves its input, checked and
    unused otherwise.
out : ndarray, optional
    The array to write grad_z into (grad_out's shape and dtype, writeable); it may be
    grad_out or saved itself but must not overlap bias.
n_threads : int, optional
    Threads for this call: None (the default) uses fastact.get_num_threads(); k > 0
    at most k, -1 all usable cores, -2 all but one.
**params
    The activation's parameters, the forward's values.

Returns
-------
grad_z : ndarray
    The gradient with respect to z; out when given.
grad_bias : ndarray
    The gradient with respect to bias, of shape (grad_out.shape[-1],) and
    grad_out's dtype.

Raises
------
TypeError
    If an array is not float32, float64 or integer, the arrays differ in dtype, or a
    parameter is unknown to the activation or not a real number.
ValueError
    If the activation is unknown or row-wise (or prelu); bias is missing for an
    activation that saves its input, or has the wrong shape; grad_out is 0-d or saved
    has another shape; negative_slope (leaky_relu) or alpha (elu) is negative; out does
    not fit; or n_threads is 0.

See Also
--------
{fa}.bias_act : The forward.
{twin}.bias_act_backward : The other backend's twin.

Examples
--------
>>> import numpy as np
>>> import {fa}
>>> z = np.array([[-1.0, 0.5], [2.0, -0.5]])
>>> bias = np.array([0.5, -0.5])
>>> g = np.ones_like(z)
>>> y = {fa}.bias_act(z, bias, "relu")
>>> grad_z, grad_bias = {fa}.bias_act_backward(g, y, "relu")
>>> grad_z
array([[0., 0.],
       [1., 0.]])
>>> grad_bias
array([1., 0.])

gelu saves its input, so it takes z and the bias:

>>> grad_z, grad_bias = {fa}.bias_act_backward(g, z, "gelu", bias=bias)
>>> np.round(grad_bias, 4)
array([1.1701, 0.4167])
""",
}
