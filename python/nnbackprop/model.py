"""The Model class: a feed-forward network in libnnbackprop, driven with numpy arrays."""

import ctypes
import math
import operator
import os
import tempfile
from collections import namedtuple

import numpy as np

from . import _lib
from .errors import InvalidArgumentError, NNBackpropError, ShapeError, check
from .layers import Activation, Dense, Dropout, _layer  # the first three: nnbackprop.model had them
from .plugins import raise_pending

_C = _lib.lib


class ModelInfo(namedtuple("ModelInfo", "inputs outputs layers parameters input_shape")):
    """What a model is: inputs (values per sample), outputs, layers, parameters (trainable
    scalars) and input_shape (the shape of one sample, a tuple: (1, 28, 28) for an image,
    (inputs,) for a feature vector, which is also the default when it is left out)."""

    __slots__ = ()

    def __new__(cls, inputs, outputs, layers, parameters, input_shape=None):
        shape = (inputs,) if input_shape is None else tuple(input_shape)
        return super().__new__(cls, inputs, outputs, layers, parameters, shape)


def _shape(input_shape):
    """input_shape (an int, or a tuple of sizes) as a tuple of positive ints."""
    try:
        if np.ndim(input_shape) == 0:
            shape = (int(input_shape),)  # as inputs= always took it: 784, np.int64(784), "784"
        else:
            shape = tuple(operator.index(n) for n in input_shape)
    except (TypeError, ValueError):
        raise TypeError(f"input_shape is an int or a tuple of ints, not {input_shape!r}") from None
    # Checked here, not left to the library: a negative size would read as a '-' between elements.
    if not shape or any(n <= 0 for n in shape):
        message = f"input_shape {input_shape!r}: one or more positive sizes, e.g. 784 or (1, 28, 28)"
        raise InvalidArgumentError(message, _lib.ERR_INVALID_ARGUMENT)
    return shape


def _floats(a, name):
    """`a` as a C-contiguous float32 array, converting (once) only when needed."""
    try:
        return np.ascontiguousarray(a, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} must be convertible to a float32 array: {e}") from None


def _ptr(a):
    return a.ctypes.data_as(_lib.float_p)


def _features(x, shape, name="x"):
    """x as a (rows, cols) float32 array for a model whose samples have shape `shape`.

    x is (rows, *shape), or flat (rows, cols) with cols the values per sample; x of exactly
    `shape` (or a 1-D x of cols values) is one sample; for a one-input model a 1-D x is a
    column of samples. A feature-vector model (shape (cols,)) also takes (rows, ...) of cols
    values per row (images, flattened). Any other x raises ShapeError naming both shapes.
    Returns (array, was_one_row)."""
    x = _floats(x, name)
    cols = math.prod(shape)
    if x.shape == shape or (x.ndim == 1 and x.size == cols):
        return x.reshape(1, cols), True
    if x.ndim == 1 and cols == 1:
        return x.reshape(-1, 1), False  # one feature: a 1-D x is a column of samples
    if x.ndim >= 2:
        rows, sample = x.shape[0], x.shape[1:]
        if sample == shape or sample == (cols,) or (len(shape) == 1 and math.prod(sample) == cols):
            return x.reshape(rows, cols), False
    if len(shape) == 1:
        wanted = f"(rows, {cols})"
    else:
        wanted = f"(rows, {', '.join(map(str, shape))}) or flat (rows, {cols})"
    raise ShapeError(
        f"{name} has shape {x.shape}, but the model takes samples of shape {shape}: give {name} as {wanted}",
        _lib.ERR_SHAPE_MISMATCH,
    )


def _targets(y, rows, name="y"):
    """y as a (rows, y_cols) float32 array: a 1-D y (class indices, or one target per row) is
    one column."""
    y = _floats(y, name)
    if y.ndim == 0:
        raise ShapeError(f"{name} is a scalar; expected {rows} rows", _lib.ERR_SHAPE_MISMATCH)
    if y.ndim == 1:
        y = y.reshape(-1, 1)
    elif y.ndim > 2:
        y = y.reshape(y.shape[0], -1)
    if y.shape[0] != rows:
        raise ShapeError(f"{name} has {y.shape[0]} rows but x has {rows}", _lib.ERR_SHAPE_MISMATCH)
    return y


def _report_dict(r):
    return {
        "epoch": r.epoch,
        "epochs": r.epochs,
        "loss": r.loss,
        "accuracy": r.accuracy,
        "val_loss": r.val_loss,
        "val_accuracy": r.val_accuracy,
        "learning_rate": r.learning_rate,
        "seconds": r.seconds,
        "best_epoch": int(r.best_epoch),
    }


def _fmt(v):
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"


# Options of nnb_train_options that fit/compile take as keyword arguments, and their C types.
_OPTION_FIELDS = {
    "momentum": float,
    "nesterov": int,
    "weight_decay": float,
    "beta1": float,
    "beta2": float,
    "eps": float,
    "label_smoothing": float,
    "huber_delta": float,
    "schedule": str,
    "step_size": int,
    "gamma": float,
    "warmup_epochs": int,
    "clip_norm": float,
    "shuffle": int,
    "seed": int,
    "early_stopping_patience": int,
    "restore_best": int,
    "standardize": int,
    "alpha": float,
    "augment_shift": int,
    "augment_flip": int,
}


def _options(epochs, batch_size, loss, optimizer, lr, validation_split, options):
    o = _lib.TrainOptions()
    _C.nnb_train_options_init_sized(ctypes.byref(o), ctypes.sizeof(o))  # the struct this module declares
    if epochs is not None:
        o.epochs = int(epochs)
    if batch_size is not None:
        o.batch_size = int(batch_size)
    if loss is not None:
        o.loss = loss.encode()
    if optimizer is not None:
        o.optimizer = optimizer.encode()
    if lr is not None:
        o.learning_rate = float(lr)
    if validation_split is not None:
        o.validation_split = float(validation_split)
    for key, value in options.items():
        kind = _OPTION_FIELDS.get(key)
        if kind is None:
            raise TypeError(f"unknown training option {key!r}; known: {', '.join(sorted(_OPTION_FIELDS))}")
        if kind is str:
            setattr(o, key, value.encode() if value is not None else None)
        else:
            setattr(o, key, kind(value))
    return o


class Model:
    """A feed-forward network trained by backpropagation in libnnbackprop.

    Model("784-256:relu-128:relu-10")                    the compact form: the input first
    Model("256:relu-128:relu-10", inputs=784)            the same, inputs given apart
    Model([Dense(256, "relu"), Dropout(0.2), Dense(10)], inputs=784)
    Model(["256:relu", "dropout:0.2", 10], inputs=784)   the same, in shorthand
    Model("1x28x28-flatten-256:relu-10")                 an image input: channels x height x width
    Model([Flatten(), Dense(256, "relu"), Dense(10)], input_shape=(1, 28, 28))

    `inputs` (a count) and `input_shape` (an int or a tuple of sizes) both give the shape of
    one input sample; give one of them with a layer list or a description that lacks its input.
    Weights start as PyTorch initialises them, from `seed`. Many threads may call predict and
    evaluate on one model at once (they wait while another thread trains it); training it from
    two threads at once raises BusyError.
    """

    def __init__(self, layers, inputs=None, seed=0, input_shape=None):
        self._handle = None
        if inputs is not None and input_shape is not None:
            raise TypeError("Model(...) takes inputs= or input_shape=, not both")
        given = inputs if input_shape is None else input_shape
        shape = None if given is None else _shape(given)
        if isinstance(layers, str):
            elements = [layers]
        else:
            if shape is None:
                raise TypeError("Model(layers=[...]) needs input_shape= (or inputs=, the number of features)")
            elements = [element for item in layers for element in _layer(item)._elements()]
        if shape is not None:
            elements.insert(0, "x".join(map(str, shape)))
        description = "-".join(elements)
        handle = _lib.model_p()
        check(_C.nnb_model_create_from_string(ctypes.byref(handle), description.encode(), int(seed)))
        self._adopt(handle)

    def _adopt(self, handle):
        self._handle = handle
        # A handle's shape never changes, so it is read once, for every call that checks x.
        info = self.info
        self._inputs, self._outputs, self._input_shape = info.inputs, info.outputs, info.input_shape

    @classmethod
    def _from_handle(cls, handle):
        model = cls.__new__(cls)
        model._handle = None
        model._adopt(handle)
        return model

    @classmethod
    def load(cls, path, allow_non_finite=False):
        """A model read from a file written by save() (or by NNBackprop's Swift and C APIs).
        A file with NaN or infinite weights raises InvalidDataError unless allow_non_finite."""
        handle = _lib.model_p()
        flags = _lib.LOAD_ALLOW_NONFINITE if allow_non_finite else 0
        check(_C.nnb_model_load_with_flags(ctypes.byref(handle), os.fsencode(path), flags))
        return cls._from_handle(handle)

    # -- lifetime ---------------------------------------------------------------------------

    def close(self):
        """Frees the model now (it is freed anyway when garbage-collected)."""
        handle, self._handle = self._handle, None
        if handle:
            _C.nnb_model_free(handle)

    def __del__(self):
        # At interpreter exit the module globals may be gone already.
        if getattr(self, "_handle", None) and _C is not None:
            self.close()

    def __copy__(self):
        """An independent model with the same layers, weights and scaler (through a model file
        in a temporary folder). Training options set by compile() are not copied. A copy never
        shares the C handle, so freeing one leaves the other usable."""
        with tempfile.TemporaryDirectory(prefix="nnbackprop-copy-") as folder:
            path = os.path.join(folder, "model.safetensors")
            self.save(path)
            return type(self).load(path)

    def __deepcopy__(self, memo):
        return self.__copy__()

    def __reduce__(self):
        raise TypeError("nnbackprop.Model cannot be pickled yet; save() it to a file and load() it instead")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    @property
    def _h(self):
        if not self._handle:
            raise ValueError("the model is closed")
        return self._handle

    # -- shape ------------------------------------------------------------------------------

    @property
    def info(self):
        """ModelInfo(inputs, outputs, layers, parameters, input_shape)."""
        info = _lib.ModelInfo()
        info.struct_size = ctypes.sizeof(info)
        check(_C.nnb_model_get_info(self._h, ctypes.byref(info)))
        rank = info.input_rank  # at most 8: the library refuses longer shapes
        shape = tuple(info.input_shape[:rank]) if rank > 0 else None  # 0: a library before 0.2
        return ModelInfo(info.inputs, info.outputs, info.layers, info.parameters, shape)

    @property
    def inputs(self):
        """Values per input sample (the product of input_shape)."""
        return self._inputs

    @property
    def input_shape(self):
        """The shape of one input sample: (1, 28, 28) for an image, (inputs,) for features."""
        return self._input_shape

    @property
    def outputs(self):
        return self._outputs

    def describe(self):
        """The compact description ("784-256:relu-128:relu-10") that Model(...) takes."""
        needed = ctypes.c_size_t(0)
        buf = ctypes.create_string_buffer(256)
        status = _C.nnb_model_describe(self._h, buf, len(buf), ctypes.byref(needed))
        if status == _lib.ERR_CAPACITY and needed.value > len(buf):
            buf = ctypes.create_string_buffer(needed.value)
            status = _C.nnb_model_describe(self._h, buf, len(buf), ctypes.byref(needed))
        check(status)
        return buf.value.decode()

    def __repr__(self):
        if not self._handle:
            return "<nnbackprop.Model (closed)>"
        return f"<nnbackprop.Model {self.describe()!r}, {self.info.parameters} parameters>"

    # -- training ---------------------------------------------------------------------------

    def fit(
        self,
        x,
        y,
        epochs=10,
        batch_size=32,
        loss="cross_entropy",
        optimizer="adam",
        lr=1e-3,
        validation_split=0.0,
        callback=None,
        verbose=False,
        resume=False,
        **options,
    ):
        """Trains on (x, y) and returns the history: one dict per epoch run (epoch, epochs, loss,
        accuracy, val_loss, val_accuracy, learning_rate, seconds, best_epoch). best_epoch is an
        int: with early stopping, the 1-based epoch whose weights the model kept (restore_best)
        or that was best, else 0. The history's last dict always has it; the earlier ones, and
        the dicts callback sees, have what the library reported after that epoch.

        x is (rows, *input_shape) or flat (rows, inputs), as predict takes it. y holds class
        indices (1-D, or one column) or one-hot/soft rows for cross_entropy, else (rows,
        outputs) targets.
        validation_split holds out that fraction of the last rows. callback(report_dict) runs
        after every epoch; returning True stops training. An exception raised in it stops
        training and is re-raised here. Other keyword options: momentum, nesterov,
        weight_decay, beta1, beta2, eps, label_smoothing, huber_delta, schedule, step_size,
        gamma, warmup_epochs, clip_norm, shuffle, seed, early_stopping_patience, restore_best,
        standardize (fit a per-feature standardizer on the training rows; the model keeps it),
        alpha (rmsprop's smoothing constant), augment_shift and augment_flip (for image
        models: move each training sample by up to that many pixels, mirror it left to right
        with probability 1/2; seeded, never the validation rows). An option the chosen optimizer, loss or schedule
        does not use raises InvalidArgumentError rather than being ignored.

        resume=True continues the checkpoint this model was loaded from (save(path,
        checkpoint=True), then Model.load(path)): its optimizer state and data order, from the
        epoch after the ones it had done. `epochs` is then the total wanted, counting the epochs
        done before the checkpoint, and every other argument must be what the first run used
        (the library refuses another optimizer, seed, batch size or shuffle setting); the result
        is bitwise the uninterrupted run's, and the history holds only the epochs run now. A
        model not loaded from a checkpoint, or one whose checkpoint a call already used (a
        resume or any other training; a refused call leaves it), raises NotReadyError; another
        optimizer than the checkpoint's raises ShapeError; another seed or batch size
        InvalidArgumentError.
        """
        x, _ = _features(x, self._input_shape)
        y = _targets(y, x.shape[0])
        opts = _options(epochs, batch_size, loss, optimizer, lr, validation_split, options)
        opts.resume = int(resume)  # the library refuses anything but 0 and 1
        history = []
        raised = []

        def on_epoch(report_p, _user_data):
            # Nothing may propagate into C: any exception is kept and re-raised after nnb_train.
            try:
                report = _report_dict(report_p.contents)
                history.append(report)
                if verbose:
                    print(
                        f"epoch {report['epoch']}/{report['epochs']}  loss {_fmt(report['loss'])}"
                        f"  accuracy {_fmt(report['accuracy'])}  val_loss {_fmt(report['val_loss'])}"
                        f"  val_accuracy {_fmt(report['val_accuracy'])}  {report['seconds']:.2f} s",
                        flush=True,
                    )
                if callback is not None and callback(dict(report)):
                    return 1
                return 0
            except BaseException as e:  # noqa: B036 - KeyboardInterrupt too must not cross into C
                raised.append(e)
                return 1

        c_callback = _lib.EPOCH_CALLBACK(on_epoch)  # referenced until nnb_train returns
        opts.on_epoch = c_callback
        last = _lib.EpochReport()
        last.struct_size = ctypes.sizeof(last)
        status = _C.nnb_train(
            self._h, _ptr(x), x.shape[0], x.shape[1], _ptr(y), y.shape[1], ctypes.byref(opts), ctypes.byref(last)
        )
        del c_callback
        if raised:
            raise raised[0]
        raise_pending()
        check(status)
        if history:
            # nnb_train's own last report is the one that knows the outcome of early stopping.
            history[-1]["best_epoch"] = int(last.best_epoch)
        return history

    def compile(self, loss="cross_entropy", optimizer="adam", lr=1e-3, batch_size=32, **options):
        """Sets loss and optimizer for train_batch / train_epoch (a new optimizer state)."""
        opts = _options(None, batch_size, loss, optimizer, lr, None, options)
        check(_C.nnb_compile(self._h, ctypes.byref(opts)))
        return self

    def train_batch(self, x, y):
        """One optimizer step on (x, y); returns the batch's mean loss. Needs compile()."""
        x, _ = _features(x, self._input_shape)
        y = _targets(y, x.shape[0])
        loss = ctypes.c_double(math.nan)
        check(_C.nnb_train_batch(self._h, _ptr(x), x.shape[0], x.shape[1], _ptr(y), y.shape[1], ctypes.byref(loss)))
        return loss.value

    def train_epoch(self, x, y):
        """One epoch over (x, y) in compiled-size mini-batches; returns the epoch's report dict."""
        x, _ = _features(x, self._input_shape)
        y = _targets(y, x.shape[0])
        report = _lib.EpochReport()
        report.struct_size = ctypes.sizeof(report)
        check(_C.nnb_train_epoch(self._h, _ptr(x), x.shape[0], x.shape[1], _ptr(y), y.shape[1], ctypes.byref(report)))
        return _report_dict(report)

    # -- inference --------------------------------------------------------------------------

    def predict(self, x):
        """The raw outputs (logits for classifiers), (rows, outputs) float32.

        x is (rows, *input_shape), e.g. (rows, 1, 28, 28), or flat (rows, inputs); x of exactly
        input_shape (or 1-D with `inputs` values) is one sample and gives a 1-D result. A model
        of feature vectors also takes (rows, ...) with `inputs` values a row (images, flattened).
        Any other x raises ShapeError before the library sees it."""
        x, one = _features(x, self._input_shape)
        out = np.empty((x.shape[0], self.outputs), dtype=np.float32)
        check(_C.nnb_predict(self._h, _ptr(x), x.shape[0], x.shape[1], _ptr(out), out.size))
        raise_pending()
        return out[0] if one else out

    def predict_classes(self, x):
        """Class indices: the argmax of the outputs, or for one output (a bce logit) 1 where it
        is positive."""
        out = self.predict(x)
        if out.shape[-1] == 1:
            return (out[..., 0] > 0).astype(np.int64)
        return np.argmax(out, axis=-1)

    def predict_proba(self, x):
        """Probabilities: softmax of the outputs, or sigmoid for one output."""
        out = self.predict(x).astype(np.float64)
        if out.shape[-1] == 1:
            return 1.0 / (1.0 + np.exp(-out))
        out = out - out.max(axis=-1, keepdims=True)
        e = np.exp(out)
        return e / e.sum(axis=-1, keepdims=True)

    def evaluate(self, x, y, loss=None):
        """{"loss": mean loss, "accuracy": accuracy (NaN for regression losses)} on (x, y) under
        `loss` (None: the compiled loss, else cross_entropy)."""
        x, _ = _features(x, self._input_shape)
        y = _targets(y, x.shape[0])
        value, accuracy = ctypes.c_double(math.nan), ctypes.c_double(math.nan)
        check(
            _C.nnb_evaluate(
                self._h,
                _ptr(x),
                x.shape[0],
                x.shape[1],
                _ptr(y),
                y.shape[1],
                loss.encode() if loss is not None else None,
                ctypes.byref(value),
                ctypes.byref(accuracy),
            )
        )
        raise_pending()
        return {"loss": value.value, "accuracy": accuracy.value}

    # -- files ------------------------------------------------------------------------------

    def save(self, path, checkpoint=False):
        """Writes the model (a safetensors file that PyTorch's load_state_dict reads too).

        checkpoint=True also writes what fit(..., resume=True) needs to continue training
        bitwise as if never interrupted: the optimizer of the last fit() or compile() (its
        state and step count), the epochs done, the data-order seed and dropout's random state.
        It raises NotReadyError before any fit() or compile(). The file still loads as a model
        (its "optimizer.*" tensors are extra keys to PyTorch)."""
        save = _C.nnb_model_save_checkpoint if checkpoint else _C.nnb_model_save
        check(save(self._h, os.fsencode(path)))


__all__ = ["Model", "ModelInfo", "Dense", "Activation", "Dropout", "NNBackpropError"]
