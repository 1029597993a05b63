"""Plugins from Python: activations and losses written with numpy, and plugin libraries (.so).

    import numpy as np, nnbackprop as nnb

    def mish(x):            return x * np.tanh(np.logaddexp(0, x))
    def mish_grad(dy, x, y):
        t, s = np.tanh(np.logaddexp(0, x)), 1 / (1 + np.exp(-x))
        return dy * (t + x * s * (1 - t * t))

    nnb.register_activation("py_mish", mish, mish_grad)
    model = nnb.Model("2-8:py_mish-2")          # named like a built-in activation

    nnb.load_plugin("libnnb_mish.so")          # a C plugin library (include/nnbackprop_plugin.h)

Python plugins run through ctypes callbacks: they work everywhere a built-in does (training,
prediction, model files), only slower. A callback never lets an exception into C: it fills
its output with NaN, and the exception is raised again by the next fit/predict/evaluate
(`raise_pending`), so a bug cannot pass silently.
"""

import ctypes
import threading

import numpy as np

from . import _lib
from .errors import check

_C = _lib.lib

# Registrations live for the process: the callbacks must never be garbage-collected.
_keep = []
_pending = []
_pending_lock = threading.Lock()


def _record(exc):
    with _pending_lock:
        _pending.append(exc)


def raise_pending():
    """Re-raises the first exception a Python plugin raised inside a callback, if any."""
    with _pending_lock:
        if not _pending:
            return
        exc = _pending[0]
        _pending.clear()
    raise RuntimeError(f"a Python plugin callback raised {type(exc).__name__}: {exc}") from exc


def _view(ptr, n):
    return np.ctypeslib.as_array(ptr, shape=(n,)) if n else np.empty(0, np.float32)


def register_activation(name, forward, backward):
    """Registers an activation called `name`.

    forward(x) -> y and backward(dy, x, y) -> dx take and return float32 arrays of one shape
    (x is None when the library does not keep the input). Raises DuplicateError for a name taken
    already, InvalidArgumentError for a bad or built-in name."""
    if not callable(forward) or not callable(backward):
        raise TypeError("forward and backward must be callable")

    def c_forward(_ctx, y, x, n):
        out = _view(y, n)
        try:
            out[:] = np.asarray(forward(_view(x, n).copy()), dtype=np.float32).reshape(n)
        except BaseException as exc:  # nothing may cross into C
            out[:] = np.nan
            _record(exc)

    def c_backward(_ctx, dx, dy, x, y, n):
        out = _view(dx, n)
        try:
            xs = _view(x, n).copy() if x else None
            out[:] = np.asarray(backward(_view(dy, n).copy(), xs, _view(y, n).copy()), dtype=np.float32).reshape(n)
        except BaseException as exc:
            out[:] = np.nan
            _record(exc)

    f, b = _lib.ACT_FORWARD(c_forward), _lib.ACT_BACKWARD(c_backward)
    encoded = name.encode()
    p = _lib.ActivationPlugin(ctypes.sizeof(_lib.ActivationPlugin), _lib.PLUGIN_ABI_VERSION, encoded, f, b, None)
    check(_C.nnb_register_activation(ctypes.byref(p)))
    _keep.extend([f, b, encoded])


def register_loss(name, fn):
    """Registers a loss called `name`: fn(pred, target) -> (loss, grad), with pred and target
    float32 arrays (rows, cols) and grad d(loss)/d(pred) of the same shape (loss is the mean)."""
    if not callable(fn):
        raise TypeError("fn must be callable")

    def c_loss(_ctx, grad, pred, target, rows, cols):
        try:
            p = _view(pred, rows * cols).reshape(rows, cols).copy()
            t = _view(target, rows * cols).reshape(rows, cols).copy()
            value, g = fn(p, t)
            if grad:
                _view(grad, rows * cols)[:] = np.asarray(g, dtype=np.float32).reshape(rows * cols)
            return float(value)
        except BaseException as exc:
            if grad:
                _view(grad, rows * cols)[:] = np.nan
            _record(exc)
            return float("nan")

    c = _lib.LOSS_FN(c_loss)
    encoded = name.encode()
    p = _lib.LossPlugin(ctypes.sizeof(_lib.LossPlugin), _lib.PLUGIN_ABI_VERSION, encoded, c, None)
    check(_C.nnb_register_loss(ctypes.byref(p)))
    _keep.extend([c, encoded])


def load_plugin(path):
    """Loads a plugin library (.so exporting nnb_plugin_init); raises PluginError and friends."""
    check(_C.nnb_plugin_load(str(path).encode()))


def plugin_registered(name):
    """True when a plugin registered an activation or loss called `name`."""
    return bool(_C.nnb_plugin_registered(name.encode()))
